package sim

import (
	"bytes"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
)

// MetricsPath is where TF Serving serves its Prometheus metrics when its
// monitoring config enables them, and where the simulator serves its own.
const MetricsPath = "/monitoring/prometheus/metrics"

// tfLatencyBounds are the bucket limits TF Serving gives its request and
// runtime latency samplers (tensorflow_serving/servables/tensorflow/util.cc:
// Buckets::Exponential(10, 1.8, 33), in microseconds), as its exporter
// prints them (six significant digits); TF's last bucket, up to DBL_MAX,
// is printed as +Inf. A value goes in the first bucket whose limit is
// above it.
var tfLatencyBounds = func() []float64 {
	b := make([]float64, 33)
	v := 10.0
	for i := range b {
		b[i], _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
		v *= 1.8
	}
	return b
}()

// tfHistogram is one series of a TF Serving sampler.
type tfHistogram struct {
	buckets []int64 // len(tfLatencyBounds)+1, the last for values above them all
	sum     int64   // microseconds
	count   int64
}

func (h *tfHistogram) add(us int64) {
	if h.buckets == nil {
		h.buckets = make([]int64, len(tfLatencyBounds)+1)
	}
	i := sort.Search(len(tfLatencyBounds), func(i int) bool { return float64(us) < tfLatencyBounds[i] })
	h.buckets[i]++
	h.sum += us
	h.count++
}

// serverMetrics are the TF Serving metric families the simulator keeps,
// with TF Serving's names and labels.
type serverMetrics struct {
	mu       sync.Mutex
	requests map[[2]string]int64          // model_name, status
	latency  map[[3]string]*tfHistogram   // model_name, API, entrypoint
	runtime  map[[3]string]*tfHistogram   // model_name, API, runtime
	handled  struct{ count, sumUS int64 } // every request_latency observation
}

// request notes a finished predict call. TF Serving counts every call
// by status, and times only the successful ones, from when its handler
// starts to when the response is written.
func (m *serverMetrics) request(model, api, entrypoint string, code codes.Code, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.requests == nil {
		m.requests = map[[2]string]int64{}
		m.latency = map[[3]string]*tfHistogram{}
	}
	m.requests[[2]string{model, statusName(code)}]++
	if code != codes.OK {
		return
	}
	us := took.Microseconds()
	key := [3]string{model, api, entrypoint}
	h := m.latency[key]
	if h == nil {
		h = &tfHistogram{}
		m.latency[key] = h
	}
	h.add(us)
	m.handled.count++
	m.handled.sumUS += us
}

// ran notes the model's run time of a call: its service time as measured
// (see Server.served), what the trace says too.
func (m *serverMetrics) ran(model string, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runtime == nil {
		m.runtime = map[[3]string]*tfHistogram{}
	}
	key := [3]string{model, "Predict", "TF1"}
	h := m.runtime[key]
	if h == nil {
		h = &tfHistogram{}
		m.runtime[key] = h
	}
	h.add(took.Microseconds())
}

// statusName is TF's name for a status code: OK, INVALID_ARGUMENT, ...
func statusName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "OK"
	case codes.Canceled:
		return "CANCELLED" // TF's spelling; grpc-go's is CANCELED
	}
	var b []byte
	for i, r := range c.String() {
		if unicode.IsUpper(r) && i > 0 {
			b = append(b, '_')
		}
		b = append(b, byte(unicode.ToUpper(r)))
	}
	return string(b)
}

// render writes the families in TF Serving's exposition: its names (the
// metric path with "/" turned into ":"), its TYPE lines and no HELP.
func (m *serverMetrics) render() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b bytes.Buffer
	b.WriteString("# TYPE :tensorflow:serving:request_count counter\n")
	for _, k := range sortedKeys2(m.requests) {
		b.WriteString(`:tensorflow:serving:request_count{model_name="` + k[0] + `",status="` + k[1] + `"} `)
		b.WriteString(strconv.FormatInt(m.requests[k], 10) + "\n")
	}
	renderSampler(&b, ":tensorflow:serving:request_latency", [3]string{"model_name", "API", "entrypoint"}, m.latency)
	renderSampler(&b, ":tensorflow:serving:runtime_latency", [3]string{"model_name", "API", "runtime"}, m.runtime)
	return b.Bytes()
}

func renderSampler(b *bytes.Buffer, name string, labelNames [3]string, series map[[3]string]*tfHistogram) {
	b.WriteString("# TYPE " + name + " histogram\n")
	keys := make([][3]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, c := keys[i], keys[j]
		if a[0] != c[0] {
			return a[0] < c[0]
		}
		if a[1] != c[1] {
			return a[1] < c[1]
		}
		return a[2] < c[2]
	})
	for _, k := range keys {
		h := series[k]
		labels := labelNames[0] + `="` + k[0] + `",` + labelNames[1] + `="` + k[1] + `",` + labelNames[2] + `="` + k[2] + `"`
		var cum int64
		for i, n := range h.buckets {
			cum += n
			le := "+Inf"
			if i < len(tfLatencyBounds) {
				le = strconv.FormatFloat(tfLatencyBounds[i], 'g', 6, 64)
			}
			b.WriteString(name + "_bucket{" + labels + `,le="` + le + `"} ` + strconv.FormatInt(cum, 10) + "\n")
		}
		b.WriteString(name + "_sum{" + labels + "} " + strconv.FormatInt(h.sum, 10) + "\n")
		b.WriteString(name + "_count{" + labels + "} " + strconv.FormatInt(cum, 10) + "\n")
	}
}

func sortedKeys2(m map[[2]string]int64) [][2]string {
	keys := make([][2]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	return keys
}

// PredictLatency is what the simulator put in its request_latency
// histograms so far: the successful predict calls (REST and gRPC) and
// their total handler time, at the histogram's microsecond resolution.
func (s *Server) PredictLatency() (calls int64, total time.Duration) {
	s.metrics.mu.Lock()
	defer s.metrics.mu.Unlock()
	return s.metrics.handled.count, time.Duration(s.metrics.handled.sumUS) * time.Microsecond
}

// networkDelay holds a predict call for Config.NetworkDelay before the
// handler's clock starts: time the client sees and the server's metrics
// do not, like a network or a tunnel in between.
func (s *Server) networkDelay() {
	d := s.cfg.NetworkDelay
	if d <= 0 {
		return
	}
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.closing:
	}
	s.delayed.Add(int64(time.Since(start)))
}

// NetworkDelayed is how long the simulator has held predict calls for
// Config.NetworkDelay in all: at least the delay per call, and more when
// a busy machine wakes its timers late.
func (s *Server) NetworkDelayed() time.Duration { return time.Duration(s.delayed.Load()) }

// MetricsURL is where the simulator serves TF Serving's metric families.
func (s *Server) MetricsURL() string {
	scheme := "http"
	if s.cfg.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + s.RESTAddr() + MetricsPath
}
