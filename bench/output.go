package bench

import (
	"errors"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
)

// WriteOutput writes data to an output file the way every output of
// loadprof is written (see package outfile): a regular file is replaced
// atomically, a device or fifo is written in place, a symlink is followed,
// "-" is standard output. flag names the file in errors; a failed write is
// an *outfile.Error.
func WriteOutput(flag, path string, data []byte) error { return outfile.Write(flag, path, data) }

// WriteFileAtomic is WriteOutput with no flag to name the file.
func WriteFileAtomic(path string, data []byte) error { return outfile.Write("", path, data) }

// CheckOutputs checks, before any load is sent, that every output of cfg
// (and more, the command's own) can be written: the directories exist and
// take files, nothing is in the way, no two outputs are one file. The
// profile's logdir may not exist yet but must be creatable.
func CheckOutputs(cfg Config, more ...outfile.Output) error {
	outs := append([]outfile.Output{{Flag: "--out", Path: cfg.OutPath}, {Flag: "--hgrm", Path: cfg.HGRMPath}, {Flag: "--hlog", Path: cfg.HlogPath}}, more...)
	if err := outfile.CheckAll(outs...); err != nil {
		return err
	}
	if cfg.Profile != nil {
		if dir := cfg.Profile.Options.LogDir; dir != "" {
			return outfile.CheckDir("--logdir", dir, profile.PluginDir(dir))
		}
	}
	return nil
}

// UsesStdout reports whether an output of cfg (or more) goes to standard
// output, where the human summary must then not go.
func UsesStdout(cfg Config, more ...string) bool {
	for _, p := range append([]string{cfg.OutPath, cfg.HGRMPath, cfg.HlogPath}, more...) {
		if outfile.IsStdout(p) {
			return true
		}
	}
	return false
}

// writeOutputs finishes the interval log and writes result.json and the
// .hgrm; every one is tried, and the error names each that failed. A
// trace that was captured but could not be written is among them.
func writeOutputs(cfg Config, res *report.Result, hlog *report.HlogWriter, win *window) error {
	var errs []error
	if hlog != nil {
		errs = append(errs, hlog.Close())
	}
	if cfg.OutPath != "" {
		errs = append(errs, report.WriteJSONOutput("--out", cfg.OutPath, res))
	}
	if cfg.HGRMPath != "" {
		h, err := report.DecodeHistogram(res.Histogram)
		if err == nil {
			err = report.WriteHGRMOutput("--hgrm", cfg.HGRMPath, h)
		}
		errs = append(errs, err)
	}
	var oe *outfile.Error
	if win != nil && errors.As(win.err, &oe) {
		errs = append(errs, win.err)
	}
	return errors.Join(errs...)
}
