package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := StartLoopback(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func call(t *testing.T, method, url, body string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	return resp.StatusCode, doc, string(raw)
}

func TestRESTRoutesLikeTFServing(t *testing.T) {
	s := start(t, Config{Latency: Latency{}})
	base := "http://" + s.RESTAddr() + "/v1/models/test_model"
	cases := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"POST", ":predict", `{"instances": [[1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5]]}`, 200, `{"predictions": [10, 2]}`},
		{"POST", ":predict", `{"inputs": {"x": [[1, 1, 1, 1]]}}`, 200, `{"outputs": [4]}`},
		{"POST", ":predict", `{"instances": [{"x": [1, 1, 1, NaN]}]}`, 200, `{"predictions": [NaN]}`},
		{"POST", "/versions/1:predict", `{"instances": [[1, 2, 3, 4]]}`, 200, "10"},
		{"post", "/LABELS/stable:PREDICT", `{"instances": [[1, 2, 3, 4]]}`, 200, "10"},
		{"POST", "/versions/2:predict", `{"instances": [[1, 2, 3, 4]]}`, 404, "Servable not found"},
		{"POST", "/labels/canary:predict", `{"instances": [[1, 2, 3, 4]]}`, 404, "Unrecognized servable version label"},
		{"POST", "/versions/1/labels/stable:predict", `{"instances": [[1, 2, 3, 4]]}`, 400, "both version and label"},
		{"POST", ":predict", `{"instances": [[1, 2, 3]]}`, 400, "dimension 1 is 3"},
		{"POST", ":predict", `{"instances": [["a", "b", "c", "d"]]}`, 400, "expected numbers for DT_FLOAT, got strings"},
		{"POST", ":predict", `{"instances": [{"y": [1, 2, 3, 4]}]}`, 400, `input \"y\" is not in the signature`},
		{"POST", ":predict", `{"signature_name": "other", "instances": [[1, 2, 3, 4]]}`, 400, "not found in signature def"},
		{"POST", ":predict", `{"instances": [[1, 2], [3]]`, 400, "JSON Parse error"},
		{"POST", ":classify", `{"examples": []}`, 400, "no classify signature"},
		{"GET", "", "", 200, `"state": "AVAILABLE"`},
		{"GET", "/metadata", "", 200, `"signature_def"`},
		{"GET", ":predict", "", 405, "not allowed"},
	}
	for _, c := range cases {
		status, _, raw := call(t, strings.ToUpper(c.method), base+c.path, c.body)
		if status != c.status || !strings.Contains(raw, c.contains) {
			t.Errorf("%s %s %s: got %d %s, want %d with %q", c.method, c.path, c.body, status, raw, c.status, c.contains)
		}
	}
	status, doc, _ := call(t, "POST", "http://"+s.RESTAddr()+"/v1/models/nope:predict", `{"instances": [1]}`)
	if status != 404 || !strings.Contains(doc["error"].(string), "Servable not found for request: Latest(nope)") {
		t.Errorf("unknown model: %d %v", status, doc)
	}
}

func TestMetadataNestsSignaturesLikeTFServing(t *testing.T) {
	s := start(t, Config{Signature: Signature{Name: "serving_default", Inputs: []TensorSpec{{Name: "text", DType: "DT_STRING", Shape: []int64{-1}}}}})
	_, doc, raw := call(t, "GET", "http://"+s.RESTAddr()+"/v1/models/test_model/metadata", "")
	sig, ok := doc["metadata"].(map[string]any)["signature_def"].(map[string]any)["signature_def"].(map[string]any)["serving_default"].(map[string]any)
	if !ok {
		t.Fatalf("metadata: %s", raw)
	}
	in := sig["inputs"].(map[string]any)["text"].(map[string]any)
	if in["dtype"] != "DT_STRING" {
		t.Fatalf("input: %v", in)
	}
	status, _, raw := call(t, "POST", "http://"+s.RESTAddr()+"/v1/models/test_model:predict", `{"instances": ["This is a request for profiling purposes", {"b64": "aGk="}]}`)
	if status != 200 || raw != `{"predictions": [40, 2]}` {
		t.Fatalf("string predict: %d %s", status, raw)
	}
}

func TestStallHoldsCallsUntilItEnds(t *testing.T) {
	s := &Server{cfg: Config{Latency: Latency{Fixed: 10 * time.Millisecond, Stall: 500 * time.Millisecond, StallEvery: time.Second}}, start: time.Unix(0, 0)}
	at := func(ms int) time.Time { return s.start.Add(time.Duration(ms) * time.Millisecond) }
	for _, c := range []struct{ arrive, want int }{
		{100, 410},  // arrives in a stall: waits for its end, then works
		{600, 10},   // between stalls
		{995, 505},  // would finish inside the next stall: finishes at its end
		{1499, 11},  // the stall ends at 1500
		{2000, 510}, // start of a stall
	} {
		if got := s.delay(at(c.arrive)); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("arrival at %d ms: delay %v, want %d ms", c.arrive, got, c.want)
		}
	}
}

func TestParseTensorSpec(t *testing.T) {
	spec, err := ParseTensorSpec("x:float:-1,4")
	if err != nil || spec.DType != "DT_FLOAT" || len(spec.Shape) != 2 || spec.Shape[1] != 4 {
		t.Fatalf("%+v %v", spec, err)
	}
	for _, bad := range []string{"x", "x:complex", "x:float:a", ":float"} {
		if _, err := ParseTensorSpec(bad); err == nil {
			t.Errorf("ParseTensorSpec(%q) accepted", bad)
		}
	}
}

func TestWorkersQueueCallsFIFO(t *testing.T) {
	s := &Server{cfg: Config{Latency: Latency{Fixed: 10 * time.Millisecond, Workers: 2}}, start: time.Unix(0, 0)}
	at := func(ms int) time.Time { return s.start.Add(time.Duration(ms) * time.Millisecond) }
	for i, c := range []struct{ arrive, want int }{
		{0, 10}, {0, 10}, // two workers free
		{0, 20}, {1, 19}, // both busy until 10, then until 20
		{30, 10}, // queue drained
	} {
		if got := s.delay(at(c.arrive)); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("call %d arriving at %d ms: delay %v, want %d ms", i, c.arrive, got, c.want)
		}
	}
}
