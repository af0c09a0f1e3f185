package sim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/tfproto"
	"github.com/loadprof/loadprof/v2proto"
	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
)

// Latency is the simulated service time of one predict call.
type Latency struct {
	Fixed  time.Duration // every call takes at least this
	Jitter time.Duration // plus a uniform random part in [0, Jitter)

	// Every StallEvery the whole server stops answering for Stall (a GC
	// pause, a noisy neighbour): calls that arrive or are running then
	// finish no earlier than the end of the stall.
	StallEvery time.Duration
	Stall      time.Duration

	// Workers, when set, makes the server a FIFO queue with this many
	// workers: a call waits for a free worker, then takes its service time
	// (Fixed + Jitter). Its capacity is Workers / service time; above it
	// the queue and the latency grow without bound.
	Workers int

	// WhileProfiling is added to calls that arrive while a profile window
	// is open (the tracing overhead a real server shows).
	WhileProfiling time.Duration

	ErrorRate   float64 // fraction of calls that fail with ErrorStatus
	ErrorStatus int     // HTTP status of simulated failures; 503 when 0
}

// check reports a setting out of range, as a *load.SettingError.
func (l *Latency) check() error {
	switch {
	case l.Fixed < 0 || l.Jitter < 0 || l.Stall < 0 || l.StallEvery < 0:
		return setting.Errorf("sim.Latency.Fixed", "sim.Latency.Fixed, sim.Latency.Jitter, sim.Latency.Stall and sim.Latency.StallEvery must not be negative")
	case l.WhileProfiling < 0:
		return setting.Invalid("sim.Latency.WhileProfiling", l.WhileProfiling.String(), "must not be negative")
	case l.Workers < 0:
		return setting.Invalid("sim.Latency.Workers", fmt.Sprint(l.Workers), "must not be negative")
	case !(l.ErrorRate >= 0 && l.ErrorRate <= 1):
		return setting.Invalid("sim.Latency.ErrorRate", fmt.Sprintf("%g", l.ErrorRate), "must be between 0 and 1")
	case l.ErrorStatus < 400 || l.ErrorStatus > 599:
		return setting.Invalid("sim.Latency.ErrorStatus", fmt.Sprint(l.ErrorStatus), "must be an HTTP error status, 400 to 599")
	}
	return nil
}

// Faults make the REST server misbehave on a fraction of predict calls.
type Faults struct {
	ResetRate     float64 // answer with a TCP reset instead of a response
	HalfCloseRate float64 // close the write side of the connection without answering
	ResponseBytes int     // pad every response body to at least this many bytes
	AfterCalls    int64   // the first this many predict calls are spared
}

// Config describes the simulated server.
type Config struct {
	REST string // REST listen address, e.g. "127.0.0.1:0"; empty for none
	GRPC string // gRPC listen address (PredictionService, and the V2 GRPCInferenceService); empty for none

	Model     string // "test_model" when empty
	Version   int64  // 1 when 0
	Labels    map[string]int64
	Signature Signature // DefaultSignature() when it has no inputs
	Latency   Latency
	Profiler  ProfilerConfig

	// Faults are misbehaviours of the REST server, for fault tests.
	Faults Faults

	// Authorization, when set, is the value every predict call must carry
	// in its Authorization header (REST) or metadata (gRPC).
	Authorization string

	// TLS, when set, serves REST as HTTPS and gRPC over TLS (with
	// ClientAuth set, mutual TLS).
	TLS *tls.Config

	// NetworkDelay holds every predict call (REST and gRPC) this long
	// before the handler's clock starts: time the client sees and the
	// server's metrics do not, like a network or a tunnel in between.
	NetworkDelay time.Duration

	// LLM is the language model behind the OpenAI-compatible routes
	// (/v1/completions, /v1/chat/completions) on the REST port.
	LLM LLM

	// KeepArrivals, when positive, keeps the arrival time of the first
	// that many predict calls (REST and gRPC), for tests that check when
	// a load generator sent its requests.
	KeepArrivals int
}

// Server is a running simulator.
type Server struct {
	cfg    Config
	start  time.Time
	rest   *fasthttp.Server
	ln     net.Listener
	grpc   *grpc.Server
	grpcLn net.Listener
	wg     sync.WaitGroup
	prof   profilerState

	// closing is closed by Close: calls held for their service time end
	// at once.
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	// The open connections, which Close ends when a graceful shutdown
	// would wait for them (a half-sent request, a gRPC handshake).
	restConns, grpcConns connSet

	queueMu sync.Mutex
	freeAt  []time.Duration // per worker, when it is next free (Latency.Workers)

	predicts atomic.Int64
	held     atomic.Int64 // predict calls waiting out their service time

	arrivalsMu sync.Mutex
	arrivals   []time.Duration // since start, at most cfg.KeepArrivals

	metrics serverMetrics // TF Serving's metric families
	delayed atomic.Int64  // nanoseconds held for NetworkDelay

	llm llmState // the OpenAI-compatible routes (openai.go)
}

// noteArrival keeps the arrival time of a predict call (Config.KeepArrivals).
func (s *Server) noteArrival(at time.Time) {
	if s.cfg.KeepArrivals <= 0 {
		return
	}
	s.arrivalsMu.Lock()
	if len(s.arrivals) < s.cfg.KeepArrivals {
		s.arrivals = append(s.arrivals, at.Sub(s.start))
	}
	s.arrivalsMu.Unlock()
}

// Arrivals returns when the kept predict calls arrived (Config.KeepArrivals),
// as offsets from the server's start, in the order the server saw them.
func (s *Server) Arrivals() []time.Duration {
	s.arrivalsMu.Lock()
	defer s.arrivalsMu.Unlock()
	return append([]time.Duration(nil), s.arrivals...)
}

// Start starts the simulator on the addresses in cfg ("127.0.0.1:0"
// picks a free port).
func Start(cfg Config) (*Server, error) {
	if cfg.Model == "" {
		cfg.Model = "test_model"
	}
	if cfg.Version == 0 {
		cfg.Version = 1
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]int64{"stable": cfg.Version}
	}
	if len(cfg.Signature.Inputs) == 0 {
		name := cfg.Signature.Name
		cfg.Signature = DefaultSignature()
		if name != "" {
			cfg.Signature.Name = name
		}
	}
	if cfg.Signature.Name == "" {
		cfg.Signature.Name = "serving_default"
	}
	if len(cfg.Signature.Outputs) == 0 {
		cfg.Signature.Outputs = DefaultSignature().Outputs
	}
	if cfg.Latency.ErrorStatus == 0 {
		cfg.Latency.ErrorStatus = fasthttp.StatusServiceUnavailable
	}
	if cfg.REST == "" && cfg.GRPC == "" {
		return nil, errors.New("sim: no REST and no gRPC address")
	}
	if err := cfg.Latency.check(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	cfg.LLM.withDefaults()
	if err := cfg.LLM.check(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if cfg.NetworkDelay < 0 {
		return nil, fmt.Errorf("sim: %w", setting.Invalid("sim.Config.NetworkDelay", cfg.NetworkDelay.String(), "must not be negative"))
	}
	s := &Server{cfg: cfg, start: time.Now(), closing: make(chan struct{})}
	s.startLLM()
	if cfg.REST != "" {
		ln, err := net.Listen("tcp", cfg.REST)
		if err != nil {
			return nil, fmt.Errorf("sim: %w", setting.Errorf("sim.Config.REST", "sim.Config.REST %s: %w", cfg.REST, err))
		}
		s.ln = ln
		if cfg.TLS != nil {
			ln = tls.NewListener(ln, cfg.TLS)
		}
		s.rest = &fasthttp.Server{
			Handler:               s.handle,
			Logger:                quietLogger{}, // faults and killed clients are expected here
			Name:                  "loadprof-sim",
			NoDefaultServerHeader: true,
			MaxRequestBodySize:    64 << 20,
			ReadTimeout:           time.Minute,
			CloseOnShutdown:       true,
			ConnState:             s.restConns.track,
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.rest.Serve(ln)
		}()
	}
	if cfg.GRPC != "" {
		ln, err := net.Listen("tcp", cfg.GRPC)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sim: %w", setting.Errorf("sim.Config.GRPC", "sim.Config.GRPC %s: %w", cfg.GRPC, err))
		}
		s.grpcLn = ln
		ln = trackingListener{ln, &s.grpcConns}
		opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(256 << 20)}
		if cfg.Profiler.Garbage || cfg.Profiler.TraceEvents > 0 {
			opts = append(opts, grpc.ForceServerCodecV2(simCodec{encoding.GetCodecV2("proto")}))
		}
		if cfg.Profiler.Garbage {
			opts = append(opts, grpc.UnknownServiceHandler(garbageProfiler))
		}
		if cfg.TLS != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
		}
		s.grpc = grpc.NewServer(opts...)
		tfproto.RegisterPredictionServiceServer(s.grpc, &predictionService{s: s})
		v2proto.RegisterGRPCInferenceServiceServer(s.grpc, &inferenceService{s: s})
		switch {
		case cfg.Profiler.Disabled || cfg.Profiler.Garbage:
		case cfg.Profiler.TraceEvents > 0:
			s.grpc.RegisterService(s.paddedProfilerService(), &profilerService{s: s})
		default:
			tfproto.RegisterProfilerServiceServer(s.grpc, &profilerService{s: s})
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.grpc.Serve(ln)
		}()
	}
	return s, nil
}

// StartLoopback starts the simulator with REST and gRPC on free 127.0.0.1
// ports, for tests and the demo.
func StartLoopback(cfg Config) (*Server, error) {
	cfg.REST, cfg.GRPC = "127.0.0.1:0", "127.0.0.1:0"
	return Start(cfg)
}

// GRPCAddr is the address the gRPC API listens on.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// Model is the simulated model's name.
func (s *Server) Model() string { return s.cfg.Model }

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// RESTAddr is the address the REST API listens on.
func (s *Server) RESTAddr() string { return s.ln.Addr().String() }

// PredictURL is the TF Serving predict URL of the simulated model.
func (s *Server) PredictURL() string {
	scheme := "http"
	if s.cfg.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/v1/models/%s:predict", scheme, s.RESTAddr(), s.cfg.Model)
}

// Held counts the predict calls the server is holding for their service
// time now (a test can wait for a call to be under way).
func (s *Server) Held() int64 { return s.held.Load() }

// Predicts counts the predict calls answered so far.
func (s *Server) Predicts() int64 { return s.predicts.Load() }

// closeGrace is how long Close lets connections finish their exchange
// before it closes them.
const closeGrace = time.Second

// Close stops the server and closes open connections. It returns within
// about closeGrace whatever the server is doing, and may be called at any
// moment after Start, and more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	close(s.closing)
	var err error
	if s.rest != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
		_ = s.rest.ShutdownWithContext(ctx)
		cancel()
		// Shutdown closes only the listeners Serve has registered: a
		// Serve that has not started yet would serve this one for ever.
		if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
		s.restConns.closeAll()
	}
	if s.grpc != nil {
		// Stop waits for connections still in their handshake, which
		// last up to grpc's two-minute connection timeout: end them.
		s.grpcConns.closeAll()
		s.grpc.Stop()
	}
	s.wg.Wait()
	return err
}

// connSet is the set of a server's open connections.
type connSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool // closeAll was called: connections are closed as they come
}

// add puts c in the set, or closes it if the set was closed. Connections
// are closed outside the lock: a trackedConn's Close removes itself.
func (cs *connSet) add(c net.Conn) {
	cs.mu.Lock()
	if !cs.closed {
		if cs.conns == nil {
			cs.conns = map[net.Conn]struct{}{}
		}
		cs.conns[c] = struct{}{}
		cs.mu.Unlock()
		return
	}
	cs.mu.Unlock()
	_ = c.Close()
}

func (cs *connSet) remove(c net.Conn) {
	cs.mu.Lock()
	delete(cs.conns, c)
	cs.mu.Unlock()
}

func (cs *connSet) closeAll() {
	cs.mu.Lock()
	cs.closed = true
	conns := cs.conns
	cs.conns = nil
	cs.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// track follows fasthttp's connection states.
func (cs *connSet) track(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		cs.add(c)
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		cs.remove(c)
	}
}

// trackingListener puts the connections it accepts in a connSet until
// they are closed.
type trackingListener struct {
	net.Listener
	set *connSet
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: l.set}
	l.set.add(tc)
	return tc, nil
}

type trackedConn struct {
	net.Conn
	set *connSet
}

func (c *trackedConn) Close() error {
	c.set.remove(c)
	return c.Conn.Close()
}

// route is a parsed /v1/models/... path.
type route struct {
	model   string
	version int64
	label   string
	verb    string // "predict", "classify", "regress", "metadata" or "" for status
}

// parseRoute reads TF Serving's REST paths:
// /v1/models/NAME[/versions/N|/labels/L][:VERB|/metadata].
func parseRoute(path string) (route, error) {
	var r route
	const prefix = "/v1/models/"
	if len(path) < len(prefix) || !strings.EqualFold(path[:len(prefix)], prefix) {
		return r, errNotFound
	}
	rest := path[len(prefix):]
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		r.verb = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if r.verb != "predict" && r.verb != "classify" && r.verb != "regress" {
			return r, errNotFound
		}
	} else if i := strings.LastIndexByte(rest, '/'); i >= 0 && strings.EqualFold(rest[i+1:], "metadata") {
		r.verb = "metadata"
		rest = rest[:i]
	}
	parts := strings.Split(rest, "/")
	r.model = parts[0]
	if r.model == "" {
		return r, errNotFound
	}
	parts = parts[1:]
	for len(parts) >= 2 {
		switch strings.ToLower(parts[0]) {
		case "versions":
			if r.version != 0 {
				return r, errNotFound
			}
			v, err := strconv.ParseInt(parts[1], 10, 64)
			if err != nil || v <= 0 {
				return r, errNotFound
			}
			r.version = v
		case "labels":
			if r.label != "" {
				return r, errNotFound
			}
			r.label = parts[1]
		default:
			return r, errNotFound
		}
		parts = parts[2:]
	}
	if len(parts) != 0 {
		return r, errNotFound
	}
	if r.version != 0 && r.label != "" {
		return r, errBothVersionAndLabel
	}
	return r, nil
}

// TF Serving's own words, which clients may match.
var (
	errNotFound            = errors.New("Malformed request")                      //lint:ignore ST1005 TF Serving's wording
	errBothVersionAndLabel = errors.New("May not specify both version and label") //lint:ignore ST1005 TF Serving's wording
)

func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	body, _ := json.Marshal(map[string]string{"error": msg})
	ctx.SetBody(body)
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	if path == MetricsPath && ctx.IsGet() {
		ctx.SetContentType("text/plain; version=0.0.4")
		ctx.SetBody(s.metrics.render())
		return
	}
	if s.handleOpenAI(ctx, path) {
		return
	}
	if v2, ok := v2Path(path); ok {
		s.handleV2(ctx, v2)
		return
	}
	r, err := parseRoute(path)
	switch {
	case errors.Is(err, errBothVersionAndLabel):
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("Malformed request: %s %s", ctx.Method(), path))
		return
	}
	if r.model != s.cfg.Model {
		writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("Servable not found for request: Latest(%s)", r.model))
		return
	}
	version := s.cfg.Version
	switch {
	case r.label != "":
		v, ok := s.cfg.Labels[r.label]
		if !ok {
			writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("Unrecognized servable version label: %s", r.label))
			return
		}
		version = v
	case r.version != 0 && r.version != s.cfg.Version:
		writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("Servable not found for request: Specific(%s, %d)", r.model, r.version))
		return
	}
	switch {
	case r.verb == "" && ctx.IsGet():
		s.status(ctx, version)
	case r.verb == "metadata" && ctx.IsGet():
		s.metadata(ctx, version)
	case r.verb == "predict" && ctx.IsPost():
		s.networkDelay()
		start := time.Now()
		s.predict(ctx)
		s.metrics.request(r.model, "predict", "REST", restCode(ctx.Response.StatusCode()), time.Since(start))
	case (r.verb == "classify" || r.verb == "regress") && ctx.IsPost():
		writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("the simulated model has no %s signature", r.verb))
	default:
		writeError(ctx, fasthttp.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s", ctx.Method(), path))
	}
}

func (s *Server) status(ctx *fasthttp.RequestCtx, version int64) {
	ctx.SetContentType("application/json")
	fmt.Fprintf(ctx, `{"model_version_status": [{"version": "%d", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}`, version)
}

type tensorInfoJSON struct {
	DType       string          `json:"dtype"`
	TensorShape json.RawMessage `json:"tensor_shape"`
	Name        string          `json:"name"`
}

func shapeJSON(shape []int64) json.RawMessage {
	if shape == nil {
		return json.RawMessage(`{"dim": [], "unknown_rank": true}`)
	}
	dims := make([]map[string]string, len(shape))
	for i, d := range shape {
		dims[i] = map[string]string{"size": strconv.FormatInt(d, 10), "name": ""}
	}
	b, _ := json.Marshal(map[string]any{"dim": dims, "unknown_rank": false})
	return b
}

func specsJSON(specs []TensorSpec) map[string]tensorInfoJSON {
	m := make(map[string]tensorInfoJSON, len(specs))
	for _, sp := range specs {
		m[sp.Name] = tensorInfoJSON{DType: sp.DType, TensorShape: shapeJSON(sp.Shape), Name: sp.Name + ":0"}
	}
	return m
}

// metadata answers like TF Serving: the signatures nest under
// metadata.signature_def.signature_def.
func (s *Server) metadata(ctx *fasthttp.RequestCtx, version int64) {
	sig := s.cfg.Signature
	doc := map[string]any{
		"model_spec": map[string]any{"name": s.cfg.Model, "signature_name": "", "version": strconv.FormatInt(version, 10)},
		"metadata": map[string]any{"signature_def": map[string]any{"signature_def": map[string]any{
			sig.Name: map[string]any{
				"inputs":      specsJSON(sig.Inputs),
				"outputs":     specsJSON(sig.Outputs),
				"method_name": "tensorflow/serving/predict",
			},
		}}},
	}
	body, _ := json.Marshal(doc)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// delay is the service time of a call that arrives now: it starts after
// any stall in progress, takes the fixed and random parts, and if it would
// finish inside a later stall it finishes at that stall's end.
func (s *Server) delay(now time.Time) time.Duration {
	l := &s.cfg.Latency
	work := l.Fixed
	if l.Jitter > 0 {
		work += time.Duration(rand.Int64N(int64(l.Jitter)))
	}
	at := now.Sub(s.start)
	begin := s.afterStall(at)
	if l.Workers > 0 {
		s.queueMu.Lock()
		if s.freeAt == nil {
			s.freeAt = make([]time.Duration, l.Workers)
		}
		w := 0
		for i, f := range s.freeAt {
			if f < s.freeAt[w] {
				w = i
			}
		}
		if s.freeAt[w] > begin {
			begin = s.freeAt[w]
		}
		end := s.afterStall(begin + work)
		s.freeAt[w] = end
		s.queueMu.Unlock()
		return end - at
	}
	return s.afterStall(begin+work) - at
}

// serveTime is how long a call that arrived at arrived takes, with the
// profiling overhead when a profile window is open (profiled).
func (s *Server) serveTime(arrived time.Time) (d time.Duration, profiled bool) {
	d = s.delay(arrived)
	if profiled = s.Profiling(); profiled {
		d += s.cfg.Latency.WhileProfiling
	}
	return d, profiled
}

// served notes a call that arrived at arrived and has just been served:
// its service time as measured, not as planned (a busy machine wakes the
// timer late), is what both the runtime_latency metric and the trace's
// request event say.
func (s *Server) served(arrived time.Time, profiled bool) {
	took := time.Since(arrived)
	s.metrics.ran(s.cfg.Model, took)
	if profiled {
		s.noteCall(arrived, arrived.Add(took))
	}
}

// afterStall returns t, or the end of the stall that t falls in.
func (s *Server) afterStall(t time.Duration) time.Duration {
	l := &s.cfg.Latency
	if l.StallEvery <= 0 || l.Stall <= 0 {
		return t
	}
	if into := t % l.StallEvery; into < l.Stall {
		return t + l.Stall - into
	}
	return t
}

// errClosing ends a held call when the server is closed.
var errClosing = errors.New("the simulator is shutting down")

// hold waits d, the rest of a call's service time (REST and gRPC). It ends
// early with ctx's error when the client gives up, or errClosing when the
// server is closed.
func (s *Server) hold(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	s.held.Add(1)
	defer s.held.Add(-1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return errClosing
	}
}

func (s *Server) predict(ctx *fasthttp.RequestCtx) {
	arrived := time.Now()
	s.noteArrival(arrived)
	if want := s.cfg.Authorization; want != "" && string(ctx.Request.Header.Peek("Authorization")) != want {
		writeError(ctx, fasthttp.StatusUnauthorized, "missing or wrong Authorization header")
		return
	}
	req, err := payloads.ParseBody(ctx.PostBody())
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "JSON Parse error: "+err.Error())
		return
	}
	sig := &s.cfg.Signature
	if req.SignatureName != "" && req.SignatureName != sig.Name {
		writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("Serving signature name: %q not found in signature def", req.SignatureName))
		return
	}
	bound, err := sig.bind(req)
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	out, err := predict(bound, len(ctx.PostBody()))
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if !s.serveREST(ctx, arrived) {
		return
	}
	ctx.SetContentType("application/json")
	key := "predictions"
	if req.Format == payloads.ColumnarFormat {
		key = "outputs"
	}
	buf := make([]byte, 0, 32+16*len(out))
	buf = append(buf, `{"`...)
	buf = append(buf, key...)
	buf = append(buf, `": [`...)
	for i, v := range out {
		if i > 0 {
			buf = append(buf, ", "...)
		}
		buf = appendFloat(buf, v)
	}
	buf = append(buf, ']')
	if pad := s.cfg.Faults.ResponseBytes - len(buf) - 20; pad > 0 {
		buf = append(buf, `, "padding": "`...)
		buf = append(buf, strings.Repeat("x", pad)...)
		buf = append(buf, '"')
	}
	buf = append(buf, '}')
	ctx.SetBody(buf)
}

// serveREST holds a REST call that arrived at arrived for its service
// time, counts it, and plays the faults and simulated failures: it returns
// false when it has answered (or dropped) the call itself, true when the
// handler writes the answer. TF Serving's and V2's routes share it.
func (s *Server) serveREST(ctx *fasthttp.RequestCtx, arrived time.Time) bool {
	d, profiled := s.serveTime(arrived)
	if s.hold(context.Background(), d-time.Since(arrived)) != nil {
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusServiceUnavailable, "the simulator is shutting down")
		return false
	}
	s.served(arrived, profiled)
	n := s.predicts.Add(1)
	if f := &s.cfg.Faults; (f.ResetRate > 0 || f.HalfCloseRate > 0) && n > f.AfterCalls {
		roll := rand.Float64()
		if tcp, ok := ctx.Conn().(*net.TCPConn); ok && roll < f.ResetRate+f.HalfCloseRate {
			if roll < f.ResetRate {
				_ = tcp.SetLinger(0) // close sends RST
				_ = tcp.Close()
			} else {
				_ = tcp.CloseWrite()
			}
			ctx.SetConnectionClose()
			return false
		}
	}
	if l := &s.cfg.Latency; l.ErrorRate > 0 && rand.Float64() < l.ErrorRate {
		writeError(ctx, l.ErrorStatus, "simulated failure")
		return false
	}
	return true
}

// appendFloat writes v as TF Serving does, including its bare NaN and
// Infinity tokens.
func appendFloat(buf []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(buf, "NaN"...)
	case math.IsInf(v, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(v, -1):
		return append(buf, "-Infinity"...)
	}
	return strconv.AppendFloat(buf, v, 'g', -1, 32)
}
