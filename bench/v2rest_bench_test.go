package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/sim"
)

// simProcessEnv makes the test binary a simulator process for the
// benchmark below, so that the CPU time it measures is the client's alone.
const simProcessEnv = "LOADPROF_BENCH_SIM_PROCESS"

// TestSimProcess is the simulator process of BenchmarkRESTProtocolCPU: it
// prints the simulator's REST address and serves until its stdin closes.
// Run any other way it does nothing.
func TestSimProcess(t *testing.T) {
	if os.Getenv(simProcessEnv) == "" {
		t.Skip("the benchmark's simulator process")
	}
	// A fixed service time longer than either protocol's parsing makes the
	// client's wake-ups alike: a server that answers one protocol a few
	// microseconds slower would otherwise change how many answers each
	// epoll wake-up collects, which is the server's doing.
	srv, err := sim.Start(sim.Config{REST: "127.0.0.1:0", Latency: sim.Latency{Fixed: 3 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fmt.Println(srv.RESTAddr())
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// startSimProcess starts TestSimProcess in a child process and returns its
// REST address.
func startSimProcess(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSimProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), simProcessEnv+"=1", "GOMAXPROCS=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the simulator process did not start: %v", err)
	}
	return strings.TrimSpace(line)
}

func clientCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRESTProtocolCPU is loadprof's CPU time per request (cpu-us/req;
// the simulator runs in another process) for TF Serving's REST protocol,
// V2 JSON and V2 with the binary tensor extension, the same data.json, on
// each engine, closed loop on 32 connections. The protocols take turns in
// rounds within one benchmark, so that they share the machine's state;
// v2json/tf and v2binary/tf are the ratios of their CPU per request
// (median rounds), which should be within 10% of 1.
func BenchmarkRESTProtocolCPU(b *testing.B) {
	addr := startSimProcess(b)
	data := `{"instances": [[1, 2, 3, 4], [5, 6, 7, 8]]}`
	set, err := payloads.Load(writeFile(b, "data.json", data), payloads.Options{})
	if err != nil {
		b.Fatal(err)
	}
	protocols := []struct {
		name, url string
		binary    bool
	}{
		{"tf", "http://" + addr + "/v1/models/test_model:predict", false},
		{"v2json", "http://" + addr + "/v2/models/test_model/infer", false},
		{"v2binary", "http://" + addr + "/v2/models/test_model/infer", true},
	}
	for _, engine := range restEngines() {
		b.Run(string(engine), func(b *testing.B) {
			transports := make([]load.Transport, len(protocols))
			for i, p := range protocols {
				t, err := prepareREST(context.Background(), Config{URL: p.url, V2Binary: p.binary, RESTEngine: engine, Timeout: 10 * time.Second}, set, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer t.tr.Close()
				if err := t.preflight(context.Background()); err != nil {
					b.Fatal(err)
				}
				transports[i] = t.tr
			}
			// Rounds rotate the order; each protocol's figure is its
			// median round, which a neighbour's burst on a shared machine
			// moves less than a sum.
			const rounds = 9
			per := int64(b.N/rounds + 1)
			perReq := make([][]float64, len(protocols))
			b.ResetTimer()
			for round := 0; round < rounds; round++ {
				for k := range transports {
					i := (k + round) % len(transports)
					rec := load.NewRecorder()
					before := clientCPU(b)
					if _, err := load.Run(context.Background(), load.Plan{Concurrency: 32, Requests: per}, transports[i], set, rec); err != nil {
						b.Fatal(err)
					}
					perReq[i] = append(perReq[i], float64((clientCPU(b)-before).Nanoseconds())/1e3/float64(per))
					if s := rec.Snapshot(false).Steady; len(s.Errors) != 0 {
						b.Fatalf("%s: errors %v %v", protocols[i].name, s.Errors, rec.Snapshot(false).FirstErrors)
					}
				}
			}
			b.StopTimer()
			medians := make([]float64, len(protocols))
			for i, p := range protocols {
				sort.Float64s(perReq[i])
				medians[i] = perReq[i][rounds/2]
				b.ReportMetric(medians[i], p.name+"-cpu-us/req")
			}
			b.ReportMetric(medians[1]/medians[0], "v2json/tf")
			b.ReportMetric(medians[2]/medians[0], "v2binary/tf")
		})
	}
}
