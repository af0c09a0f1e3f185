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
	"time"
)

// pathResults is where a coordinator serves its output directory after a
// run: GET, the token as a bearer credential, a gzipped tar of the
// directory.
const pathResults = "/v1/results"

// ServeResults serves dir as a .tar.gz at /v1/results on ln to whoever
// presents token, until it has been fetched whole once, for at most
// wait, or until ctx is done: how results leave a pod whose image has no
// shell or tar (kubectl cp needs both). It closes ln.
func ServeResults(ctx context.Context, ln net.Listener, token, dir string, wait time.Duration, log io.Writer) error {
	fetched := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc(pathResults, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "GET only")
			return
		}
		if !tokenOK(r, token) {
			writeError(w, http.StatusUnauthorized, "wrong or missing token (--token or %s)", TokenEnv)
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="loadprof-results.tar.gz"`)
		if err := writeTarGz(w, dir); err != nil {
			if log != nil {
				fmt.Fprintf(log, "loadprof coordinator: serving the results: %v\n", err)
			}
			return
		}
		select {
		case fetched <- struct{}{}:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if log != nil {
		fmt.Fprintf(log, "loadprof coordinator: serving %s at http://%s%s for up to %v (one fetch ends it)\n", dir, ln.Addr(), pathResults, wait)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case <-fetched:
	case <-timer.C:
		err = fmt.Errorf("--serve-results: nobody fetched the results within --serve-for %v", wait)
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
