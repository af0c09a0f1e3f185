package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/v2proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func v2Client(t *testing.T, s *Server) v2proto.GRPCInferenceServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return v2proto.NewGRPCInferenceServiceClient(cc)
}

func v2Infer(t *testing.T, r *payloads.V2Request, raw bool) *v2proto.ModelInferRequest {
	t.Helper()
	req, err := r.ToModelInferRequest("test_model", "", payloads.V2ProtoOptions{Raw: raw})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestV2GRPCServesReadinessAndMetadataBesidePredictionService(t *testing.T) {
	s := start(t, Config{Signature: Signature{Inputs: []TensorSpec{
		{Name: "x", DType: "DT_FLOAT", Shape: []int64{-1, 4}},
		{Name: "text", DType: "DT_STRING", Shape: []int64{-1}},
	}}})
	c := v2Client(t, s)
	ctx := context.Background()
	if live, err := c.ServerLive(ctx, &v2proto.ServerLiveRequest{}); err != nil || !live.Live {
		t.Fatalf("ServerLive: %v %v", live, err)
	}
	if ready, err := c.ServerReady(ctx, &v2proto.ServerReadyRequest{}); err != nil || !ready.Ready {
		t.Fatalf("ServerReady: %v %v", ready, err)
	}
	if ready, err := c.ModelReady(ctx, &v2proto.ModelReadyRequest{Name: "test_model", Version: "1"}); err != nil || !ready.Ready {
		t.Fatalf("ModelReady: %v %v", ready, err)
	}
	if _, err := c.ModelReady(ctx, &v2proto.ModelReadyRequest{Name: "test_model", Version: "2"}); status.Code(err) != codes.NotFound {
		t.Fatalf("ModelReady of a version the sim does not have: %v", err)
	}
	resp, err := c.ModelMetadata(ctx, &v2proto.ModelMetadataRequest{Name: "test_model"})
	if err != nil {
		t.Fatal(err)
	}
	meta := payloads.V2MetadataFromProto(resp)
	if meta.Name != "test_model" || len(meta.Versions) != 1 || meta.Versions[0] != "1" || len(meta.Inputs) != 2 ||
		meta.Inputs[0].Datatype != "FP32" || meta.Inputs[0].Shape[1] != 4 || meta.Inputs[1].Datatype != "BYTES" ||
		len(meta.Outputs) != 1 || meta.Outputs[0].Name != "y" || meta.Outputs[0].Datatype != "FP32" {
		t.Fatalf("metadata %+v", meta)
	}
	if _, err := c.ModelMetadata(ctx, &v2proto.ModelMetadataRequest{Name: "other"}); status.Code(err) != codes.NotFound {
		t.Fatalf("metadata of an unknown model: %v", err)
	}
	// TF Serving's API is still there on the same port.
	if _, err := grpcClient(t, s).GetModelMetadata(ctx, nil); status.Code(err) == codes.Unimplemented {
		t.Fatalf("PredictionService is gone: %v", err)
	}
}

func TestV2GRPCModelInferAnswersTypedAndRawLikePredict(t *testing.T) {
	s := start(t, Config{Signature: Signature{Inputs: []TensorSpec{
		{Name: "x", DType: "DT_FLOAT", Shape: []int64{-1, 2}},
		{Name: "ids", DType: "DT_INT64", Shape: []int64{-1}},
		{Name: "text", DType: "DT_STRING", Shape: []int64{-1}},
	}}})
	c := v2Client(t, s)
	r := &payloads.V2Request{ID: "abc", Inputs: []payloads.V2Input{
		{Name: "x", Datatype: "FP32", Shape: []int64{2, 2}, Floats: []float64{1, 2, 3, 4}},
		{Name: "ids", Datatype: "INT64", Shape: []int64{2}, Ints: []int64{10, 20}},
		{Name: "text", Datatype: "BYTES", Shape: []int64{2}, Bytes: [][]byte{[]byte("abc"), []byte("d")}},
	}}
	for _, raw := range []bool{false, true} {
		before := s.Predicts()
		resp, err := c.ModelInfer(context.Background(), v2Infer(t, r, raw))
		if err != nil {
			t.Fatalf("raw %v: %v", raw, err)
		}
		// The model's output is each example's sum (BYTES count as their
		// lengths): 1+2+10+3 and 3+4+20+1.
		if resp.Id != "abc" || resp.ModelName != "test_model" || resp.ModelVersion != "1" || len(resp.Outputs) != 1 {
			t.Fatalf("raw %v: response %v", raw, resp)
		}
		got, err := payloads.V2InputsFromProto(&v2proto.ModelInferRequest{
			Inputs:           []*v2proto.ModelInferRequest_InferInputTensor{{Name: resp.Outputs[0].Name, Datatype: resp.Outputs[0].Datatype, Shape: resp.Outputs[0].Shape, Contents: resp.Outputs[0].Contents}},
			RawInputContents: resp.RawOutputContents,
		})
		if err != nil {
			t.Fatalf("raw %v: output: %v", raw, err)
		}
		if y := got[0]; y.Name != "y" || y.Datatype != "FP32" || len(y.Floats) != 2 || y.Floats[0] != 16 || y.Floats[1] != 28 {
			t.Fatalf("raw %v: output %+v", raw, y)
		}
		if (len(resp.RawOutputContents) > 0) != raw {
			t.Fatalf("raw %v: raw_output_contents %v", raw, resp.RawOutputContents)
		}
		if s.Predicts() != before+1 {
			t.Fatalf("raw %v: Predicts went from %d to %d", raw, before, s.Predicts())
		}
	}
	cases := []struct {
		req  *v2proto.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{&v2proto.ModelInferRequest{ModelName: "other"}, codes.NotFound, "unknown model"},
		{&v2proto.ModelInferRequest{ModelName: "test_model", ModelVersion: "7"}, codes.NotFound, "version 7"},
		{v2Infer(t, &payloads.V2Request{Inputs: r.Inputs[:2]}, false), codes.InvalidArgument, "expected 3 inputs but got 2"},
		{v2Infer(t, &payloads.V2Request{Inputs: []payloads.V2Input{r.Inputs[0], r.Inputs[1], {Name: "text", Datatype: "FP32", Shape: []int64{2}, Floats: []float64{1, 2}}}}, false), codes.InvalidArgument, "datatype FP32, the model wants BYTES"},
		{v2Infer(t, &payloads.V2Request{Inputs: []payloads.V2Input{{Name: "x", Datatype: "FP32", Shape: []int64{1, 3}, Floats: []float64{1, 2, 3}}, r.Inputs[1], r.Inputs[2]}}, true), codes.InvalidArgument, "shape [1, 3] does not match the model's [-1, 2]"},
		{v2Infer(t, &payloads.V2Request{Inputs: []payloads.V2Input{{Name: "z", Datatype: "FP32", Shape: []int64{1}, Floats: []float64{1}}, r.Inputs[1], r.Inputs[2]}}, false), codes.InvalidArgument, "unexpected inference input 'z'"},
		{v2Infer(t, &payloads.V2Request{Inputs: r.Inputs, Outputs: []payloads.V2Output{{Name: "nope"}}}, false), codes.InvalidArgument, "unexpected inference output 'nope'"},
		{&v2proto.ModelInferRequest{ModelName: "test_model", Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}}},
			RawInputContents: [][]byte{{1, 2, 3}}}, codes.InvalidArgument, "shape [1, 2] holds 2 elements of FP32 (4 bytes each), the tensor has 3 bytes"},
	}
	for _, tc := range cases {
		_, err := c.ModelInfer(context.Background(), tc.req)
		if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("got %v, want %s with %q", err, tc.code, tc.msg)
		}
	}
}

func TestV2GRPCModelInferTakesTheLatencyErrorsAndAuthorizationOfPredict(t *testing.T) {
	one := &payloads.V2Request{Inputs: []payloads.V2Input{{Name: "x", Datatype: "FP32", Shape: []int64{1, 4}, Floats: []float64{1, 2, 3, 4}}}}

	// Every call fails with the configured status, mapped as for Predict.
	s := start(t, Config{Latency: Latency{ErrorRate: 1, ErrorStatus: 429}})
	if _, err := v2Client(t, s).ModelInfer(context.Background(), v2Infer(t, one, false)); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("error rate 1, status 429: %v", err)
	}

	// A call is held for its service time: the client's deadline, shorter
	// than it, ends the call with DeadlineExceeded while the server holds
	// it.
	s = start(t, Config{Latency: Latency{Fixed: time.Hour}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := v2Client(t, s).ModelInfer(ctx, v2Infer(t, one, false)); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("an hour of service time: %v", err)
	}

	// A stall holds a call that arrives during it until it ends: with a
	// stall that covers the whole period, the call never ends in time.
	s = start(t, Config{Latency: Latency{StallEvery: time.Hour, Stall: time.Hour}})
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := v2Client(t, s).ModelInfer(ctx, v2Infer(t, one, false)); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("inside a stall: %v", err)
	}

	s = start(t, Config{Authorization: "Bearer t"})
	c := v2Client(t, s)
	if _, err := c.ModelInfer(context.Background(), v2Infer(t, one, false)); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no authorization: %v", err)
	}
	ctx = metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer t")
	if _, err := c.ModelInfer(ctx, v2Infer(t, one, false)); err != nil {
		t.Fatalf("with authorization: %v", err)
	}
	if calls, _ := s.PredictLatency(); calls != 1 {
		t.Fatalf("the metrics counted %d successful calls, want 1", calls)
	}
}

// A V2 call is timed once, like a Predict: the metrics count each served
// call one time whatever the protocol.
func TestV2CallsAreTimedOnceInTheMetrics(t *testing.T) {
	one := &payloads.V2Request{Inputs: []payloads.V2Input{{Name: "x", Datatype: "FP32", Shape: []int64{1, 4}, Floats: []float64{1, 2, 3, 4}}}}
	s := start(t, Config{Latency: Latency{Fixed: time.Millisecond}})
	c := v2Client(t, s)
	for range 3 {
		if _, err := c.ModelInfer(context.Background(), v2Infer(t, one, false)); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, raw := call(t, "POST", s.V2InferURL(), `{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}`); code != 200 {
		t.Fatalf("V2 REST infer: %d %s", code, raw)
	}
	_, _, page := call(t, "GET", s.MetricsURL(), "")
	if want := `:tensorflow:serving:runtime_latency_count{model_name="test_model",API="Predict",runtime="TF1"} 4`; !strings.Contains(page, want) {
		t.Errorf("the page lacks %q:\n%s", want, page)
	}
}
