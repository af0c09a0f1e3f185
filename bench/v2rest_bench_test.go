package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
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
	// epoll wake-up collects, which is the server's doing. The input takes
	// rows of any length, for each of the benchmark's payloads.
	sig := sim.DefaultSignature()
	sig.Inputs[0].Shape = []int64{-1, -1}
	srv, err := sim.Start(sim.Config{REST: "127.0.0.1:0", Signature: sig, Latency: sim.Latency{Fixed: 3 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fmt.Println(srv.RESTAddr())
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// startSimProcess starts TestSimProcess in a child process and returns its
// REST address and process id.
func startSimProcess(b *testing.B) (string, int) {
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
	return strings.TrimSpace(line), cmd.Process.Pid
}

// clientUsage is this process's CPU time and context switches so far.
func clientUsage(b *testing.B) (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw
}

// restBenchPayloads are the data.json files of BenchmarkRESTProtocolCPU:
// TF Serving bodies, which drive every protocol (V2 converts them once
// with the model's metadata). "small" is two rows of four floats; "2KiB"
// is two rows of 256, a tensor of 2 KiB as FP32 (some 3.6 KB as JSON),
// the size of a small model's feature vector or embedding.
func restBenchPayloads() []struct{ name, data string } {
	var rows strings.Builder
	rows.WriteString(`{"instances": [`)
	for r := 0; r < 2; r++ {
		if r > 0 {
			rows.WriteString(", ")
		}
		rows.WriteString("[")
		for i := 0; i < 256; i++ {
			if i > 0 {
				rows.WriteString(", ")
			}
			fmt.Fprintf(&rows, "%.4f", float64((r*256+i)*7919%10007)/10007)
		}
		rows.WriteString("]")
	}
	rows.WriteString("]}")
	return []struct{ name, data string }{
		{"small", `{"instances": [[1, 2, 3, 4], [5, 6, 7, 8]]}`},
		{"2KiB", rows.String()},
	}
}

// BenchmarkRESTProtocolCPU is loadprof's CPU time per request (cpu-us/req;
// the simulator runs in another process) for TF Serving's REST protocol,
// V2 JSON and V2 with the binary tensor extension, each data.json of
// restBenchPayloads driving all three, on each engine, in a closed loop on
// 8 connections and in an open loop at 2000 requests/s. The simulator
// answers each request in a fixed 3 ms, so that in the closed loop its
// pace is alike for every protocol as long as it keeps up (pace-v2json/tf
// and pace-v2binary/tf: the median ratio of requests/s; far from 1 the
// server, not the client, set how many answers a wake-up collected); in
// the open loop the schedule sets the wake-ups, and the figures are the
// client's protocol cost alone, as long as the simulator keeps up: the
// fraction of requests that waited for one of the 64 slots is reported
// (-saturated). The protocols take turns in rounds within one benchmark
// (the order rotating), so that they share the machine's state. Reported:
// each protocol's median round (cpu-us/req) and client context switches
// per request (csw/req: the wake-ups, which the server's pace sets and
// which cost most of the CPU); v2json/tf and v2binary/tf, the median of
// the rounds' ratios, with their quartiles (-q1, -q3); the
// simulator's own CPU ratio (sim-v2json/tf, sim-v2binary/tf, over all
// rounds); and the 1-minute load average at the end (load1), since a
// busy machine moves every figure. The goal (issue #18) is v2json/tf
// within 10% of 1: the same data.json in either protocol's JSON. v2binary
// sends the tensor as raw bytes, half the JSON's size at 2 KiB, and is
// cheaper there by as much as the bytes it saves; it is reported beside,
// not held to the goal.
//
//	go test -run '^$' -bench RESTProtocolCPU -benchtime 20000x ./bench
func BenchmarkRESTProtocolCPU(b *testing.B) {
	addr, simPID := startSimProcess(b)
	protocols := []struct {
		name, url string
		binary    bool
	}{
		{"tf", "http://" + addr + "/v1/models/test_model:predict", false},
		{"v2json", "http://" + addr + "/v2/models/test_model/infer", false},
		{"v2binary", "http://" + addr + "/v2/models/test_model/infer", true},
	}
	loops := []struct {
		name string
		plan load.Plan
	}{
		// 8 connections at the simulator's fixed 3 ms is some 2,700
		// requests/s, a pace the simulator keeps for every protocol and
		// payload (at 32 it fell behind on V2 JSON's 2 KiB bodies, which
		// then collected fewer answers a wake-up than TF's: the server's
		// pace, not the client's cost). -pace reports how alike it was.
		{"closed", load.Plan{Concurrency: 8}},
		// Meant to be below the simulator's pace for every protocol and
		// payload, so that the schedule, not the answers, wakes the
		// client; -saturated says how often it was not (a busy machine
		// slows the simulator's JSON parsing most).
		{"open", load.Plan{Rate: 2000, MaxInflight: 64}},
	}
	for _, engine := range restEngines() {
		for _, loop := range loops {
			for _, payload := range restBenchPayloads() {
				b.Run(string(engine)+"/"+loop.name+"/"+payload.name, func(b *testing.B) {
					set, err := payloads.Load(writeFile(b, "data.json", payload.data), payloads.Options{})
					if err != nil {
						b.Fatal(err)
					}
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
					// Each protocol's figure is its median round, and each
					// ratio the median of the rounds' ratios, which a
					// neighbour's burst on a shared machine moves less than a
					// sum.
					const rounds = 15
					per := int64(b.N/rounds + 1)
					cpu := make([][]float64, len(protocols))
					csw := make([][]float64, len(protocols))
					simCPU := make([]time.Duration, len(protocols))
					saturated := make([]int64, len(protocols))
					pace := make([][]float64, len(protocols)) // requests/s
					b.ResetTimer()
					for round := 0; round < rounds; round++ {
						for k := range transports {
							i := (k + round) % len(transports)
							rec := load.NewRecorder()
							cpu0, csw0 := clientUsage(b)
							sim0 := cpuOfProcess(b, simPID)
							start := time.Now()
							// The label splits a -cpuprofile by protocol
							// (go tool pprof -tagfocus protocol=v2json).
							pprof.Do(context.Background(), pprof.Labels("protocol", protocols[i].name), func(ctx context.Context) {
								plan := loop.plan
								plan.Requests = per
								var timing load.Timing
								timing, err = load.Run(ctx, plan, transports[i], set, rec)
								saturated[i] += timing.Saturated
							})
							if err != nil {
								b.Fatal(err)
							}
							pace[i] = append(pace[i], float64(per)/time.Since(start).Seconds())
							cpu1, csw1 := clientUsage(b)
							simCPU[i] += cpuOfProcess(b, simPID) - sim0
							cpu[i] = append(cpu[i], float64((cpu1-cpu0).Nanoseconds())/1e3/float64(per))
							csw[i] = append(csw[i], float64(csw1-csw0)/float64(per))
							if s := rec.Snapshot(false).Steady; len(s.Errors) != 0 || s.Requests != per {
								b.Fatalf("%s: %d answers of %d, errors %v %v", protocols[i].name, s.Requests, per, s.Errors, rec.Snapshot(false).FirstErrors)
							}
						}
					}
					b.StopTimer()
					for i, p := range protocols {
						b.ReportMetric(median(cpu[i]), p.name+"-cpu-us/req")
						b.ReportMetric(median(csw[i]), p.name+"-csw/req")
						if loop.plan.Rate > 0 {
							b.ReportMetric(float64(saturated[i])/float64(per*rounds), p.name+"-saturated")
						}
						if i == 0 {
							continue
						}
						ratios := make([]float64, rounds)
						paces := make([]float64, rounds)
						for r := range ratios {
							ratios[r] = cpu[i][r] / cpu[0][r]
							paces[r] = pace[i][r] / pace[0][r]
						}
						b.ReportMetric(median(paces), "pace-"+p.name+"/tf")
						sort.Float64s(ratios)
						b.ReportMetric(median(ratios), p.name+"/tf")
						b.ReportMetric(ratios[(rounds-1)/4], p.name+"/tf-q1")
						b.ReportMetric(ratios[3*(rounds-1)/4], p.name+"/tf-q3")
						if simCPU[0] > 0 {
							b.ReportMetric(float64(simCPU[i])/float64(simCPU[0]), "sim-"+p.name+"/tf")
						}
					}
					if load1, ok := loadAverage(); ok {
						b.ReportMetric(load1, "load1")
					}
				})
			}
		}
	}
}

// median is the middle of values (the mean of the middle two for an
// even count).
func median(values []float64) float64 {
	values = slices.Clone(values)
	sort.Float64s(values)
	n := len(values)
	if n%2 == 1 {
		return values[n/2]
	}
	return (values[n/2-1] + values[n/2]) / 2
}

// loadAverage is the machine's 1-minute load average, from /proc/loadavg.
func loadAverage() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil
}
