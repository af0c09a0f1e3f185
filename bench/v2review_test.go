package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/sim"
	"github.com/loadprof/loadprof/v2proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// badMetadataGRPC is a V2 gRPC server whose model metadata gives an input a
// datatype that is not a V2 one.
type badMetadataGRPC struct{ noInputsGRPC }

func (badMetadataGRPC) ModelMetadata(_ context.Context, r *v2proto.ModelMetadataRequest) (*v2proto.ModelMetadataResponse, error) {
	return &v2proto.ModelMetadataResponse{Name: r.GetName(), Platform: "fake", Inputs: []*v2proto.ModelMetadataResponse_TensorMetadata{
		{Name: "x", Datatype: "fp32", Shape: []int64{-1, 4}},
	}}, nil
}

// A metadata datatype that is not a V2 one is the server's fault over both
// transports, and the error names the model's metadata.
func TestV2MetadataWithABadDatatypeIsTheServersFault(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	v2proto.RegisterGRPCInferenceServiceServer(gs, badMetadataGRPC{})
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	f := startFakeV2(t, map[string]string{"/v2/models/m": `{"name": "m", "inputs": [{"name": "x", "datatype": "fp32", "shape": [-1, 4]}]}`}, answering(200, `{}`))
	for name, cfg := range map[string]Config{
		"REST": {URL: f.URL + "/v2/models/m/infer"},
		"gRPC": {GRPC: GRPCTarget{Addr: lis.Addr().String(), Model: "m", Protocol: ProtocolV2}},
	} {
		cfg.DataPath = writeFile(t, "data.json", body)
		cfg.Plan, cfg.Timeout = load.Plan{Concurrency: 1, Requests: 1}, 5*time.Second
		_, err := Run(context.Background(), cfg)
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), `model "m"'s metadata`) || !strings.Contains(err.Error(), `input "x" has datatype "fp32", which is not a V2 datatype`) {
			t.Errorf("%s: got %v, want a TargetError blaming the model's metadata", name, err)
		}
	}
	if f.inferCount() != 0 {
		t.Fatalf("%d infer calls", f.inferCount())
	}
}

// A metadata answer that is an error with a 200 is the server's error, not
// a model without inputs.
func TestV2MetadataErrorAnsweredWith200(t *testing.T) {
	f := startFakeV2(t, map[string]string{"/v2/models/m": `{"error": "Model m not found"}`}, answering(200, `{}`))
	_, err := Run(context.Background(), Config{URL: f.URL + "/v2/models/m/infer", DataPath: writeFile(t, "v2.json", v2Body),
		Plan: load.Plan{Concurrency: 1, Requests: 1}, Timeout: 5 * time.Second})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), `model "m"'s metadata (GET /v2/models/m): the server answered with an error: Model m not found`) {
		t.Fatalf("got %v", err)
	}
	if f.inferCount() != 0 {
		t.Fatalf("%d infer calls", f.inferCount())
	}
}

// A /v1/ URL given to a V2 server: the 404 says which URL to use, and
// only when GET /v2 answers as a V2 server does.
func TestV1URLOnAV2ServerHintsAtTheV2URL(t *testing.T) {
	const hint = "this server speaks the Open Inference Protocol (V2): use /v2/models/m/versions/2/infer"
	for _, c := range []struct {
		server string // GET /v2's answer; "" for 404
		hint   bool
	}{
		{`{"name": "fake", "version": "1", "extensions": []}`, true},
		{"", false},
		{`{"status": "ok"}`, false},
	} {
		f := startFakeV2(t, map[string]string{"/v2": c.server}, answering(200, `{}`))
		_, err := Run(context.Background(), Config{URL: f.URL + "/v1/models/m/versions/2:predict", DataPath: writeFile(t, "data.json", body),
			Plan: load.Plan{Concurrency: 1, Requests: 1}, Timeout: 5 * time.Second})
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "answered 404 to ") || strings.Contains(err.Error(), hint) != c.hint {
			t.Errorf("GET /v2 answering %q: got %v; want the hint: %v", c.server, err, c.hint)
		}
	}
}

// The REST preflight's GETs name bench.Config.Timeout when they time out,
// as the gRPC preflight does.
func TestV2RESTPreflightTimeoutNamesTheTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for the handler
	route := load.V2Route{Model: "m"}
	cfg := Config{URL: srv.URL + "/v2/models/m/infer"}
	u, _ := http.NewRequest(http.MethodGet, cfg.URL, nil)
	g := newV2Getter(cfg, nil, u.URL, route)
	g.client.Timeout = 200 * time.Millisecond
	_, err := fetchV2Metadata(context.Background(), g, route)
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "GET /v2/health/ready did not answer within 200ms (bench.Config.Timeout, at least 10 s)") {
		t.Fatalf("got %v", err)
	}
}

// ServerReady is the server's readiness: its errors do not name the model.
func TestV2GRPCServerReadyErrorDoesNotNameTheModel(t *testing.T) {
	invoke := func(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
		return status.Error(codes.Internal, "boom")
	}
	cfg := Config{GRPC: GRPCTarget{Addr: "127.0.0.1:1", Model: "m", Protocol: ProtocolV2}, Timeout: time.Second}
	_, err := fetchV2GRPCMetadata(context.Background(), cfg, "", invoke)
	if err == nil || err.Error() != "bench.Config.GRPC.Addr 127.0.0.1:1: ServerReady: Internal: boom" {
		t.Fatalf("got %v", err)
	}
}

// A TF Serving body's "signature_name" means nothing to a V2 target: one
// warning line says so, naming the file, over REST and gRPC.
func TestV2WarnsOnceAboutSignatureName(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "sig.jsonl", `{"signature_name": "serving_default", "instances": [[1, 2, 3, 4]]}`+"\n"+`{"signature_name": "other", "instances": [[1, 2, 3, 4]]}`+"\n")
	for name, cfg := range map[string]Config{
		"REST": {URL: srv.V2InferURL(), DataPath: data, Plan: load.Plan{Concurrency: 1, Requests: 2}, Timeout: 5 * time.Second},
		"gRPC": v2Config(srv, data, load.Plan{Concurrency: 1, Requests: 2}),
	} {
		var warnings strings.Builder
		cfg.Warnings = &warnings
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := "warning: " + data + `: "signature_name" "serving_default": the V2 protocol has no signatures; the field is not sent` + "\n"
		if warnings.String() != want {
			t.Errorf("%s: warnings %q, want %q", name, warnings.String(), want)
		}
	}
}
