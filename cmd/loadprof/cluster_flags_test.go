package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/cluster"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/sim"
)

// --workers and k8s's own flags out of range, and a run k8s would put in
// a Job that run itself refuses: exit 2 with one line naming the flag,
// before any manifest is printed.
func TestWorkersAndK8sFlagsOutOfRangeExitTwoNamingThem(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "data.json", oneBody)
	run := []string{"run", "--url", srv.PredictURL(), "--data", data}
	k8s := func(own []string, runFlags ...string) []string {
		args := append([]string{"k8s", "--image", "x"}, own...)
		return append(append(append(args, "--"), run...), runFlags...)
	}
	two := []string{"--workers", "2"}
	cases := []struct {
		args []string
		want string
	}{
		{append(append([]string{}, run...), "--rate", "10", "--token", "t", "--workers", "0"), "loadprof run: --workers 0: must be at least 1\n"},
		{append(append([]string{}, run...), "--rate", "10", "--token", "t", "--workers", "1000000"), "loadprof run: --workers 1000000: must be at most 100000 (a Kubernetes Indexed Job's limit)\n"},
		{append(append([]string{}, run...), "--rate", "10", "--token", "t", "--workers", "2", "--worker-start-tolerance", "0s"), "loadprof run: --worker-start-tolerance 0s: must be positive\n"},
		{append(append([]string{}, run...), "--rate", "10", "--worker-start-tolerance", "1s"), "loadprof run: --worker-start-tolerance goes with --workers N\n"},
		{append(append([]string{}, run...), "--rate", "10", "--token", "t", "--workers", "2", "--worker-lost-after", "900ms"), "loadprof run: --worker-lost-after 900ms: must be at least 1s (twice the workers' heartbeat interval 500ms; a shorter one counts healthy workers as lost)\n"},
		{k8s(two, "--rate", "10", "--worker-lost-after", "200ms"), "loadprof k8s: --worker-lost-after 200ms: must be at least 1s"},
		{k8s([]string{"--workers", "0"}, "--rate", "10"), "loadprof k8s: --workers 0: must be at least 1\n"},
		{k8s([]string{"--workers", "100001"}, "--rate", "10"), "loadprof k8s: --workers 100001: must be at most 100000 (a Kubernetes Indexed Job's limit)\n"},
		{k8s(append(two, "--port", "0"), "--rate", "10"), "loadprof k8s: --port 0: must be at least 1\n"},
		{k8s(append(two, "--port", "65536"), "--rate", "10"), "loadprof k8s: --port 65536: must be at most 65535\n"},
		{k8s(append(two, "--worker-cpu", "lots"), "--rate", "10"), `loadprof k8s: --worker-cpu "lots": want a positive Kubernetes quantity (500m, 2, 512Mi, 1Gi)` + "\n"},
		{k8s(append(two, "--worker-memory", "0"), "--rate", "10"), `loadprof k8s: --worker-memory "0": want a positive Kubernetes quantity (500m, 2, 512Mi, 1Gi)` + "\n"},
		{k8s(append(two, "--deadline", "-1s"), "--rate", "10"), "loadprof k8s: --deadline -1s: must be positive\n"},
		{k8s(append(two, "--deadline", "1m"), "--rate", "10", "--warmup", "30s", "--duration", "5m"), "loadprof k8s: --deadline 1m0s: shorter than the run itself (5m30s of warm-up and duration)"},
		{k8s(append(two, "--deadline", "1m"), "--rate", "10:30:10", "--warmup", "5s", "--duration", "20s"), "loadprof k8s: --deadline 1m0s: shorter than the run itself (1m15s of warm-up and duration over the sweep's steps)"},
		{k8s(two), "loadprof k8s: give --rate (open loop) or --concurrency (closed loop)\n"},
		{k8s([]string{"--workers", "4"}, "--concurrency", "2"), "loadprof k8s: --concurrency 2 with --workers 4: every worker needs at least one request in flight\n"},
		{k8s(two, "--rate", "10", "--ca", "/nonexistent/ca.pem"), "--ca /nonexistent/ca.pem"},
	}
	for _, c := range cases {
		code, stdout, stderr := loadprofWithin(t, 30*time.Second, c.args...)
		if code != exitBadInput || stdout != "" || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("loadprof %s: exit %d, stdout %d bytes, stderr %q; want 2 and %q", strings.Join(c.args, " "), code, len(stdout), stderr, c.want)
		}
	}
}

// k8s puts its own paths in place of --out, --html and --logdir: it says
// so, naming the flag.
func TestK8sWarnsWhenItReplacesAnOutputPath(t *testing.T) {
	data := writeFile(t, "data.json", oneBody)
	code, stdout, stderr := loadprof(t, "k8s", "--workers", "2", "--image", "x", "--", "run", "--url", "http://m:8501/v1/models/m:predict",
		"--data", data, "--rate", "10", "--out", "mine.json", "--html", "mine.html")
	if code != exitOK || stdout == "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"warning: --out mine.json: the coordinator writes /results/result.json", "warning: --html mine.html: the coordinator writes /results/report.html"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// A credential given with -H goes into the Secret and reaches the
// coordinator through LOADPROF_HEADERS, never into a Job's args; other
// headers stay arguments.
func TestK8sPutsCredentialHeadersInTheSecretNotTheArgs(t *testing.T) {
	data := writeFile(t, "data.json", oneBody)
	code, stdout, stderr := loadprof(t, "k8s", "--workers", "2", "--image", "x", "--", "run", "--url", "http://m:8501/v1/models/m:predict",
		"--data", data, "--rate", "10", "-H", "Authorization: Bearer s3cret", "-H", "X-Trace: on",
		"--metrics", "http://m:8501/monitoring/prometheus/metrics", "--metrics-header", "Authorization: Bearer m3trics", "--metrics-header", "X-Scope-OrgID: a")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var list struct {
		Items []struct {
			Kind       string            `json:"kind"`
			StringData map[string]string `json:"stringData"`
			Spec       struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Args []string `json:"args"`
							Env  []struct {
								Name      string `json:"name"`
								ValueFrom *struct {
									SecretKeyRef struct{ Name, Key string } `json:"secretKeyRef"`
								} `json:"valueFrom"`
							} `json:"env"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	var inSecret, inEnv, traceArg, metricsInSecret, metricsInEnv, orgArg bool
	for _, it := range list.Items {
		if it.Kind == "Secret" {
			inSecret = inSecret || strings.Contains(it.StringData["headers"], "Authorization: Bearer s3cret")
			metricsInSecret = metricsInSecret || it.StringData["metrics-headers"] == "Authorization: Bearer m3trics"
		}
		for _, c := range it.Spec.Template.Spec.Containers {
			args := strings.Join(c.Args, " ")
			if strings.Contains(args, "s3cret") || strings.Contains(args, "m3trics") {
				t.Errorf("a credential is in a Job's args: %s", args)
			}
			traceArg = traceArg || strings.Contains(args, "--header=X-Trace: on")
			orgArg = orgArg || strings.Contains(args, "--metrics-header=X-Scope-OrgID: a")
			for _, e := range c.Env {
				if e.Name == "LOADPROF_HEADERS" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef.Key == "headers" {
					inEnv = true
				}
				if e.Name == "LOADPROF_METRICS_HEADERS" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef.Key == "metrics-headers" {
					metricsInEnv = true
				}
			}
		}
	}
	if !inSecret || !inEnv || !traceArg {
		t.Errorf("credential in the Secret %v, LOADPROF_HEADERS from it %v, other header an arg %v\n%s", inSecret, inEnv, traceArg, stdout)
	}
	if !metricsInSecret || !metricsInEnv || !orgArg {
		t.Errorf("metrics credential in the Secret %v, LOADPROF_METRICS_HEADERS from it %v, other metrics header an arg %v\n%s", metricsInSecret, metricsInEnv, orgArg, stdout)
	}
}

// run takes headers from LOADPROF_HEADERS as if given with -H (result.json
// records them, credentials redacted); a malformed line is refused.
func TestRunReadsHeadersFromTheEnvironment(t *testing.T) {
	srv := startSim(t, sim.Config{})
	out := filepath.Join(t.TempDir(), "result.json")
	p := startProc(t, []string{"LOADPROF_HEADERS=Authorization: Bearer s3cret\nX-Trace: on"}, "run", "--url", srv.PredictURL(),
		"--data", writeFile(t, "data.json", oneBody), "--rate", "20", "--duration", "300ms", "--out", out, "-q")
	if code := p.wait(t); code != exitOK {
		t.Fatalf("exit %d: %s", code, p.stderr.String())
	}
	res := readResult(t, out)
	got := fmt.Sprint(res.Config["header"])
	if !strings.Contains(got, "X-Trace: on") || !strings.Contains(got, "Authorization: <redacted>") || strings.Contains(got, "s3cret") {
		t.Errorf("headers recorded %s", got)
	}
	bad := startProc(t, []string{"LOADPROF_HEADERS=no colon here"}, "run", "--url", srv.PredictURL(),
		"--data", writeFile(t, "d.json", oneBody), "--rate", "20", "--duration", "300ms", "-q")
	if code := bad.wait(t); code != exitBadInput || !strings.Contains(bad.stderr.String(), "LOADPROF_HEADERS line 1") {
		t.Errorf("a malformed LOADPROF_HEADERS: exit %d: %s", code, bad.stderr.String())
	}
}

// A coordinator that stopped before the run (Ctrl-C during the join
// wait) answers the held joins with 503: the workers exit 3, not 2 as if
// refused.
func TestWorkerWhoseCoordinatorStoppedBeforeTheRunExitsThree(t *testing.T) {
	stopped := &cluster.UnreachableError{Err: fmt.Errorf("joining x: %w", &cluster.StatusError{Path: "/v1/join", Status: 503, Msg: cluster.StoppedBeforeStart})}
	if code := workerErrorCode(context.Background(), stopped); code != exitTarget {
		t.Errorf("exit %d, want %d", code, exitTarget)
	}
	refused := fmt.Errorf("joining x: %w", &cluster.StatusError{Path: "/v1/join", Status: 401, Msg: "wrong token"})
	if code := workerErrorCode(context.Background(), refused); code != exitBadInput {
		t.Errorf("refused: exit %d, want %d", code, exitBadInput)
	}
}

// A --deadline the run fits in but the join wait and the fetch may not
// is printed with a warning.
func TestK8sWarnsOfADeadlineShorterThanJoinRunAndServe(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "data.json", oneBody)
	code, stdout, stderr := loadprofWithin(t, 30*time.Second, "k8s", "--image", "x", "--workers", "2", "--deadline", "20m", "--",
		"run", "--url", srv.PredictURL(), "--data", data, "--rate", "10", "--duration", "5m")
	if code != exitOK || !strings.Contains(stdout, `"activeDeadlineSeconds": 1200`) ||
		!strings.Contains(stderr, "warning: --deadline 20m0s is shorter than the join wait (up to 10m0s) + the run (5m2s) + --serve-for 30m0s") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = loadprofWithin(t, 30*time.Second, "k8s", "--image", "x", "--workers", "2", "--deadline", "50m", "--",
		"run", "--url", srv.PredictURL(), "--data", data, "--rate", "10", "--duration", "5m", "--join-timeout", "1m")
	if code != exitOK || stderr != "" {
		t.Errorf("a deadline that fits: exit %d, stderr %q", code, stderr)
	}
}

// A --join that is no HOST:PORT, or an --out that cannot be written, is
// refused at once; a coordinator not reached yet is said every few
// seconds (not with -q).
func TestWorkerRefusesABadJoinAddressAndSaysWhileItWaits(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--join", "127.0.0.1:notaport"}, `loadprof worker: --join "127.0.0.1:notaport": port "notaport": want a number from 1 to 65535` + "\n"},
		{[]string{"--join", "127.0.0.1"}, `loadprof worker: --join "127.0.0.1": want HOST:PORT`},
		{[]string{"--join", "http://127.0.0.1:0"}, `port "0": want a number from 1 to 65535`},
		{[]string{"--join", "127.0.0.1:7070", "--name", strings.Repeat("n", 300)}, "loadprof worker: --name of 300 bytes: at most 253 (a DNS name's length)\n"},
		{[]string{"--join", "127.0.0.1:7070", "--out", filepath.Join(t.TempDir(), "absent", "w.json")}, "loadprof worker: --out "},
	} {
		code, _, stderr := loadprofWithin(t, 30*time.Second, append([]string{"worker", "--token", "t"}, c.args...)...)
		if code != exitBadInput || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("worker %v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	addr := testkit.ClosedAddr(t)
	code, _, stderr := loadprofWithin(t, time.Minute, "worker", "--token", "t", "--join", addr, "--join-timeout", "2s")
	if code != exitTarget || !strings.Contains(stderr, "loadprof worker: waiting for the coordinator at http://"+addr+": connection refused\n") {
		t.Errorf("unreachable coordinator: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = loadprofWithin(t, time.Minute, "worker", "--token", "t", "--join", addr, "--join-timeout", "2s", "-q")
	if code != exitTarget || strings.Contains(stderr, "waiting") {
		t.Errorf("-q: exit %d, stderr %q", code, stderr)
	}
}
