package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loadprof/loadprof/internal/setting"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// PredictMethod is TF Serving's gRPC predict method.
const PredictMethod = "/tensorflow.serving.PredictionService/Predict"

// GRPCConfig describes a gRPC target.
type GRPCConfig struct {
	Conns    []*grpc.ClientConn // requests are spread over these, one per sender in turn
	Method   string             // PredictMethod when empty
	Requests [][]byte           // serialized request messages, indexed by payload number
	Headers  []Header           // sent as metadata with every call
	Timeout  time.Duration
	// MaxResponseBytes is the largest response message accepted; a larger
	// one fails as TooLarge. 0 means 64 MiB.
	MaxResponseBytes int
	// CheckResponse, when set, is run on every response message; a message
	// it rejects fails as BadResponse. PredictResponseCheck is Predict's.
	CheckResponse ResponseCheck
}

// GRPC is a Transport for unary gRPC calls whose request messages are
// serialized once before the load starts: a call sends those bytes as they
// are and checks the response bytes with CheckResponse without decoding
// them into a message.
type GRPC struct {
	cfg  GRPCConfig
	base context.Context
	opts []grpc.CallOption
	next atomic.Uint64
	// scratch joins responses that arrive in several buffers for the check.
	scratch sync.Pool
}

// DialGRPC opens n connections to target (HOST:PORT). With tlsConfig nil
// the connections are plaintext. No I/O happens until the first call.
func DialGRPC(target string, n int, tlsConfig *tls.Config) ([]*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tlsConfig != nil {
		creds = credentials.NewTLS(tlsConfig)
	}
	if n <= 0 {
		n = 1
	}
	conns := make([]*grpc.ClientConn, 0, n)
	for i := 0; i < n; i++ {
		// Distinct user agents keep gRPC from sharing one transport between
		// the connections. The transport's calls set their own receive
		// limit (GRPCConfig.MaxResponseBytes); the default serves the
		// other calls (model metadata).
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds),
			grpc.WithUserAgent(fmt.Sprintf("loadprof/%d", i)),
			grpc.WithStatsHandler(answerTracker{}),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
		if err != nil {
			CloseConns(conns)
			return nil, setting.Errorf("load.DialGRPC.target", "load.DialGRPC.target %s: %w", target, err)
		}
		conns = append(conns, cc)
	}
	return conns, nil
}

// CloseConns closes the connections DialGRPC opened; their calls in
// flight fail at once.
func CloseConns(conns []*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

// NewGRPC returns a transport over cfg.Conns, which must come from DialGRPC
// (its stats handler tells the server's statuses from the client's).
func NewGRPC(cfg GRPCConfig) (*GRPC, error) {
	if len(cfg.Conns) == 0 || len(cfg.Requests) == 0 {
		return nil, errors.New("grpc: no connections or no payloads")
	}
	if cfg.Method == "" {
		cfg.Method = PredictMethod
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 20
	}
	base := WithMetadata(context.Background(), cfg.Headers)
	opts := []grpc.CallOption{grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallRecvMsgSize(cfg.MaxResponseBytes)}
	g := &GRPC{cfg: cfg, base: base, opts: opts}
	g.scratch.New = func() any { return new([]byte) }
	return g, nil
}

// WithMetadata returns ctx carrying headers as the outgoing gRPC metadata
// of the calls made with it (keys in lower case, as HTTP/2 wants them), or
// ctx itself when there are none.
func WithMetadata(ctx context.Context, headers []Header) context.Context {
	if len(headers) == 0 {
		return ctx
	}
	md := metadata.MD{}
	for _, h := range headers {
		md.Append(strings.ToLower(h.Key), h.Value)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// NewSender returns a sender bound to the next connection in turn.
func (g *GRPC) NewSender() Sender {
	i := g.next.Add(1) - 1
	s := &grpcSender{g: g, conn: g.cfg.Conns[i%uint64(len(g.cfg.Conns))]}
	s.base = context.WithValue(g.base, callStateKey{}, &s.state)
	s.resp.check, s.resp.scratch = g.cfg.CheckResponse, &g.scratch
	return s
}

// Close does nothing: the connections belong to the caller of DialGRPC.
func (g *GRPC) Close() {}

type grpcSender struct {
	g     *GRPC
	conn  *grpc.ClientConn
	base  context.Context // g.base carrying state, for answerTracker
	state callState
	req   rawMessage
	resp  rawMessage
}

func (s *grpcSender) Send(payload int) Outcome {
	s.state.header.Store(false)
	s.state.trailer.Store(false)
	s.resp.bad = nil
	ctx, cancel := context.WithTimeout(s.base, s.g.cfg.Timeout)
	s.req.data = s.g.cfg.Requests[payload]
	s.resp.size = 0
	err := s.conn.Invoke(ctx, s.g.cfg.Method, &s.req, &s.resp, s.g.opts...)
	timedOut := ctx.Err() == context.DeadlineExceeded
	cancel()
	var out Outcome
	if err == nil && s.resp.bad != nil {
		out = Outcome{Class: BadResponse, Err: s.resp.bad}
	} else {
		out = grpcOutcome(err, timedOut, s.state.header.Load(), s.state.trailer.Load())
	}
	out.BytesSent, out.BytesReceived = int64(len(s.req.data)), int64(s.resp.size)
	return out
}

// callState is what the server sent during one call: response headers, and
// trailers (which carry the call's status).
type callState struct {
	header, trailer atomic.Bool
}

type callStateKey struct{}

// answerTracker is a stats handler that marks, in the call's callState,
// the headers and trailers that came from the server. gRPC reports the
// client's own failures (a refused or reset connection, its message size
// limit) as statuses too; only the trailers say the server sent one.
type answerTracker struct{}

func (answerTracker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (answerTracker) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	switch rs.(type) {
	case *stats.InHeader, *stats.InTrailer:
	default:
		return
	}
	c, ok := ctx.Value(callStateKey{}).(*callState)
	// A call that is over (its context cancelled) may still see a late
	// frame; its sender's state belongs to the next call by then.
	if !ok || ctx.Err() != nil {
		return
	}
	if _, trailer := rs.(*stats.InTrailer); trailer {
		c.trailer.Store(true)
	} else {
		c.header.Store(true)
	}
}

func (answerTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (answerTracker) HandleConn(context.Context, stats.ConnStats) {}

// grpcOutcome classifies the error of a call. header and trailer say what
// the server sent.
func grpcOutcome(err error, timedOut, header, trailer bool) Outcome {
	if err == nil {
		return Outcome{Class: OK}
	}
	st, ok := status.FromError(err)
	msg := st.Message()
	switch {
	case timedOut || st.Code() == codes.DeadlineExceeded:
		// The deadline is ours (the server sees it in grpc-timeout and may
		// give up first): either way it is our timeout.
		return Outcome{Class: Timeout, Err: err}
	case !ok:
		return Outcome{Class: ClassifyNetError(err), Err: err}
	case st.Code() == codes.ResourceExhausted && header && strings.Contains(msg, "larger than max"):
		// Our receive limit, hit by a message the server started to send
		// (the trailers may be in already). A server rejecting our request
		// for its own limit answers with trailers only.
		return Outcome{Class: TooLarge, Err: err}
	case trailer && strings.HasPrefix(msg, "grpc: client streaming protocol violation"), trailer && strings.Contains(msg, "cardinality violation"):
		// The server's status was OK but it sent no response message (or
		// more than one).
		return Outcome{Class: BadResponse, Err: err}
	case trailer:
		return Outcome{Class: GRPCStatus, Code: int(st.Code()), Err: err}
	case httpStatusOf(msg) >= 300:
		// An HTTP error status, from whatever answered instead of a gRPC
		// server (a proxy): an answer, as it would be over REST.
		return Outcome{Class: HTTPStatus, Code: httpStatusOf(msg), Err: err}
	}
	return Outcome{Class: clientFailureClass(st.Code(), msg), Err: err}
}

// clientFailureClass maps a status that gRPC made up on the client side to
// the connection classes REST uses. gRPC keeps only the message of the
// underlying error, so the message is what is left to go by.
func clientFailureClass(code codes.Code, msg string) ErrorClass {
	switch {
	case strings.HasPrefix(msg, nonGRPCStatusPrefix) || strings.Contains(msg, "content-type"):
		// Something answered HTTP/2 with a success, but not with gRPC. (The
		// message quotes the body, which may say anything: this goes first.)
		return BadResponse
	case strings.Contains(msg, "connection refused"):
		return ConnRefused
	case strings.Contains(msg, "RST_STREAM") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe"):
		return ConnReset
	case strings.Contains(msg, "EOF") || strings.Contains(msg, "transport is closing") || strings.Contains(msg, "closed") || strings.Contains(msg, "GOAWAY") || strings.Contains(msg, "draining"):
		return ConnClosed
	case code == codes.ResourceExhausted && strings.Contains(msg, "larger than max"):
		return TooLarge
	}
	return OtherFailure
}

// nonGRPCStatusPrefix starts the message of gRPC's status for an HTTP
// response that is not gRPC: a proxy or load balancer answering for the
// server ("... server: 502 (Bad Gateway); transport: received unexpected
// content-type ...").
const nonGRPCStatusPrefix = "unexpected HTTP status code received from server: "

// httpStatusOf returns the HTTP status of such a message, or 0.
func httpStatusOf(msg string) int {
	rest, ok := strings.CutPrefix(msg, nonGRPCStatusPrefix)
	if !ok {
		return 0
	}
	code := 0
	for i := 0; i < len(rest) && i < 3 && rest[i] >= '0' && rest[i] <= '9'; i++ {
		code = code*10 + int(rest[i]-'0')
	}
	if code < 100 {
		return 0
	}
	return code
}

// Call sends payload once and returns its outcome and the raw response.
func (g *GRPC) Call(payload int) (Outcome, []byte) {
	s := g.NewSender().(*grpcSender)
	s.resp.keep = true
	out := s.Send(payload)
	return out, s.resp.data
}

// rawMessage is an already serialized protobuf message. A response is
// checked with check, and copied out of gRPC's buffers only when keep is
// set.
type rawMessage struct {
	data    []byte
	keep    bool
	check   ResponseCheck
	bad     error      // why check rejected the last response
	size    int        // bytes of the last response message
	scratch *sync.Pool // of *[]byte: a response that came in several buffers is joined in one for check
}

// rawCodec sends rawMessage bytes as they are and checks a response's bytes
// where gRPC received them: the load is measured, the outputs are not read.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.data)}, nil
}

// Unmarshal never fails on the bytes: a rejected response is noted in the
// message, so that the call still reads the server's status.
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	m.size = data.Len()
	if m.keep {
		m.data = data.Materialize()
	}
	if m.check == nil {
		return nil
	}
	var b []byte
	switch {
	case m.keep:
		b = m.data
	case len(data) == 1:
		b = data[0].ReadOnlyData()
	default:
		// Large responses come in several buffers (one per HTTP/2 frame).
		// A pool rather than a buffer per sender: a buffer as large as the
		// largest response, kept by each of a thousand senders, would add
		// up.
		buf := m.scratch.Get().(*[]byte)
		if n := data.Len(); cap(*buf) < n {
			*buf = make([]byte, n)
		}
		*buf = (*buf)[:data.Len()]
		data.CopyTo(*buf)
		m.bad = m.check(*buf)
		m.scratch.Put(buf)
		return nil
	}
	m.bad = m.check(b)
	return nil
}
