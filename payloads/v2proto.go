package payloads

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/loadprof/loadprof/v2proto"
	"google.golang.org/protobuf/proto"
)

// V2ProtoOptions tune ToModelInferRequest.
type V2ProtoOptions struct {
	// Raw sends every input in raw_input_contents (little-endian, row-major;
	// BYTES elements each behind a 4-byte length) instead of the typed
	// InferTensorContents fields. FP16 and BF16 exist only in this form.
	Raw bool
}

// ToModelInferRequest builds the gRPC ModelInferRequest of r for model
// (version empty: the server's choice). It is done once before a run: the
// message is serialized then and sent as those bytes. Errors name the
// input and what does not fit.
func (r *V2Request) ToModelInferRequest(model, version string, opts V2ProtoOptions) (*v2proto.ModelInferRequest, error) {
	params, err := v2ParamsProto(r.Parameters)
	if err != nil {
		return nil, fmt.Errorf("request parameters: %w", err)
	}
	req := &v2proto.ModelInferRequest{ModelName: model, ModelVersion: version, Id: r.ID, Parameters: params}
	for i := range r.Inputs {
		in := &r.Inputs[i]
		t, raw, err := v2InputProto(in, opts)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		req.Inputs = append(req.Inputs, t)
		if opts.Raw {
			req.RawInputContents = append(req.RawInputContents, raw)
		}
	}
	for _, o := range r.Outputs {
		// binary_data is the REST binary extension's; gRPC has no use for it.
		params, err := v2ParamsProto(o.Parameters)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", o.Name, err)
		}
		req.Outputs = append(req.Outputs, &v2proto.ModelInferRequest_InferRequestedOutputTensor{Name: o.Name, Parameters: params})
	}
	return req, nil
}

// v2ElementCount is the number of elements shape holds.
func v2ElementCount(shape []int64) (int, error) {
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %s has a negative dimension", shape64String(shape))
		}
	}
	n, ok := V2ElementCount(shape)
	if !ok || n > math.MaxInt32 {
		return 0, fmt.Errorf("shape %s holds more elements than loadprof sends", shape64String(shape))
	}
	return int(n), nil
}

// v2Values returns the length of the value slice in that datatype's
// slot, and an error when another slot holds values too.
func v2Values(in *V2Input, slot string) (int, error) {
	lens := map[string]int{"Bools": len(in.Bools), "Ints": len(in.Ints), "Uints": len(in.Uints), "Floats": len(in.Floats), "Bytes": len(in.Bytes)}
	for name, n := range lens {
		if name != slot && n > 0 {
			return 0, fmt.Errorf("datatype %s, but the input has %s values", in.Datatype, strings.ToLower(strings.TrimSuffix(name, "s")))
		}
	}
	return lens[slot], nil
}

func v2InputProto(in *V2Input, opts V2ProtoOptions) (*v2proto.ModelInferRequest_InferInputTensor, []byte, error) {
	el, ok := v2Datatypes[in.Datatype]
	if !ok {
		return nil, nil, fmt.Errorf("unknown datatype %q", in.Datatype)
	}
	want, err := v2ElementCount(in.Shape)
	if err != nil {
		return nil, nil, err
	}
	got, err := v2Values(in, el.slice)
	if err != nil {
		return nil, nil, err
	}
	if got != want {
		return nil, nil, fmt.Errorf("shape %s holds %d elements, the input has %d", shape64String(in.Shape), want, got)
	}
	if err := v2CheckRange(in); err != nil {
		return nil, nil, err
	}
	params, err := v2ParamsProto(in.Parameters)
	if err != nil {
		return nil, nil, fmt.Errorf("parameters: %w", err)
	}
	t := &v2proto.ModelInferRequest_InferInputTensor{Name: in.Name, Datatype: in.Datatype, Shape: append([]int64{}, in.Shape...), Parameters: params}
	if opts.Raw {
		return t, v2RawContents(in), nil
	}
	c := &v2proto.InferTensorContents{}
	switch in.Datatype {
	case "BOOL":
		c.BoolContents = append([]bool{}, in.Bools...)
	case "INT8", "INT16", "INT32":
		c.IntContents = make([]int32, len(in.Ints))
		for i, v := range in.Ints {
			c.IntContents[i] = int32(v)
		}
	case "INT64":
		c.Int64Contents = append([]int64{}, in.Ints...)
	case "UINT8", "UINT16", "UINT32":
		c.UintContents = make([]uint32, len(in.Uints))
		for i, v := range in.Uints {
			c.UintContents[i] = uint32(v)
		}
	case "UINT64":
		c.Uint64Contents = append([]uint64{}, in.Uints...)
	case "FP32":
		c.Fp32Contents = make([]float32, len(in.Floats))
		for i, v := range in.Floats {
			c.Fp32Contents[i] = float32(v)
		}
	case "FP64":
		c.Fp64Contents = append([]float64{}, in.Floats...)
	case "BYTES":
		c.BytesContents = in.Bytes
	default:
		return nil, nil, fmt.Errorf("%s has no typed contents field in the V2 protocol: send raw_input_contents (--tensor-content)", in.Datatype)
	}
	t.Contents = c
	return t, nil, nil
}

// v2CheckRange checks that integers fit their datatype and that no finite
// float rounds to infinity in its datatype (the server would silently get
// infinity instead).
func v2CheckRange(in *V2Input) error {
	var lo, hi int64
	var uhi uint64
	switch in.Datatype {
	case "INT8":
		lo, hi = math.MinInt8, math.MaxInt8
	case "INT16":
		lo, hi = math.MinInt16, math.MaxInt16
	case "INT32":
		lo, hi = math.MinInt32, math.MaxInt32
	case "UINT8":
		uhi = math.MaxUint8
	case "UINT16":
		uhi = math.MaxUint16
	case "UINT32":
		uhi = math.MaxUint32
	case "FP32", "FP16", "BF16":
		format := v2FloatFormat(in.Datatype)
		for i, v := range in.Floats {
			if roundsToInfinity(v, *format) {
				return fmt.Errorf("element %d, %g, does not fit in %s", i, v, in.Datatype)
			}
		}
		return nil
	default:
		return nil
	}
	for i, v := range in.Ints {
		if v < lo || v > hi {
			return fmt.Errorf("element %d, %d, does not fit in %s", i, v, in.Datatype)
		}
	}
	for i, v := range in.Uints {
		if v > uhi {
			return fmt.Errorf("element %d, %d, does not fit in %s", i, v, in.Datatype)
		}
	}
	return nil
}

// v2RawContents encodes an input's elements, which v2InputProto checked, in
// the raw form, which is the binary tensor extension's layout: a non-nil
// slice, since an empty tensor still has its (empty) entry.
func v2RawContents(in *V2Input) []byte {
	return appendV2Raw([]byte{}, in)
}

func v2ParamsProto(params map[string]any) (map[string]*v2proto.InferParameter, error) {
	if len(params) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string]*v2proto.InferParameter, len(params))
	for _, k := range names {
		var p v2proto.InferParameter
		switch v := params[k].(type) {
		case bool:
			p.ParameterChoice = &v2proto.InferParameter_BoolParam{BoolParam: v}
		case int64:
			p.ParameterChoice = &v2proto.InferParameter_Int64Param{Int64Param: v}
		case int:
			p.ParameterChoice = &v2proto.InferParameter_Int64Param{Int64Param: int64(v)}
		case uint64:
			p.ParameterChoice = &v2proto.InferParameter_Uint64Param{Uint64Param: v}
		case float64:
			p.ParameterChoice = &v2proto.InferParameter_DoubleParam{DoubleParam: v}
		case string:
			p.ParameterChoice = &v2proto.InferParameter_StringParam{StringParam: v}
		default:
			return nil, fmt.Errorf("%q is a %T: a V2 parameter is a bool, an integer, a number or a string", k, v)
		}
		out[k] = &p
	}
	return out, nil
}

// V2MetadataFromProto is the model metadata a gRPC ModelMetadata call
// returned.
func V2MetadataFromProto(resp *v2proto.ModelMetadataResponse) V2ModelMetadata {
	conv := func(ts []*v2proto.ModelMetadataResponse_TensorMetadata) []V2TensorMetadata {
		out := make([]V2TensorMetadata, 0, len(ts))
		for _, t := range ts {
			out = append(out, V2TensorMetadata{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: append([]int64(nil), t.GetShape()...)})
		}
		return out
	}
	return V2ModelMetadata{
		Name:     resp.GetName(),
		Versions: append([]string(nil), resp.GetVersions()...),
		Platform: resp.GetPlatform(),
		Inputs:   conv(resp.GetInputs()),
		Outputs:  conv(resp.GetOutputs()),
	}
}

// V2MetadataProto is meta as a gRPC ModelMetadataResponse (what a server
// answers; the simulator's).
func V2MetadataProto(meta V2ModelMetadata) *v2proto.ModelMetadataResponse {
	conv := func(ts []V2TensorMetadata) []*v2proto.ModelMetadataResponse_TensorMetadata {
		out := make([]*v2proto.ModelMetadataResponse_TensorMetadata, 0, len(ts))
		for _, t := range ts {
			out = append(out, &v2proto.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: append([]int64{}, t.Shape...)})
		}
		return out
	}
	return &v2proto.ModelMetadataResponse{Name: meta.Name, Versions: append([]string{}, meta.Versions...), Platform: meta.Platform,
		Inputs: conv(meta.Inputs), Outputs: conv(meta.Outputs)}
}

// V2InputsFromProto decodes the input tensors of a ModelInferRequest, from
// their typed contents or from raw_input_contents, checking that the
// elements fill each shape. It is the receiving side of
// ToModelInferRequest (the simulator's, and tests').
func V2InputsFromProto(req *v2proto.ModelInferRequest) ([]V2Input, error) {
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return nil, fmt.Errorf("raw_input_contents has %d entries for %d inputs", len(raw), len(req.GetInputs()))
	}
	out := make([]V2Input, len(req.GetInputs()))
	for i, t := range req.GetInputs() {
		in := &out[i]
		in.Name, in.Datatype, in.Shape = t.GetName(), t.GetDatatype(), t.GetShape()
		var err error
		if len(raw) > 0 {
			// An empty contents message beside raw contents is what
			// MLServer sends; only elements in both places are ambiguous.
			if c := t.GetContents(); c != nil && proto.Size(c) > 0 {
				err = errors.New("has contents, and the request has raw_input_contents")
			} else {
				err = decodeV2Raw(in, raw[i])
			}
		} else {
			err = v2FromContents(in, t.GetContents())
		}
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
	}
	return out, nil
}

func v2FromContents(in *V2Input, c *v2proto.InferTensorContents) error {
	want, err := v2ElementCount(in.Shape)
	if err != nil {
		return err
	}
	got := 0
	switch in.Datatype {
	case "BOOL":
		in.Bools, got = c.GetBoolContents(), len(c.GetBoolContents())
	case "INT8", "INT16", "INT32":
		for _, v := range c.GetIntContents() {
			in.Ints = append(in.Ints, int64(v))
		}
		got = len(in.Ints)
	case "INT64":
		in.Ints, got = c.GetInt64Contents(), len(c.GetInt64Contents())
	case "UINT8", "UINT16", "UINT32":
		for _, v := range c.GetUintContents() {
			in.Uints = append(in.Uints, uint64(v))
		}
		got = len(in.Uints)
	case "UINT64":
		in.Uints, got = c.GetUint64Contents(), len(c.GetUint64Contents())
	case "FP32":
		for _, v := range c.GetFp32Contents() {
			in.Floats = append(in.Floats, float64(v))
		}
		got = len(in.Floats)
	case "FP64":
		in.Floats, got = c.GetFp64Contents(), len(c.GetFp64Contents())
	case "BYTES":
		in.Bytes, got = c.GetBytesContents(), len(c.GetBytesContents())
	default:
		if _, known := v2Datatypes[in.Datatype]; known {
			return fmt.Errorf("%s has no typed contents field: it must come in raw_input_contents", in.Datatype)
		}
		return fmt.Errorf("unknown datatype %q", in.Datatype)
	}
	if got != want {
		return fmt.Errorf("shape %s holds %d elements, the %s contents have %d", shape64String(in.Shape), want, in.Datatype, got)
	}
	return nil
}
