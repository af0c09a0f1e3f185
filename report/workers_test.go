package report

import (
	"fmt"
	"html"
	"strings"
	"testing"
)

func TestSummaryListsTheWorkersOfACoordinatedRun(t *testing.T) {
	r := &Result{Transport: "rest", Target: "http://x", Loop: "open", Workers: []WorkerReport{
		{Index: 1, Name: "a", Status: WorkerOK, Requests: 100, ClockOffsetMs: 0.25, ClockUncertaintyMs: 0.1},
		{Index: 2, Name: "b", Status: WorkerLost, Requests: 40, Error: "silent for 10s"},
		{Index: 3, Status: WorkerNeverJoined, Error: "did not join within 2m0s"},
	}}
	var b strings.Builder
	WriteSummary(&b, r)
	if !strings.HasPrefix(b.String(), "loadprof run: REST") {
		t.Errorf("a coordinated run of one worker is headed as a run:\n%s", b.String())
	}
	r.MergedFrom = []MergedInput{{File: "worker-1", Transport: "rest"}}
	b.Reset()
	WriteSummary(&b, r)
	if !strings.HasPrefix(b.String(), "loadprof run --workers: 1 workers' runs") {
		t.Errorf("a coordinated run's summary is headed as a merge:\n%s", b.String())
	}
	out := b.String()
	for _, want := range []string{"coordinated: 1 of 3 workers in the result", "worker 2 b", "lost", "silent for 10s", "worker 3 -", "never joined: did not join", "clock +0.250 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// A late worker's requests are in the result: the count has it, and
// says it began late (it said "0 of 2 workers in the result" of a run
// whose two late workers' requests were all in it).
func TestSummaryCountsLateWorkersInTheResult(t *testing.T) {
	r := &Result{Transport: "rest", Target: "http://x", Loop: "open", Workers: []WorkerReport{
		{Index: 1, Status: WorkerLate, Requests: 4, Error: "began 1.019s after the common start"},
		{Index: 2, Status: WorkerLate, Requests: 4},
		{Index: 3, Status: WorkerLost},
	}}
	var b strings.Builder
	WriteSummary(&b, r)
	if want := "coordinated: 2 of 3 workers in the result (2 began late)"; !strings.Contains(b.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, b.String())
	}
}

func TestHTMLReportListsTheWorkers(t *testing.T) {
	h := newHistogram()
	_ = h.RecordValue(1000)
	enc, err := EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	r := &Result{Version: ResultVersion, Transport: "rest", Target: "http://x", Loop: "open", Requests: 1, Histogram: enc,
		Latency: StatsOf(h), Workers: []WorkerReport{{Index: 1, Name: "pod-a", Status: WorkerOK, Requests: 1}, {Index: 2, Status: WorkerLost, Error: "silent for 10s"}}}
	var b strings.Builder
	if err := WriteHTML(&b, []*Result{r}, []string{"run"}, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"worker 1", "pod-a: ok, 1 requests", "worker 2", "lost", "silent for 10s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// The summary and the HTML report say the same of every worker: counts
// only for a worker that ran (a lost one's marked as outside the merged
// figures), a clock only for one that joined.
func TestSummaryAndHTMLSayTheSameOfEachWorker(t *testing.T) {
	h := newHistogram()
	_ = h.RecordValue(1000)
	enc, err := EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	workers := []WorkerReport{
		{Index: 1, Name: "a", Status: WorkerOK, Requests: 100, ClockOffsetMs: 0.25},
		{Index: 2, Name: "b", Status: WorkerLost, Requests: 40, CoveredS: 3, Histogram: enc, Error: "silent for 10s"},
		{Index: 3, Name: "c", Status: WorkerRefused, ClockOffsetMs: 2000, Error: "its clock is 2s off"},
		{Index: 4, Status: WorkerNeverJoined, Error: "did not join within 2m0s"},
		{Index: 5, Status: WorkerNeverJoined, Error: "did not join within 2m0s"},
	}
	r := &Result{Version: ResultVersion, Transport: "rest", Target: "http://x", Loop: "open", Requests: 1, Histogram: enc, Latency: StatsOf(h), Workers: workers}
	var sum, page strings.Builder
	WriteSummary(&sum, r)
	if err := WriteHTML(&page, []*Result{r}, []string{"run"}, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	wants := map[int][]string{
		1: {"ok, 100 requests, 0 errors, clock +0.250 ms"},
		2: {"lost, 40 requests, 0 errors (its last count), clock"},
		3: {"refused, clock +2000.000 ms"},
		4: {"never joined: did not join within 2m0s"},
		5: {"never joined: did not join within 2m0s"},
	}
	for i, w := range workers {
		detail := workerDetail(w)
		for _, want := range wants[w.Index] {
			if !strings.HasPrefix(detail, want) {
				t.Errorf("worker %d: %q, want it to begin %q", i+1, detail, want)
			}
		}
		if !strings.Contains(sum.String(), fmt.Sprintf("worker %d ", w.Index)) || !strings.Contains(sum.String(), detail) {
			t.Errorf("the summary lacks worker %d as %q:\n%s", w.Index, detail, sum.String())
		}
		if !strings.Contains(html.UnescapeString(page.String()), detail) {
			t.Errorf("the page lacks worker %d as %q", w.Index, detail)
		}
	}
	if strings.Contains(workerDetail(workers[3]), "requests") || strings.Contains(workerDetail(workers[2]), "requests") {
		t.Error("counts for a worker that never ran")
	}
}
