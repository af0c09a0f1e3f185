package report

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/internal/outfile"
)

// A NaN or Inf anywhere in a result is written as null with a warning
// naming it; the file is written, and the result is left as it was.
func TestANonFiniteFigureIsWrittenAsNull(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	r := &Result{Requests: 10, Server: &ServerReport{ServerWindow: ServerWindow{Window: "steady", ServerFigures: ServerFigures{
		Requests: &nan, LatencyMs: &ServerLatency{Family: "f", Count: 3, Mean: inf}}}},
		Config: map[string]any{"odd": math.Inf(-1)}}
	path := filepath.Join(t.TempDir(), "result.json")
	var warn bytes.Buffer
	if err := WriteJSONOutputWarn("--out", path, r, &warn); err != nil {
		t.Fatalf("write: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("result.json does not decode: %v", err)
	}
	server := back["server"].(map[string]any)
	if v, ok := server["requests"]; !ok || v != nil {
		t.Errorf("server.requests = %v, want null", v)
	}
	if v := server["latency_ms"].(map[string]any)["mean"]; v != nil {
		t.Errorf("server.latency_ms.mean = %v, want null", v)
	}
	for _, want := range []string{"server.requests", "server.latency_ms.mean", "config.odd"} {
		if !strings.Contains(warn.String(), want) {
			t.Errorf("warning %q does not name %s", warn.String(), want)
		}
	}
	if !math.IsNaN(*r.Server.Requests) || !math.IsInf(r.Server.LatencyMs.Mean, 1) || !math.IsInf(r.Config["odd"].(float64), -1) {
		t.Error("writing changed the result")
	}
}

// A value that cannot be encoded all the same is a failed output, which
// the commands say was NOT written.
func TestAResultThatDoesNotEncodeIsAFailedOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "result.json")
	err := WriteJSONOutputWarn("--out", path, map[string]any{"c": make(chan int)}, nil)
	if _, failed := outfile.Failed(err)[path]; !failed {
		t.Fatalf("error %v: want an *outfile.Error for %s", err, path)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("the file was written")
	}
}
