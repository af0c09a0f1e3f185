package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

// loadprofWithin runs the binary like loadprof, but kills it after limit
// (a command that should fail at once must not hang the test).
func loadprofWithin(t *testing.T, limit time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	code, stdout, stderr := command(t, exec.CommandContext(ctx, binary, args...))
	if ctx.Err() != nil {
		t.Fatalf("loadprof %s: still running after %v", strings.Join(args, " "), limit)
	}
	return code, stdout, stderr
}

func TestEveryNumericFlagOutOfRangeExitsTwoNamingIt(t *testing.T) {
	srv := startSim(t, sim.Config{})
	url := srv.PredictURL()
	good := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	run := func(args ...string) []string {
		return append([]string{"run", "--url", url, "--data", good, "--duration", "1s"}, args...)
	}
	noSim := []string{"--rest", "127.0.0.1:0", "--grpc", ""}
	cases := []struct {
		args []string
		want string
	}{
		{run("--rate", "NaN"), `--rate "NaN": want a positive number`},
		{run("--rate", "Inf"), `--rate "Inf": want a positive number`},
		{run("--rate", "-Inf"), `--rate "-Inf": want a positive number`},
		{run("--rate", "1e-12"), "--rate 1e-12: must be at least 0.001"},
		{run("--rate", "1e9"), "--rate 1e+09: must be at most 1e+07"},
		{run("--rate", "1:inf:1"), "FROM and TO must be positive numbers"},
		{run("--rate", "1:1e12:1"), `--rate "1:1e12:1": 1e+12 steps; at most 1000`},
		{run("--rate", "1e-12:1:1"), "--rate 1e-12: must be at least 0.001"},
		{run("--rate", "1:2:x1"), "the factor must be a number above 1"},
		{run("--concurrency", "1:10:x1.5"), "--concurrency step 1.5: must be a whole number"},
		{run("--rate", "10", "--timeout", "0"), "--timeout 0s: must be positive"},
		{run("--rate", "10", "--grace", "-1s"), "--grace -1s: must be positive"},
		{run("--rate", "10", "--grace", "0s"), "--grace 0s: must be positive"},
		{run("--rate", "10", "--send-slack", "0s"), "--send-slack 0s: must be positive"},
		{run("--rate", "10", "--send-slack", "20ms"), "--send-slack 20ms: must be at most 10ms"},
		{run("--rate", "10", "--max-response", "0"), "--max-response 0: must be at least 1"},
		{run("--rate", "10", "--max-inflight", "0"), "--max-inflight 0: must be at least 1"},
		{run("--rate", "10", "--connections", "0"), "--connections 0: must be at least 1"},
		{run("--rate", "10", "--requests", "-1"), "--requests -1: must be at least 0"},
		{run("--rate", "10", "--duration", "-1s"), "--duration -1s: must not be negative"},
		{run("--rate", "10", "--profile-timeout", "0"), "--profile-timeout 0s: must be positive"},
		{run("--rate", "10", "--profile-duration", "0"), "--profile-duration 0s: must be positive"},
		{run("--rate", "10", "--profile-delay", "-1s"), "--profile-delay -1s: must not be negative"},
		{run("--rate", "10", "--search-tolerance", "NaN"), "--search-tolerance NaN: must be between"},
		{run("--rate", "10", "--step-stability", "Inf"), "--step-stability +Inf: must be a positive number"},
		{run("--rate", "10", "--step-repeats", "-1"), "--step-repeats -1: must be at least 0"},
		{run("--rate", "10", "--model-version", "-1"), "--model-version -1: must be at least 0"},
		{append([]string{"sim", "--error-status", "42"}, noSim...), "--error-status 42: must be an HTTP error status, 400 to 599"},
		{append([]string{"sim", "--error-status", "200"}, noSim...), "--error-status 200: must be an HTTP error status"},
		{append([]string{"sim", "--workers", "-1"}, noSim...), "--workers -1: must be at least 0"},
		{append([]string{"sim", "--error-rate", "NaN"}, noSim...), "--error-rate NaN: must be between 0 and 1"},
		{append([]string{"sim", "--stall", "2s", "--stall-every", "1s"}, noSim...), "--stall-every 1s: must be longer than --stall 2s"},
		{[]string{"demo", "--rate", "-1"}, "--rate -1: must be positive"},
		{[]string{"demo", "--rate", "NaN"}, "--rate NaN: must be a finite number"},
		{[]string{"demo", "--duration", "0s"}, "--duration 0s: must be positive"},
		{[]string{"demo", "--workers", "-1"}, "--workers -1: must be at least 0"},
		{[]string{"profile", "--addr", "127.0.0.1:1", "--profile-timeout", "0"}, "--profile-timeout 0s: must be positive"},
		{[]string{"profile", "--addr", "127.0.0.1:1", "--profile-attempts", "0"}, "--profile-attempts 0: must be at least 1"},
		{[]string{"compare", "a.json", "b.json", "--max", "p99=NaN%"}, `"NaN" is not a number`},
		{[]string{"compare", "a.json", "b.json", "--max", "rps=-Inf"}, `"-Inf" is not a number`},
		{[]string{"trace", "summary", t.TempDir(), "--top", "-1"}, "--top -1: must be at least 1"},
		{[]string{"trace", "summary", t.TempDir(), "--top", "0"}, "--top 0: must be at least 1"},
	}
	for _, c := range cases {
		code, _, stderr := loadprofWithin(t, time.Minute, c.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || !strings.Contains(lines[0], c.want) || len(lines) != 1 {
			t.Errorf("loadprof %s: exit %d, stderr %q; want exit 2 and one line with %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if srv.Predicts() != 0 {
		t.Fatalf("flags out of range still sent %d requests", srv.Predicts())
	}
}

// A sweep whose first step fails the preflight (a payload the model
// rejects) exits 3 with the message a plain run gives, not a panic.
func TestSweepThatFailsThePreflightExitsThreeLikeAPlainRun(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "d.json", `{"instances": ["x"]}`)
	base := []string{"run", "--url", srv.PredictURL(), "--data", data, "--duration", "2s"}
	code, _, plain := loadprofWithin(t, time.Minute, append(base, "--rate", "100")...)
	if code != 3 {
		t.Fatalf("plain run: exit %d, %s", code, plain)
	}
	code, stdout, sweep := loadprofWithin(t, time.Minute, append(base, "--rate", "100:300:100", "--slo", "p99<500ms")...)
	if code != 3 || sweep != plain || strings.Contains(stdout, "panic") {
		t.Fatalf("sweep: exit %d, stderr %q, want exit 3 and %q\n%s", code, sweep, plain, stdout)
	}
}
