package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

func TestRunMetricsPutsTheServersFiguresBesideTheClients(t *testing.T) {
	srv := startSim(t, sim.Config{Model: "m", Latency: sim.Latency{Fixed: time.Millisecond}, NetworkDelay: 5 * time.Millisecond})
	counting := testkit.NewCountingScrape(t, srv)
	out := filepath.Join(t.TempDir(), "result.json")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--rate", "100", "--duration", "1s", "--metrics", counting.URL, "--metrics-interval", "200ms", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	res := readResult(t, out)
	s := res.Server
	if s == nil || s.Requests == nil || len(s.Intervals) == 0 {
		t.Fatalf("server block %+v", s)
	}
	// The server's count over the steady phase is the simulator's between
	// the scrapes at its marks: exactly 100 when they were on time, fewer
	// or more when a busy machine scraped late and calls ended meanwhile.
	// The summary says "the same" for 100 alone, else names the edges.
	from, to := scrapeAt(t, s.Intervals, s.StartS), scrapeAt(t, s.Intervals, s.EndS)
	low, high := counting.Between(t, from, to)
	got := *s.Requests
	t.Logf("server counted %v over the steady phase; the simulator %d..%d between the same scrapes; the client %d", got, low, high, res.Requests)
	if got < float64(low) || got > float64(high) || (low == high && got != float64(low)) || res.Requests != 100 {
		t.Fatalf("server counted %v requests, the simulator %d to %d between the same scrapes; the client %d, want 100", got, low, high, res.Requests)
	}
	note := `: the same`
	if got != 100 {
		note = `: [+-]\d+, requests in flight at the phase's edges or ended while the server was scraped there`
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`server \(tfserving, model m, over the steady phase, ` + regexp.QuoteMeta(counting.URL) + `\):`),
		regexp.MustCompile(`requests: server ` + fmt.Sprint(got) + `, client 100 \(steady\)` + note),
		regexp.MustCompile(`latency:  mean [0-9.]+ ms, p50 [0-9.]+ ms \[[0-9.]+-[0-9.]+\], p90 .* p99 [0-9.]+ ms \[[0-9.]+-[0-9.+Inf]+\] \(:tensorflow:serving:request_latency\)`),
		regexp.MustCompile(`outside the server: [0-9.]+ ms \(the client's mean [0-9.]+ ms minus the server's [0-9.]+ ms`),
		regexp.MustCompile(`inside:   compute [0-9.]+ ms \(means\)`),
	} {
		if !want.MatchString(stdout) {
			t.Errorf("summary has no %s:\n%s", want, stdout)
		}
	}
	// The 5 ms the simulator holds each call before its clock starts is
	// outside the server, whatever else a busy client adds.
	if s.OutsideMs == nil || *s.OutsideMs < 5 {
		t.Errorf("outside the server %v ms: want the 5 ms delay at least", s.OutsideMs)
	}
	if m, ok := res.Config["metrics"].([]any); !ok || len(m) != 1 || res.Config["metrics-interval"] != 0.2 {
		t.Errorf("config metrics %#v, metrics-interval %#v", res.Config["metrics"], res.Config["metrics-interval"])
	}
}

// scrapeAt finds which scrape opened (or closed) a window at run time
// sec: every scrape succeeded, so the intervals run from each to the next.
func scrapeAt(t *testing.T, ivs []report.ServerInterval, sec float64) int {
	t.Helper()
	for i, iv := range ivs {
		if iv.StartS == sec {
			return i
		}
	}
	if n := len(ivs); ivs[n-1].EndS == sec {
		return n
	}
	t.Fatalf("no scrape at %v s among the intervals", sec)
	return -1
}

func TestAMetricsEndpointThatFailsWarnsAndTheRunStands(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dead := "http://" + testkit.ClosedAddr(t) + "/metrics"
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--rate", "50", "--duration", "500ms", "--metrics", dead, "--metrics-interval", "100ms", "--out", out, "-q")
	if code != 0 || !strings.Contains(stdout, "25 requests") {
		t.Fatalf("exit %d (0 without --metrics)\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "warning: metrics "+dead+": ") || !strings.Contains(stderr, "the load's results stand") {
		t.Errorf("no warning line for the dead endpoint: %q", stderr)
	}
	// Nothing was scraped: the summary says that, not that the server
	// exports nothing loadprof knows; every failure alike is one warning.
	if !strings.Contains(stdout, "no figures: no scrape succeeded") {
		t.Errorf("summary:\n%s", stdout)
	}
	var res struct {
		Server struct{ Warnings []string } `json:"server"`
	}
	raw, _ := os.ReadFile(out)
	json.Unmarshal(raw, &res)
	if len(res.Server.Warnings) != 1 || !regexp.MustCompile(`connection refused \(\d+ times\)$`).MatchString(res.Server.Warnings[0]) {
		t.Errorf("warnings %q", res.Server.Warnings)
	}
}

func TestMetricsFlagsAreChecked(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics", "localhost:8501/metrics"}, "loadprof run: --metrics localhost:8501/metrics: must be an http:// or https:// URL\n"},
		{[]string{"--metrics", srv.MetricsURL(), "--metrics-interval", "-1s"}, "loadprof run: --metrics-interval -1s: must not be negative\n"},
		{[]string{"--metrics", srv.MetricsURL(), "--metrics-timeout", "0s"}, "loadprof run: --metrics-timeout 0s: must be positive\n"},
		{[]string{"--metrics", srv.MetricsURL(), "--metrics-interval", "1ms"}, "loadprof run: --metrics-interval 1ms: must be at least 100ms: each scrape reads and parses the server's whole metrics page\n"},
		{[]string{"--metrics", srv.MetricsURL(), "--metrics-interval", "0"}, "loadprof run: --metrics-interval 0s: must be at least 100ms: each scrape reads and parses the server's whole metrics page\n"},
		{[]string{"--metrics-interval", "500ms"}, "loadprof run: --metrics-interval 500ms: needs --metrics URL (it sets how that endpoint is scraped)\n"},
		{[]string{"--metrics-timeout", "20s"}, "loadprof run: --metrics-timeout 20s: needs --metrics URL (it sets how that endpoint is scraped)\n"},
		{[]string{"--metrics-header", "Authorization: Bearer s3cr3t"}, "loadprof run: --metrics-header: needs --metrics URL (it sets how that endpoint is scraped)\n"},
		{[]string{"--metrics", srv.MetricsURL(), "--metrics-header", "Bearer s3cr3t"}, "loadprof run: --metrics-header: header \"Bearer s3cr3t\" is not of the form \"Key: value\"\n"},
		{[]string{"--metrics", srv.MetricsURL(), "--metrics", srv.MetricsURL()}, "loadprof run: --metrics " + srv.MetricsURL() + ": given twice: each endpoint is scraped once\n"},
	} {
		args := append([]string{"run", "--url", srv.PredictURL(), "--data", data, "--rate", "10", "--duration", "1s"}, c.args...)
		code, _, stderr := loadprof(t, args...)
		if code != exitBadInput || stderr != c.want {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, stderr, c.want)
		}
	}
}

func TestTheDemoShowsWhatTheServerMeasured(t *testing.T) {
	code, stdout, stderr := loadprof(t, "demo", "--duration", "1s", "--warmup", "200ms", "--network-delay", "5ms")
	if code != 0 || !strings.Contains(stdout, "--metrics http://") || !strings.Contains(stdout, "server (tfserving, model ") || !strings.Contains(stdout, "outside the server: ") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// Credentials in a --metrics URL are hidden as --url's are: in result.json,
// the page, the summary and the warnings that quote a failed scrape.
func TestCredentialsInAMetricsURLNeverAppear(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	out, html := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	good := strings.Replace(srv.MetricsURL(), "http://", "http://admin:pw-s3cr3t@", 1) + "?token=t0k3n-s3cr3t"
	dead := "http://admin:pw-s3cr3t@127.0.0.1:1/metrics?api_key=k3y-s3cr3t"
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--rate", "50", "--duration", "1s", "--metrics", good, "--metrics", dead, "--out", out, "--html", html)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "warning: metrics http://admin:redacted@127.0.0.1:1/metrics?api_key=redacted") {
		t.Errorf("no warning naming the dead endpoint, redacted:\n%s", stderr)
	}
	texts := map[string]string{"stdout": stdout, "stderr": stderr}
	for _, f := range []string{out, html} {
		b, _ := os.ReadFile(f)
		texts[filepath.Base(f)] = string(b)
	}
	for name, text := range texts {
		for _, secret := range []string{"pw-s3cr3t", "t0k3n-s3cr3t", "k3y-s3cr3t"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds %s", name, secret)
			}
		}
	}
}

// Ctrl-C ends the steady phase early; the server's figures are still of
// the steady phase, up to a last scrape at its end, not of the run up to
// the last scrape before the signal.
func TestAnInterruptedRunsServerFiguresAreOfItsSteadyPhase(t *testing.T) {
	srv := startSim(t, sim.Config{})
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command(binary, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--rate", "100", "--warmup", "500ms", "--duration", "1m", "--metrics", srv.MetricsURL(), "--metrics-interval", "5s", "--out", out, "-q")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for srv.Predicts() < 200 { // well into the steady phase
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("loadprof did not stop within 30s of SIGINT")
	}
	var res struct {
		Requests int64 `json:"requests"`
		Server   struct {
			Window   string   `json:"window"`
			Requests *float64 `json:"requests"`
		} `json:"server"`
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	// The sim counts what it answered; the client what it recorded: at
	// the marks a request or two may be on the wire.
	if res.Server.Window != "steady" || res.Server.Requests == nil || math.Abs(*res.Server.Requests-float64(res.Requests)) > 3 {
		t.Fatalf("server window %q requests %s, client %d", res.Server.Window, raw, res.Requests)
	}
}

// scrapeRecorder proxies the simulator's metrics page and keeps what each
// scrape sent: its headers and its basic auth.
type scrapeRecorder struct {
	mu      sync.Mutex
	headers []http.Header
	users   []string // "user:password" of each scrape's basic auth, "" without
}

func (rec *scrapeRecorder) handler(srv *sim.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, _ := r.BasicAuth()
		rec.mu.Lock()
		rec.headers = append(rec.headers, r.Header.Clone())
		if user != "" || pw != "" {
			rec.users = append(rec.users, user+":"+pw)
		} else {
			rec.users = append(rec.users, "")
		}
		rec.mu.Unlock()
		resp, err := http.Get(srv.MetricsURL())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		io.Copy(w, resp.Body)
	})
}

// --metrics-header goes with every scrape, and the load's -H headers never
// do: the metrics endpoint may be another host, and the model's
// credentials are not its. result.json redacts a credential given there.
func TestMetricsHeadersGoToTheEndpointAndTheLoadsHeadersDoNot(t *testing.T) {
	srv := startSim(t, sim.Config{Model: "m"})
	var rec scrapeRecorder
	ts := httptest.NewServer(rec.handler(srv))
	defer ts.Close()
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--rate", "50", "--duration", "500ms", "-H", "Authorization: Bearer load-s3cr3t", "-H", "X-Load: yes",
		"--metrics", ts.URL+"/metrics", "--metrics-header", "Authorization: Bearer metrics-s3cr3t", "--metrics-header", "X-Scope-OrgID: team-a",
		"--out", out)
	if code != 0 || !regexp.MustCompile(`requests: server 2[0-9], client 25`).MatchString(stdout) {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.headers) < 3 {
		t.Fatalf("%d scrapes", len(rec.headers))
	}
	for i, h := range rec.headers {
		if h.Get("Authorization") != "Bearer metrics-s3cr3t" || h.Get("X-Scope-OrgID") != "team-a" || h.Get("X-Load") != "" || len(h.Values("Authorization")) != 1 {
			t.Errorf("scrape %d sent %v: want --metrics-header's, none of -H's", i, h)
		}
	}
	raw, _ := os.ReadFile(out)
	if strings.Contains(string(raw), "metrics-s3cr3t") || !strings.Contains(string(raw), `"X-Scope-OrgID: team-a"`) {
		t.Errorf("result.json's config: want the metrics credential redacted, the other header kept:\n%s", raw)
	}

	// Without --metrics-header, nothing of -H goes to the endpoint.
	rec.headers, rec.users = nil, nil
	rec.mu.Unlock()
	code, _, stderr = loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`),
		"--rate", "50", "--duration", "200ms", "-H", "Authorization: Bearer load-s3cr3t", "--metrics", ts.URL+"/metrics", "-q")
	rec.mu.Lock()
	if code != 0 || len(rec.headers) == 0 {
		t.Fatalf("exit %d, %d scrapes: %s", code, len(rec.headers), stderr)
	}
	for i, h := range rec.headers {
		if h.Get("Authorization") != "" {
			t.Errorf("scrape %d sent -H's Authorization %q", i, h.Get("Authorization"))
		}
	}
}

// LOADPROF_METRICS_HEADERS (where loadprof k8s puts a metrics credential,
// from a Secret) adds its lines to --metrics-header's.
func TestRunReadsMetricsHeadersFromTheEnvironment(t *testing.T) {
	srv := startSim(t, sim.Config{Model: "m"})
	var rec scrapeRecorder
	ts := httptest.NewServer(rec.handler(srv))
	defer ts.Close()
	data := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	p := startProc(t, []string{"LOADPROF_METRICS_HEADERS=Authorization: Bearer env-s3cr3t\n"}, "run", "--url", srv.PredictURL(), "--data", data,
		"--rate", "50", "--duration", "300ms", "--metrics", ts.URL+"/metrics", "--metrics-header", "X-Scope-OrgID: a", "-q")
	if code := p.wait(t); code != exitOK {
		t.Fatalf("exit %d: %s", code, p.stderr.String())
	}
	rec.mu.Lock()
	if len(rec.headers) == 0 {
		t.Fatal("no scrape")
	}
	for i, h := range rec.headers {
		if h.Get("Authorization") != "Bearer env-s3cr3t" || h.Get("X-Scope-OrgID") != "a" {
			t.Errorf("scrape %d sent %v: want the environment's header beside the flag's", i, h)
		}
	}
	rec.mu.Unlock()
	bad := startProc(t, []string{"LOADPROF_METRICS_HEADERS=no colon"}, "run", "--url", srv.PredictURL(), "--data", data,
		"--rate", "50", "--duration", "300ms", "--metrics", ts.URL+"/metrics", "-q")
	if code := bad.wait(t); code != exitBadInput || !strings.Contains(bad.stderr.String(), "LOADPROF_METRICS_HEADERS") {
		t.Errorf("a malformed LOADPROF_METRICS_HEADERS: exit %d: %s", code, bad.stderr.String())
	}
}

// A metrics URL with user:password@ scrapes with basic auth (and says
// the password nowhere, TestCredentialsInAMetricsURLNeverAppear); an
// https:// endpoint is trusted by --ca as the target is.
func TestMetricsEndpointWithBasicAuthAndOverHTTPS(t *testing.T) {
	srv := startSim(t, sim.Config{Model: "m"})
	var rec scrapeRecorder
	ts := httptest.NewTLSServer(rec.handler(srv))
	defer ts.Close()
	ca := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})))
	data := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	withAuth := strings.Replace(ts.URL, "https://", "https://scraper:pw-s3cr3t@", 1) + "/metrics"
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", data, "--rate", "50", "--duration", "500ms",
		"--metrics", withAuth, "--ca", ca)
	if code != 0 || !regexp.MustCompile(`requests: server 2[0-9], client 25`).MatchString(stdout) || strings.Contains(stderr, "warning: metrics") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	rec.mu.Lock()
	for i, u := range rec.users {
		if u != "scraper:pw-s3cr3t" {
			t.Errorf("scrape %d: basic auth %q, want the URL's", i, u)
		}
	}
	rec.mu.Unlock()

	// Without --ca the certificate is not trusted: every scrape fails,
	// each with a warning, and the load's results stand.
	code, stdout, stderr = loadprof(t, "run", "--url", srv.PredictURL(), "--data", data, "--rate", "50", "--duration", "200ms",
		"--metrics", ts.URL+"/metrics", "-q")
	if code != 0 || !strings.Contains(stderr, "warning: metrics "+ts.URL+"/metrics") || !strings.Contains(stderr, "certificate") {
		t.Errorf("untrusted https endpoint: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
