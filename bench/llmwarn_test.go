package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
)

// startStreams serves every chat request the event stream events.
func startStreams(t *testing.T, events ...string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range events {
			_, _ = io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1/chat/completions"
}

// TestResultCountsStreamsWithoutOutputAndUsageBelowTheChunks checks that
// a run's result.json counts the streams that completed without output
// and the answers whose usage is below their chunks, and that a merge
// adds them up.
func TestResultCountsStreamsWithoutOutputAndUsageBelowTheChunks(t *testing.T) {
	const requests = 3
	empty := startStreams(t, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`+"\n\n", "data: [DONE]\n\n")
	content := `data: {"choices":[{"index":0,"delta":{"content":"w"}}]}` + "\n\n"
	below := startStreams(t, content, content, content, content, `data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1}}`+"\n\n", "data: [DONE]\n\n")
	run := func(url string) *report.Result {
		res, err := Run(context.Background(), Config{URL: url, DataPath: writeFile(t, "chat.json", chatBody), Timeout: 5 * time.Second,
			Plan: load.Plan{Concurrency: 1, Requests: requests}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	count := func(p *int64) string {
		if p == nil {
			return "absent"
		}
		return fmt.Sprint(*p)
	}
	a, b := run(empty), run(below)
	if count(a.StreamsWithoutOutput) != "3" || a.UsageBelowChunks != nil {
		t.Errorf("empty streams: streams_without_output %s, usage_below_chunks %s; want 3 and absent", count(a.StreamsWithoutOutput), count(a.UsageBelowChunks))
	}
	if count(b.UsageBelowChunks) != "3" || b.StreamsWithoutOutput != nil || *b.OutputTokens != 4*requests {
		t.Errorf("usage below: usage_below_chunks %s, streams_without_output %s, output %d; want 3, absent, %d",
			count(b.UsageBelowChunks), count(b.StreamsWithoutOutput), *b.OutputTokens, 4*requests)
	}
	m, _, err := report.Merge([]*report.Result{a, b}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	if count(m.StreamsWithoutOutput) != "3" || count(m.UsageBelowChunks) != "3" {
		t.Errorf("merged: streams_without_output %s, usage_below_chunks %s; want 3 and 3", count(m.StreamsWithoutOutput), count(m.UsageBelowChunks))
	}
}
