package conformance

// The Open Inference Protocol (KServe V2) against real peers: Seldon's
// MLServer and KServe's ModelServer serving models the tests define
// (mlserver_v2.py, kserve_v2.py), and tritonclient's encoder of the binary
// tensor extension (triton_binary.py). MLServer and tritonclient live in
// their own virtualenv (scripts/pyenv-v2.sh, LOADPROF_PYTHON_V2); KServe
// in the main one (LOADPROF_PYTHON).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/servermetrics"
)

func needV2(t *testing.T) string {
	t.Helper()
	py := os.Getenv("LOADPROF_PYTHON_V2")
	if py == "" {
		t.Skip("LOADPROF_PYTHON_V2 is not set (scripts/test.sh sets it from scripts/pyenv-v2.sh)")
	}
	return py
}

// peerPorts are the ports a peer script prints on its first line.
type peerPorts struct{ REST, GRPC, Metrics int }

// startPeer runs a Python peer script of this directory and returns the
// REST port it prints on its first line. The peer ends when its stdin
// closes, which the test's cleanup does.
func startPeer(t *testing.T, interpreter, script string, args ...string) int {
	t.Helper()
	return startPeerPorts(t, interpreter, script, args...).REST
}

// startPeerPorts is startPeer with every port the peer printed.
func startPeerPorts(t *testing.T, interpreter, script string, args ...string) peerPorts {
	t.Helper()
	cmd := exec.Command(interpreter, append([]string{script}, args...)...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	var ports peerPorts
	select {
	case l := <-line:
		if json.Unmarshal([]byte(l), &ports) != nil || ports.REST == 0 {
			t.Fatalf("%s did not start (first line %q); stderr:\n%s", script, l, stderr.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("%s did not start within 3 minutes", script)
	}
	return ports
}

// lockedBuffer is a peer's stderr, written by the process's copier while
// a failing test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// readCount reads the number of infer calls a peer wrote to path.
func readCount(t *testing.T, path string) int64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The scorer model of both peers: per row the sum of x and ids, the byte
// length of text, and 1 for a true flag.
const scorerRows = `{"instances": [
  {"x": [1, 2, 3, 4], "ids": [5, 6], "text": "abc", "flag": true},
  {"x": [0.5, -1.5, 2.25, 0], "ids": [-7, 1000000000000], "text": {"b64": "w6k="}, "flag": false}
]}`

var scorerWant = []float64{25, float64(float32(1e12 - 7 + 1.25 + 2))}

const scorerV2 = `{"id": "from-data-json", "inputs": [
  {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [[1, 2, 3, 4], [0.5, -1.5, 2.25, 0]]},
  {"name": "ids", "shape": [2, 2], "datatype": "INT64", "data": [5, 6, -7, 1000000000000]},
  {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["abc", "é"]},
  {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [true, false]}
]}`

// v2Metadata reads a model's V2 metadata as loadprof does.
func v2Metadata(t *testing.T, base string) *payloads.V2ModelMetadata {
	t.Helper()
	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Inputs []struct {
			Name, Datatype string
			Shape          []int64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	meta := &payloads.V2ModelMetadata{}
	for _, in := range doc.Inputs {
		meta.Inputs = append(meta.Inputs, payloads.V2TensorMetadata{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape})
	}
	return meta
}

// v2Infer converts a TF Serving or V2 body for the model as loadprof does,
// posts it (in the binary extension when binaryExt), and returns output y.
func v2Infer(t *testing.T, base, body string, binaryExt bool) []float64 {
	t.Helper()
	meta := v2Metadata(t, base)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(body), 0o644)
	set, err := payloads.Load(filepath.Join(dir, "b.json"), payloads.Options{})
	if err != nil {
		t.Fatal(err)
	}
	req := set.Payloads[0].V2
	if req == nil {
		if req, err = set.Payloads[0].Request.ToV2(meta); err != nil {
			t.Fatal(err)
		}
	}
	var wire []byte
	httpReq, _ := http.NewRequest("POST", base+"/infer", nil)
	if binaryExt {
		req.Outputs = []payloads.V2Output{{Name: "y"}}
		var n int
		wire, n, err = req.RenderBinary()
		httpReq.Header.Set(payloads.V2BinaryHeader, strconv.Itoa(n))
		httpReq.Header.Set("Content-Type", "application/octet-stream")
	} else {
		wire, err = req.RenderJSON()
		httpReq.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		t.Fatal(err)
	}
	httpReq.Body = io.NopCloser(bytes.NewReader(wire))
	httpReq.ContentLength = int64(len(wire))
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", base, resp.StatusCode, raw)
	}
	header := raw
	if h := resp.Header.Get(payloads.V2BinaryHeader); h != "" {
		n, _ := strconv.Atoi(h)
		header = raw[:n]
	}
	var doc struct {
		Outputs []struct {
			Name       string
			Data       []float64
			Parameters map[string]any
		}
	}
	if err := json.Unmarshal(header, &doc); err != nil || len(doc.Outputs) != 1 {
		t.Fatalf("%v: %s", err, raw)
	}
	if doc.Outputs[0].Data != nil {
		return doc.Outputs[0].Data
	}
	tensor := raw[len(header):]
	out := make([]float64, len(tensor)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(tensor[4*i:])))
	}
	return out
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if float32(a[i]) != float32(b[i]) {
			return false
		}
	}
	return true
}

// runV2 drives a V2 REST run of n requests and checks it had no error.
func runV2(t *testing.T, url, body string, binaryExt bool, n int64) {
	t.Helper()
	res, err := bench.Run(context.Background(), bench.Config{
		URL: url, DataPath: writeFile(t, "data.json", body), V2Binary: binaryExt,
		Plan: load.Plan{Concurrency: 4, Requests: n}, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("%s binary=%v: %v", url, binaryExt, err)
	}
	if res.Requests != n || len(res.Errors) != 0 {
		t.Fatalf("%s binary=%v: %d requests, errors %v %v", url, binaryExt, res.Requests, res.Errors, res.ErrorSamples)
	}
}

// TestMLServerV2RESTServesLoadprofsRequests runs loadprof's V2 REST load
// against MLServer, from a TF Serving body and a native V2 body: the
// server counts every request the run sent (and the preflight's one), and
// answers the converted bodies as the model's function says.
func TestMLServerV2RESTServesLoadprofsRequests(t *testing.T) {
	py := needV2(t)
	count := filepath.Join(t.TempDir(), "count")
	port := startPeer(t, py, "mlserver_v2.py", "--count", count)
	base := fmt.Sprintf("http://127.0.0.1:%d/v2/models/scorer", port)
	for _, body := range []string{scorerRows, scorerV2} {
		if got := v2Infer(t, base, body, false); !sameFloats(got, scorerWant) {
			t.Fatalf("MLServer answered %v, want %v", got, scorerWant)
		}
	}
	before := readCount(t, count)
	runV2(t, base+"/infer", scorerRows, false, 150)
	runV2(t, base+"/infer", scorerV2, false, 150)
	// Each run's preflight sends its first payload once.
	if got := readCount(t, count) - before; got != 2*(150+1) {
		t.Fatalf("MLServer counted %d infer calls, loadprof sent %d", got, 2*(150+1))
	}
	// A body that does not fit MLServer's metadata stops the run.
	_, err := bench.Run(context.Background(), bench.Config{
		URL: base + "/infer", DataPath: writeFile(t, "data.json", `{"instances": [{"x": [1, 2, 3], "ids": [1, 2], "text": "a", "flag": true}]}`),
		Plan: load.Plan{Concurrency: 1, Requests: 1}, Timeout: 10 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), `data.json: model "scorer": input "x": dimension 1 is 3, the model wants 4`) {
		t.Fatalf("got %v", err)
	}
}

// TestKServeV2RESTAgreesWithV1AndTakesTheBinaryExtension runs loadprof's
// V2 REST load, JSON and binary, against KServe's ModelServer, counts the
// calls there, and checks that the V1 (TF Serving) route, V2 JSON and V2
// binary give the same outputs for the same data.json; FP16, which only
// the binary extension carries in KServe, included.
func TestKServeV2RESTAgreesWithV1AndTakesTheBinaryExtension(t *testing.T) {
	need(t)
	counts := t.TempDir()
	port := startPeer(t, python, "kserve_v2.py", "--count-dir", counts)
	base := fmt.Sprintf("http://127.0.0.1:%d/v2/models/scorer", port)

	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/models/scorer:predict", port), "application/json", strings.NewReader(scorerRows))
	if err != nil {
		t.Fatal(err)
	}
	var v1 struct{ Predictions []float64 }
	json.NewDecoder(resp.Body).Decode(&v1)
	resp.Body.Close()
	if !sameFloats(v1.Predictions, scorerWant) {
		t.Fatalf("V1 answered %v, want %v", v1.Predictions, scorerWant)
	}
	for _, body := range []string{scorerRows, scorerV2} {
		for _, binaryExt := range []bool{false, true} {
			if got := v2Infer(t, base, body, binaryExt); !sameFloats(got, v1.Predictions) {
				t.Fatalf("V2 (binary %v) answered %v, V1 %v", binaryExt, got, v1.Predictions)
			}
		}
	}
	half := fmt.Sprintf("http://127.0.0.1:%d/v2/models/half", port)
	if got := v2Infer(t, half, `{"instances": [[1, 2, 3, 0.5], [65504, 0, 0, 0]]}`, true); !sameFloats(got, []float64{6.5, 65504}) {
		t.Fatalf("FP16 answered %v", got)
	}

	before := readCount(t, filepath.Join(counts, "scorer"))
	runV2(t, base+"/infer", scorerRows, false, 100)
	runV2(t, base+"/infer", scorerRows, true, 100)
	runV2(t, base+"/infer", scorerV2, true, 100)
	if got := readCount(t, filepath.Join(counts, "scorer")) - before; got != 3*(100+1) {
		t.Fatalf("KServe counted %d infer calls, loadprof sent %d", got, 3*(100+1))
	}
	runV2(t, half+"/infer", `{"instances": [[1, 2, 3, 4]]}`, true, 20)
}

// TestBinaryExtensionMatchesTritonclientByteForByte renders requests with
// FP32, INT64, BYTES and BOOL tensors (each alone and all together) with
// loadprof and with tritonclient's encoder: the bodies and the header
// lengths are the same bytes.
func TestBinaryExtensionMatchesTritonclientByteForByte(t *testing.T) {
	py := needV2(t)
	type tensor struct {
		Name     string  `json:"name"`
		Datatype string  `json:"datatype"`
		Shape    []int64 `json:"shape"`
		Data     []any   `json:"data"`
	}
	type request struct {
		ID      string   `json:"id,omitempty"`
		Inputs  []tensor `json:"inputs"`
		Outputs []string `json:"outputs"`
	}
	fp32 := tensor{"x", "FP32", []int64{2, 3}, []any{1.5, -2, 0.1, 3.4e38, -1e-45, 0}}
	int64s := tensor{"ids", "INT64", []int64{3}, []any{json.Number("-9223372036854775808"), json.Number("9007199254740993"), 0}}
	bytesT := tensor{"text", "BYTES", []int64{1, 3}, []any{"abc", "", "é, ünïcode ✓"}}
	bools := tensor{"flag", "BOOL", []int64{4}, []any{true, false, false, true}}
	requests := []request{
		{Inputs: []tensor{fp32}, Outputs: []string{"y"}},
		{Inputs: []tensor{int64s}, Outputs: []string{"y"}},
		{Inputs: []tensor{bytesT}, Outputs: []string{"y"}},
		{Inputs: []tensor{bools}, Outputs: []string{"y"}},
		{ID: "all-4", Inputs: []tensor{fp32, int64s, bytesT, bools}, Outputs: []string{"y", "z"}},
		// No outputs named: every output is asked for in binary.
		{Inputs: []tensor{fp32}, Outputs: []string{}},
	}
	spec, _ := json.Marshal(requests)
	cmd := exec.Command(py, "triton_binary.py")
	cmd.Stdin = bytes.NewReader(spec)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("triton_binary.py: %v\n%s", err, stderr.String())
	}
	var theirs []struct {
		HeaderLength int    `json:"header_length"`
		Body         string `json:"body"`
	}
	if err := json.Unmarshal(out, &theirs); err != nil || len(theirs) != len(requests) {
		t.Fatalf("%v: %s", err, out)
	}
	for i, r := range requests {
		// loadprof reads the same request as a native V2 body.
		var outputs []map[string]string
		for _, name := range r.Outputs {
			outputs = append(outputs, map[string]string{"name": name})
		}
		body := map[string]any{"inputs": r.Inputs}
		if r.ID != "" {
			body["id"] = r.ID
		}
		if len(outputs) > 0 {
			body["outputs"] = outputs
		}
		doc, _ := json.Marshal(body)
		req, err := payloads.ParseV2Body(doc)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		ours, n, err := req.RenderBinary()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := base64.StdEncoding.DecodeString(theirs[i].Body)
		if n != theirs[i].HeaderLength || !bytes.Equal(ours, want) {
			t.Errorf("request %d: loadprof's header %d bytes, tritonclient's %d\nloadprof:    %q\ntritonclient: %q", i, n, theirs[i].HeaderLength, ours, want)
		}
	}
}

// TestMLServerMetricsCountTheRequestsSent runs loadprof's V2 REST load
// against MLServer with its metrics on a port of their own. Scraped with
// no load under way, before and after a run, MLServer's families are
// parsed and count exactly the requests loadprof sent. Scraped by the run
// itself (--metrics), the server block is MLServer's and counts the
// steady phase's requests but for those that ended between a phase's edge
// and the scrape at it (at most the requests in flight, at each edge).
func TestMLServerMetricsCountTheRequestsSent(t *testing.T) {
	py := needV2(t)
	ports := startPeerPorts(t, py, "mlserver_v2.py", "--count", filepath.Join(t.TempDir(), "count"), "--metrics")
	if ports.Metrics == 0 {
		t.Fatal("mlserver_v2.py --metrics printed no metrics port")
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports.Metrics)
	scrape := func() *servermetrics.Snapshot {
		t.Helper()
		s, err := servermetrics.Scrape(context.Background(), &http.Client{Timeout: 30 * time.Second}, metricsURL, servermetrics.Filter{Model: "scorer"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cfg := bench.Config{
		URL:      fmt.Sprintf("http://127.0.0.1:%d/v2/models/scorer/infer", ports.REST),
		DataPath: writeFile(t, "data.json", scorerRows),
		Plan:     load.Plan{Concurrency: 4, WarmupRequests: 20, Requests: 300},
		Timeout:  10 * time.Second,
	}

	before := scrape()
	res, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := servermetrics.Figures("run", servermetrics.Accumulate([]*servermetrics.Snapshot{before, scrape()}))
	if w.Server != "mlserver" || w.Requests == nil || w.Latency == nil {
		t.Fatalf("no MLServer request figures in %+v", w)
	}
	// The steady requests, the warm-up's and the preflight's one.
	if sent := res.Requests + 20 + 1; int64(*w.Requests) != sent {
		t.Fatalf("MLServer counted %v infer calls, loadprof sent %d", *w.Requests, sent)
	}

	cfg.Metrics = &bench.MetricsConfig{URLs: []string{metricsURL}, Interval: 200 * time.Millisecond}
	res, err = bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Server
	if s == nil || s.Requests == nil || s.LatencyMs == nil || s.StartLagMs == nil || s.EndLagMs == nil {
		t.Fatalf("no server figures from MLServer's metrics: %+v", s)
	}
	if s.Server != "mlserver" || s.Model != "scorer" || s.Window != "steady" {
		t.Errorf("server block: server %q, model %q, window %q; want mlserver, scorer, steady", s.Server, s.Model, s.Window)
	}
	// What the summary makes of the two counts: equal, or apart by what
	// the edges explain; never "fewer" or "more".
	note := strings.Join(report.ServerLines(res), "\n")
	if !strings.Contains(note, "(steady): the same") && !strings.Contains(note, "requests in flight at the phase's edges") {
		t.Errorf("MLServer counted %v requests over the steady phase, loadprof %d; the summary says:\n%s", *s.Requests, res.Requests, note)
	}
	if s.LatencyMs.Mean <= 0 || s.LatencyMs.Mean > res.Latency.Mean {
		t.Errorf("MLServer's mean %.3f ms, the client's %.3f ms: the server's time is inside the client's", s.LatencyMs.Mean, res.Latency.Mean)
	}
	t.Logf("MLServer: %v of %d steady requests (edge scrapes %.1f and %.1f ms late), server mean %.3f ms, client mean %.3f ms",
		*s.Requests, res.Requests, *s.StartLagMs, *s.EndLagMs, s.LatencyMs.Mean, res.Latency.Mean)
}
