// Package report is what loadprof writes and reads about finished runs:
// the result model of result.json (runs, sweeps, merges) and its versions,
// the .hgrm percentile file, the HdrHistogram interval log, the text
// summary, the HTML pages, and the compare and merge of results. It runs
// nothing: package bench runs benchmarks and hands their results here, and
// the compare, merge and report commands need only this package.
package report
