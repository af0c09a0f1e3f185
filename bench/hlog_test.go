package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// parsedHlog is an interval log as a reader that follows the format sees
// it: only complete lines count.
type parsedHlog struct {
	startMs, baseMs int64 // -1 when absent
	comments        []string
	intervals       []parsedInterval
}

type parsedInterval struct {
	tag           string
	startS, lenS  float64
	maxMs         float64
	h             *hdrhistogram.Histogram
	commentsAfter int // how many comments came before it
}

var (
	reStartTime = regexp.MustCompile(`^#\[StartTime: (\d+\.\d{3}) \(seconds since epoch\), (\S+)\]$`)
	reBaseTime  = regexp.MustCompile(`^#\[BaseTime: (\d+\.\d{3}) \(seconds since epoch\)\]$`)
)

func parseHlog(t *testing.T, data []byte) parsedHlog {
	t.Helper()
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	p := parsedHlog{startMs: -1, baseMs: -1}
	ms := func(s string) int64 {
		f, _ := strconv.ParseFloat(s, 64)
		return int64(math.Round(f * 1000))
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := reStartTime.FindStringSubmatch(line); m != nil {
			p.startMs = ms(m[1])
			continue
		}
		if m := reBaseTime.FindStringSubmatch(line); m != nil {
			p.baseMs = ms(m[1])
			continue
		}
		if strings.HasPrefix(line, "#") {
			p.comments = append(p.comments, line)
			continue
		}
		if strings.HasPrefix(line, `"StartTimestamp"`) {
			continue
		}
		iv := parsedInterval{commentsAfter: len(p.comments)}
		if rest, ok := strings.CutPrefix(line, "Tag="); ok {
			iv.tag, line, _ = strings.Cut(rest, ",")
		}
		f := strings.Split(line, ",")
		if len(f) != 4 {
			t.Fatalf("interval line %q", line)
		}
		iv.startS, _ = strconv.ParseFloat(f[0], 64)
		iv.lenS, _ = strconv.ParseFloat(f[1], 64)
		iv.maxMs, _ = strconv.ParseFloat(f[2], 64)
		h, err := hdrhistogram.Decode([]byte(f[3]))
		if err != nil {
			t.Fatalf("interval %q: %v", line, err)
		}
		iv.h = h
		p.intervals = append(p.intervals, iv)
	}
	return p
}

// sumOf adds up the intervals tagged tag ("" for untagged).
func (p parsedHlog) sumOf(tag string) *hdrhistogram.Histogram {
	total := load.NewHistogram()
	for _, iv := range p.intervals {
		if iv.tag == tag {
			total.Merge(iv.h)
		}
	}
	return total
}

// recordedValues is a histogram as HdrHistogram's recorded-values iterator
// gives it: each value's highest equivalent value and its count.
func recordedValues(h *hdrhistogram.Histogram) map[int64]int64 {
	m := map[int64]int64{}
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			m[b.To] = b.Count
		}
	}
	return m
}

func sameValues(a, b map[int64]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// hlogRun runs against the simulator with an interval log, a warm-up and a
// profile window, and reads the log while the run goes on: it returns the
// log as it was when it first held a complete steady interval, before the
// run ended.
func hlogRun(t *testing.T) (res *report.Result, path string, during []byte) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Jitter: 2 * time.Millisecond}})
	dir := t.TempDir()
	path, out := filepath.Join(dir, "run.hlog"), filepath.Join(dir, "result.json")
	type ran struct {
		res *report.Result
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, err := Run(context.Background(), Config{
			URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), IntervalLog: hlogTo(path), Timeout: 5 * time.Second,
			Plan: load.Plan{Rate: 200, WarmupDuration: time.Second, Duration: 3 * time.Second, MaxInflight: 50},
			Profile: &ProfileConfig{Addr: srv.GRPCAddr(), Delay: 500 * time.Millisecond,
				Options: profile.Options{Duration: time.Second, LogDir: filepath.Join(dir, "tb"), Slack: 10 * time.Second}},
		})
		done <- ran{res, err}
	}()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for during == nil {
		select {
		case r := <-done:
			t.Fatalf("the run ended (%v) before its log held a steady interval: the log is not streamed", r.err)
		case <-poll.C:
			data, err := os.ReadFile(path)
			if err != nil {
				continue // not created yet
			}
			for _, iv := range parseHlog(t, data).intervals {
				if iv.tag == "" {
					during = data
				}
			}
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	writeResult(t, r.res, out)
	back, err := report.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	return back, path, during
}

func TestHlogIsStreamedWithTheWarmupTaggedAndExactTimes(t *testing.T) {
	res, path, during := hlogRun(t)

	// While the run went on the log held a header and whole intervals.
	mid := parseHlog(t, during)
	origin := res.StartedAt.UnixMilli()
	if mid.startMs != origin || mid.baseMs != origin {
		t.Fatalf("during the run: StartTime %d BaseTime %d ms, the run started at %d ms", mid.startMs, mid.baseMs, origin)
	}
	if len(mid.intervals) < 2 || mid.intervals[0].tag != report.HlogWarmupTag {
		t.Fatalf("during the run: %d intervals, first %+v", len(mid.intervals), mid.intervals[0])
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, during[:bytes.LastIndexByte(during, '\n')+1]) {
		t.Fatal("the log read during the run is not the beginning of the final log")
	}
	log := parseHlog(t, data)
	if log.startMs != origin || log.baseMs != origin {
		t.Fatalf("StartTime %d BaseTime %d ms, the run started at %d ms (%s)", log.startMs, log.baseMs, origin, res.StartedAt)
	}
	if !strings.Contains(string(data), "microseconds") {
		t.Fatal("the log does not say its unit")
	}
	// Every interval is a whole second from the origin, in order, the
	// maximum column in milliseconds.
	prev := -1.0
	for _, iv := range log.intervals {
		if iv.startS != math.Trunc(iv.startS) || iv.lenS != 1 || iv.startS < prev {
			t.Fatalf("interval at %v s, %v s long, after one at %v s", iv.startS, iv.lenS, prev)
		}
		if want := float64(iv.h.Max()) / 1000; math.Abs(iv.maxMs-want) > 0.0005 {
			t.Fatalf("interval at %v s: max column %v, histogram max %v us", iv.startS, iv.maxMs, iv.h.Max())
		}
		prev = iv.startS
	}
	// Untagged is the steady phase, exactly result.json's histogram; the
	// warm-up is tagged and apart.
	steady, err := report.DecodeHistogram(res.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	gotSteady, gotWarm := log.sumOf(""), log.sumOf(report.HlogWarmupTag)
	if !sameValues(recordedValues(gotSteady), recordedValues(steady)) || gotSteady.TotalCount() != res.Latency.Count {
		t.Fatalf("untagged intervals hold %d values, result.json's steady histogram %d", gotSteady.TotalCount(), steady.TotalCount())
	}
	if gotWarm.TotalCount() != res.Phases.Warmup.Latency.Count || gotWarm.TotalCount() == 0 {
		t.Fatalf("warm-up intervals hold %d values, the warm-up had %d", gotWarm.TotalCount(), res.Phases.Warmup.Latency.Count)
	}
	if log.intervals[0].tag != report.HlogWarmupTag || log.intervals[len(log.intervals)-1].tag != "" {
		t.Fatalf("first interval %q, last %q", log.intervals[0].tag, log.intervals[len(log.intervals)-1].tag)
	}
	// The profile window is marked by comments, opened before closed, in
	// the steady phase.
	var opened, closed = -1, -1
	for i, c := range log.comments {
		switch {
		case strings.HasPrefix(c, "#[Profile window opened"):
			opened = i
		case strings.HasPrefix(c, "#[Profile window closed"):
			closed = i
		}
	}
	if res.Window == nil || opened < 0 || closed <= opened {
		t.Fatalf("window %v; comments %q", res.Window != nil, log.comments)
	}
}

// TestHlogReadsTheSameInHdrHistogramPython reads the log with HdrHistogram's
// Python package (pinned in conformance/requirements.txt), during the run
// and after it.
func TestHlogReadsTheSameInHdrHistogramPython(t *testing.T) {
	python := os.Getenv("LOADPROF_PYTHON")
	if python == "" {
		t.Skip("LOADPROF_PYTHON is not set (scripts/test.sh sets it to the conformance virtualenv, which has hdrhistogram)")
	}
	res, path, during := hlogRun(t)
	midPath := filepath.Join(t.TempDir(), "during.hlog")
	os.WriteFile(midPath, during[:bytes.LastIndexByte(during, '\n')+1], 0o644)

	type pyInterval struct {
		Tag     *string `json:"tag"`
		StartMs float64 `json:"start_ms"`
		EndMs   float64 `json:"end_ms"`
		Count   int64   `json:"count"`
	}
	type pyLog struct {
		StartTimeSec float64               `json:"start_time_sec"`
		Intervals    []pyInterval          `json:"intervals"`
		Values       map[string][][2]int64 `json:"values"` // tag ("" untagged): [value, count]
	}
	read := func(p string) pyLog {
		cmd := exec.Command(python, "-c", pyReadHlog, p)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		raw, err := cmd.Output()
		if err != nil {
			t.Fatalf("python hdrh on %s: %v\n%s", p, err, stderr.String())
		}
		var l pyLog
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		return l
	}
	origin := res.StartedAt.UnixMilli()
	mid := read(midPath)
	if len(mid.Intervals) < 2 || math.Round(mid.StartTimeSec*1000) != float64(origin) {
		t.Fatalf("python read %d intervals from the log during the run, start %v", len(mid.Intervals), mid.StartTimeSec)
	}
	final := read(path)
	if math.Round(final.StartTimeSec*1000) != float64(origin) {
		t.Fatalf("python reads StartTime %.3f s, the run started at %d ms", final.StartTimeSec, origin)
	}
	var warm, steady int64
	for i, iv := range final.Intervals {
		start := math.Round(iv.StartMs)
		if int64(start-float64(origin))%1000 != 0 || math.Round(iv.EndMs-iv.StartMs) != 1000 {
			t.Fatalf("interval %d starts at %v ms, ends at %v ms; the run started at %d ms", i, iv.StartMs, iv.EndMs, origin)
		}
		switch {
		case iv.Tag == nil:
			steady += iv.Count
		case *iv.Tag == report.HlogWarmupTag:
			warm += iv.Count
		default:
			t.Fatalf("interval %d has tag %q", i, *iv.Tag)
		}
	}
	if steady != res.Latency.Count || warm != res.Phases.Warmup.Latency.Count {
		t.Fatalf("python reads %d steady and %d warm-up values, result.json has %d and %d", steady, warm, res.Latency.Count, res.Phases.Warmup.Latency.Count)
	}
	h, err := report.DecodeHistogram(res.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]int64{}
	for _, vc := range final.Values[""] {
		got[vc[0]] = vc[1]
	}
	if want := recordedValues(h); !sameValues(got, want) {
		t.Fatalf("python's untagged values (us) differ from result.json's histogram:\n%v\n%v", got, want)
	}
}

// pyReadHlog reads an interval log with HdrHistogram's Python package and
// prints, as JSON, the start time, every interval and the recorded values
// of each tag's intervals added up.
const pyReadHlog = `
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600000000, 3))
intervals, totals = [], {}
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    tag = h.get_tag()
    intervals.append({"tag": tag, "start_ms": h.get_start_time_stamp(), "end_ms": h.get_end_time_stamp(), "count": h.get_total_count()})
    key = tag or ""
    if key not in totals:
        totals[key] = HdrHistogram(1, 3600000000, 3)
    totals[key].add(h)
values = {k: [[it.value_iterated_to, it.count_added_in_this_iter_step] for it in t.get_recorded_iterator()] for k, t in totals.items()}
print(json.dumps({"start_time_sec": reader.get_start_time_sec(), "intervals": intervals, "values": values}))
`

func TestAFailedHlogWriteIsSaidAtOnceAndTheOtherOutputsAreWritten(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	dir := t.TempDir()
	// A fifo whose reader goes away after the header: the writes of the
	// seconds fail (EPIPE) while the run goes on.
	fifo := filepath.Join(dir, "run.hlog")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	header := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			header <- err.Error()
			return
		}
		r := bufio.NewReader(f)
		var got strings.Builder
		for !strings.HasPrefix(got.String(), "#") || !strings.Contains(got.String(), `"StartTimestamp"`) {
			line, err := r.ReadString('\n')
			got.WriteString(line)
			if err != nil {
				break
			}
		}
		f.Close()
		header <- got.String()
	}()
	var warnings bytes.Buffer
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:        load.Plan{Rate: 200, Duration: 2 * time.Second, MaxInflight: 50},
		IntervalLog: hlogTo(fifo), Warnings: &warnings})
	if h := <-header; !strings.Contains(h, "#[StartTime: ") {
		t.Fatalf("the reader got %q", h)
	}
	if res == nil || res.Requests != 400 {
		t.Fatalf("the run did not go on: %v", err)
	}
	failed := outfile.Failed(err)
	if len(failed) != 1 || failed[fifo] == nil || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("err %v: want --hlog %s alone failed with EPIPE", err, fifo)
	}
	if want := "--hlog " + fifo + ": could not write it: broken pipe"; !strings.Contains(err.Error(), want) ||
		strings.Count(warnings.String(), want) != 1 {
		t.Fatalf("error %q, warnings %q", err, warnings.String())
	}
}

func TestAnHlogThatCannotTakeItsHeaderStopsTheRunBeforeAnyLoad(t *testing.T) {
	srv := startSim(t, sim.Config{})
	full := testkit.FullDevice(t)
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan: load.Plan{Concurrency: 1, Requests: 20}, IntervalLog: hlogTo(full)})
	if res != nil || outfile.Failed(err)[full] == nil || !strings.Contains(err.Error(), "--hlog "+full+": could not write it: no space left on device") {
		t.Fatalf("result %v, err %v", res != nil, err)
	}
	if n := srv.Predicts(); n > 1 { // the preflight request at most
		t.Fatalf("%d requests sent to a run whose log could not be written", n)
	}
}

// TestHlogReadsTheSameInHdrHistogramJava runs HdrHistogram's Java
// HistogramLogProcessor on the log when LOADPROF_HDRHISTOGRAM_JAR names its
// jar (e.g. `mvn dependency:get -Dartifact=org.hdrhistogram:HdrHistogram:2.2.2`
// puts it under ~/.m2): the untagged intervals give the steady phase's
// count and maximum, `-tag warmup` the warm-up's, in milliseconds with
// `-outputValueUnitRatio 1000` as the README says.
func TestHlogReadsTheSameInHdrHistogramJava(t *testing.T) {
	jar := os.Getenv("LOADPROF_HDRHISTOGRAM_JAR")
	if jar == "" {
		t.Skip("LOADPROF_HDRHISTOGRAM_JAR is not set")
	}
	res, path, _ := hlogRun(t)
	reTotal := regexp.MustCompile(`#\[Max\s+=\s+([\d.]+), Total count\s+=\s+(\d+)\]`)
	process := func(extra ...string) (maxMs float64, count int64) {
		prefix := filepath.Join(t.TempDir(), "out")
		args := append([]string{"-cp", jar, "org.HdrHistogram.HistogramLogProcessor", "-i", path, "-outputValueUnitRatio", "1000", "-o", prefix}, extra...)
		if out, err := exec.Command("java", args...).CombinedOutput(); err != nil {
			t.Fatalf("java %v: %v\n%s", args, err, out)
		}
		hgrm, err := os.ReadFile(prefix + ".hgrm")
		if err != nil {
			t.Fatal(err)
		}
		m := reTotal.FindSubmatch(hgrm)
		if m == nil {
			t.Fatalf("no totals in %s", hgrm)
		}
		maxMs, _ = strconv.ParseFloat(string(m[1]), 64)
		count, _ = strconv.ParseInt(string(m[2]), 10, 64)
		return maxMs, count
	}
	maxMs, count := process()
	if count != res.Latency.Count || math.Abs(maxMs-res.Latency.Max) > 0.0005 {
		t.Fatalf("Java reads %d values up to %.3f ms; result.json has %d up to %.3f ms", count, maxMs, res.Latency.Count, res.Latency.Max)
	}
	maxMs, count = process("-tag", report.HlogWarmupTag)
	if count != res.Phases.Warmup.Latency.Count || math.Abs(maxMs-res.Phases.Warmup.Latency.Max) > 0.0005 {
		t.Fatalf("Java reads %d warm-up values up to %.3f ms; result.json has %d up to %.3f ms", count, maxMs, res.Phases.Warmup.Latency.Count, res.Phases.Warmup.Latency.Max)
	}
}

// BenchmarkRecordWithHlog is the recorder's cost per request with the
// interval log attached, with the same samples as load's
// BenchmarkRecorderRecord (one a microsecond, so a second ends every
// million): the sink records into one more histogram under the recorder's
// lock; encoding and writing happen on the writer's goroutine.
func BenchmarkRecordWithHlog(b *testing.B) {
	rec := load.NewRecorder()
	w, err := report.NewHlogWriter("--hlog", filepath.Join(b.TempDir(), "b.hlog"), rec.Origin(), false, nil)
	if err != nil {
		b.Fatal(err)
	}
	rec.SetIntervalSink(hlogSink{w})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d := time.Duration(i) * time.Microsecond
		rec.Record(load.Sample{Phase: load.Steady, Start: d, Done: d + 1500*time.Microsecond, Outcome: load.Outcome{Class: load.OK}})
	}
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// hlogSink is the interval log alone as the recorder's sink (a run puts
// the per-second histograms in front of it).
type hlogSink struct{ w *report.HlogWriter }

func (s hlogSink) Add(phase load.Phase, latencyUs int64) { s.w.Add(phase == load.Warmup, latencyUs) }
func (s hlogSink) Interval(second int)                   { s.w.Interval(second) }
