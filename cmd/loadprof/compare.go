package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/report"
	"github.com/spf13/pflag"
)

// compareCommand is `loadprof compare BASE.json NEW.json --max ...`: exit 1
// on a regression, for CI.
func compareCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("compare", pflag.ContinueOnError)
	maxSpecs := fs.StringArray("max", nil, maxHelp)
	noisyFails := fs.Bool("noisy-fails", false, "count a noisy verdict as a regression (exit 1): for a gate that would rather fail than pass a change it cannot tell from noise")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof compare BASE.json NEW.json [--max p99=10%%,p50=2ms,rps=5%%,errors=0]\n\n"+
			"Prints every metric of both runs: base, new, change, limit and verdict (pass, regressed, noisy),\n"+
			"and notes when the runs are not comparable. Exits 1 when a limit is regressed, 0 otherwise\n"+
			"(a noisy one does not fail, unless --noisy-fails), 2 on bad input.\n\n%s\nFlags:\n%s", limitsExplained, fs.FlagUsages())
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout, stderr)
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, "loadprof compare: give two results: BASE.json NEW.json (see 'loadprof compare --help')")
		return exitBadInput
	}
	limits, err := report.ParseLimits(strings.Join(*maxSpecs, ","))
	if err != nil {
		printError(stderr, "compare", err)
		return exitBadInput
	}
	base, err := report.ReadResult(fs.Arg(0))
	if err != nil {
		printError(stderr, "compare", err)
		return exitBadInput
	}
	next, err := report.ReadResult(fs.Arg(1))
	if err != nil {
		printError(stderr, "compare", err)
		return exitBadInput
	}
	c := report.Compare(base, next, limits)
	if *noisyFails {
		c.CountNoisyAsRegressed()
	}
	fmt.Fprintf(stdout, "base: %s\nnew:  %s\n\n", fs.Arg(0), fs.Arg(1))
	c.Write(stdout)
	if len(c.Broken) > 0 {
		return exitRegression
	}
	return exitOK
}

// maxHelp and limitsExplained say the sign convention of --max, which
// compare and report share.
const (
	maxHelp = "limits, METRIC=CHANGE separated by commas or given again: how far NEW may move the bad way from BASE " +
		"(latency up, rps down), e.g. p99=10%,p50=2ms,rps=5%,errors=0"
	limitsExplained = `Limits (--max): each is how far a metric of NEW may move the way that is worse for it.
  latency (min mean p50 p90 p95 p99 p999 max): a rise; p99=10% fails when p99 rises by more
      than 10%, p50=2ms when p50 rises by more than 2 ms. "+10%" is the same; "-10%" is refused.
  throughput (rps ok_rps): a drop; rps=5% fails when the throughput drops by more than 5%,
      rps=20 when it drops by more than 20 req/s. "-5%" is the same; "+5%" is refused.
  errors: NEW's steady error count (errors=0), or its rate of the requests (errors=0.1%).
  server (server_mean server_p50 server_p99 outside), from --metrics: a rise, as latency;
      server_p99=+10% fails when the server's p99 rises by more than 10%, and when a run has
      no such figure. A rise with both percentile estimates in one server bucket is "noisy".
  streams (ttft_p99 itl_p99 tpot_mean e2e_p99: a rise, as latency; output_tokens_per_s: a
      drop, as rps, absolute in tokens/s), an OpenAI-compatible target's; they fail when a run
      has no stream figures.
  Each metric may be limited once. A change over its limit is "noisy", not "regressed", when
  it is within the runs' own variation: less than twice the standard error of the difference
  of the two runs' per-second values (p50, p99, max, rps and ok_rps, which result.json keeps
  per second), or a percentile with fewer than 10 requests above it in a run.
`
)

// mergeCommand is `loadprof merge A.json B.json ... -o OUT.json`.
func mergeCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("merge", pflag.ContinueOnError)
	out := fs.StringP("out", "o", "", "write the merged result here; - writes it to standard output (the summary then goes to stderr)")
	force := fs.Bool("force", false, "merge also the same run twice, or runs whose steady phases do not overlap")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof merge A.json B.json ... -o OUT.json\n\nMerges results of runs made at the same time from several machines: histograms and counts exactly, throughputs added.\n\nFlags:\n%s", fs.FlagUsages())
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout, stderr)
	}
	if fs.NArg() < 2 || *out == "" {
		fmt.Fprintln(stderr, "loadprof merge: give two results or more and -o OUT.json (see 'loadprof merge --help')")
		return exitBadInput
	}
	err := outfile.Check("-o", *out)
	if err == nil {
		err = outfile.CheckNotInput([]outfile.Output{{Flag: "-o", Path: *out}}, resultInputs(fs.Args()))
	}
	if err != nil {
		printError(stderr, "merge", err)
		return exitBadInput
	}
	if outfile.IsStdout(*out) {
		stdout = stderr // standard output carries the merged result
	}
	var results []*report.Result
	for _, path := range fs.Args() {
		r, err := report.ReadResult(path)
		if err != nil {
			printError(stderr, "merge", err)
			return exitBadInput
		}
		results = append(results, r)
	}
	if !*force {
		if err := report.CheckMergeable(results, fs.Args()); err != nil {
			fmt.Fprintf(stderr, "loadprof merge: %v (--force merges anyway)\n", err)
			return exitBadInput
		}
	}
	merged, notes, err := report.Merge(results, fs.Args())
	if err != nil {
		printError(stderr, "merge", err)
		return exitBadInput
	}
	err = flagged(merged.WriteJSON(*out), "-o")
	report.WriteSummary(stdout, merged)
	if len(notes) > 0 {
		fmt.Fprintln(stdout)
	}
	for _, n := range notes {
		fmt.Fprintf(stdout, "  note: %s\n", n)
	}
	fmt.Fprintln(stdout)
	reportOutput(stdout, "merged result", *out, err)
	if err != nil {
		printError(stderr, "merge", err)
	}
	return exitCode(err, 0)
}

// resultInputs are the result files a command was given as arguments.
func resultInputs(paths []string) []outfile.Input {
	inputs := make([]outfile.Input, len(paths))
	for i, p := range paths {
		inputs[i] = outfile.Input{Flag: "result file", Path: p}
	}
	return inputs
}
