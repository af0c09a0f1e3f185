package cluster

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// pathResults is where a coordinator serves its output directory after a
// run: GET, the token as a bearer credential, a gzipped tar of the
// directory. pathResultsAck is where the fetcher says it has the whole
// archive (POST, the token): the coordinator then stops serving.
const (
	pathResults    = "/v1/results"
	pathResultsAck = "/v1/results/ack"
)

// ServeResults serves dir as a .tar.gz at /v1/results on ln to whoever
// presents token, as many times as asked, until a fetch has written the
// whole archive and the fetcher acknowledged it (POST /v1/results/ack),
// for at most wait, or until ctx is done: how results leave a pod whose
// image has no shell or tar (kubectl cp needs both). A fetch cut short
// (a dropped port-forward) does not end it: the data is known delivered
// only when the fetcher says so. It closes ln.
func ServeResults(ctx context.Context, ln net.Listener, token, dir string, wait time.Duration, log io.Writer) error {
	logf := func(format string, args ...any) {
		if log != nil {
			fmt.Fprintf(log, "loadprof coordinator: "+format+"\n", args...)
		}
	}
	acked := make(chan struct{})
	var mu sync.Mutex
	written, ackedOnce := false, false
	mux := http.NewServeMux()
	mux.HandleFunc(pathResults, guarded(http.MethodGet, token, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="loadprof-results.tar.gz"`)
		if err := writeTarGz(w, dir); err != nil {
			logf("serving the results to %s: %v", r.RemoteAddr, err)
			return
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		mu.Lock()
		written = true
		mu.Unlock()
		logf("the results were sent whole to %s; waiting for POST %s", r.RemoteAddr, pathResultsAck)
	}))
	mux.HandleFunc(pathResultsAck, guarded(http.MethodPost, token, nil, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !written {
			writeError(w, http.StatusConflict, "no fetch of %s has been sent whole yet: fetch it first", pathResults)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
		if !ackedOnce {
			ackedOnce = true
			close(acked)
		}
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logf("serving %s at http://%s%s for up to %v (until POST %s after a whole fetch)", dir, ln.Addr(), pathResults, wait, pathResultsAck)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case <-acked:
	case <-timer.C:
		mu.Lock()
		if written {
			err = fmt.Errorf("--serve-results: the results were fetched, but nobody acknowledged them (POST %s) within --serve-for %v", pathResultsAck, wait)
		} else {
			err = fmt.Errorf("--serve-results: nobody fetched the results whole within --serve-for %v", wait)
		}
		mu.Unlock()
	case <-ctx.Done():
	case err = <-served:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if srv.Shutdown(sctx) != nil {
		srv.Close()
	}
	return err
}

// writeTarGz writes the regular files under dir as a gzipped tar, with
// paths relative to dir.
func writeTarGz(w io.Writer, dir string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
