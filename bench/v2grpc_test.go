package bench

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/sim"
	"google.golang.org/grpc"
)

func v2Config(srv *sim.Server, data string, plan load.Plan) Config {
	cfg := grpcConfig(srv, data, plan)
	cfg.GRPC.Protocol = ProtocolV2
	return cfg
}

func TestV2GRPCLoadSendsWhatTheServerCounts(t *testing.T) {
	srv := startSim(t, sim.Config{Signature: mixedSignature, Latency: sim.Latency{Fixed: time.Millisecond}})
	for _, c := range []struct {
		name, body string
		opts       GRPCTarget
		plan       load.Plan
	}{
		{"typed contents, open loop", mixedRows, GRPCTarget{}, load.Plan{Rate: 300, Requests: 300, MaxInflight: 100}},
		{"raw contents, closed loop", mixedColumns, GRPCTarget{TensorContent: true, Connections: 3}, load.Plan{Concurrency: 8, Requests: 300}},
		{"version", mixedRows, GRPCTarget{Version: 1}, load.Plan{Concurrency: 2, Requests: 50}},
	} {
		before := srv.Predicts()
		cfg := v2Config(srv, writeFile(t, "data.json", c.body), c.plan)
		cfg.GRPC.Connections, cfg.GRPC.TensorContent, cfg.GRPC.Version = c.opts.Connections, c.opts.TensorContent, c.opts.Version
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if want := map[bool]string{false: "v2", true: "v2-raw"}[c.opts.TensorContent]; res.Protocol != want {
			t.Fatalf("%s: protocol %q, want %q", c.name, res.Protocol, want)
		}
		if res.Transport != "grpc" || res.Requests != c.plan.Requests || len(res.Errors) != 0 || res.Latency.Count != c.plan.Requests || !strings.HasSuffix(res.Target, "(V2)") {
			t.Fatalf("%s: transport %s, target %q, %d requests, errors %v", c.name, res.Transport, res.Target, res.Requests, res.Errors)
		}
		// The load, and the preflight's one call.
		if got := srv.Predicts() - before; got != c.plan.Requests+1 {
			t.Fatalf("%s: the sim answered %d ModelInfer calls, want %d", c.name, got, c.plan.Requests+1)
		}
	}
}

func TestV2GRPCPayloadsThatDoNotFitStopTheRunNamingFileAndInput(t *testing.T) {
	half := sim.Signature{Inputs: []sim.TensorSpec{{Name: "h", DType: "DT_HALF", Shape: []int64{-1}}}}
	srv := startSim(t, sim.Config{Signature: half})
	cases := []struct {
		body string
		raw  bool
		want string
	}{
		// The conversion's error, with the payload's name.
		{`{"inputs": {"z": [1]}}`, false, `data.json: model "test_model": input "z" is not in the model`},
		// ToModelInferRequest's: FP16 has no typed field; the conversion's range check, with the line.
		{`{"inputs": {"h": [1]}}`, false, `data.json: model "test_model": input "h": FP16 has no typed contents field in the V2 protocol`},
		{`{"inputs": {"h": [1e6]}}`, true, `data.json: model "test_model": input "h": line 1: 1e6 does not fit in FP16`},
	}
	for _, c := range cases {
		cfg := v2Config(srv, writeFile(t, "data.json", c.body), load.Plan{Concurrency: 1, Requests: 1})
		cfg.GRPC.TensorContent = c.raw
		_, err := Run(context.Background(), cfg)
		var in *InputError
		if !errors.As(err, &in) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "payloads: ") {
			t.Errorf("%s:\n got %v\nwant an input error with %q", c.body, err, c.want)
		}
	}
	// FP16 in raw_input_contents is what the model takes.
	cfg := v2Config(srv, writeFile(t, "data.json", `{"inputs": {"h": [1, 0.5]}}`), load.Plan{Concurrency: 1, Requests: 5})
	cfg.GRPC.TensorContent = true
	if res, err := Run(context.Background(), cfg); err != nil || len(res.Errors) != 0 {
		t.Fatalf("FP16 raw: %v", err)
	}
	if srv.Predicts() != 6 {
		t.Fatalf("the sim answered %d calls, want 6 (none for the payloads that do not fit)", srv.Predicts())
	}

}

func TestV2GRPCTargetFailures(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "data.json", body)

	// A gRPC server without the V2 service (TF Serving's, say).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bare := grpc.NewServer()
	go bare.Serve(ln)
	t.Cleanup(bare.Stop)

	v2 := func(g GRPCTarget) GRPCTarget { g.Protocol = ProtocolV2; return g }
	cases := []struct {
		target GRPCTarget
		want   string
		input  bool
	}{
		{v2(GRPCTarget{Addr: srv.GRPCAddr(), Model: "nope"}), `ModelReady for model "nope": NotFound: Request for unknown model`, false},
		{v2(GRPCTarget{Addr: srv.GRPCAddr(), Model: "test_model", Version: 3}), `ModelReady for model "test_model" version 3: NotFound`, false},
		{v2(GRPCTarget{Addr: ln.Addr().String(), Model: "test_model"}), "does not serve the V2 GRPCInferenceService", false},
		{GRPCTarget{Addr: ln.Addr().String(), Model: "test_model"}, "does not serve TF Serving's PredictionService", false},
		{v2(GRPCTarget{Addr: srv.GRPCAddr(), Model: "test_model", Label: "stable"}), "the V2 protocol (bench.Config.GRPC.Protocol v2) has no version labels", true},
		{GRPCTarget{Addr: srv.GRPCAddr(), Model: "test_model", Protocol: "v3"}, "bench.Config.GRPC.Protocol v3: want tf", true},
	}
	for _, c := range cases {
		_, err := Run(context.Background(), Config{GRPC: c.target, DataPath: data, Plan: load.Plan{Concurrency: 1, Requests: 1}, Timeout: 2 * time.Second})
		var te *TargetError
		var in *InputError
		ok := errors.As(err, &te)
		if c.input {
			ok = errors.As(err, &in)
		}
		if !ok || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.target, err, c.want)
		}
	}
	if srv.Predicts() != 0 {
		t.Fatalf("failed targets got %d calls", srv.Predicts())
	}
}

func TestV2GRPCErrorsAreClassifiedByStatusCode(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{ErrorRate: 0.25, ErrorStatus: 503}})
	res, err := Run(context.Background(), v2Config(srv, writeFile(t, "data.json", body), load.Plan{Concurrency: 4, Requests: 800}))
	if err != nil {
		t.Fatal(err)
	}
	n := res.Errors["grpc_UNAVAILABLE"]
	if n < 120 || n > 280 || len(res.Errors) != 1 || !strings.Contains(res.ErrorSamples["grpc_UNAVAILABLE"], "simulated failure") {
		t.Fatalf("errors %v samples %v", res.Errors, res.ErrorSamples)
	}
}

func TestV2GRPCPreflightNamesTheV2ServiceForAnAnswerThatIsNotOne(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := v2Config(srv, writeFile(t, "data.json", body), load.Plan{Concurrency: 1, Requests: 1})
	set := mustLoad(t, cfg.DataPath)
	calls, err := prepareV2Calls(context.Background(), cfg, set, invokeOn(t, srv.GRPCAddr()))
	if err != nil {
		t.Fatal(err)
	}
	conns, err := load.DialGRPC(srv.GRPCAddr(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer load.CloseConns(conns)
	// What a PredictionService would answer, as the check sees it.
	notV2 := func([]byte) error { return load.ModelInferResponseCheck()(nil) }
	tr, err := load.NewGRPC(load.GRPCConfig{Conns: conns, Method: calls.method, Requests: calls.requests, CheckResponse: notV2, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = preflightGRPC(tr, set, "target", calls)
	if err == nil || !strings.Contains(err.Error(), "not a V2 ModelInfer response (is bench.Config.GRPC.Addr the V2 GRPCInferenceService port?)") {
		t.Fatalf("got %v", err)
	}
}

func mustLoad(t *testing.T, path string) *payloads.Set {
	t.Helper()
	set, err := payloads.Load(path, payloads.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func invokeOn(t *testing.T, addr string) invokeFunc {
	t.Helper()
	conns, err := load.DialGRPC(addr, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { load.CloseConns(conns) })
	return conns[0].Invoke
}
