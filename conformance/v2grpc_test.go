package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/v2proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// mlServer is a running MLServer serving v2_sum_model.py as "sum" (FP32,
// INT64, BYTES and BOOL inputs) and as "half" (one FP16 input).
type mlServer struct {
	rest, grpc, metrics string // HOST:PORT
}

var v2Models = map[string]string{
	"sum": `{"name": "sum", "implementation": "v2_sum_model.SumModel",
		"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}, {"name": "ids", "datatype": "INT64", "shape": [-1]},
			{"name": "text", "datatype": "BYTES", "shape": [-1]}, {"name": "mask", "datatype": "BOOL", "shape": [-1]}],
		"outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}, {"name": "calls", "datatype": "INT64", "shape": [1]}]}`,
	"half": `{"name": "half", "implementation": "v2_sum_model.SumModel",
		"inputs": [{"name": "h", "datatype": "FP16", "shape": [-1, 2]}],
		"outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}, {"name": "calls", "datatype": "INT64", "shape": [1]}]}`,
}

// startMLServer runs `mlserver start` on free loopback ports until the
// test ends, and waits (at most three minutes) for both models.
func startMLServer(t *testing.T, python string) *mlServer {
	dir := t.TempDir()
	src, err := os.ReadFile("v2_sum_model.py")
	if err != nil {
		t.Fatal(err)
	}
	for name, settings := range v2Models {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for file, content := range map[string][]byte{"model-settings.json": []byte(settings), "v2_sum_model.py": src} {
			if err := os.WriteFile(filepath.Join(dir, name, file), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	port := func() int {
		_, p, _ := net.SplitHostPort(testkit.ClosedAddr(t))
		n, _ := strconv.Atoi(p)
		return n
	}
	ml := &mlServer{}
	httpPort, grpcPort, metricsPort := port(), port(), port()
	ml.rest, ml.grpc, ml.metrics = fmt.Sprintf("127.0.0.1:%d", httpPort), fmt.Sprintf("127.0.0.1:%d", grpcPort), fmt.Sprintf("127.0.0.1:%d", metricsPort)
	settings := fmt.Sprintf(`{"host": "127.0.0.1", "http_port": %d, "grpc_port": %d, "metrics_port": %d, "parallel_workers": 0}`, httpPort, grpcPort, metricsPort)
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(filepath.Join(filepath.Dir(python), "mlserver"), "start", dir)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	ready := func(path string) bool {
		resp, err := client.Get("http://" + ml.rest + path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !(ready("/v2/health/ready") && ready("/v2/models/sum/ready") && ready("/v2/models/half/ready")) {
		select {
		case <-exited:
			t.Fatalf("mlserver exited before it was ready:\n%s", log.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mlserver was not ready within 3 minutes:\n%s", log.String())
		}
	}
	return ml
}

// restInfer posts a V2 JSON body to MLServer and returns its outputs by
// name, as numbers.
func (ml *mlServer) restInfer(t *testing.T, model string, body any) map[string][]float64 {
	t.Helper()
	data, _ := json.Marshal(body)
	resp, err := http.Post("http://"+ml.rest+"/v2/models/"+model+"/infer", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Outputs []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("REST %s: %d %v %s", model, resp.StatusCode, err, doc.Error)
	}
	out := map[string][]float64{}
	for _, o := range doc.Outputs {
		out[o.Name] = o.Data
	}
	return out
}

// calls is how many inference calls MLServer's "sum" has answered, read
// with one REST call (which counts itself).
func (ml *mlServer) calls(t *testing.T) int64 {
	t.Helper()
	return int64(ml.restInfer(t, "sum", v2JSON(sumRequest()))["calls"][0])
}

// sumRequest has two examples; each sums, over x, ids, the text lengths
// and the mask, to 1.5+2+3+10+3+1 = 20.5 and 4+5.25+6+20+1+0 = 36.25.
func sumRequest() *payloads.V2Request {
	return &payloads.V2Request{ID: "q1", Inputs: []payloads.V2Input{
		{Name: "x", Datatype: "FP32", Shape: []int64{2, 3}, Floats: []float64{1.5, 2, 3, 4, 5.25, 6}},
		{Name: "ids", Datatype: "INT64", Shape: []int64{2}, Ints: []int64{10, 20}},
		{Name: "text", Datatype: "BYTES", Shape: []int64{2}, Bytes: [][]byte{[]byte("abc"), []byte("d")}},
		{Name: "mask", Datatype: "BOOL", Shape: []int64{2}, Bools: []bool{true, false}},
	}}
}

var sumWant = []float64{20.5, 36.25}

// halfRequest is FP16, which only raw_input_contents carries over gRPC.
func halfRequest() *payloads.V2Request {
	return &payloads.V2Request{Inputs: []payloads.V2Input{
		{Name: "h", Datatype: "FP16", Shape: []int64{2, 2}, Floats: []float64{0.5, 1.25, -3, 65504}},
	}}
}

var halfWant = []float64{1.75, 65501}

// v2JSON is r as a V2 REST body, written here by hand (not by loadprof)
// so that it is an independent reference.
func v2JSON(r *payloads.V2Request) map[string]any {
	var inputs []map[string]any
	for _, in := range r.Inputs {
		var data any
		switch {
		case in.Floats != nil:
			data = in.Floats
		case in.Ints != nil:
			data = in.Ints
		case in.Bools != nil:
			data = in.Bools
		default:
			var s []string
			for _, b := range in.Bytes {
				s = append(s, string(b))
			}
			data = s
		}
		inputs = append(inputs, map[string]any{"name": in.Name, "datatype": in.Datatype, "shape": in.Shape, "data": data})
	}
	return map[string]any{"id": r.ID, "inputs": inputs}
}

// grpcRequests serializes r as ModelInferRequests for model, as a V2 gRPC
// run does before its load.
func grpcRequest(t *testing.T, r *payloads.V2Request, model string, raw bool) []byte {
	t.Helper()
	req, err := r.ToModelInferRequest(model, "", payloads.V2ProtoOptions{Raw: raw})
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// outputsOf decodes a ModelInferResponse's outputs, typed or raw, as
// numbers by name.
func outputsOf(t *testing.T, msg []byte) map[string][]float64 {
	t.Helper()
	var resp v2proto.ModelInferResponse
	if err := proto.Unmarshal(msg, &resp); err != nil {
		t.Fatal(err)
	}
	// An output tensor has an input tensor's fields: decode it as one.
	as := &v2proto.ModelInferRequest{RawInputContents: resp.RawOutputContents}
	for _, o := range resp.Outputs {
		as.Inputs = append(as.Inputs, &v2proto.ModelInferRequest_InferInputTensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape, Contents: o.Contents})
	}
	decoded, err := payloads.V2InputsFromProto(as)
	if err != nil {
		t.Fatalf("outputs of %v: %v", &resp, err)
	}
	out := map[string][]float64{}
	for _, d := range decoded {
		switch {
		case d.Floats != nil:
			out[d.Name] = d.Floats
		case d.Ints != nil:
			for _, v := range d.Ints {
				out[d.Name] = append(out[d.Name], float64(v))
			}
		}
	}
	return out
}

func sameValues(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestV2GRPCAgainstMLServer runs loadprof's V2 gRPC requests, typed and
// raw, against MLServer (nothing downloaded: the model is v2_sum_model.py):
// the requests the load sends are the calls the model counted, the
// outputs over gRPC are those over MLServer's REST, and loadprof's copy of
// the protocol has MLServer's and Triton's field numbers.
func TestV2GRPCAgainstMLServer(t *testing.T) {
	python := needV2(t)
	ml := startMLServer(t, python)
	cc, err := grpc.NewClient(ml.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := v2proto.NewGRPCInferenceServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("readiness and metadata", func(t *testing.T) {
		if r, err := c.ServerReady(ctx, &v2proto.ServerReadyRequest{}); err != nil || !r.Ready {
			t.Fatalf("ServerReady: %v %v", r, err)
		}
		if r, err := c.ModelReady(ctx, &v2proto.ModelReadyRequest{Name: "sum"}); err != nil || !r.Ready {
			t.Fatalf("ModelReady: %v %v", r, err)
		}
		resp, err := c.ModelMetadata(ctx, &v2proto.ModelMetadataRequest{Name: "sum"})
		if err != nil {
			t.Fatal(err)
		}
		meta := payloads.V2MetadataFromProto(resp)
		want := []payloads.V2TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 3}}, {Name: "ids", Datatype: "INT64", Shape: []int64{-1}},
			{Name: "text", Datatype: "BYTES", Shape: []int64{-1}}, {Name: "mask", Datatype: "BOOL", Shape: []int64{-1}}}
		if meta.Name != "sum" || fmt.Sprint(meta.Inputs) != fmt.Sprint(want) || len(meta.Outputs) != 2 {
			t.Fatalf("metadata %+v", meta)
		}
	})

	t.Run("the load is what the model counted", func(t *testing.T) {
		conns, err := load.DialGRPC(ml.grpc, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer load.CloseConns(conns)
		for _, raw := range []bool{false, true} {
			tr, err := load.NewGRPC(load.GRPCConfig{Conns: conns, Method: load.ModelInferMethod, Requests: [][]byte{grpcRequest(t, sumRequest(), "sum", raw)},
				CheckResponse: load.ModelInferResponseCheck(), Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			before := ml.calls(t)
			rec := load.NewRecorder()
			const n = 300
			if _, err := load.Run(ctx, load.Plan{Concurrency: 4, Requests: n}, tr, load.PickerFunc(func() int { return 0 }), rec); err != nil {
				t.Fatal(err)
			}
			steady := rec.Snapshot(true).Steady
			// The REST call that reads the count counts itself.
			if served := ml.calls(t) - before - 1; steady.Requests != n || len(steady.Errors) != 0 || served != n {
				t.Fatalf("raw %v: loadprof sent %d (errors %v), MLServer's model answered %d", raw, steady.Requests, steady.Errors, served)
			}
		}
	})

	t.Run("gRPC outputs agree with REST", func(t *testing.T) {
		conns, err := load.DialGRPC(ml.grpc, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer load.CloseConns(conns)
		for _, c := range []struct {
			model string
			req   *payloads.V2Request
			want  []float64
			raws  []bool
		}{
			{"sum", sumRequest(), sumWant, []bool{false, true}},
			{"half", halfRequest(), halfWant, []bool{true}}, // FP16 has no typed field
		} {
			rest := ml.restInfer(t, c.model, v2JSON(c.req))["y"]
			if !sameValues(rest, c.want) {
				t.Fatalf("%s over REST: %v, want %v", c.model, rest, c.want)
			}
			for _, raw := range c.raws {
				tr, err := load.NewGRPC(load.GRPCConfig{Conns: conns, Method: load.ModelInferMethod, Requests: [][]byte{grpcRequest(t, c.req, c.model, raw)},
					CheckResponse: load.ModelInferResponseCheck(), Timeout: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				out, msg := tr.Call(0)
				if out.Class != load.OK {
					t.Fatalf("%s, raw %v: %s %v", c.model, raw, out.Key(), out.Err)
				}
				if got := outputsOf(t, msg)["y"]; !sameValues(got, rest) {
					t.Errorf("%s, raw %v: gRPC y %v, REST y %v", c.model, raw, got, rest)
				}
			}
		}
	})

	t.Run("errors are the server's gRPC statuses", func(t *testing.T) {
		conns, err := load.DialGRPC(ml.grpc, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer load.CloseConns(conns)
		// Four elements for a shape of six: loadprof would not build it.
		wrong, err := proto.Marshal(&v2proto.ModelInferRequest{ModelName: "sum", Inputs: []*v2proto.ModelInferRequest_InferInputTensor{
			{Name: "x", Datatype: "FP32", Shape: []int64{2, 3}, Contents: &v2proto.InferTensorContents{Fp32Contents: []float32{1, 2, 3, 4}}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			model string
			req   []byte
		}{{"nope", grpcRequest(t, sumRequest(), "nope", false)}, {"sum", wrong}} {
			tr, err := load.NewGRPC(load.GRPCConfig{Conns: conns, Method: load.ModelInferMethod, Requests: [][]byte{c.req},
				CheckResponse: load.ModelInferResponseCheck(), Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			out, _ := tr.Call(0)
			if out.Class != load.GRPCStatus || codes.Code(out.Code) == codes.OK || codes.Code(out.Code) == codes.Unavailable {
				t.Errorf("model %s: %s %v, want the server's own status", c.model, out.Key(), out.Err)
			}
			t.Logf("model %s: %s (%v)", c.model, out.Key(), out.Err)
		}
	})

	t.Run("a run with --protocol v2", func(t *testing.T) {
		// The product path: readiness, metadata, the conversion of a TF
		// Serving body through it, the load. Each example of x and the
		// other inputs as in sumRequest.
		body := `{"instances": [{"x": [1.5, 2, 3], "ids": 10, "text": "abc", "mask": true}, {"x": [4, 5.25, 6], "ids": 20, "text": "d", "mask": false}]}`
		before := ml.calls(t)
		res, err := bench.Run(ctx, bench.Config{
			GRPC:     bench.GRPCTarget{Addr: ml.grpc, Model: "sum", Protocol: bench.ProtocolV2},
			DataPath: writeFile(t, "data.json", body),
			Plan:     load.Plan{Concurrency: 4, Requests: 200}, Timeout: 10 * time.Second,
			Metrics: &bench.MetricsConfig{URLs: []string{"http://" + ml.metrics + "/metrics"}, Interval: 200 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The load and the preflight's one call.
		if served := ml.calls(t) - before - 1; res.Requests != 200 || len(res.Errors) != 0 || served != 201 {
			t.Fatalf("loadprof sent %d (errors %v), MLServer's model answered %d, want 201", res.Requests, res.Errors, served)
		}
		// MLServer's gRPC server timed the calls: its ModelInfer histogram
		// is the server's latency, over the steady phase's calls but for
		// those in flight at its edges (4 at most at each).
		s := res.Server
		if s == nil || s.Server != "mlserver" || s.LatencyMs == nil || s.LatencyMs.Family != "grpc_server_handling_seconds" {
			t.Fatalf("server block %+v: want MLServer's gRPC handling time as the latency", s)
		}
		// A busy server answers the edge scrapes late: the calls that
		// ended between an edge and its scrape's answer may count on
		// either side, as many as the client completed in those spans.
		edges := 8.0
		if w := s.ServerWindow; w.EndS > w.StartS {
			for _, l := range []*float64{w.StartLagMs, w.EndLagMs} {
				if l != nil {
					edges += float64(res.Requests) / (w.EndS - w.StartS) * *l / 1e3
				}
			}
		}
		if n := s.LatencyMs.Count; float64(n) < 200-edges || float64(n) > 200+edges || s.LatencyMs.Mean <= 0 || s.LatencyMs.Mean > res.LatencyOK.Mean {
			t.Errorf("MLServer timed %v calls at a mean of %.3f ms; loadprof sent 200 at a mean of %.3f ms (edges allow %.0f either way)", n, s.LatencyMs.Mean, res.LatencyOK.Mean, edges)
		}
	})

	t.Run("field numbers are MLServer's and Triton's", func(t *testing.T) {
		for _, peer := range []string{"mlserver", "triton"} {
			out, err := exec.Command(python, "v2_proto_fields.py", peer).Output()
			if err != nil {
				t.Fatalf("v2_proto_fields.py %s: %v", peer, err)
			}
			var theirs map[string][][]any
			if err := json.Unmarshal(out, &theirs); err != nil {
				t.Fatalf("v2_proto_fields.py %s: %v", peer, err)
			}
			compareV2Fields(t, peer, theirs)
		}
	})
}

// compareV2Fields checks every field of every v2proto message against the
// peer's message of the same name: the same number, type and cardinality.
// A field the peer does not have is allowed only for InferParameter's
// double and uint64 choices, which are Triton's additions.
func compareV2Fields(t *testing.T, peer string, theirs map[string][][]any) {
	fd, err := protoregistry.GlobalFiles.FindFileByPath("inference/grpc_predict_v2.proto")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var walk func(protoreflect.MessageDescriptors)
	mds := map[string]protoreflect.MessageDescriptor{}
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			md := ms.Get(i)
			if md.IsMapEntry() {
				continue
			}
			names = append(names, string(md.FullName()))
			mds[string(md.FullName())] = md
			walk(md.Messages())
		}
	}
	walk(fd.Messages())
	sort.Strings(names)
	for _, name := range names {
		md := mds[name]
		fields, ok := theirs[name]
		if !ok {
			t.Errorf("%s has no message %s", peer, name)
			continue
		}
		byName := map[string][]any{}
		for _, f := range fields {
			byName[f[0].(string)] = f
		}
		for i := 0; i < md.Fields().Len(); i++ {
			f := md.Fields().Get(i)
			p, ok := byName[string(f.Name())]
			if !ok {
				if peer == "mlserver" && name == "inference.InferParameter" && (f.Name() == "double_param" || f.Name() == "uint64_param") {
					continue
				}
				t.Errorf("%s: %s's %s has no field %s", name, peer, name, f.Name())
				continue
			}
			got := fmt.Sprintf("%d kind %d card %d", f.Number(), f.Kind(), f.Cardinality())
			want := fmt.Sprintf("%v kind %v card %v", p[1], p[2], p[3])
			if got != want {
				t.Errorf("%s.%s: v2proto %s, %s %s", name, f.Name(), got, peer, want)
			}
		}
	}
	t.Logf("%s: compared %d messages", peer, len(names))
}
