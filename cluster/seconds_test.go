package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/report"
)

// nopCloser is a buffer the interval log is written to.
type nopCloser struct{ bytes.Buffer }

func (nopCloser) Close() error { return nil }

// encodedOf is a histogram of values (us), encoded as a log line holds it.
func encodedOf(t *testing.T, values ...int64) string {
	t.Helper()
	h := newLogHistogram()
	for _, v := range values {
		if err := h.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	enc, err := report.EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// logLine is one interval of a log written by hand, as a worker's bench
// writes it.
func logLine(tag string, second int, enc string) string {
	if tag != "" {
		tag = "Tag=" + tag + ","
	}
	return fmt.Sprintf("%s%d.000,1.000,1.000,%s\n", tag, second, enc)
}

// TestSecondsTapCarriesEachIntervalsTag feeds a worker's tap an interval
// log with the latency's intervals and an LLM target's tagged ones: each
// interval keeps its tag, and a worker lost mid-run keeps in its entry
// the steady latencies only, not its TTFT or ITL seconds.
func TestSecondsTapCarriesEachIntervalsTag(t *testing.T) {
	lat, ttft, itl, wttft := encodedOf(t, 1000, 2000), encodedOf(t, 50_000), encodedOf(t, 10, 20, 30), encodedOf(t, 70_000)
	log := "#[BaseTime: 1795000000.000 (seconds since epoch)]\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n" +
		logLine(tagWarmup, 0, lat) + logLine(warmupTagPrefix+tagTTFT, 0, wttft) +
		logLine(tagSteady, 1, lat) + logLine(tagTTFT, 1, ttft) + logLine(tagITL, 1, itl) + logLine(tagE2E, 1, ttft)
	tap := &secondsTap{}
	_, _ = tap.Write([]byte(log))
	b := tap.batch(0)
	want := []wireInterval{{0, tagWarmup, lat}, {0, "warmup-ttft", wttft}, {1, tagSteady, lat}, {1, "ttft", ttft}, {1, "itl", itl}, {1, "e2e", ttft}}
	if len(b.Seconds) != len(want) {
		t.Fatalf("tap holds %+v", b.Seconds)
	}
	for i := range want {
		if b.Seconds[i] != want[i] {
			t.Errorf("interval %d: %+v, want %+v", i, b.Seconds[i], want[i])
		}
	}
	var held workerSeconds
	held.add(b)
	h, covered, err := held.steady()
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalCount() != 2 || h.Max() > 2100 || covered != 2 {
		t.Errorf("a lost worker's steady latencies: %d values up to %d us over %v s; want its 2 latencies only over 2 s", h.TotalCount(), h.Max(), covered)
	}
}

// TestMergedIntervalLogMergesEachTagApart writes the coordinator's
// interval log from two workers' seconds with latency and LLM tags: each
// second's intervals are the workers' merged tag by tag (the untagged
// ones the latencies alone), in the log's format.
func TestMergedIntervalLogMergesEachTagApart(t *testing.T) {
	origin := time.Unix(1_795_000_000, 0)
	type iv struct {
		second int
		tag    string
		values []int64
	}
	workers := [][]iv{
		{{0, tagWarmup, []int64{900}}, {0, "warmup-ttft", []int64{80_000}}, {1, tagSteady, []int64{1000, 1100}}, {1, tagTTFT, []int64{40_000}}, {1, tagITL, []int64{5, 6, 7}}, {2, tagTPOT, []int64{3000}}},
		{{1, tagITL, []int64{8}}, {1, tagSteady, []int64{1200}}, {1, tagTTFT, []int64{45_000, 46_000}}, {2, tagSteady, []int64{1300}}, {2, tagE2E, []int64{90_000}}},
	}
	c := &coordinator{}
	want := map[string]*hdrhistogram.Histogram{} // "second/tag"
	for i, ivs := range workers {
		wk := &worker{result: &report.Result{}, rep: report.WorkerReport{Index: i + 1, Status: report.WorkerOK}}
		wk.seconds.originNs = origin.UnixNano()
		for _, x := range ivs {
			wk.seconds.intervals = append(wk.seconds.intervals, wireInterval{Second: x.second, Tag: x.tag, Histogram: encodedOf(t, x.values...)})
			key := fmt.Sprintf("%d/%s", x.second, x.tag)
			if want[key] == nil {
				want[key] = newLogHistogram()
			}
			for _, v := range x.values {
				_ = want[key].RecordValue(v)
			}
		}
		c.workers = append(c.workers, wk)
	}
	var out nopCloser
	if err := c.writeIntervalLog(&out, origin); err != nil {
		t.Fatal(err)
	}
	got := map[string]*hdrhistogram.Histogram{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' || l[0] == '"' {
			continue
		}
		tag := ""
		if rest, ok := strings.CutPrefix(l, "Tag="); ok {
			tag, l, _ = strings.Cut(rest, ",")
		}
		f := strings.Split(l, ",")
		if len(f) != 4 {
			t.Fatalf("line %q", sc.Text())
		}
		start, _ := strconv.ParseFloat(f[0], 64)
		h, err := report.DecodeHistogram(f[3])
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if maxMs, _ := strconv.ParseFloat(f[2], 64); maxMs != float64(h.Max())/1000 {
			t.Errorf("line %q: max column %v, the histogram's %v ms", sc.Text(), maxMs, float64(h.Max())/1000)
		}
		key := fmt.Sprintf("%d/%s", int(start), tag)
		if got[key] != nil {
			t.Errorf("second %s twice in the log", key)
		}
		got[key] = h
	}
	if len(got) != len(want) {
		t.Errorf("the log has %d intervals, want %d:\n%s", len(got), len(want), out.String())
	}
	for key, w := range want {
		if g := got[key]; g == nil || !g.Equals(w) {
			t.Errorf("interval %s: %v values, want the workers' %d merged", key, g != nil && g.TotalCount() > 0, w.TotalCount())
		}
	}
	// Within a second the lines come as one machine's log has them (the
	// latency, then ttft, itl, tpot, e2e), whatever order the workers
	// sent them in.
	second1 := regexpLines(out.String(), "1.000,")
	if len(second1) != 3 || !strings.HasPrefix(second1[0], "1.000,") || !strings.HasPrefix(second1[1], "Tag=ttft,") || !strings.HasPrefix(second1[2], "Tag=itl,") {
		t.Errorf("second 1's lines: %q", second1)
	}
}

// regexpLines are the interval lines of log whose start is prefix.
func regexpLines(log, prefix string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		body := l
		if rest, ok := strings.CutPrefix(l, "Tag="); ok {
			_, body, _ = strings.Cut(rest, ",")
		}
		if strings.HasPrefix(body, prefix) {
			out = append(out, l)
		}
	}
	return out
}
