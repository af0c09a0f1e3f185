package load

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestSeriesCountsSentAndInflightBySecondStarted(t *testing.T) {
	r := NewRecorder()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	// Four requests from 0.5 s to 1.5 s: each is half a second in flight
	// in second 0 and half in second 1.
	for i := 0; i < 4; i++ {
		r.Record(Sample{Phase: Steady, Start: ms(500), Done: ms(1500), Outcome: Outcome{Class: OK, BytesSent: 100, BytesReceived: 1000}})
	}
	// One from 1.2 s to 3.7 s, finishing last: it was sent in second 1.
	r.Record(Sample{Phase: Steady, Start: ms(1200), Done: ms(3700), Outcome: Outcome{Class: OK}})
	snap := r.Snapshot(true)
	want := []struct {
		sent     int64
		inflight float64
		done     int64
	}{{4, 2.0, 0}, {1, 2.0 + 0.8, 4}, {0, 1, 0}, {0, 0.7, 1}}
	if len(snap.Series) != len(want) {
		t.Fatalf("%d seconds, want %d: %+v", len(snap.Series), len(want), snap.Series)
	}
	for i, w := range want {
		s := snap.Series[i]
		// Bytes of the four 100/1000-byte requests: sent in second 0, received in 1.
		if wantIn := map[int]int64{1: 4000}[i]; s.BytesSent != map[int]int64{0: 400}[i] || s.BytesReceived != wantIn {
			t.Errorf("second %d: %d bytes sent, %d received", i, s.BytesSent, s.BytesReceived)
		}
		if s.Sent != w.sent || math.Abs(s.Inflight-w.inflight) > 1e-9 || s.Requests != w.done {
			t.Errorf("second %d: sent %d, in flight %.3f, done %d; want %d, %.3f, %d", i, s.Sent, s.Inflight, s.Requests, w.sent, w.inflight, w.done)
		}
	}
	// Four 1 s requests finished in second 1: p90 is 1 s, to 3 significant digits.
	if d := snap.Series[1].P90Us - 1_000_000; d < 0 || d > 1000 {
		t.Errorf("second 1 p90 %d us, want about 1 s", snap.Series[1].P90Us)
	}
}

func TestEnginesCountTheBytesOfEveryRequestAndAnswer(t *testing.T) {
	const response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"predictions\": [1.5]}"
	for _, engine := range engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			srv := startRaw(t, okJSON(time.Millisecond))
			rec := NewRecorder()
			rest := engineREST(t, engine, srv.url, 5*time.Second)
			if _, err := Run(context.Background(), Plan{Concurrency: 4, Requests: 200}, rest, counter(3), rec); err != nil {
				t.Fatal(err)
			}
			var sent, received int64
			for _, s := range rec.Snapshot(true).Series {
				sent += s.BytesSent
				received += s.BytesReceived
			}
			// The three bodies are as long as each other.
			if want := int64(200 * len(rest.requests[0])); sent != want {
				t.Errorf("%d bytes sent, want 200 requests of %d", sent, len(rest.requests[0]))
			}
			if want := int64(200 * len(response)); received != want {
				t.Errorf("%d bytes received, want 200 answers of %d", received, len(response))
			}
		})
	}
	t.Run("grpc", func(t *testing.T) {
		valid := validPredictResponse(t)
		srv := startGRPCTestServer(t, func(int64) ([]byte, error) { return valid, nil })
		request := []byte{0x0a, 0x03, 0x61, 0x62, 0x63}
		s := newTestGRPC(t, srv.addr, GRPCConfig{Requests: [][]byte{request}}).NewSender()
		for range 3 {
			if out := s.Send(0); out.Class != OK || out.BytesSent != int64(len(request)) || out.BytesReceived != int64(len(valid)) {
				t.Fatalf("%s: %d bytes sent, %d received; want the messages' %d and %d", out.Key(), out.BytesSent, out.BytesReceived, len(request), len(valid))
			}
		}
	})
}
