package main

import (
	"fmt"
	"io"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/spf13/pflag"
)

// compareCommand is `loadprof compare BASE.json NEW.json --max ...`: exit 1
// on a regression, for CI.
func compareCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("compare", pflag.ContinueOnError)
	maxSpec := fs.String("max", "", "limits, e.g. p99=+10%,p50=+2ms,rps=-5%,errors=0 (errors: a count, or a rate with %)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof compare BASE.json NEW.json [--max p99=+10%%,p50=+10%%,rps=-5%%,errors=0]\n\n"+
			"Prints every metric of both runs and exits 1 when a limit is broken, 0 otherwise, 2 on bad input.\n\nFlags:\n%s", fs.FlagUsages())
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout, stderr)
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, "loadprof compare: give two results: BASE.json NEW.json (see 'loadprof compare --help')")
		return exitBadInput
	}
	limits, err := bench.ParseLimits(*maxSpec)
	if err != nil {
		fmt.Fprintf(stderr, "loadprof compare: %v\n", err)
		return exitBadInput
	}
	base, err := bench.ReadResult(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "loadprof compare: %v\n", err)
		return exitBadInput
	}
	next, err := bench.ReadResult(fs.Arg(1))
	if err != nil {
		fmt.Fprintf(stderr, "loadprof compare: %v\n", err)
		return exitBadInput
	}
	c := bench.Compare(base, next, limits)
	fmt.Fprintf(stdout, "base: %s\nnew:  %s\n\n", fs.Arg(0), fs.Arg(1))
	c.Write(stdout)
	if len(c.Broken) > 0 {
		return exitRegression
	}
	return exitOK
}

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
	if err := outfile.Check("-o", *out); err != nil {
		fmt.Fprintf(stderr, "loadprof merge: %v\n", err)
		return exitBadInput
	}
	if outfile.IsStdout(*out) {
		stdout = stderr // standard output carries the merged result
	}
	var results []*bench.Result
	for _, path := range fs.Args() {
		r, err := bench.ReadResult(path)
		if err != nil {
			fmt.Fprintf(stderr, "loadprof merge: %v\n", err)
			return exitBadInput
		}
		results = append(results, r)
	}
	if !*force {
		if err := bench.CheckMergeable(results, fs.Args()); err != nil {
			fmt.Fprintf(stderr, "loadprof merge: %v (--force merges anyway)\n", err)
			return exitBadInput
		}
	}
	merged, notes, err := bench.Merge(results, fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "loadprof merge: %v\n", err)
		return exitBadInput
	}
	err = flagged(merged.WriteJSON(*out), "-o")
	bench.WriteSummary(stdout, merged)
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
