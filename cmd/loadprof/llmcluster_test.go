package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// TestCoordinatedOpenAIRunWithLLMObjective runs a coordinator and two
// worker processes against the simulator's streamed chat route with LLM
// terms in --slo (refused with --workers before): the result has the
// stream figures of every stream the simulator served and the goodput the
// workers counted, and the interval log's steady latencies add up to the
// requests.
func TestCoordinatedOpenAIRunWithLLMObjective(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 4 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 5, KeepStreams: 100000}})
	dir := t.TempDir()
	addr := testkit.ClosedAddr(t)
	out, hlog := filepath.Join(dir, "result.json"), filepath.Join(dir, "result.hlog")
	const slo = "ttft_p99<5s,itl_p99<5s"
	data := writeFile(t, "chat.jsonl", `{"model":"test_model","messages":[{"role":"user","content":"hi there"}],"stream":true,"stream_options":{"include_usage":true}}`+"\n")
	coord := startProc(t, []string{clusterEnv}, "run", "--url", "http://"+srv.RESTAddr()+"/v1/chat/completions", "--data", data,
		"--rate", "40", "--duration", "2s", "--warmup", "0", "--slo", slo, "--workers", "2", "--listen", addr, "--out", out, "--hlog", hlog, "-q")
	workers := []*proc{startProc(t, []string{clusterEnv}, "worker", "--join", addr), startProc(t, []string{clusterEnv}, "worker", "--join", addr)}
	if code := coord.wait(t); code != 0 {
		t.Fatalf("coordinator exit %d\n%s", code, coord.stderr.String())
	}
	for i, w := range workers {
		if code := w.wait(t); code != 0 {
			t.Errorf("worker %d exit %d\n%s", i, code, w.stderr.String())
		}
	}
	res := readResult(t, out)
	if res.TTFT == nil || res.LLMHistograms == nil || len(res.Workers) != 2 {
		t.Fatalf("no stream figures (ttft %v) or workers %d", res.TTFT, len(res.Workers))
	}
	// One preflight call per worker, then the steady streams.
	if served := int64(len(srv.LLMStreams())); served != res.Requests+2 || res.TTFT.Count != res.Requests || res.ITL.Count != 4*res.Requests {
		t.Errorf("the simulator served %d streams; result: %d requests, %d timed, %d gaps", served, res.Requests, res.TTFT.Count, res.ITL.Count)
	}
	if g := res.Goodput; g == nil || g.Requests != res.Requests || g.Share != 1 || g.SLO != slo {
		t.Errorf("goodput %+v of %d requests", res.Goodput, res.Requests)
	}
	raw, err := os.ReadFile(hlog)
	if err != nil {
		t.Fatal(err)
	}
	var steady int64
	for _, l := range strings.Split(string(raw), "\n") {
		if l == "" || l[0] == '#' || l[0] == '"' || strings.HasPrefix(l, "Tag=") {
			continue
		}
		f := strings.Split(l, ",")
		h, err := report.DecodeHistogram(f[len(f)-1])
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		steady += h.TotalCount()
	}
	if steady != res.Requests {
		t.Errorf("the interval log's steady intervals hold %d requests, the result %d", steady, res.Requests)
	}
}

// TestK8sCarriesAnOpenAIRun checks that `loadprof k8s` takes an
// OpenAI-compatible run (it read every payload as a TF Serving body
// before): a directory of .jsonl request bodies goes into the ConfigMap
// and the coordinator gets the run's --slo; a body that is no OpenAI
// request is refused as run would.
func TestK8sCarriesAnOpenAIRun(t *testing.T) {
	dir := t.TempDir()
	chats := filepath.Join(dir, "chats")
	if err := os.Mkdir(chats, 0o700); err != nil {
		t.Fatal(err)
	}
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}` + "\n"
	if err := os.WriteFile(filepath.Join(chats, "a.jsonl"), []byte(body+body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := loadprof(t, "k8s", "--workers", "2", "--image", "reg/loadprof:1", "--", "run",
		"--url", "http://vllm:8000/v1/chat/completions", "--data", chats, "--rate", "10", "--duration", "10s", "--slo", "ttft_p99<500ms,itl_p99<50ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var list struct {
		Items []struct {
			Kind       string            `json:"kind"`
			BinaryData map[string][]byte `json:"binaryData"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Args []string `json:"args"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	var args []string
	var payload []byte
	for _, o := range list.Items {
		switch {
		case o.Kind == "ConfigMap":
			payload = o.BinaryData["a.jsonl"]
		case o.Kind == "Job" && o.Metadata.Name == "loadprof-coordinator":
			args = o.Spec.Template.Spec.Containers[0].Args
		}
	}
	if string(payload) != body+body {
		t.Errorf("ConfigMap a.jsonl = %q", payload)
	}
	joined := strings.Join(args, " ")
	if !strings.Contains(joined, "--slo=ttft_p99<500ms,itl_p99<50ms") || !strings.Contains(joined, "--data /data") {
		t.Errorf("coordinator args %v", args)
	}

	bad := writeFile(t, "bad.json", `{"model":"m","prompt":"x"}`)
	code, _, stderr = loadprof(t, "k8s", "--workers", "2", "--image", "x", "--", "run",
		"--url", "http://vllm:8000/v1/chat/completions", "--data", bad, "--rate", "10")
	if code != exitBadInput || !strings.Contains(stderr, "bad.json") {
		t.Errorf("a completions body for the chat route: exit %d: %s", code, stderr)
	}
}
