package bench

import (
	"bufio"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/internal/outfile"
)

// hlogWriter streams one interval histogram per second into an HdrHistogram
// interval log (the format HdrHistogram's log tools read), values in
// microseconds. It writes through outfile, so a regular file appears whole
// when the run ends and a reader never sees half a log.
type hlogWriter struct {
	out    *outfile.File
	bw     *bufio.Writer
	lw     *hdrhistogram.HistogramLogWriter
	origin time.Time
	err    error
}

func newHlogWriter(path string, origin time.Time) (*hlogWriter, error) {
	out, err := outfile.Create("--hlog", path)
	if err != nil {
		return nil, err
	}
	w := &hlogWriter{out: out, bw: bufio.NewWriterSize(out, 64<<10), origin: origin}
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
			out.Abort()
			return nil, err
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

// close finishes the log and puts it in place; on an error the file that
// was there stays.
func (w *hlogWriter) close() error {
	err := w.err
	if ferr := w.bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		w.out.Abort()
		return err
	}
	return w.out.Commit()
}
