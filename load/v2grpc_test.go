package load

import (
	"strings"
	"testing"

	"github.com/loadprof/loadprof/v2proto"
)

func validModelInferResponse(t testing.TB) []byte {
	return mustMarshal(t, &v2proto.ModelInferResponse{ModelName: "m", Outputs: []*v2proto.ModelInferResponse_InferOutputTensor{
		{Name: "y", Datatype: "FP32", Shape: []int64{2}, Contents: &v2proto.InferTensorContents{Fp32Contents: []float32{1, 2}}},
	}})
}

func TestModelInferResponseCheckWantsAnOutputOfAV2Datatype(t *testing.T) {
	check := ModelInferResponseCheck()
	if err := check(validModelInferResponse(t)); err != nil {
		t.Fatalf("a valid response: %v", err)
	}
	raw := mustMarshal(t, &v2proto.ModelInferResponse{Outputs: []*v2proto.ModelInferResponse_InferOutputTensor{{Name: "y", Datatype: "BYTES", Shape: []int64{1}}},
		RawOutputContents: [][]byte{{1, 0, 0, 0, 'a'}}})
	if err := check(raw); err != nil {
		t.Fatalf("a response with raw_output_contents: %v", err)
	}
	for _, c := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty", nil, "without an output tensor"},
		{"no datatype", mustMarshal(t, &v2proto.ModelInferResponse{Outputs: []*v2proto.ModelInferResponse_InferOutputTensor{{Name: "y"}}}), "without an output tensor"},
		{"unknown datatype", mustMarshal(t, &v2proto.ModelInferResponse{Outputs: []*v2proto.ModelInferResponse_InferOutputTensor{{Name: "y", Datatype: "DT_FLOAT"}}}), "of a V2 datatype"},
		// A TF Serving PredictResponse: field 1 is a map there, a string
		// here, and its bytes are not always UTF-8.
		{"a PredictResponse", validPredictResponse(t), "inference.ModelInferResponse"},
		{"truncated", validModelInferResponse(t)[:10], "inference.ModelInferResponse"},
	} {
		if err := check(c.msg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	// The check runs on every response: nothing allocated for a valid one.
	msg := validModelInferResponse(t)
	if n := testing.AllocsPerRun(100, func() {
		if err := check(msg); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%.1f allocations per check", n)
	}
}
