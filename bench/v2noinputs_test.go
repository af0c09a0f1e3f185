package bench

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/v2proto"
	"google.golang.org/grpc"
)

// noInputsGRPC is a V2 gRPC server whose model metadata lists no inputs,
// as MLServer's often does, and which answers every ModelInfer.
type noInputsGRPC struct {
	v2proto.UnimplementedGRPCInferenceServiceServer
}

func (noInputsGRPC) ServerReady(context.Context, *v2proto.ServerReadyRequest) (*v2proto.ServerReadyResponse, error) {
	return &v2proto.ServerReadyResponse{Ready: true}, nil
}

func (noInputsGRPC) ModelReady(context.Context, *v2proto.ModelReadyRequest) (*v2proto.ModelReadyResponse, error) {
	return &v2proto.ModelReadyResponse{Ready: true}, nil
}

func (noInputsGRPC) ModelMetadata(_ context.Context, r *v2proto.ModelMetadataRequest) (*v2proto.ModelMetadataResponse, error) {
	return &v2proto.ModelMetadataResponse{Name: r.GetName(), Platform: "fake"}, nil
}

func (noInputsGRPC) ModelInfer(_ context.Context, r *v2proto.ModelInferRequest) (*v2proto.ModelInferResponse, error) {
	return &v2proto.ModelInferResponse{ModelName: r.GetModelName(), Outputs: []*v2proto.ModelInferResponse_InferOutputTensor{
		{Name: "y", Datatype: "FP32", Shape: []int64{1}, Contents: &v2proto.InferTensorContents{Fp32Contents: []float32{1}}},
	}}, nil
}

// A model whose metadata lists no inputs takes native V2 bodies, with a
// warning that they were not checked; a TF Serving body is refused with
// the same error over REST and gRPC.
func TestV2ModelWithoutInputMetadata(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	v2proto.RegisterGRPCInferenceServiceServer(gs, noInputsGRPC{})
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	f := startFakeV2(t, map[string]string{"/v2/models/m": `{"name": "m", "versions": ["1"], "platform": "mlserver", "outputs": []}`},
		answering(200, `{"outputs": [{"name": "y", "datatype": "FP32", "shape": [1], "data": [1]}]}`))
	targets := map[string]Config{
		"REST": {URL: f.URL + "/v2/models/m/infer"},
		"gRPC": {GRPC: GRPCTarget{Addr: lis.Addr().String(), Model: "m", Protocol: ProtocolV2}},
	}
	for name, target := range targets {
		var warnings strings.Builder
		cfg := target
		cfg.DataPath = writeFile(t, "v2.json", v2Body)
		cfg.Plan, cfg.Timeout, cfg.Warnings = load.Plan{Concurrency: 1, Requests: 3}, 5*time.Second, &warnings
		res, err := Run(context.Background(), cfg)
		if err != nil || res.Requests != 3 || len(res.Errors) != 0 {
			t.Fatalf("%s, V2 body: %v", name, err)
		}
		if want := `warning: model "m"'s metadata lists no inputs: the V2 bodies of ` + cfg.DataPath + " are sent as they are, not checked against it\n"; warnings.String() != want {
			t.Errorf("%s: warnings %q, want %q", name, warnings.String(), want)
		}
		cfg.DataPath = writeFile(t, "tf.json", body)
		_, err = Run(context.Background(), cfg)
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), `tf.json: model "m": the model's metadata lists no inputs, and a TF Serving body needs their datatypes and shapes`) {
			t.Errorf("%s, TF body: got %v", name, err)
		}
	}
}
