package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/loadprof/loadprof/bench"
)

// interruptContext returns a context cancelled by the first SIGINT or
// SIGTERM (its cause says which: interruptCode), so that a run stops
// sending and reports what it measured. A second signal before the load
// ended ends the process at once: whatever the run is still waiting for
// (requests in flight a server never answers), the user can always
// leave. A second signal after it (the run waits for the last scrapes of
// --metrics) cuts those waits short and the results are still written
// (bench.Hurry); a third ends the process at once. stop releases the
// signals.
func interruptContext(stderr io.Writer) (ctx context.Context, stop func()) {
	ctx, cancelCause := context.WithCancelCause(context.Background())
	hurry := bench.NewHurry()
	ctx = bench.WithHurry(ctx, hurry)
	cancel := func() { cancelCause(nil) }
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-done:
			return
		}
		cause := signalled{sig}
		cancelCause(cause)
		fmt.Fprintln(stderr, "loadprof: interrupted; finishing (interrupt again to quit at once)")
		select {
		case <-sigs:
		case <-done:
			return
		}
		if !hurry.Now() {
			runQuitHooks(quitHookBound)
			os.Exit(cause.exitCode())
		}
		fmt.Fprintln(stderr, "loadprof: interrupted again; writing what was measured without waiting further (interrupt again to quit at once)")
		select {
		case <-sigs:
			os.Exit(cause.exitCode())
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// signalled is the cause of a context cancelled by a signal.
type signalled struct{ sig os.Signal }

func (s signalled) Error() string { return "interrupted by " + s.sig.String() }

// exitCode is 128 plus the signal's number, as shells report a process
// the signal ended: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
func (s signalled) exitCode() int {
	if s.sig == syscall.SIGTERM {
		return exitTerminated
	}
	return exitInterrupted
}

// interruptCode is the exit code of a run whose context ctx is: 0 when it
// was not interrupted, else the signal's (130 or 143).
func interruptCode(ctx context.Context) int {
	if ctx.Err() == nil {
		return 0
	}
	var s signalled
	if errors.As(context.Cause(ctx), &s) {
		return s.exitCode()
	}
	return exitInterrupted
}

// quitHookBound bounds the hooks a second interrupt runs before the
// process ends.
const quitHookBound = time.Second

// quitHooks are what must be tried before a second interrupt ends the
// process: a coordinator tells its workers to stop.
var quitHooks struct {
	sync.Mutex
	next int
	fns  map[int]func()
}

// beforeQuit adds fn to the hooks; remove takes it out.
func beforeQuit(fn func()) (remove func()) {
	quitHooks.Lock()
	defer quitHooks.Unlock()
	if quitHooks.fns == nil {
		quitHooks.fns = map[int]func(){}
	}
	id := quitHooks.next
	quitHooks.next++
	quitHooks.fns[id] = fn
	return func() {
		quitHooks.Lock()
		defer quitHooks.Unlock()
		delete(quitHooks.fns, id)
	}
}

// runQuitHooks runs every hook at once and waits for them, bound at
// most: quitting is what the user asked for.
func runQuitHooks(bound time.Duration) {
	quitHooks.Lock()
	var fns []func()
	for _, fn := range quitHooks.fns {
		fns = append(fns, fn)
	}
	quitHooks.Unlock()
	done := make(chan struct{}, len(fns))
	for _, fn := range fns {
		go func() { fn(); done <- struct{}{} }()
	}
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for range fns {
		select {
		case <-done:
		case <-timer.C:
			return
		}
	}
}
