package servermetrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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

// BenchmarkScrapeParseDelta is what one interval costs the client: fetch
// a TF Serving-sized page over loopback, parse it, and turn it and the
// previous scrape into a window's figures.
func BenchmarkScrapeParseDelta(b *testing.B) {
	pages := []string{tfServingPage(1), tfServingPage(2)}
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(pages[n%2]))
		n++
	}))
	defer srv.Close()
	ctx := context.Background()
	prev, err := Scrape(ctx, srv.Client(), srv.URL, Filter{Model: "model1"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pages[0])))
	b.ReportAllocs()
	for b.Loop() {
		cur, err := Scrape(ctx, srv.Client(), srv.URL, Filter{Model: "model1"})
		if err != nil {
			b.Fatal(err)
		}
		w := Figures("interval", Accumulate([]*Snapshot{prev, cur}))
		if w.Latency == nil {
			b.Fatal("no latency")
		}
		prev = cur
	}
}
