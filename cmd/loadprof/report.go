package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/report"
	"github.com/spf13/pflag"
)

// reportCommand is `loadprof report RESULT.json [MORE.json ...] --html FILE [--hgrm FILE]`.
func reportCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("report", pflag.ContinueOnError)
	html := fs.String("html", "", "write a self-contained HTML report: one result's page; with two, the compare page; with more, one page with a section for each")
	hgrm := fs.String("hgrm", "", "write the latency distribution of one result as HdrHistogram .hgrm text")
	maxSpecs := fs.StringArray("max", nil, "with two results and --html: "+maxHelp+" (as compare takes them; see 'loadprof compare --help')")
	noisyFails := fs.Bool("noisy-fails", false, "with --max: call a noisy verdict regressed on the page, as 'compare --noisy-fails' does")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof report RESULT.json [MORE.json ...] [--html FILE] [--hgrm FILE]\n"+
			"       loadprof report BASE.json NEW.json --html FILE [--max p99=10%%,rps=5%%,...]\n\n"+
			"Without flags, prints the summary of each result. With two results, --html writes the compare\n"+
			"page: base, new, change, limit and verdict of every metric, as 'loadprof compare' judges them\n"+
			"(the exit code stays 0; compare is the CI gate), and both runs on the same charts.\n\nFlags:\n%s", fs.FlagUsages())
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout, stderr)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "loadprof report: give one result.json or more (see 'loadprof report --help')")
		return exitBadInput
	}
	limits, err := report.ParseLimits(strings.Join(*maxSpecs, ","))
	if err != nil {
		printError(stderr, "report", err)
		return exitBadInput
	}
	if (len(*maxSpecs) > 0 || *noisyFails) && (fs.NArg() != 2 || *html == "") {
		fmt.Fprintln(stderr, "loadprof report: --max judges two results on the --html page: give BASE.json NEW.json and --html FILE")
		return exitBadInput
	}
	if *hgrm != "" && fs.NArg() != 1 {
		fmt.Fprintln(stderr, "loadprof report: --hgrm takes one result")
		return exitBadInput
	}
	outputs := []outfile.Output{{Flag: "--html", Path: *html}, {Flag: "--hgrm", Path: *hgrm}}
	err = outfile.CheckAll(outputs...)
	if err == nil {
		err = outfile.CheckNotInput(outputs, resultInputs(fs.Args()))
	}
	if err != nil {
		printError(stderr, "report", err)
		return exitBadInput
	}
	if outfile.IsStdout(*html) || outfile.IsStdout(*hgrm) {
		stdout = stderr // standard output carries the file
	}
	if fs.NArg() == 1 && report.IsSweep(fs.Arg(0)) {
		if *hgrm != "" {
			fmt.Fprintf(stderr, "loadprof report: --hgrm: %s is a sweep; --hgrm takes one run's result (a sweep keeps every step's in steps[].result)\n", fs.Arg(0))
			return exitBadInput
		}
		return reportSweep(fs.Arg(0), *html, stdout, stderr)
	}
	var results []*report.Result
	for _, path := range fs.Args() {
		r, err := report.ReadResult(path)
		if err != nil {
			printError(stderr, "report", err)
			return exitBadInput
		}
		results = append(results, r)
	}
	code := exitOK
	if *html != "" {
		err := writeReportHTML(*html, results, fs.Args(), report.CompareOptions{Limits: limits, NoisyFails: *noisyFails})
		if err != nil {
			printError(stderr, "report", err)
			code = exitCode(err, 0)
		}
		reportOutput(stdout, "HTML report", *html, err)
	}
	if *hgrm != "" {
		h, err := report.DecodeHistogram(results[0].Histogram)
		if err != nil {
			fmt.Fprintf(stderr, "loadprof report: %s: %v\n", fs.Arg(0), err)
			return exitBadInput
		}
		err = flagged(report.WriteHGRM(*hgrm, h), "--hgrm")
		if err != nil {
			printError(stderr, "report", err)
			code = exitWrite
		}
		reportOutput(stdout, "latency distribution", *hgrm, err)
	}
	if *html == "" && *hgrm == "" {
		report.WriteSummaries(stdout, results, fs.Args())
	}
	return code
}

func writeHTML(path string, results []*report.Result, names []string) error {
	return writeReportHTML(path, results, names, report.CompareOptions{})
}

// writeReportHTML writes the report of one result or more; two results are
// a base and a new run, on the compare page, judged by limits.
func writeReportHTML(path string, results []*report.Result, names []string, opts report.CompareOptions) error {
	var buf bytes.Buffer
	var err error
	if len(results) == 2 {
		err = report.WriteCompareHTML(&buf, results[0], results[1], [2]string{names[0], names[1]}, opts)
	} else {
		err = report.WriteHTML(&buf, results, names, report.ReportOptions{})
	}
	if err != nil {
		return err
	}
	return outfile.Write("--html", path, buf.Bytes())
}

func reportSweep(path, html string, stdout, stderr io.Writer) int {
	sw, err := report.ReadSweep(path)
	if err != nil {
		printError(stderr, "report", err)
		return exitBadInput
	}
	if html == "" {
		report.WriteSweepSummary(stdout, sw)
		return exitOK
	}
	var buf bytes.Buffer
	if err := report.WriteSweepHTML(&buf, sw); err != nil {
		fmt.Fprintf(stderr, "loadprof report: %s: %v\n", path, err)
		return exitBadInput
	}
	err = outfile.Write("--html", html, buf.Bytes())
	if err != nil {
		printError(stderr, "report", err)
	}
	if outfile.IsStdout(html) {
		stdout = stderr
	}
	reportOutput(stdout, "HTML report", html, err)
	return exitCode(err, 0)
}
