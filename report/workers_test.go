package report

import (
	"strings"
	"testing"
)

func TestSummaryListsTheWorkersOfACoordinatedRun(t *testing.T) {
	r := &Result{Transport: "rest", Target: "http://x", Loop: "open", Workers: []WorkerReport{
		{Index: 1, Name: "a", Status: WorkerOK, Requests: 100, ClockOffsetMs: 0.25, ClockUncertaintyMs: 0.1},
		{Index: 2, Name: "b", Status: WorkerLost, Requests: 40, Error: "silent for 10s"},
		{Index: 3, Status: WorkerNotJoined, Error: "did not join within 2m0s"},
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
	for _, want := range []string{"coordinated: 1 of 3 workers in the result", "worker 2 b", "lost", "silent for 10s", "worker 3 -", "not joined", "clock +0.250 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
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
