package report

import (
	"fmt"
	"io"
	"strings"
)

// writeWorkers lists every worker of a coordinated run, one line each,
// with the words the HTML report gives it (workerWords).
func writeWorkers(w io.Writer, workers []WorkerReport) {
	in, late := 0, 0
	for _, wk := range workers {
		switch wk.Status {
		case WorkerOK, WorkerInterrupted:
			in++
		case WorkerLate:
			// Its requests are in the result; only its span is its own.
			in++
			late++
		}
	}
	if late > 0 {
		fmt.Fprintf(w, "  coordinated: %d of %d workers in the result (%d began late)\n", in, len(workers), late)
	} else {
		fmt.Fprintf(w, "  coordinated: %d of %d workers in the result\n", in, len(workers))
	}
	for _, wk := range workers {
		name := wk.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(w, "    worker %d %-12s %s\n", wk.Index, name, workerDetail(wk))
	}
}

// workerWords is one worker of a coordinated run in a line of the HTML
// report's facts.
func workerWords(w WorkerReport) string {
	if w.Name != "" {
		return w.Name + ": " + workerDetail(w)
	}
	return workerDetail(w)
}

// workerDetail is what the summary and the HTML report both say of a
// worker: its status; its counts when it ran (a lost worker's last
// reported ones); its clock when it joined; what went wrong.
func workerDetail(w WorkerReport) string {
	s := strings.ReplaceAll(w.Status, "_", " ")
	if w.Status != WorkerNeverJoined && w.Status != WorkerRefused {
		s += fmt.Sprintf(", %d requests, %d errors", w.Requests, w.Errors)
		if w.Status == WorkerLost {
			// Its error says what of it is kept and that the merged
			// figures leave it out.
			s += " (its last count)"
		}
	}
	if w.Status != WorkerNeverJoined {
		s += fmt.Sprintf(", clock %+.3f ms (±%.3f ms)", w.ClockOffsetMs, w.ClockUncertaintyMs)
	}
	if w.Error != "" {
		s += ": " + w.Error
	}
	return s
}
