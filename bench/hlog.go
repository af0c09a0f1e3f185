package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// hlogWriter streams one interval histogram per second into an HdrHistogram
// interval log (the format HdrHistogram's log tools read), values in
// microseconds. It writes to a temporary file that is renamed into place
// when the run ends, so a reader never sees half a log.
type hlogWriter struct {
	path   string
	f      *os.File
	bw     *bufio.Writer
	lw     *hdrhistogram.HistogramLogWriter
	origin time.Time
	err    error
}

func newHlogWriter(path string, origin time.Time) (*hlogWriter, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("--hlog %s: %w", path, err)
	}
	w := &hlogWriter{path: path, f: f, bw: bufio.NewWriterSize(f, 64<<10), origin: origin}
	w.lw = hdrhistogram.NewHistogramLogWriter(w.bw)
	ms := origin.UnixMilli()
	w.lw.SetBaseTime(ms)
	for _, step := range []func() error{
		func() error {
			return w.lw.OutputComment("[Logged with loadprof " + Version + "; values in microseconds]")
		},
		w.lw.OutputLogFormatVersion,
		func() error { return w.lw.OutputStartTime(ms) },
		func() error { return w.lw.OutputBaseTime(ms) },
		w.lw.OutputLegend,
	} {
		if err := step(); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("--hlog %s: %w", path, err)
		}
	}
	return w, nil
}

// Interval writes second's histogram.
func (w *hlogWriter) Interval(second int, h *hdrhistogram.Histogram) {
	if w.err != nil {
		return
	}
	start := w.origin.UnixMilli() + int64(second)*1000
	h.SetStartTimeMs(start)
	h.SetEndTimeMs(start + 1000)
	w.err = w.lw.OutputIntervalHistogram(h)
}

// close finishes the log and renames it into place.
func (w *hlogWriter) close() error {
	err := w.err
	if ferr := w.bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(w.f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.path)
	}
	if err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("--hlog %s: %w", w.path, err)
	}
	return nil
}
