package sim

import (
	"math"
	"strings"
	"testing"
)

func TestStartRefusesLatencySettingsOutOfRange(t *testing.T) {
	for want, l := range map[string]Latency{
		"--error-status 42":   {ErrorStatus: 42},
		"--error-status 600":  {ErrorStatus: 600},
		"--workers -1":        {Workers: -1},
		"--error-rate NaN":    {ErrorRate: math.NaN()},
		"--error-rate 1.5":    {ErrorRate: 1.5},
		"--latency, --jitter": {Fixed: -1},
	} {
		s, err := StartLoopback(Config{Latency: l})
		if err == nil {
			s.Close()
			t.Errorf("%+v: started", l)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", l, err, want)
		}
	}
}
