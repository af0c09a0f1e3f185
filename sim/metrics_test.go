package sim

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestMetricsPageHasTFServingFamiliesAndBuckets(t *testing.T) {
	s := start(t, Config{Model: "m", Latency: Latency{Fixed: time.Millisecond}})
	for range 3 {
		if code, _, raw := call(t, "POST", s.PredictURL(), `{"instances": [[1, 2, 3, 4]]}`); code != 200 {
			t.Fatalf("predict: %d %s", code, raw)
		}
	}
	code, _, page := call(t, "GET", s.MetricsURL(), "")
	if code != 200 {
		t.Fatalf("metrics: HTTP %d", code)
	}
	for _, want := range []string{
		"# TYPE :tensorflow:serving:request_count counter\n",
		`:tensorflow:serving:request_count{model_name="m",status="OK"} 3` + "\n",
		"# TYPE :tensorflow:serving:request_latency histogram\n",
		// TF Serving's layout: 10 µs growing by 1.8, 33 limits, then +Inf.
		`:tensorflow:serving:request_latency_bucket{model_name="m",API="predict",entrypoint="REST",le="10"} 0`,
		`entrypoint="REST",le="18"} 0`,
		`entrypoint="REST",le="32.4"} 0`,
		`entrypoint="REST",le="1.47476e+09"} 3`,
		`entrypoint="REST",le="+Inf"} 3`,
		`:tensorflow:serving:request_latency_count{model_name="m",API="predict",entrypoint="REST"} 3`,
		`:tensorflow:serving:runtime_latency_count{model_name="m",API="Predict",runtime="TF1"} 3`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	if n := strings.Count(page, `:tensorflow:serving:request_latency_bucket{`); n != 34 {
		t.Errorf("%d request_latency buckets, want TF Serving's 34", n)
	}
}

func TestMetricsCountFailuresByStatusWithoutTimingThem(t *testing.T) {
	s := start(t, Config{Model: "m", Latency: Latency{ErrorRate: 1}})
	call(t, "POST", s.PredictURL(), `{"instances": [[1, 2, 3, 4]]}`)
	_, _, page := call(t, "GET", s.MetricsURL(), "")
	if !strings.Contains(page, `:tensorflow:serving:request_count{model_name="m",status="UNAVAILABLE"} 1`) {
		t.Errorf("the failure is not counted as UNAVAILABLE:\n%s", page)
	}
	if strings.Contains(page, "request_latency_count") {
		t.Errorf("a failed call was timed (TF Serving times only successful ones):\n%s", page)
	}
}

func TestNetworkDelayIsOutsideTheHandlersClock(t *testing.T) {
	s := start(t, Config{NetworkDelay: 30 * time.Millisecond})
	begin := time.Now()
	call(t, "POST", s.PredictURL(), `{"instances": [[1, 2, 3, 4]]}`)
	client := time.Since(begin)
	n, server := s.PredictLatency()
	if n != 1 || client < 30*time.Millisecond || server >= 30*time.Millisecond {
		t.Errorf("client %v, server %v over %d calls: the delay should be the client's only", client, server, n)
	}
	if _, err := Start(Config{REST: "127.0.0.1:0", NetworkDelay: -time.Second}); err == nil || !strings.Contains(err.Error(), "sim.Config.NetworkDelay -1s: must not be negative") {
		t.Errorf("a negative delay: %v", err)
	}
}

func TestStatusNamesAreTFs(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.OK: "OK", codes.InvalidArgument: "INVALID_ARGUMENT", codes.Canceled: "CANCELLED",
		codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.Unavailable: "UNAVAILABLE"} {
		if got := statusName(c); got != want {
			t.Errorf("%v: %s, want %s", c, got, want)
		}
	}
}
