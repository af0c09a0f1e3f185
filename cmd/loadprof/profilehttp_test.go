package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

const profileHTTPChat = `{"model":"test_model","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`

// --profile-http alone opens the window on the --url target's HOST:PORT;
// the summary says where the server wrote its trace and result.json's
// profile block has the window's backend, prefix and stop.
func TestRunProfileHTTPOnTarget(t *testing.T) {
	dir := t.TempDir()
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 2 * time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 3, ProfileDir: dir}})
	out := filepath.Join(t.TempDir(), "result.json")
	code, stdout, stderr := loadprof(t, "run", "--url", "http://"+srv.RESTAddr()+"/v1/chat/completions",
		"--data", writeFile(t, "chat.json", profileHTTPChat), "--rate", "40", "--duration", "2s", "--warmup", "0",
		"--profile-http", "--profile-delay", "300ms", "--profile-duration", "800ms", "--profile-required", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Requests int64 `json:"requests"`
		Profile  struct {
			WindowFrom string `json:"window_from"`
			HTTP       struct {
				Backend, URL, Prefix, Trace string
				Started                     time.Time `json:"started"`
				StopMs                      *float64  `json:"stop_ms"`
			} `json:"http"`
		} `json:"profile"`
		Window  *struct{ Requests int64 } `json:"window"`
		Outside *struct{ Requests int64 } `json:"outside"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	h := res.Profile.HTTP
	if h.Backend != "vllm_http" || h.URL != "http://"+srv.RESTAddr() || !strings.HasPrefix(h.Prefix, "loadprof-") || h.StopMs == nil || h.Started.IsZero() {
		t.Fatalf("profile block: %s", raw)
	}
	if res.Window == nil || res.Outside == nil || res.Window.Requests == 0 || res.Window.Requests+res.Outside.Requests != res.Requests {
		t.Errorf("window %+v outside %+v of %d", res.Window, res.Outside, res.Requests)
	}
	want := "the server wrote its trace under its torch_profiler_dir, files " + h.Prefix + "_*.pt.trace.json.gz"
	if !strings.Contains(stdout, want) || !strings.Contains(stdout, "/stop_profile answered in") {
		t.Errorf("summary lacks %q:\n%s", want, stdout)
	}
	if traces := srv.LLMTraces(); len(traces) != 1 {
		t.Errorf("server traces %v", traces)
	}
}

// A server without its profiler: with --profile-required the run fails as
// a failed gRPC window does, with the message saying how to start vLLM.
func TestRunProfileHTTPWithoutProfiler(t *testing.T) {
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: time.Millisecond, TokenDelay: time.Millisecond, OutputTokens: 2}})
	args := []string{"run", "--url", "http://" + srv.RESTAddr() + "/v1/chat/completions",
		"--data", writeFile(t, "chat.json", profileHTTPChat), "--rate", "40", "--duration", "1s", "--warmup", "0",
		"--profile-http=" + srv.RESTAddr(), "--profile-duration", "300ms"}
	code, stdout, stderr := loadprof(t, args...)
	if code != exitOK || !strings.Contains(stderr, "--profiler-config") {
		t.Fatalf("without --profile-required: exit %d, stderr %s\nstdout %s", code, stderr, stdout)
	}
	code, _, stderr = loadprof(t, append(args, "--profile-required")...)
	if code != exitTarget || !strings.Contains(stderr, "the server runs without its profiler") {
		t.Fatalf("with --profile-required: exit %d, want %d: %s", code, exitTarget, stderr)
	}
}

func TestRunProfileHTTPFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "http://127.0.0.1:1/v1/completions", "--profile-http", "--profile", "127.0.0.1:2"}, "give one window backend"},
		{[]string{"--url", "http://127.0.0.1:1/v1/completions", "--profile-http=http://h:1/x"}, "no path"},
		{[]string{"--grpc", "127.0.0.1:1", "--model", "m", "--profile-http"}, "--profile-http=http://HOST:PORT with --grpc"},
	} {
		args := append([]string{"run", "--data", writeFile(t, "chat.json", profileHTTPChat), "--rate", "1", "--duration", "1s"}, c.args...)
		code, _, stderr := loadprof(t, args...)
		if code != exitBadInput || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, exitBadInput, c.want)
		}
	}
}
