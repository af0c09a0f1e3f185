package sim

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/payloads"
)

func TestV2RESTRoutes(t *testing.T) {
	s := start(t, Config{Latency: Latency{}})
	base := "http://" + s.RESTAddr()
	cases := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"GET", "/v2/health/live", "", 200, `{"live":true}`},
		{"GET", "/v2/health/ready", "", 200, `{"ready":true}`},
		{"GET", "/v2/models/test_model/ready", "", 200, `"ready":true`},
		{"GET", "/v2/models/test_model/versions/1/ready", "", 200, `"ready":true`},
		{"GET", "/v2/models/test_model", "", 200, `"inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"name":"test_model","outputs":[{"name":"y","datatype":"FP32","shape":[-1]}],"platform":"loadprof-sim"`},
		{"GET", "/v2/models/test_model/versions/1", "", 200, `"versions":["1"]`},
		{"GET", "/v2/models/test_model/versions/2", "", 404, `{"error":"Model test_model version 2 not found"}`},
		{"GET", "/v2/models/other/ready", "", 404, `Model other not found`},
		{"POST", "/v2/models/test_model/infer", `{"id": "7", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4, 0.5, 0.5, 0.5, 0.5]}]}`, 200,
			`{"model_name":"test_model","model_version":"1","id":"7","outputs":[{"name":"y","datatype":"FP32","shape":[2],"data":[10,2]}]}`},
		{"POST", "/v2/models/test_model/versions/1/infer", `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [[1, 1, 1, 1]]}]}`, 200, `"data":[4]`},
		{"POST", "/v2/models/test_model/infer", `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 1, 1, 1]}]}`, 400, `input \"x\" is FP64, the model wants FP32`},
		{"POST", "/v2/models/test_model/infer", `{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 1, 1]}]}`, 400, `dimension 1 is 3, the model wants 4`},
		{"POST", "/v2/models/test_model/infer", `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1]}]}`, 400, `has 3 elements`},
		{"POST", "/v2/models/test_model/infer", `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]}], "outputs": [{"name": "z"}]}`, 400, `output \"z\" is not in the model's metadata`},
		{"GET", "/v2/models/test_model/infer", "", 405, "not allowed"},
		{"GET", "/v2/nothing", "", 404, "Not found"},
	}
	for _, c := range cases {
		code, _, body := call(t, c.method, base+c.path, c.body)
		if code != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("%s %s: %d %s, want %d with %s", c.method, c.path, code, body, c.status, c.contains)
		}
	}
	// Under a gateway's prefix, as load.ParseV2InferPath takes a target's
	// URL: the same routes.
	for _, c := range cases {
		path := "/seldon/ns/test_model" + c.path
		code, _, body := call(t, c.method, base+path, c.body)
		if code != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("%s %s: %d %s, want %d with %s", c.method, path, code, body, c.status, c.contains)
		}
	}
	for _, path := range []string{"/v1/models/v2", "/seldon/v2x/models/test_model/ready", "/v22/models/test_model/ready"} {
		if code, _, body := call(t, "GET", base+path, ""); code != 404 || strings.Contains(body, "Model") {
			t.Errorf("GET %s: %d %s, want TF Serving's 404", path, code, body)
		}
	}
	if got := s.V2InferURL(); got != base+"/v2/models/test_model/infer" {
		t.Errorf("V2InferURL %s", got)
	}
}

// The V2 metadata is the signature's, and the V2 answer is the TF Serving
// route's for the same tensors.
func TestV2AgreesWithTFServingRoutes(t *testing.T) {
	sig := Signature{
		Inputs:  []TensorSpec{{Name: "ids", DType: "DT_INT64", Shape: []int64{-1, 2}}, {Name: "text", DType: "DT_STRING", Shape: []int64{-1}}, {Name: "on", DType: "DT_BOOL", Shape: []int64{-1}}},
		Outputs: []TensorSpec{{Name: "score", DType: "DT_FLOAT", Shape: []int64{-1}}},
	}
	s := start(t, Config{Signature: sig})
	meta := s.v2Metadata()
	if meta.Inputs[0].Datatype != "INT64" || meta.Inputs[1].Datatype != "BYTES" || meta.Inputs[2].Datatype != "BOOL" || meta.Outputs[0].Name != "score" || meta.Platform != v2Platform {
		t.Fatalf("metadata %+v", meta)
	}
	_, tf, _ := call(t, "POST", s.PredictURL(), `{"inputs": {"ids": [[1, 2], [3, 4]], "text": ["abc", "d"], "on": [true, false]}}`)
	code, v2, body := call(t, "POST", s.V2InferURL(), `{"inputs": [
		{"name": "ids", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]},
		{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["abc", "d"]},
		{"name": "on", "shape": [2], "datatype": "BOOL", "data": [true, false]}]}`)
	if code != 200 {
		t.Fatal(body)
	}
	data := v2["outputs"].([]any)[0].(map[string]any)["data"]
	if got, want := toString(data), toString(tf["outputs"]); got != want || want != "[7 8]" {
		t.Fatalf("V2 %s, TF Serving %s", got, want)
	}
}

func toString(v any) string {
	var b strings.Builder
	b.WriteString("[")
	for i, x := range v.([]any) {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.FormatFloat(x.(float64), 'g', -1, 64))
	}
	return b.String() + "]"
}

func TestV2BinaryExtensionInAndOut(t *testing.T) {
	s := start(t, Config{})
	req := &payloads.V2Request{
		Inputs:  []payloads.V2Input{{Name: "x", Datatype: "FP32", Shape: []int64{2, 4}, Floats: []float64{1, 2, 3, 4, 0.25, 0.25, 0.25, 0.25}}},
		Outputs: []payloads.V2Output{{Name: "y"}},
	}
	body, n, err := req.RenderBinary()
	if err != nil {
		t.Fatal(err)
	}
	httpReq, _ := http.NewRequest("POST", s.V2InferURL(), bytes.NewReader(body))
	httpReq.Header.Set("Content-Type", "application/octet-stream")
	httpReq.Header.Set(payloads.V2BinaryHeader, strconv.Itoa(n))
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	hl, err := strconv.Atoi(resp.Header.Get(payloads.V2BinaryHeader))
	if resp.StatusCode != 200 || err != nil || hl > len(raw) {
		t.Fatalf("%d %q: %q", resp.StatusCode, resp.Header.Get(payloads.V2BinaryHeader), raw)
	}
	if want := `"outputs":[{"name":"y","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]}`; !strings.HasSuffix(string(raw[:hl]), want) {
		t.Fatalf("header %s", raw[:hl])
	}
	tensor := raw[hl:]
	if len(tensor) != 8 || math.Float32frombits(binary.LittleEndian.Uint32(tensor)) != 10 || math.Float32frombits(binary.LittleEndian.Uint32(tensor[4:])) != 1 {
		t.Fatalf("tensor % x", tensor)
	}
	// A binary body cut short is a 400 naming the input.
	httpReq, _ = http.NewRequest("POST", s.V2InferURL(), bytes.NewReader(body[:len(body)-2]))
	httpReq.Header.Set(payloads.V2BinaryHeader, strconv.Itoa(n))
	resp, err = http.DefaultClient.Do(httpReq)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(raw), `input \"x\"`) {
		t.Fatalf("short body: %d %s", resp.StatusCode, raw)
	}
}

// V2 calls take the same service time, stalls and simulated failures as
// TF Serving's.
func TestV2SharesLatencyAndFailures(t *testing.T) {
	s := start(t, Config{Latency: Latency{Fixed: 30 * time.Millisecond, ErrorRate: 1, ErrorStatus: 429}})
	began := time.Now()
	code, doc, body := call(t, "POST", s.V2InferURL(), `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]}]}`)
	if code != 429 || doc["error"] != "simulated failure" {
		t.Fatalf("%d %s", code, body)
	}
	if took := time.Since(began); took < 30*time.Millisecond {
		t.Fatalf("answered after %v, the service time is 30ms", took)
	}
	if s.Predicts() != 1 {
		t.Fatalf("%d calls counted", s.Predicts())
	}
}
