package servermetrics

import (
	"math"
	"sort"
	"strings"
	"time"
)

// Window is what the server reported over one stretch of the run (the
// steady phase, the profile window, one interval): the difference
// between its first and last successful scrape in that stretch.
type Window struct {
	Name      string    `json:"name"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	DurationS float64   `json:"duration_s"`
	Server    string    `json:"server,omitempty"` // tfserving, triton, kserve, mlserver, vllm, dcgm
	// StartLagMs and EndLagMs are how long after the marks that cut the
	// window (the steady phase's start, ...) the answers of its first and
	// last scrapes came; nil for a window no mark cuts. The server read
	// its counters somewhere in that span, so requests that ended in it
	// may fall on either side of the window's edge.
	StartLagMs *float64 `json:"start_lag_ms,omitempty"`
	EndLagMs   *float64 `json:"end_lag_ms,omitempty"`

	// Requests the server counted (all statuses), or when it exports no
	// request counter, the observations of its latency histogram.
	Requests *float64 `json:"requests,omitempty"`
	Latency  *Latency `json:"latency,omitempty"` // the server's time per request
	Queue    *Latency `json:"queue,omitempty"`   // waiting for a worker or a batch
	Compute  *Latency `json:"compute,omitempty"` // running the model

	BatchSizeMean   *float64 `json:"batch_size_mean,omitempty"` // items per executed batch
	GPUUtilPct      *float64 `json:"gpu_util_pct,omitempty"`    // mean over GPUs and scrapes
	GPUMemUsedBytes *float64 `json:"gpu_mem_used_bytes,omitempty"`
	GPUPowerW       *float64 `json:"gpu_power_w,omitempty"`

	Families []Family    `json:"families,omitempty"` // every known family seen
	Raw      []RawChange `json:"raw,omitempty"`      // everything else
	Warnings []string    `json:"warnings,omitempty"`
}

// Latency is a server-side time per request over a window.
type Latency struct {
	Family string  `json:"family"`
	Count  float64 `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	// Percentiles, only from a histogram: estimates inside the bucket
	// they fell in.
	P50 *Quantile `json:"p50,omitempty"`
	P90 *Quantile `json:"p90,omitempty"`
	P99 *Quantile `json:"p99,omitempty"`
}

// Quantile is a percentile estimated from histogram buckets.
type Quantile struct {
	Ms           float64  `json:"ms"`
	BucketLowMs  float64  `json:"bucket_low_ms"`
	BucketHighMs *float64 `json:"bucket_high_ms"` // null: the +Inf bucket
}

// Family is the figure of one known family over a window, its series
// (after the model filter) added together.
type Family struct {
	Name   string    `json:"name"`
	What   string    `json:"what"`
	Unit   string    `json:"unit"`
	Series int       `json:"series"`
	Count  float64   `json:"count"`          // increase (counters), observations (histograms, summaries), scrapes (gauges)
	Mean   float64   `json:"mean,omitempty"` // per observation, or the gauge's mean, in Unit
	P50    *Quantile `json:"p50,omitempty"`
	P90    *Quantile `json:"p90,omitempty"`
	P99    *Quantile `json:"p99,omitempty"`
	// meanUnknown: the sum was not a number (NaN, Inf); Mean is 0 for
	// JSON's sake and is no figure.
	meanUnknown bool
}

// RawChange is one series of a family servermetrics does not know.
type RawChange struct {
	Name     string            `json:"name"`
	Type     Kind              `json:"type"`
	Labels   map[string]string `json:"labels,omitempty"`
	Increase *float64          `json:"increase,omitempty"` // counter
	Count    *float64          `json:"count,omitempty"`    // histogram, summary
	Sum      *float64          `json:"sum,omitempty"`      // histogram, summary
	Last     *float64          `json:"last,omitempty"`     // gauge, untyped: the last value
}

// Figures turns an accumulation into a window's figures.
func Figures(name string, acc *Accumulation) Window {
	w := Window{Name: name, Start: acc.From, End: acc.To, DurationS: acc.To.Sub(acc.From).Seconds(), Warnings: append([]string(nil), acc.Warnings...)}
	if acc.From.IsZero() {
		w.Start, w.End, w.DurationS = time.Time{}, time.Time{}, 0
	}
	bySpec := map[*familySpec][]*Change{}
	for _, key := range acc.sortedKeys() {
		c := acc.Changes[key]
		spec := knownByName[c.Family]
		if spec != nil && !spec.matches(c.Labels) {
			spec = nil // another path's, say: raw
		}
		if spec == nil {
			// A counter or histogram that did not move says nothing, and a
			// large static page would cost one entry per series.
			if moved(c) {
				w.Raw = append(w.Raw, raw(c))
			}
			continue
		}
		bySpec[spec] = append(bySpec[spec], c)
	}
	for i := range knownFamilies {
		spec := &knownFamilies[i]
		changes := bySpec[spec]
		if len(changes) == 0 {
			continue
		}
		f, ok := familyFigure(spec, changes, bySpec, &w)
		if !ok {
			continue
		}
		w.Families = append(w.Families, f)
		w.headline(spec, f)
	}
	if w.Latency == nil && w.Compute != nil {
		if spec := knownByName[w.Compute.Family]; spec != nil && spec.latencyAlone {
			w.Latency, w.Compute = w.Compute, nil
		}
	}
	if w.Requests == nil && w.Latency != nil {
		n := w.Latency.Count
		w.Requests = &n
	}
	if w.BatchSizeMean == nil {
		var inf, exec float64
		var seen bool
		for _, f := range w.Families {
			switch what(f.What) {
			case whatInferences:
				inf, seen = inf+f.Count, true
			case whatExecutions:
				exec += f.Count
			}
		}
		if seen && exec > 0 {
			m := inf / exec
			w.BatchSizeMean = &m
		}
	}
	return w
}

func (w *Window) headline(spec *familySpec, f Family) {
	// GPU figures come from whichever exporter has them; the request
	// figures from one server only (the first in knownFamilies' order),
	// a second one's stay in the family list.
	if gpu := spec.what == whatGPUUtil || spec.what == whatGPUMemory || spec.what == whatGPUPower; !gpu {
		if w.Server == "" {
			w.Server = spec.server
		}
		if spec.server != w.Server {
			return
		}
	}
	if f.meanUnknown && spec.what != whatRequests {
		// A time or size whose sum is not a number is no figure: a 0
		// would read as a fast server (and make outside_ms the client's
		// whole mean).
		w.Warnings = append(w.Warnings, f.Name+": its sum is not a number; left out of the figures")
		return
	}
	lat := func() *Latency {
		return &Latency{Family: f.Name, Count: f.Count, MeanMs: f.Mean, P50: f.P50, P90: f.P90, P99: f.P99}
	}
	switch spec.what {
	case whatRequests:
		if w.Requests == nil {
			w.Requests = new(float64)
		}
		*w.Requests += f.Count
	case whatLatency:
		// A family that timed nothing in the window (MLServer's HTTP one
		// in a gRPC run) gives way to one that did.
		if w.Latency == nil || (w.Latency.Count == 0 && f.Count > 0) {
			w.Latency = lat()
		}
	case whatQueue:
		if w.Queue == nil {
			w.Queue = lat()
		}
	case whatCompute:
		if w.Compute == nil {
			w.Compute = lat()
		}
	case whatBatchSize:
		if w.BatchSizeMean == nil && f.Count > 0 {
			m := f.Mean
			w.BatchSizeMean = &m
		}
	case whatGPUUtil:
		setOnce(&w.GPUUtilPct, f.Mean)
	case whatGPUMemory:
		setOnce(&w.GPUMemUsedBytes, f.Mean)
	case whatGPUPower:
		setOnce(&w.GPUPowerW, f.Mean)
	}
}

func setOnce(p **float64, v float64) {
	if *p == nil {
		*p = &v
	}
}

// familyFigure adds a family's series together. Histogram series with a
// bucket layout other than the first one's are left out, with a warning.
func familyFigure(spec *familySpec, changes []*Change, bySpec map[*familySpec][]*Change, w *Window) (Family, bool) {
	f := Family{Name: spec.name, What: string(spec.what), Unit: spec.unit, Series: len(changes)}
	switch spec.shape {
	case shapeCounter:
		for _, c := range changes {
			f.Count += c.Increase
		}
	case shapeSummary:
		var sum float64
		for _, c := range changes {
			f.Count += c.Count
			sum += c.Sum
		}
		if f.Count > 0 {
			f.Mean = sum / f.Count * spec.scale
		}
	case shapeDurationTotal:
		var total, count float64
		for _, c := range changes {
			total += c.Increase
		}
		for _, name := range spec.countFamilies {
			for _, c := range bySpec[knownByName[name]] {
				count += c.Increase
			}
		}
		f.Count = count
		if count > 0 {
			f.Mean = total / count * spec.scale
		}
	case shapeGauge:
		// The mean over the GPUs of each one's mean over the window.
		var sum float64
		var n int
		for _, c := range changes {
			if c.GaugeN == 0 {
				continue
			}
			sum += c.GaugeSum / float64(c.GaugeN)
			n++
			f.Count = math.Max(f.Count, float64(c.GaugeN))
		}
		if n == 0 {
			return f, false
		}
		f.Mean = sum / float64(n) * spec.scale
	case shapeHistogram:
		var bounds, cum []float64
		var sum float64
		for _, c := range changes {
			if c.Kind != Histogram {
				continue
			}
			if bounds == nil {
				bounds, cum = c.Bounds, append([]float64(nil), c.Cumulative...)
			} else if !sameBounds(bounds, c.Bounds) {
				w.Warnings = append(w.Warnings, spec.name+" "+labelString(c.Labels)+": a bucket layout unlike the family's other series, left out of its figures")
				continue
			} else {
				for i, v := range c.Cumulative {
					cum[i] += v
				}
			}
			f.Count += c.Count
			sum += c.Sum
		}
		if f.Count > 0 {
			f.Mean = sum / f.Count * spec.scale
			f.P50 = quantile(0.50, bounds, cum, spec.scale)
			f.P90 = quantile(0.90, bounds, cum, spec.scale)
			f.P99 = quantile(0.99, bounds, cum, spec.scale)
		}
	}
	if math.IsNaN(f.Mean) || math.IsInf(f.Mean, 0) {
		f.Mean, f.meanUnknown = 0, true // JSON has no NaN; the count still says what was seen
	}
	return f, true
}

func quantile(q float64, bounds, cum []float64, scale float64) *Quantile {
	v, lo, hi, ok := BucketQuantile(q, bounds, cum)
	if !ok {
		return nil
	}
	out := &Quantile{Ms: v * scale, BucketLowMs: lo * scale}
	if !math.IsInf(hi, 1) {
		h := hi * scale
		out.BucketHighMs = &h
	}
	return out
}

// moved reports whether a series changed over its window: a counter or
// histogram that counted something, or a gauge that was read.
func moved(c *Change) bool {
	switch c.Kind {
	case Counter:
		return c.Increase != 0
	case Histogram, Summary:
		return c.Count != 0 || c.Sum != 0
	}
	return c.GaugeN > 0
}

func raw(c *Change) RawChange {
	r := RawChange{Name: c.Family, Type: c.Kind, Labels: c.Labels}
	finite := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	switch c.Kind {
	case Counter:
		r.Increase = finite(c.Increase)
	case Histogram, Summary:
		r.Count, r.Sum = finite(c.Count), finite(c.Sum)
	default:
		if c.GaugeN > 0 {
			r.Last = finite(c.GaugeLast)
		}
	}
	return r
}

func labelString(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=\"" + labels[k] + "\"")
	}
	b.WriteByte('}')
	return b.String()
}

// OutsideMs is the time a request spent outside the server over a window
// (network, a tunnel, a proxy, the client itself): the client's mean
// latency minus the server's, both in milliseconds and over the same
// requests. ok is false when the window has no server latency.
func OutsideMs(clientMeanMs float64, w *Window) (float64, bool) {
	if w == nil || w.Latency == nil || w.Latency.Count == 0 {
		return 0, false
	}
	return clientMeanMs - w.Latency.MeanMs, true
}
