package bench

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/sim"
)

func TestSettingsOutOfRangeAreInputErrorsBeforeAnyLoad(t *testing.T) {
	srv := startSim(t, sim.Config{})
	base := Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Rate: 10, Duration: time.Second, MaxInflight: 10}}
	for want, change := range map[string]func(*Config){
		"load.Plan.Rate NaN":                                   func(c *Config) { c.Plan.Rate = math.NaN() },
		"bench.Config.Timeout -1s: must be positive":           func(c *Config) { c.Timeout = -time.Second },
		"bench.Config.MaxResponseBytes -1: must be at least 1": func(c *Config) { c.MaxResponseBytes = -1 },
		"bench.Config.GRPC.Connections -1: must be at least 1": func(c *Config) { c.GRPC.Connections = -1 },
		"profile.Options.Slack -1s": func(c *Config) {
			c.Profile = &ProfileConfig{Addr: srv.GRPCAddr(), Options: profile.Options{Slack: -time.Second}}
		},
		"bench.Config.Profile.Delay -1s": func(c *Config) { c.Profile = &ProfileConfig{Addr: srv.GRPCAddr(), Delay: -time.Second} },
	} {
		cfg := base
		change(&cfg)
		_, err := Run(context.Background(), cfg)
		var in *InputError
		var se *load.SettingError
		if !errors.As(err, &in) || !strings.Contains(err.Error(), want) || !errors.As(err, &se) || !strings.HasPrefix(want, se.Setting+" ") {
			t.Errorf("%s: got %v", want, err)
		}
	}
	// A sweep checks every level before it runs the first.
	steps, err := ParseSteps("--rate", "1e6:3e7:1e6")
	if err != nil {
		t.Fatal(err)
	}
	_, err = RunSweep(context.Background(), SweepConfig{Base: base, Steps: steps})
	var in *InputError
	if !errors.As(err, &in) || !strings.Contains(err.Error(), "load.Plan.Rate 1.1e+07: must be at most 1e+07") {
		t.Errorf("sweep past the highest rate: %v", err)
	}
	if srv.Predicts() != 0 {
		t.Fatalf("%d requests were sent", srv.Predicts())
	}
}
