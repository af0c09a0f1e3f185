package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/sim"
)

// fakeV2 is a V2 REST server on loopback whose readiness, metadata and
// server metadata answers are a test's to choose, and whose infer route
// answers with infer. It keeps what it was asked.
type fakeV2 struct {
	*httptest.Server
	mu     sync.Mutex
	asked  []string // method and path
	hosts  []string // the Host of each request
	infers int
}

func startFakeV2(t *testing.T, routes map[string]string, infer http.HandlerFunc) *fakeV2 {
	t.Helper()
	f := &fakeV2{}
	base := map[string]string{
		"/v2/health/ready":   `{"ready": true}`,
		"/v2/models/m/ready": `{"name": "m", "ready": true}`,
		"/v2/models/m":       `{"name": "m", "versions": ["1"], "platform": "fake", "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}], "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]}`,
		"/v2":                `{"name": "fake", "version": "1", "extensions": ["binary_tensor_data"]}`,
	}
	for k, v := range routes {
		base[k] = v
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.asked = append(f.asked, r.Method+" "+r.URL.Path)
		f.hosts = append(f.hosts, r.Host)
		f.mu.Unlock()
		if r.Method == http.MethodPost && r.URL.Path == "/v2/models/m/infer" {
			f.mu.Lock()
			f.infers++
			f.mu.Unlock()
			infer(w, r)
			return
		}
		answer, ok := base[r.URL.Path]
		if !ok || answer == "" {
			w.WriteHeader(404)
			w.Write([]byte(`{"error": "not found"}`))
			return
		}
		if code, text, found := strings.Cut(answer, " "); found && code == "400" {
			w.WriteHeader(400)
			answer = text
		}
		w.Write([]byte(answer))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeV2) inferCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.infers
}

func answering(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

// The preflight's answer must be a V2 infer response: a 200 with anything
// else (a TF Serving answer, a proxy's page) stops the run before load.
func TestV2RESTPreflightChecksTheAnswerIsAV2InferResponse(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"predictions": [10, 26]}`, `no "outputs" list`},
		{`{"outputs": []}`, `an empty "outputs" list: no output tensor`},
		{`<html>hello</html>`, `not JSON with "outputs"`},
		{`{"outputs": [{"name": "y", "datatype": "float32", "shape": [2], "data": [10, 26]}]}`, `output "y" has datatype "float32", which is not a V2 datatype`},
	} {
		f := startFakeV2(t, nil, answering(200, c.body))
		_, err := Run(context.Background(), Config{
			URL: f.URL + "/v2/models/m/infer", DataPath: writeFile(t, "data.json", v2Body),
			Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
		})
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "with 200 and something that is not a V2 infer response: "+c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v", c.body, err)
		}
		if f.inferCount() != 1 {
			t.Errorf("%s: %d infer calls, want the preflight's one", c.body, f.inferCount())
		}
	}
	// A V2 answer, JSON or binary, passes.
	f := startFakeV2(t, nil, func(w http.ResponseWriter, r *http.Request) {
		hdr := `{"outputs":[{"name":"y","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}`
		w.Header().Set("Inference-Header-Content-Length", strconv.Itoa(len(hdr)))
		w.Write(append([]byte(hdr), 0, 0, 128, 63))
	})
	if _, err := Run(context.Background(), Config{
		URL: f.URL + "/v2/models/m/infer", DataPath: writeFile(t, "data.json", v2Body), V2Binary: true,
		Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
	}); err != nil {
		t.Fatalf("binary answer: %v", err)
	}
}

// A --v2-binary run whose preflight gets a server error from a server
// whose GET /v2 does not list binary_tensor_data stops before the load,
// saying so; with the extension listed, the errors are the load's.
func TestV2BinaryPreflightNamesAMissingExtension(t *testing.T) {
	f := startFakeV2(t, map[string]string{"/v2": `{"name": "fake", "version": "1", "extensions": ["model_repository"]}`}, answering(500, `{"error": "failed to parse the request JSON buffer"}`))
	_, err := Run(context.Background(), Config{
		URL: f.URL + "/v2/models/m/infer", DataPath: writeFile(t, "data.json", v2Body), V2Binary: true,
		Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
	})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), `answered 500 to a request in the binary tensor extension, and its GET /v2 extensions ["model_repository"] do not include binary_tensor_data`) {
		t.Fatalf("got %v", err)
	}
	if f.inferCount() != 1 {
		t.Fatalf("%d infer calls", f.inferCount())
	}
	with := startFakeV2(t, nil, answering(500, `{"error": "oops"}`))
	res, err := Run(context.Background(), Config{
		URL: with.URL + "/v2/models/m/infer", DataPath: writeFile(t, "data.json", v2Body), V2Binary: true,
		Plan: load.Plan{Concurrency: 1, Requests: 5}, Timeout: 5 * time.Second,
	})
	// The load ran: all five failed, which the run reports.
	if res == nil || res.Errors["http_500"] != 5 || strings.Contains(errText(err), "binary_tensor_data") {
		t.Fatalf("extension listed: %v", err)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A V2 target on the wrong port or server gets a one-line hint naming the
// route to use, as the TF Serving paths do.
func TestV2WrongProtocolHints(t *testing.T) {
	srv := startSim(t, sim.Config{})
	run := func(cfg Config) error {
		cfg.DataPath = writeFile(t, "data.json", body)
		cfg.Plan = load.Plan{Concurrency: 1, Requests: 5}
		cfg.Timeout = 5 * time.Second
		_, err := Run(context.Background(), cfg)
		return err
	}
	v1Only := httptest.NewServer(http.NotFoundHandler())
	defer v1Only.Close()
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"V2 URL on the gRPC port", Config{URL: "http://" + srv.GRPCAddr() + "/v2/models/test_model/infer"},
			"this port speaks HTTP/2, as gRPC does (Triton's and KServe's gRPC port is 8001 or 8081, REST 8000 or 8080): for V2 gRPC use bench.Config.GRPC.Addr HOST:PORT bench.Config.GRPC.Protocol v2 bench.Config.GRPC.Model NAME"},
		{"V2 URL on a V1-only server", Config{URL: v1Only.URL + "/v2/models/m/infer"},
			"the server does not serve the V2 REST protocol (GET /v2/health/ready answered 404); a TF Serving server's route is " + v1Only.URL + "/v1/models/m:predict"},
		{"V2 gRPC on the REST port", Config{GRPC: GRPCTarget{Addr: srv.RESTAddr(), Model: "test_model", Protocol: ProtocolV2}},
			"for V2 REST use bench.Config.URL http://HOST:PORT/v2/models/NAME/infer"},
	} {
		err := run(c.cfg)
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "Unsolicited") {
			t.Errorf("%s: got %v\nwant %s", c.name, err, c.want)
		}
	}
}

// -H "Host: x" reaches the server on the preflight's GETs as on the infer
// calls (a virtual-host gateway routes by it).
func TestV2HostHeaderReachesEveryRoute(t *testing.T) {
	f := startFakeV2(t, nil, answering(200, `{"outputs": [{"name": "y", "datatype": "FP32", "shape": [2], "data": [10, 26]}]}`))
	for _, engine := range restEngines() {
		f.mu.Lock()
		f.asked, f.hosts = nil, nil
		f.mu.Unlock()
		_, err := Run(context.Background(), Config{
			URL: f.URL + "/v2/models/m/infer", DataPath: writeFile(t, "data.json", v2Body), RESTEngine: engine,
			Headers: []load.Header{{Key: "Host", Value: "m.models.example"}},
			Plan:    load.Plan{Concurrency: 1, Requests: 3}, Timeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		for i, h := range f.hosts {
			if h != "m.models.example" {
				t.Errorf("%s: %s had Host %q", engine, f.asked[i], h)
			}
		}
		f.mu.Unlock()
	}
}

// A gateway's prefix before /v2/ (Seldon Core's /seldon/NS/MODEL) is kept
// on every V2 route the run asks.
func TestV2RESTUnderAGatewayPrefix(t *testing.T) {
	f := startFakeV2(t, nil, answering(200, `{"outputs": [{"name": "y", "datatype": "FP32", "shape": [2], "data": [10, 26]}]}`))
	inner := f.Config.Handler
	var seen []string
	var mu sync.Mutex
	f.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		http.StripPrefix("/seldon/ns/m", inner).ServeHTTP(w, r)
	})
	res, err := Run(context.Background(), Config{
		URL: f.URL + "/seldon/ns/m/v2/models/m/infer", DataPath: writeFile(t, "data.json", v2Body),
		Plan: load.Plan{Concurrency: 1, Requests: 3}, Timeout: 5 * time.Second,
	})
	if err != nil || res.Requests != 3 || len(res.Errors) != 0 {
		t.Fatalf("%v %+v", err, res)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen[:3], " "); got != "/seldon/ns/m/v2/health/ready /seldon/ns/m/v2/models/m/ready /seldon/ns/m/v2/models/m" {
		t.Fatalf("asked %s", got)
	}
}

func TestMalformedV2URLIsAnInputError(t *testing.T) {
	for _, path := range []string{"/v2/models/x/infer/", "/v2/models/x:predict", "/v2/models//infer", "/v2/models/x/versions//infer"} {
		_, err := Run(context.Background(), Config{
			URL: "http://127.0.0.1:9" + path, DataPath: writeFile(t, "data.json", body),
			Plan: load.Plan{Concurrency: 1, Requests: 3}, Timeout: 5 * time.Second,
		})
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), "bench.Config.URL http://127.0.0.1:9"+path+": "+path+" is not a V2 infer path") {
			t.Errorf("%s: got %v", path, err)
		}
	}
}

// {"ready": false} with a 200 is not ready, as gRPC's ready field is not.
func TestV2RESTReadyFalseIsNotReady(t *testing.T) {
	for path, want := range map[string]string{
		"/v2/health/ready":   `the server is not ready (GET /v2/health/ready answered 200 with "ready": false)`,
		"/v2/models/m/ready": `model "m" is not ready (GET /v2/models/m/ready answered 200 with "ready": false)`,
	} {
		f := startFakeV2(t, map[string]string{path: `{"ready": false}`}, answering(200, `{"outputs": []}`))
		_, err := Run(context.Background(), Config{
			URL: f.URL + "/v2/models/m/infer", DataPath: writeFile(t, "data.json", v2Body),
			Plan: load.Plan{Concurrency: 1, Requests: 3}, Timeout: 5 * time.Second,
		})
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), want) || f.inferCount() != 0 {
			t.Errorf("%s: got %v (%d infer calls)", path, err, f.inferCount())
		}
	}
}
