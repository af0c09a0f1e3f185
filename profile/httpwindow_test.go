package profile

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The control's answers become errors that say what to do: 404 a server
// without its profiler, 409 a window already open; the prefix goes in
// start's body.
func TestHTTPProfilerAnswers(t *testing.T) {
	var gotPrefix string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("%s %s, want POST", r.Method, r.URL.Path)
		}
		if r.URL.Path == "/start_profile" {
			var body struct {
				Prefix string `json:"profile_prefix"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				t.Errorf("start body: %v", err)
			}
			gotPrefix = body.Prefix
		}
		w.WriteHeader(status)
		if status != http.StatusOK {
			w.Write([]byte(`{"error":"no"}`))
		}
	}))
	defer srv.Close()
	p := &HTTPProfiler{Base: srv.URL}
	if err := p.Start(context.Background(), "loadprof-x"); err != nil || gotPrefix != "loadprof-x" {
		t.Fatalf("start: %v, prefix %q", err, gotPrefix)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	status = http.StatusNotFound
	if err := p.Start(context.Background(), "x"); !errors.Is(err, ErrNoProfiler) || !strings.Contains(err.Error(), "--profiler-config") {
		t.Errorf("404: %v", err)
	}
	status = http.StatusConflict
	if err := p.Start(context.Background(), "x"); !errors.Is(err, ErrWindowOpen) || !strings.Contains(err.Error(), "already open") {
		t.Errorf("409: %v", err)
	}
	if err := p.Start(context.Background(), "x"); StopOwed(err) {
		t.Errorf("409 (another client's session): a stop is owed: %v", err)
	}
	status = http.StatusBadRequest
	if err := p.Start(context.Background(), "x"); !errors.Is(err, ErrStartRefused) || StopOwed(err) {
		t.Errorf("400: %v", err)
	}
	status = http.StatusInternalServerError
	if err := p.Start(context.Background(), "x"); err == nil || !StopOwed(err) {
		t.Errorf("500 on start (the engine may have started): no stop owed: %v", err)
	}
	if err := p.Stop(context.Background()); err == nil || !strings.Contains(err.Error(), "status 500") {
		t.Errorf("500: %v", err)
	}
}

func TestHTTPBase(t *testing.T) {
	for _, c := range []struct{ given, target, want, err string }{
		{"", "http://10.0.0.1:8000/v1/chat/completions", "http://10.0.0.1:8000", ""},
		{"", "https://h:443/v1/completions?x=1", "https://h:443", ""},
		{"h:9000", "http://t:1/v1/completions", "http://h:9000", ""},
		{"http://h:9000/", "", "http://h:9000", ""},
		{"http://h:9000/start_profile", "", "", "no path"},
		{"grpc://h:1", "", "", "want http"},
	} {
		got, err := HTTPBase(c.given, c.target)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("HTTPBase(%q, %q): %v, want an error with %q", c.given, c.target, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("HTTPBase(%q, %q) = %q, %v; want %q", c.given, c.target, got, err, c.want)
		}
	}
}
