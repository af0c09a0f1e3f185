package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/sim"
)

// bufferLog is an interval log kept in memory.
type bufferLog struct{ bytes.Buffer }

func (*bufferLog) Close() error { return nil }

// An open loop at 200 requests/s against the embedded simulator on
// 127.0.0.1 (a random free port), driven from Go: the payload comes from a
// reader, the Result comes back in memory, and the HdrHistogram interval
// log streams to a writer the caller gives. bench.Run writes no files.
func ExampleRun() {
	srv, err := sim.StartLoopback(sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	var intervals bufferLog
	res, err := bench.Run(context.Background(), bench.Config{
		URL:      srv.PredictURL(),
		DataPath: "-", // read the payload from Stdin
		Stdin:    strings.NewReader(`{"instances": [[1.0, 2.0, 3.0, 4.0]]}`),
		Timeout:  5 * time.Second,
		Plan:     load.Plan{Rate: 200, Requests: 100, MaxInflight: 50},
		IntervalLog: func() (io.WriteCloser, error) {
			return &intervals, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Loop, "loop at", res.Rate, "req/s, latency from", res.LatencyFrom)
	fmt.Println("requests:", res.Requests, "errors:", len(res.Errors))
	first, _ := bufio.NewReader(&intervals).ReadString('\n')
	fmt.Println("interval log written:", first == "#[Logged with loadprof "+bench.Version+"]\n")
	// Output:
	// open loop at 200 req/s, latency from intended_send
	// requests: 100 errors: 0
	// interval log written: true
}
