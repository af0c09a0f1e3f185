package report

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTheSummaryReadsTheTypedLevelNotTheFlagMap(t *testing.T) {
	// The flag map says something else: the summary must not read it.
	open := &Result{Loop: "open", LatencyFrom: "intended_send", Transport: "rest", Rate: 250, MaxInflight: 7,
		Config: map[string]any{"rate": "bogus", "max-inflight": "bogus"}, Client: ClientStats{Saturated: 3}}
	var b strings.Builder
	WriteSummary(&b, open)
	if s := b.String(); !strings.Contains(s, "(open loop at 250 req/s;") || !strings.Contains(s, "kept --max-inflight 7 requests outstanding") || strings.Contains(s, "bogus") {
		t.Fatalf("summary:\n%s", s)
	}
	// A library caller gives no flag map at all.
	closed := &Result{Loop: "closed", LatencyFrom: "send", Transport: "grpc", Concurrency: 16}
	b.Reset()
	WriteSummary(&b, closed)
	if s := b.String(); !strings.Contains(s, "(closed loop, concurrency 16;") {
		t.Fatalf("summary:\n%s", s)
	}
}

func TestAResultWrittenBeforeTheTypedLevelGetsItFromItsConfig(t *testing.T) {
	r, err := ReadResult(filepath.Join("testdata", "v2", "rest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Rate != 40 || r.Concurrency != 0 || r.MaxInflight != 1000 {
		t.Fatalf("rate %g, concurrency %d, max inflight %d; want 40, 0 and 1000 from its config", r.Rate, r.Concurrency, r.MaxInflight)
	}
}
