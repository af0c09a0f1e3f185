package bench

import (
	"fmt"
	"math"

	"github.com/loadprof/loadprof/internal/setting"
)

// check reports the first setting of c that is out of range, as a
// *load.SettingError. Zero values keep their documented defaults.
func (c *Config) check() error {
	if err := c.Plan.Check(); err != nil {
		return err
	}
	switch {
	case c.Timeout < 0:
		return setting.Invalid("bench.Config.Timeout", c.Timeout.String(), "must be positive")
	case c.MaxResponseBytes < 0:
		return setting.Invalid("bench.Config.MaxResponseBytes", fmt.Sprint(c.MaxResponseBytes), "must be at least 1")
	case c.GRPC.Connections < 0:
		return setting.Invalid("bench.Config.GRPC.Connections", fmt.Sprint(c.GRPC.Connections), "must be at least 1")
	case c.GRPC.Version < 0:
		return setting.Invalid("bench.Config.GRPC.Version", fmt.Sprint(c.GRPC.Version), "must be positive")
	}
	if c.RemoteWindow != nil && c.Profile != nil {
		return setting.Errorf("bench.Config.RemoteWindow", "bench.Config.RemoteWindow and bench.Config.Profile exclude each other: one window per run")
	}
	if c.Metrics != nil {
		if err := c.Metrics.check(); err != nil {
			return err
		}
	}
	if p := c.Profile; p != nil {
		switch o := p.Options; {
		case p.Delay < 0:
			return setting.Invalid("bench.Config.Profile.Delay", p.Delay.String(), "must not be negative")
		case o.Duration < 0:
			return setting.Invalid("profile.Options.Duration", o.Duration.String(), "must be positive")
		case o.Slack < 0:
			return setting.Invalid("profile.Options.Slack", o.Slack.String(), "must be positive")
		case o.Attempts < 0:
			return setting.Invalid("profile.Options.Attempts", fmt.Sprint(o.Attempts), "must be at least 1")
		}
	}
	return nil
}

// check reports the first setting of a sweep that is out of range, every
// step's level included, before any step runs.
func (sc *SweepConfig) check() error {
	switch {
	case math.IsNaN(sc.Tolerance) || sc.Tolerance < 0 || sc.Tolerance >= 1:
		return setting.Invalid("bench.SweepConfig.Tolerance", fmt.Sprintf("%g", sc.Tolerance), "must be between 0 and 1")
	case math.IsNaN(sc.Stability) || math.IsInf(sc.Stability, 0) || sc.Stability < 0:
		return setting.Invalid("bench.SweepConfig.Stability", fmt.Sprintf("%g", sc.Stability), "must be a positive number")
	case sc.Repeats < 0:
		return setting.Invalid("bench.SweepConfig.Repeats", fmt.Sprint(sc.Repeats), "must not be negative")
	}
	for _, level := range sc.Steps.Values {
		cfg := sc.Base
		if sc.Closed {
			if level != math.Trunc(level) {
				return setting.Invalid("load.Plan.Concurrency", fmt.Sprintf("step %g", level), "must be a whole number of requests")
			}
			cfg.Plan.Concurrency, cfg.Plan.Rate = int(level), 0
		} else {
			cfg.Plan.Rate, cfg.Plan.Concurrency = level, 0
		}
		if err := cfg.check(); err != nil {
			return err
		}
	}
	return nil
}
