package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// GRPCTarget is a gRPC model server and the model to call.
type GRPCTarget struct {
	Addr string // HOST:PORT
	// Protocol is the API the server speaks: ProtocolTFServing (the
	// default when empty) or ProtocolV2.
	Protocol      string
	Model         string
	Signature     string // TF Serving: used when a payload names none; "serving_default" when empty
	Version       int64  // 0: the latest (V2: the server's choice)
	Label         string // TF Serving only: instead of Version
	Connections   int    // HTTP/2 connections; 1 when 0
	TensorContent bool   // tensors as bytes: TF Serving's tensor_content, V2's raw_input_contents
}

// The gRPC protocols a GRPCTarget speaks.
const (
	ProtocolTFServing = "tf" // tensorflow.serving.PredictionService/Predict
	ProtocolV2        = "v2" // the Open Inference Protocol (KServe V2): inference.GRPCInferenceService/ModelInfer
)

func (g GRPCTarget) modelSpec() *tfproto.ModelSpec {
	spec := &tfproto.ModelSpec{Name: g.Model}
	switch {
	case g.Version > 0:
		spec.VersionChoice = &tfproto.ModelSpec_Version{Version: wrapperspb.Int64(g.Version)}
	case g.Label != "":
		spec.VersionChoice = &tfproto.ModelSpec_VersionLabel{VersionLabel: g.Label}
	}
	return spec
}

func (g GRPCTarget) describe() string {
	s := "grpc://" + g.Addr + " model " + g.Model
	switch {
	case g.Version > 0:
		s += fmt.Sprintf(" version %d", g.Version)
	case g.Label != "":
		s += " label " + g.Label
	}
	if g.Protocol == ProtocolV2 {
		s += " (V2)"
	}
	return s
}

// grpcCalls is what the load of one gRPC protocol sends: the method, every
// payload's request serialized once, and the check of each answer.
type grpcCalls struct {
	method   string
	requests [][]byte
	check    load.ResponseCheck
	response string // the answer's name, for errors: "Predict response"
	service  string // the service's name, for errors: "PredictionService"
}

// prepareGRPC opens the connections, asks the server what the payloads
// need (TF Serving: the signatures; V2: readiness and metadata) and
// converts every payload once into a serialized request.
func prepareGRPC(ctx context.Context, cfg Config, set *payloads.Set, tlsConfig *tls.Config) (*target, error) {
	g := cfg.GRPC
	switch {
	case g.Model == "":
		return nil, &InputError{setting.Errorf("bench.Config.GRPC.Model", "bench.Config.GRPC.Addr needs bench.Config.GRPC.Model NAME")}
	case g.Protocol != "" && g.Protocol != ProtocolTFServing && g.Protocol != ProtocolV2:
		return nil, &InputError{setting.Invalid("bench.Config.GRPC.Protocol", g.Protocol, fmt.Sprintf("want %s (TF Serving's PredictionService) or %s (the Open Inference Protocol, KServe V2)", ProtocolTFServing, ProtocolV2))}
	case g.Version > 0 && g.Label != "":
		return nil, &InputError{setting.Errorf("bench.Config.GRPC.Version", "bench.Config.GRPC.Version and bench.Config.GRPC.Label exclude each other")}
	case g.Version < 0:
		return nil, &InputError{setting.Errorf("bench.Config.GRPC.Version", "bench.Config.GRPC.Version must be positive")}
	case g.Protocol == ProtocolV2 && g.Label != "":
		return nil, &InputError{setting.Errorf("bench.Config.GRPC.Label", "bench.Config.GRPC.Label: the V2 protocol (bench.Config.GRPC.Protocol %s) has no version labels; give bench.Config.GRPC.Version", ProtocolV2)}
	}
	conns, err := load.DialGRPC(g.Addr, g.Connections, tlsConfig)
	if err != nil {
		return nil, &InputError{err}
	}
	fail := func(err error) (*target, error) {
		load.CloseConns(conns)
		return nil, err
	}
	var calls *grpcCalls
	if g.Protocol == ProtocolV2 {
		calls, err = prepareV2Calls(ctx, cfg, set, conns[0].Invoke)
	} else {
		calls, err = preparePredictCalls(ctx, cfg, set, conns[0].Invoke)
	}
	if err != nil {
		return fail(interruptedOr(ctx, err))
	}
	tr, err := load.NewGRPC(load.GRPCConfig{Conns: conns, Method: calls.method, Requests: calls.requests, Headers: cfg.Headers, Timeout: cfg.Timeout,
		MaxResponseBytes: cfg.MaxResponseBytes, CheckResponse: calls.check})
	if err != nil {
		return fail(&InputError{err})
	}
	name := g.describe()
	protocol := report.ProtocolTF
	if g.Protocol == ProtocolV2 {
		protocol = report.ProtocolV2
		if g.TensorContent {
			protocol = report.ProtocolV2Raw
		}
	}
	return &target{name: name, kind: "grpc", protocol: protocol, tr: closing{tr, conns}, preflight: func(ctx context.Context) error {
		// The call has the transport's own context; cancelling ctx closes
		// the connections under it, which ends it at once.
		stop := context.AfterFunc(ctx, func() { load.CloseConns(conns) })
		err := preflightGRPC(tr, set, name, calls)
		stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}}, nil
}

// preparePredictCalls fetches the model's signatures once and converts
// every payload into a serialized PredictRequest with them.
func preparePredictCalls(ctx context.Context, cfg Config, set *payloads.Set, invoke invokeFunc) (*grpcCalls, error) {
	g := cfg.GRPC
	if g.Signature == "" {
		g.Signature = "serving_default"
	}
	sigs, err := fetchSignatures(ctx, cfg, invoke)
	if err != nil {
		return nil, err
	}
	requests := make([][]byte, set.Len())
	for i := range set.Payloads {
		p := &set.Payloads[i]
		if p.Request == nil {
			return nil, &InputError{notTFServing(*p)}
		}
		name := p.Request.SignatureNameOr(g.Signature)
		sig, ok := sigs[name]
		if !ok {
			return nil, &InputError{&payloads.Error{Source: p.Source, Msg: fmt.Sprintf("signature %q is not in the model (signatures: %s)", name, strings.Join(sortedNames(sigs), ", "))}}
		}
		inputs, err := p.Request.ToTensorProtos(sig, payloads.ConvertOptions{TensorContent: g.TensorContent})
		if err != nil {
			return nil, &InputError{&payloads.Error{Source: p.Source, Msg: err.Error(), Err: err}}
		}
		spec := g.modelSpec()
		spec.SignatureName = name
		data, err := proto.Marshal(&tfproto.PredictRequest{ModelSpec: spec, Inputs: inputs})
		if err != nil {
			return nil, err
		}
		requests[i] = data
	}
	return &grpcCalls{method: load.PredictMethod, requests: requests, check: load.PredictResponseCheck(),
		response: "Predict response", service: "PredictionService"}, nil
}

// preflightGRPC sends the first payload once. A target that rejects it
// (a status other than a transient one), answers something that is not a
// response of the protocol, or answers more than --max-response allows
// fails the run before any load is sent; a timeout or a transient status
// is left to the run to count.
func preflightGRPC(tr *load.GRPC, set *payloads.Set, name string, calls *grpcCalls) error {
	out, _ := probeTolerantly(context.Background(), func() (load.Outcome, string) { o, _ := tr.Call(0); return o, "" })
	source := set.Payloads[0].Source
	switch {
	case out.Class == load.OK || out.Class == load.Timeout:
		return nil // a slow first call (lazy initialisation) is the warm-up's business
	case out.Class == load.GRPCStatus && (codes.Code(out.Code) == codes.Unavailable || codes.Code(out.Code) == codes.ResourceExhausted || codes.Code(out.Code) == codes.Internal):
		return nil // transient: the run counts them
	case out.Class == load.GRPCStatus:
		return &TargetError{fmt.Errorf("%s rejected %s: %s: %v", name, source, out.Key(), status.Convert(out.Err).Message())}
	case out.Class == load.TooLarge:
		return &TargetError{fmt.Errorf("%s: the response to %s is larger than bench.Config.MaxResponseBytes allows (%v)", name, source, status.Convert(out.Err).Message())}
	case out.Class == load.BadResponse:
		return &TargetError{fmt.Errorf("%s answered %s with something that is not a %s (is bench.Config.GRPC.Addr the %s port?): %v", name, source, calls.response, calls.service, out.Err)}
	}
	return &TargetError{fmt.Errorf("%s: %s: %v", name, out.Key(), out.Err)}
}

// closing closes the connections with the transport.
type closing struct {
	*load.GRPC
	conns []*grpc.ClientConn
}

func (c closing) Close() { load.CloseConns(c.conns) }

type invokeFunc = func(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error

// fetchSignatures calls GetModelMetadata for the model's SignatureDefMap.
func fetchSignatures(ctx context.Context, cfg Config, invoke invokeFunc) (map[string]*tfproto.SignatureDef, error) {
	g := cfg.GRPC
	wait := max(cfg.Timeout, 10*time.Second)
	callCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ctx = load.WithMetadata(callCtx, cfg.Headers)
	req := &tfproto.GetModelMetadataRequest{ModelSpec: g.modelSpec(), MetadataField: []string{"signature_def"}}
	resp := &tfproto.GetModelMetadataResponse{}
	began := time.Now()
	if err := invoke(ctx, "/tensorflow.serving.PredictionService/GetModelMetadata", req, resp); err != nil {
		st := status.Convert(err)
		// The server may give up a moment before our own deadline fires
		// (it counts the grpc-timeout we sent): either way it was the wait.
		if callCtx.Err() == context.DeadlineExceeded || (ctx.Err() == nil && time.Since(began) >= wait*9/10) {
			return nil, &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: GetModelMetadata for model %q did not answer within %v (bench.Config.Timeout, at least 10 s): is the model still loading, or is this the right port?", g.Addr, g.Model, wait)}
		}
		if st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded {
			return nil, &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: %s", g.Addr, connectionHint(st.Message(), cfg.TLS, false))}
		}
		if st.Code() == codes.Unimplemented {
			return nil, &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s does not serve TF Serving's PredictionService (%s); for Triton, KServe, MLServer or OpenVINO Model Server give bench.Config.GRPC.Protocol %s", g.Addr, st.Message(), ProtocolV2)}
		}
		return nil, &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: GetModelMetadata for model %q: %s: %s", g.Addr, g.Model, st.Code(), st.Message())}
	}
	packed, ok := resp.GetMetadata()["signature_def"]
	if !ok {
		return nil, &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: GetModelMetadata returned no signature_def", g.Addr)}
	}
	var sigs tfproto.SignatureDefMap
	if err := packed.UnmarshalTo(&sigs); err != nil {
		return nil, &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: signature_def metadata: %v", g.Addr, err)}
	}
	return sigs.GetSignatureDef(), nil
}

func sortedNames(m map[string]*tfproto.SignatureDef) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// connectionHint says what a failed gRPC connection most likely means;
// v2 is whether the run asked for the V2 protocol, whose REST route the
// hint then names.
func connectionHint(msg string, t TLSFiles, v2 bool) string {
	usesTLS := t.Enabled || t.CA != "" || t.Cert != ""
	switch {
	case strings.Contains(msg, "looked like an HTTP/1.1 header") && v2:
		return "this port speaks HTTP/1.1, not gRPC (Triton's and KServe's REST port is 8000 or 8080, gRPC 8001 or 8081): for V2 REST use bench.Config.URL http://HOST:PORT/v2/models/NAME/infer; " + msg
	case strings.Contains(msg, "looked like an HTTP/1.1 header"):
		return "this port speaks HTTP/1.1, not gRPC (TF Serving's REST port is 8501, gRPC 8500): for REST use bench.Config.URL http://HOST:PORT/v1/models/NAME:predict; " + msg
	case !usesTLS && (strings.Contains(msg, "server preface") || strings.Contains(msg, "EOF")):
		return "the server closed the connection; does it expect TLS (bench.Config.TLS.Enabled)? " + msg
	case usesTLS && t.Cert == "" && (strings.Contains(msg, "broken pipe") || strings.Contains(msg, "reset") || strings.Contains(msg, "certificate required")):
		return "the server dropped the TLS connection; does it require a client certificate (bench.Config.TLS.Cert, bench.Config.TLS.Key)? " + msg
	case strings.Contains(msg, "x509") || strings.Contains(msg, "tls:") || strings.Contains(msg, "handshake"):
		return "TLS handshake failed (check bench.Config.TLS.Enabled, bench.Config.TLS.CA, bench.Config.TLS.Cert/bench.Config.TLS.Key): " + msg
	case strings.Contains(msg, "connection refused"):
		return "unreachable (nothing listens there): " + msg
	}
	return "connection failed: " + msg
}
