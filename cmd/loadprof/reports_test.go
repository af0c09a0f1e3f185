package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

// A sweep in which no step had a successful request exits 3, as one run
// does and the README says: the target failed, whatever the SLO. Then
// compare, given the sweep, says what to do instead.
func TestASweepWithoutASuccessfulRequestExits3(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, ErrorRate: 1, ErrorStatus: 503}})
	dir := t.TempDir()
	out := filepath.Join(dir, "sweep.json")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--rate", "20:40:20", "--slo", "p99<500ms", "--duration", "500ms", "--out", out)
	if code != exitTarget || !strings.Contains(stderr, "no step had a successful request") {
		t.Fatalf("exit %d, want 3\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = loadprof(t, "compare", out, out)
	if code != exitBadInput || !strings.Contains(stderr, "not one run's: compare and merge take one run's result.json") || !strings.Contains(stderr, "loadprof report "+out) {
		t.Fatalf("compare sweep.json: exit %d, %q", code, stderr)
	}
}

// Two results printed as text are each headed by their file.
func TestTheTextReportOfTwoResultsNamesTheirFiles(t *testing.T) {
	a, b := filepath.Join("..", "..", "report", "testdata", "v2", "rest.json"), filepath.Join("..", "..", "report", "testdata", "v2", "grpc.json")
	code, stdout, stderr := loadprof(t, "report", a, b)
	if code != 0 || !strings.Contains(stdout, "== "+a+" ==") || !strings.Contains(stdout, "== "+b+" ==") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Index(stdout, "== "+a) > strings.Index(stdout, "REST http") || strings.Index(stdout, "== "+b) > strings.Index(stdout, "GRPC grpc") {
		t.Fatalf("each heading must come before its summary:\n%s", stdout)
	}
}
