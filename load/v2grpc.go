package load

import (
	"errors"

	"github.com/loadprof/loadprof/v2proto"
)

// ModelInferMethod is the Open Inference Protocol's (KServe V2) gRPC
// inference method, which Triton, KServe, MLServer and OpenVINO Model
// Server serve.
const ModelInferMethod = "/inference.GRPCInferenceService/ModelInfer"

// Field numbers of ModelInferResponse that the ModelInfer check reads.
const (
	inferOutputsField        = 5 // ModelInferResponse.outputs
	inferOutputDatatypeField = 2 // InferOutputTensor.datatype
)

// ModelInferResponseCheck returns the check for V2 ModelInfer: the answer
// parses as an inference.ModelInferResponse and carries at least one
// output tensor whose datatype is a V2 datatype. The second part catches
// another message type whose bytes happen to parse (an empty message
// parses as anything).
func ModelInferResponseCheck() ResponseCheck {
	wire := NewResponseCheck((&v2proto.ModelInferResponse{}).ProtoReflect().Descriptor())
	return func(msg []byte) error {
		if err := wire(msg); err != nil {
			return err
		}
		for out := range lengthDelimited(msg, inferOutputsField) {
			// A singular field that occurs more than once: the last one
			// counts.
			var datatype []byte
			for d := range lengthDelimited(out, inferOutputDatatypeField) {
				datatype = d
			}
			if isV2Datatype(datatype) {
				return nil
			}
		}
		return errors.New("an inference.ModelInferResponse without an output tensor of a V2 datatype")
	}
}

// isV2Datatype reports whether b names a tensor datatype of the V2
// protocol. (The conversions in the comparisons do not allocate.)
func isV2Datatype(b []byte) bool {
	switch string(b) {
	case "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
		"FP16", "FP32", "FP64", "BF16", "BYTES":
		return true
	}
	return false
}
