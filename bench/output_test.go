package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

func TestOutputPathsAreCheckedBeforeAnyLoadIsSent(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	cases := []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.OutPath = filepath.Join(dir, "missing", "r.json") }, "--out " + filepath.Join(dir, "missing", "r.json") + ": directory " + filepath.Join(dir, "missing") + " does not exist"},
		{func(c *Config) { c.HGRMPath = dir }, "--hgrm " + dir + ": is a directory"},
		{func(c *Config) { c.HlogPath = filepath.Join(file, "run.hlog") }, "is not a directory"},
		{func(c *Config) {
			c.Profile = &ProfileConfig{Addr: srv.GRPCAddr(), Options: profile.Options{LogDir: filepath.Join(file, "tb")}}
		}, "--logdir " + filepath.Join(file, "tb") + ": " + file + " is in the way"},
		{func(c *Config) { c.OutPath, c.HGRMPath = filepath.Join(dir, "same"), filepath.Join(dir, "same") }, "the same file"},
		{func(c *Config) { c.OutPath, c.HlogPath = "-", "-" }, "only one output can go to standard output"},
	}
	for _, c := range cases {
		cfg := Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
			Plan: load.Plan{Concurrency: 1, Duration: time.Minute}}
		c.set(&cfg)
		res, err := Run(context.Background(), cfg)
		var in *InputError
		if res != nil || !errors.As(err, &in) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err %v, want an input error with %q", err, c.want)
		}
	}
	if n := srv.Predicts(); n != 0 {
		t.Fatalf("%d requests sent before the outputs were found unwritable", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the checks left files: %v", entries)
	}
}

func TestAFailedOutputIsReportedAndTheOthersAreStillWritten(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	full := testkit.FullDevice(t)
	hgrm, hlog := filepath.Join(dir, "r.hgrm"), filepath.Join(dir, "r.hlog")
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:    load.Plan{Concurrency: 1, Requests: 20},
		OutPath: full, HGRMPath: hgrm, HlogPath: hlog})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	failed := outfile.Failed(err)
	if len(failed) != 1 || failed[full] == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err %v: want --out %s alone failed with ENOSPC", err, full)
	}
	if !strings.Contains(err.Error(), "--out "+full+": could not write it: no space left on device") {
		t.Fatalf("message %q", err)
	}
	for _, p := range []string{hgrm, hlog} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", p, err)
		}
	}
	if fi, err := os.Lstat(full); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is no longer a device", full)
	}
}

func TestTwoProfiledSweepsIntoOneLogdirKeepEachTheirTraces(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	logdir := t.TempDir()
	steps, _ := ParseSteps("--rate", "100:100:100")
	sweep := func() report.StepResult {
		res, err := RunSweep(context.Background(), SweepConfig{
			Base: Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
				Plan: load.Plan{Duration: 1500 * time.Millisecond, MaxInflight: 100},
				Profile: &ProfileConfig{Addr: srv.GRPCAddr(), Delay: 200 * time.Millisecond,
					Options: profile.Options{Duration: 500 * time.Millisecond, LogDir: logdir, Slack: 5 * time.Second}}},
			Steps: steps, SLO: report.SLO{ErrPct: -1}, ProfileSteps: "all",
		})
		if err != nil || len(res.Steps) != 1 {
			t.Fatalf("sweep: %v", err)
		}
		return res.Steps[0]
	}
	first, second := sweep(), sweep()
	if first.TraceRun != "rate_100" || second.TraceRun != "rate_100_2" {
		t.Fatalf("trace runs %q and %q, want rate_100 and rate_100_2", first.TraceRun, second.TraceRun)
	}
	for _, st := range []report.StepResult{first, second} {
		p := st.Result.Profile
		if p.Error != "" || len(p.Files) != 1 || filepath.Dir(p.Files[0]) != (profile.Store{LogDir: logdir, Run: st.TraceRun}).Dir() {
			t.Fatalf("run %s: profile %+v, error %q", st.TraceRun, p.Result, p.Error)
		}
	}
}

func TestATraceThatCouldNotBeWrittenIsAFailedOutputOfTheRun(t *testing.T) {
	notWritten := &outfile.Error{Path: "tb/plugins/profile/r/h.xplane.pb", Err: syscall.EROFS}
	win := &window{err: &profile.Error{Addr: "h", Msg: "the trace was captured but could not be written", Err: notWritten}}
	err := writeOutputs(Config{}, &report.Result{}, nil, win)
	if got := outfile.Failed(err); got[notWritten.Path] != notWritten {
		t.Fatalf("writeOutputs: %v", err)
	}
	win.err = &profile.Error{Addr: "h", Msg: "unreachable"} // a failed capture is no failed write
	if err := writeOutputs(Config{}, &report.Result{}, nil, win); err != nil {
		t.Fatalf("writeOutputs: %v", err)
	}
}
