package load_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/sim"
)

// A closed loop of 4 requests in flight against the embedded simulator on
// 127.0.0.1 (a random free port), driven from Go.
func ExampleRun() {
	srv, err := sim.StartLoopback(sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	rest, err := load.NewREST(load.RESTConfig{
		URL:     srv.PredictURL(),
		Bodies:  [][]byte{[]byte(`{"instances": [[1.0, 2.0, 3.0, 4.0]]}`)},
		Timeout: 5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rest.Close()

	rec := load.NewRecorder()
	plan := load.Plan{Concurrency: 4, WarmupRequests: 20, Requests: 200}
	timing, err := load.Run(context.Background(), plan, rest, load.PickerFunc(func() int { return 0 }), rec)
	if err != nil {
		log.Fatal(err)
	}
	snap := rec.Snapshot(true)
	fmt.Println("warm-up requests:", snap.Warmup.Requests)
	fmt.Println("steady requests:", snap.Steady.Requests, "errors:", len(snap.Steady.Errors))
	fmt.Println("at least the simulated 1 ms:", load.ValueAtPercentile(snap.Steady.Histogram, 50) >= 1000)
	fmt.Println("interrupted:", timing.Interrupted)
	// Output:
	// warm-up requests: 20
	// steady requests: 200 errors: 0
	// at least the simulated 1 ms: true
	// interrupted: false
}

// A setting out of range is a *load.SettingError that names the setting by
// its Go name; a command maps the name to its own flag.
func ExamplePlan_Check() {
	plan := load.Plan{Rate: -1, Duration: time.Second}
	err := plan.Check()
	var se *load.SettingError
	if errors.As(err, &se) {
		fmt.Println(se.Setting)
		fmt.Println(err)
	}
	// Output:
	// load.Plan.Rate
	// load.Plan.Rate -1: must be positive
}
