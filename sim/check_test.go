package sim

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestStartRefusesLatencySettingsOutOfRange(t *testing.T) {
	for want, l := range map[string]Latency{
		"sim.Latency.ErrorStatus 42":                {ErrorStatus: 42},
		"sim.Latency.ErrorStatus 600":               {ErrorStatus: 600},
		"sim.Latency.Workers -1":                    {Workers: -1},
		"sim.Latency.ErrorRate NaN":                 {ErrorRate: math.NaN()},
		"sim.Latency.ErrorRate 1.5":                 {ErrorRate: 1.5},
		"sim.Latency.Fixed, sim.Latency.Jitter":     {Fixed: -1},
		"sim.Latency.WhileProfiling -1ms: must not": {WhileProfiling: -time.Millisecond},
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
