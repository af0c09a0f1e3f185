package report

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/internal/outfile"
)

// Version is loadprof's version, written into results.
const Version = "0.1.0"

// ResultVersion is the version of the result.json schema (documented in
// docs/result-schema.md). Version 2: latency_ms counts every request that
// reached the server, failures at the time they failed (version 1 counted
// answered requests only), and latency_ok_ms the successful ones. Version
// 3 counts the same requests and adds to it: typed config values, where
// and by what the run was made, finished_at, the units, the per-second
// and warm-up histograms, and each input of a merge; "outside" is null
// when there was no profile window (version 2 repeated the whole there).
// Versions 2 and 3 are read, compared and merged alike.
const ResultVersion = 3

// Result is a finished (or interrupted) run, as written to result.json.
// Other tools read this file: keys are only ever added.
type Result struct {
	Version   int            `json:"version"`
	Tool      string         `json:"tool"`
	Config    map[string]any `json:"config"`
	StartedAt time.Time      `json:"started_at"`
	Target    string         `json:"target"`
	Transport string         `json:"transport"`
	// Protocol is the model server protocol and its tensor encoding (see
	// the Protocol constants); "" in results that predate it, which were
	// all TF Serving's (ProtocolOf).
	Protocol      string            `json:"protocol,omitempty"`
	Loop          string            `json:"loop"`                  // "open" or "closed"
	LatencyFrom   string            `json:"latency_measured_from"` // "intended_send" or "send"
	Phases        Phases            `json:"phases"`
	Requests      int64             `json:"requests"` // steady phase, finished
	Errors        map[string]int64  `json:"errors"`   // steady phase, by class
	ErrorSamples  map[string]string `json:"error_samples,omitempty"`
	ThroughputRPS float64           `json:"throughput_rps"`
	SuccessRPS    float64           `json:"success_rps"`
	// Latency covers every steady request that reached the server:
	// answered with any status, or failed after it was sent (a timeout
	// counts as --timeout). It is what compare and SLOs judge. LatencyOK
	// covers the successful requests only.
	Latency     Stats          `json:"latency_ms"`
	LatencyOK   Stats          `json:"latency_ok_ms"`
	Window      *Slice         `json:"window"`  // steady requests sent while the profile window was open
	Outside     *Slice         `json:"outside"` // the other steady requests
	Histogram   string         `json:"histogram"`
	HistogramOK string         `json:"histogram_ok,omitempty"`
	Series      []Second       `json:"series"`
	Profile     *ProfileReport `json:"profile"`
	Client      ClientStats    `json:"client"`
	Interrupted bool           `json:"interrupted"`
	Unfinished  int64          `json:"unfinished"`

	// Version 3.
	FinishedAt time.Time `json:"finished_at"`
	Units      Units     `json:"units"`
	Build      BuildInfo `json:"build"`
	Host       *HostInfo `json:"host,omitempty"` // nil in a merge: each input has its own
	// SeriesHistograms are the histograms behind Series, one per second
	// that recorded latency (see SecondHistogram).
	SeriesHistograms []SecondHistogram `json:"series_histograms,omitempty"`
	// SeriesUnknown names the per-second keys of Series whose values are
	// not known (written as 0): a version 2 result has no p90_us, sent,
	// inflight, bytes_sent or bytes_received, and a merge of one inherits
	// that. Pages leave them out rather than draw zeros.
	SeriesUnknown []string `json:"series_unknown,omitempty"`
	// MergedFrom are the inputs of a merge, each with its own settings.
	MergedFrom []MergedInput `json:"merged_from,omitempty"`

	// The load the run was planned at, whatever the settings were called:
	// Rate (open loop, requests per second) or Concurrency (closed loop),
	// and MaxInflight, the open loop's bound on requests in flight. Zero
	// when not known (a merge). Reading a result that predates them fills
	// them from its config.
	Rate        float64 `json:"rate,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	MaxInflight int     `json:"max_inflight,omitempty"`

	// Server is what the model server's metrics said over the run
	// (--metrics); nil without them.
	Server *ServerReport `json:"server,omitempty"`

	// Workers are the machines of a coordinated run (run --workers), one
	// entry for each worker asked for, whether it joined, finished or not;
	// nil for a run from one machine.
	Workers []WorkerReport `json:"workers,omitempty"`

	// An OpenAI-compatible (LLM) target's streamed answers, over the
	// steady requests; absent for other targets. TTFT and E2E hold the
	// requests whose streams completed with output, ITL every gap between
	// two output chunks, TPOT the requests with two output tokens or more
	// (docs/result-schema.md). Latency stays the end-to-end latency of
	// every request, as for any target.
	TTFT *Stats `json:"ttft_ms,omitempty"`
	ITL  *Stats `json:"itl_ms,omitempty"`
	TPOT *Stats `json:"tpot_ms,omitempty"`
	E2E  *Stats `json:"e2e_ms,omitempty"`
	// OutputTokens and InputTokens are the steady requests' totals (the
	// server's usage when it sent one, else the output chunks counted);
	// OutputTokensPerS is the output of the completed streams over the
	// steady span.
	OutputTokens     *int64   `json:"output_tokens,omitempty"`
	InputTokens      *int64   `json:"input_tokens,omitempty"`
	OutputTokensPerS *float64 `json:"output_tokens_per_s,omitempty"`
	// StreamsWithoutOutput counts the steady streams that reached
	// data: [DONE] without one output chunk; UsageBelowChunks the steady
	// answers whose usage gave fewer completion tokens than the output
	// chunks streamed (the chunks' count is kept). Both are warned of in
	// the summary; absent when 0.
	StreamsWithoutOutput *int64 `json:"streams_without_output,omitempty"`
	UsageBelowChunks     *int64 `json:"usage_below_chunks,omitempty"`
	// OutputTokensPerSPerRequest is the distribution of each timed
	// stream's own output tokens over its end-to-end latency (e2e_ms,
	// from the intended send time in the open loop): LLMPerf's
	// request_output_throughput_token_per_s. In tokens/s; its
	// percentiles are of those rates (p99: 99% of the streams were at
	// most this fast; min is the slowest).
	OutputTokensPerSPerRequest *Stats `json:"output_tokens_per_s_per_request,omitempty"`
	// Goodput is the steady requests that met --slo's LLM terms one by
	// one (report/llmslo.go); absent without such terms.
	Goodput *Goodput `json:"goodput,omitempty"`
	// LLMHistograms keeps the histograms behind TTFT, ITL, TPOT and E2E,
	// for exact merges and the .hgrm files. LLMWindow and LLMOutside split
	// the steady streams by the profile window, when one ran.
	LLMHistograms *LLMHistograms `json:"llm_histograms,omitempty"`
	LLMWindow     *LLMSlice      `json:"llm_window,omitempty"`
	LLMOutside    *LLMSlice      `json:"llm_outside,omitempty"`
}

// WorkerReport is one worker of a coordinated run as the coordinator saw
// it.
type WorkerReport struct {
	Index  int    `json:"index"` // 1-based, the order of joining
	Name   string `json:"name,omitempty"`
	Host   string `json:"host,omitempty"` // the address it joined from
	Status string `json:"status"`         // WorkerOK, WorkerInterrupted, WorkerLost, WorkerNeverJoined, WorkerRefused or WorkerFailed
	// Error says what went wrong, for any status but ok.
	Error string `json:"error,omitempty"`
	// Requests and Errors are its steady phase's: from its result, or, for
	// a worker lost mid-run, the last counts it reported (not merged).
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// ClockOffsetMs is the worker's clock minus the coordinator's, as
	// measured at join (the round trip with the least delay, as NTP does),
	// and ClockUncertaintyMs half that round trip: the offset is known to
	// within it.
	ClockOffsetMs      float64 `json:"clock_offset_ms"`
	ClockUncertaintyMs float64 `json:"clock_uncertainty_ms"`
	// Share is the load it was given: requests per second (open loop) or
	// requests in flight (closed loop).
	Share float64 `json:"share,omitempty"`
	// CoveredS and Histogram keep what a worker lost mid-run had sent of
	// its per-second latencies before it went silent: the seconds from
	// its start they cover, and its steady requests' latencies over those
	// seconds (encoded as Histogram is). They are not in the merged
	// figures, which come from whole results only.
	CoveredS  float64 `json:"covered_s,omitempty"`
	Histogram string  `json:"histogram,omitempty"`
}

// The statuses of a WorkerReport.
const (
	WorkerOK          = "ok"           // ran its share and sent its result
	WorkerInterrupted = "interrupted"  // stopped early (Ctrl-C on the coordinator) and sent what it measured
	WorkerLost        = "lost"         // stopped answering mid-run: its measurements are not in the result
	WorkerNeverJoined = "never_joined" // did not join within the join timeout
	WorkerRefused     = "refused"      // joined with a clock too far off (--max-clock-offset)
	WorkerFailed      = "failed"       // ran, but its run failed (it says why)
	WorkerLate        = "late"         // began after the common start (its join reply came late): its share ran on a span of its own
)

// Units are the units of the numbers whose names do not carry one.
type Units struct {
	Histograms      string `json:"histograms"`       // values of every encoded histogram: "us"
	ConfigDurations string `json:"config_durations"` // durations among the config values: "s"
}

// CurrentUnits are the units loadprof writes.
var CurrentUnits = Units{Histograms: "us", ConfigDurations: "s"}

// BuildInfo says which loadprof wrote a result.
type BuildInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`      // vcs.revision, when the binary was built from a checkout
	CommitTime string `json:"commit_time,omitempty"` // vcs.time
	Modified   bool   `json:"modified,omitempty"`    // built with uncommitted changes
	Go         string `json:"go"`
}

// HostInfo says where a run was made.
type HostInfo struct {
	Name       string `json:"name"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"` // the OS threads running Go code (--cpus)
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// MergedInput is one result that went into a merge, as it was: its own
// settings and where, when and by what it was made.
type MergedInput struct {
	File          string         `json:"file"`
	Version       int            `json:"version"`
	Tool          string         `json:"tool"`
	Build         *BuildInfo     `json:"build,omitempty"` // nil for a version 2 input
	Host          *HostInfo      `json:"host,omitempty"`
	StartedAt     time.Time      `json:"started_at"`
	FinishedAt    *time.Time     `json:"finished_at,omitempty"`
	Target        string         `json:"target"`
	Transport     string         `json:"transport"`
	Protocol      string         `json:"protocol,omitempty"`
	Engine        string         `json:"engine,omitempty"`
	Config        map[string]any `json:"config"`
	Requests      int64          `json:"requests"`
	ThroughputRPS float64        `json:"throughput_rps"`
	// Warmup and Steady are its phases on its own clock (nil in merges
	// made before they were kept; Warmup nil without a warm-up), so that a
	// page shades each input's warm-up and not the span of all of them.
	Warmup *Span `json:"warmup,omitempty"`
	Steady *Span `json:"steady,omitempty"`
	// Profile is its profile window, on its own clock (a merge has no
	// window of its own: each machine opened its own, or none).
	Profile *ProfileReport `json:"profile,omitempty"`
	// Server is its server block (--metrics) as it was: the machines'
	// scrapes of one server each count all their requests, so a merge
	// keeps them side by side rather than adding them.
	Server *ServerReport `json:"server,omitempty"`
}

// upgrade gives an older result's config the typed values of version 3,
// so that what reads results (compare's notes, merge's "mixed", reports)
// compares a version 2 "10s" with a version 3 10 as the same --timeout.
func (r *Result) upgrade() {
	if r.Version < 3 {
		upgradeConfig(r.Config)
	}
	if len(r.MergedFrom) > 0 {
		return
	}
	// Results written before the typed plan fields carry it only in config.
	number := func(key string) float64 {
		v, _ := r.Config[key].(float64)
		return v
	}
	if r.Rate == 0 && r.Concurrency == 0 {
		switch r.Loop {
		case "open":
			r.Rate = number("rate")
		case "closed":
			r.Concurrency = int(number("concurrency"))
		}
	}
	if r.MaxInflight == 0 && r.Loop == "open" {
		r.MaxInflight = int(number("max-inflight"))
	}
}

// stringSettings are the flags whose values are text, whatever they look
// like (a model named "123" stays a name).
var stringSettings = map[string]bool{
	"url": true, "grpc": true, "model": true, "signature": true, "model-label": true, "data": true,
	"out": true, "hgrm": true, "html": true, "hlog": true, "ca": true, "cert": true, "key": true,
	"profile": true, "logdir": true, "server-logdir": true, "profile-host-name": true, "slo": true,
	"search": true, "profile-steps": true, "max-errors": true, "rest-engine": true, "cpuprofile": true,
}

// upgradeConfig turns version 2's string values into version 3's: numbers,
// durations as seconds, booleans, a --warmup count as {"requests": N}.
func upgradeConfig(cfg map[string]any) {
	for k, v := range cfg {
		s, ok := v.(string)
		if !ok || s == "" || stringSettings[k] {
			continue
		}
		if k == "warmup" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				cfg[k] = map[string]any{"requests": float64(n)}
				continue
			}
		}
		if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
			cfg[k] = b
		} else if n, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(n, 0) && !math.IsNaN(n) {
			cfg[k] = n
		} else if d, err := time.ParseDuration(s); err == nil {
			cfg[k] = d.Seconds()
		}
	}
}

// FormatSetting formats a config value for people: numbers as written
// (JSON numbers decode as float64, which %v would print as 6.7108864e+07),
// lists joined with commas.
func FormatSetting(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = FormatSetting(e)
		}
		return strings.Join(parts, ", ")
	case []string:
		return strings.Join(x, ", ")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + " " + FormatSetting(x[k])
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// CurrentBuild is the BuildInfo of this binary: the commit comes from the
// VCS stamp the go command puts in binaries built from a checkout.
func CurrentBuild() BuildInfo {
	info, _ := debug.ReadBuildInfo()
	return buildOf(info)
}

// buildOf reads the VCS stamp of info (nil without build information).
func buildOf(info *debug.BuildInfo) BuildInfo {
	b := BuildInfo{Version: Version, Go: runtime.Version()}
	if info == nil {
		return b
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.CommitTime = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// CurrentHost is the HostInfo of this machine.
func CurrentHost() *HostInfo {
	name, err := os.Hostname()
	if err != nil {
		name = ""
	}
	return &HostInfo{Name: name, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

// Phases are the warm-up and steady parts of a run.
type Phases struct {
	Warmup Phase `json:"warmup"`
	Steady Phase `json:"steady"`
}

// Span is a part of a run, in seconds since it started.
type Span struct {
	Start float64 `json:"start_s"`
	End   float64 `json:"end_s"`
}

// Phase is one part of a run, in seconds since the run started.
type Phase struct {
	Start    float64          `json:"start_s"`
	End      float64          `json:"end_s"`
	Requests int64            `json:"requests"`
	Errors   map[string]int64 `json:"errors"`
	Latency  Stats            `json:"latency_ms"`
	// Histogram is the warm-up's latency histogram (version 3), so that a
	// merge gives the warm-up's percentiles exactly; the steady phase's is
	// Result.Histogram.
	Histogram string `json:"histogram,omitempty"`
}

// Slice is the statistics of a subset of the steady requests, with the
// same meaning of latency as the whole.
type Slice struct {
	Requests    int64            `json:"requests"`
	Errors      map[string]int64 `json:"errors"`
	Latency     Stats            `json:"latency_ms"`
	LatencyOK   Stats            `json:"latency_ok_ms"`
	Histogram   string           `json:"histogram"`
	HistogramOK string           `json:"histogram_ok,omitempty"`
}

// Stats summarises a latency histogram, in milliseconds.
type Stats struct {
	Count  int64   `json:"count"`
	Min    float64 `json:"min"`
	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P95    float64 `json:"p95"`
	P99    float64 `json:"p99"`
	P999   float64 `json:"p999"`
	Max    float64 `json:"max"`
}

// ClientStats say whether the client itself kept up.
type ClientStats struct {
	MaxSendLagMs float64 `json:"max_send_lag_ms"` // open loop: worst delay behind the schedule
	// SendLag is the distribution of how late open-loop requests went out
	// against their intended send times (all requests, both phases).
	SendLag *Stats `json:"send_lag_ms,omitempty"`
	// MaxFreeSendLagMs is the worst send lag of the requests that did not
	// wait for --max-inflight: what a busy client machine alone caused.
	MaxFreeSendLagMs float64 `json:"max_unsaturated_send_lag_ms"`
	Saturated        int64   `json:"saturated"` // open loop: requests sent late because --max-inflight requests were outstanding
	// NotSent counts steady open-loop requests that were still waiting for
	// a free slot under --max-inflight when the steady phase's schedule
	// ended (--duration): they were never sent.
	NotSent int64 `json:"not_sent"`
	// Resent counts REST requests sent a second time on a new connection
	// because their kept-alive one closed under them (or answered 408)
	// right after they were written, before the server could have taken
	// them: a server closing idle connections.
	Resent       int64  `json:"resent"`
	PeakInflight int64  `json:"peak_inflight"`
	LateSamples  int64  `json:"late_samples"`     // finished after an interrupted run stopped waiting
	Engine       string `json:"engine,omitempty"` // REST: "epoll" or "goroutines"
}

const usPerMs = 1000.0

// StatsOf summarises h (values in microseconds).
func StatsOf(h *hdrhistogram.Histogram) Stats {
	if h.TotalCount() == 0 {
		return Stats{}
	}
	q := func(p float64) float64 { return float64(valueAtPercentile(h, p)) / usPerMs }
	return Stats{
		Count: h.TotalCount(),
		Min:   float64(h.Min()) / usPerMs, Mean: h.Mean() / usPerMs, Stddev: h.StdDev() / usPerMs,
		P50: q(50), P90: q(90), P95: q(95), P99: q(99), P999: q(99.9),
		Max: float64(h.Max()) / usPerMs,
	}
}

// EncodeHistogram returns h in HdrHistogram's V2 compressed encoding, base64
// encoded, which every HdrHistogram implementation decodes.
func EncodeHistogram(h *hdrhistogram.Histogram) (string, error) {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	return string(b), err
}

// DecodeHistogram is the inverse of EncodeHistogram.
func DecodeHistogram(s string) (*hdrhistogram.Histogram, error) {
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return nil, fmt.Errorf("histogram is not base64: %w", err)
	}
	return hdrhistogram.Decode([]byte(s))
}

// WriteJSON writes r to path as every output is written (outfile.Write): a
// reader sees the old file or the whole new one, never half of it.
func (r *Result) WriteJSON(path string) error { return WriteJSONOutput("", path, r) }

// WriteJSONOutput writes v as indented JSON to the output path named by
// flag, saying on standard error where it wrote null for a NaN or Inf.
func WriteJSONOutput(flag, path string, v any) error {
	return WriteJSONOutputWarn(flag, path, v, os.Stderr)
}

// WriteJSONOutputWarn writes v as indented JSON to the output path named
// by flag. A NaN or Inf anywhere in v is written as null, and warn gets a
// line naming where (a figure that is not a number must not cost the
// whole file). A value that cannot be encoded all the same is an
// *outfile.Error: the file is not written, and is not said to be.
func WriteJSONOutputWarn(flag, path string, v any, warn io.Writer) error {
	data, nonFinite, err := encodeFinite(v)
	if err != nil {
		return &outfile.Error{Flag: flag, Path: path, Err: err}
	}
	if len(nonFinite) > 0 && warn != nil {
		name := path
		if flag != "" {
			name = flag + " " + path
		}
		fmt.Fprintf(warn, "loadprof: warning: %s: not a number (NaN or Inf), written as null: %s\n", name, strings.Join(nonFinite, ", "))
	}
	return outfile.Write(flag, path, data)
}

// ReadSweep reads the result.json of a sweep.
func ReadSweep(path string) (*SweepResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s SweepResult
	if err := json.Unmarshal(data, &s); err != nil || s.Kind != "sweep" {
		return nil, fmt.Errorf("%s: not a loadprof sweep result", path)
	}
	if s.Version < 3 {
		upgradeConfig(s.Config)
	}
	var raw struct {
		Steps []struct {
			Result json.RawMessage `json:"result"`
		} `json:"steps"`
	}
	json.Unmarshal(data, &raw) // it decoded above
	for i, st := range s.Steps {
		if st.Result != nil {
			st.Result.upgrade()
			if st.Result.Version < 3 && i < len(raw.Steps) {
				st.Result.SeriesUnknown = absentSeriesKeys(raw.Steps[i].Result)
			}
		}
	}
	return &s, nil
}

// absentSeriesKeys are the per-second keys that some point of the result
// in data lacks: an older result was written before they were recorded,
// and decoding would make them zeros.
func absentSeriesKeys(data []byte) []string {
	var raw struct {
		Series []map[string]json.RawMessage `json:"series"`
	}
	if json.Unmarshal(data, &raw) != nil || len(raw.Series) == 0 {
		return nil
	}
	var absent []string
	for _, key := range []string{fieldP90, fieldSent, fieldInflight, fieldBytesOut, fieldBytesIn} {
		for _, p := range raw.Series {
			if _, ok := p[key]; !ok {
				absent = append(absent, key)
				break
			}
		}
	}
	return absent
}

// IsSweep reports whether path holds a sweep's result.
func IsSweep(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var head struct{ Kind string }
	return json.Unmarshal(data, &head) == nil && head.Kind == "sweep"
}

// ReadResult reads a result.json.
func ReadResult(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: not a loadprof result: %w", path, err)
	}
	if r.Version == 0 {
		return nil, fmt.Errorf("%s: not a loadprof result: no \"version\"", path)
	}
	r.upgrade()
	if r.Version < 3 {
		r.SeriesUnknown = absentSeriesKeys(data)
	}
	if IsSweep(path) {
		return nil, fmt.Errorf("%s: a sweep's result (every step in one file), not one run's: compare and merge take one run's result.json each; 'loadprof report %s' prints the sweep's steps (--html plots them), and a step run alone at its level (--rate or --concurrency N --out step.json) gives a result to compare", path, path)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%s: not a loadprof result: %w", path, err)
	}
	return &r, nil
}

// check reports what makes r unusable as a run's result: a file with a
// version and nothing else must not pass a CI gate as a perfect run.
func (r *Result) check() error {
	switch {
	case r.Version > ResultVersion:
		return fmt.Errorf("version %d, written by a newer loadprof (this one reads up to %d)", r.Version, ResultVersion)
	case !strings.HasPrefix(r.Tool, "loadprof"):
		return errors.New("no \"tool\": \"loadprof ...\"")
	case r.LatencyFrom == "" || (r.Loop != "open" && r.Loop != "closed"):
		return errors.New("no \"loop\" and \"latency_measured_from\"")
	case r.Histogram == "":
		return errors.New("no \"histogram\"")
	}
	h, err := DecodeHistogram(r.Histogram)
	if err != nil {
		return fmt.Errorf("\"histogram\": %w", err)
	}
	if h.TotalCount() != r.Latency.Count {
		return fmt.Errorf("\"histogram\" holds %d requests, \"latency_ms\" says %d", h.TotalCount(), r.Latency.Count)
	}
	if err := checkLLMHistograms(r); err != nil {
		return err
	}
	return nil
}

// WriteHGRM writes h as HdrHistogram's percentile distribution text (the
// .hgrm format HdrHistogram's plotter reads, laid out as the Java
// implementation does), with values in milliseconds.
func WriteHGRM(path string, h *hdrhistogram.Histogram) error { return WriteHGRMOutput("", path, h) }

func WriteHGRMOutput(flag, path string, h *hdrhistogram.Histogram) error {
	var b strings.Builder
	FormatHGRM(&b, h, usPerMs)
	return outfile.Write(flag, path, []byte(b.String()))
}

// FormatHGRM writes the percentile distribution of h, values divided by
// scale, five ticks per half distance.
func FormatHGRM(b *strings.Builder, h *hdrhistogram.Histogram, scale float64) {
	fmt.Fprintf(b, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")
	for _, br := range h.CumulativeDistributionWithTicks(5) {
		q := br.Quantile / 100
		if q >= 1 {
			fmt.Fprintf(b, "%12.3f %2.12f %10d\n", float64(br.ValueAt)/scale, q, br.Count)
			continue
		}
		fmt.Fprintf(b, "%12.3f %2.12f %10d %14.2f\n", float64(br.ValueAt)/scale, q, br.Count, 1/(1-q))
	}
	subBuckets := int64(1)
	for subBuckets < 2*int64(math.Pow10(int(h.SignificantFigures()))) {
		subBuckets <<= 1
	}
	buckets := 1
	for v := subBuckets * h.LowestTrackableValue(); v <= h.HighestTrackableValue(); v <<= 1 {
		buckets++
	}
	fmt.Fprintf(b, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", h.Mean()/scale, h.StdDev()/scale)
	fmt.Fprintf(b, "#[Max     = %12.3f, Total count    = %12d]\n", float64(h.Max())/scale, h.TotalCount())
	fmt.Fprintf(b, "#[Buckets = %12d, SubBuckets     = %12d]\n", buckets, subBuckets)
}

// SortedKeys returns the keys of m, largest count first.
func SortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// The values of Result.Protocol: TF Serving's protocol, or the Open
// Inference Protocol (KServe V2) with its tensor encoding.
const (
	ProtocolTF       = "tf"        // TF Serving's REST predict or gRPC PredictionService
	ProtocolV2       = "v2"        // V2 with JSON tensors (REST) or typed contents (gRPC)
	ProtocolV2Binary = "v2-binary" // V2 REST with the binary tensor extension
	ProtocolV2Raw    = "v2-raw"    // V2 gRPC with raw_input_contents
	ProtocolOpenAI   = "openai"    // OpenAI-compatible /v1/completions or /v1/chat/completions
)

// ProtocolOf is r's protocol: a result that does not say predates the V2
// protocol and ran TF Serving's.
func ProtocolOf(r *Result) string {
	if r.Protocol == "" {
		return ProtocolTF
	}
	return r.Protocol
}

// protocolName is how a heading names a protocol: "V2", "V2, binary",
// "V2, raw", "OpenAI-compatible"; "" for TF Serving's.
func protocolName(protocol string) string {
	switch protocol {
	case ProtocolV2:
		return "V2"
	case ProtocolV2Binary:
		return "V2, binary"
	case ProtocolV2Raw:
		return "V2, raw"
	case ProtocolOpenAI:
		return "OpenAI-compatible"
	case "", ProtocolTF:
		return ""
	}
	return protocol
}

// protocolWords is the protocol as a heading appends it to a target:
// " (V2)", " (OpenAI-compatible)"; "" for TF Serving's.
func protocolWords(protocol string) string {
	if name := protocolName(protocol); name != "" {
		return " (" + name + ")"
	}
	return ""
}

// headingTarget is the target as a heading shows it, with its protocol.
// A V2 gRPC target's name already ends in " (V2)".
func headingTarget(target, protocol string) string {
	if w := protocolWords(protocol); w != "" {
		return strings.TrimSuffix(target, " (V2)") + w
	}
	return target
}

// runHeading is the first line of a run's summary: the transport, the
// target, and one parenthetical with the protocol (none for TF Serving's),
// the load (loop) and what latency counts from. A V2 gRPC target's name
// already ends in " (V2)": the parenthetical says it instead.
func runHeading(r *Result, loop, from string) string {
	target, about := r.Target, loop
	if name := protocolName(r.Protocol); name != "" {
		target, about = strings.TrimSuffix(target, " (V2)"), name+"; "+loop
	}
	return fmt.Sprintf("loadprof run: %s %s (%s; latency from %s)", strings.ToUpper(r.Transport), target, about, from)
}
