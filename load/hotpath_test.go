package load

import (
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
