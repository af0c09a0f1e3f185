package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
)

func TestPayloadOffsetStartsTheRoundRobinThere(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		_, _ = io.WriteString(w, `{"predictions": [1.0]}`)
	}))
	defer srv.Close()
	data := writeFile(t, "three.jsonl", "{\"instances\": [[1]]}\n{\"instances\": [[2]]}\n{\"instances\": [[3]]}\n")
	_, err := Run(context.Background(), Config{URL: srv.URL + "/v1/models/m:predict", DataPath: data, PayloadOffset: 4, Timeout: 5 * time.Second,
		Plan: load.Plan{Concurrency: 1, Requests: 3}, RESTEngine: load.EngineGoroutines})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The preflight and the three requests: from payload 4 mod 3 = 1 (the
	// second line) on, round-robin.
	want := []string{`{"instances": [[2]]}`, `{"instances": [[2]]}`, `{"instances": [[3]]}`, `{"instances": [[1]]}`}
	if len(bodies) != len(want) {
		t.Fatalf("bodies %q", bodies)
	}
	for i := range want {
		if bodies[i] != want[i] {
			t.Fatalf("bodies %q, want %q", bodies, want)
		}
	}
}
