package report

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// hlogIntervals reads a log with hdrhistogram-go's reader: each interval's
// tag, start (s since the base time) and count.
type readInterval struct {
	tag   string
	start float64
	count int64
}

func readHlogIntervals(t *testing.T, data []byte, base time.Time) []readInterval {
	t.Helper()
	r := hdrhistogram.NewHistogramLogReader(bytes.NewReader(data))
	var out []readInterval
	for {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			return out
		}
		out = append(out, readInterval{h.Tag(), float64(h.StartTimeMs()-base.UnixMilli()) / 1000, h.TotalCount()})
	}
}

func histOf(values ...int64) *hdrhistogram.Histogram {
	h := newHistogram()
	for _, v := range values {
		_ = h.RecordValue(v)
	}
	return h
}

func TestHlogTagsTheStreamFiguresBesideTheLatency(t *testing.T) {
	origin := time.Unix(1_795_000_000, 0)
	path := filepath.Join(t.TempDir(), "run.hlog")
	w, err := NewHlogWriter("--hlog", path, origin, true, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w.KeepStreams()
	// Second 0: warm-up only. Second 1: steady latency, stream figures of
	// both phases. Second 2: steady latency, no stream request ended.
	// Second 3: stream figures of requests that ended after the latency's
	// last second.
	w.Add(true, 900)
	w.AddStreams(true, histOf(100), histOf(10, 11), histOf(20), histOf(900))
	w.Interval(0)
	w.Add(false, 1000)
	w.AddStreams(true, histOf(101), nil, nil, histOf(901))
	w.AddStreams(false, histOf(200, 201), histOf(30, 31, 32), histOf(40, 41), histOf(1000, 1001))
	w.Interval(1)
	w.Add(false, 1000)
	w.Interval(2)
	w.AddStreams(false, histOf(300), histOf(50), histOf(60), histOf(1100))
	w.StreamsInterval(3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "#[Stream figures of an OpenAI-compatible target") {
		t.Errorf("the log does not say what its stream tags are:\n%s", data)
	}
	type key struct {
		tag   string
		start float64
	}
	got := map[key]int64{}
	var order []string
	for _, iv := range readHlogIntervals(t, data, origin) {
		got[key{iv.tag, iv.start}] = iv.count
		order = append(order, iv.tag)
	}
	want := map[key]int64{
		{"warmup", 0}: 1, {"warmup-ttft", 0}: 1, {"warmup-itl", 0}: 2, {"warmup-tpot", 0}: 1, {"warmup-e2e", 0}: 1,
		// The warm-up's latency has no line in second 1 (no warm-up
		// request finished), its stream figures have one.
		{"", 1}: 1, {"warmup-ttft", 1}: 1, {"warmup-itl", 1}: 0, {"warmup-tpot", 1}: 0, {"warmup-e2e", 1}: 1,
		{"ttft", 1}: 2, {"itl", 1}: 3, {"tpot", 1}: 2, {"e2e", 1}: 2,
		// A steady second without stream values still has its lines, as
		// the latency has.
		{"", 2}: 1, {"ttft", 2}: 0, {"itl", 2}: 0, {"tpot", 2}: 0, {"e2e", 2}: 0,
		{"ttft", 3}: 1, {"itl", 3}: 1, {"tpot", 3}: 1, {"e2e", 3}: 1,
	}
	if len(got) != len(want) {
		t.Errorf("%d intervals, want %d: %v", len(got), len(want), got)
	}
	for k, n := range want {
		if c, ok := got[k]; !ok || c != n {
			t.Errorf("interval %q at %v s: %d values (present %v), want %d", k.tag, k.start, c, ok, n)
		}
	}
	// Within a second the latency comes first, then the warm-up's stream
	// figures, then the steady phase's.
	if strings.Join(order[:5], ",") != "warmup,warmup-ttft,warmup-itl,warmup-tpot,warmup-e2e" ||
		strings.Join(order[5:10], ",") != ",warmup-ttft,warmup-itl,warmup-tpot,warmup-e2e" {
		t.Errorf("order %q", order)
	}
	for _, iv := range readHlogIntervals(t, data, origin) {
		if kind, warmup, ok := ParseHlogTag(iv.tag); !ok || (kind == "") != (iv.tag == "" || iv.tag == HlogWarmupTag) ||
			warmup != strings.HasPrefix(iv.tag, HlogWarmupTag) {
			t.Errorf("ParseHlogTag(%q) = %q, %v, %v", iv.tag, kind, warmup, ok)
		}
	}
}

// TestHlogWithoutStreamsIsTheLatencyAlone: a log that does not keep
// stream figures reads as before, AddStreams notwithstanding.
func TestHlogWithoutStreamsIsTheLatencyAlone(t *testing.T) {
	origin := time.Unix(1_795_000_000, 0)
	path := filepath.Join(t.TempDir(), "run.hlog")
	w, err := NewHlogWriter("--hlog", path, origin, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w.Add(false, 1000)
	w.AddStreams(false, histOf(1), histOf(2), histOf(3), histOf(4))
	w.Interval(0)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	ivs := readHlogIntervals(t, data, origin)
	if len(ivs) != 1 || ivs[0].tag != "" || strings.Contains(string(data), "Stream figures") {
		t.Fatalf("intervals %+v\n%s", ivs, data)
	}
}

func TestWriteHlogWritesTheStreamFiguresByTag(t *testing.T) {
	origin := time.Unix(1_795_000_000, 0)
	var buf nopCloser
	seconds := func(yield func(HlogInterval) bool) {
		yield(HlogInterval{Second: 0, Steady: histOf(1000), Streams: map[string]*hdrhistogram.Histogram{
			HlogLLMTag("ttft", false): histOf(5, 6), HlogLLMTag("e2e", true): histOf(7)}})
	}
	if err := WriteHlog(&buf, origin, seconds); err != nil {
		t.Fatal(err)
	}
	ivs := readHlogIntervals(t, buf.Bytes(), origin)
	if len(ivs) != 3 || ivs[0] != (readInterval{"", 0, 1}) || ivs[1] != (readInterval{"warmup-e2e", 0, 1}) || ivs[2] != (readInterval{"ttft", 0, 2}) {
		t.Fatalf("intervals %+v", ivs)
	}
	if !strings.Contains(buf.String(), "#[Stream figures") {
		t.Errorf("no comment on the stream tags:\n%s", buf.String())
	}
}

func TestParseHlogTag(t *testing.T) {
	for tag, want := range map[string]struct {
		kind   string
		warmup bool
		ok     bool
	}{
		"": {"", false, true}, "warmup": {"", true, true}, "ttft": {"ttft", false, true}, "warmup-itl": {"itl", true, true},
		"tpot": {"tpot", false, true}, "warmup-e2e": {"e2e", true, true}, "warmup-": {"", false, false}, "latency": {"", false, false},
	} {
		kind, warmup, ok := ParseHlogTag(tag)
		if kind != want.kind || warmup != want.warmup || ok != want.ok {
			t.Errorf("ParseHlogTag(%q) = %q, %v, %v; want %+v", tag, kind, warmup, ok, want)
		}
		if ok && kind != "" && HlogLLMTag(kind, warmup) != tag {
			t.Errorf("HlogLLMTag(%q, %v) = %q", kind, warmup, HlogLLMTag(kind, warmup))
		}
	}
}

type nopCloser struct{ bytes.Buffer }

func (*nopCloser) Close() error { return nil }
