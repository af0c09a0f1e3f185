package bench

import (
	"context"
	"io"
	"time"

	"github.com/loadprof/loadprof/report"
)

// RemoteMetrics scrapes the server's metrics (Config.Metrics) for a run
// whose load other processes send: a cluster coordinator's workers. The
// caller marks the phases' edges (servermetrics.MarkSteadyStart, ...) as
// it knows them, then Finish puts the server's figures beside the merged
// result's.
type RemoteMetrics struct{ m *metricsRun }

// StartRemoteMetrics starts scraping cfg.Metrics; nil (whose methods do
// nothing) without it.
func StartRemoteMetrics(ctx context.Context, cfg Config) (*RemoteMetrics, error) {
	if cfg.Metrics != nil {
		if err := cfg.Metrics.check(); err != nil {
			return nil, &InputError{err}
		}
	}
	m, err := startMetrics(ctx, cfg)
	if err != nil || m == nil {
		return nil, err
	}
	return &RemoteMetrics{m: m}, nil
}

// Mark sets mark name on every endpoint now.
func (r *RemoteMetrics) Mark(name string) {
	if r != nil {
		r.m.mark(name)
	}
}

// Finish takes the last scrapes and puts the server's figures in res,
// whose clock starts at origin; a warning line goes to warnings for each
// endpoint that failed.
func (r *RemoteMetrics) Finish(res *report.Result, origin time.Time, warnings io.Writer) {
	if r != nil {
		r.m.hurry.loadEnded() // the workers' results are in res
		r.m.finish(res, origin, warnings)
	}
}

// Stop stops scraping without a report: the run never started.
func (r *RemoteMetrics) Stop() {
	if r != nil {
		r.m.close()
	}
}
