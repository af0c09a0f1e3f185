// Package servermetrics reads what a model server says about itself: it
// scrapes a Prometheus exposition endpoint (TF Serving, Triton, KServe's
// ModelServer, MLServer, vLLM, NVIDIA's DCGM exporter), and turns the
// difference between two scrapes into figures for a window of the run:
// how many requests the server counted, its latency mean and percentiles
// (estimated from histogram buckets, with the bucket each one fell in),
// queue and compute time, batch size and GPU use. Families it does not
// know are kept raw, as per-window deltas.
//
// Counters and histograms are lifetime totals on the server; a figure is
// always a difference, summed scrape to scrape so that a server restart
// (a value going down) costs the counts before the restart, never gives a
// negative one. A Sampler scrapes in its own goroutine through a run, at
// an interval and at marks the caller sets; a scrape that fails is kept
// as a warning beside the samples, never an error that loses any.
package servermetrics
