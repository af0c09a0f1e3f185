package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/sim"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// mixedSignature has float, int, string (also b64) and bool inputs.
var mixedSignature = sim.Signature{
	Name: "serving_default",
	Inputs: []sim.TensorSpec{
		{Name: "x", DType: "DT_FLOAT", Shape: []int64{-1, 3}},
		{Name: "ids", DType: "DT_INT64", Shape: []int64{-1}},
		{Name: "text", DType: "DT_STRING", Shape: []int64{-1}},
		{Name: "image", DType: "DT_STRING", Shape: []int64{-1}},
	},
}

const mixedRows = `{"instances": [
	{"x": [1, 2, 3], "ids": 7, "text": "hello", "image": {"b64": "AAECAw=="}},
	{"x": [4, 5, 6], "ids": 8, "text": "hi", "image": {"b64": "AA=="}}
]}`

const mixedColumns = `{"inputs": {"x": [[1, 2, 3]], "ids": [7], "text": ["hello"], "image": [{"b64": "AAECAw=="}]}}`

func grpcConfig(srv *sim.Server, data string, plan load.Plan) Config {
	return Config{
		GRPC:     GRPCTarget{Addr: srv.GRPCAddr(), Model: srv.Model()},
		DataPath: data, Plan: plan, Timeout: 5 * time.Second,
	}
}

func TestGRPCLoadFromRowAndColumnarJSON(t *testing.T) {
	srv := startSim(t, sim.Config{Signature: mixedSignature, Latency: sim.Latency{Fixed: time.Millisecond}})
	for _, c := range []struct {
		name, body string
		opts       GRPCTarget
		plan       load.Plan
	}{
		{"rows, open loop", mixedRows, GRPCTarget{}, load.Plan{Rate: 300, Requests: 300, MaxInflight: 100}},
		{"columns, closed loop", mixedColumns, GRPCTarget{Connections: 3}, load.Plan{Concurrency: 8, Requests: 300}},
		{"tensor_content", mixedRows, GRPCTarget{TensorContent: true, Version: 1}, load.Plan{Concurrency: 2, Requests: 50}},
		{"label", mixedRows, GRPCTarget{Label: "stable"}, load.Plan{Concurrency: 2, Requests: 50}},
	} {
		before := srv.Predicts()
		cfg := grpcConfig(srv, writeFile(t, "data.json", c.body), c.plan)
		cfg.GRPC.Connections, cfg.GRPC.TensorContent, cfg.GRPC.Version, cfg.GRPC.Label = c.opts.Connections, c.opts.TensorContent, c.opts.Version, c.opts.Label
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.Transport != "grpc" || res.Protocol != "tf" || res.Requests != c.plan.Requests || len(res.Errors) != 0 || res.Latency.Count != c.plan.Requests {
			t.Fatalf("%s: transport %s, %d requests, errors %v", c.name, res.Transport, res.Requests, res.Errors)
		}
		if got := srv.Predicts() - before; got != c.plan.Requests+1 {
			t.Fatalf("%s: the sim answered %d predicts, want %d", c.name, got, c.plan.Requests+1)
		}
	}
}

func TestSamePayloadOverRESTAndGRPCReachesTheSameModel(t *testing.T) {
	srv := startSim(t, sim.Config{Signature: mixedSignature})
	data := writeFile(t, "data.json", mixedRows)
	plan := load.Plan{Concurrency: 2, Requests: 100}
	rest, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: data, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	grpcRes, err := Run(context.Background(), grpcConfig(srv, data, plan))
	if err != nil {
		t.Fatal(err)
	}
	if rest.Requests != 100 || grpcRes.Requests != 100 || len(rest.Errors)+len(grpcRes.Errors) != 0 || srv.Predicts() != 202 {
		t.Fatalf("rest %d %v, grpc %d %v, predicts %d", rest.Requests, rest.Errors, grpcRes.Requests, grpcRes.Errors, srv.Predicts())
	}
}

func TestGRPCBadPayloadsAreInputErrorsNamingPayloadAndInput(t *testing.T) {
	srv := startSim(t, sim.Config{Signature: mixedSignature})
	cases := map[string]string{
		`{"instances": [{"x": [1, 2, 3], "ids": 7, "text": "a", "image": "b", "extra": 1}]}`:  `input "extra" is not in the signature`,
		`{"instances": [{"x": [1, 2], "ids": 7, "text": "a", "image": "b"}]}`:                 `input "x": dimension 1 is 2, the signature wants 3`,
		`{"instances": [{"x": [[1, 2, 3]], "ids": 7, "text": "a", "image": "b"}]}`:            `input "x": rank 3`,
		`{"instances": [{"x": [1, 2, 3], "ids": 7.5, "text": "a", "image": "b"}]}`:            `input "ids": line 1: 7.5 is not an integer that fits in DT_INT64`,
		`{"instances": [{"x": [1, 2, 3], "ids": 7, "text": 5, "image": "b"}]}`:                `input "text": the signature wants DT_STRING, the payload has numbers`,
		`{"instances": [{"x": [1, 2, 3], "ids": 7, "text": "a"}]}`:                            `input "image" of the signature is missing`,
		`{"signature_name": "other", "instances": [{"x": [1, 2, 3], "ids": 7, "text": "a"}]}`: `signature "other" is not in the model (signatures: serving_default)`,
	}
	for body, want := range cases {
		_, err := Run(context.Background(), grpcConfig(srv, writeFile(t, "data.json", body), load.Plan{Concurrency: 1, Requests: 1}))
		var in *InputError
		if !errors.As(err, &in) || !strings.Contains(err.Error(), "data.json: "+want) && !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "payloads: ") {
			t.Errorf("%s:\n got %v\nwant an input error with %q", body, err, want)
		}
	}
	if srv.Predicts() != 0 {
		t.Fatalf("bad payloads sent %d predicts", srv.Predicts())
	}
}

func TestGRPCTargetFailures(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "data.json", body)
	closed := testkit.ClosedAddr(t)
	cases := []struct {
		target GRPCTarget
		want   string
		input  bool
	}{
		{GRPCTarget{Addr: closed, Model: "test_model"}, "unreachable", false},
		{GRPCTarget{Addr: srv.GRPCAddr(), Model: "nope"}, "NotFound: Servable not found for request: Latest(nope)", false},
		{GRPCTarget{Addr: srv.GRPCAddr(), Model: "test_model", Version: 3}, "Specific(test_model, 3)", false},
		{GRPCTarget{Addr: srv.GRPCAddr()}, "bench.Config.GRPC.Addr needs bench.Config.GRPC.Model", true},
		{GRPCTarget{Addr: srv.GRPCAddr(), Model: "m", Version: 1, Label: "x"}, "exclude each other", true},
	}
	for _, c := range cases {
		_, err := Run(context.Background(), Config{GRPC: c.target, DataPath: data, Plan: load.Plan{Concurrency: 1, Requests: 1}, Timeout: 2 * time.Second})
		var te *TargetError
		var in *InputError
		ok := errors.As(err, &te)
		if c.input {
			ok = errors.As(err, &in)
		}
		if !ok || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.target, err, c.want)
		}
	}
}

func TestGRPCErrorsAreClassifiedByStatusCode(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{ErrorRate: 0.25, ErrorStatus: 503}})
	res, err := Run(context.Background(), grpcConfig(srv, writeFile(t, "data.json", body), load.Plan{Concurrency: 4, Requests: 800}))
	if err != nil {
		t.Fatal(err)
	}
	n := res.Errors["grpc_UNAVAILABLE"]
	if n < 120 || n > 280 || len(res.Errors) != 1 || !strings.Contains(res.ErrorSamples["grpc_UNAVAILABLE"], "simulated failure") {
		t.Fatalf("errors %v samples %v", res.Errors, res.ErrorSamples)
	}
}

func TestGRPCTimeoutIsClassifiedAsTimeout(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: 300 * time.Millisecond}})
	cfg := grpcConfig(srv, writeFile(t, "data.json", body), load.Plan{Concurrency: 2, Requests: 4})
	cfg.Timeout = 100 * time.Millisecond
	res, err := Run(context.Background(), cfg)
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "no request succeeded (timeout: 4") {
		t.Fatalf("got %v", err)
	}
	if res == nil || res.Errors["timeout"] != 4 {
		t.Fatalf("result %+v", res)
	}
}

func TestHeadersReachTheServerAsHTTPHeadersAndGRPCMetadata(t *testing.T) {
	srv := startSim(t, sim.Config{Authorization: "Bearer s3cret"})
	data := writeFile(t, "data.json", body)
	auth := []load.Header{{Key: "Authorization", Value: "Bearer s3cret"}}
	for _, cfg := range []Config{
		{URL: srv.PredictURL()},
		{GRPC: GRPCTarget{Addr: srv.GRPCAddr(), Model: srv.Model()}},
	} {
		cfg.DataPath, cfg.Plan = data, load.Plan{Concurrency: 2, Requests: 50}
		cfg.Headers = auth
		if res, err := Run(context.Background(), cfg); err != nil || len(res.Errors) != 0 {
			t.Fatalf("%s with the header: %v", cfg.URL+cfg.GRPC.Addr, err)
		}
		cfg.Headers = nil
		_, err := Run(context.Background(), cfg)
		var te *TargetError
		if !errors.As(err, &te) || !(strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "UNAUTHENTICATED")) {
			t.Fatalf("%s without the header: %v", cfg.URL+cfg.GRPC.Addr, err)
		}
	}
}

// wrongPredictServer is a PredictionService whose GetModelMetadata is right
// (sim's default signature) and whose Predict answers predict(n) to the nth
// call.
func wrongPredictServer(t *testing.T, predict func(n int64) []byte) (addr string, predicts *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := proto.Marshal(&tfproto.SignatureDefMap{SignatureDef: map[string]*tfproto.SignatureDef{"serving_default": {
		MethodName: "tensorflow/serving/predict",
		Inputs: map[string]*tfproto.TensorInfo{"x": {Dtype: tfproto.DataType_DT_FLOAT, TensorShape: &tfproto.TensorShapeProto{
			Dim: []*tfproto.TensorShapeProto_Dim{{Size: -1}, {Size: 4}}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	metadata := &tfproto.GetModelMetadataResponse{ModelSpec: &tfproto.ModelSpec{Name: "m"}, Metadata: map[string]*anypb.Any{
		"signature_def": {TypeUrl: "type.googleapis.com/tensorflow.serving.SignatureDefMap", Value: sigs}}}
	predicts = new(atomic.Int64)
	srv := grpc.NewServer(grpc.ForceServerCodecV2(rawReplyCodec{encoding.GetCodecV2("proto")}), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		switch method {
		case "/tensorflow.serving.PredictionService/GetModelMetadata":
			if err := stream.RecvMsg(&tfproto.GetModelMetadataRequest{}); err != nil {
				return err
			}
			return stream.SendMsg(metadata)
		case load.PredictMethod:
			if err := stream.RecvMsg(&tfproto.PredictRequest{}); err != nil {
				return err
			}
			return stream.SendMsg(rawReply(predict(predicts.Add(1))))
		}
		return status.Errorf(codes.Unimplemented, "%s", method)
	}))
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), predicts
}

// rawReply is a response message a test server sends as it is.
type rawReply []byte

// rawReplyCodec is the proto codec, but sends rawReply bytes unchanged.
type rawReplyCodec struct{ proto encoding.CodecV2 }

func (c rawReplyCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(rawReply); ok {
		return mem.BufferSlice{mem.SliceBuffer(r)}, nil
	}
	return c.proto.Marshal(v)
}

func (c rawReplyCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}
func (c rawReplyCodec) Name() string { return "proto" }

func TestGRPCPreflightNamesAnswersThatAreNotPredictResponses(t *testing.T) {
	data := writeFile(t, "data.json", body)
	plan := load.Plan{Concurrency: 1, Requests: 10}
	for name, answer := range map[string][]byte{"garbage": []byte("not protobuf at all"), "empty": {}} {
		addr, predicts := wrongPredictServer(t, func(int64) []byte { return answer })
		_, err := Run(context.Background(), Config{GRPC: GRPCTarget{Addr: addr, Model: "m"}, DataPath: data, Plan: plan, Timeout: 5 * time.Second})
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "is not a Predict response") || !strings.Contains(err.Error(), "data.json") || predicts.Load() != 1 {
			t.Errorf("%s: %d predicts, err %v", name, predicts.Load(), err)
		}
	}

	srv := startSim(t, sim.Config{})
	cfg := grpcConfig(srv, data, plan)
	cfg.MaxResponseBytes = 20
	_, err := Run(context.Background(), cfg)
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "larger than bench.Config.MaxResponseBytes allows") || srv.Predicts() != 1 {
		t.Fatalf("%d predicts, err %v", srv.Predicts(), err)
	}
}

func TestGRPCRunCountsBadAndOversizedAnswersAsTheServerSentThem(t *testing.T) {
	valid, err := proto.Marshal(&tfproto.PredictResponse{Outputs: map[string]*tfproto.TensorProto{"y": {Dtype: tfproto.DataType_DT_FLOAT, FloatVal: []float32{1}}}})
	if err != nil {
		t.Fatal(err)
	}
	large, err := proto.Marshal(&tfproto.PredictResponse{Outputs: map[string]*tfproto.TensorProto{"y": {Dtype: tfproto.DataType_DT_FLOAT, FloatVal: make([]float32, 500)}}})
	if err != nil {
		t.Fatal(err)
	}
	var bad, tooLarge atomic.Int64
	addr, predicts := wrongPredictServer(t, func(n int64) []byte {
		switch {
		case n == 1: // the preflight's
			return valid
		case n%3 == 0:
			bad.Add(1)
			return []byte{0xff}
		case n%3 == 1:
			tooLarge.Add(1)
			return large
		}
		return valid
	})
	res, err := Run(context.Background(), Config{GRPC: GRPCTarget{Addr: addr, Model: "m"}, DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Concurrency: 3, Requests: 300}, Timeout: 5 * time.Second, MaxResponseBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"bad_response": int(bad.Load()), "response_too_large": int(tooLarge.Load())}
	// Bad and oversized answers are answers: in the latency, not in the
	// successful requests' latency.
	if predicts.Load() != 301 || res.Requests != 300 || fmt.Sprint(res.Errors) != fmt.Sprint(want) || res.Latency.Count != 300 ||
		res.LatencyOK.Count != int64(300-want["bad_response"]-want["response_too_large"]) {
		t.Fatalf("the server answered %d predicts, %v; the run counted %d requests, errors %v, %d latencies, %d ok", predicts.Load(), want, res.Requests, res.Errors, res.Latency.Count, res.LatencyOK.Count)
	}
}

func TestGRPCMetadataCallThatNeverAnswersSaysSoAndNamesTheSetting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		<-stream.Context().Done() // a model that never finishes loading
		return stream.Context().Err()
	}))
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	_, err = Run(context.Background(), Config{GRPC: GRPCTarget{Addr: ln.Addr().String(), Model: "m"}, DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Concurrency: 1, Requests: 1}, Timeout: time.Second})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), `GetModelMetadata for model "m" did not answer within 10s (bench.Config.Timeout, at least 10 s)`) {
		t.Fatalf("error %v", err)
	}
}

func TestPortMixUpsSayWhatThePortSpeaks(t *testing.T) {
	// TF Serving's gRPC port (8500) given as the REST URL, and its REST
	// port (8501) given to --grpc: the two mistakes the seed's setup
	// invites. Each says what the port speaks and what to use.
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "data.json", body)
	_, err := Run(context.Background(), Config{URL: "http://" + srv.GRPCAddr() + "/v1/models/test_model:predict", DataPath: data,
		Plan: load.Plan{Rate: 10, Duration: time.Second, MaxInflight: 10}, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "this port speaks HTTP/2, as gRPC does") {
		t.Fatalf("--url at the gRPC port: %v", err)
	}
	_, err = Run(context.Background(), Config{GRPC: GRPCTarget{Addr: srv.RESTAddr(), Model: "test_model"}, DataPath: data,
		Plan: load.Plan{Rate: 10, Duration: time.Second, MaxInflight: 10}, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "this port speaks HTTP/1.1, not gRPC") {
		t.Fatalf("--grpc at the REST port: %v", err)
	}
	if srv.Predicts() != 0 {
		t.Fatalf("%d predict calls reached the simulator", srv.Predicts())
	}
}

func TestDescribeAnswerNamesTheProtocolOfTheFirstBytes(t *testing.T) {
	for first, want := range map[string]string{
		"":                                     "",
		"HTTP/1.1 200 OK\r\n":                  "",
		"\x00\x00\x06\x04\x00\x00\x00\x00\x00": "HTTP/2",
		"\x15\x03\x01\x00\x02\x02\x46":         "TLS",
		"SSH-2.0-OpenSSH_9.2\r\n":              `not HTTP: "SSH-2.0-OpenSSH_9.2\r\n"`,
	} {
		if got := load.DescribeAnswer([]byte(first)); (want == "" && got != "") || !strings.Contains(got, want) {
			t.Errorf("DescribeAnswer(%q) = %q, want it to say %q", first, got, want)
		}
	}
}
