package load

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startEcho starts a loopback HTTP server that answers every request with a
// small JSON body.
func startEcho(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"predictions": [1.5]}`)
	}}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String() + "/v1/models/m:predict"
}

func newTestREST(tb testing.TB, url string) *REST {
	tb.Helper()
	r, err := NewREST(RESTConfig{URL: url, Bodies: [][]byte{[]byte(`{"instances": [1]}`), []byte(`{"instances": [2]}`)},
		Headers: []Header{{Key: "X-Trace", Value: "1"}}, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r
}

// TestRESTHotPathDoesNotAllocate counts allocations (not time) of one
// request: send, classify and record.
func TestRESTHotPathDoesNotAllocate(t *testing.T) {
	r := newTestREST(t, startEcho(t))
	s := r.NewSender()
	rec := NewRecorder()
	pick := counter(2)
	for i := 0; i < 100; i++ { // warm the connection and buffers
		s.Send(pick.Next())
	}
	allocs := testing.AllocsPerRun(2000, func() {
		start := rec.Now()
		out := s.Send(pick.Next())
		rec.Record(Sample{Phase: Steady, Start: start, Done: rec.Now(), Outcome: out})
		if out.Class != OK {
			t.Fatalf("outcome %+v", out)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per request in steady state, want 0", allocs)
	}
}

func BenchmarkRESTSendAndRecord(b *testing.B) {
	r := newTestREST(b, startEcho(b))
	rec := NewRecorder()
	pick := counter(2)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		s := r.NewSender()
		for pb.Next() {
			start := rec.Now()
			out := s.Send(pick.Next())
			rec.Record(Sample{Phase: Steady, Start: start, Done: rec.Now(), Outcome: out})
		}
	})
}

func BenchmarkRecorderRecord(b *testing.B) {
	rec := NewRecorder()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d := time.Duration(i) * time.Microsecond
		rec.Record(Sample{Phase: Steady, Start: d, Done: d + 1500*time.Microsecond, Outcome: Outcome{Class: OK}})
	}
}

// BenchmarkRESTEngines runs b.N closed-loop requests on 16 connections
// against an in-process server (so the CPU time is both sides'): a
// relative measure of the two engines and a check of their allocations.
func BenchmarkRESTEngines(b *testing.B) {
	url := startEcho(b)
	engines := []Engine{EngineGoroutines}
	if eventLoopsAvailable {
		engines = append(engines, EngineEpoll)
	}
	for _, engine := range engines {
		b.Run(string(engine), func(b *testing.B) {
			r, err := NewREST(RESTConfig{URL: url, Engine: engine, Bodies: [][]byte{[]byte(`{"instances": [1]}`)}})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			rec := NewRecorder()
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := Run(context.Background(), Plan{Concurrency: 16, Requests: int64(b.N)}, r, counter(1), rec); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if s := rec.Snapshot(false).Steady; len(s.Errors) != 0 {
				b.Fatalf("errors %v", s.Errors)
			}
		})
	}
}
