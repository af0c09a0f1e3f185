package profile

// vLLM's HTTP profiler control, the second window backend: POST
// /start_profile opens the server's torch profiler window and POST
// /stop_profile closes it, answering once the server has written its trace
// under its own torch_profiler_dir. Nothing comes back over the wire: the
// client can only say which files the server wrote, by the prefix it gave.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// BackendVLLMHTTP names the HTTP profiler control in result.json.
const BackendVLLMHTTP = "vllm_http"

// HTTPWindow is one window opened through a server's /start_profile and
// closed through its /stop_profile, as result.json records it.
type HTTPWindow struct {
	Backend string `json:"backend"`
	URL     string `json:"url"`    // the server's base URL
	Prefix  string `json:"prefix"` // profile_prefix sent with /start_profile
	// Started is when /start_profile answered 200; zero (left out of
	// result.json) when it did not.
	Started time.Time `json:"started,omitzero"`
	// StartMs is how long /start_profile took to answer, or how long
	// loadprof waited for it.
	StartMs float64 `json:"start_ms"`
	// Late: /start_profile had not answered when the window had to be
	// open (StartBound), so no window was opened in the load; the stop
	// was still sent.
	Late bool `json:"late,omitempty"`
	// StopSent is when /stop_profile was sent, Stopped when it answered:
	// the server writes its trace between the two. StopMs is how long it
	// took to answer, or how long loadprof waited for an answer that did
	// not come (Stopped zero). Each is left out of result.json when
	// there was none: no stop sent, no answer.
	StopSent time.Time `json:"stop_sent,omitzero"`
	Stopped  time.Time `json:"stopped,omitzero"`
	StopMs   float64   `json:"stop_ms,omitzero"`
	// Interrupted: the run was interrupted inside the window, which was
	// closed early.
	Interrupted bool `json:"interrupted,omitempty"`
	// Trace says where the server wrote its files, on its own disk; empty
	// when the stop failed.
	Trace string `json:"trace,omitempty"`
}

// TraceHint is where a vLLM server writes a window's trace files.
func TraceHint(prefix string) string {
	return fmt.Sprintf("under its torch_profiler_dir, files %s_*.pt.trace.json.gz", prefix)
}

// HTTPRunPrefix names a run's window for /start_profile's profile_prefix.
func HTTPRunPrefix(t time.Time) string {
	return "loadprof-" + t.UTC().Format("20060102T150405Z")
}

// HTTPProfiler talks to one server's profiler control.
type HTTPProfiler struct {
	Base   string // scheme://host:port, no path
	Client *http.Client
}

// ErrNoProfiler is a server that has no /start_profile: vLLM without its
// profiler.
var ErrNoProfiler = errors.New("the server runs without its profiler: start vLLM with --profiler-config '{\"profiler\":\"torch\",\"torch_profiler_dir\":\"/abs/dir\"}' (or VLLM_TORCH_PROFILER_DIR on older versions)")

// ErrWindowOpen is a server whose profiler window is already open: vLLM's
// 409. The session is another client's (or an earlier run's that was
// never stopped), so loadprof leaves it alone.
var ErrWindowOpen = errors.New("a profile window is already open on the server (another client started one; it must call /stop_profile first; loadprof did not stop it)")

// ErrStartRefused is a /start_profile the server refused without starting
// anything (a 4xx): no stop is owed.
var ErrStartRefused = errors.New("the server refused the start")

// StopOwed tells whether a /start_profile that ended with err may have
// started the server's profiler, so that a /stop_profile is owed: vLLM
// starts it even when its caller has gone (a timeout), and a 5xx may
// come after the engine began. A 4xx (404, 409, 400) started nothing.
func StopOwed(err error) bool {
	return err == nil || !(errors.Is(err, ErrNoProfiler) || errors.Is(err, ErrWindowOpen) || errors.Is(err, ErrStartRefused))
}

// HTTPBase makes the profiler's base URL from a --profile-http value or,
// when that is empty, from the target's URL: scheme, host and port only.
func HTTPBase(given, target string) (string, error) {
	raw := given
	if raw == "" {
		raw = target
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%s: want http://HOST:PORT", given)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", given)
	}
	if given != "" && u.Path != "" && u.Path != "/" {
		return "", fmt.Errorf("%s: give HOST:PORT or http://HOST:PORT, no path (loadprof adds /start_profile and /stop_profile)", given)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Start opens the window with the given prefix.
func (p *HTTPProfiler) Start(ctx context.Context, prefix string) error {
	body, _ := json.Marshal(map[string]string{"profile_prefix": prefix})
	status, msg, err := p.post(ctx, "/start_profile", body)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("profile %s/start_profile: 404: %w", p.Base, ErrNoProfiler)
	case http.StatusConflict:
		return fmt.Errorf("profile %s/start_profile: 409: %w", p.Base, ErrWindowOpen)
	}
	if status >= 400 && status < 500 {
		return fmt.Errorf("profile %s/start_profile: status %d: %s: %w", p.Base, status, msg, ErrStartRefused)
	}
	return fmt.Errorf("profile %s/start_profile: status %d: %s", p.Base, status, msg)
}

// Stop closes the window; it returns once the server has written its trace
// (seconds for a busy server), or when ctx ends. vLLM answers 200 to a stop
// with no session open too.
func (p *HTTPProfiler) Stop(ctx context.Context) error {
	status, msg, err := p.post(ctx, "/stop_profile", nil)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("profile %s/stop_profile: 404: %w", p.Base, ErrNoProfiler)
	}
	return fmt.Errorf("profile %s/stop_profile: status %d: %s", p.Base, status, msg)
}

// maxControlAnswer bounds the part of an answer kept for a message.
const maxControlAnswer = 512

func (p *HTTPProfiler) post(ctx context.Context, path string, body []byte) (int, string, error) {
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Base+path, rd)
	if err != nil {
		return 0, "", fmt.Errorf("profile %s%s: %w", p.Base, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("profile %s%s: %w", p.Base, path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxControlAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.TrimSpace(string(msg)), nil
}
