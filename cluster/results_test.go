package cluster

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A fetch cut short does not end the serving: the results stay until a
// fetcher has them whole and says so.
func TestServeResultsKeepsServingUntilTheFetchIsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "result.json"), []byte(`{"requests": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	base := "http://" + ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- ServeResults(context.Background(), ln, testToken, dir, time.Minute, nil) }()
	call := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp
	}
	resp := call(http.MethodPost, pathResultsAck)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("an acknowledgement before any fetch: %d, want 409", resp.StatusCode)
	}
	// A fetcher that reads 20 bytes and hangs up.
	resp = call(http.MethodGet, pathResults)
	io.CopyN(io.Discard, resp.Body, 20)
	resp.Body.Close()
	select {
	case err := <-done:
		t.Fatalf("serving ended after a fetch cut short: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	resp = call(http.MethodGet, pathResults)
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(gz).Next()
	if err != nil || h.Name != "result.json" {
		t.Fatalf("the second fetch: %v %v", h, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp = call(http.MethodPost, pathResultsAck)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("acknowledgement: %d", resp.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still serving after the acknowledgement")
	}
}
