package payloads

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseBodyRowFormatStacksInstancesOnFirstDimension(t *testing.T) {
	req, err := ParseBody([]byte(`{"signature_name": "serving_default", "instances": [[1, 2, 3], [4, 5, 6]]}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.Format != RowFormat || req.SignatureName != "serving_default" || len(req.Inputs) != 1 {
		t.Fatalf("got %+v", req)
	}
	in := req.Inputs[0]
	if in.Name != "" || !reflect.DeepEqual(in.Shape, []int{2, 3}) || in.Kind != NumberLeaves || len(in.Leaves) != 6 || in.Leaves[5].Num != 6 {
		t.Fatalf("got %+v", in)
	}
}

func TestParseBodyNamedInstancesAndB64(t *testing.T) {
	req, err := ParseBody([]byte(`{"instances": [
		{"image": {"b64": "aGVsbG8="}, "scale": [0.5, 1]},
		{"image": {"b64": "d29ybGQ"}, "scale": [2, NaN]}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Inputs) != 2 || req.Inputs[0].Name != "image" || req.Inputs[1].Name != "scale" {
		t.Fatalf("got %+v", req.Inputs)
	}
	img := req.Inputs[0]
	if img.Kind != StringLeaves || !reflect.DeepEqual(img.Shape, []int{2}) || string(img.Leaves[0].Bytes) != "hello" || string(img.Leaves[1].Bytes) != "world" {
		t.Fatalf("image: %+v", img)
	}
	if s := req.Inputs[1]; !reflect.DeepEqual(s.Shape, []int{2, 2}) || s.Leaves[3].NumText != "NaN" {
		t.Fatalf("scale: %+v", s)
	}
}

func TestParseBodyColumnar(t *testing.T) {
	req, err := ParseBody([]byte(`{"inputs": {"tokens": [[1, 2], [3, 4]], "mask": [true, false]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.Format != ColumnarFormat || req.Inputs[0].Name != "mask" || req.Inputs[0].Kind != BoolLeaves || !reflect.DeepEqual(req.Inputs[1].Shape, []int{2, 2}) {
		t.Fatalf("got %+v", req)
	}
	req, err = ParseBody([]byte(`{"inputs": ["a", "b"]}`))
	if err != nil || req.Inputs[0].Name != "" || req.Inputs[0].Kind != StringLeaves {
		t.Fatalf("got %+v, %v", req, err)
	}
	req, err = ParseBody([]byte(`{"inputs": 3.5}`))
	if err != nil || len(req.Inputs[0].Shape) != 0 || req.Inputs[0].Leaves[0].Num != 3.5 {
		t.Fatalf("scalar input: %+v, %v", req, err)
	}
}

func TestParseBodyRejects(t *testing.T) {
	cases := []struct{ body, want string }{
		{`[1, 2]`, "must be a JSON object"},
		{`{"instances": {"a": 1}}`, `"instances" must be a list, got object`},
		{`{"instances": []}`, `"instances" is an empty list`},
		{`{"instances": [1], "inputs": [1]}`, "both"},
		{`{"signature_name": "x"}`, "neither"},
		{`{"signature_name": 3, "instances": [1]}`, `"signature_name" must be a string`},
		{`{"instances": [[1, 2], [3]]}`, "ragged"},
		{`{"instances": [[1, 2], 3]}`, "ragged"},
		{`{"instances": [1, [2]]}`, "ragged"},
		{`{"instances": [1, "a"]}`, "mixes numbers and strings"},
		{`{"instances": [{"a": 1}, {"b": 1}]}`, `no input "a"`},
		{`{"instances": [{"a": 1}, {"a": 1, "b": 2}]}`, "has keys a, b"},
		{`{"instances": [{"a": 1}, 2]}`, "mix of named and unnamed"},
		{`{"instances": [1, {"a": 2}]}`, "mix of named and unnamed"},
		{`{"instances": [{"b64": "!!"}]}`, "not base64"},
		{`{"instances": [{"b64": 3}]}`, `"b64" must be a string`},
		{`{"instances": [null]}`, "null is not a tensor value"},
		{`{"inputs": {}}`, "empty object"},
		{`{"inputs": {"x": [{"y": 1}]}}`, `must be {"b64"`},
		{`{"instances": [1,]}`, "expected a value"},
		{`{"instances": [01]}`, "leading zero"},
		{`{"instances": [1] `, "expected ',' or '}'"},
		{`{"instances": [1]} x`, "after the end"},
		{"{\"instances\": [\"a\x01\"]}", "control character"},
		{`{"instances": [1], "instances": [2]}`, "duplicate key"},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), "nested deeper"},
	}
	for _, c := range cases {
		_, err := ParseBody([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseBody(%q) = %v, want an error containing %q", c.body, err, c.want)
		}
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "data.json")
	os.WriteFile(bad, []byte("{\n  \"instances\": [\n    [1, 2],\n    [3]\n  ]\n}\n"), 0o644)
	_, err := Load(bad, Options{})
	var pe *Error
	if !errors.As(err, &pe) || pe.Line != 4 || !strings.HasPrefix(err.Error(), "payloads: "+bad+": line 4: ") {
		t.Fatalf("got %v", err)
	}

	lines := filepath.Join(dir, "bodies.jsonl")
	os.WriteFile(lines, []byte(`{"instances": [1]}`+"\n\n"+`{"instances": {}}`+"\n"), 0o644)
	_, err = Load(lines, Options{})
	if err == nil || !strings.Contains(err.Error(), "bodies.jsonl: line 3: \"instances\" must be a list") {
		t.Fatalf("got %v", err)
	}

	_, err = Load(filepath.Join(dir, "missing.json"), Options{})
	if err == nil || !strings.Contains(err.Error(), "missing.json: no such file") {
		t.Fatalf("got %v", err)
	}
	empty := t.TempDir()
	if _, err = Load(empty, Options{}); err == nil || !strings.Contains(err.Error(), "no .json or .jsonl files") {
		t.Fatalf("got %v", err)
	}
	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, []byte(`{"instances": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}`), 0o644)
	if _, err = Load(big, Options{MaxBytes: 10}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("got %v", err)
	}
	if _, err = Load("-", Options{Stdin: strings.NewReader("  \n")}); err == nil || !strings.Contains(err.Error(), "stdin is empty") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadDirectoryJSONLAndStdinRoundRobin(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"instances": [2]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "a.jsonl"), []byte("{\"instances\": [0]}\n{\"instances\": [1]}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	set, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 6; i++ {
		got = append(got, string(set.Payloads[set.Next()].Body))
	}
	want := []string{`{"instances": [0]}`, `{"instances": [1]}`, `{"instances": [2]}`}
	if !reflect.DeepEqual(got, append(want, want...)) {
		t.Fatalf("round robin: %q", got)
	}
	if set.Payloads[1].Source != filepath.Join(dir, "a.jsonl")+":2" {
		t.Fatalf("source %q", set.Payloads[1].Source)
	}

	set, err = Load("-", Options{Stdin: strings.NewReader("{\"instances\": [1]}\n{\"inputs\": [2]}\n")})
	if err != nil || set.Len() != 2 {
		t.Fatalf("stdin jsonl: %v %v", set, err)
	}
	set, err = Load("-", Options{Stdin: strings.NewReader("{\n\"instances\": [1]\n}\n")})
	if err != nil || set.Len() != 1 {
		t.Fatalf("stdin body: %v %v", set, err)
	}
}

func TestSetNextDoesNotAllocate(t *testing.T) {
	set := &Set{Payloads: make([]Payload, 3)}
	if n := testing.AllocsPerRun(1000, func() { set.Next() }); n != 0 {
		t.Fatalf("Next allocates %v times", n)
	}
}

func TestAByteOrderMarkIsNotPartOfThePayload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bom.json")
	if err := os.WriteFile(path, []byte("\xef\xbb\xbf{\"instances\": [[1, 2]]}"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(set.Payloads[0].Body); got != `{"instances": [[1, 2]]}` {
		t.Fatalf("body %q", got)
	}
	if _, err := Load(path, Options{MaxBytes: 10}); err == nil || !strings.Contains(err.Error(), "payloads.Options.MaxBytes") {
		t.Fatalf("a file over the limit: %v", err)
	}
}
