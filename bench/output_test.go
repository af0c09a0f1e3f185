package bench

import (
	"context"
	"errors"
	"io"
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

func TestAnUnusableLogdirIsFoundBeforeAnyLoadIsSent(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	cfg := Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:    load.Plan{Concurrency: 1, Duration: time.Minute},
		Profile: &ProfileConfig{Addr: srv.GRPCAddr(), Options: profile.Options{LogDir: filepath.Join(file, "tb")}}}
	res, err := Run(context.Background(), cfg)
	var in *InputError
	want := "profile.Options.LogDir " + filepath.Join(file, "tb") + ": " + file + " is in the way"
	if res != nil || !errors.As(err, &in) || !strings.Contains(err.Error(), want) {
		t.Errorf("err %v, want an input error with %q", err, want)
	}
	if n := srv.Predicts(); n != 0 {
		t.Fatalf("%d requests sent before the logdir was found unusable", n)
	}
}

func TestTheIntervalLogIsOpenedOnlyWhenTheLoadStarts(t *testing.T) {
	srv := startSim(t, sim.Config{})
	opened := 0
	open := func() (io.WriteCloser, error) {
		opened++
		return nopWriteCloser{io.Discard}, nil
	}
	cfg := Config{URL: "http://" + testkit.ClosedAddr(t) + "/v1/models/m:predict", DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan: load.Plan{Concurrency: 1, Requests: 5}, IntervalLog: open}
	if res, err := Run(context.Background(), cfg); res != nil || err == nil || opened != 0 {
		t.Fatalf("a refused target: result %v, err %v, log opened %d times; want no result and no log", res != nil, err, opened)
	}
	cfg.URL = srv.PredictURL()
	if res, err := Run(context.Background(), cfg); res == nil || err != nil || opened != 1 {
		t.Fatalf("a run: result %v, err %v, log opened %d times; want it opened once", res != nil, err, opened)
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func TestRunWritesNoFilesButTheTraceStore(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	data := writeFile(t, "data.json", body)
	cwd, logdir := t.TempDir(), t.TempDir()
	t.Chdir(cwd)
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: data, Timeout: 5 * time.Second,
		Plan:    load.Plan{Rate: 100, Duration: time.Second, MaxInflight: 50},
		Profile: profiled(srv, logdir)})
	if err != nil || res == nil {
		t.Fatalf("run: %v", err)
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 0 {
		t.Fatalf("Run wrote %v", entries)
	}
	if res.Profile == nil || len(res.Profile.Files) == 0 {
		t.Fatalf("no trace in the logdir: %+v", res.Profile)
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
	err := finishOutputs(nil, win)
	if got := outfile.Failed(err); got[notWritten.Path] != notWritten {
		t.Fatalf("finishOutputs: %v", err)
	}
	win.err = &profile.Error{Addr: "h", Msg: "unreachable"} // a failed capture is no failed write
	if err := finishOutputs(nil, win); err != nil {
		t.Fatalf("finishOutputs: %v", err)
	}
}
