package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/sim"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "loadprof-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "loadprof")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The shared helpers, under the names these tests use.
var (
	startSim  = testkit.Sim
	writeFile = testkit.File
)

// loadprof runs the binary and returns its exit code, stdout and stderr.
func loadprof(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return command(t, exec.Command(binary, args...))
}

func TestBadInputExitsTwoWithOneLineNamingTheProblem(t *testing.T) {
	srv := startSim(t, sim.Config{})
	url := srv.PredictURL()
	good := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	wide := writeFile(t, "wide.json", `{"instances": [[1, 2, 3]]}`)
	ragged := writeFile(t, "ragged.json", "{\"instances\": [\n  [1, 2, 3, 4],\n  [1, 2]\n]}")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--data", good, "--rate", "10"}, "give one target, --url (REST) or --grpc"},
		{[]string{"run", "--url", url, "--rate", "10"}, "--data is required"},
		{[]string{"run", "--url", url, "--data", good}, "give --rate (open loop) or --concurrency"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10", "--concurrency", "2"}, "exclude each other"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10:1:5"}, "FROM and TO must be positive numbers with FROM <= TO"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10", "--slo", "p99<5ms"}, "go with a sweep"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10:20:10", "--slo", "p99<5"}, "needs a unit"},
		{[]string{"run", "--url", url, "--data", good, "--concurrency", "2.5"}, "want a positive number of requests"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10", "--warmup", "soon"}, `invalid argument "soon" for "--warmup"`},
		{[]string{"run", "--url", url, "--data", good, "--rate", "ten"}, `--rate "ten": want a positive number`},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10", "-H", "nocolon"}, `-H: header "nocolon"`},
		{[]string{"run", "--url", "ftp://x/y", "--data", good, "--rate", "10"}, "scheme must be http or https"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10", "--rest-engine", "fibers"}, `--rest-engine "fibers": want auto, epoll or goroutines`},
		{[]string{"run", "--url", "https://127.0.0.1:1/v1/models/m:predict", "--data", good, "--rate", "10", "--rest-engine", "epoll"}, "--rest-engine epoll: https://127.0.0.1:1/v1/models/m:predict is https, which only the goroutine engine speaks"},
		{[]string{"run", "--url", url, "--data", ragged, "--rate", "10"}, "ragged.json: line 3: instances is ragged"},
		{[]string{"run", "--url", url, "--data", filepath.Join(t.TempDir(), "nope.json"), "--rate", "10"}, "nope.json: no such file"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10", "--ca", "/nonexistent/ca.pem"}, "--ca /nonexistent/ca.pem"},
		{[]string{"run", "--grpc", srv.GRPCAddr(), "--data", good, "--rate", "10"}, "--grpc needs --model"},
		{[]string{"run", "--grpc", srv.GRPCAddr(), "--model", "test_model", "--data", wide, "--rate", "10"}, `wide.json: input "x": dimension 1 is 3, the signature wants 4`},
		{[]string{"run", "--url", url, "--grpc", srv.GRPCAddr(), "--data", good, "--rate", "10"}, "give one target"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10", "--profile", srv.GRPCAddr(), "--profile-max-bytes", "0"}, "--profile-max-bytes 0: must be between 1 and 2147483647"},
		{[]string{"sim", "--input", "x:complex"}, `unknown type "complex"`},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10:20:10", "--timeout", "300ms", "--slo", "p99<400ms"}, "--slo p99<400ms is not below --timeout 300ms"},
		{[]string{"run", "--url", url, "--data", good, "--rate", "10", "--profile", "http://127.0.0.1:8501"}, "--profile \"http://127.0.0.1:8501\": the ProfilerService speaks gRPC"},
		{[]string{"profile", "--addr", "http://127.0.0.1:8501"}, "--addr \"http://127.0.0.1:8501\": the ProfilerService speaks gRPC"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	}
	for _, c := range cases {
		code, _, stderr := loadprof(t, c.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || !strings.Contains(lines[0], c.want) {
			t.Errorf("loadprof %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
		if c.args[0] == "run" && len(lines) != 1 {
			t.Errorf("loadprof %s: %d lines of error, want one: %q", strings.Join(c.args, " "), len(lines), stderr)
		}
	}
	if srv.Predicts() != 0 {
		t.Fatalf("bad input still sent %d requests", srv.Predicts())
	}
}

func TestUnreachableTargetExitsThree(t *testing.T) {
	addr := testkit.ClosedAddr(t)
	good := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	code, _, stderr := loadprof(t, "run", "--url", "http://"+addr+"/v1/models/m:predict", "--data", good, "--rate", "10", "--duration", "1s")
	if code != 3 || !strings.Contains(stderr, "connection_refused") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestRunWritesResultAndSummary(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	out, hgrm := filepath.Join(dir, "result.json"), filepath.Join(dir, "latency.hgrm")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--concurrency", "2", "--requests", "200", "--warmup", "20", "--out", out, "--hgrm", hgrm, "-H", "Authorization: Bearer hunter2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"closed loop, concurrency 2", "steady", "200 requests", "p99.9", "result written to " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary has no %q:\n%s", want, stdout)
		}
	}
	raw, _ := os.ReadFile(out)
	if strings.Contains(string(raw), "hunter2") || !strings.Contains(string(raw), "Authorization: <redacted>") {
		t.Fatalf("the header is not redacted in result.json")
	}
	var res struct {
		Requests int64          `json:"requests"`
		Config   map[string]any `json:"config"`
	}
	json.Unmarshal(raw, &res)
	if res.Requests != 200 || res.Config["concurrency"] != 2.0 {
		t.Fatalf("result: %+v", res)
	}
	// Typed settings: numbers, durations in seconds, booleans, lists.
	typed := map[string]any{"timeout": 10.0, "grace": 2.0, "max-inflight": 1000.0, "tls": false,
		"warmup": map[string]any{"requests": 20.0}, "signature": "serving_default", "duration": 0.0}
	for k, want := range typed {
		if got := res.Config[k]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("config %q = %#v, want %#v", k, got, want)
		}
	}
	if h, ok := res.Config["header"].([]any); !ok || len(h) != 1 {
		t.Errorf("config header = %#v, want a list", res.Config["header"])
	}
	if _, err := os.Stat(hgrm); err != nil {
		t.Fatal(err)
	}
}

func TestCtrlCWritesPartialResultsAndExits130AndSIGTERM143(t *testing.T) {
	for sig, want := range map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143} {
		t.Run(sig.String(), func(t *testing.T) {
			srv := startSim(t, sim.Config{})
			out := filepath.Join(t.TempDir(), "result.json")
			cmd := exec.Command(binary, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
				"--rate", "200", "--duration", "1m", "--out", out)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for srv.Predicts() < 150 { // the load is under way
				time.Sleep(20 * time.Millisecond)
			}
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second): // --grace is 2 s
				cmd.Process.Kill()
				t.Fatalf("loadprof did not stop within 30s of %v", sig)
			}
			if code := cmd.ProcessState.ExitCode(); code != want {
				t.Fatalf("exit %d after %v, want %d", code, sig, want)
			}
			var res struct {
				Interrupted bool  `json:"interrupted"`
				Requests    int64 `json:"requests"`
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			json.Unmarshal(raw, &res)
			if !res.Interrupted || res.Requests < 100 {
				t.Fatalf("result after %v: %+v", sig, res)
			}
			if !strings.Contains(stdout.String(), "INTERRUPTED: partial results") {
				t.Fatalf("summary:\n%s", stdout.String())
			}
		})
	}
}

func TestDemoRunsAgainstTheEmbeddedSimulator(t *testing.T) {
	code, stdout, stderr := loadprof(t, "demo", "--duration", "1s", "--warmup", "200ms")
	if code != 0 || !strings.Contains(stdout, "a simulator, not TensorFlow Serving") || !strings.Contains(stdout, "200 requests") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestDemoWithoutAPortItNeedsSaysSo(t *testing.T) {
	for _, flag := range []string{"--rest", "--grpc"} {
		code, _, stderr := loadprof(t, "demo", flag, "")
		if code != exitBadInput || !strings.Contains(stderr, "the demo needs both") || strings.Contains(stderr, "panic") {
			t.Errorf("demo %s \"\": exit %d, %s", flag, code, stderr)
		}
	}
}

func TestDemoSendsABodyThatFitsTheSignatureItServes(t *testing.T) {
	// The seed's own model takes strings: the demo sent floats to it and
	// exited 3.
	code, stdout, stderr := loadprof(t, "demo", "--input", "text:string:-1", "--duration", "1s", "--warmup", "200ms")
	if code != 0 || !strings.Contains(stdout, `data.json: {"instances": ["hello", "hello"]}`) || !strings.Contains(stdout, "200 requests      0 errors") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestProfileCommandAndTraceSummary(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	logdir := t.TempDir()
	// Some load for the window to see, from a second run in the background.
	bg := exec.Command(binary, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`), "--rate", "100", "--duration", "2s", "-q")
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	defer bg.Wait()
	// grpc://HOST:PORT, the form TensorFlow's profiler documentation uses.
	code, stdout, stderr := loadprof(t, "profile", "--addr", "grpc://"+srv.GRPCAddr(), "--profile-duration", "1s", "--logdir", logdir)
	if code != 0 || !strings.Contains(stdout, "trace written here: "+logdir) || !strings.Contains(stdout, "serving_default/dense/MatMul") {
		t.Fatalf("profile: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = loadprof(t, "trace", "summary", logdir)
	if code != 0 || !strings.Contains(stdout, "serving_default/dense/MatMul") || !strings.Contains(stdout, "MatMul") {
		t.Fatalf("trace summary: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = loadprof(t, "trace", "summary", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "no .xplane.pb file") {
		t.Fatalf("empty dir: exit %d %s", code, stderr)
	}
	code, _, stderr = loadprof(t, "profile", "--addr", srv.GRPCAddr(), "--profile-duration", "100ms", "--logdir", logdir, "--profile-max-bytes", "10")
	if code != 3 || !strings.Contains(stderr, "the trace is larger than --profile-max-bytes 10 (the server sent ") {
		t.Fatalf("over --profile-max-bytes: exit %d %s", code, stderr)
	}
	closed := testkit.ClosedAddr(t)
	code, _, stderr = loadprof(t, "profile", "--addr", closed, "--profile-duration", "1s", "--logdir", logdir)
	if code != 3 || !strings.Contains(stderr, "unreachable") {
		t.Fatalf("unreachable: exit %d %s", code, stderr)
	}
}

func TestHelpShowsExamples(t *testing.T) {
	code, stdout, _ := loadprof(t, "run", "--help")
	if code != 0 || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "--max-inflight") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
}

func TestRateSweepFromTheCommandLine(t *testing.T) {
	// 250 requests/s of capacity (25 workers, 100 ms each). At 300/s the
	// queue grows by 50 a second: after the 1.8 s step the last requests
	// wait 0.36 s, far over the SLO, on any machine. At 200/s a fifth of
	// the capacity is spare, so a busy machine's stalls drain instead of
	// piling up (at exactly the capacity they never drain); a stall still
	// lands in the step's p99 (302 ms beside two CPU hogs), so what the
	// sweep decided is checked against the p99 each step recorded.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: 100 * time.Millisecond, Workers: 25}})
	out := filepath.Join(t.TempDir(), "sweep.json")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--rate", "100:300:100", "--slo", "p99<300ms", "--warmup", "300ms", "--duration", "1500ms", "--out", out)
	var doc struct {
		Kind       string
		MaxPassing *float64 `json:"max_passing"`
		Steps      []struct {
			Level  float64
			Pass   bool
			Result struct {
				Latency struct{ P99 float64 } `json:"latency_ms"`
			}
		}
	}
	raw, _ := os.ReadFile(out)
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Kind != "sweep" || len(doc.Steps) == 0 {
		t.Fatalf("sweep.json: %+v %v\nexit %d\n%s\n%s", doc, err, code, stdout, stderr)
	}
	// Each verdict is the step's own p99 against the SLO, and the sweep
	// stops at the first step that broke it, which the over-capacity
	// step does if no step before it did.
	broke := -1
	for i, st := range doc.Steps {
		if want := float64(100 * (i + 1)); st.Level != want {
			t.Fatalf("step %d at %g req/s, want %g", i, st.Level, want)
		}
		if st.Pass != (st.Result.Latency.P99 < 300) {
			t.Errorf("step %g: p99 %.1f ms judged pass=%v against p99<300ms", st.Level, st.Result.Latency.P99, st.Pass)
		}
		if !st.Pass && broke < 0 {
			broke = i
		}
	}
	if broke != len(doc.Steps)-1 {
		t.Fatalf("steps %+v: want the sweep to end at its first broken step", doc.Steps)
	}
	wantCode, wantLine := 0, fmt.Sprintf("highest rate meeting the SLO (p99<300ms): %d\n", 100*broke)
	if broke == 0 {
		wantCode, wantLine = 1, "no step met the SLO (p99<300ms)"
	}
	if broke < 2 {
		t.Logf("the %g req/s step broke the SLO with spare capacity (p99 %.1f ms): a busy machine's stall", doc.Steps[broke].Level, doc.Steps[broke].Result.Latency.P99)
	}
	if code != wantCode || !strings.Contains(stdout, wantLine) || !strings.Contains(stdout, "FAIL") {
		t.Fatalf("exit %d, want %d with %q\n%s\n%s", code, wantCode, wantLine, stdout, stderr)
	}
	if (broke == 0) != (doc.MaxPassing == nil) || (broke > 0 && *doc.MaxPassing != float64(100*broke)) {
		t.Errorf("max_passing %v, want the %d req/s step's", doc.MaxPassing, 100*broke)
	}
}

func TestSecretsNeverAppearInResultsReportsOrLogs(t *testing.T) {
	srv := startSim(t, sim.Config{Authorization: "Bearer s3cr3t-t0ken"})
	dir := t.TempDir()
	out, html, hlog := filepath.Join(dir, "result.json"), filepath.Join(dir, "report.html"), filepath.Join(dir, "run.hlog")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--concurrency", "2", "--requests", "50", "-H", "Authorization: Bearer s3cr3t-t0ken", "-H", "X-Api-Key: k3y-value",
		"--out", out, "--html", html, "--hlog", hlog)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	files := []string{stdout, stderr}
	for _, f := range []string{out, html, hlog} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, string(b))
	}
	for i, text := range files {
		if strings.Contains(text, "s3cr3t-t0ken") || strings.Contains(text, "k3y-value") {
			t.Errorf("output %d holds a secret", i)
		}
	}
	// Leftover temporary files would mean a write that was not atomic.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestCredentialsInTheURLNeverAppearInResultsReportsOrLogs(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	out, html := filepath.Join(dir, "result.json"), filepath.Join(dir, "report.html")
	url := strings.Replace(srv.PredictURL(), "http://", "http://alice:pw-s3cr3t@", 1) + "?api_key=k3y-s3cr3t&model=m"
	code, stdout, stderr := loadprof(t, "run", "--url", url, "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--concurrency", "2", "--requests", "20", "--out", out, "--html", html)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	texts := []string{stdout, stderr}
	for _, f := range []string{out, html} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
	}
	for i, text := range texts {
		if strings.Contains(text, "s3cr3t") {
			t.Errorf("output %d holds a credential of the URL", i)
		}
	}
	if !strings.Contains(stdout, "alice:redacted@") || !strings.Contains(stdout, "model=m") {
		t.Fatalf("the target is not shown with its credentials redacted:\n%s", stdout)
	}
}

func TestMaxErrorsFailsARunOverItsErrorBudget(t *testing.T) {
	// Half the calls fail: a 1% budget is broken (exit 1, said on stderr),
	// a count of 1000 is not, and the results are written either way.
	srv := startSim(t, sim.Config{Latency: sim.Latency{ErrorRate: 0.5}})
	data := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	for budget, want := range map[string]int{"1%": 1, "1000": 0} {
		out := filepath.Join(t.TempDir(), "result.json")
		code, _, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", data, "--concurrency", "2", "--requests", "100",
			"--max-errors", budget, "--out", out)
		if code != want {
			t.Fatalf("--max-errors %s: exit %d, want %d: %s", budget, code, want, stderr)
		}
		if want == 1 && !strings.Contains(stderr, "--max-errors: ") {
			t.Fatalf("--max-errors %s: stderr %q", budget, stderr)
		}
		if _, err := os.Stat(out); err != nil {
			t.Fatalf("--max-errors %s: no result written: %v", budget, err)
		}
	}
	if code, _, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", data, "--concurrency", "2", "--requests", "10", "--max-errors", "some"); code != 2 || !strings.Contains(stderr, "--max-errors") {
		t.Fatalf("--max-errors some: exit %d, %q", code, stderr)
	}
}

func TestSweepOutputsSayWhatHappened(t *testing.T) {
	// A server that always takes 20 ms against p99<5ms: no step passes, so
	// the sweep exits 1 (it wrote its results first), --html plots the
	// steps, and the per-run outputs are refused before any load.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: 20 * time.Millisecond}})
	dir := t.TempDir()
	data := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	out, html := filepath.Join(dir, "sweep.json"), filepath.Join(dir, "sweep.html")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", data,
		"--rate", "20:40:20", "--slo", "p99<5ms", "--duration", "500ms", "--out", out, "--html", html)
	if code != 1 || !strings.Contains(stderr, "no step met the SLO (p99<5ms)") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{out, html} {
		if b, err := os.ReadFile(f); err != nil || len(b) == 0 {
			t.Fatalf("%s not written: %v", f, err)
		}
	}
	before := srv.Predicts()
	for _, flag := range []string{"--hgrm", "--hlog"} {
		code, _, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", data, "--rate", "20:40:20", "--duration", "500ms", flag, filepath.Join(dir, "x"))
		if code != 2 || !strings.Contains(stderr, flag+" is one run's latency distribution") {
			t.Fatalf("%s on a sweep: exit %d, %q", flag, code, stderr)
		}
	}
	if srv.Predicts() != before {
		t.Fatal("a refused sweep sent load")
	}
	if code, _, stderr := loadprof(t, "report", out, "--hgrm", filepath.Join(dir, "s.hgrm")); code != 2 || !strings.Contains(stderr, "is a sweep") {
		t.Fatalf("report sweep.json --hgrm: exit %d, %q", code, stderr)
	}
}
