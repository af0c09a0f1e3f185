package bench

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
)

// BenchmarkGRPCProtocolCPU compares the CPU a request costs loadprof over
// TF Serving's gRPC protocol and over V2's, against one simulator, in one
// run: "typed" is Predict with typed fields against ModelInfer with typed
// contents, "bytes" is tensor_content against raw_input_contents. The
// same data.json drives both: "mixed" is mixedRows (two examples of four
// inputs: floats, an int, strings), "2KiB" two rows of 256 floats
// (restBenchPayloads). The protocols take turns in rounds (so that the
// machine's other load falls on both alike); reported are each protocol's
// median round (cpu-ns/req), v2/tf as the median of the rounds' ratios
// with their quartiles (v2/tf-q1, v2/tf-q3), the simulator's own
// ratio over all rounds (sim-v2/tf; it runs in its own process, so that
// the rest are loadprof's CPU alone), and the 1-minute load average.
//
//	go test -run '^$' -bench GRPCProtocolCPU -benchtime 20000x ./bench
func BenchmarkGRPCProtocolCPU(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "loadprof")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/loadprof").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	payloads2KiB := restBenchPayloads()[1]
	for _, p := range []struct {
		name, data string
		inputs     []string
	}{
		{"mixed", mixedRows, []string{"--input", "x:float:-1,3", "--input", "ids:int64:-1", "--input", "text:string:-1", "--input", "image:string:-1"}},
		{payloads2KiB.name, payloads2KiB.data, []string{"--input", "x:float:-1,256"}},
	} {
		addr, simPID := startLoadprofSim(b, bin, p.inputs...)
		set, err := payloads.Load(writeFile(b, "data.json", p.data), payloads.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name  string
			bytes bool
		}{{"typed", false}, {"bytes", true}} {
			b.Run(p.name+"/"+c.name, func(b *testing.B) {
				var trs [2]load.Transport
				for i, protocol := range []string{ProtocolTFServing, ProtocolV2} {
					cfg := Config{GRPC: GRPCTarget{Addr: addr, Model: "test_model", Protocol: protocol, TensorContent: c.bytes, Connections: 2}, Timeout: 10 * time.Second}
					t, err := prepareGRPC(context.Background(), cfg, set, nil)
					if err != nil {
						b.Fatal(err)
					}
					defer t.tr.Close()
					trs[i] = t.tr
				}
				const rounds = 15
				n := int64(b.N/rounds + 1)
				var self [2][]float64
				var sim [2]time.Duration
				b.ResetTimer()
				for r := 0; r < rounds; r++ {
					for k := range trs {
						i := (k + r) % len(trs)
						rec := load.NewRecorder()
						s0, m0 := cpuOfSelf(b), cpuOfProcess(b, simPID)
						if _, err := load.Run(context.Background(), load.Plan{Concurrency: 16, Requests: n}, trs[i], set, rec); err != nil {
							b.Fatal(err)
						}
						self[i] = append(self[i], float64(cpuOfSelf(b)-s0)/float64(n))
						sim[i] += cpuOfProcess(b, simPID) - m0
						if s := rec.Snapshot(false).Steady; len(s.Errors) != 0 || s.Requests != n {
							b.Fatalf("%d answers of %d, errors %v", s.Requests, n, s.Errors)
						}
					}
				}
				b.StopTimer()
				ratios := make([]float64, rounds)
				for r := range ratios {
					ratios[r] = self[1][r] / self[0][r]
				}
				b.ReportMetric(median(self[0]), "tf-cpu-ns/req")
				b.ReportMetric(median(self[1]), "v2-cpu-ns/req")
				b.ReportMetric(median(ratios), "v2/tf")
				sort.Float64s(ratios)
				b.ReportMetric(ratios[(rounds-1)/4], "v2/tf-q1")
				b.ReportMetric(ratios[3*(rounds-1)/4], "v2/tf-q3")
				if sim[0] > 0 {
					b.ReportMetric(float64(sim[1])/float64(sim[0]), "sim-v2/tf")
				}
				if load1, ok := loadAverage(); ok {
					b.ReportMetric(load1, "load1")
				}
			})
		}
	}
}

// startLoadprofSim runs `loadprof sim` with no service time on a free
// loopback port, and returns its gRPC address and process id.
func startLoadprofSim(b *testing.B, bin string, args ...string) (string, int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"sim", "--rest", "", "--grpc", addr, "--latency", "0", "--jitter", "0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// It says where gRPC listens once it does.
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if strings.Contains(lines.Text(), "gRPC: "+addr) {
			go func() {
				for lines.Scan() {
				}
			}()
			return addr, cmd.Process.Pid
		}
	}
	b.Fatalf("loadprof sim ended before it served gRPC on %s", addr)
	return "", 0
}

// cpuOfSelf is the user and system CPU time of this process so far.
func cpuOfSelf(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOfProcess is the user and system CPU time of process pid so far, from
// /proc (clock ticks of 10 ms: good over many requests only).
func cpuOfProcess(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Skipf("the simulator's CPU time: %v", err)
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after it. utime and stime are fields 14 and 15.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
