package payloads

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/v2proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// v2Sample has one input of each kind of slot, with values at the edges
// of their datatypes.
func v2Sample() *V2Request {
	return &V2Request{
		ID:         "req-1",
		Parameters: map[string]any{"flag": true, "count": int64(-3), "ratio": 0.5, "tag": "a"},
		Inputs: []V2Input{
			{Name: "x", Datatype: "FP32", Shape: []int64{2, 2}, Floats: []float64{1, -2.5, 3e38, math.Inf(-1)}},
			{Name: "ids", Datatype: "INT64", Shape: []int64{2}, Ints: []int64{9007199254740993, -1}},
			{Name: "small", Datatype: "INT8", Shape: []int64{2}, Ints: []int64{-128, 127}},
			{Name: "u16", Datatype: "UINT16", Shape: []int64{2}, Uints: []uint64{0, 65535}},
			{Name: "text", Datatype: "BYTES", Shape: []int64{2, 1}, Bytes: [][]byte{[]byte("hi"), {}}},
			{Name: "mask", Datatype: "BOOL", Shape: []int64{3}, Bools: []bool{true, false, true}, Parameters: map[string]any{"p": "q"}},
			{Name: "d", Datatype: "FP64", Shape: []int64{1}, Floats: []float64{0.1}},
			{Name: "big", Datatype: "UINT64", Shape: []int64{1}, Uints: []uint64{math.MaxUint64}},
		},
		Outputs: []V2Output{{Name: "y", Binary: true}},
	}
}

func TestV2TypedContentsUseTheFieldOfEachDatatype(t *testing.T) {
	req, err := v2Sample().ToModelInferRequest("m", "3", V2ProtoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if req.ModelName != "m" || req.ModelVersion != "3" || req.Id != "req-1" || len(req.RawInputContents) != 0 {
		t.Fatalf("header: %v", req)
	}
	c := map[string]*v2proto.InferTensorContents{}
	for _, in := range req.Inputs {
		c[in.Name] = in.Contents
	}
	if got := c["x"].Fp32Contents; len(got) != 4 || got[1] != -2.5 || got[2] != 3e38 || !math.IsInf(float64(got[3]), -1) {
		t.Errorf("FP32: %v", got)
	}
	if got := c["ids"].Int64Contents; !reflect.DeepEqual(got, []int64{9007199254740993, -1}) {
		t.Errorf("INT64: %v", got)
	}
	if got := c["small"].IntContents; !reflect.DeepEqual(got, []int32{-128, 127}) {
		t.Errorf("INT8 travels in int_contents: %v", got)
	}
	if got := c["u16"].UintContents; !reflect.DeepEqual(got, []uint32{0, 65535}) {
		t.Errorf("UINT16 travels in uint_contents: %v", got)
	}
	if got := c["text"].BytesContents; len(got) != 2 || string(got[0]) != "hi" || len(got[1]) != 0 {
		t.Errorf("BYTES: %q", got)
	}
	if got := c["mask"].BoolContents; !reflect.DeepEqual(got, []bool{true, false, true}) {
		t.Errorf("BOOL: %v", got)
	}
	if got := c["d"].Fp64Contents; !reflect.DeepEqual(got, []float64{0.1}) {
		t.Errorf("FP64: %v", got)
	}
	if got := c["big"].Uint64Contents; !reflect.DeepEqual(got, []uint64{math.MaxUint64}) {
		t.Errorf("UINT64: %v", got)
	}
	// Only one field of each contents is set.
	for name, cs := range c {
		set := 0
		cs.ProtoReflect().Range(func(_ protoreflect.FieldDescriptor, _ protoreflect.Value) bool { set++; return true })
		if set != 1 {
			t.Errorf("input %s: %d contents fields set: %v", name, set, cs)
		}
	}
	if p := req.Inputs[5].Parameters["p"]; p.GetStringParam() != "q" {
		t.Errorf("input parameters: %v", req.Inputs[5].Parameters)
	}
	want := map[string]*v2proto.InferParameter{
		"flag":  {ParameterChoice: &v2proto.InferParameter_BoolParam{BoolParam: true}},
		"count": {ParameterChoice: &v2proto.InferParameter_Int64Param{Int64Param: -3}},
		"ratio": {ParameterChoice: &v2proto.InferParameter_DoubleParam{DoubleParam: 0.5}},
		"tag":   {ParameterChoice: &v2proto.InferParameter_StringParam{StringParam: "a"}},
	}
	for k, v := range want {
		if !proto.Equal(req.Parameters[k], v) {
			t.Errorf("parameter %s: %v, want %v", k, req.Parameters[k], v)
		}
	}
	if len(req.Outputs) != 1 || req.Outputs[0].Name != "y" || len(req.Outputs[0].Parameters) != 0 {
		t.Errorf("outputs: %v", req.Outputs)
	}
}

func TestV2RawContentsAreLittleEndianRowMajorWithLengthPrefixedBytes(t *testing.T) {
	r := &V2Request{Inputs: []V2Input{
		{Name: "x", Datatype: "FP32", Shape: []int64{2}, Floats: []float64{1, -2}},
		{Name: "ids", Datatype: "INT64", Shape: []int64{1}, Ints: []int64{-2}},
		{Name: "text", Datatype: "BYTES", Shape: []int64{2}, Bytes: [][]byte{[]byte("abc"), {}}},
		{Name: "mask", Datatype: "BOOL", Shape: []int64{2}, Bools: []bool{true, false}},
		{Name: "h", Datatype: "FP16", Shape: []int64{3}, Floats: []float64{1, -2, 65504}},
		{Name: "b", Datatype: "BF16", Shape: []int64{1}, Floats: []float64{1}},
		{Name: "small", Datatype: "INT8", Shape: []int64{1}, Ints: []int64{-1}},
		{Name: "u", Datatype: "UINT16", Shape: []int64{1}, Uints: []uint64{0x1234}},
		{Name: "empty", Datatype: "FP32", Shape: []int64{0, 4}},
	}}
	req, err := r.ToModelInferRequest("m", "", V2ProtoOptions{Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{
		{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0},
		{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{3, 0, 0, 0, 'a', 'b', 'c', 0, 0, 0, 0},
		{1, 0},
		{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b},
		{0x80, 0x3f},
		{0xff},
		{0x34, 0x12},
		{},
	}
	if len(req.RawInputContents) != len(want) {
		t.Fatalf("%d raw entries for %d inputs", len(req.RawInputContents), len(want))
	}
	for i, w := range want {
		if !bytes.Equal(req.RawInputContents[i], w) {
			t.Errorf("input %s: raw % x, want % x", req.Inputs[i].Name, req.RawInputContents[i], w)
		}
		if req.Inputs[i].Contents != nil {
			t.Errorf("input %s has typed contents beside raw_input_contents", req.Inputs[i].Name)
		}
	}
	// An empty tensor keeps its entry on the wire, so entries stay aligned
	// with the inputs.
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back v2proto.ModelInferRequest
	if err := proto.Unmarshal(data, &back); err != nil || len(back.RawInputContents) != len(want) {
		t.Fatalf("after the wire: %d raw entries (%v)", len(back.RawInputContents), err)
	}
}

func TestV2InputsDecodeBackFromTypedAndRawContents(t *testing.T) {
	for _, raw := range []bool{false, true} {
		r := v2Sample()
		req, err := r.ToModelInferRequest("m", "", V2ProtoOptions{Raw: raw})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := proto.Marshal(req)
		var wire v2proto.ModelInferRequest
		if err := proto.Unmarshal(data, &wire); err != nil {
			t.Fatal(err)
		}
		got, err := V2InputsFromProto(&wire)
		if err != nil {
			t.Fatalf("raw %v: %v", raw, err)
		}
		for i := range got {
			w, g := r.Inputs[i], got[i]
			w.Parameters = nil
			if w.Datatype == "FP32" {
				// float32 on the wire.
				for j, v := range w.Floats {
					w.Floats[j] = float64(float32(v))
				}
			}
			if w.Datatype == "BYTES" {
				if len(g.Bytes) != len(w.Bytes) || string(g.Bytes[0]) != "hi" || len(g.Bytes[1]) != 0 {
					t.Errorf("raw %v: BYTES %q", raw, g.Bytes)
				}
				continue
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("raw %v: input %s came back as %+v, want %+v", raw, w.Name, g, w)
			}
		}
	}
}

func TestV2ConversionErrorsNameTheInput(t *testing.T) {
	cases := []struct {
		in   V2Input
		raw  bool
		want string
	}{
		{V2Input{Name: "x", Datatype: "FP32", Shape: []int64{2, 2}, Floats: []float64{1, 2, 3}}, false, `input "x": shape [2, 2] holds 4 elements, the input has 3`},
		{V2Input{Name: "s", Datatype: "INT8", Shape: []int64{1}, Ints: []int64{128}}, true, `input "s": element 0, 128, does not fit in INT8`},
		{V2Input{Name: "u", Datatype: "UINT32", Shape: []int64{1}, Uints: []uint64{1 << 32}}, false, `input "u": element 0, 4294967296, does not fit in UINT32`},
		{V2Input{Name: "f", Datatype: "FP32", Shape: []int64{1}, Floats: []float64{1e39}}, false, `input "f": element 0, 1e+39, does not fit in FP32`},
		{V2Input{Name: "h", Datatype: "FP16", Shape: []int64{1}, Floats: []float64{1}}, false, `input "h": FP16 has no typed contents field in the V2 protocol: send raw_input_contents`},
		{V2Input{Name: "b", Datatype: "BOOL", Shape: []int64{1}, Ints: []int64{1}}, false, `input "b": datatype BOOL, but the input has int values`},
		{V2Input{Name: "q", Datatype: "COMPLEX", Shape: []int64{1}}, false, `input "q": unknown datatype "COMPLEX"`},
		{V2Input{Name: "n", Datatype: "FP32", Shape: []int64{-1}}, false, `input "n": shape [-1] has a negative dimension`},
		{V2Input{Name: "p", Datatype: "FP32", Shape: []int64{0}, Parameters: map[string]any{"k": []int{1}}}, false, `input "p": parameters: "k" is a []int`},
	}
	for _, c := range cases {
		r := &V2Request{Inputs: []V2Input{c.in}}
		_, err := r.ToModelInferRequest("m", "", V2ProtoOptions{Raw: c.raw})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.in, err, c.want)
		}
	}
}

func TestV2InputsFromProtoRejectsContentsThatDoNotFill(t *testing.T) {
	cases := []struct {
		req  *v2proto.ModelInferRequest
		want string
	}{
		{&v2proto.ModelInferRequest{Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{2}}},
			RawInputContents: [][]byte{{0, 0, 0, 0}}}, `input "x": shape [2] holds 2 elements of FP32 (4 bytes each), the tensor has 4 bytes`},
		{&v2proto.ModelInferRequest{Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{Name: "t", Datatype: "BYTES", Shape: []int64{1}}},
			RawInputContents: [][]byte{{9, 0, 0, 0, 'a'}}}, `input "t": BYTES element 0 runs past the end of the tensor`},
		{&v2proto.ModelInferRequest{Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1}}, {Name: "y", Datatype: "FP32", Shape: []int64{1}}},
			RawInputContents: [][]byte{{0, 0, 0, 0}}}, `raw_input_contents has 1 entries for 2 inputs`},
		{&v2proto.ModelInferRequest{Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{2},
			Contents: &v2proto.InferTensorContents{Fp32Contents: []float32{1}}}}}, `input "x": shape [2] holds 2 elements, the FP32 contents have 1`},
		{&v2proto.ModelInferRequest{Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1},
			Contents: &v2proto.InferTensorContents{Fp32Contents: []float32{1}}}}, RawInputContents: [][]byte{{0, 0, 0, 0}}}, `input "x": has contents, and the request has raw_input_contents`},
		{&v2proto.ModelInferRequest{Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{Name: "h", Datatype: "FP16", Shape: []int64{1},
			Contents: &v2proto.InferTensorContents{Fp32Contents: []float32{1}}}}}, `input "h": FP16 has no typed contents field`},
	}
	for _, c := range cases {
		_, err := V2InputsFromProto(c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

func TestV2InputsFromProtoTakesRawContentsBesideAnEmptyContentsMessage(t *testing.T) {
	// MLServer's raw answers carry an empty contents message per tensor.
	got, err := V2InputsFromProto(&v2proto.ModelInferRequest{Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{Name: "y", Datatype: "FP32", Shape: []int64{1},
		Contents: &v2proto.InferTensorContents{}}}, RawInputContents: [][]byte{{0, 0, 0x80, 0x3f}}})
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Floats, []float64{1}) {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestV2MetadataRoundTripsThroughTheProto(t *testing.T) {
	meta := V2ModelMetadata{Name: "m", Versions: []string{"1", "2"}, Platform: "sim",
		Inputs:  []V2TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []V2TensorMetadata{{Name: "y", Datatype: "FP32", Shape: []int64{-1}}}}
	data, err := proto.Marshal(V2MetadataProto(meta))
	if err != nil {
		t.Fatal(err)
	}
	var resp v2proto.ModelMetadataResponse
	if err := proto.Unmarshal(data, &resp); err != nil {
		t.Fatal(err)
	}
	if got := V2MetadataFromProto(&resp); !reflect.DeepEqual(got, meta) {
		t.Fatalf("got %+v, want %+v", got, meta)
	}
}

func TestHalfValueInvertsHalfBits(t *testing.T) {
	for _, v := range []float64{0, 1, -2, 0.5, 65504, 6.103515625e-05, 5.960464477539063e-08, math.Inf(1)} {
		if got := halfValue(halfBits(v)); got != v {
			t.Errorf("%g came back as %g", v, got)
		}
	}
	if !math.IsNaN(halfValue(halfBits(math.NaN()))) {
		t.Error("NaN")
	}
}

// FuzzV2InputsFromProto: whatever raw bytes and shape a request carries,
// decoding it returns an error or inputs that fill their shapes, and never
// panics; what ToModelInferRequest encodes raw decodes back.
func FuzzV2InputsFromProto(f *testing.F) {
	f.Add("FP32", int64(2), []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0})
	f.Add("BYTES", int64(2), []byte{3, 0, 0, 0, 'a', 'b', 'c', 0, 0, 0, 0})
	f.Add("BYTES", int64(1), []byte{0xff, 0xff, 0xff, 0xff, 'a'})
	f.Add("FP16", int64(3), []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b})
	f.Add("BOOL", int64(-1), []byte{1})
	f.Add("INT8", int64(0), []byte{})
	f.Fuzz(func(t *testing.T, datatype string, n int64, raw []byte) {
		req := &v2proto.ModelInferRequest{Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: datatype, Shape: []int64{n}}},
			RawInputContents: [][]byte{raw}}
		got, err := V2InputsFromProto(req)
		if err != nil {
			return
		}
		in := got[0]
		if count := len(in.Bools) + len(in.Ints) + len(in.Uints) + len(in.Floats) + len(in.Bytes); int64(count) != n {
			t.Fatalf("%s %d % x: %d elements", datatype, n, raw, count)
		}
		back, err := (&V2Request{Inputs: got}).ToModelInferRequest("m", "", V2ProtoOptions{Raw: true})
		if err != nil {
			// Floats out of FP16's range decode from raw FP16 only as
			// infinities, which pass; anything else is a mismatch.
			t.Fatalf("%s %d % x decoded to %+v, which does not encode: %v", datatype, n, raw, in, err)
		}
		again, err := V2InputsFromProto(back)
		if err != nil || !reflect.DeepEqual(again[0].Shape, in.Shape) || len(back.RawInputContents[0]) == 0 && len(raw) != 0 {
			t.Fatalf("%s %d % x: round trip %+v %v", datatype, n, raw, again, err)
		}
		if datatype != "FP16" && datatype != "BF16" && !bytes.Equal(back.RawInputContents[0], raw) && !(datatype == "BOOL" && len(raw) == len(back.RawInputContents[0])) {
			// NaN payloads of FP32/FP64 survive float64 conversion bit for
			// bit on amd64, but not every NaN does in general; skip those.
			if !hasNaN(in.Floats) {
				t.Fatalf("%s %d: raw % x encoded back as % x", datatype, n, raw, back.RawInputContents[0])
			}
		}
	})
}

func hasNaN(vs []float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) {
			return true
		}
	}
	return false
}

// The receiving side of gRPC refuses a shape whose count overflows instead
// of comparing a wrapped count, and prints shapes as the JSON side does.
func TestV2InputsFromProtoShapeOverflow(t *testing.T) {
	for _, shape := range [][]int64{{1 << 62, 4}, {math.MaxInt64, math.MaxInt64}, {1 << 40, 1 << 40, 0, 1 << 40}} {
		req := &v2proto.ModelInferRequest{Inputs: []*v2proto.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: shape, Contents: &v2proto.InferTensorContents{Fp32Contents: []float32{1}},
		}}}
		_, err := V2InputsFromProto(req)
		if err == nil || !strings.Contains(err.Error(), "shape "+ShapeString(shape)) {
			t.Errorf("shape %v: err = %v", shape, err)
		}
	}
}

// The binary tensor extension and gRPC's raw_input_contents lay tensors out
// alike, and one decoder reads both: the same bytes give the same values
// or the same error either way. A shape far larger than its tensor is an
// error, with nothing allocated for the shape.
func TestV2RawTensorsReadAlikeInBinaryAndGRPC(t *testing.T) {
	cases := []struct {
		datatype string
		shape    []int64
		tensor   []byte
		want     string // "" when it decodes
	}{
		{"FP32", []int64{2}, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}, ""},
		{"INT16", []int64{1, 2}, []byte{0xff, 0xff, 2, 0}, ""},
		{"BOOL", []int64{3}, []byte{1, 0, 1}, ""},
		{"BYTES", []int64{2}, []byte{1, 0, 0, 0, 'a', 0, 0, 0, 0}, ""},
		{"FP32", []int64{2}, []byte{0, 0, 0, 0}, "shape [2] holds 2 elements of FP32 (4 bytes each), the tensor has 4 bytes"},
		{"BYTES", []int64{1}, []byte{9, 0, 0, 0, 'a'}, "BYTES element 0 runs past the end of the tensor"},
		{"BYTES", []int64{3}, []byte{1, 0, 0, 0, 'a'}, "shape [3] holds 3 elements, the tensor has 1"},
		{"BYTES", []int64{1 << 40}, []byte{1, 0, 0, 0, 'a'}, "shape [1099511627776] holds 1099511627776 elements, the tensor has 1"},
		{"INT64", []int64{1 << 40, 1 << 30}, []byte{1, 0, 0, 0}, "shape [1099511627776, 1073741824] holds more elements than an int64 counts"},
	}
	for _, c := range cases {
		header := fmt.Sprintf(`{"inputs": [{"name": "x", "datatype": %q, "shape": %s, "parameters": {"binary_data_size": %d}}]}`, c.datatype, shape64String(c.shape), len(c.tensor))
		binary, berr := ParseV2Binary(append([]byte(header), c.tensor...), len(header))
		grpc, gerr := V2InputsFromProto(&v2proto.ModelInferRequest{
			Inputs:           []*v2proto.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: c.datatype, Shape: c.shape}},
			RawInputContents: [][]byte{c.tensor},
		})
		if c.want == "" {
			if berr != nil || gerr != nil {
				t.Errorf("%s %v: errors %v (binary), %v (gRPC)", c.datatype, c.shape, berr, gerr)
				continue
			}
			if !reflect.DeepEqual(binary.Inputs[0], grpc[0]) {
				t.Errorf("%s %v: binary %+v, gRPC %+v", c.datatype, c.shape, binary.Inputs[0], grpc[0])
			}
			continue
		}
		if berr == nil || gerr == nil || !strings.Contains(berr.Error(), c.want) || !strings.Contains(gerr.Error(), c.want) {
			t.Errorf("%s %v: errors %v (binary), %v (gRPC), want both to say %q", c.datatype, c.shape, berr, gerr, c.want)
		}
	}
}
