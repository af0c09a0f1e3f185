package bench

import (
	"errors"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
)

// checkLogDir checks, before any load is sent, that the profile's trace
// store can be made: the logdir may not exist yet but must be creatable.
func checkLogDir(cfg Config) error {
	if cfg.Profile != nil {
		if dir := cfg.Profile.Options.LogDir; dir != "" {
			return outfile.CheckDir("profile.Options.LogDir", dir, profile.PluginDir(dir))
		}
	}
	return nil
}

// finishOutputs closes the interval log and says which outputs of the run
// failed: the log, and a trace that was captured but could not be written.
func finishOutputs(hlog *report.HlogWriter, win *window) error {
	var errs []error
	if hlog != nil {
		errs = append(errs, hlog.Close())
	}
	var oe *outfile.Error
	if win != nil && errors.As(win.err, &oe) {
		errs = append(errs, win.err)
	}
	return errors.Join(errs...)
}
