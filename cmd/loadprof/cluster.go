package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/cluster"
	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/report"
	"github.com/spf13/pflag"
)

// clusterFlags are the flags of `loadprof run` that make it a coordinator.
type clusterFlags struct {
	workers                    *int
	listen, token, clockAction *string
	joinTimeout, maxOffset     *time.Duration
	lostAfter, serveFor        *time.Duration
	startTolerance             *time.Duration
	serveResults               *string
}

func addClusterFlags(fs *pflag.FlagSet) *clusterFlags {
	return &clusterFlags{
		workers:        fs.Int("workers", 0, "coordinate this many workers ('loadprof worker --join'): they share the load (rate or concurrency split evenly), start together, and their histograms are merged exactly; this process opens the profile window"),
		listen:         fs.String("listen", ":7070", "with --workers: the address workers join at"),
		token:          fs.String("token", "", "with --workers: the secret workers must present (default $"+cluster.TokenEnv+")"),
		joinTimeout:    fs.Duration("join-timeout", cluster.DefaultJoinTimeout, "with --workers: how long to wait for every worker to join; the workers that joined by then share the whole load, the others are reported missing (exit 5)"),
		maxOffset:      fs.Duration("max-clock-offset", cluster.DefaultMaxClockOffset, "with --workers: refuse a worker whose clock is further off than this from the coordinator's"),
		clockAction:    fs.String("clock-offset", "refuse", "with --workers: what a clock beyond --max-clock-offset gets: refuse, or warn (let in; every time is corrected by the measured offset anyway)"),
		lostAfter:      fs.Duration("worker-lost-after", cluster.DefaultLostAfter, "with --workers: a worker silent this long mid-run counts as lost (left out of the merged figures; the latencies it had sent are kept in its workers[] entry)"),
		startTolerance: fs.Duration("worker-start-tolerance", cluster.DefaultStartTolerance, "with --workers: a worker that begins later than this after the common start (beyond its clock's uncertainty) is reported late (exit 5); its requests are still merged"),
		serveResults:   fs.String("serve-results", "", "with --workers: after the run, serve this directory (where --out, --html and --logdir wrote) as a .tar.gz at http://LISTEN/v1/results to whoever has the token, until a whole fetch is acknowledged (POST /v1/results/ack): how results leave a Kubernetes pod"),
		serveFor:       fs.Duration("serve-for", 30*time.Minute, "with --serve-results: how long to wait for the fetch and its acknowledgement"),
	}
}

// clusterOptions are a coordinator's settings, checked.
type clusterOptions struct {
	cfg      cluster.Config // without Run and Listener
	listen   string
	serveDir string // --serve-results; "" for none
	serveFor time.Duration
}

// options reads the cluster flags; nil when the run is not coordinated.
func (f *clusterFlags) options(fs *pflag.FlagSet) (*clusterOptions, error) {
	if !fs.Changed("workers") {
		for _, name := range []string{"listen", "token", "join-timeout", "max-clock-offset", "clock-offset", "worker-lost-after", "worker-start-tolerance", "serve-results", "serve-for"} {
			if fs.Changed(name) {
				return nil, fmt.Errorf("--%s goes with --workers N", name)
			}
		}
		return nil, nil
	}
	if err := firstError(atLeast("--workers", *f.workers, 1), atMost("--workers", *f.workers, cluster.MaxWorkers, cluster.MaxWorkersWhy), positiveDuration("--join-timeout", *f.joinTimeout),
		positiveDuration("--max-clock-offset", *f.maxOffset), positiveDuration("--worker-lost-after", *f.lostAfter), positiveDuration("--worker-start-tolerance", *f.startTolerance)); err != nil {
		return nil, err
	}
	if min := cluster.MinLostAfter; *f.lostAfter < min {
		return nil, fmt.Errorf("--worker-lost-after %v: must be at least %v (twice the workers' heartbeat interval %v; a shorter one counts healthy workers as lost)", *f.lostAfter, min, cluster.DefaultHeartbeat)
	}
	token := *f.token
	if token == "" {
		token = os.Getenv(cluster.TokenEnv)
	}
	if token == "" {
		return nil, fmt.Errorf("--workers needs a shared token: --token or %s (workers give the same)", cluster.TokenEnv)
	}
	if *f.clockAction != "refuse" && *f.clockAction != "warn" {
		return nil, fmt.Errorf("--clock-offset %q: want refuse or warn", *f.clockAction)
	}
	if err := positiveDuration("--serve-for", *f.serveFor); err != nil {
		return nil, err
	}
	return &clusterOptions{listen: *f.listen, serveDir: *f.serveResults, serveFor: *f.serveFor, cfg: cluster.Config{
		Workers: *f.workers, Token: token, JoinTimeout: *f.joinTimeout, MaxClockOffset: *f.maxOffset,
		WarnClockOffset: *f.clockAction == "warn", LostAfter: *f.lostAfter, StartTolerance: *f.startTolerance,
	}}, nil
}

// checkWithRun refuses what a coordinated run cannot do yet.
func (o *clusterOptions) checkWithRun(opts *runOptions) error {
	switch {
	case opts.sweep != nil && opts.sweep.closed && opts.sweep.steps.Values[0] < float64(o.cfg.Workers):
		return fmt.Errorf("--concurrency %g with --workers %d: every worker needs at least one request in flight at every step", opts.sweep.steps.Values[0], o.cfg.Workers)
	}
	return nil
}

// open listens and waits for the workers of a sweep, whose steps then
// run on them.
func (o *clusterOptions) open(ctx context.Context, run bench.Config, log io.Writer) (*cluster.Session, error) {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, &bench.InputError{Err: fmt.Errorf("--listen %s: %w", o.listen, err)}
	}
	cfg := o.cfg
	cfg.Run, cfg.Listener, cfg.Log = run, ln, log
	return cluster.Open(ctx, cfg)
}

// coordinate listens and runs cfg with the workers.
func (o *clusterOptions) coordinate(ctx context.Context, run bench.Config, log io.Writer) (*report.Result, error) {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, &bench.InputError{Err: fmt.Errorf("--listen %s: %w", o.listen, err)}
	}
	cfg := o.cfg
	cfg.Run, cfg.Listener, cfg.Log, cfg.Progress = run, ln, log, run.Progress
	session, err := cluster.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer session.Close()
	defer stopWorkersOnQuit(session)()
	return session.Run(ctx, cfg.Run)
}

// stopWorkersOnQuit makes a second interrupt, which ends the process,
// tell the session's workers to stop first (a moment at most); remove
// undoes it.
func stopWorkersOnQuit(s *cluster.Session) (remove func()) {
	return beforeQuit(func() { s.StopWorkers(quitHookBound) })
}

// serveResults serves --serve-results after the run, whatever its exit
// code (a run that lacks a worker still has a result to fetch); a
// failure to serve is reported but changes the code only of a run that
// succeeded.
func (o *clusterOptions) serveResults(ctx context.Context, code int, stderr io.Writer) int {
	if o.serveDir == "" || ctx.Err() != nil {
		return code
	}
	ln, err := net.Listen("tcp", o.listen)
	if err == nil {
		err = cluster.ServeResults(ctx, ln, o.cfg.Token, o.serveDir, o.serveFor, stderr)
	}
	if err != nil {
		printError(stderr, "run", err)
		if code == exitOK {
			code = exitWrite
		}
	}
	return code
}

func workerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	join := fs.String("join", "", "the coordinator's address HOST:PORT (its run --listen)")
	token := fs.String("token", "", "the run's shared secret (default $"+cluster.TokenEnv+")")
	name := fs.String("name", "", "how the coordinator names this worker (default: the host name)")
	joinTimeout := fs.Duration("join-timeout", cluster.DefaultWorkerJoinTimeout, "how long to keep trying to reach the coordinator and wait for the start")
	out := fs.String("out", "", "also write this worker's own result (its share, on its own clock) as JSON to this file")
	quiet := fs.BoolP("quiet", "q", false, "no log lines on stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof worker --join HOST:PORT [--token T]\n\nJoins a coordinated run ('loadprof run ... --workers N'), runs the share of the load it is given, sends its result back and exits.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if *join == "" {
		fmt.Fprintln(stderr, "loadprof worker: --join HOST:PORT is required (see 'loadprof worker --help')")
		return exitBadInput
	}
	if err := cluster.CheckCoordinatorAddr(*join); err != nil {
		fmt.Fprintf(stderr, "loadprof worker: --join %q: %v\n", *join, err)
		return exitBadInput
	}
	if len(*name) > cluster.MaxWorkerName {
		fmt.Fprintf(stderr, "loadprof worker: --name of %d bytes: at most %d (a DNS name's length)\n", len(*name), cluster.MaxWorkerName)
		return exitBadInput
	}
	if err := positiveDuration("--join-timeout", *joinTimeout); err != nil {
		printError(stderr, "worker", err)
		return exitBadInput
	}
	// As run does: an --out that cannot be written is found before the
	// worker joins and the run waits for it.
	if err := outfile.Check("--out", *out); err != nil {
		printError(stderr, "worker", err)
		return exitBadInput
	}
	if *token == "" {
		*token = os.Getenv(cluster.TokenEnv)
	}
	if *token == "" {
		fmt.Fprintf(stderr, "loadprof worker: no token: --token or %s\n", cluster.TokenEnv)
		return exitBadInput
	}
	cfg := cluster.WorkerConfig{Coordinator: *join, Token: *token, Name: *name, JoinTimeout: *joinTimeout, Warnings: flagWriter{stderr}}
	if !*quiet {
		cfg.Log = stderr
	}
	var writeErr error
	if *out != "" {
		cfg.Result = func(r *report.Result) { writeErr = report.WriteJSONOutput("--out", *out, r) }
	}
	err := cluster.Work(ctx, cfg)
	if err == nil && writeErr != nil {
		printError(stderr, "worker", writeErr)
		return exitWrite
	}
	if err == nil {
		return exitCode(nil, interruptCode(ctx)) // a worker interrupted here sent what it had
	}
	printError(stderr, "worker", err)
	return workerErrorCode(ctx, err)
}

// workerErrorCode is the exit code of a worker that failed with err.
func workerErrorCode(ctx context.Context, err error) int {
	var se *cluster.StatusError
	var gone *cluster.UnreachableError
	switch {
	case errors.As(err, &gone):
		// Checked first: a coordinator gone or stopped may have said so
		// with a status (503), which is no refusal.
		return exitTarget
	case errors.As(err, &se):
		return exitBadInput // refused: a wrong token, a clock too far off, a run already started
	}
	return exitCode(err, interruptCode(ctx))
}
