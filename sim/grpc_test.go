package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func grpcClient(t *testing.T, s *Server) tfproto.PredictionServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return tfproto.NewPredictionServiceClient(cc)
}

func floatTensor(shape []int64, vals ...float32) *tfproto.TensorProto {
	tp := &tfproto.TensorProto{Dtype: tfproto.DataType_DT_FLOAT, FloatVal: vals, TensorShape: &tfproto.TensorShapeProto{}}
	for _, d := range shape {
		tp.TensorShape.Dim = append(tp.TensorShape.Dim, &tfproto.TensorShapeProto_Dim{Size: d})
	}
	return tp
}

func TestGRPCPredictValidatesLikeTFServing(t *testing.T) {
	s := start(t, Config{})
	c := grpcClient(t, s)
	ctx := context.Background()
	spec := &tfproto.ModelSpec{Name: "test_model"}
	resp, err := c.Predict(ctx, &tfproto.PredictRequest{ModelSpec: spec, Inputs: map[string]*tfproto.TensorProto{"x": floatTensor([]int64{2, 4}, 1, 2, 3, 4, 1, 1, 1, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if y := resp.Outputs["y"]; len(y.FloatVal) != 2 || y.FloatVal[0] != 10 || y.FloatVal[1] != 4 || resp.ModelSpec.GetVersion().GetValue() != 1 {
		t.Fatalf("response %v", resp)
	}
	cases := []struct {
		req  *tfproto.PredictRequest
		code codes.Code
		msg  string
	}{
		{&tfproto.PredictRequest{ModelSpec: spec, Inputs: map[string]*tfproto.TensorProto{"x": {Dtype: tfproto.DataType_DT_STRING, StringVal: [][]byte{[]byte("a")}, TensorShape: &tfproto.TensorShapeProto{Dim: []*tfproto.TensorShapeProto_Dim{{Size: 1}, {Size: 4}}}}}}, codes.InvalidArgument, "to be float but string is provided"},
		{&tfproto.PredictRequest{ModelSpec: spec, Inputs: map[string]*tfproto.TensorProto{"x": floatTensor([]int64{1, 3}, 1, 2, 3)}}, codes.InvalidArgument, "dimension 1 is 3"},
		{&tfproto.PredictRequest{ModelSpec: spec, Inputs: map[string]*tfproto.TensorProto{"x": floatTensor([]int64{1, 4}, 1, 2)}}, codes.InvalidArgument, "needs 4 values"},
		{&tfproto.PredictRequest{ModelSpec: spec, Inputs: map[string]*tfproto.TensorProto{"z": floatTensor([]int64{1, 4}, 1, 2, 3, 4)}}, codes.InvalidArgument, "input tensor alias not found"},
		{&tfproto.PredictRequest{ModelSpec: &tfproto.ModelSpec{Name: "nope"}}, codes.NotFound, "Servable not found"},
		{&tfproto.PredictRequest{ModelSpec: &tfproto.ModelSpec{Name: "test_model", SignatureName: "other"}}, codes.FailedPrecondition, "not found"},
	}
	for _, tc := range cases {
		_, err := c.Predict(ctx, tc.req)
		if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("got %v, want %s with %q", err, tc.code, tc.msg)
		}
	}
}

func TestGRPCMetadataReturnsTheSignature(t *testing.T) {
	s := start(t, Config{})
	c := grpcClient(t, s)
	resp, err := c.GetModelMetadata(context.Background(), &tfproto.GetModelMetadataRequest{ModelSpec: &tfproto.ModelSpec{Name: "test_model"}, MetadataField: []string{"signature_def"}})
	if err != nil {
		t.Fatal(err)
	}
	var sigs tfproto.SignatureDefMap
	if err := resp.Metadata["signature_def"].UnmarshalTo(&sigs); err != nil {
		t.Fatal(err)
	}
	x := sigs.SignatureDef["serving_default"].Inputs["x"]
	if x.Dtype != tfproto.DataType_DT_FLOAT || len(x.TensorShape.Dim) != 2 || x.TensorShape.Dim[1].Size != 4 {
		t.Fatalf("signature %v", sigs.SignatureDef)
	}
	_, err = c.GetModelMetadata(context.Background(), &tfproto.GetModelMetadataRequest{ModelSpec: &tfproto.ModelSpec{Name: "test_model"}, MetadataField: []string{"other"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v", err)
	}
}
