package payloads

import (
	"os"
	"path/filepath"
	"testing"
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
