package payloads

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseV2BodyFlatAndNestedData(t *testing.T) {
	req, err := ParseV2Body([]byte(`{"id": "r1", "parameters": {"priority": 2, "note": "x", "scale": 0.5},
	  "inputs": [
	    {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2.5], [3, -4]]},
	    {"name": "ids", "shape": [3], "datatype": "INT64", "data": [1, -2, 9007199254740993]},
	    {"name": "text", "shape": [1, 2], "datatype": "BYTES", "data": ["ab", "c"], "parameters": {"content_type": "str"}},
	    {"name": "mask", "shape": [2], "datatype": "BOOL", "data": [true, false]},
	    {"name": "u", "shape": [1], "datatype": "UINT8", "data": [255]}
	  ],
	  "outputs": [{"name": "y", "parameters": {"binary_data": true}}, {"name": "z"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &V2Request{
		ID:         "r1",
		Parameters: map[string]any{"priority": int64(2), "note": "x", "scale": 0.5},
		Inputs: []V2Input{
			{Name: "x", Datatype: "FP32", Shape: []int64{2, 2}, Floats: []float64{1, 2.5, 3, -4}},
			{Name: "ids", Datatype: "INT64", Shape: []int64{3}, Ints: []int64{1, -2, 9007199254740993}},
			{Name: "text", Datatype: "BYTES", Shape: []int64{1, 2}, Bytes: [][]byte{[]byte("ab"), []byte("c")}, Parameters: map[string]any{"content_type": "str"}},
			{Name: "mask", Datatype: "BOOL", Shape: []int64{2}, Bools: []bool{true, false}},
			{Name: "u", Datatype: "UINT8", Shape: []int64{1}, Uints: []uint64{255}},
		},
		Outputs: []V2Output{{Name: "y", Binary: true}, {Name: "z"}},
	}
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("got  %+v\nwant %+v", req, want)
	}
}

func TestParseV2BodyErrorsNameInputAndLine(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
		   "data": [1, 2, 3]}]}`, `line 2: input "x": "data" has 3 elements, shape [2, 2] has 4`},
		{`{"inputs": [{"name": "x", "shape": [2], "datatype": "INT32",
		   "data": [1,
		   1.5]}]}`, `line 3: input "x": 1.5 is not an integer that fits in INT32`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}]}`, `input "x": 300 is not an integer that fits in INT8`},
		{`{"inputs": [{"name": "b", "shape": [1], "datatype": "BOOL", "data": [1]}]}`, `input "b": datatype BOOL wants booleans, the data has numbers`},
		{`{"inputs": [{"name": "s", "shape": [1], "datatype": "BYTES", "data": [1]}]}`, `input "s": datatype BYTES wants strings`},
		{`{"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2], [3, 4], [5, 6]]}]}`, `input "x": "data" is nested as [3, 2], "shape" says [2, 3]`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}`, `input "x": "datatype" must be one of`},
		{`{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}`, `input "x": dimension 0 of "shape" is -1, not a size`},
		{`{"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}`, `input "x" has no "shape"`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP16", "data": [70000]}]}`, `input "x": 70000 does not fit in FP16`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}, {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}`, `input "x" is given twice`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "y", "parameters": {"binary_data": 1}}]}`, `output "y": "binary_data" must be true or false, got 1`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}, "data": [1]}]}`, `input "x": a binary_data_size parameter claims a binary tensor after the JSON, which a JSON body does not have`},
	}
	for _, c := range cases {
		_, err := ParseV2Body([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.body, err, c.want)
		}
	}
}

func TestLoadTellsV2BodiesFromTFServingOnes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"instances": [[1, 2, 3, 4]]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}`), 0o644)
	set, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if set.Payloads[0].Request == nil || set.Payloads[0].V2 != nil {
		t.Fatalf("a.json: %+v", set.Payloads[0])
	}
	if set.Payloads[1].V2 == nil || set.Payloads[1].Request != nil || set.Payloads[1].V2.Inputs[0].Name != "x" {
		t.Fatalf("b.json: %+v", set.Payloads[1])
	}
	os.WriteFile(filepath.Join(dir, "c.jsonl"), []byte("\n{\"inputs\": [{\"name\": \"x\", \"shape\": [2], \"datatype\": \"FP32\", \"data\": [1]}]}\n"), 0o644)
	_, err = Load(filepath.Join(dir, "c.jsonl"), Options{})
	var pe *Error
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(pe.Msg, `input "x"`) {
		t.Fatalf("got %v", err)
	}
}

func v2Meta() *V2ModelMetadata {
	return &V2ModelMetadata{Name: "m", Inputs: []V2TensorMetadata{
		{Name: "x", Datatype: "FP16", Shape: []int64{-1, 2}},
		{Name: "ids", Datatype: "INT64", Shape: []int64{-1}},
		{Name: "text", Datatype: "BYTES", Shape: []int64{-1}},
	}}
}

func TestToV2ConvertsBothTFForms(t *testing.T) {
	rows, err := ParseBody([]byte(`{"instances": [{"x": [1, 2], "ids": 7, "text": {"b64": "aGk="}}, {"x": [3, 4], "ids": 8, "text": "yo"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cols, err := ParseBody([]byte(`{"inputs": {"x": [[1, 2], [3, 4]], "ids": [7, 8], "text": ["hi", "yo"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []V2Input{
		{Name: "ids", Datatype: "INT64", Shape: []int64{2}, Ints: []int64{7, 8}},
		{Name: "text", Datatype: "BYTES", Shape: []int64{2}, Bytes: [][]byte{[]byte("hi"), []byte("yo")}},
		{Name: "x", Datatype: "FP16", Shape: []int64{2, 2}, Floats: []float64{1, 2, 3, 4}},
	}
	for _, req := range []*Request{rows, cols} {
		v2, err := req.ToV2(v2Meta())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v2.Inputs, want) {
			t.Fatalf("%s: got %+v", req.Format, v2.Inputs)
		}
	}
	unnamed, _ := ParseBody([]byte(`{"instances": [1, 2, 3]}`))
	v2, err := unnamed.ToV2(&V2ModelMetadata{Inputs: []V2TensorMetadata{{Name: "in", Datatype: "INT32", Shape: []int64{-1}}}})
	if err != nil || v2.Inputs[0].Name != "in" || !reflect.DeepEqual(v2.Inputs[0].Ints, []int64{1, 2, 3}) {
		t.Fatalf("unnamed: %+v, %v", v2, err)
	}
}

func TestToV2ErrorsNameInput(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"inputs": {"x": [[1, 2, 3]], "ids": [1], "text": ["a"]}}`, `input "x": dimension 1 is 3, the model wants 2`},
		{`{"inputs": {"x": [1, 2], "ids": [1], "text": ["a"]}}`, `input "x": rank 1 (shape [2]) does not match the model's rank 2`},
		{"{\"inputs\": {\"x\": [[1, 2]], \"ids\": [\n1.5], \"text\": [\"a\"]}}", `input "ids": line 2: 1.5 is not an integer that fits in INT64`},
		{`{"inputs": {"x": [[1, 2]], "ids": [1], "text": [3]}}`, `input "text": line 1: datatype BYTES wants strings, the data has numbers`},
		{`{"inputs": {"x": [[1, 2]], "ids": [1]}}`, `input "text" of the model is missing from the payload`},
		{`{"inputs": {"x": [[1, 2]], "ids": [1], "text": ["a"], "extra": [1]}}`, `input "extra" is not in the model's metadata (inputs: ids, text, x)`},
		{`{"instances": [1, 2]}`, `the model has 3 inputs (ids, text, x): name them`},
	}
	for _, c := range cases {
		req, err := ParseBody([]byte(c.body))
		if err != nil {
			t.Fatal(err)
		}
		_, err = req.ToV2(v2Meta())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.body, err, c.want)
		}
	}
}

func TestCheckV2AgainstMetadata(t *testing.T) {
	req, _ := ParseV2Body([]byte(`{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}`))
	meta := &V2ModelMetadata{Inputs: []V2TensorMetadata{{Name: "x", Datatype: "FP16", Shape: []int64{-1, 2}}}}
	if err := req.CheckV2(meta); err == nil || !strings.Contains(err.Error(), `input "x" is FP32, the model wants FP16`) {
		t.Fatalf("got %v", err)
	}
	meta.Inputs[0].Datatype = "FP32"
	if err := req.CheckV2(meta); err != nil {
		t.Fatal(err)
	}
	meta.Outputs = []V2TensorMetadata{{Name: "y"}}
	req.Outputs = []V2Output{{Name: "z"}}
	if err := req.CheckV2(meta); err == nil || !strings.Contains(err.Error(), `output "z" is not in the model's metadata`) {
		t.Fatalf("got %v", err)
	}
}

func TestRenderJSONIsCompactAndRoundTrips(t *testing.T) {
	src := `{"id":"a","inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"k":1},"data":[0.1,-2]},{"name":"t","shape":[1],"datatype":"BYTES","data":["q\""]}],"outputs":[{"name":"y","parameters":{"binary_data":true}}],"parameters":{"p":true}}`
	req, err := ParseV2Body([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got, err := req.RenderJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != src {
		t.Fatalf("got  %s\nwant %s", got, src)
	}
	req.Inputs[0].Floats[0] = math.NaN()
	if _, err := req.RenderJSON(); err == nil || !strings.Contains(err.Error(), `input "x": element 0 is NaN`) {
		t.Fatalf("NaN: %v", err)
	}
}

func TestRenderBinaryLayout(t *testing.T) {
	req := &V2Request{
		Inputs: []V2Input{
			{Name: "f", Datatype: "FP32", Shape: []int64{2}, Floats: []float64{1.5, -2}},
			{Name: "h", Datatype: "FP16", Shape: []int64{1}, Floats: []float64{1}},
			{Name: "i", Datatype: "INT64", Shape: []int64{1}, Ints: []int64{-2}},
			{Name: "u", Datatype: "UINT16", Shape: []int64{1}, Uints: []uint64{258}},
			{Name: "b", Datatype: "BOOL", Shape: []int64{3}, Bools: []bool{true, false, true}},
			{Name: "s", Datatype: "BYTES", Shape: []int64{2}, Bytes: [][]byte{[]byte("ab"), {0xff}}, Parameters: map[string]any{"content_type": "str"}},
		},
		Outputs: []V2Output{{Name: "y"}},
	}
	body, n, err := req.RenderBinary()
	if err != nil {
		t.Fatal(err)
	}
	header := `{"inputs":[` +
		`{"name":"f","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},` +
		`{"name":"h","shape":[1],"datatype":"FP16","parameters":{"binary_data_size":2}},` +
		`{"name":"i","shape":[1],"datatype":"INT64","parameters":{"binary_data_size":8}},` +
		`{"name":"u","shape":[1],"datatype":"UINT16","parameters":{"binary_data_size":2}},` +
		`{"name":"b","shape":[3],"datatype":"BOOL","parameters":{"binary_data_size":3}},` +
		`{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"content_type":"str","binary_data_size":11}}],` +
		`"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`
	if string(body[:n]) != header {
		t.Fatalf("header\n got %s\nwant %s", body[:n], header)
	}
	le := binary.LittleEndian
	var raw []byte
	raw = le.AppendUint32(raw, math.Float32bits(1.5))
	raw = le.AppendUint32(raw, math.Float32bits(-2))
	raw = le.AppendUint16(raw, 0x3c00)
	raw = le.AppendUint64(raw, uint64(0xfffffffffffffffe))
	raw = le.AppendUint16(raw, 258)
	raw = append(raw, 1, 0, 1)
	raw = append(raw, 2, 0, 0, 0, 'a', 'b', 1, 0, 0, 0, 0xff)
	if string(body[n:]) != string(raw) {
		t.Fatalf("tensors\n got % x\nwant % x", body[n:], raw)
	}
}

func TestParseV2BinaryReadsWhatRenderBinaryWrote(t *testing.T) {
	req := &V2Request{
		ID: "q",
		Inputs: []V2Input{
			{Name: "f", Datatype: "FP32", Shape: []int64{1, 2}, Floats: []float64{1.5, -2}},
			{Name: "h", Datatype: "FP16", Shape: []int64{2}, Floats: []float64{1, -0.5}},
			{Name: "i", Datatype: "INT8", Shape: []int64{2}, Ints: []int64{-2, 7}},
			{Name: "u", Datatype: "UINT64", Shape: []int64{1}, Uints: []uint64{1 << 63}},
			{Name: "b", Datatype: "BOOL", Shape: []int64{2}, Bools: []bool{false, true}},
			{Name: "s", Datatype: "BYTES", Shape: []int64{2}, Bytes: [][]byte{[]byte("ab"), {}}, Parameters: map[string]any{"content_type": "str"}},
		},
		Outputs: []V2Output{{Name: "y", Binary: true}},
	}
	body, n, err := req.RenderBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseV2Binary(body, n)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Fatalf("got  %+v\nwant %+v", got, req)
	}
	if _, err := ParseV2Binary(body[:len(body)-1], n); err == nil || !strings.Contains(err.Error(), `input "s"`) {
		t.Fatalf("short body: %v", err)
	}
	if _, err := ParseV2Binary(append(body, 0), n); err == nil || !strings.Contains(err.Error(), "1 bytes after the last binary tensor") {
		t.Fatalf("long body: %v", err)
	}
}

// FuzzParseV2Body checks that no input makes the V2 parser panic, and that
// a body it accepts renders (JSON, when JSON can carry it, and binary) to
// bodies that parse back to the same request.
func FuzzParseV2Body(f *testing.F) {
	f.Add([]byte(`{"id": "a", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}], "outputs": [{"name": "y"}]}`))
	f.Add([]byte(`{"inputs": [{"name": "s", "shape": [1], "datatype": "BYTES", "data": ["\u00e9"], "parameters": {"k": 1.5}}], "parameters": {"p": "v"}}`))
	f.Add([]byte(`{"inputs": [{"name": "b", "shape": [3], "datatype": "BOOL", "data": [true, false, true]}, {"name": "h", "shape": [1], "datatype": "FP16", "data": [0.1]}]}`))
	f.Add([]byte(`{"inputs": [{"name": "x", "shape": [4611686018427387904, 4], "datatype": "FP32", "data": []}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseV2Body(data)
		if err != nil {
			return
		}
		for _, in := range req.Inputs {
			if n, ok := V2ElementCount(in.Shape); !ok || int64(v2Len(&in)) != n {
				t.Fatalf("input %q: shape %v, %d values", in.Name, in.Shape, v2Len(&in))
			}
		}
		if js, err := req.RenderJSON(); err == nil {
			again, err := ParseV2Body(js)
			if err != nil {
				t.Fatalf("%s does not parse: %v", js, err)
			}
			if !sameV2(again, req) {
				t.Fatalf("JSON round trip:\n%+v\n%+v", again, req)
			}
		}
		body, n, err := req.RenderBinary()
		if err != nil {
			return
		}
		again, err := ParseV2Binary(body, n)
		if err != nil {
			t.Fatalf("binary body does not parse: %v", err)
		}
		if len(req.Outputs) == 0 {
			// Every output is asked for in binary.
			if again.Parameters["binary_data_output"] != true {
				t.Fatalf("binary body without outputs does not ask for binary outputs: %s", body[:n])
			}
			if _, had := req.Parameters["binary_data_output"]; !had {
				delete(again.Parameters, "binary_data_output")
			}
		}
		if !sameV2(again, req) {
			t.Fatalf("binary round trip:\n%+v\n%+v", again, req)
		}
	})
}

// sameV2 compares requests as their wire forms can carry them: FP16 and
// BF16 values rounded, FP32 values as float32, every output binary.
func sameV2(a, b *V2Request) bool {
	norm := func(r *V2Request) *V2Request {
		c := *r
		if len(c.Parameters) == 0 {
			c.Parameters = nil
		}
		c.Inputs = append([]V2Input(nil), r.Inputs...)
		for i := range c.Inputs {
			in := &c.Inputs[i]
			if len(in.Parameters) == 0 {
				in.Parameters = nil
			}
			floats := make([]float64, len(in.Floats))
			for j, v := range in.Floats {
				switch in.Datatype {
				case "FP16":
					v = halfValue(halfBits(v))
				case "BF16":
					v = float64(math.Float32frombits(uint32(bfloat16Bits(v)) << 16))
				case "FP32":
					v = float64(float32(v))
				}
				floats[j] = v
			}
			if in.Floats != nil {
				in.Floats = floats
			}
		}
		c.Outputs = nil
		return &c
	}
	return fmt.Sprintf("%#v", norm(a)) == fmt.Sprintf("%#v", norm(b))
}

// A shape whose element count overflows an int64 must not pass for the
// data given: 2^62*4 wraps to 0 and MaxInt64^2 wraps to 1.
func TestParseV2BodyShapeOverflow(t *testing.T) {
	for _, c := range []struct{ shape, data string }{
		{"[4611686018427387904, 4]", "[]"},
		{"[9223372036854775807, 9223372036854775807]", "[1]"},
		{"[3037000500, 3037000500, 2]", "[]"},
	} {
		body := `{"inputs": [{"name": "x", "shape": ` + c.shape + `, "datatype": "FP32", "data": ` + c.data + `}]}`
		_, err := ParseV2Body([]byte(body))
		if err == nil || !strings.Contains(err.Error(), `input "x": shape `) || !strings.Contains(err.Error(), "more elements than an int64 counts") {
			t.Errorf("shape %s: err = %v, want the overflow named", c.shape, err)
		}
		// The binary form checks the same count.
		hdr := `{"inputs": [{"name": "x", "shape": ` + c.shape + `, "datatype": "FP32", "parameters": {"binary_data_size": 4}}]}`
		if _, err := ParseV2Binary(append([]byte(hdr), 0, 0, 0, 0), len(hdr)); err == nil {
			t.Errorf("binary, shape %s: no error", c.shape)
		}
	}
	// A zero dimension is zero elements, however large the others.
	req, err := ParseV2Body([]byte(`{"inputs": [{"name": "x", "shape": [1099511627776, 0], "datatype": "FP32", "data": []}]}`))
	if err != nil || len(req.Inputs[0].Floats) != 0 {
		t.Fatalf("zero-size tensor: %v", err)
	}
}

func TestV2ElementCount(t *testing.T) {
	for _, c := range []struct {
		shape []int64
		n     int64
		ok    bool
	}{
		{nil, 1, true}, {[]int64{2, 3}, 6, true}, {[]int64{1 << 40, 0}, 0, true},
		{[]int64{1 << 62, 4}, 0, false}, {[]int64{math.MaxInt64, math.MaxInt64}, 0, false},
		{[]int64{math.MaxInt64, 1}, math.MaxInt64, true},
	} {
		if n, ok := V2ElementCount(c.shape); n != c.n || ok != c.ok {
			t.Errorf("V2ElementCount(%v) = %d, %v; want %d, %v", c.shape, n, ok, c.n, c.ok)
		}
	}
}

// --v2-binary asks for binary outputs: each named output gets
// binary_data, its other parameters kept; with none named, the request
// asks for all of them in binary, as tritonclient does.
func TestRenderBinaryAsksForBinaryOutputs(t *testing.T) {
	in := V2Input{Name: "x", Datatype: "FP32", Shape: []int64{1}, Floats: []float64{1}}
	none := &V2Request{Inputs: []V2Input{in}, Parameters: map[string]any{"p": "v"}}
	body, n, err := none.RenderBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := `"parameters":{"binary_data_output":true,"p":"v"}}`; !strings.HasSuffix(string(body[:n]), want) {
		t.Errorf("no outputs: header %s, want it to end %s", body[:n], want)
	}
	if js, _ := none.RenderJSON(); strings.Contains(string(js), "binary_data_output") {
		t.Errorf("JSON body asks for binary outputs: %s", js)
	}
	req, err := ParseV2Body([]byte(`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "y", "parameters": {"classification": 3}}, {"name": "z"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, n, err = req.RenderBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := `"outputs":[{"name":"y","parameters":{"binary_data":true,"classification":3}},{"name":"z","parameters":{"binary_data":true}}]}`; !strings.HasSuffix(string(body[:n]), want) {
		t.Errorf("named outputs: header %s, want it to end %s", body[:n], want)
	}
	js, _ := req.RenderJSON()
	if want := `"outputs":[{"name":"y","parameters":{"classification":3}},{"name":"z"}]}`; !strings.HasSuffix(string(js), want) {
		t.Errorf("JSON: %s, want it to end %s", js, want)
	}
	grpcReq, err := req.ToModelInferRequest("m", "", V2ProtoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := grpcReq.GetOutputs()[0].GetParameters()["classification"]; p.GetInt64Param() != 3 {
		t.Errorf("gRPC output parameters: %v", grpcReq.GetOutputs()[0].GetParameters())
	}
}

func TestCheckV2InferResponse(t *testing.T) {
	bin := append([]byte(`{"outputs":[{"name":"y","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}`), 0, 0, 128, 63)
	binHeader := len(bin) - 4
	for _, c := range []struct {
		body      string
		headerLen int
		want      string // "" for a valid answer
	}{
		{`{"model_name":"m","outputs":[{"name":"y","datatype":"FP32","shape":[2],"data":[1,2]}]}`, -1, ""},
		{`{"outputs":[]}`, -1, `an empty "outputs" list: no output tensor`}, // as gRPC refuses an answer without an output
		{string(bin), binHeader, ""},
		{`{"predictions": [1]}`, -1, `no "outputs" list`},
		{`<html>ok</html>`, -1, `not JSON with "outputs"`},
		{`{"outputs":[{"name":"y","datatype":"DT_FLOAT","shape":[1],"data":[1]}]}`, -1, `output "y" has datatype "DT_FLOAT", which is not a V2 datatype`},
		{`{"outputs":[{"name":"y","datatype":"FP32","data":[1]}]}`, -1, `output "y" has no shape`},
		{`{"outputs":[{"name":"y","datatype":"FP32","shape":[1]}]}`, -1, `output "y" has neither a "data" list nor a binary_data_size`},
		{string(bin[:binHeader]), -1, `has a binary_data_size, but the answer has no Inference-Header-Content-Length header`},
		{string(bin) + "x", binHeader, "add up to 4 bytes, 5 follow"},
		{string(bin), len(bin) + 1, "is longer than the"},
	} {
		err := CheckV2InferResponse([]byte(c.body), c.headerLen)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q (header %d): %v, want %q", c.body, c.headerLen, err, c.want)
		}
	}
}
