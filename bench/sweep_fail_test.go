package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// A payload the model rejects fails a sweep's first step in the preflight:
// the sweep returns the error a plain run gives, with no step and no load.
func TestSweepWhoseFirstStepFailsThePreflightReturnsTheRunsError(t *testing.T) {
	srv := startSim(t, sim.Config{}) // the default float signature
	cfg := Config{URL: srv.PredictURL(), DataPath: writeFile(t, "d.json", `{"instances": ["x"]}`), Timeout: 5 * time.Second,
		Plan: load.Plan{Rate: 1, Duration: 2 * time.Second, MaxInflight: 100}}
	_, plainErr := Run(context.Background(), cfg)
	var te *TargetError
	if !errors.As(plainErr, &te) {
		t.Fatalf("plain run: %v, want a TargetError", plainErr)
	}
	steps, err := ParseSteps("--rate", "100:300:100")
	if err != nil {
		t.Fatal(err)
	}
	slo, err := report.ParseSLO("p99<500ms")
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunSweep(context.Background(), SweepConfig{Base: cfg, Steps: steps, SLO: slo})
	if !errors.As(err, &te) || err.Error() != plainErr.Error() {
		t.Fatalf("sweep: %v, want %v", err, plainErr)
	}
	if res != nil {
		t.Fatalf("sweep result %+v with no step run", res)
	}
	if n := srv.Predicts(); n != 0 {
		t.Fatalf("%d predict calls answered: the sweep sent load", n)
	}
}
