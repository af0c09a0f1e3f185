package bench

import (
	"fmt"
	"math"
)

// check reports the first setting of c that is out of range, naming its
// flag. Zero values keep their documented defaults.
func (c *Config) check() error {
	if err := c.Plan.Check(); err != nil {
		return err
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("--timeout %v: must be positive", c.Timeout)
	case c.MaxResponseBytes < 0:
		return fmt.Errorf("--max-response %d: must be at least 1", c.MaxResponseBytes)
	case c.GRPC.Connections < 0:
		return fmt.Errorf("--connections %d: must be at least 1", c.GRPC.Connections)
	case c.GRPC.Version < 0:
		return fmt.Errorf("--model-version %d: must be positive", c.GRPC.Version)
	}
	if p := c.Profile; p != nil {
		switch o := p.Options; {
		case p.Delay < 0:
			return fmt.Errorf("--profile-delay %v: must not be negative", p.Delay)
		case o.Duration < 0:
			return fmt.Errorf("--profile-duration %v: must be positive", o.Duration)
		case o.Slack < 0:
			return fmt.Errorf("--profile-timeout %v: must be positive", o.Slack)
		case o.Attempts < 0:
			return fmt.Errorf("--profile-attempts %d: must be at least 1", o.Attempts)
		}
	}
	return nil
}

// check reports the first setting of a sweep that is out of range, every
// step's level included, before any step runs.
func (sc *SweepConfig) check() error {
	switch {
	case math.IsNaN(sc.Tolerance) || sc.Tolerance < 0 || sc.Tolerance >= 1:
		return fmt.Errorf("--search-tolerance %g: must be between 0 and 1", sc.Tolerance)
	case math.IsNaN(sc.Stability) || math.IsInf(sc.Stability, 0) || sc.Stability < 0:
		return fmt.Errorf("--step-stability %g: must be a positive number", sc.Stability)
	case sc.Repeats < 0:
		return fmt.Errorf("--step-repeats %d: must not be negative", sc.Repeats)
	}
	for _, level := range sc.Steps.Values {
		cfg := sc.Base
		if sc.Closed {
			if level != math.Trunc(level) {
				return fmt.Errorf("--concurrency step %g: must be a whole number of requests", level)
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
