package servermetrics

// what a known family measures.
type what string

const (
	whatRequests   what = "requests"    // a request counter
	whatLatency    what = "latency"     // the server's time for a request
	whatQueue      what = "queue"       // time waiting for a worker or a batch
	whatCompute    what = "compute"     // time running the model
	whatStage      what = "stage"       // another part of a request (pre/post-processing)
	whatBatchSize  what = "batch_size"  // a histogram of executed batch sizes
	whatInferences what = "inferences"  // Triton: inferences (batch items) counted
	whatExecutions what = "executions"  // Triton: model executions (batches) counted
	whatGPUUtil    what = "gpu_util"    // GPU utilisation
	whatGPUMemory  what = "gpu_memory"  // GPU memory in use
	whatGPUPower   what = "gpu_power"   // GPU power draw
	whatOtherCount what = "other_count" // a counter worth naming (tokens, batches)
)

// shape is how a family carries its figure.
type shape int

const (
	shapeCounter       shape = iota // a counter: its increase
	shapeHistogram                  // buckets: count, mean, percentiles
	shapeSummary                    // count and sum: count and mean
	shapeDurationTotal              // a counter of total time, divided by countFamilies' increase
	shapeGauge                      // a gauge: mean over the window's scrapes
)

// familySpec describes a family a known server exports.
type familySpec struct {
	name   string
	server string
	what   what
	shape  shape
	// scale turns the exported unit into the figure's: milliseconds for
	// times, percent for utilisation, bytes for memory, watts for power.
	scale float64
	unit  string // of the figure, for the family list
	// countFamilies, for shapeDurationTotal: the counters whose increase
	// is the number of requests the total time is over.
	countFamilies []string
	// labels, when set, are label values a series must have to count
	// (MLServer's HTTP family times every path; only inference is the
	// load's).
	labels map[string]string
	// latencyAlone: a compute family that is the request latency when
	// the server exports no latency family (MLServer over gRPC).
	latencyAlone bool
}

// matches reports whether a series with these labels counts for spec.
func (spec *familySpec) matches(labels map[string]string) bool {
	for k, v := range spec.labels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

const (
	usToMs = 1e-3
	sToMs  = 1e3
)

// knownFamilies are the families servermetrics names, in order of
// preference for a window's headline figures (the first one present
// gives Requests, Latency, ...). Names, labels and units are the servers'
// own, read from their sources:
//   - TF Serving (tensorflow_serving/servables/tensorflow/util.cc,
//     batching/batching_session.cc, batching/batching_util.h; the
//     exporter turns "/" into ":"): latencies in microseconds.
//   - Triton (docs/user_guide/metrics.md): cumulative durations in
//     microseconds, counted per request.
//   - KServe's ModelServer (python/kserve/kserve/metrics.py): histograms
//     in seconds, label model_name.
//   - MLServer (mlserver/handlers/dataplane.py, its REST server's
//     starlette exporter, prefix rest_server; mlserver/grpc/interceptors.py
//     with py_grpc_prometheus/server_metrics.py): the model's time a
//     summary in seconds (labels model and version), the HTTP server's a
//     histogram in seconds by path template, the gRPC server's a
//     histogram in seconds by service and method.
//   - vLLM (vllm/engine/metrics.py, v1/metrics/loggers.py): histograms in
//     seconds with the vllm: prefix.
//   - NVIDIA's DCGM exporter: percent, MiB and watts.
var knownFamilies = []familySpec{
	{name: ":tensorflow:serving:request_count", server: "tfserving", what: whatRequests, shape: shapeCounter, scale: 1, unit: "requests"},
	{name: ":tensorflow:serving:request_latency", server: "tfserving", what: whatLatency, shape: shapeHistogram, scale: usToMs, unit: "ms"},
	{name: ":tensorflow:serving:runtime_latency", server: "tfserving", what: whatCompute, shape: shapeHistogram, scale: usToMs, unit: "ms"},
	{name: ":tensorflow:serving:batching_session:queuing_latency", server: "tfserving", what: whatQueue, shape: shapeHistogram, scale: usToMs, unit: "ms"},
	{name: ":tensorflow:serving:batching_session:processed_batch_size", server: "tfserving", what: whatBatchSize, shape: shapeHistogram, scale: 1, unit: "items"},
	{name: ":tensorflow:serving:batching_session:padding_size", server: "tfserving", what: whatStage, shape: shapeHistogram, scale: 1, unit: "items"},
	{name: ":tensorflow:serving:batching_session:input_batch_size", server: "tfserving", what: whatStage, shape: shapeHistogram, scale: 1, unit: "items"},

	{name: "nv_inference_request_success", server: "triton", what: whatRequests, shape: shapeCounter, scale: 1, unit: "requests"},
	{name: "nv_inference_request_failure", server: "triton", what: whatRequests, shape: shapeCounter, scale: 1, unit: "requests"},
	{name: "nv_inference_request_duration_us", server: "triton", what: whatLatency, shape: shapeDurationTotal, scale: usToMs, unit: "ms", countFamilies: []string{"nv_inference_request_success"}},
	{name: "nv_inference_queue_duration_us", server: "triton", what: whatQueue, shape: shapeDurationTotal, scale: usToMs, unit: "ms", countFamilies: []string{"nv_inference_request_success"}},
	{name: "nv_inference_compute_infer_duration_us", server: "triton", what: whatCompute, shape: shapeDurationTotal, scale: usToMs, unit: "ms", countFamilies: []string{"nv_inference_request_success"}},
	{name: "nv_inference_compute_input_duration_us", server: "triton", what: whatStage, shape: shapeDurationTotal, scale: usToMs, unit: "ms", countFamilies: []string{"nv_inference_request_success"}},
	{name: "nv_inference_compute_output_duration_us", server: "triton", what: whatStage, shape: shapeDurationTotal, scale: usToMs, unit: "ms", countFamilies: []string{"nv_inference_request_success"}},
	{name: "nv_inference_count", server: "triton", what: whatInferences, shape: shapeCounter, scale: 1, unit: "inferences"},
	{name: "nv_inference_exec_count", server: "triton", what: whatExecutions, shape: shapeCounter, scale: 1, unit: "executions"},
	{name: "nv_gpu_utilization", server: "triton", what: whatGPUUtil, shape: shapeGauge, scale: 100, unit: "pct"},
	{name: "nv_gpu_memory_used_bytes", server: "triton", what: whatGPUMemory, shape: shapeGauge, scale: 1, unit: "bytes"},
	{name: "nv_gpu_power_usage", server: "triton", what: whatGPUPower, shape: shapeGauge, scale: 1, unit: "w"},

	{name: "request_predict_seconds", server: "kserve", what: whatLatency, shape: shapeHistogram, scale: sToMs, unit: "ms"},
	{name: "request_preprocess_seconds", server: "kserve", what: whatStage, shape: shapeHistogram, scale: sToMs, unit: "ms"},
	{name: "request_postprocess_seconds", server: "kserve", what: whatStage, shape: shapeHistogram, scale: sToMs, unit: "ms"},
	{name: "request_explain_seconds", server: "kserve", what: whatStage, shape: shapeHistogram, scale: sToMs, unit: "ms"},

	{name: "model_infer_request_success_total", server: "mlserver", what: whatRequests, shape: shapeCounter, scale: 1, unit: "requests"},
	{name: "model_infer_request_failure_total", server: "mlserver", what: whatRequests, shape: shapeCounter, scale: 1, unit: "requests"},
	// The HTTP server's time of an inference request is the server's
	// latency (it holds the codec and the HTTP handling); the model's own
	// time is compute, and the latency when no HTTP family is there.
	{name: "rest_server_request_duration_seconds", server: "mlserver", what: whatLatency, shape: shapeHistogram, scale: sToMs, unit: "ms",
		labels: map[string]string{"path": "/v2/models/{model_name}/infer"}},
	// Over gRPC, MLServer's interceptor (py-grpc-prometheus's, with its
	// handling-time histogram on) times each call of the V2 service; its
	// series have no model label, so another model's calls count too.
	{name: "grpc_server_handling_seconds", server: "mlserver", what: whatLatency, shape: shapeHistogram, scale: sToMs, unit: "ms",
		labels: map[string]string{"grpc_service": "inference.GRPCInferenceService", "grpc_method": "ModelInfer"}},
	{name: "model_infer_request_duration", server: "mlserver", what: whatCompute, shape: shapeSummary, scale: sToMs, unit: "ms", latencyAlone: true},
	{name: "rest_server_requests_duration_seconds", server: "mlserver", what: whatStage, shape: shapeHistogram, scale: sToMs, unit: "ms"},

	{name: "vllm:request_success_total", server: "vllm", what: whatRequests, shape: shapeCounter, scale: 1, unit: "requests"},
	{name: "vllm:e2e_request_latency_seconds", server: "vllm", what: whatLatency, shape: shapeHistogram, scale: sToMs, unit: "ms"},
	{name: "vllm:request_queue_time_seconds", server: "vllm", what: whatQueue, shape: shapeHistogram, scale: sToMs, unit: "ms"},
	{name: "vllm:request_inference_time_seconds", server: "vllm", what: whatCompute, shape: shapeHistogram, scale: sToMs, unit: "ms"},
	{name: "vllm:time_to_first_token_seconds", server: "vllm", what: whatStage, shape: shapeHistogram, scale: sToMs, unit: "ms"},
	{name: "vllm:inter_token_latency_seconds", server: "vllm", what: whatStage, shape: shapeHistogram, scale: sToMs, unit: "ms"},
	{name: "vllm:time_per_output_token_seconds", server: "vllm", what: whatStage, shape: shapeHistogram, scale: sToMs, unit: "ms"},
	{name: "vllm:prompt_tokens_total", server: "vllm", what: whatOtherCount, shape: shapeCounter, scale: 1, unit: "tokens"},
	{name: "vllm:generation_tokens_total", server: "vllm", what: whatOtherCount, shape: shapeCounter, scale: 1, unit: "tokens"},

	{name: "DCGM_FI_DEV_GPU_UTIL", server: "dcgm", what: whatGPUUtil, shape: shapeGauge, scale: 1, unit: "pct"},
	{name: "DCGM_FI_DEV_FB_USED", server: "dcgm", what: whatGPUMemory, shape: shapeGauge, scale: 1 << 20, unit: "bytes"},
	{name: "DCGM_FI_DEV_POWER_USAGE", server: "dcgm", what: whatGPUPower, shape: shapeGauge, scale: 1, unit: "w"},
}

var knownByName = func() map[string]*familySpec {
	m := make(map[string]*familySpec, len(knownFamilies))
	for i := range knownFamilies {
		m[knownFamilies[i].name] = &knownFamilies[i]
	}
	return m
}()

// CountsRequests reports whether the known family name counts or times
// the server's requests (its request count or request latency).
func CountsRequests(name string) bool {
	spec := knownByName[name]
	return spec != nil && (spec.what == whatRequests || spec.what == whatLatency)
}

// KnownOrder is the place of the known family name in loadprof's list
// (servers in order, each's request count first); -1 when unknown.
func KnownOrder(name string) int {
	for i := range knownFamilies {
		if knownFamilies[i].name == name {
			return i
		}
	}
	return -1
}
