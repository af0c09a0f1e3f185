package cluster

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/sim"
)

// A fetch cut short does not end the serving: the results stay until a
// fetcher has them whole and says so.
func TestServeResultsKeepsServingUntilTheFetchIsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "result.json"), []byte(`{"requests": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	base := "http://" + ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- ServeResults(context.Background(), ln, testToken, dir, time.Minute, nil) }()
	call := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp
	}
	resp := call(http.MethodPost, pathResultsAck)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("an acknowledgement before any fetch: %d, want 409", resp.StatusCode)
	}
	// A fetcher that reads 20 bytes and hangs up.
	resp = call(http.MethodGet, pathResults)
	io.CopyN(io.Discard, resp.Body, 20)
	resp.Body.Close()
	select {
	case err := <-done:
		t.Fatalf("serving ended after a fetch cut short: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	resp = call(http.MethodGet, pathResults)
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(gz).Next()
	if err != nil || h.Name != "result.json" {
		t.Fatalf("the second fetch: %v %v", h, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp = call(http.MethodPost, pathResultsAck)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("acknowledgement: %d", resp.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still serving after the acknowledgement")
	}
}

// A worker pointed at something that is not a coordinator says so at
// once, instead of retrying until its join timeout and saying "not
// reached".
func TestWorkerSaysWhenItsJoinAddressIsNotACoordinator(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{})
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer empty.Close()
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`<html>`)) }))
	defer html.Close()
	for name, addr := range map[string]string{"404": notFound.URL, "no now_ns": empty.URL, "html": html.URL, "gRPC": srv.GRPCAddr()} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := Work(ctx, WorkerConfig{Coordinator: addr, Token: testToken, JoinTimeout: 30 * time.Second, TempDir: t.TempDir()})
		cancel()
		var nc *NotCoordinatorError
		if !errors.As(err, &nc) || !strings.Contains(err.Error(), "is not a loadprof coordinator") {
			t.Errorf("%s: %v, want 'is not a loadprof coordinator'", name, err)
		}
	}
}

// Ctrl-C on the coordinator while it waits for joins: the worker held at
// join hears that the coordinator stopped before the run began.
func TestWorkerHeldAtJoinHearsTheCoordinatorStopped(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{})
	ln := listen(t)
	var log strings.Builder
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Run: runConfig(t, srv, 10, time.Second), Workers: 2, Listener: ln, Token: testToken, Log: lockedWriter{&mu, &log}}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 1)
	go func() {
		for {
			mu.Lock()
			joined := strings.Contains(log.String(), "joined")
			mu.Unlock()
			if joined {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if _, err := Coordinate(ctx, cfg); err == nil {
		t.Fatal("an interrupted join wait returned no error")
	}
	err := wait()[0].err
	var gone *UnreachableError
	if !errors.As(err, &gone) || !strings.Contains(err.Error(), StoppedBeforeStart) || strings.Contains(err.Error(), "context canceled") {
		t.Errorf("worker: %v", err)
	}
}

// Ctrl-C on the coordinator inside the profile window: the window ends
// at the interrupt, and the requests the workers sent after it (until
// their next heartbeat told them) count as outside.
func TestInterruptInsideTheWindowEndsTheWindowThere(t *testing.T) {
	srv := testkit.Sim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	ln := listen(t)
	const rate = 100.0
	run := runConfig(t, srv, rate, time.Hour)
	run.Profile = &bench.ProfileConfig{Addr: srv.GRPCAddr(), Options: profile.Options{Duration: time.Hour, LogDir: t.TempDir()}}
	// A heartbeat a second: the workers hear of the interrupt up to a
	// second after it, sending all the while.
	cfg := Config{Run: run, Workers: 2, Listener: ln, Token: testToken, StartDelay: 200 * time.Millisecond, HeartbeatEvery: time.Second}
	wait := startWorkers(context.Background(), t, ln.Addr().String(), testToken, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for !srv.Profiling() {
			time.Sleep(10 * time.Millisecond)
		}
		for n := srv.Predicts(); srv.Predicts() < n+50; {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	res, err := Coordinate(ctx, cfg)
	wait()
	if res == nil || res.Profile == nil || res.Window == nil || res.Outside == nil {
		t.Fatalf("result %v: %+v", err, res)
	}
	p := res.Profile
	length := p.WindowEndS - p.WindowStartS
	if length <= 0 || length > 600 {
		t.Fatalf("window %.2f s to %.2f s: its end is not the interrupt", p.WindowStartS, p.WindowEndS)
	}
	// Open loop: the window holds the requests due while it was open (a
	// few more for the sends' own lag), not those of the time the workers
	// took to hear of the interrupt.
	if due := rate * length; float64(res.Window.Requests) > due+10 {
		t.Errorf("window of %.2f s holds %d requests; %.0f were due in it", length, res.Window.Requests, due)
	}
	if res.Window.Requests+res.Outside.Requests != res.Requests {
		t.Errorf("window %d + outside %d != %d requests", res.Window.Requests, res.Outside.Requests, res.Requests)
	}
}
