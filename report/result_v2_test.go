package report

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testdata/v2 holds two results written by loadprof before version 3 (a
// REST and a gRPC run made at the same time against the simulator, 0.4 s
// apart, with errors): string config values, no per-second or warm-up
// histograms, "outside" repeating the whole.
func readV2(t *testing.T) (rest, grpc *Result) {
	t.Helper()
	var out []*Result
	for _, name := range []string{"rest.json", "grpc.json"} {
		r, err := ReadResult(filepath.Join("testdata", "v2", name))
		if err != nil {
			t.Fatal(err)
		}
		if r.Version != 2 || r.Config["rate"] == nil || r.SeriesHistograms != nil {
			t.Fatalf("%s is not the stored version 2 result: version %d, config %v", name, r.Version, r.Config)
		}
		out = append(out, r)
	}
	return out[0], out[1]
}

func TestVersion2ResultsAreStillComparedAndReported(t *testing.T) {
	rest, grpc := readV2(t)
	// Their string settings read as version 3's typed ones.
	for k, want := range map[string]any{"rate": 40.0, "timeout": 10.0, "warmup": 1.0, "tls": false, "max-inflight": 1000.0, "data": "data.json", "grpc": ""} {
		if got := rest.Config[k]; FormatSetting(got) != FormatSetting(want) || fmt.Sprintf("%T", got) != fmt.Sprintf("%T", want) {
			t.Errorf("config %q = %#v, want %#v", k, got, want)
		}
	}
	v3 := *grpc
	v3.Version, v3.Config = 3, map[string]any{"timeout": 10.0}
	var notes strings.Builder
	Compare(rest, &v3, nil).Write(&notes)
	if strings.Contains(notes.String(), "timeout") {
		t.Errorf("a version 2 and a version 3 result with the same --timeout:\n%s", notes.String())
	}
	limits, err := ParseLimits("p99=+1000%")
	if err != nil {
		t.Fatal(err)
	}
	c := Compare(rest, grpc, limits)
	if len(c.Rows) == 0 || len(c.Broken) != 0 {
		t.Fatalf("compare of two version 2 results: %+v", c)
	}
	var text strings.Builder
	WriteSummary(&text, rest)
	for _, want := range []string{"open loop at 40 req/s", "120 requests", "http_503"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary of a version 2 result has no %q:\n%s", want, text.String())
		}
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, []*Result{rest, grpc}, []string{"rest.json", "grpc.json"}, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
}

func TestMergeOfVersion2ResultsSaysWhatItCannotMergeExactly(t *testing.T) {
	rest, grpc := readV2(t)
	m, notes, err := Merge([]*Result{rest, grpc}, []string{"rest.json", "grpc.json"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != ResultVersion || m.Requests != 210 || m.Errors["http_503"] != 2 || m.Errors["grpc_UNAVAILABLE"] != 3 {
		t.Fatalf("merged: version %d, %d requests, errors %v", m.Version, m.Requests, m.Errors)
	}
	// Both started within half a second: their seconds coincide, and no
	// histogram says what a shared second's percentiles are.
	if len(m.Series) != 4 {
		t.Fatalf("series %+v", m.Series)
	}
	for _, p := range m.Series {
		if p.Requests != 70 || p.P50Us != 0 || p.P99Us != 0 || p.MaxUs == 0 {
			t.Errorf("t=%d: %+v", p.Second, p)
		}
	}
	joined := strings.Join(notes, "\n")
	for _, want := range []string{"4 seconds of the merged series have no p50/p99", "warm-up's percentiles are left out", "transport, target"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes have no %q:\n%s", want, joined)
		}
	}
	// Counts, mean, min and max of the warm-up still merge from the figures.
	wa, wb := rest.Phases.Warmup.Latency, grpc.Phases.Warmup.Latency
	wu := m.Phases.Warmup.Latency
	wantMean := (float64(wa.Count)*wa.Mean + float64(wb.Count)*wb.Mean) / float64(wa.Count+wb.Count)
	if wu.Count != wa.Count+wb.Count || wu.Count == 0 || wu.Min != min(wa.Min, wb.Min) || wu.Max != max(wa.Max, wb.Max) || abs(wu.Mean-wantMean) > 1e-9 || wu.P99 != 0 {
		t.Errorf("warm-up latency %+v from %+v and %+v", wu, wa, wb)
	}
	// Neither run had a profile window: "outside" is not the whole again.
	if m.Window != nil || m.Outside != nil {
		t.Errorf("window %v, outside %v", m.Window, m.Outside)
	}
	if m.MergedFrom[0].Config["rate"] != 40.0 || m.MergedFrom[1].Config["rate"] != 30.0 || m.MergedFrom[0].Build != nil {
		t.Errorf("merged_from %+v", m.MergedFrom)
	}
}

func TestAVersion2AndAVersion3ResultMerge(t *testing.T) {
	rest, grpc := readV2(t)
	grpc.Version = 3 // counts the same requests: version 3 only adds to the file
	grpc.StartedAt = grpc.StartedAt.Add(2 * time.Second)
	m, _, err := Merge([]*Result{rest, grpc}, []string{"rest.json", "grpc.json"})
	if err != nil {
		t.Fatal(err)
	}
	// Shifted two seconds, the gRPC run's first two seconds are its own:
	// its figures stand; the shared ones have none.
	for _, p := range m.Series {
		alone := p.Second < 2 || p.Second >= 4
		if alone != (p.P50Us != 0) {
			t.Errorf("t=%d: %+v", p.Second, p)
		}
	}
}

func abs(x float64) float64 { return max(x, -x) }
