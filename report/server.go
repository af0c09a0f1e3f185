package report

// ServerReport is what the model server said about itself over the run
// (--metrics): its own count and latency of the requests over the steady
// phase, beside the client's, and what it measured around the model. The
// figures heading the block are those of the endpoint Head, whose request
// count is nearest the client's; every endpoint's own are in Endpoints.
type ServerReport struct {
	ServerWindow
	// OutsideMs is the client's mean latency of the successful steady
	// requests minus the server's mean over the same phase: time spent
	// outside the server (network, a tunnel, a proxy, the client itself).
	OutsideMs *float64         `json:"outside_ms"`
	Head      string           `json:"head,omitempty"`   // the URL of the endpoint the request figures are from
	Server    string           `json:"server,omitempty"` // tfserving, triton, kserve, mlserver, vllm
	Model     string           `json:"model,omitempty"`  // the series kept: this model's
	Families  []ServerFamily   `json:"families,omitempty"`
	Profile   *ServerWindow    `json:"profile,omitempty"` // over the profile window
	Intervals []ServerInterval `json:"intervals,omitempty"`
	Endpoints []ServerEndpoint `json:"endpoints"`
	Warnings  []string         `json:"warnings,omitempty"`
}

// ServerWindow is the server's figures over one stretch of the run,
// between two scrapes.
type ServerWindow struct {
	Window string  `json:"window"` // "steady", "profile", or "run" when the steady phase's scrapes failed
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// StartLagMs and EndLagMs are how long after the phase's start and
	// end (the marks) the answers of the scrapes at the window's edges
	// came (a scrape under way delays them): the server read its counters
	// somewhere in that span, so requests that ended in it may fall on
	// either side. Absent when a scrape at the mark failed.
	StartLagMs *float64 `json:"start_lag_ms,omitempty"`
	EndLagMs   *float64 `json:"end_lag_ms,omitempty"`
	ServerFigures
}

// ServerFigures are the named figures of a window; nil when the server
// exports no family for them.
type ServerFigures struct {
	Requests        *float64       `json:"requests"`
	LatencyMs       *ServerLatency `json:"latency_ms"`
	QueueMs         *ServerLatency `json:"queue_ms,omitempty"`
	ComputeMs       *ServerLatency `json:"compute_ms,omitempty"`
	BatchSizeMean   *float64       `json:"batch_size_mean,omitempty"`
	GPUUtilPct      *float64       `json:"gpu_util_pct,omitempty"`
	GPUMemUsedBytes *float64       `json:"gpu_mem_used_bytes,omitempty"`
	GPUPowerW       *float64       `json:"gpu_power_w,omitempty"`
}

// ServerLatency is a time per request the server measured.
type ServerLatency struct {
	Family string          `json:"family"`
	Count  float64         `json:"count"`
	Mean   float64         `json:"mean"`
	P50    *ServerQuantile `json:"p50,omitempty"`
	P90    *ServerQuantile `json:"p90,omitempty"`
	P99    *ServerQuantile `json:"p99,omitempty"`
}

// ServerQuantile is a percentile estimated from histogram buckets: Ms
// lies in the bucket from BucketLowMs to BucketHighMs (nil: +Inf).
type ServerQuantile struct {
	Ms           float64  `json:"ms"`
	BucketLowMs  float64  `json:"bucket_low_ms"`
	BucketHighMs *float64 `json:"bucket_high_ms"`
}

// ServerFamily is one known family's figure over the steady phase.
type ServerFamily struct {
	Name   string          `json:"name"`
	What   string          `json:"what"`
	Unit   string          `json:"unit"`
	Series int             `json:"series"`
	Count  float64         `json:"count"`
	Mean   *float64        `json:"mean,omitempty"` // absent for counters: a count has no mean
	P50    *ServerQuantile `json:"p50,omitempty"`
	P90    *ServerQuantile `json:"p90,omitempty"`
	P99    *ServerQuantile `json:"p99,omitempty"`
}

// ServerInterval is one interval between two successful scrapes, with the
// client's figures over the seconds it covers.
type ServerInterval struct {
	StartS         float64         `json:"start_s"`
	EndS           float64         `json:"end_s"`
	Requests       *float64        `json:"requests"`
	MeanMs         *float64        `json:"mean_ms"`
	P99            *ServerQuantile `json:"p99"`
	ClientRequests int64           `json:"client_requests"`
	ClientP99Ms    *float64        `json:"client_p99_ms"`
	ClientMeanMs   *float64        `json:"client_mean_ms"`
	Raw            []ServerRaw     `json:"raw,omitempty"`
}

// ServerEndpoint is one --metrics endpoint: how its scrapes went, and the
// families it exported that loadprof has no name for, as raw differences
// over the steady phase (per interval in Intervals[].raw).
type ServerEndpoint struct {
	URL           string        `json:"url"`
	Server        string        `json:"server,omitempty"`
	Scrapes       int           `json:"scrapes"`
	FailedScrapes int           `json:"failed_scrapes"`
	Steady        *ServerWindow `json:"steady"`
	Raw           []ServerRaw   `json:"raw,omitempty"`
}

// ServerRaw is one series of a family loadprof does not know.
type ServerRaw struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Labels   map[string]string `json:"labels,omitempty"`
	Increase *float64          `json:"increase,omitempty"` // counter
	Count    *float64          `json:"count,omitempty"`    // histogram, summary
	Sum      *float64          `json:"sum,omitempty"`      // histogram, summary
	Last     *float64          `json:"last,omitempty"`     // gauge, untyped
}
