package bench

import (
	"io"
	"testing"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/report"
)

// writeResult writes res to path as result.json, as the command does
// (Run writes no files of its own).
func writeResult(t *testing.T, res *report.Result, path string) {
	t.Helper()
	if res == nil {
		t.Fatal("no result to write")
	}
	if err := report.WriteJSONOutput("--out", path, res); err != nil {
		t.Fatal(err)
	}
}

// hlogTo is an IntervalLog that streams to path, as the command's --hlog.
func hlogTo(path string) func() (io.WriteCloser, error) {
	return func() (io.WriteCloser, error) {
		f, err := outfile.Stream("--hlog", path)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
}
