package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/profile"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenResult is a result with fixed numbers, for the template's golden file.
func goldenResult(t *testing.T) *Result {
	h := newHistogram()
	for i := int64(1); i <= 1000; i++ {
		h.RecordValue(1000 + i*10)
	}
	enc, err := EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	win, out := newHistogram(), newHistogram()
	for i := int64(1); i <= 1000; i++ {
		if i%4 == 0 {
			win.RecordValue(1000 + i*10)
		} else {
			out.RecordValue(1000 + i*10)
		}
	}
	slice := func(h *hdrhistogram.Histogram, errs map[string]int64) *Slice {
		enc, err := EncodeHistogram(h)
		if err != nil {
			t.Fatal(err)
		}
		return &Slice{Requests: h.TotalCount(), Errors: errs, Latency: StatsOf(h), LatencyOK: StatsOf(h), Histogram: enc}
	}
	lag := Stats{Count: 1250, P50: 0.05, P99: 0.4, Max: 12.5}
	return &Result{
		Version: 1, Tool: "loadprof test", Target: "http://127.0.0.1:8501/v1/models/m:predict", Transport: "rest",
		StartedAt: time.Date(2026, 11, 24, 18, 29, 58, 0, time.UTC),
		Loop:      "open", LatencyFrom: "intended_send", Requests: 1000, ThroughputRPS: 250, SuccessRPS: 249,
		Errors: map[string]int64{"http_503": 1}, ErrorSamples: map[string]string{"http_503": "http_503: {\"error\": \"overloaded\"}"},
		Latency: StatsOf(h), LatencyOK: StatsOf(h), Histogram: enc,
		Window: slice(win, map[string]int64{}), Outside: slice(out, map[string]int64{"http_503": 1}),
		Config: map[string]any{"rate": "250", "header": []string{"Authorization: <redacted>"}},
		Phases: Phases{Warmup: Phase{Start: 0, End: 1, Requests: 250, Errors: map[string]int64{"timeout": 2}}, Steady: Phase{Start: 1, End: 4.5, Requests: 1000}},
		Series: []Second{{Second: 0, Requests: 250, P50Us: 5000, P90Us: 8000, P99Us: 9000, MaxUs: 9500, Sent: 250, Inflight: 1.5, BytesSent: 45000, BytesReceived: 105000},
			{Second: 1, Requests: 250, P50Us: 6000, P90Us: 9000, P99Us: 11000, MaxUs: 12000, Sent: 250, Inflight: 1.6, BytesSent: 45000, BytesReceived: 105000},
			{Second: 2, Requests: 249, Errors: 1, P50Us: 6000, P90Us: 9000, P99Us: 11000, MaxUs: 30000, Sent: 250, Inflight: 1.6, BytesSent: 45000, BytesReceived: 105000},
			{Second: 3, Requests: 250, P50Us: 6000, P90Us: 8000, P99Us: 10000, MaxUs: 10500, Sent: 125, Inflight: 1.5, BytesSent: 22500, BytesReceived: 52500},
			{Second: 4, Requests: 126, P50Us: 6000, P90Us: 8000, P99Us: 10000, MaxUs: 10500, Sent: 0, Inflight: 0.7, BytesSent: 0, BytesReceived: 0}},
		Client: ClientStats{SendLag: &lag, MaxSendLagMs: 12.5, MaxFreeSendLagMs: 12.5, PeakInflight: 7, Engine: "epoll"},
		Profile: &ProfileReport{Result: &profile.Result{Address: "127.0.0.1:8500", Run: "2026_11_24_18_30_00", LogDir: "tb", Saved: profile.SavedLocal,
			Files: []string{"tb/plugins/profile/2026_11_24_18_30_00/127.0.0.1_8500.xplane.pb"}},
			WindowStartS: 2, WindowEndS: 3, TopOps: []profile.Op{{Name: "dense/MatMul", Type: "MatMul", Plane: "/host:CPU", Count: 10, TotalMs: 4, SelfMs: 3, Share: 0.3}}},
	}
}

func TestHTMLTemplateGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, []*Result{goldenResult(t)}, []string{"base.json"}, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.html")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		os.WriteFile(filepath.Join(t.TempDir(), "got.html"), buf.Bytes(), 0o644)
		t.Fatalf("the report differs from %s (after checking the change: go test ./report -run Golden -args -update)", golden)
	}
}

func TestSweepReportShowsTheSLOAndTheHighestPassingStep(t *testing.T) {
	var steps []StepResult
	for i, level := range []float64{100, 200, 300, 400, 500, 600, 700, 800, 900} {
		r := goldenResult(t)
		r.ThroughputRPS = level * 0.99
		r.Config = map[string]any{"rate": fmt.Sprint(level), "duration": "10s", "url": r.Target}
		r.Latency.P50, r.Latency.P99 = 2+float64(i)/10, 10+5*float64(i*i)
		r.Latency.P90, r.Latency.Max = r.Latency.P99/2, r.Latency.P99*1.3
		steps = append(steps, StepResult{Level: level, Pass: r.Latency.P99 < 50, Attempts: 1, Result: r})
	}
	steps[3].Unstable, steps[3].Attempts = "p99 20.0 vs 30.0 ms between halves", 2
	highest := 300.0
	sw := &SweepResult{Version: 2, Kind: "sweep", Loop: "open", SLO: "p99<50ms", Stopped: "step 4 (400) broke the SLO",
		Config: map[string]any{"duration": "10s"}, Steps: steps, MaxPassing: &highest}
	var buf bytes.Buffer
	if err := WriteSweepHTML(&buf, sw); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "sweep.html")
	os.WriteFile(page, buf.Bytes(), 0o644)
	dom := testkit.PageDOM(t, page)
	if got := testkit.DOMAttr(t, dom, "sweep", "data-slo"); got != "p99&lt;50ms" {
		t.Errorf("SLO lines %q", got)
	}
	if got := testkit.DOMAttr(t, dom, "sweep", "data-highest"); got != "rate 300" {
		t.Errorf("highest passing step marked %q", got)
	}
	if got := testkit.DOMAttr(t, dom, "sweep", "data-points"); got != strconv.Itoa(2*len(steps)) {
		t.Errorf("sweep chart has %s points for %d steps", got, len(steps))
	}
	if !regexp.MustCompile(`<tr data-level="300" data-pass="true" class="highest"`).MatchString(dom) || !strings.Contains(dom, `data-max-passing="300"`) {
		t.Error("the step table does not mark step 300 as the highest passing")
	}
	if n := strings.Count(dom, `data-pass="false"`); n != 6 {
		t.Errorf("%d failing steps in the table, want 6", n)
	}
	if n := strings.Count(dom, `data-unstable="true"`); n != 1 {
		t.Errorf("%d unstable flags, want 1", n)
	}
	// Shared settings once, and per step only the rate.
	if n := strings.Count(dom, "<td>duration</td>"); n != 1 {
		t.Errorf("duration is shown %d times, want once among the shared settings", n)
	}
	if !strings.Contains(dom, "<code>rate=900</code>") {
		t.Error("the step table does not say what differs per step")
	}
	// Every step has its own colour.
	colors := map[string]bool{}
	for _, m := range regexp.MustCompile(`class="swatch" style="background: ([^"]+)"`).FindAllStringSubmatch(dom, -1) {
		colors[m[1]] = true
	}
	if len(colors) != len(steps) {
		t.Errorf("%d colours for %d steps", len(colors), len(steps))
	}
}
