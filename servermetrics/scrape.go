package servermetrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// acceptHeader asks for the delimited protobuf format, which servers built
// on the Go client speak, or the text format, which every server speaks.
// OpenMetrics is not asked for (expfmt's own doc calls its decoder not
// meant for speed, and it adds _created series), but a page a server
// sends in it anyway is read, with the same family names.
const acceptHeader = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1`

// maxBody bounds what one scrape reads: a real server's page is a few
// hundred kilobytes.
const maxBody = 64 << 20

// Filter keeps the series of one model. A series with a model label
// (model_name for TF Serving, KServe and vLLM; model for Triton and
// MLServer) naming another model is dropped; a series without one
// (GPU, process, batching queue) is kept.
type Filter struct {
	Model string // empty keeps every series
}

func (f Filter) keep(labels []*dto.LabelPair) bool {
	if f.Model == "" {
		return true
	}
	for _, l := range labels {
		if n := l.GetName(); (n == "model_name" || n == "model") && l.GetValue() != f.Model {
			return false
		}
	}
	return true
}

// modelOf is the model a series' labels name.
func modelOf(labels []*dto.LabelPair) string {
	for _, l := range labels {
		if n := l.GetName(); n == "model_name" || n == "model" {
			return l.GetValue()
		}
	}
	return ""
}

// Snapshot is one scrape's series, keyed by family name and labels.
type Snapshot struct {
	At time.Time // when the scrape was sent
	// Answered is when its answer was read (At when unknown): the server
	// read its counters somewhere between At and Answered.
	Answered time.Time
	Series   map[string]*Series
	// DroppedRaw is how many series of families loadprof does not know
	// the page had beyond those a Sampler keeps (maxRawSeries).
	DroppedRaw int

	// admit, when set, decides whether a series of a family loadprof
	// does not know is kept (by its key); droppedBy counts the series it
	// did not keep by family.
	admit     func(key string) bool
	droppedBy map[string]int
	// otherModels are, for each known family, the models its series the
	// filter dropped were of: a wrong --model shows as known families
	// exported only for other models.
	otherModels map[string]map[string]bool
}

// noteOtherModel records that a series of the known family name was of
// model, not the filter's.
func (s *Snapshot) noteOtherModel(name, model string) {
	if s.otherModels == nil {
		s.otherModels = map[string]map[string]bool{}
	}
	if s.otherModels[name] == nil {
		s.otherModels[name] = map[string]bool{}
	}
	s.otherModels[name][model] = true
}

// Kind is the Prometheus type of a series.
type Kind string

// The kinds of series a snapshot holds.
const (
	Counter   Kind = "counter"
	Gauge     Kind = "gauge"
	Untyped   Kind = "untyped"
	Histogram Kind = "histogram"
	Summary   Kind = "summary"
)

// Series is one time series at the moment of a scrape.
type Series struct {
	Family string
	Kind   Kind
	Labels map[string]string
	Value  float64 // counter, gauge, untyped

	// Histograms and summaries: the observation count and sum, and for a
	// histogram its cumulative buckets in increasing order of upper bound
	// (the last one is +Inf when the server exported it).
	Count, Sum float64
	Bounds     []float64
	Cumulative []float64
}

// Scrape fetches url and parses it. The request ends with ctx.
func Scrape(ctx context.Context, client *http.Client, url string, f Filter) (*Snapshot, error) {
	return scrape(ctx, client, url, nil, func(r io.Reader, contentType string) (*Snapshot, error) { return Parse(r, contentType, f) })
}

// scrape fetches url, with header's entries, and parses it with parse.
func scrape(ctx context.Context, client *http.Client, url string, header http.Header, parse func(r io.Reader, contentType string) (*Snapshot, error)) (*Snapshot, error) {
	at := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = vs[len(vs)-1]
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	req.Header.Set("Accept", acceptHeader)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("GET %s: HTTP %s", url, resp.Status)
	}
	body := &limitedReader{r: resp.Body, n: maxBody}
	snap, err := parse(body, resp.Header.Get("Content-Type"))
	if body.n <= 0 {
		return nil, fmt.Errorf("GET %s: the page is larger than %d MB", url, maxBody>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	snap.At = at
	return snap, nil
}

// limitedReader is io.LimitReader that lets the caller see it ran out.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// Parse reads an exposition in the format contentType names (the text
// format when it names none) and keeps the series f keeps.
func Parse(r io.Reader, contentType string, f Filter) (*Snapshot, error) {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	format := expfmt.ResponseFormat(h)
	if format == expfmt.FmtUnknown {
		// TF Serving answers with no Content-Type of its own.
		format = expfmt.FmtText
	}
	return parseDecoder(expfmt.NewDecoder(r, format), f, nil)
}

// parseDecoder reads every family dec decodes; admit, when not nil, picks
// the series of unknown families kept (Snapshot.admit).
func parseDecoder(dec expfmt.Decoder, f Filter, admit func(string) bool) (*Snapshot, error) {
	snap := &Snapshot{Series: map[string]*Series{}, admit: admit}
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			return snap, nil
		}
		if err != nil {
			return nil, err
		}
		snap.add(&mf, f)
	}
}

// maxRawSeries bounds the series of families loadprof does not know that
// a Sampler keeps from a page: a page of hundreds of thousands of them (a
// node exporter's, a big cluster's) would otherwise cost hundreds of
// megabytes a scrape, to be listed raw. The known families are all kept.
const maxRawSeries = 10_000

func (s *Snapshot) add(mf *dto.MetricFamily, f Filter) {
	name := mf.GetName()
	for _, m := range mf.GetMetric() {
		// expfmt's text decoder hands out the families it parsed before
		// a syntax error, the last one possibly half-built.
		if m == nil {
			continue
		}
		if !f.keep(m.GetLabel()) {
			if knownByName[name] != nil {
				s.noteOtherModel(name, modelOf(m.GetLabel()))
			}
			continue
		}
		key := seriesKey(name, m.GetLabel())
		if s.admit != nil && knownByName[name] == nil && !s.admit(key) {
			if s.droppedBy == nil {
				s.droppedBy = map[string]int{}
			}
			s.DroppedRaw++
			s.droppedBy[name]++
			continue
		}
		se := &Series{Family: name, Labels: make(map[string]string, len(m.GetLabel()))}
		for _, l := range m.GetLabel() {
			se.Labels[l.GetName()] = l.GetValue()
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			se.Kind, se.Value = Counter, m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			se.Kind, se.Value = Gauge, m.GetGauge().GetValue()
		case dto.MetricType_SUMMARY:
			se.Kind = Summary
			se.Count, se.Sum = float64(m.GetSummary().GetSampleCount()), m.GetSummary().GetSampleSum()
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.GetHistogram()
			if h == nil {
				continue // half-built, see above
			}
			se.Kind = Histogram
			se.Count, se.Sum = float64(h.GetSampleCount()), h.GetSampleSum()
			if h.SampleCountFloat != nil {
				se.Count = h.GetSampleCountFloat()
			}
			buckets := h.GetBucket()
			se.Bounds = make([]float64, 0, len(buckets)+1)
			se.Cumulative = make([]float64, 0, len(buckets)+1)
			for _, b := range buckets {
				if b == nil {
					continue
				}
				c := float64(b.GetCumulativeCount())
				if b.CumulativeCountFloat != nil {
					c = b.GetCumulativeCountFloat()
				}
				se.Bounds = append(se.Bounds, b.GetUpperBound())
				se.Cumulative = append(se.Cumulative, c)
			}
			sortBuckets(se)
			if n := len(se.Bounds); n > 0 && !math.IsInf(se.Bounds[n-1], 1) {
				// The +Inf bucket is implied by the count (the text
				// parser drops it; the protobuf format never has it).
				se.Bounds = append(se.Bounds, math.Inf(1))
				se.Cumulative = append(se.Cumulative, se.Count)
			}
		default:
			se.Kind, se.Value = Untyped, m.GetUntyped().GetValue()
		}
		s.Series[key] = se
	}
}

func sortBuckets(se *Series) {
	if sort.Float64sAreSorted(se.Bounds) {
		return
	}
	idx := make([]int, len(se.Bounds))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return se.Bounds[idx[a]] < se.Bounds[idx[b]] })
	bounds, cum := make([]float64, len(idx)), make([]float64, len(idx))
	for i, j := range idx {
		bounds[i], cum[i] = se.Bounds[j], se.Cumulative[j]
	}
	se.Bounds, se.Cumulative = bounds, cum
}

// seriesKey names a series by family and labels, in label-name order.
func seriesKey(family string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return family
	}
	sorted := labels
	if !sort.SliceIsSorted(labels, func(i, j int) bool { return labels[i].GetName() < labels[j].GetName() }) {
		sorted = append([]*dto.LabelPair(nil), labels...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].GetName() < sorted[j].GetName() })
	}
	var b strings.Builder
	b.Grow(len(family) + 16*len(labels))
	b.WriteString(family)
	b.WriteByte('{')
	for i, l := range sorted {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.GetValue()))
	}
	b.WriteByte('}')
	return b.String()
}
