package payloads

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/loadprof/loadprof/tfproto"
)

// FuzzParseBody checks that no input makes the body parser panic or accept
// a body whose tensors disagree with their shapes. Seeds live in
// testdata/fuzz/FuzzParseBody and testdata/*.json.
func FuzzParseBody(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.json")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"instances": [[1, 2], [3, 4]]}`))
	f.Add([]byte(`{"inputs": {"a": [{"b64": "aGk="}], "b": [true]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseBody(data)
		if err != nil {
			return
		}
		for _, in := range req.Inputs {
			n := 1
			for _, d := range in.Shape {
				n *= d
			}
			if n != len(in.Leaves) {
				t.Fatalf("input %q: shape %v holds %d values, got %d", in.Name, in.Shape, n, len(in.Leaves))
			}
		}
	})
}

// FuzzToTensorProtos checks the JSON-to-TensorProto conversion: no input
// panics it, and every tensor it accepts holds as many values as its shape
// says.
func FuzzToTensorProtos(f *testing.F) {
	f.Add([]byte(`{"instances": [{"x": [1, 2], "n": 3, "s": "a", "b": true}]}`))
	f.Add([]byte(`{"inputs": {"x": [[1e38, -0.5]], "n": [255], "s": [{"b64": "AA=="}], "b": [false]}}`))
	f.Add([]byte(`{"instances": [[1, 2]]}`))
	sig := &tfproto.SignatureDef{Inputs: map[string]*tfproto.TensorInfo{
		"x": {Dtype: tfproto.DataType_DT_HALF, TensorShape: &tfproto.TensorShapeProto{Dim: []*tfproto.TensorShapeProto_Dim{{Size: -1}, {Size: 2}}}},
		"n": {Dtype: tfproto.DataType_DT_UINT8},
		"s": {Dtype: tfproto.DataType_DT_STRING},
		"b": {Dtype: tfproto.DataType_DT_BOOL},
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseBody(data)
		if err != nil {
			return
		}
		for _, opts := range []ConvertOptions{{}, {TensorContent: true}} {
			tensors, err := req.ToTensorProtos(sig, opts)
			if err != nil {
				continue
			}
			for name, tp := range tensors {
				n := 1
				for _, d := range tp.GetTensorShape().GetDim() {
					n *= int(d.GetSize())
				}
				got := len(tp.GetHalfVal()) + len(tp.GetIntVal()) + len(tp.GetStringVal()) + len(tp.GetBoolVal())
				if opts.TensorContent && tp.GetDtype() != tfproto.DataType_DT_STRING {
					size := map[tfproto.DataType]int{tfproto.DataType_DT_HALF: 2, tfproto.DataType_DT_UINT8: 1, tfproto.DataType_DT_BOOL: 1}[tp.GetDtype()]
					got = len(tp.GetTensorContent()) / size
				}
				if got != n {
					t.Fatalf("input %s: shape holds %d values, the tensor %d", name, n, got)
				}
			}
		}
	})
}
