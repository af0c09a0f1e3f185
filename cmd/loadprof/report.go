package main

import (
	"bytes"
	"fmt"
	"io"

	"github.com/loadprof/loadprof/bench"
	"github.com/spf13/pflag"
)

// reportCommand is `loadprof report RESULT.json [MORE.json ...] --html FILE [--hgrm FILE]`.
func reportCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("report", pflag.ContinueOnError)
	html := fs.String("html", "", "write a self-contained HTML report (several results: compared on the same charts)")
	hgrm := fs.String("hgrm", "", "write the latency distribution of one result as HdrHistogram .hgrm text")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof report RESULT.json [MORE.json ...] [--html FILE] [--hgrm FILE]\n\nWithout flags, prints the summary of each result.\n\nFlags:\n%s", fs.FlagUsages())
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout, stderr)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "loadprof report: give one result.json or more (see 'loadprof report --help')")
		return exitBadInput
	}
	if *hgrm != "" && fs.NArg() != 1 {
		fmt.Fprintln(stderr, "loadprof report: --hgrm takes one result")
		return exitBadInput
	}
	if fs.NArg() == 1 && bench.IsSweep(fs.Arg(0)) {
		return reportSweep(fs.Arg(0), *html, stdout, stderr)
	}
	var results []*bench.Result
	for _, path := range fs.Args() {
		r, err := bench.ReadResult(path)
		if err != nil {
			fmt.Fprintf(stderr, "loadprof report: %v\n", err)
			return exitBadInput
		}
		results = append(results, r)
	}
	if *html != "" {
		if err := writeHTML(*html, results, fs.Args()); err != nil {
			fmt.Fprintf(stderr, "loadprof report: %v\n", err)
			return exitBadInput
		}
		fmt.Fprintf(stdout, "HTML report written to %s\n", *html)
	}
	if *hgrm != "" {
		h, err := bench.DecodeHistogram(results[0].Histogram)
		if err == nil {
			err = bench.WriteHGRM(*hgrm, h)
		}
		if err != nil {
			fmt.Fprintf(stderr, "loadprof report: --hgrm %s: %v\n", *hgrm, err)
			return exitBadInput
		}
		fmt.Fprintf(stdout, "latency distribution written to %s\n", *hgrm)
	}
	if *html == "" && *hgrm == "" {
		for _, r := range results {
			bench.WriteSummary(stdout, r)
		}
	}
	return exitOK
}

func writeHTML(path string, results []*bench.Result, names []string) error {
	var buf bytes.Buffer
	if err := bench.WriteHTML(&buf, results, names, bench.ReportOptions{}); err != nil {
		return err
	}
	if err := bench.WriteFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("--html %s: %w", path, err)
	}
	return nil
}

func reportSweep(path, html string, stdout, stderr io.Writer) int {
	sw, err := bench.ReadSweep(path)
	if err != nil {
		fmt.Fprintf(stderr, "loadprof report: %v\n", err)
		return exitBadInput
	}
	if html == "" {
		bench.WriteSweepSummary(stdout, sw)
		return exitOK
	}
	var buf bytes.Buffer
	if err := bench.WriteSweepHTML(&buf, sw); err != nil {
		fmt.Fprintf(stderr, "loadprof report: %s: %v\n", path, err)
		return exitBadInput
	}
	if err := bench.WriteFileAtomic(html, buf.Bytes()); err != nil {
		fmt.Fprintf(stderr, "loadprof report: --html %s: %v\n", html, err)
		return exitBadInput
	}
	fmt.Fprintf(stdout, "HTML report written to %s\n", html)
	return exitOK
}
