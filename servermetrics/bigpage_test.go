package servermetrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bigPage is a page of families loadprof does not know, series series in
// all (a tenth of them gauges), that never change, with TF Serving's
// request counter ahead of them moving by 10 a scrape.
func bigPage(series int) func(scrape int64) string {
	var static strings.Builder
	const perFamily = 100
	for f := 0; f*perFamily < series; f++ {
		kind := "counter"
		if f%10 == 9 {
			kind = "gauge"
		}
		fmt.Fprintf(&static, "# HELP exporter_family_%d_total something a node exporter counts\n# TYPE exporter_family_%d_total %s\n", f, f, kind)
		for l := 0; l < perFamily && f*perFamily+l < series; l++ {
			fmt.Fprintf(&static, "exporter_family_%d_total{device=\"dev%d\",mode=\"mode-%d\",instance=\"10.0.0.1:9100\"} %d\n", f, l, l%7, f*l)
		}
	}
	body := static.String()
	return func(i int64) string {
		return fmt.Sprintf("# TYPE :tensorflow:serving:request_count counter\n:tensorflow:serving:request_count{model_name=\"m\",status=\"OK\"} %d\n", 10*i) + body
	}
}

// peakHeap samples the live heap objects' bytes until stop and returns
// the largest seen.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	return out
}

// sampleRun scrapes page through a Sampler's run (start, steady phase of
// a few scrapes, end) and returns the peak heap above the heap before
// it, the heap its report keeps, and the report.
func sampleRun(t *testing.T, page func(int64) string) (peak, kept uint64, rep Report) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, page(n.Add(1)))
	}))
	defer srv.Close()
	base := heapInUse()
	stop := make(chan struct{})
	peakCh := peakHeap(stop)
	s, err := Start(context.Background(), Config{URL: srv.URL, Model: "m", Interval: time.Hour, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	waitScrapes := func(want int) {
		deadline := time.Now().Add(2 * time.Minute)
		for len(s.Samples()) < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	waitScrapes(1)
	for i, mark := range []string{MarkSteadyStart, "", "", MarkSteadyEnd} {
		if mark != "" {
			s.Mark(mark)
		} else {
			s.Mark("interval")
		}
		waitScrapes(i + 2)
	}
	s.Close()
	rep = s.Report()
	close(stop)
	p := <-peakCh
	peak = p - min(base, p)
	h := heapInUse()
	kept = h - min(base, h)
	runtime.KeepAlive(s)
	return peak, kept, rep
}

// A page of 200,000 series loadprof has no name for costs a bounded part
// of what it would hold raw: the unknown series kept are capped (with a
// warning naming how many were left out) and the page is parsed a few
// families at a time, never whole. Measured against the same run of a
// page without them; the bounds are a fraction of what the page costs
// parsed whole (over 300 MB before the cap).
func TestAHugeStaticPageCostsABoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("parses 200,000 series a scrape")
	}
	smallPeak, smallKept, _ := sampleRun(t, bigPage(0))
	peak, kept, rep := sampleRun(t, bigPage(200_000))
	t.Logf("peak heap above the start: %d MB (without the page %d MB); kept %d MB (%d MB)", peak>>20, smallPeak>>20, kept>>20, smallKept>>20)
	if rep.Steady == nil || rep.Steady.Requests == nil || *rep.Steady.Requests != 30 {
		t.Fatalf("the known family is not read beside the big page: %+v", rep.Steady)
	}
	dropped := false
	for _, w := range rep.Warnings {
		dropped = dropped || strings.Contains(w, "190,000 series of families loadprof does not know")
	}
	if !dropped {
		t.Errorf("no warning says how many raw series were left out: %q", rep.Warnings)
	}
	if peak > smallPeak+96<<20 {
		t.Errorf("peak heap %d MB above the start, %d MB without the page: want at most 96 MB more", peak>>20, smallPeak>>20)
	}
	if kept > smallKept+48<<20 {
		t.Errorf("the report and sampler keep %d MB, %d MB without the page: want at most 48 MB more", kept>>20, smallKept>>20)
	}
}

// The unknown series kept are the same from one page to the next, parsed
// or reused: a series dropped in one scrape and kept in the next would
// count its whole value as new. New series past the cap are dropped.
func TestTheRawSeriesKeptAreTheSameEveryScrape(t *testing.T) {
	page := bigPage(20_000)
	p := newPageParser(Filter{Model: "m"})
	var first *Snapshot
	for i := range int64(3) {
		text := page(i)
		if i == 2 {
			// A series new to the page, and one block changed: parsed again.
			text += "# TYPE late_family counter\nlate_family{a=\"b\"} 1\n"
			text = strings.Replace(text, "exporter_family_0_total{device=\"dev1\",mode=\"mode-1\",instance=\"10.0.0.1:9100\"} 0", "exporter_family_0_total{device=\"dev1\",mode=\"mode-1\",instance=\"10.0.0.1:9100\"} 5", 1)
		}
		snap, err := p.parse(strings.NewReader(text), "text/plain; version=0.0.4")
		if err != nil {
			t.Fatal(err)
		}
		wantDropped := 10_000
		if i == 2 {
			wantDropped++
		}
		if len(snap.Series) != maxRawSeries+1 || snap.DroppedRaw != wantDropped {
			t.Fatalf("scrape %d: %d series, %d dropped; want %d and %d", i, len(snap.Series), snap.DroppedRaw, maxRawSeries+1, wantDropped)
		}
		if first == nil {
			first = snap
			continue
		}
		for key := range first.Series {
			if snap.Series[key] == nil {
				t.Fatalf("scrape %d dropped %s, kept before", i, key)
			}
		}
	}
}
