package bench

import (
	"context"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/sim"
)

// A rate whose interval (10 s) is longer than the steady phase (5 s) is
// allowed, and the run still ends at the duration: not when the next
// request would be due (10 s), nor as soon as the first one returns.
// The bounds come from the plan: a slow machine makes the run longer, so
// only the upper bound could suffer, and it has the 5 s to the next
// scheduled send to spare.
func TestRateSlowerThanTheDurationEndsAtTheDuration(t *testing.T) {
	const duration, interval = 5 * time.Second, 10 * time.Second
	for _, engine := range restEngines() {
		t.Run(string(engine), func(t *testing.T) {
			srv := startSim(t, sim.Config{})
			start := time.Now()
			res, err := Run(context.Background(), Config{
				URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), RESTEngine: engine,
				Plan: load.Plan{Rate: float64(time.Second) / float64(interval), Duration: duration, MaxInflight: 10},
			})
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 1 {
				t.Fatalf("%d steady requests; want the one due at 0 s", res.Requests)
			}
			if took < duration || took >= duration+(interval-duration) {
				t.Fatalf("the run took %v; want at least the %v steady phase and less than the %v at which request 1 was due", took, duration, interval)
			}
		})
	}
}
