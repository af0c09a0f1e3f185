package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// readHlogByTag reads an interval log with hdrhistogram-go's log reader and
// returns each tag's intervals ("" for untagged) in the order read.
func readHlogByTag(t *testing.T, path string) map[string][]*hdrhistogram.Histogram {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := hdrhistogram.NewHistogramLogReader(f)
	out := map[string][]*hdrhistogram.Histogram{}
	for {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		if h == nil {
			return out
		}
		out[h.Tag()] = append(out[h.Tag()], h)
	}
}

func mergedOf(hs []*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	total := load.NewHistogram()
	for _, h := range hs {
		total.Merge(h)
	}
	return total
}

// llmHlogRun runs a streamed chat load with a warm-up and an interval log
// and returns the result, the log's path and the result's stream
// histograms by kind.
func llmHlogRun(t *testing.T) (*report.Result, string, map[string]*hdrhistogram.Histogram) {
	t.Helper()
	srv := startSim(t, sim.Config{LLM: sim.LLM{TTFT: 3 * time.Millisecond, TokenDelay: time.Millisecond, TokenJitter: time.Millisecond, OutputTokens: 4}})
	path := filepath.Join(t.TempDir(), "run.hlog")
	res, err := Run(context.Background(), Config{
		URL: "http://" + srv.RESTAddr() + "/v1/chat/completions", DataPath: writeFile(t, "chat.json", chatBody),
		IntervalLog: hlogTo(path), Timeout: 5 * time.Second,
		Plan: load.Plan{Rate: 100, WarmupDuration: time.Second, Duration: 2 * time.Second, MaxInflight: 50},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.LLMHistograms == nil {
		t.Fatal("no llm_histograms")
	}
	want, err := res.LLMHistograms.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return res, path, want
}

// TestHlogCarriesTheStreamFiguresTagged runs a streamed chat load with a
// warm-up and an interval log: each stream figure's steady intervals, read
// back with hdrhistogram-go's log reader, add up to result.json's
// llm_histograms exactly; the warm-up's are tagged apart; the untagged
// intervals are still the latency, exactly result.json's histogram.
func TestHlogCarriesTheStreamFiguresTagged(t *testing.T) {
	res, path, want := llmHlogRun(t)
	byTag := readHlogByTag(t, path)
	for tag := range byTag {
		if _, _, ok := report.ParseHlogTag(tag); !ok {
			t.Errorf("the log holds tag %q", tag)
		}
	}
	for _, kind := range report.LLMKinds {
		tag := report.HlogLLMTag(kind, false)
		got := mergedOf(byTag[tag])
		if len(byTag[tag]) < 2 || got.TotalCount() == 0 || !sameValues(recordedValues(got), recordedValues(want[kind])) {
			t.Errorf("tag %s: %d intervals holding %d values; llm_histograms.%s holds %d", tag, len(byTag[tag]), got.TotalCount(), kind, want[kind].TotalCount())
		}
		warm := report.HlogLLMTag(kind, true)
		if n := mergedOf(byTag[warm]).TotalCount(); n == 0 {
			t.Errorf("tag %s: no warm-up values", warm)
		}
	}
	// Every warm-up request of the simulator streams tokens: its TTFT is
	// in the warm-up's intervals, one per request.
	if n := mergedOf(byTag[report.HlogLLMTag("ttft", true)]).TotalCount(); n != res.Phases.Warmup.Requests {
		t.Errorf("warm-up TTFT intervals hold %d values, the warm-up had %d requests", n, res.Phases.Warmup.Requests)
	}
	steady, err := report.DecodeHistogram(res.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	if got := mergedOf(byTag[""]); !sameValues(recordedValues(got), recordedValues(steady)) {
		t.Errorf("untagged intervals hold %d values, result.json's latency histogram %d", got.TotalCount(), steady.TotalCount())
	}
	if n := mergedOf(byTag[report.HlogWarmupTag]).TotalCount(); n != res.Phases.Warmup.Latency.Count {
		t.Errorf("warm-up latency intervals hold %d values, the warm-up %d", n, res.Phases.Warmup.Latency.Count)
	}

	// The series' TTFT p99 of each second is that of the second's
	// interval: the steady phase's once it has values, else the warm-up's.
	ttftAt := func(tag string) map[int]*hdrhistogram.Histogram {
		m := map[int]*hdrhistogram.Histogram{}
		for _, h := range byTag[tag] {
			m[int((h.StartTimeMs()-res.StartedAt.UnixMilli())/1000)] = h
		}
		return m
	}
	steadyTTFT, warmTTFT := ttftAt(report.HlogLLMTag("ttft", false)), ttftAt(report.HlogLLMTag("ttft", true))
	withTTFT := 0
	for _, p := range res.Series {
		h := steadyTTFT[p.Second]
		if h == nil || h.TotalCount() == 0 {
			h = warmTTFT[p.Second]
		}
		var want int64
		if h != nil && h.TotalCount() > 0 {
			want = load.ValueAtPercentile(h, 99)
			withTTFT++
		}
		if p.TTFTP99Us != want {
			t.Errorf("second %d: series ttft_p99_us %d, the log's interval gives %d", p.Second, p.TTFTP99Us, want)
		}
	}
	if withTTFT < 3 {
		t.Errorf("%d of %d seconds have a TTFT p99", withTTFT, len(res.Series))
	}
}

// TestSeriesOfCopiesEveryFieldOfTheRecorder: the recorder's per-second
// point and result.json's are converted field by field (result.json's has
// more); a field added to the recorder's must reach result.json's.
func TestSeriesOfCopiesEveryFieldOfTheRecorder(t *testing.T) {
	var p load.Second
	v := reflect.ValueOf(&p).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		default:
			t.Fatalf("load.Second.%s: kind %s not handled here", v.Type().Field(i).Name, f.Kind())
		}
	}
	got := reflect.ValueOf(seriesOf([]load.Second{p})[0])
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		f := got.FieldByName(name)
		if !f.IsValid() || !reflect.DeepEqual(f.Interface(), v.Field(i).Interface()) {
			t.Errorf("report.Second.%s: %v, load.Second's %v", name, f, v.Field(i))
		}
	}
}

// TestLLMHlogReadsTheSameInHdrHistogramPython reads a streamed load's log
// with HdrHistogram's Python package: each stream figure's steady tag adds
// up to result.json's llm_histograms, value for value.
func TestLLMHlogReadsTheSameInHdrHistogramPython(t *testing.T) {
	python := os.Getenv("LOADPROF_PYTHON")
	if python == "" {
		t.Skip("LOADPROF_PYTHON is not set (scripts/test.sh sets it to the conformance virtualenv, which has hdrhistogram)")
	}
	_, path, want := llmHlogRun(t)
	cmd := exec.Command(python, "-c", pyReadHlog, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("python hdrh: %v\n%s", err, stderr.String())
	}
	var log struct {
		Values map[string][][2]int64 `json:"values"`
	}
	if err := json.Unmarshal(raw, &log); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	for _, kind := range report.LLMKinds {
		got := map[int64]int64{}
		for _, vc := range log.Values[report.HlogLLMTag(kind, false)] {
			got[vc[0]] = vc[1]
		}
		if w := recordedValues(want[kind]); len(w) == 0 || !sameValues(got, w) {
			t.Errorf("%s: python's values (us) differ from llm_histograms':\n%v\n%v", kind, got, w)
		}
		if len(log.Values[report.HlogLLMTag(kind, true)]) == 0 {
			t.Errorf("%s: python reads no warm-up values", kind)
		}
	}
}
