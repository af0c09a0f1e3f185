package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/tfproto"
	"github.com/loadprof/loadprof/v2proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// anyShape is a model whose input takes any shape, so that only the
// simulator's own bounds stand between a declared shape and an allocation.
var anyShape = Signature{
	Inputs:  []TensorSpec{{Name: "x", DType: "DT_FLOAT"}},
	Outputs: []TensorSpec{{Name: "y", DType: "DT_FLOAT", Shape: []int64{-1}}},
}

// Shapes that claim more than the request carries (an overflowing element
// count, a zero-size tensor with a huge first dimension) are answered 400
// on V2 REST, not allocated by (which crashed or exhausted the simulator).
func TestV2RESTRefusesShapesLargerThanTheRequest(t *testing.T) {
	s := start(t, Config{Signature: anyShape})
	url := s.V2InferURL()
	for _, c := range []struct{ shape, data, want string }{
		{"[4611686018427387904, 4]", "[]", "more elements than an int64 counts"},
		{"[9223372036854775807, 9223372036854775807]", "[1]", "more elements than an int64 counts"},
		{"[1099511627776, 0]", "[]", "batch size 1099511627776 is larger than the"},
	} {
		body := `{"inputs": [{"name": "x", "shape": ` + c.shape + `, "datatype": "FP32", "data": ` + c.data + `}]}`
		code, _, answer := call(t, "POST", url, body)
		if code != 400 || !strings.Contains(answer, c.want) {
			t.Errorf("shape %s: %d %s, want 400 with %q", c.shape, code, answer, c.want)
		}
	}
	// A small zero-size batch is still answered.
	code, _, answer := call(t, "POST", url, `{"inputs": [{"name": "x", "shape": [3, 0], "datatype": "FP32", "data": []}]}`)
	if code != 200 || !strings.Contains(answer, `"data":[0,0,0]`) {
		t.Errorf("shape [3, 0]: %d %s", code, answer)
	}
}

func TestV2GRPCRefusesShapesLargerThanTheRequest(t *testing.T) {
	s := start(t, Config{Signature: anyShape})
	c := v2Client(t, s)
	for _, shape := range [][]int64{{1 << 40, 0}, {1 << 62, 4}, {1<<63 - 1, 1<<63 - 1}} {
		req := &v2proto.ModelInferRequest{ModelName: "test_model", Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: shape, Contents: &v2proto.InferTensorContents{},
		}}}
		_, err := c.ModelInfer(context.Background(), req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("shape %v: %v, want InvalidArgument", shape, err)
		}
	}
}

func TestTFGRPCRefusesABatchLargerThanTheRequest(t *testing.T) {
	s := start(t, Config{Signature: anyShape})
	c := grpcClient(t, s)
	req := &tfproto.PredictRequest{ModelSpec: &tfproto.ModelSpec{Name: "test_model"}, Inputs: map[string]*tfproto.TensorProto{"x": floatTensor([]int64{1 << 40, 0})}}
	_, err := c.Predict(context.Background(), req)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "batch size 1099511627776") {
		t.Errorf("shape [2^40, 0]: %v, want InvalidArgument naming the batch", err)
	}
}
