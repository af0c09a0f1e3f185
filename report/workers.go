package report

import (
	"fmt"
	"io"
	"strings"
)

// writeWorkers lists the workers of a coordinated run that are not in
// its figures, and every worker's clock offset: one line each.
func writeWorkers(w io.Writer, workers []WorkerReport) {
	ok := 0
	for _, wk := range workers {
		if wk.Status == WorkerOK || wk.Status == WorkerInterrupted {
			ok++
		}
	}
	fmt.Fprintf(w, "  coordinated: %d of %d workers in the result\n", ok, len(workers))
	for _, wk := range workers {
		name := wk.Name
		if name == "" {
			name = "-"
		}
		line := fmt.Sprintf("    worker %d %-12s %-11s %9d requests %6d errors", wk.Index, name, strings.ReplaceAll(wk.Status, "_", " "), wk.Requests, wk.Errors)
		if wk.Status != WorkerNotJoined {
			line += fmt.Sprintf("  clock %+.3f ms (±%.3f)", wk.ClockOffsetMs, wk.ClockUncertaintyMs)
		}
		if wk.Error != "" {
			line += ": " + wk.Error
		}
		fmt.Fprintln(w, line)
	}
}

// workerWords is one worker of a coordinated run in a line of the HTML
// report's facts.
func workerWords(w WorkerReport) string {
	s := strings.ReplaceAll(w.Status, "_", " ")
	if w.Name != "" {
		s = w.Name + ": " + s
	}
	if w.Status != WorkerNotJoined {
		s += fmt.Sprintf(", %d requests, %d errors, clock %+.3f ms (±%.3f ms)", w.Requests, w.Errors, w.ClockOffsetMs, w.ClockUncertaintyMs)
	}
	if w.Error != "" {
		s += ": " + w.Error
	}
	return s
}
