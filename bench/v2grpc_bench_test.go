package bench

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
)

// BenchmarkGRPCProtocolCPU compares the CPU a request costs loadprof over
// TF Serving's gRPC protocol and over V2's (typed contents, and raw
// contents against tensor_content), in one run, against one simulator. The
// simulator runs in its own process, so that cpu-ns/req is loadprof's
// alone (this process); sim-cpu-ns/req is the simulator's. Each request
// carries mixedRows (two examples of four inputs: floats, an int, strings).
//
//	go test -run '^$' -bench GRPCProtocolCPU -count 5 ./bench
func BenchmarkGRPCProtocolCPU(b *testing.B) {
	useV2Conversion(b, testV2Request)
	bin := filepath.Join(b.TempDir(), "loadprof")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/loadprof").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	addr, simPID := startSimProcess(b, bin, "--input", "x:float:-1,3", "--input", "ids:int64:-1", "--input", "text:string:-1", "--input", "image:string:-1")
	set, err := payloads.Load(writeFile(b, "data.json", mixedRows), payloads.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		protocol string
		bytes    bool
	}{
		{"tf", ProtocolTFServing, false},
		{"v2", ProtocolV2, false},
		{"tf-tensor-content", ProtocolTFServing, true},
		{"v2-raw", ProtocolV2, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := Config{GRPC: GRPCTarget{Addr: addr, Model: "test_model", Protocol: c.protocol, TensorContent: c.bytes, Connections: 2}, Timeout: 10 * time.Second}
			t, err := prepareGRPC(context.Background(), cfg, set, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer t.tr.Close()
			rec := load.NewRecorder()
			self, sim := cpuOfSelf(b), cpuOfProcess(b, simPID)
			b.ResetTimer()
			if _, err := load.Run(context.Background(), load.Plan{Concurrency: 16, Requests: int64(b.N)}, t.tr, set, rec); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuOfSelf(b)-self)/float64(b.N), "cpu-ns/req")
			b.ReportMetric(float64(cpuOfProcess(b, simPID)-sim)/float64(b.N), "sim-cpu-ns/req")
			if s := rec.Snapshot(false).Steady; len(s.Errors) != 0 || s.Requests != int64(b.N) {
				b.Fatalf("%d answers, errors %v", s.Requests, s.Errors)
			}
		})
	}
}

// startSimProcess runs `loadprof sim` with no service time on a free
// loopback port, and returns its gRPC address and process id.
func startSimProcess(b *testing.B, bin string, args ...string) (string, int) {
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
