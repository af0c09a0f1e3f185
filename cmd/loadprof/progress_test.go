package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/sim"
)

// TestProgressGoesToALogUnlessQuiet runs with stderr a pipe, as in CI: the
// progress arrives as whole lines (here the final one; a longer run adds
// one every 10 s), and -q silences it.
func TestProgressGoesToALogUnlessQuiet(t *testing.T) {
	srv := startSim(t, sim.Config{})
	args := []string{"run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody), "--concurrency", "2", "--requests", "100", "--warmup", "20"}
	code, _, stderr := loadprof(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.ContainsAny(stderr, "\r\033") || !regexp.MustCompile(`(?m)^\[\s*\d+s\] steady +100 requests +0 errors .* req/s over the last .*$`).MatchString(stderr) {
		t.Fatalf("stderr %q: want the final progress line, whole", stderr)
	}
	code, _, stderr = loadprof(t, append(args, "-q")...)
	if code != 0 || strings.Contains(stderr, "requests") {
		t.Fatalf("exit %d, with -q stderr %q", code, stderr)
	}
}
