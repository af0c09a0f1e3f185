package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// bigTraceEvents is the size of the big trace: 140 MB on the wire, a few
// seconds of a busy GPU server's device tracer.
const bigTraceEvents = 10_000_000

// windowRun is what one profiled run shows of the profile window's cost.
type windowRun struct {
	lagMs      float64 // the open loop's worst delay behind its schedule
	windowP99  float64 // ms, requests sent in the window
	windowMax  float64
	outsideMax float64 // ms, requests sent outside it
	peakRSS    int64   // bytes, VmHWM over the run
	gcCPU      float64 // s, the garbage collector's CPU time over the run
	traceBytes int64
	res        *report.Result
}

func (r windowRun) String() string {
	return fmt.Sprintf("trace %.1f MB: max send lag %.1f ms, window p99 %.1f max %.1f ms, outside max %.1f ms, peak RSS %.0f MB, GC CPU %.3f s",
		float64(r.traceBytes)/1e6, r.lagMs, r.windowP99, r.windowMax, r.outsideMax, float64(r.peakRSS)/1e6, r.gcCPU)
}

// profiledOpenLoop runs an epoll open loop at 2000/s with a profile window
// whose trace has the sim's own events plus extraEvents.
func profiledOpenLoop(tb testing.TB, extraEvents int) windowRun {
	tb.Helper()
	srv := startSim(tb, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}, Profiler: sim.ProfilerConfig{TraceEvents: extraEvents}})
	prof := profiled(srv, tb.TempDir())
	prof.Options.Slack = time.Minute
	cfg := Config{URL: srv.PredictURL(), DataPath: writeFile(tb, "data.json", body), Timeout: 10 * time.Second, RESTEngine: load.EngineEpoll,
		Plan: load.Plan{Rate: 2000, WarmupDuration: 200 * time.Millisecond, Duration: 2 * time.Second, MaxInflight: 2000}, Profile: prof}
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(tb)
	gc0 := gcCPU()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	out := windowRun{gcCPU: gcCPU() - gc0, peakRSS: peakRSS(tb), res: res, lagMs: res.Client.MaxSendLagMs}
	if res.Profile == nil || res.Profile.Error != "" || len(res.Profile.Files) != 1 || res.Window == nil || res.Outside == nil {
		tb.Fatalf("profile %+v window %v outside %v", res.Profile, res.Window, res.Outside)
	}
	info, err := os.Stat(res.Profile.Files[0])
	if err != nil {
		tb.Fatal(err)
	}
	out.traceBytes = info.Size()
	out.windowP99, out.windowMax, out.outsideMax = res.Window.Latency.P99, res.Window.Latency.Max, res.Outside.Latency.Max
	return out
}

// gcCPU is the CPU time the garbage collector has taken so far.
func gcCPU() float64 {
	samples := []rtmetrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	rtmetrics.Read(samples)
	return samples[0].Value.Float64()
}

// resetPeakRSS starts the kernel's count of the process's peak RSS afresh
// (Linux 4.0 and later).
func resetPeakRSS(tb testing.TB) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// peakRSS is VmHWM in bytes.
func peakRSS(tb testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}

func skipUnlessMeasurable(tb testing.TB) {
	if runtime.GOOS != "linux" {
		tb.Skip("the epoll engine, clear_refs and VmHWM are Linux's")
	}
	if testing.Short() {
		tb.Skip("sends a 140 MB trace")
	}
	if raceDetector {
		tb.Skip("measures memory and the collector's CPU, which -race changes")
	}
}

// A trace of 10 M events read back the old way (decoded, then marshalled
// again for the file) took 2 GB and 2.5-2.9 s of the collector's CPU while
// the load ran, and stalled the event loops by up to 0.4 s. Received as a
// stream it costs about one copy and no collection worth the name. Peak
// memory and the collector's work are what a busy machine does not change
// much, so they are what is asserted, against the same run with the sim's
// small trace; send lag and latency are logged (and measured by
// BenchmarkProfileWindow).
func TestABigTraceDoesNotStallTheLoad(t *testing.T) {
	skipUnlessMeasurable(t)
	small := profiledOpenLoop(t, 0)
	big := profiledOpenLoop(t, bigTraceEvents)
	t.Logf("small %v", small)
	t.Logf("big   %v", big)
	if extra := big.peakRSS - small.peakRSS; extra > 2*big.traceBytes {
		t.Errorf("the big trace raised the peak RSS by %d MB, more than twice its %d MB", extra>>20, big.traceBytes>>20)
	}
	// The old way cost 1.4-2.9 s; 0.05-0.3 s was measured since, the more
	// on a busier machine (the sim's calls are collected too).
	if limit := max(5*small.gcCPU, 0.8); big.gcCPU > limit {
		t.Errorf("the collector took %.3f s of CPU in the run with the big trace, over %.3f s (5 times the run with a small trace, at least 0.8 s)", big.gcCPU, limit)
	}
	// The summary read the whole trace back: every kernel is counted.
	var kernels int64
	for _, op := range big.res.Profile.TopOps {
		if op.Plane == "/device:GPU:0" {
			kernels += op.Count
		}
	}
	if kernels != bigTraceEvents {
		t.Errorf("the summary counts %d kernels of %d: %+v", kernels, bigTraceEvents, big.res.Profile.TopOps)
	}
}

func TestATraceOverProfileMaxBytesKeepsTheLoadResults(t *testing.T) {
	srv := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{TraceEvents: 100_000}})
	prof := profiled(srv, t.TempDir())
	prof.Options.MaxBytes = 1 << 20
	out := filepath.Join(t.TempDir(), "result.json")
	cfg := Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Rate: 100, Duration: time.Second, MaxInflight: 50}, Profile: prof}
	res, err := Run(context.Background(), cfg)
	want := regexp.MustCompile(`the trace is larger than profile.Options.MaxBytes 1048576 \(the server sent \d+ bytes\); raise it`)
	if err != nil || res.Requests < 100 || !want.MatchString(res.Profile.Error) || len(res.Profile.Files) != 0 {
		t.Fatalf("err %v, %d requests, profile error %q, files %v", err, res.Requests, res.Profile.Error, res.Profile.Files)
	}
	writeResult(t, res, out)
	back, err := report.ReadResult(out)
	if err != nil || back.Requests != res.Requests || !want.MatchString(back.Profile.Error) {
		t.Fatalf("result.json: %v", err)
	}
	var text strings.Builder
	report.WriteSummary(&text, res)
	if !want.MatchString(text.String()) {
		t.Fatalf("summary:\n%s", text.String())
	}
	// Only the client's trace is there: nothing of the server's, no
	// temporary file.
	entries, _ := os.ReadDir(profile.Store{LogDir: prof.Options.LogDir, Run: res.Profile.Run}.Dir())
	if len(entries) != 1 || entries[0].Name() != profile.ClientFile {
		t.Fatalf("the run directory holds %v", entries)
	}
}

// BenchmarkProfileWindow measures what a profile window costs the load,
// with the sim's small trace and with a 140 MB one:
//
//	go test -run XXX -bench ProfileWindow -benchtime 3x ./bench
func BenchmarkProfileWindow(b *testing.B) {
	skipUnlessMeasurable(b)
	for _, c := range []struct {
		name  string
		extra int
	}{{"small-trace", 0}, {"big-trace", bigTraceEvents}} {
		b.Run(c.name, func(b *testing.B) {
			var sum windowRun
			for i := 0; i < b.N; i++ {
				r := profiledOpenLoop(b, c.extra)
				sum.lagMs += r.lagMs
				sum.windowP99 += r.windowP99
				sum.windowMax += r.windowMax
				sum.outsideMax += r.outsideMax
				sum.gcCPU += r.gcCPU
				sum.peakRSS = max(sum.peakRSS, r.peakRSS)
			}
			n := float64(b.N)
			b.ReportMetric(sum.lagMs/n, "lag-ms")
			b.ReportMetric(sum.windowP99/n, "window-p99-ms")
			b.ReportMetric(sum.windowMax/n, "window-max-ms")
			b.ReportMetric(sum.outsideMax/n, "outside-max-ms")
			b.ReportMetric(sum.gcCPU/n*1000, "gc-cpu-ms")
			b.ReportMetric(float64(sum.peakRSS)/1e6, "peak-rss-MB")
		})
	}
}
