package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/sim"
)

const v2Body = `{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [[1, 2, 3, 4], [5, 6, 7, 8]]}]}`

// The same data drives a V2 target, JSON or binary, native V2 or TF
// Serving bodies, on both engines: the simulator checks every request
// against its V2 metadata, so a request converted wrong fails.
func TestV2RESTRunsTFServingAndV2BodiesJSONAndBinary(t *testing.T) {
	srv := startSim(t, sim.Config{})
	for _, engine := range restEngines() {
		for _, binary := range []bool{false, true} {
			for _, data := range []string{body, `{"inputs": {"x": [[1, 2, 3, 4]]}}`, v2Body} {
				res, err := Run(context.Background(), Config{
					URL: srv.V2InferURL(), DataPath: writeFile(t, "data.json", data), RESTEngine: engine, V2Binary: binary,
					Plan: load.Plan{Concurrency: 2, Requests: 20}, Timeout: 5 * time.Second,
				})
				if err != nil {
					t.Fatalf("%s binary=%v %s: %v", engine, binary, data, err)
				}
				if res.Requests != 20 || len(res.Errors) != 0 {
					t.Fatalf("%s binary=%v %s: %d requests, errors %v %v", engine, binary, data, res.Requests, res.Errors, res.ErrorSamples)
				}
				if want := map[bool]string{false: "v2", true: "v2-binary"}[binary]; res.Protocol != want {
					t.Fatalf("%s binary=%v: protocol %q, want %q", engine, binary, res.Protocol, want)
				}
			}
		}
	}
}

func TestV2RESTReportsTheServersErrorText(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{ErrorRate: 0.5, ErrorStatus: 500}})
	res, err := Run(context.Background(), Config{
		URL: srv.V2InferURL(), DataPath: writeFile(t, "data.json", v2Body),
		Plan: load.Plan{Concurrency: 1, Requests: 40}, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.ErrorSamples["http_500"]; got != "HTTP 500: simulated failure" {
		t.Fatalf("samples %v", res.ErrorSamples)
	}
}

// A payload that does not fit the model's metadata stops the run before
// any load, naming the file and the input.
func TestV2RESTRefusesPayloadsThatDoNotFitTheMetadata(t *testing.T) {
	srv := startSim(t, sim.Config{Signature: sim.Signature{Inputs: []sim.TensorSpec{{Name: "ids", DType: "DT_INT32", Shape: []int64{-1, 2}}, {Name: "f", DType: "DT_DOUBLE", Shape: []int64{-1}}}}})
	cases := []struct{ data, want string }{
		{`{"instances": [{"ids": [1, 2.5], "f": 1}]}`, `data.json: model "test_model": input "ids": line 1: 2.5 is not an integer that fits in INT32`},
		{`{"instances": [{"ids": [1, 2, 3], "f": 1}]}`, `data.json: model "test_model": input "ids": dimension 1 is 3, the model wants 2`},
		{`{"inputs": {"x": [[1, 2]]}}`, `data.json: model "test_model": input "x" is not in the model's metadata (inputs: f, ids)`},
		{`{"inputs": [{"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}]}`, `data.json: model "test_model": input "ids" is INT64, the model wants INT32`},
		{`{"inputs": {"ids": [[1, 2]], "f": [NaN]}}`, `data.json: model "test_model": input "f": element 0 is NaN, which V2 JSON cannot carry (the binary tensor extension can); bench.Config.V2Binary sends it in the binary tensor extension`},
	}
	for _, c := range cases {
		_, err := Run(context.Background(), Config{
			URL: srv.V2InferURL(), DataPath: writeFile(t, "data.json", c.data),
			Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
		})
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.data, err, c.want)
		}
	}
	if srv.Predicts() != 0 {
		t.Fatalf("%d predict calls reached the server", srv.Predicts())
	}
}

func TestV2RESTPreflightAsksReadinessAndMetadata(t *testing.T) {
	var asked []string
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		switch r.URL.Path {
		case "/v2/health/ready":
			w.WriteHeader(200)
		default:
			w.WriteHeader(400)
			w.Write([]byte(`{"error": "Model m is not ready: still loading"}`))
		}
	}))
	defer notReady.Close()
	_, err := Run(context.Background(), Config{
		URL: notReady.URL + "/v2/models/m/versions/3/infer", DataPath: writeFile(t, "data.json", v2Body),
		Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
	})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), `model "m" is not ready (GET /v2/models/m/versions/3/ready answered 400: Model m is not ready: still loading)`) {
		t.Fatalf("got %v", err)
	}
	if strings.Join(asked, " ") != "/v2/health/ready /v2/models/m/versions/3/ready" {
		t.Fatalf("asked %v", asked)
	}
}

func TestTFServingTargetRefusesV2BodiesAndV2Binary(t *testing.T) {
	srv := startSim(t, sim.Config{})
	_, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", v2Body),
		Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
	})
	var pe *payloads.Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "data.json: a V2 (Open Inference Protocol) infer body") {
		t.Fatalf("got %v", err)
	}
	_, err = Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), V2Binary: true,
		Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "bench.Config.V2Binary needs a V2 target") {
		t.Fatalf("got %v", err)
	}
	_, err = Run(context.Background(), Config{
		GRPC: GRPCTarget{Addr: srv.GRPCAddr(), Model: srv.Model()}, DataPath: writeFile(t, "data.json", v2Body),
		Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
	})
	if !errors.As(err, &pe) {
		t.Fatalf("gRPC: got %v", err)
	}
}

func TestV2RESTPreflightSaysTheServersErrorText(t *testing.T) {
	srv := startSim(t, sim.Config{Authorization: "Bearer s3cret"})
	_, err := Run(context.Background(), Config{
		URL: srv.V2InferURL(), DataPath: writeFile(t, "data.json", v2Body),
		Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
	})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "answered 401 to ") || !strings.HasSuffix(err.Error(), "data.json: missing or wrong Authorization header") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), `{"error"`) {
		t.Fatalf("the JSON of the answer, not its text: %v", err)
	}
}
