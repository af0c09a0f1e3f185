package main

import (
	"errors"
	"io"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
)

// runOutputs are the files a run writes, as their flags name them. bench
// writes none of them: the command checks them before any load is sent
// and writes them from the Result (the interval log as the run goes).
type runOutputs struct {
	result string // --out
	hgrm   string // --hgrm
	hlog   string // --hlog
	html   string // --html
}

// check finds, before any load is sent, what would stop an output from
// being written: a missing directory, something in the way, two outputs
// in one file. The profile's logdir may not exist yet but must be
// creatable.
func (o runOutputs) check(prof *bench.ProfileConfig, inputs ...outfile.Input) error {
	outputs := []outfile.Output{
		{Flag: "--out", Path: o.result},
		{Flag: "--hgrm", Path: o.hgrm},
		{Flag: "--hlog", Path: o.hlog},
		{Flag: "--html", Path: o.html},
	}
	err := outfile.CheckAll(outputs...)
	if err == nil {
		err = outfile.CheckNotInput(outputs, inputs)
	}
	if err == nil && prof != nil && prof.Options.LogDir != "" {
		err = outfile.CheckDir("--logdir", prof.Options.LogDir, profile.PluginDir(prof.Options.LogDir))
	}
	return err
}

// usesStdout reports whether an output goes to standard output, where the
// human summary must then not go.
func (o runOutputs) usesStdout() bool {
	for _, p := range []string{o.result, o.hgrm, o.hlog, o.html} {
		if outfile.IsStdout(p) {
			return true
		}
	}
	return false
}

// intervalLog opens --hlog when the run starts its load, or is nil
// without one. The log is written in place as it grows (see
// outfile.Stream).
func (o runOutputs) intervalLog() func() (io.WriteCloser, error) {
	if o.hlog == "" {
		return nil
	}
	return func() (io.WriteCloser, error) {
		f, err := outfile.Stream("--hlog", o.hlog)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
}

// writeLLMHGRM writes an OpenAI-compatible target's stream distributions
// beside --hgrm, one file each (NAME.ttft.hgrm, .itl, .tpot, .e2e): the
// HdrHistogram plotter reads one distribution per file and overlays the
// files it is given, so separate files plot together where sections in
// one file would not parse. Nothing for other targets, nor when --hgrm is
// standard output (which holds the latency distribution alone).
func writeLLMHGRM(hgrm string, res *report.Result) error {
	if res.LLMHistograms == nil || outfile.IsStdout(hgrm) {
		return nil
	}
	hs, err := res.LLMHistograms.Decode()
	if err != nil {
		return err
	}
	var errs []error
	for _, kind := range report.LLMKinds {
		errs = append(errs, report.WriteHGRMOutput("--hgrm", report.LLMHGRMPath(hgrm, kind), hs[kind]))
	}
	return errors.Join(errs...)
}

// writeResult writes --out and --hgrm from res, each whole or not at all,
// and returns the run's outcome: runErr, unless a write failed. Failed
// writes are the outcome then (exit 4), joined to the run's own failed
// writes (the interval log, a trace).
func (o runOutputs) writeResult(res *report.Result, runErr error, warn io.Writer) error {
	var errs []error
	if o.result != "" {
		errs = append(errs, report.WriteJSONOutputWarn("--out", o.result, res, warn))
	}
	if o.hgrm != "" {
		h, err := report.DecodeHistogram(res.Histogram)
		if err == nil {
			err = report.WriteHGRMOutput("--hgrm", o.hgrm, h)
		}
		errs = append(errs, err)
		errs = append(errs, writeLLMHGRM(o.hgrm, res))
	}
	werr := errors.Join(errs...)
	switch {
	case werr == nil:
		return runErr
	case len(outfile.Failed(runErr)) > 0:
		return errors.Join(runErr, werr)
	}
	return werr
}
