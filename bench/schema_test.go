package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

func TestSchemaMatchesRealResults(t *testing.T) {
	doc := testkit.ReadSchema(t, "../docs/result-schema.md")
	// A profiled run with a warm-up and failures: every object but a
	// merge's and a sweep's.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, ErrorRate: 0.1}})
	dir := t.TempDir()
	out := filepath.Join(dir, "run.json")
	ran, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:     load.Plan{Rate: 200, WarmupDuration: 500 * time.Millisecond, Duration: 2 * time.Second, MaxInflight: 200},
		Profile:  profiled(srv, t.TempDir()),
		Metrics:  &MetricsConfig{URLs: []string{srv.MetricsURL()}, Interval: 200 * time.Millisecond},
		Settings: map[string]any{"rate": 200.0, "timeout": 5.0, "tls": false, "header": []string{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeResult(t, ran, out)
	run, err := report.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if run.Profile == nil || run.Profile.Timeline == nil || run.Window == nil || run.SeriesHistograms == nil || run.Phases.Warmup.Histogram == "" || run.Host == nil ||
		run.Server == nil || run.Server.Profile == nil || len(run.Server.Intervals) == 0 {
		t.Fatalf("the run does not show every object: profile %v, window %v", run.Profile, run.Window)
	}
	// A merge of it with itself a second later, and a sweep of one step.
	later := *run
	later.StartedAt = later.StartedAt.Add(time.Second)
	merged, _, err := report.Merge([]*report.Result{run, &later}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	level := 200.0
	sweep := &report.SweepResult{Version: report.ResultVersion, Tool: run.Tool, Kind: "sweep", Loop: "open", Config: run.Config,
		Steps: []report.StepResult{{Level: level, Pass: true, Attempts: 1, Result: run}}, MaxPassing: &level, Stopped: "every step passed"}
	for _, c := range []struct {
		name, section string
		write         func(string) error
	}{
		{"run.json", "result", func(string) error { return nil }},
		{"merged.json", "result", merged.WriteJSON},
		{"sweep.json", "sweep", func(p string) error { return report.WriteJSONOutput("", p, sweep) }},
	} {
		path := filepath.Join(dir, c.name)
		if err := c.write(path); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		testkit.CheckAgainstSchema(t, doc, c.section, c.name, v)
	}
}
