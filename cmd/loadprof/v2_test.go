package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/sim"
)

func TestV2RESTRunWithBinaryExtension(t *testing.T) {
	srv := startSim(t, sim.Config{})
	out := filepath.Join(t.TempDir(), "result.json")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.V2InferURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--concurrency", "2", "--requests", "50", "--v2-binary", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "50 requests") {
		t.Fatalf("summary:\n%s", stdout)
	}
	raw, _ := os.ReadFile(out)
	var res struct {
		Requests int64          `json:"requests"`
		Config   map[string]any `json:"config"`
	}
	json.Unmarshal(raw, &res)
	if res.Requests != 50 || res.Config["v2-binary"] != true {
		t.Fatalf("result: %d requests, config %v", res.Requests, res.Config)
	}
}

func TestV2BadInputNamesFlagsAndFiles(t *testing.T) {
	srv := startSim(t, sim.Config{})
	good := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	wide := writeFile(t, "wide.json", `{"instances": [[1, 2, 3]]}`)
	v2 := writeFile(t, "v2.json", `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}`)
	overflow := writeFile(t, "overflow.json", `{"inputs": [{"name": "x", "shape": [4611686018427387904, 4], "datatype": "FP32", "data": []}]}`)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--url", srv.PredictURL(), "--data", good, "--rate", "10", "--v2-binary"}, "--v2-binary needs a V2 target: --url http://HOST:PORT/v2/models/NAME/infer"},
		{[]string{"run", "--url", srv.V2InferURL(), "--data", wide, "--rate", "10"}, `wide.json: model "test_model": input "x": dimension 1 is 3, the model wants 4`},
		{[]string{"run", "--url", srv.PredictURL(), "--data", v2, "--rate", "10"}, "v2.json: a V2 (Open Inference Protocol) infer body"},
		{[]string{"run", "--url", srv.V2InferURL(), "--data", good, "--rate", "10", "--tensor-content"}, "--tensor-content: not used with --url, whose path names the model and version"},
		{[]string{"run", "--url", srv.PredictURL(), "--data", good, "--rate", "10", "--model", "m", "--model-version", "2", "--signature", "s"}, "--model, --model-version, --signature: not used with --url, whose path names the model and version (/v1/models/NAME[/versions/V]:predict, /v2/models/NAME[/versions/V]/infer); they are for --grpc"},
		{[]string{"run", "--url", srv.V2InferURL(), "--data", good, "--rate", "10", "--model", "m"}, "--model: not used with --url"},
		{[]string{"run", "--grpc", srv.GRPCAddr(), "--protocol", "v2", "--model", "test_model", "--data", good, "--rate", "10", "--v2-binary"}, "--v2-binary: not used with --grpc"},
		{[]string{"run", "--grpc", srv.GRPCAddr(), "--protocol", "v2", "--model", "test_model", "--data", good, "--rate", "10", "--signature", "serving_default"}, "--signature: the V2 protocol (--protocol v2) has no signatures; leave it out"},
		{[]string{"run", "--url", srv.V2InferURL() + "/", "--data", good, "--rate", "10"}, "--url " + srv.V2InferURL() + "/: /v2/models/test_model/infer/ is not a V2 infer path (it does not end in /infer): a V2 infer URL is http://HOST:PORT[/PREFIX]/v2/models/NAME[/versions/VERSION]/infer"},
		{[]string{"run", "--url", srv.V2InferURL(), "--data", overflow, "--rate", "10"}, `overflow.json: line 1: input "x": shape [4611686018427387904, 4] holds more elements than an int64 counts`},
		{[]string{"run", "--grpc", srv.GRPCAddr(), "--protocol", "v2", "--model", "test_model", "--data", overflow, "--rate", "10"}, `overflow.json: line 1: input "x": shape [4611686018427387904, 4] holds more elements than an int64 counts`},
	}
	for _, c := range cases {
		code, _, stderr := loadprof(t, c.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("loadprof %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if srv.Predicts() != 0 {
		t.Fatalf("bad input still sent %d requests", srv.Predicts())
	}
}

func TestSimPrintsItsV2InferURL(t *testing.T) {
	cmd := exec.Command(binary, "sim", "--rest", "127.0.0.1:0", "--grpc", "")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	s := bufio.NewScanner(stdout)
	for s.Scan() {
		if url, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "V2 REST infer: "); ok {
			url = strings.TrimSuffix(url, " (Open Inference Protocol)")
			code, _, stderr := loadprof(t, "run", "--url", url, "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`), "--requests", "5", "--concurrency", "1")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			return
		}
	}
	t.Fatal("no V2 REST infer line")
}

func TestSimHelpNamesItsV2Service(t *testing.T) {
	code, stdout, stderr := loadprof(t, "sim", "--help")
	help := stdout + stderr
	for _, want := range []string{"KServe V2", "/v2/models/NAME/infer", "inference.GRPCInferenceService"} {
		if code != 0 || !strings.Contains(help, want) {
			t.Errorf("exit %d, no %q in\n%s", code, want, help)
		}
	}
}
