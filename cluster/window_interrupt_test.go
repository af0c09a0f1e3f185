package cluster

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
)

// hangingProfiler is vLLM's HTTP profiler control that never answers the
// route hang names (it answers the other with 200), and counts the calls.
func hangingProfiler(t *testing.T, hang string) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	var starts, stops atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/start_profile":
			starts.Add(1)
		case "/stop_profile":
			stops.Add(1)
		}
		if r.URL.Path == hang {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, &starts, &stops
}

// An interrupt bounds the coordinator's waits for vLLM's HTTP profiler
// control as it does one machine's (bench): --grace after it, though
// --profile-timeout is ten minutes; a start given up is followed by a
// stop, and a stop that did not answer is not reported as answered.
func TestCoordinatorHTTPWindowInterruptBoundsHungCalls(t *testing.T) {
	for _, hang := range []string{"/start_profile", "/stop_profile"} {
		t.Run(strings.TrimPrefix(hang, "/"), func(t *testing.T) {
			srv, starts, stops := hangingProfiler(t, hang)
			ctx, cancel := context.WithCancel(context.Background())
			w := &coordWindow{
				cfg: bench.ProfileConfig{HTTP: srv.URL, Options: profile.Options{Slack: 10 * time.Minute,
					Grace: 100 * time.Millisecond}},
				open: time.Now(), length: time.Hour, done: make(chan struct{}), rep: &report.ProfileReport{},
			}
			returned := make(chan struct{})
			go func() { w.runHTTP(ctx, nil); close(returned) }()
			// Interrupt once the hung call is under way.
			for starts.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
			select {
			case <-returned:
			case <-time.After(time.Minute): // the old wait: --profile-timeout
				t.Fatal("the window still waits for the hung call a minute after the interrupt")
			}
			if w.err == nil || !strings.Contains(w.err.Error(), "interrupted run stopped waiting") {
				t.Errorf("error %v", w.err)
			}
			if stops.Load() != 1 {
				t.Errorf("%d stops sent, want 1", stops.Load())
			}
			if hang == "/stop_profile" && !w.rep.HTTP.Stopped.IsZero() {
				t.Errorf("a stop that never answered is recorded as answered at %v", w.rep.HTTP.Stopped)
			}
		})
	}
}
