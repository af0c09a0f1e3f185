package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMergePrintsEachInputAndWhatItCouldNotMergeAndKeepsTheirSettings(t *testing.T) {
	// Two version 2 results (a REST and a gRPC run made together), as an
	// older loadprof wrote them: string config values, read as version 3's.
	rest, grpc := filepath.Join("..", "..", "report", "testdata", "v2", "rest.json"), filepath.Join("..", "..", "report", "testdata", "v2", "grpc.json")
	out := filepath.Join(t.TempDir(), "all.json")
	code, stdout, stderr := loadprof(t, "merge", rest, grpc, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"loadprof merge: 2 runs made at the same time (started within 403 ms), open loop",
		rest + "  REST http://127.0.0.1:18601/v1/models/test_model:predict, 40 req/s offered; started 01:39:02.106: 120 requests, 40.0 req/s",
		grpc + "  GRPC grpc://127.0.0.1:18600 model test_model, 30 req/s offered; started 01:39:02.510: 90 requests, 30.0 req/s",
		// 210 requests over the merged steady span (the runs overlap, 403 ms
		// apart), not the two paces added (70).
		"steady       3.4s       210 requests      5 errors  62.2 req/s",
		`note: the runs differ in transport, target: the merged result says "mixed" there`,
		"note: 4 seconds of the merged series have no p50/p99",
		"merged result written to " + out,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("merge printed no %q:\n%s", want, stdout)
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Version    int            `json:"version"`
		Transport  string         `json:"transport"`
		Config     map[string]any `json:"config"`
		MergedFrom []struct {
			File      string         `json:"file"`
			Transport string         `json:"transport"`
			Config    map[string]any `json:"config"`
		} `json:"merged_from"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.Version != 3 || m.Transport != "mixed" || m.Config["rate"] != "mixed" || m.Config["duration"] != 3.0 || len(m.MergedFrom) != 2 {
		t.Fatalf("merged: %s", raw[:min(len(raw), 600)])
	}
	if in := m.MergedFrom[1]; in.File != grpc || in.Transport != "grpc" || in.Config["grpc"] != "127.0.0.1:18600" || in.Config["rate"] != 30.0 || in.Config["tls"] != false {
		t.Fatalf("merged_from[1]: %+v", in)
	}
	// The merged file is a result like any: report reads it.
	if code, stdout, stderr := loadprof(t, "report", out); code != 0 || !strings.Contains(stdout, "loadprof merge: 2 runs") {
		t.Fatalf("report of the merge: exit %d\n%s%s", code, stdout, stderr)
	}
}
