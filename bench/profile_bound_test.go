package bench

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/sim"
)

// silentPort accepts connections, says nothing, and closes them after
// closeAfter: a profiler that takes the call and never answers.
func silentPort(t *testing.T, closeAfter time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			time.AfterFunc(closeAfter, func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

func TestASilentProfilerHoldsTheSteadyPhaseOnlyABoundedTime(t *testing.T) {
	// The window is 1 s; the profiler never answers and drops the call
	// after 8 s. The steady phase is held past its 1 s only until the
	// window's end plus the margin (2 s), not until the call ends, and the
	// run said before the load that the profiler could not be reached.
	srv := startSim(t, sim.Config{})
	addr := silentPort(t, 8*time.Second)
	var warnings bytes.Buffer
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:     load.Plan{Rate: 50, Duration: time.Second, MaxInflight: 100},
		Profile:  &ProfileConfig{Addr: addr, Options: profile.Options{Duration: time.Second, Slack: time.Minute, LogDir: t.TempDir()}},
		Warnings: &warnings})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warnings.String(), "no gRPC connection within") {
		t.Fatalf("warnings %q", warnings.String())
	}
	if res.Profile == nil || res.Profile.Error == "" {
		t.Fatalf("profile %+v", res.Profile)
	}
	bound := time.Second + holdMargin(time.Second)
	if steady := time.Duration((res.Phases.Steady.End - res.Phases.Steady.Start) * float64(time.Second)); steady >= 8*time.Second || steady < bound-100*time.Millisecond {
		t.Fatalf("steady phase %v: want it held to about %v (window + margin), not until the profiler dropped the call (8 s)", steady, bound)
	}
}

func TestProfileRequiredChecksTheProfilerBeforeAnyLoad(t *testing.T) {
	srv := startSim(t, sim.Config{})
	_, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:    load.Plan{Rate: 50, Duration: time.Minute, MaxInflight: 100},
		Profile: &ProfileConfig{Addr: testkit.ClosedAddr(t), Required: true, Options: profile.Options{LogDir: t.TempDir()}}})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "bench.Config.Profile.Required") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("error %v", err)
	}
	if n := srv.Predicts(); n != 1 { // the preflight's only
		t.Fatalf("%d predict calls: load was sent", n)
	}
}

func TestATraceLostToAFullDiskIsAFailedWrite(t *testing.T) {
	// The trace streams into a logdir on a filesystem with no room: the run
	// says it was captured but not written and fails as a failed write (the
	// command's exit 4), not as a success.
	if os.Geteuid() != 0 {
		t.Skip("mounts a small tmpfs: needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	_ = os.WriteFile(filepath.Join(dir, "fill"), make([]byte, 64<<10), 0o644) // fills it; the last bytes may not fit
	srv := startSim(t, sim.Config{})
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:    load.Plan{Rate: 50, Duration: time.Second, MaxInflight: 100},
		Profile: &ProfileConfig{Addr: srv.GRPCAddr(), Options: profile.Options{Duration: 500 * time.Millisecond, LogDir: filepath.Join(dir, "tb")}}})
	var write *outfile.Error
	if !errors.As(err, &write) || res == nil || res.Profile == nil {
		t.Fatalf("error %v, result %+v", err, res)
	}
	if nw := res.Profile.NotWritten; len(nw) == 0 || !strings.HasSuffix(nw[0], ".xplane.pb") || !strings.Contains(res.Profile.Error, "captured but could not be written") {
		t.Fatalf("not written %v, profile error %q", nw, res.Profile.Error)
	}
}

func TestProfileRequiredAtTheRESTPortSaysWhatAnswered(t *testing.T) {
	srv := startSim(t, sim.Config{})
	_, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:    load.Plan{Rate: 50, Duration: time.Minute, MaxInflight: 100},
		Profile: &ProfileConfig{Addr: srv.RESTAddr(), Required: true, Options: profile.Options{LogDir: t.TempDir()}}})
	if err == nil || !strings.Contains(err.Error(), "this port answered in HTTP/1.1, not gRPC") {
		t.Fatalf("error %v", err)
	}
}
