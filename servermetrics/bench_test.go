package servermetrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tfServingPage is a page the size of a busy TF Serving's: five models,
// REST and gRPC, TF Serving's 34 latency buckets, and the ~200 families
// TensorFlow's own monitoring adds.
func tfServingPage(scale int) string {
	var b strings.Builder
	bounds := []string{}
	v := 10.0
	for range 33 {
		bounds = append(bounds, fmt.Sprintf("%.6g", v))
		v *= 1.8
	}
	bounds = append(bounds, "+Inf")
	b.WriteString("# TYPE :tensorflow:serving:request_count counter\n")
	for m := range 5 {
		for _, st := range []string{"OK", "INVALID_ARGUMENT", "NOT_FOUND"} {
			fmt.Fprintf(&b, ":tensorflow:serving:request_count{model_name=\"model%d\",status=\"%s\"} %d\n", m, st, 1000*scale)
		}
	}
	hist := func(name, labels string) {
		for i, le := range bounds {
			fmt.Fprintf(&b, "%s_bucket{%s,le=\"%s\"} %d\n", name, labels, le, (i+1)*scale)
		}
		fmt.Fprintf(&b, "%s_sum{%s} %d\n%s_count{%s} %d\n", name, labels, 1000*scale, name, labels, len(bounds)*scale)
	}
	b.WriteString("# TYPE :tensorflow:serving:request_latency histogram\n")
	for m := range 5 {
		for _, ep := range []string{"REST", "GRPC"} {
			hist(":tensorflow:serving:request_latency", fmt.Sprintf(`model_name="model%d",API="predict",entrypoint="%s"`, m, ep))
		}
	}
	b.WriteString("# TYPE :tensorflow:serving:runtime_latency histogram\n")
	for m := range 5 {
		hist(":tensorflow:serving:runtime_latency", fmt.Sprintf(`model_name="model%d",API="Predict",runtime="TF1"`, m))
	}
	for f := range 200 {
		fmt.Fprintf(&b, "# TYPE :tensorflow:core:family%d counter\n", f)
		for l := range 3 {
			fmt.Fprintf(&b, ":tensorflow:core:family%d{op=\"op%d\"} %d\n", f, l, f*scale)
		}
	}
	return b.String()
}

// tfServingPages are n pages of a server counting on: page i has the
// serving families at scale i+1, and TensorFlow's own families as they
// are on every page (static) or counting too.
func tfServingPages(n int, coreMoves bool) [][]byte {
	pages := make([][]byte, n)
	for i := range pages {
		page := tfServingPage(i + 1)
		if !coreMoves {
			first, _ := splitCore(page)
			_, core := splitCore(tfServingPage(1))
			page = first + core
		}
		pages[i] = []byte(page)
	}
	return pages
}

// splitCore cuts a tfServingPage before TensorFlow's own families.
func splitCore(page string) (serving, core string) {
	i := strings.Index(page, "# TYPE :tensorflow:core:")
	return page[:i], page[i:]
}

// benchmarkScrape is what one interval costs the client: fetch a TF
// Serving-sized page over loopback, parse it, and add it to the run's,
// the steady phase's and an interval's figures, as a Sampler does. The
// pages count up (a counter that went down would be a restart, which
// costs more than a scrape).
func benchmarkScrape(b *testing.B, coreMoves bool) {
	pages := tfServingPages(256, coreMoves)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(pages[(n.Add(1)-1)%int64(len(pages))])
	}))
	defer srv.Close()
	ctx := context.Background()
	sum := newSummary(srv.URL, "model1")
	parser := newPageParser(Filter{Model: "model1"})
	b.SetBytes(int64(len(pages[0])))
	b.ReportAllocs()
	// CPU time, less at the mercy of a busy machine than the wall time
	// (the loopback server's share is in it: writing bytes it has).
	cpu0 := processCPU()
	for b.Loop() {
		snap, err := scrape(ctx, srv.Client(), srv.URL, nil, parser.parse)
		if err != nil {
			b.Fatal(err)
		}
		marks := []string(nil)
		if sum.r.Scrapes == 1 {
			marks = []string{MarkSteadyStart}
		}
		sum.add(Sample{At: snap.At, Marks: marks}, snap)
		if sum.r.Scrapes > 1 && sum.r.Intervals[len(sum.r.Intervals)-1].Latency == nil {
			b.Fatal("no latency")
		}
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScrapeParseDelta: TensorFlow's own families as they are (most
// of a real page is still from one scrape to the next).
func BenchmarkScrapeParseDelta(b *testing.B) { benchmarkScrape(b, false) }

// BenchmarkScrapeParseDeltaAllMoving: every family counting, the worst
// case for a parser that reuses what did not change.
func BenchmarkScrapeParseDeltaAllMoving(b *testing.B) { benchmarkScrape(b, true) }
