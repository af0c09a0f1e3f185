package conformance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/servermetrics"
)

// KServe's ModelServer serves prometheus_client's exposition at /metrics
// on its REST port, with a request_predict_seconds histogram per model:
// scraped before and after a known number of predict calls, its count
// must grow by exactly that many, and only for the model called.
func TestKServeMetricsCountTheRequestsSent(t *testing.T) {
	need(t)
	url := fmt.Sprintf("http://%s/metrics", addr(ports.REST))
	client := &http.Client{Timeout: 30 * time.Second}
	scrape := func(model string) *servermetrics.Snapshot {
		t.Helper()
		s, err := servermetrics.Scrape(context.Background(), client, url, servermetrics.Filter{Model: model})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	beforeDense, beforeText := scrape("dense"), scrape("text")
	const n = 25
	for i := range n {
		resp, err := client.Post(fmt.Sprintf("http://%s/v1/models/dense:predict", addr(ports.REST)), "application/json", strings.NewReader(denseRows))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("predict %d: HTTP %d %s", i, resp.StatusCode, body)
		}
	}
	afterDense, afterText := scrape("dense"), scrape("text")

	w := servermetrics.Figures("steady", servermetrics.Accumulate([]*servermetrics.Snapshot{beforeDense, afterDense}))
	if w.Server != "kserve" || w.Latency == nil || w.Latency.Family != "request_predict_seconds" {
		t.Fatalf("no KServe predict latency in %+v", w)
	}
	if w.Requests == nil || *w.Requests != n || w.Latency.Count != n {
		t.Fatalf("KServe counted %v predict calls, want %d", w.Requests, n)
	}
	if w.Latency.MeanMs <= 0 || w.Latency.P50 == nil || w.Latency.P50.BucketHighMs == nil {
		t.Errorf("latency figures %+v", w.Latency)
	}
	other := servermetrics.Figures("steady", servermetrics.Accumulate([]*servermetrics.Snapshot{beforeText, afterText}))
	if other.Requests != nil && *other.Requests != 0 {
		t.Errorf("the text model counted %v calls sent to dense", *other.Requests)
	}
	t.Logf("KServe: %v predicts, server mean %.3f ms, p50 %.3f ms in (%.3g, %.3g] ms",
		*w.Requests, w.Latency.MeanMs, w.Latency.P50.Ms, w.Latency.P50.BucketLowMs, *w.Latency.P50.BucketHighMs)
}
