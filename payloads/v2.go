package payloads

import "fmt"

// The Open Inference Protocol (KServe V2) request model. A V2 request is
// built once before the load, either from a native V2 body or from a TF
// Serving body and the model's V2 metadata, and then rendered into the wire
// form of the run (JSON, JSON with the binary tensor extension, or gRPC
// ModelInferRequest). Nothing here is touched per request.

// V2Input is one input tensor of a V2 infer request: typed, flat in
// row-major order. Exactly one of the value slices is used, chosen by
// Datatype: Bools for BOOL; Ints for INT8..INT64; Uints for UINT8..UINT64;
// Floats for FP16, FP32 and FP64; Bytes for BYTES.
type V2Input struct {
	Name     string
	Datatype string // V2 datatype name, e.g. "FP32", "INT64", "BYTES", "BOOL"
	Shape    []int64
	// Parameters of this input (e.g. "binary_data_size" is added by the
	// binary rendering, not stored here). Values are bool, int64, float64
	// or string.
	Parameters map[string]any

	Bools  []bool
	Ints   []int64
	Uints  []uint64
	Floats []float64
	Bytes  [][]byte
}

// V2Output asks for one output by name; Binary asks for it in the binary
// tensor extension ("parameters": {"binary_data": true}). Parameters are
// its other parameters (e.g. Triton's "classification"), passed through.
type V2Output struct {
	Name       string
	Binary     bool
	Parameters map[string]any
}

// V2Request is a validated V2 infer request.
type V2Request struct {
	ID string
	// Request-level parameters; values are bool, int64, float64 or string.
	Parameters map[string]any
	Inputs     []V2Input
	// Outputs is empty when the body asked for none: the server returns
	// every output.
	Outputs []V2Output
}

// V2TensorMetadata is one input or output in a model's V2 metadata
// (GET /v2/models/{name}[/versions/{v}] or gRPC ModelMetadata). A shape
// dimension of -1 matches any size.
type V2TensorMetadata struct {
	Name     string
	Datatype string
	Shape    []int64
}

// V2ModelMetadata is a model's V2 metadata, as far as loadprof uses it.
type V2ModelMetadata struct {
	Name     string
	Versions []string
	Platform string
	Inputs   []V2TensorMetadata
	Outputs  []V2TensorMetadata
}

// CheckInputs checks that every input the metadata lists has a name and a
// V2 datatype: anything else is the server's mistake, not the payload's.
func (m *V2ModelMetadata) CheckInputs() error {
	for _, t := range m.Inputs {
		if t.Name == "" || !IsV2Datatype(t.Datatype) {
			return fmt.Errorf("input %q has datatype %q, which is not a V2 datatype", t.Name, t.Datatype)
		}
	}
	return nil
}
