package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
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
}

// GRPC is a Transport for unary gRPC calls whose request messages are
// serialized once before the load starts: a call sends those bytes as they
// are and does not decode the response.
type GRPC struct {
	cfg  GRPCConfig
	base context.Context
	next atomic.Uint64
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
		// the connections.
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds),
			grpc.WithUserAgent(fmt.Sprintf("loadprof/%d", i)),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
		if err != nil {
			CloseConns(conns)
			return nil, fmt.Errorf("--grpc %s: %w", target, err)
		}
		conns = append(conns, cc)
	}
	return conns, nil
}

// CloseConns closes conns.
func CloseConns(conns []*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

// NewGRPC returns a transport over cfg.Conns.
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
	base := context.Background()
	if len(cfg.Headers) > 0 {
		md := metadata.MD{}
		for _, h := range cfg.Headers {
			md.Append(strings.ToLower(h.Key), h.Value)
		}
		base = metadata.NewOutgoingContext(base, md)
	}
	return &GRPC{cfg: cfg, base: base}, nil
}

// NewSender returns a sender bound to the next connection in turn.
func (g *GRPC) NewSender() Sender {
	i := g.next.Add(1) - 1
	return &grpcSender{g: g, conn: g.cfg.Conns[i%uint64(len(g.cfg.Conns))]}
}

// Close does nothing: the connections belong to the caller of DialGRPC.
func (g *GRPC) Close() {}

type grpcSender struct {
	g    *GRPC
	conn *grpc.ClientConn
	resp rawMessage
}

func (s *grpcSender) Send(payload int) Outcome {
	ctx, cancel := context.WithTimeout(s.g.base, s.g.cfg.Timeout)
	req := rawMessage{data: s.g.cfg.Requests[payload]}
	err := s.conn.Invoke(ctx, s.g.cfg.Method, &req, &s.resp, grpc.ForceCodecV2(rawCodec{}))
	timedOut := ctx.Err() == context.DeadlineExceeded
	cancel()
	return grpcOutcome(err, timedOut)
}

func grpcOutcome(err error, timedOut bool) Outcome {
	if err == nil {
		return Outcome{Class: OK}
	}
	st, ok := status.FromError(err)
	switch {
	case timedOut || st.Code() == codes.DeadlineExceeded:
		// The deadline is ours (the server sees it in grpc-timeout and may
		// give up first): either way it is our timeout.
		return Outcome{Class: Timeout, Err: err}
	case !ok:
		return Outcome{Class: ClassifyNetError(err), Err: err}
	}
	return Outcome{Class: GRPCStatus, Code: int(st.Code()), Err: err}
}

// Call sends payload once and returns its outcome and the raw response.
func (g *GRPC) Call(payload int) (Outcome, []byte) {
	s := g.NewSender().(*grpcSender)
	s.resp.keep = true
	out := s.Send(payload)
	return out, s.resp.data
}

// rawMessage is an already serialized protobuf message. A response is
// copied out of gRPC's buffers only when keep is set.
type rawMessage struct {
	data []byte
	keep bool
}

// rawCodec sends rawMessage bytes as they are and keeps a response's bytes
// without decoding them: the load is measured, the outputs are not read.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.data)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	if m.keep {
		m.data = data.Materialize()
	}
	return nil
}
