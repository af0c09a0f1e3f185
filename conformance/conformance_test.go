// Package conformance runs loadprof against real components that no one
// here wrote: TensorFlow's profiler server, a PredictionService built on
// tensorflow-serving-api's official stubs running a real SavedModel,
// KServe's ModelServer speaking TF Serving's v1 REST protocol, xprof's
// trace conversion, and TensorFlow's own profiler client. The Python side
// lives in a virtualenv that scripts/pyenv.sh creates; scripts/test.sh
// passes its interpreter in LOADPROF_PYTHON.
package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	python string
	ports  struct{ GRPC, Profiler, REST int }
)

func TestMain(m *testing.M) {
	python = os.Getenv("LOADPROF_PYTHON")
	if python == "" {
		fmt.Println("conformance: LOADPROF_PYTHON is not set (scripts/test.sh sets it); skipping the real-peer suite")
		os.Exit(m.Run())
	}
	stop, err := startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// startServer starts conformance/server.py and reads its ports.
func startServer() (func(), error) {
	work, err := os.MkdirTemp("", "loadprof-conformance")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(python, "server.py", "--workdir", work, "--rest")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(work)
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		if !ok || json.Unmarshal([]byte(l), &ports) != nil || ports.GRPC == 0 || ports.REST == 0 {
			stop()
			return nil, fmt.Errorf("server.py did not start (first line %q)", l)
		}
	case <-time.After(3 * time.Minute):
		stop()
		return nil, fmt.Errorf("server.py did not start within 3 minutes")
	}
	return stop, nil
}

func need(t *testing.T) {
	if python == "" {
		t.Skip("LOADPROF_PYTHON is not set")
	}
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

func writeFile(t *testing.T, name, content string) string {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// KServe's JSON decoder rejects NaN (TF Serving accepts it), so the REST
// bodies stay finite; gRPC also gets one with NaN.
const denseRows = `{"instances": [[1.0, 2.0, 3.0, 4.0], [0.5, -1.5, 2.5, 0.0]]}`
const denseRowsNaN = `{"instances": [[1.0, 2.0, 3.0, 4.0], [NaN, 1, 1, 1]]}`
const denseColumns = `{"inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}`
const textRows = `{"instances": [{"text": "This is a request for profiling purposes", "count": 2}, {"text": {"b64": "aGk="}, "count": 3}]}`

func TestGRPCLoadAgainstRealPredictionService(t *testing.T) {
	need(t)
	for _, c := range []struct{ model, body string }{
		{"dense", denseRows}, {"dense", denseRowsNaN}, {"dense", denseColumns}, {"text", textRows},
	} {
		res, err := bench.Run(context.Background(), bench.Config{
			GRPC:     bench.GRPCTarget{Addr: addr(ports.GRPC), Model: c.model},
			DataPath: writeFile(t, "data.json", c.body),
			Plan:     load.Plan{Concurrency: 4, Requests: 200}, Timeout: 10 * time.Second,
		})
		if err != nil {
			t.Fatalf("%s %s: %v", c.model, c.body, err)
		}
		if res.Requests != 200 || len(res.Errors) != 0 {
			t.Fatalf("%s: %d requests, errors %v %v", c.model, res.Requests, res.Errors, res.ErrorSamples)
		}
	}
}

func TestRealSignatureRejectsAMismatchedPayload(t *testing.T) {
	need(t)
	_, err := bench.Run(context.Background(), bench.Config{
		GRPC:     bench.GRPCTarget{Addr: addr(ports.GRPC), Model: "dense"},
		DataPath: writeFile(t, "data.json", `{"instances": [[1, 2, 3]]}`),
		Plan:     load.Plan{Concurrency: 1, Requests: 1},
	})
	if err == nil || !strings.Contains(err.Error(), `input "x": dimension 1 is 3, the signature wants 4`) {
		t.Fatalf("got %v", err)
	}
}

// restPredict posts body to KServe and returns the first output per row.
func restPredict(t *testing.T, model, body string) []float64 {
	resp, err := http.Post(fmt.Sprintf("http://%s/v1/models/%s:predict", addr(ports.REST), model), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("REST %d: %s", resp.StatusCode, raw)
	}
	// Outputs may hold NaN, which encoding/json rejects: read them as text.
	raw = bytes.ReplaceAll(raw, []byte("NaN"), []byte(`"NaN"`))
	var doc struct{ Predictions []any }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	var out []float64
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case float64:
			out = append(out, x)
		case string:
			out = append(out, math.NaN())
		}
	}
	walk(doc.Predictions)
	return out
}

// grpcPredict converts body the way loadprof does (signature from the
// server's GetModelMetadata) and returns the output values.
func grpcPredict(t *testing.T, model, body string) []float64 {
	cc, err := grpc.NewClient(addr(ports.GRPC), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := tfproto.NewPredictionServiceClient(cc)
	ctx := context.Background()
	meta, err := client.GetModelMetadata(ctx, &tfproto.GetModelMetadataRequest{ModelSpec: &tfproto.ModelSpec{Name: model}, MetadataField: []string{"signature_def"}})
	if err != nil {
		t.Fatal(err)
	}
	var sigs tfproto.SignatureDefMap
	if err := meta.Metadata["signature_def"].UnmarshalTo(&sigs); err != nil {
		t.Fatal(err)
	}
	req, err := payloads.ParseBody([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := req.ToTensorProtos(sigs.SignatureDef["serving_default"], payloads.ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Predict(ctx, &tfproto.PredictRequest{ModelSpec: &tfproto.ModelSpec{Name: model}, Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range resp.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	// tf.make_tensor_proto answers in tensor_content; other servers use
	// float_val: read both.
	out := resp.Outputs[names[0]]
	var vals []float64
	for _, v := range out.FloatVal {
		vals = append(vals, float64(v))
	}
	for i := 0; i+4 <= len(out.TensorContent); i += 4 {
		vals = append(vals, float64(math.Float32frombits(binary.LittleEndian.Uint32(out.TensorContent[i:]))))
	}
	return vals
}

func TestGRPCOutputsMatchRESTOutputs(t *testing.T) {
	need(t)
	for _, c := range []struct{ model, body string }{{"dense", denseRows}, {"text", textRows}} {
		rest, grpcOut := restPredict(t, c.model, c.body), grpcPredict(t, c.model, c.body)
		if len(rest) == 0 || len(rest) != len(grpcOut) {
			t.Fatalf("%s: REST %v, gRPC %v", c.model, rest, grpcOut)
		}
		for i := range rest {
			same := math.Abs(rest[i]-grpcOut[i]) <= 1e-5*math.Max(1, math.Abs(rest[i])) || (math.IsNaN(rest[i]) && math.IsNaN(grpcOut[i]))
			if !same {
				t.Fatalf("%s: output %d: REST %v, gRPC %v", c.model, i, rest[i], grpcOut[i])
			}
		}
	}
}

type xprofReport struct {
	Tools       []string           `json:"tools"`
	TraceEvents int                `json:"trace_events"`
	TraceNames  []string           `json:"trace_names"`
	OpTypes     map[string]float64 `json:"op_types"`
}

func xprofCheck(t *testing.T, files ...string) xprofReport {
	cmd := exec.Command(python, append([]string{"xprof_check.py"}, files...)...)
	cmd.Stderr = io.Discard
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xprof_check.py: %v", err)
	}
	var r xprofReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("xprof_check.py: %v: %s", err, out)
	}
	return r
}

// profiledRESTRun runs 2 s of REST load at 50 requests a second against
// the real model server with a 1.5 s window from TensorFlow's profiler,
// and fails the test unless the trace was captured and written here.
func profiledRESTRun(t *testing.T) *report.Result {
	t.Helper()
	logdir := t.TempDir()
	res, err := bench.Run(context.Background(), bench.Config{
		URL: fmt.Sprintf("http://%s/v1/models/dense:predict", addr(ports.REST)), DataPath: writeFile(t, "data.json", denseRows),
		Plan:    load.Plan{Rate: 50, WarmupRequests: 20, Duration: 2 * time.Second, MaxInflight: 100},
		Timeout: 10 * time.Second,
		Profile: &bench.ProfileConfig{Addr: addr(ports.Profiler), Delay: 200 * time.Millisecond,
			Options: profile.Options{Duration: 1500 * time.Millisecond, LogDir: logdir}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile
	if len(res.Errors) != 0 || p == nil || p.Error != "" || p.Saved != profile.SavedLocal || p.EmptyTrace || res.Window == nil || p.ClientTrace == "" {
		t.Fatalf("errors %v, profile %+v", res.Errors, p)
	}
	return res
}

func TestRESTLoadWithARealProfilerWindowConvertsInXprof(t *testing.T) {
	need(t)
	p := profiledRESTRun(t).Profile
	// loadprof's own summary of the real trace names the model's ops.
	space, _, err := profile.ReadXSpace(p.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{}
	for _, op := range profile.Summarize(space).Ops {
		ours[op.Name], ours[op.Type] = true, true
	}
	if !ours["MatMul"] {
		t.Errorf("loadprof's summary does not name MatMul")
	}
	// xprof converts it as TensorBoard would, and its TF stats name the
	// same op types as loadprof's summary.
	x := xprofCheck(t, p.Files[0])
	if x.TraceEvents == 0 || !contains(x.Tools, "framework_op_stats") {
		t.Fatalf("xprof: %+v", x)
	}
	for typ, self := range x.OpTypes {
		if typ == "IDLE" || self <= 0 {
			continue
		}
		if !ours[typ] {
			t.Errorf("xprof's TF stats name %s, loadprof's summary does not", typ)
		}
	}
	if x.OpTypes["MatMul"] <= 0 {
		t.Fatalf("xprof op types %v", x.OpTypes)
	}
	// The client plane converts too.
	if c := xprofCheck(t, p.ClientTrace); c.TraceEvents == 0 {
		t.Fatalf("client trace: %+v", c)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func TestCaptureLayoutMatchesTensorFlowsClient(t *testing.T) {
	need(t)
	// Load during both captures, so that neither trace is empty.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go bench.Run(ctx, bench.Config{
		GRPC:     bench.GRPCTarget{Addr: addr(ports.GRPC), Model: "dense"},
		DataPath: writeFile(t, "data.json", denseRows),
		Plan:     load.Plan{Rate: 50, Duration: time.Minute, MaxInflight: 50},
	})
	tfLogdir, ourLogdir := t.TempDir(), t.TempDir()
	cmd := exec.Command(python, "tf_trace.py", addr(ports.Profiler), tfLogdir, "1000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tf_trace.py: %v\n%s", err, out)
	}
	time.Sleep(1100 * time.Millisecond)
	cc, err := grpc.NewClient(addr(ports.Profiler), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := profile.Capture(context.Background(), cc, addr(ports.Profiler), profile.Options{Duration: time.Second, LogDir: ourLogdir}); err != nil {
		t.Fatal(err)
	}
	run := regexp.MustCompile(`/\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d/`)
	layout := func(dir string) []string {
		var files []string
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() && strings.HasSuffix(p, ".xplane.pb") {
				rel, _ := filepath.Rel(dir, p)
				files = append(files, run.ReplaceAllString("/"+rel, "/RUN/"))
			}
			return nil
		})
		return files
	}
	theirs, ours := layout(tfLogdir), layout(ourLogdir)
	if len(theirs) == 0 || strings.Join(theirs, ",") != strings.Join(ours, ",") {
		t.Fatalf("TensorFlow's client wrote %v, loadprof wrote %v", theirs, ours)
	}
}
