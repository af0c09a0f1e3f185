package load

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// Cancelling the context ends a probe of a server that accepts and never
// answers at once, not after the request timeout (an hour here).
func TestProbeEndsWhenItsContextIsCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	rest, err := NewREST(RESTConfig{URL: "http://" + ln.Addr().String() + "/v1/models/m:predict", Bodies: [][]byte{[]byte("{}")},
		Timeout: time.Hour, Engine: EngineGoroutines})
	if err != nil {
		t.Fatal(err)
	}
	defer rest.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Outcome, 1)
	go func() {
		out, _ := rest.Probe(ctx, 0)
		done <- out
	}()
	var conn net.Conn
	select {
	case conn = <-accepted:
		defer conn.Close()
	case <-time.After(time.Minute):
		t.Fatal("the probe did not connect in a minute")
	}
	cancel()
	select {
	case out := <-done:
		if !errors.Is(out.Err, context.Canceled) {
			t.Fatalf("outcome %+v, want the context's error", out)
		}
	case <-time.After(time.Minute):
		t.Fatal("the probe still waits a minute after its context was cancelled")
	}
	// Its connection is closed, not left open until the timeout.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			if isTimeout(err) {
				t.Fatal("the probe's connection is still open")
			}
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
