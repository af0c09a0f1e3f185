package profile_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/sim"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func startSim(t *testing.T, cfg sim.Config) (*sim.Server, *grpc.ClientConn) {
	t.Helper()
	srv, err := sim.StartLoopback(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, conn
}

func TestEmptyTraceIsRetriedAndReported(t *testing.T) {
	srv, conn := startSim(t, sim.Config{})
	res, err := profile.Capture(context.Background(), conn, srv.GRPCAddr(), profile.Options{Duration: 200 * time.Millisecond, LogDir: t.TempDir(), Attempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !res.EmptyTrace || res.Attempts != 3 || res.Saved != profile.SavedNone || len(res.Files) != 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestCancelEndsTheWindowThroughTerminateAndKeepsTheData(t *testing.T) {
	srv, conn := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	stop := make(chan struct{})
	defer close(stop)
	go func() { // some calls for the window to record
		for {
			select {
			case <-stop:
				return
			default:
				predict(srv)
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	res, err := profile.Capture(ctx, conn, srv.GRPCAddr(), profile.Options{Duration: 10 * time.Second, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the 10 s window took %v after a cancel at 0.5 s", took)
	}
	if !res.Terminated || res.Saved != profile.SavedLocal || res.EmptyTrace {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(res.Files[0]); err != nil {
		t.Fatal(err)
	}
}

// predict sends one predict call to the simulator.
func predict(srv *sim.Server) {
	resp, err := http.Post(srv.PredictURL(), "application/json", strings.NewReader(`{"instances": [[1, 2, 3, 4]]}`))
	if err == nil {
		resp.Body.Close()
	}
}

// capturePadded captures a window of the sim, whose trace has extra events,
// while calls keep coming.
func capturePadded(t *testing.T, extra int, opts profile.Options) (*profile.Result, error) {
	t.Helper()
	srv, conn := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{TraceEvents: extra}})
	underLoad(t, srv)
	opts.Duration = 300 * time.Millisecond
	return profile.Capture(context.Background(), conn, srv.GRPCAddr(), opts)
}

func TestCaptureStreamsTheTraceToDisk(t *testing.T) {
	const extra = 50_000
	logdir := t.TempDir()
	res, err := capturePadded(t, extra, profile.Options{LogDir: logdir})
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(res.Files[0])
	if err != nil || res.Saved != profile.SavedLocal || len(res.Files) != 1 || info.Size() != res.TraceBytes || res.TraceBytes < extra*10 {
		t.Fatalf("result %+v: %v", res, err)
	}
	sum, err := profile.SummarizeFiles(res.TraceFiles())
	if err != nil {
		t.Fatal(err)
	}
	var kernels, hostOps int64
	for _, op := range sum.Ops {
		switch op.Plane {
		case "/device:GPU:0":
			kernels += op.Count
		case "/host:CPU":
			hostOps += op.Count
		}
	}
	if kernels != extra || hostOps == 0 {
		t.Fatalf("%d kernel events (want %d), %d host ops: %+v", kernels, extra, hostOps, sum.Ops)
	}
	if entries, _ := os.ReadDir(filepath.Dir(res.Files[0])); len(entries) != 1 {
		t.Fatalf("the run directory holds %d files", len(entries))
	}
}

func TestCaptureRefusesATraceOverMaxBytes(t *testing.T) {
	logdir := t.TempDir()
	res, err := capturePadded(t, 50_000, profile.Options{LogDir: logdir, MaxBytes: 64 << 10})
	if err == nil || !regexp.MustCompile(`the trace is larger than profile.Options.MaxBytes 65536 \(the server sent \d+ bytes\); raise it$`).MatchString(err.Error()) {
		t.Fatalf("got %v", err)
	}
	if res.Saved != profile.SavedNone || len(res.Files) != 0 {
		t.Fatalf("result %+v", res)
	}
	if entries, _ := os.ReadDir(profile.Store{LogDir: logdir, Run: res.Run}.Dir()); len(entries) != 0 {
		t.Fatalf("the run directory holds %d files", len(entries))
	}
}

// underLoad calls the simulator until the test ends, so that its
// profiler has something to trace.
func underLoad(t *testing.T, srv *sim.Server) {
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				predict(srv)
			}
		}
	}()
}

func TestTwoCapturesUnderOneRunNameGetARunEach(t *testing.T) {
	srv, conn := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	underLoad(t, srv)
	logdir := t.TempDir()
	opts := profile.Options{Duration: 200 * time.Millisecond, LogDir: logdir, Run: "2026_11_25_10_00_00"} // as two captures in one second name it
	var runs []string
	for range 2 {
		res, err := profile.Capture(context.Background(), conn, srv.GRPCAddr(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Saved != profile.SavedLocal {
			t.Fatalf("result %+v", res)
		}
		if got := filepath.Dir(res.Files[0]); got != (profile.Store{LogDir: logdir, Run: res.Run}).Dir() {
			t.Fatalf("trace in %s, run %s", got, res.Run)
		}
		runs = append(runs, res.Run)
	}
	if runs[0] != opts.Run || runs[1] != opts.Run+"_2" {
		t.Fatalf("runs %v, want %s and %s_2", runs, opts.Run, opts.Run)
	}
}

func TestATraceThatCannotBeWrittenIsReportedAsCapturedNotWritten(t *testing.T) {
	srv, conn := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	underLoad(t, srv)
	logdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(logdir, "plugins"), nil, 0o644); err != nil { // a file in the way
		t.Fatal(err)
	}
	res, err := profile.Capture(context.Background(), conn, srv.GRPCAddr(), profile.Options{Duration: 200 * time.Millisecond, LogDir: logdir})
	var write *outfile.Error
	if !errors.As(err, &write) || !strings.Contains(err.Error(), "the trace was captured but could not be written") {
		t.Fatalf("err %v: want an *outfile.Error saying the trace was captured", err)
	}
	if res.Saved != profile.SavedNone || len(res.NotWritten) != 1 || filepath.Dir(res.NotWritten[0]) != (profile.Store{LogDir: logdir, Run: res.Run}).Dir() {
		t.Fatalf("result %+v: want its path under the logdir as not written", res)
	}
}
