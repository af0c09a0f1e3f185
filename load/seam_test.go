package load

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// stallTransport's senders wait for release before they answer OK.
type stallTransport struct{ release chan struct{} }

func (s stallTransport) NewSender() Sender { return s }
func (s stallTransport) Close()            {}
func (s stallTransport) Send(int) Outcome {
	<-s.release
	return Outcome{Class: OK, Code: 200}
}

// A library caller of Run gets the per-second series too: the seconds in
// which nothing finished are closed while the run is still going.
func TestRunClosesSecondsWhileNothingFinishes(t *testing.T) {
	tr := stallTransport{release: make(chan struct{})}
	rec := NewRecorder()
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), Plan{Concurrency: 1, Requests: 1}, tr, counter(1), rec)
		done <- err
	}()
	bound := time.After(10 * time.Second)
	for len(rec.Snapshot(false).Series) == 0 {
		select {
		case <-bound:
			close(tr.release)
			t.Fatal("no second of the series was closed while the only request was in flight")
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(tr.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// GOMAXPROCS is the program's: Run leaves it as it is, also on the epoll
// engine with one P.
func TestRunLeavesGOMAXPROCSAlone(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			srv := startRaw(t, okJSON(0))
			during := make(chan int, 1)
			plan := Plan{Concurrency: 1, WarmupRequests: 1, Requests: 3, SteadyStarted: func() { during <- runtime.GOMAXPROCS(0) }}
			if _, err := Run(context.Background(), plan, engineREST(t, engine, srv.url, 5*time.Second), counter(3), NewRecorder()); err != nil {
				t.Fatal(err)
			}
			if got := <-during; got != 1 {
				t.Fatalf("GOMAXPROCS %d during the run, want the 1 the program set", got)
			}
			if got := runtime.GOMAXPROCS(0); got != 1 {
				t.Fatalf("GOMAXPROCS %d after the run, want 1", got)
			}
		})
	}
}

func TestEventLoopProcsLeavesAPBesideTheLoop(t *testing.T) {
	for procs, want := range map[int]int{1: 2, 2: 2, 8: 8} {
		if got := EventLoopProcs(procs); got != want {
			t.Errorf("EventLoopProcs(%d) = %d, want %d", procs, got, want)
		}
		if loops := maxEventLoops(EventLoopProcs(procs)); loops+1 > EventLoopProcs(procs) {
			t.Errorf("%d loops at GOMAXPROCS %d leave no P", loops, EventLoopProcs(procs))
		}
	}
}

// The engine is chosen in one place: REST's own on epoll, goroutines for
// every other transport.
func TestEngineForChoosesTheTransportsOwnEngine(t *testing.T) {
	if _, ok := engineFor(stallTransport{}).(goroutineEngine); !ok {
		t.Error("a plain transport does not get the goroutine engine")
	}
	for _, engine := range engines(t) {
		r := engineREST(t, engine, "http://127.0.0.1:1/", time.Second)
		_, goroutines := engineFor(r).(goroutineEngine)
		if goroutines != (engine == EngineGoroutines) {
			t.Errorf("REST on %s got the goroutine engine: %v", engine, goroutines)
		}
	}
}
