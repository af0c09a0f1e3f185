package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

// mute is a listener that accepts connections and never answers, except
// that the first answerFirst connections get one 200 response each.
type mute struct {
	ln       net.Listener
	accepted chan struct{} // one value per accepted connection
	n        atomic.Int64
}

func startMute(t *testing.T, answerFirst int64) *mute {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mute{ln: ln, accepted: make(chan struct{}, 1000)}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if m.n.Add(1) <= answerFirst {
				go answerOnce(c)
			}
			select {
			case m.accepted <- struct{}{}:
			default:
			}
		}
	}()
	return m
}

// answerOnce reads one HTTP request on c and answers it with 200.
func answerOnce(c net.Conn) {
	defer c.Close()
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	io.Copy(io.Discard, req.Body)
	fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\nConnection: close\r\n\r\n{\"predictions\": [1.0]}")
}

func (m *mute) addr() string { return m.ln.Addr().String() }

// waitAccepted waits for n connections; the limit only keeps a broken
// test from hanging.
func (m *mute) waitAccepted(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-m.accepted:
		case <-time.After(time.Minute):
			t.Fatalf("%d of %d connections accepted in a minute", i, n)
		}
	}
}

// startLoadprof starts the binary and returns it with a channel that gets
// its exit.
func startLoadprof(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, chan error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, &stderr, done
}

// endsWithin waits for the process to end, at most limit, and returns its
// exit code.
func endsWithin(t *testing.T, cmd *exec.Cmd, done chan error, limit time.Duration, what string) int {
	t.Helper()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		cmd.Process.Kill()
		t.Fatalf("%s: loadprof still running %v after the signal", what, limit)
	}
	return 0
}

// Ctrl-C during the preflight ends it at once, whatever --timeout says:
// the REST probe, gRPC's GetModelMetadata and gRPC's first call. The
// targets never answer, and --timeout is 2 minutes: the process must be
// gone well before.
func TestCtrlCDuringThePreflightExits130AtOnce(t *testing.T) {
	const timeout = 2 * time.Minute
	data := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	restMute := startMute(t, 0)
	grpcMute := startMute(t, 0)
	slow := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Hour}}) // metadata at once, predict never
	for _, c := range []struct {
		name   string
		accept *mute
		args   []string
	}{
		{"REST probe", restMute, []string{"--url", "http://" + restMute.addr() + "/v1/models/m:predict"}},
		{"gRPC GetModelMetadata", grpcMute, []string{"--grpc", grpcMute.addr(), "--model", "m"}},
		{"gRPC first call", nil, []string{"--grpc", slow.GRPCAddr(), "--model", "test_model"}},
	} {
		args := append([]string{"run", "--data", data, "--rate", "10", "--duration", "1s", "--timeout", timeout.String()}, c.args...)
		cmd, stderr, done := startLoadprof(t, args...)
		if c.accept != nil {
			c.accept.waitAccepted(t, 1)
		} else {
			for slow.Held() == 0 { // the preflight's call is under way
				time.Sleep(10 * time.Millisecond)
			}
		}
		cmd.Process.Signal(syscall.SIGINT)
		code := endsWithin(t, cmd, done, timeout/4, c.name)
		if code != 130 || !strings.Contains(stderr.String(), "interrupted before any load was sent") {
			t.Errorf("%s: exit %d, stderr %q; want 130 and the interruption", c.name, code, stderr.String())
		}
	}
}

// A second Ctrl-C ends the process at once, even while the first one
// waits for requests in flight (--grace is 2 minutes here, and the
// target answers only the preflight).
func TestSecondCtrlCEndsTheProcessAtOnce(t *testing.T) {
	const grace = 2 * time.Minute
	m := startMute(t, 1)
	data := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	cmd, _, done := startLoadprof(t, "run", "--url", "http://"+m.addr()+"/v1/models/m:predict", "--data", data,
		"--rate", "20", "--duration", "1h", "--timeout", "1h", "--grace", grace.String())
	m.waitAccepted(t, 3) // the preflight and two requests that will never be answered
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(200 * time.Millisecond) // let the first be handled: the second must not be merged into it
	cmd.Process.Signal(syscall.SIGINT)
	if code := endsWithin(t, cmd, done, grace/4, "second SIGINT"); code != 130 {
		t.Fatalf("exit %d after the second SIGINT, want 130", code)
	}
}

// hangingMetrics proxies the simulator's metrics page until the simulator
// has served after predictions, then holds every scrape unanswered (until
// the scraper gives up or the test ends); hung gets a value per held
// scrape.
func hangingMetrics(t *testing.T, srv *sim.Server, after int64) (url string, hung chan struct{}) {
	t.Helper()
	hung = make(chan struct{}, 100)
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv.Predicts() >= after {
			select {
			case hung <- struct{}{}:
			default:
			}
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		resp, err := http.Get(srv.MetricsURL())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handlers
	return ts.URL + "/metrics", hung
}

// Two Ctrl-Cs while the run waits for the last scrape of an endpoint that
// stopped answering (--metrics-timeout 1h: the wait could last two hours)
// still write result.json with every request measured, and the summary.
func TestCtrlCTwiceDuringTheLastScrapeStillWritesTheResults(t *testing.T) {
	srv := startSim(t, sim.Config{Model: "m"})
	metricsURL, hung := hangingMetrics(t, srv, 10)
	dir := t.TempDir()
	out := filepath.Join(dir, "result.json")
	html := filepath.Join(dir, "report.html")
	cmd, stderr, done := startLoadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--rate", "20", "--duration", "500ms", "--metrics", metricsURL, "--metrics-interval", "1h", "--metrics-timeout", "1h",
		"--out", out, "--html", html)
	select {
	case <-hung: // the load is over and the scrape at its end hangs
	case err := <-done:
		t.Fatalf("loadprof ended (%v) before a scrape hung: %s", err, stderr)
	case <-time.After(time.Minute):
		t.Fatal("no scrape hung within a minute")
	}
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(200 * time.Millisecond) // let the first be handled: the second must not be merged into it
	cmd.Process.Signal(syscall.SIGINT)
	if code := endsWithin(t, cmd, done, time.Minute, "two SIGINTs in the last scrape"); code != 130 {
		t.Errorf("exit %d, want 130; stderr %s", code, stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("result.json not written: %v; stderr %s", err, stderr)
	}
	var res struct {
		Requests int64 `json:"requests"`
		Server   *struct {
			Warnings []string `json:"warnings"`
		} `json:"server"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.Requests != 10 || res.Server == nil {
		t.Errorf("result.json: %d requests (want 10), server block %+v", res.Requests, res.Server)
	}
	if _, err := os.Stat(html); err != nil {
		t.Errorf("report.html not written: %v", err)
	}
}
