package main

import (
	"fmt"
	"math"
	"time"
)

// Checks of numeric flags, each an error naming the flag and its value,
// or nil. firstError picks the first.

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func atLeast[N int | int64](flag string, v, min N) error {
	if v < min {
		return fmt.Errorf("%s %d: must be at least %d", flag, v, min)
	}
	return nil
}

func atMost[N int | int64](flag string, v, max N, why string) error {
	if v > max {
		return fmt.Errorf("%s %d: must be at most %d%s", flag, v, max, why)
	}
	return nil
}

func positiveDuration(flag string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s %v: must be positive", flag, d)
	}
	return nil
}

func nonNegativeDuration(flag string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s %v: must not be negative", flag, d)
	}
	return nil
}

// within checks lo <= v <= hi, NaN and infinities excluded.
func within(flag string, v, lo, hi float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		return fmt.Errorf("%s %g: must be between %g and %g", flag, v, lo, hi)
	}
	return nil
}

func positiveFinite(flag string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return fmt.Errorf("%s %g: must be a positive number", flag, v)
	}
	return nil
}
