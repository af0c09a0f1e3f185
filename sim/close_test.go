package sim

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// closeWithin calls s.Close and fails the test if it has not returned
// within limit, which callers set generously against what the server
// would otherwise wait for.
func closeWithin(t *testing.T, s *Server, limit time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		_ = s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("Close did not return in %v", limit)
	}
}

// A server closed at once, before its Serve goroutines have run, must
// still stop: fasthttp's Shutdown does nothing to a listener Serve has
// not registered yet, so Serve would then run on it for ever.
func TestCloseRightAfterStartReturns(t *testing.T) {
	for i := 0; i < 200; i++ {
		s, err := StartLoopback(Config{})
		if err != nil {
			t.Fatal(err)
		}
		addr := s.RESTAddr()
		closeWithin(t, s, time.Minute)
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("round %d: %s still accepts connections after Close", i, addr)
		}
	}
}

// Close must not wait for calls in flight to finish their simulated
// service time (an hour here), nor for a client that sent half a request
// (the read timeout is a minute) or a gRPC client that never said a word
// (grpc's handshake timeout is two minutes): it ends them.
func TestCloseEndsCallsInFlight(t *testing.T) {
	s, err := StartLoopback(Config{Latency: Latency{Fixed: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const calls = 4
	answered := make(chan error, calls)
	for i := 0; i < calls; i++ {
		go func() {
			resp, err := http.Post(s.PredictURL(), "application/json", strings.NewReader(`{"instances": [[1, 2, 3, 4]]}`))
			if err == nil {
				resp.Body.Close()
			}
			answered <- err
		}()
	}
	half, err := net.Dial("tcp", s.RESTAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write([]byte("POST /v1/models/test_model:predict HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	// A gRPC client that connects and never sends its preface: grpc's
	// Stop waits for such a handshake up to its two-minute timeout.
	mute, err := net.Dial("tcp", s.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	// Wait until the server holds every call (each has been noted as
	// arrived: the service time is decided on arrival).
	for s.Held() < calls {
		time.Sleep(time.Millisecond)
	}
	closeWithin(t, s, 30*time.Second) // half the read timeout
	for i := 0; i < calls; i++ {
		<-answered // the client sees an error or a response; it is not left waiting
	}
	for name, c := range map[string]net.Conn{"the half-sent request's": half, "the mute gRPC client's": mute} {
		// Whatever the server wrote before it closed (gRPC's SETTINGS),
		// then the end of the stream; the deadline only keeps a failing
		// test from hanging.
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := io.Copy(io.Discard, c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s connection is still open after Close", name)
		}
	}
}
