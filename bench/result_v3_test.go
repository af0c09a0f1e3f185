package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

func TestResultSaysWhereWhenAndByWhatItWasMadeAndNoOutsideWithoutAWindow(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	out := filepath.Join(t.TempDir(), "result.json")
	res, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan: load.Plan{Rate: 100, WarmupRequests: 20, Requests: 100, MaxInflight: 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeResult(t, res, out)
	host, _ := os.Hostname()
	switch {
	case res.Version != 3 || res.Units != (report.Units{Histograms: "us", ConfigDurations: "s"}):
		t.Errorf("version %d, units %+v", res.Version, res.Units)
	case res.Host == nil || res.Host.Name != host || res.Host.CPUs != runtime.NumCPU() || res.Host.OS != runtime.GOOS || res.Host.Arch != runtime.GOARCH:
		t.Errorf("host %+v", res.Host)
	case res.Build.Version != Version || res.Build.Go != runtime.Version():
		t.Errorf("build %+v", res.Build)
	case !res.FinishedAt.After(res.StartedAt.Add(time.Duration(res.Phases.Steady.End * float64(time.Second)))):
		t.Errorf("finished at %v, started %v, steady phase ended %.3f s in", res.FinishedAt, res.StartedAt, res.Phases.Steady.End)
	case res.Window != nil || res.Outside != nil:
		t.Errorf("no profile window, yet window %v, outside %v", res.Window, res.Outside)
	case res.Phases.Warmup.Histogram == "" || decoded(t, res.Phases.Warmup.Histogram).TotalCount() != res.Phases.Warmup.Latency.Count || res.Phases.Warmup.Latency.Count != 20:
		t.Errorf("warm-up %+v", res.Phases.Warmup)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"outside": null`, `"histograms": "us"`, `"finished_at": "`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("result.json has no %s", want)
		}
	}
}
