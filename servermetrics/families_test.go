package servermetrics

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// parse reads a hand-written exposition as a scrape at offset seconds.
func parse(t *testing.T, text string, offset float64, f Filter) *Snapshot {
	t.Helper()
	s, err := Parse(strings.NewReader(text), "text/plain; version=0.0.4", f)
	if err != nil {
		t.Fatal(err)
	}
	s.At = time.Unix(1700000000, 0).Add(time.Duration(offset * float64(time.Second)))
	return s
}

func window(t *testing.T, f Filter, texts ...string) Window {
	t.Helper()
	var snaps []*Snapshot
	for i, text := range texts {
		snaps = append(snaps, parse(t, text, float64(i), f))
	}
	w := Figures("steady", Accumulate(snaps))
	if _, err := json.Marshal(w); err != nil {
		t.Fatalf("the window does not encode as JSON: %v", err)
	}
	return w
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func family(t *testing.T, w Window, name string) Family {
	t.Helper()
	for _, f := range w.Families {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no family %s in %+v", name, w.Families)
	return Family{}
}

// A TF Serving page as its exporter writes it: TYPE lines, no HELP,
// latencies in microseconds (the buckets cut short here).
const tfBefore = `# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="resnet",status="OK"} 100
:tensorflow:serving:request_count{model_name="resnet",status="INVALID_ARGUMENT"} 1
:tensorflow:serving:request_count{model_name="other",status="OK"} 7
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="1000"} 10
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="2000"} 60
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="4000"} 90
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="+Inf"} 100
:tensorflow:serving:request_latency_sum{model_name="resnet",API="predict",entrypoint="REST"} 200000
:tensorflow:serving:request_latency_count{model_name="resnet",API="predict",entrypoint="REST"} 100
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="REST",le="1000"} 0
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="REST",le="2000"} 0
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="REST",le="4000"} 0
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="REST",le="+Inf"} 7
:tensorflow:serving:request_latency_sum{model_name="other",API="predict",entrypoint="REST"} 700000
:tensorflow:serving:request_latency_count{model_name="other",API="predict",entrypoint="REST"} 7
# TYPE :tensorflow:serving:runtime_latency histogram
:tensorflow:serving:runtime_latency_bucket{model_name="resnet",API="Predict",runtime="TF1",le="1000"} 100
:tensorflow:serving:runtime_latency_bucket{model_name="resnet",API="Predict",runtime="TF1",le="+Inf"} 100
:tensorflow:serving:runtime_latency_sum{model_name="resnet",API="Predict",runtime="TF1"} 50000
:tensorflow:serving:runtime_latency_count{model_name="resnet",API="Predict",runtime="TF1"} 100
# TYPE :tensorflow:serving:batching_session:queuing_latency histogram
:tensorflow:serving:batching_session:queuing_latency_bucket{thread_pool_name="resnet_pool",le="100"} 0
:tensorflow:serving:batching_session:queuing_latency_bucket{thread_pool_name="resnet_pool",le="+Inf"} 0
:tensorflow:serving:batching_session:queuing_latency_sum{thread_pool_name="resnet_pool"} 0
:tensorflow:serving:batching_session:queuing_latency_count{thread_pool_name="resnet_pool"} 0
# TYPE :tensorflow:serving:batching_session:processed_batch_size histogram
:tensorflow:serving:batching_session:processed_batch_size_bucket{le="1"} 0
:tensorflow:serving:batching_session:processed_batch_size_bucket{le="+Inf"} 0
:tensorflow:serving:batching_session:processed_batch_size_sum 0
:tensorflow:serving:batching_session:processed_batch_size_count 0
# TYPE :tensorflow:core:graph_runs counter
:tensorflow:core:graph_runs 5
`

// 100 more requests for resnet: 40 in (0, 1 ms], 40 in (1, 2], 20 in
// (2, 4], none slower; 8 more for the other model, which must not count.
const tfAfter = `# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="resnet",status="OK"} 200
:tensorflow:serving:request_count{model_name="resnet",status="INVALID_ARGUMENT"} 1
:tensorflow:serving:request_count{model_name="other",status="OK"} 15
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="1000"} 50
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="2000"} 140
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="4000"} 190
:tensorflow:serving:request_latency_bucket{model_name="resnet",API="predict",entrypoint="REST",le="+Inf"} 200
:tensorflow:serving:request_latency_sum{model_name="resnet",API="predict",entrypoint="REST"} 350000
:tensorflow:serving:request_latency_count{model_name="resnet",API="predict",entrypoint="REST"} 200
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="REST",le="1000"} 0
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="REST",le="2000"} 0
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="REST",le="4000"} 0
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="REST",le="+Inf"} 15
:tensorflow:serving:request_latency_sum{model_name="other",API="predict",entrypoint="REST"} 1500000
:tensorflow:serving:request_latency_count{model_name="other",API="predict",entrypoint="REST"} 15
# TYPE :tensorflow:serving:runtime_latency histogram
:tensorflow:serving:runtime_latency_bucket{model_name="resnet",API="Predict",runtime="TF1",le="1000"} 200
:tensorflow:serving:runtime_latency_bucket{model_name="resnet",API="Predict",runtime="TF1",le="+Inf"} 200
:tensorflow:serving:runtime_latency_sum{model_name="resnet",API="Predict",runtime="TF1"} 120000
:tensorflow:serving:runtime_latency_count{model_name="resnet",API="Predict",runtime="TF1"} 200
# TYPE :tensorflow:serving:batching_session:queuing_latency histogram
:tensorflow:serving:batching_session:queuing_latency_bucket{thread_pool_name="resnet_pool",le="100"} 10
:tensorflow:serving:batching_session:queuing_latency_bucket{thread_pool_name="resnet_pool",le="+Inf"} 25
:tensorflow:serving:batching_session:queuing_latency_sum{thread_pool_name="resnet_pool"} 5000
:tensorflow:serving:batching_session:queuing_latency_count{thread_pool_name="resnet_pool"} 25
# TYPE :tensorflow:serving:batching_session:processed_batch_size histogram
:tensorflow:serving:batching_session:processed_batch_size_bucket{le="1"} 0
:tensorflow:serving:batching_session:processed_batch_size_bucket{le="+Inf"} 25
:tensorflow:serving:batching_session:processed_batch_size_sum 100
:tensorflow:serving:batching_session:processed_batch_size_count 25
# TYPE :tensorflow:core:graph_runs counter
:tensorflow:core:graph_runs 9
`

func TestTFServingFamiliesGiveNamedFigures(t *testing.T) {
	w := window(t, Filter{Model: "resnet"}, tfBefore, tfAfter)
	if w.Server != "tfserving" {
		t.Errorf("server = %q", w.Server)
	}
	if w.Requests == nil || *w.Requests != 100 {
		t.Fatalf("requests = %v, want 100 (resnet's only)", w.Requests)
	}
	l := w.Latency
	if l == nil || l.Family != ":tensorflow:serving:request_latency" {
		t.Fatalf("latency = %+v", l)
	}
	near(t, "latency count", l.Count, 100)
	near(t, "latency mean", l.MeanMs, 1.5) // 150000 µs over 100
	// Rank 50 of 100: 40 below 1 ms, 10 of the 40 in (1, 2] -> 1.25 ms.
	near(t, "p50", l.P50.Ms, 1.25)
	near(t, "p50 bucket low", l.P50.BucketLowMs, 1)
	near(t, "p50 bucket high", *l.P50.BucketHighMs, 2)
	// Rank 90: 80 below 2 ms, 10 of the 20 in (2, 4] -> 3 ms.
	near(t, "p90", l.P90.Ms, 3)
	// Rank 99: 19 of the 20 in (2, 4] -> 3.9 ms.
	near(t, "p99", l.P99.Ms, 3.9)
	if w.Compute == nil || w.Compute.Family != ":tensorflow:serving:runtime_latency" {
		t.Fatalf("compute = %+v", w.Compute)
	}
	near(t, "compute mean", w.Compute.MeanMs, 0.7)
	if w.Queue == nil {
		t.Fatal("no queue figure")
	}
	near(t, "queue mean", w.Queue.MeanMs, 0.2)
	if w.BatchSizeMean == nil {
		t.Fatal("no batch size")
	}
	near(t, "batch size", *w.BatchSizeMean, 4)
	if len(w.Raw) != 1 || w.Raw[0].Name != ":tensorflow:core:graph_runs" || *w.Raw[0].Increase != 4 {
		t.Errorf("raw = %+v, want graph_runs increased by 4", w.Raw)
	}
	var client = 1.5 + 20
	if out, ok := OutsideMs(client, &w); !ok || math.Abs(out-20) > 1e-9 {
		t.Errorf("outside = %v, %v; want 20", out, ok)
	}
}

func TestModelFilterKeepsOtherModelsOut(t *testing.T) {
	all := window(t, Filter{}, tfBefore, tfAfter)
	if *all.Requests != 108 {
		t.Errorf("unfiltered requests = %v, want 108", *all.Requests)
	}
	near(t, "unfiltered latency count", all.Latency.Count, 108)
	other := window(t, Filter{Model: "other"}, tfBefore, tfAfter)
	if *other.Requests != 8 {
		t.Errorf("other's requests = %v, want 8", *other.Requests)
	}
	// The batching families carry no model label: kept for either.
	if other.BatchSizeMean == nil {
		t.Error("a series without a model label was dropped")
	}
}

func TestTritonFamiliesGiveNamedFigures(t *testing.T) {
	const before = `# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="densenet",version="1"} 1000
nv_inference_request_success{model="bert",version="1"} 50
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="densenet",version="1"} 2
# TYPE nv_inference_count counter
nv_inference_count{model="densenet",version="1"} 4000
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="densenet",version="1"} 500
# TYPE nv_inference_request_duration_us counter
nv_inference_request_duration_us{model="densenet",version="1"} 9000000
nv_inference_request_duration_us{model="bert",version="1"} 1000000
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="densenet",version="1"} 1000000
# TYPE nv_inference_compute_infer_duration_us counter
nv_inference_compute_infer_duration_us{model="densenet",version="1"} 5000000
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-a"} 0.5
nv_gpu_utilization{gpu_uuid="GPU-b"} 0.1
# TYPE nv_gpu_memory_used_bytes gauge
nv_gpu_memory_used_bytes{gpu_uuid="GPU-a"} 1e9
`
	const after = `# TYPE nv_inference_request_success counter
nv_inference_request_success{model="densenet",version="1"} 1200
nv_inference_request_success{model="bert",version="1"} 90
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="densenet",version="1"} 2
# TYPE nv_inference_count counter
nv_inference_count{model="densenet",version="1"} 4800
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="densenet",version="1"} 600
# TYPE nv_inference_request_duration_us counter
nv_inference_request_duration_us{model="densenet",version="1"} 10000000
nv_inference_request_duration_us{model="bert",version="1"} 9000000
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="densenet",version="1"} 1100000
# TYPE nv_inference_compute_infer_duration_us counter
nv_inference_compute_infer_duration_us{model="densenet",version="1"} 5600000
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-a"} 0.7
nv_gpu_utilization{gpu_uuid="GPU-b"} 0.3
# TYPE nv_gpu_memory_used_bytes gauge
nv_gpu_memory_used_bytes{gpu_uuid="GPU-a"} 3e9
`
	w := window(t, Filter{Model: "densenet"}, before, after)
	if w.Server != "triton" || w.Requests == nil || *w.Requests != 200 {
		t.Fatalf("server %q requests %v, want triton 200", w.Server, w.Requests)
	}
	near(t, "latency mean", w.Latency.MeanMs, 5)   // 1 s over 200
	near(t, "queue mean", w.Queue.MeanMs, 0.5)     // 0.1 s over 200
	near(t, "compute mean", w.Compute.MeanMs, 3)   // 0.6 s over 200
	near(t, "batch size", *w.BatchSizeMean, 8)     // 800 inferences in 100 executions
	near(t, "gpu util", *w.GPUUtilPct, 40)         // (60% + 20%) / 2
	near(t, "gpu memory", *w.GPUMemUsedBytes, 2e9) // mean of its two scrapes
	if w.Latency.P50 != nil {
		t.Error("a percentile from a counter of total time")
	}
}

func TestKServeFamiliesGiveNamedFigures(t *testing.T) {
	// prometheus_client's default buckets, in seconds.
	hist := func(n5, n10, n25, total int, sum string) string {
		return "# HELP request_predict_seconds predict request latency\n# TYPE request_predict_seconds histogram\n" +
			bucket("request_predict_seconds", `model_name="dense"`, "0.005", n5) +
			bucket("request_predict_seconds", `model_name="dense"`, "0.01", n10) +
			bucket("request_predict_seconds", `model_name="dense"`, "0.025", n25) +
			bucket("request_predict_seconds", `model_name="dense"`, "+Inf", total) +
			`request_predict_seconds_count{model_name="dense"} ` + itoa(total) + "\n" +
			`request_predict_seconds_sum{model_name="dense"} ` + sum + "\n" +
			"# HELP request_predict_seconds_created predict request latency\n# TYPE request_predict_seconds_created gauge\n" +
			`request_predict_seconds_created{model_name="dense"} 1.7e9` + "\n"
	}
	w := window(t, Filter{Model: "dense"}, hist(0, 0, 0, 0, "0"), hist(10, 30, 40, 40, "0.4"))
	if w.Server != "kserve" || *w.Requests != 40 {
		t.Fatalf("server %q requests %v", w.Server, *w.Requests)
	}
	near(t, "mean", w.Latency.MeanMs, 10)
	near(t, "p50", w.Latency.P50.Ms, 5+5*(20-10)/20.0) // rank 20: 10 below 5 ms, 10 of 20 in (5, 10]
	near(t, "p99", w.Latency.P99.Ms, 10+15*(39.6-30)/10)
}

func TestMLServerAndVLLMFamiliesGiveNamedFigures(t *testing.T) {
	ml := func(ok, dur int, sum string) string {
		return "# TYPE model_infer_request_success_total counter\n" +
			`model_infer_request_success_total{model="iris",version="v1"} ` + itoa(ok) + "\n" +
			"# TYPE model_infer_request_duration summary\n" +
			`model_infer_request_duration_count{model="iris",version="v1"} ` + itoa(dur) + "\n" +
			`model_infer_request_duration_sum{model="iris",version="v1"} ` + sum + "\n"
	}
	w := window(t, Filter{Model: "iris"}, ml(5, 5, "0.05"), ml(25, 25, "0.25"))
	if w.Server != "mlserver" || *w.Requests != 20 {
		t.Fatalf("server %q requests %v", w.Server, *w.Requests)
	}
	near(t, "mlserver mean", w.Latency.MeanMs, 10)

	vllm := func(total int, sum string, le1 int) string {
		return "# TYPE vllm:request_success_total counter\n" +
			`vllm:request_success_total{finished_reason="stop",model_name="opt"} ` + itoa(total) + "\n" +
			"# TYPE vllm:e2e_request_latency_seconds histogram\n" +
			bucket("vllm:e2e_request_latency_seconds", `model_name="opt"`, "1.0", le1) +
			bucket("vllm:e2e_request_latency_seconds", `model_name="opt"`, "2.5", total) +
			bucket("vllm:e2e_request_latency_seconds", `model_name="opt"`, "+Inf", total) +
			`vllm:e2e_request_latency_seconds_sum{model_name="opt"} ` + sum + "\n" +
			`vllm:e2e_request_latency_seconds_count{model_name="opt"} ` + itoa(total) + "\n"
	}
	w = window(t, Filter{Model: "opt"}, vllm(0, "0", 0), vllm(4, "6", 2))
	if w.Server != "vllm" || *w.Requests != 4 {
		t.Fatalf("server %q requests %v", w.Server, *w.Requests)
	}
	near(t, "vllm mean", w.Latency.MeanMs, 1500)
	near(t, "vllm p50", w.Latency.P50.Ms, 1000)
	near(t, "vllm p50 bucket high", *w.Latency.P50.BucketHighMs, 1000)
}

func TestDCGMFamiliesGiveGPUFigures(t *testing.T) {
	page := func(util, fb, power string) string {
		return "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n" +
			`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",modelName="NVIDIA A100"} ` + util + "\n" +
			"# TYPE DCGM_FI_DEV_FB_USED gauge\n" +
			`DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a",modelName="NVIDIA A100"} ` + fb + "\n" +
			"# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n" +
			`DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-a",modelName="NVIDIA A100"} ` + power + "\n"
	}
	w := window(t, Filter{Model: "resnet"}, page("80", "1024", "250"), page("90", "2048", "300"), page("100", "3072", "350"))
	near(t, "util", *w.GPUUtilPct, 90)
	near(t, "memory", *w.GPUMemUsedBytes, 2048<<20) // MiB to bytes
	near(t, "power", *w.GPUPowerW, 300)
	if f := family(t, w, "DCGM_FI_DEV_GPU_UTIL"); f.Count != 3 {
		t.Errorf("util scrapes = %v, want 3", f.Count)
	}
}

func TestBucketQuantileInterpolatesLikeHistogramQuantile(t *testing.T) {
	bounds := []float64{0.1, 0.5, 1, math.Inf(1)}
	cum := []float64{20, 60, 95, 100}
	cases := []struct {
		q, want, lo, hi float64
	}{
		{0.1, 0.05, 0, 0.1},              // rank 10 of the 20 in (0, 0.1]
		{0.5, 0.1 + 0.4*30/40, 0.1, 0.5}, // rank 50: 30 of the 40 in (0.1, 0.5]
		{0.9, 0.5 + 0.5*30/35, 0.5, 1},   // rank 90: 30 of the 35 in (0.5, 1]
		{0.99, 1, 1, math.Inf(1)},        // rank 99: in +Inf, the highest finite bound
	}
	for _, c := range cases {
		v, lo, hi, ok := BucketQuantile(c.q, bounds, cum)
		if !ok || math.Abs(v-c.want) > 1e-12 || lo != c.lo || hi != c.hi {
			t.Errorf("q%g = %v in (%v, %v] ok %v; want %v in (%v, %v]", c.q, v, lo, hi, ok, c.want, c.lo, c.hi)
		}
	}
	if _, _, _, ok := BucketQuantile(0.5, bounds, []float64{0, 0, 0, 0}); ok {
		t.Error("a quantile of nothing")
	}
}

func TestCounterResetCountsOnlySinceTheRestart(t *testing.T) {
	page := func(n int, cum1, cum2 int, sum string) string {
		return "# TYPE :tensorflow:serving:request_count counter\n" +
			`:tensorflow:serving:request_count{model_name="m",status="OK"} ` + itoa(n) + "\n" +
			"# TYPE :tensorflow:serving:request_latency histogram\n" +
			bucket(":tensorflow:serving:request_latency", `model_name="m",API="predict",entrypoint="REST"`, "1000", cum1) +
			bucket(":tensorflow:serving:request_latency", `model_name="m",API="predict",entrypoint="REST"`, "+Inf", cum2) +
			`:tensorflow:serving:request_latency_sum{model_name="m",API="predict",entrypoint="REST"} ` + sum + "\n" +
			`:tensorflow:serving:request_latency_count{model_name="m",API="predict",entrypoint="REST"} ` + itoa(cum2) + "\n"
	}
	// 500 -> 600 (100 requests), restart, 0 -> 30 seen as 30, -> 50.
	w := window(t, Filter{}, page(500, 400, 500, "500000"), page(600, 450, 600, "600000"), page(30, 30, 30, "15000"), page(50, 50, 50, "25000"))
	if *w.Requests != 100+30+20 {
		t.Errorf("requests = %v, want 150", *w.Requests)
	}
	near(t, "latency count", w.Latency.Count, 150)
	near(t, "latency mean", w.Latency.MeanMs, (100000.0+15000+10000)/150/1000)
	if len(w.Warnings) != 1 || !strings.Contains(w.Warnings[0], "restarted") || !strings.Contains(w.Warnings[0], "and 1 other series") ||
		!strings.Contains(w.Warnings[0], "in that interval before the restart is missing") {
		t.Errorf("warnings = %q, want one for the restart, of both series", w.Warnings)
	}
	for _, f := range w.Families {
		if f.Count < 0 || f.Mean < 0 {
			t.Errorf("%s went negative: %+v", f.Name, f)
		}
	}
}

func bucket(name, labels, le string, n int) string {
	return name + "_bucket{" + labels + `,le="` + le + `"} ` + itoa(n) + "\n"
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// An interval lists a gauge when it first shows and when it changes, and
// a counter when it moved: a constant gauge is not repeated in every one.
func TestIntervalsListAGaugeOnlyWhenItChanges(t *testing.T) {
	v := func(x float64) *float64 { return &x }
	gauges := map[string]float64{}
	fds := func(n float64) RawChange {
		return RawChange{Name: "process_open_fds", Type: "gauge", Last: v(n)}
	}
	idle := RawChange{Name: "requests_total", Type: "counter", Increase: v(0)}
	busy := RawChange{Name: "requests_total", Type: "counter", Increase: v(3)}
	for i, c := range []struct {
		raw  []RawChange
		want int
	}{
		{[]RawChange{fds(42), idle}, 1}, // first seen
		{[]RawChange{fds(42), idle}, 0}, // nothing moved
		{[]RawChange{fds(43), busy}, 2}, // both moved
		{[]RawChange{fds(43), busy}, 1}, // the counter moved again
	} {
		if got := changed(c.raw, gauges); len(got) != c.want {
			t.Errorf("interval %d: listed %+v, want %d series", i, got, c.want)
		}
	}
}

// A latency whose sum is NaN is no figure: not a mean of 0 that makes the
// server look instant and "outside the server" the client's whole mean.
func TestASumThatIsNotANumberIsNoFigure(t *testing.T) {
	page := func(n int, sum string) string {
		return "# TYPE :tensorflow:serving:request_latency histogram\n" +
			bucket(":tensorflow:serving:request_latency", `model_name="m",API="predict",entrypoint="REST"`, "1000", n) +
			bucket(":tensorflow:serving:request_latency", `model_name="m",API="predict",entrypoint="REST"`, "+Inf", n) +
			`:tensorflow:serving:request_latency_sum{model_name="m",API="predict",entrypoint="REST"} ` + sum + "\n" +
			`:tensorflow:serving:request_latency_count{model_name="m",API="predict",entrypoint="REST"} ` + itoa(n) + "\n"
	}
	w := window(t, Filter{}, page(10, "NaN"), page(20, "NaN"))
	if w.Latency != nil {
		t.Errorf("latency %+v from a NaN sum", w.Latency)
	}
	if len(w.Warnings) == 0 || !strings.Contains(w.Warnings[0], "not a number") {
		t.Errorf("warnings %q", w.Warnings)
	}
}

// MLServer over HTTP: the HTTP server's time of the inference path is
// the request latency (it holds the codec and HTTP handling), the
// model's own time is compute; other paths are not the load's.
func TestMLServersHTTPInferenceTimeIsItsLatency(t *testing.T) {
	const infer, health = `method="POST",path="/v2/models/{model_name}/infer",status_code="200"`, `method="GET",path="/v2/health/ready",status_code="200"`
	page := func(n int, httpSum, modelSum string) string {
		return "# TYPE model_infer_request_success_total counter\n" +
			`model_infer_request_success_total{model="iris",version="v1"} ` + itoa(n) + "\n" +
			"# TYPE model_infer_request_duration summary\n" +
			`model_infer_request_duration_count{model="iris",version="v1"} ` + itoa(n) + "\n" +
			`model_infer_request_duration_sum{model="iris",version="v1"} ` + modelSum + "\n" +
			"# TYPE rest_server_request_duration_seconds histogram\n" +
			bucket("rest_server_request_duration_seconds", infer, "0.01", 0) +
			bucket("rest_server_request_duration_seconds", infer, "0.025", n) +
			bucket("rest_server_request_duration_seconds", infer, "+Inf", n) +
			`rest_server_request_duration_seconds_sum{` + infer + `} ` + httpSum + "\n" +
			`rest_server_request_duration_seconds_count{` + infer + `} ` + itoa(n) + "\n" +
			bucket("rest_server_request_duration_seconds", health, "0.01", 2*n) +
			bucket("rest_server_request_duration_seconds", health, "0.025", 2*n) +
			bucket("rest_server_request_duration_seconds", health, "+Inf", 2*n) +
			`rest_server_request_duration_seconds_sum{` + health + `} 0.001` + "\n" +
			`rest_server_request_duration_seconds_count{` + health + `} ` + itoa(2*n) + "\n"
	}
	// 20 requests: 15 ms each over HTTP, 10 ms each in the model.
	w := window(t, Filter{Model: "iris"}, page(5, "0.075", "0.05"), page(25, "0.375", "0.25"))
	if w.Latency == nil || w.Latency.Family != "rest_server_request_duration_seconds" || w.Latency.Count != 20 {
		t.Fatalf("latency %+v: want the HTTP server's inference path", w.Latency)
	}
	near(t, "mlserver HTTP mean", w.Latency.MeanMs, 15)
	if w.Compute == nil || w.Compute.Family != "model_infer_request_duration" {
		t.Fatalf("compute %+v: want the model's own time", w.Compute)
	}
	near(t, "mlserver model mean", w.Compute.MeanMs, 10)
}

// MLServer over gRPC: its interceptor's histogram of the V2 service's
// ModelInfer calls is the request latency, beside an HTTP family that
// timed nothing in the window; the other methods are not the load's.
func TestMLServersGRPCInferenceTimeIsItsLatency(t *testing.T) {
	const infer, meta = `grpc_method="ModelInfer",grpc_service="inference.GRPCInferenceService",grpc_type="UNARY"`, `grpc_method="ModelMetadata",grpc_service="inference.GRPCInferenceService",grpc_type="UNARY"`
	const rest = `method="POST",path="/v2/models/{model_name}/infer",status_code="200"`
	page := func(n int, grpcSum string) string {
		return "# TYPE model_infer_request_success_total counter\n" +
			`model_infer_request_success_total{model="iris",version="v1"} ` + itoa(n) + "\n" +
			"# TYPE rest_server_request_duration_seconds histogram\n" +
			bucket("rest_server_request_duration_seconds", rest, "0.01", 3) +
			bucket("rest_server_request_duration_seconds", rest, "+Inf", 3) +
			`rest_server_request_duration_seconds_sum{` + rest + `} 0.01` + "\n" +
			`rest_server_request_duration_seconds_count{` + rest + `} 3` + "\n" +
			"# TYPE grpc_server_handling_seconds histogram\n" +
			bucket("grpc_server_handling_seconds", infer, "0.005", 0) +
			bucket("grpc_server_handling_seconds", infer, "0.01", n) +
			bucket("grpc_server_handling_seconds", infer, "+Inf", n) +
			`grpc_server_handling_seconds_sum{` + infer + `} ` + grpcSum + "\n" +
			`grpc_server_handling_seconds_count{` + infer + `} ` + itoa(n) + "\n" +
			bucket("grpc_server_handling_seconds", meta, "0.005", 4*n) +
			bucket("grpc_server_handling_seconds", meta, "+Inf", 4*n) +
			`grpc_server_handling_seconds_sum{` + meta + `} 0.001` + "\n" +
			`grpc_server_handling_seconds_count{` + meta + `} ` + itoa(4*n) + "\n"
	}
	// 20 calls of 8 ms each.
	w := window(t, Filter{Model: "iris"}, page(5, "0.04"), page(25, "0.2"))
	if w.Server != "mlserver" || w.Requests == nil || *w.Requests != 20 {
		t.Fatalf("server %q requests %v", w.Server, w.Requests)
	}
	if w.Latency == nil || w.Latency.Family != "grpc_server_handling_seconds" || w.Latency.Count != 20 {
		t.Fatalf("latency %+v: want the gRPC server's ModelInfer calls", w.Latency)
	}
	near(t, "mlserver gRPC mean", w.Latency.MeanMs, 8)
}
