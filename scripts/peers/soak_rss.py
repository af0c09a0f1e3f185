#!/usr/bin/env python3
"""Measures loadprof's memory over a long run at a high rate: starts the
simulator on loopback, runs loadprof (open loop) for --minutes, samples the
resident set size of the loadprof process every --every seconds, and prints
the samples, the RSS at 1, 10, 30 and 60 minutes (those the run reaches)
and the growth after the first minute. loadprof runs with GODEBUG=gctrace=1,
so the Go heap live after each collection is known too: RSS also holds the
collector's headroom (GOGC), which rises and falls with it, while the live
heap is what the run keeps. The result keeps one encoded latency
histogram per second by design (series_histograms, for `merge`); the script
says how many bytes of the result that is, the part of the growth it explains.

Usage: python3 scripts/peers/soak_rss.py [--minutes 10] [--rate 5000] [--every 10] [--loadprof BINARY]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

from common import BODY, build_loadprof, start_sim, workdir

CHECKPOINTS_MIN = (1, 10, 30, 60)


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


# gctrace's line: "gc 7 @12.345s 0%: ... ms cpu, 4->5->2 MB, 5 MB goal, ...";
# the third size is the heap live after marking.
GCTRACE = re.compile(r"^gc \d+ @([\d.]+)s .*?, (\d+)->(\d+)->(\d+) MB")


def live_heap(gctrace_path):
    """[(seconds since the process started, live heap MB)] from gctrace lines."""
    out = []
    with open(gctrace_path, errors="replace") as f:
        for line in f:
            m = GCTRACE.match(line)
            if m:
                out.append((float(m.group(1)), int(m.group(4))))
    return out


def at(series, t, slack):
    """The (time, value) of series nearest t, when it is within slack of t."""
    near = [s for s in series if abs(s[0] - t) <= slack]
    return min(near, key=lambda s: abs(s[0] - t)) if near else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--every", type=float, default=10, help="seconds between RSS samples")
    ap.add_argument("--loadprof", help="loadprof binary to run (default: built from this tree)")
    args = ap.parse_args()
    work = workdir()
    binary = args.loadprof or build_loadprof(work)
    data = os.path.join(work, "data.json")
    with open(data, "w") as f:
        f.write(BODY)
    sim, port, _ = start_sim(binary)
    url = "http://127.0.0.1:%d/v1/models/test_model:predict" % port
    seconds = int(args.minutes * 60)
    stderr_path = os.path.join(work, "stderr.txt")
    stderr = open(stderr_path, "w")
    run = subprocess.Popen([binary, "run", "--url", url, "--data", data, "--rate", str(args.rate),
                            "--duration", "%ds" % seconds, "-q", "--out", os.path.join(work, "soak.json")],
                           stdout=subprocess.DEVNULL, stderr=stderr, env=dict(os.environ, GODEBUG="gctrace=1"))
    samples = []
    start = time.time()
    try:
        while run.poll() is None:
            time.sleep(args.every)
            if run.poll() is not None:
                break
            samples.append((time.time() - start, rss_mib(run.pid)))
            print("%7.0fs  RSS %7.1f MiB" % samples[-1], flush=True)
    finally:
        run.wait()
        stderr.close()
        sim.terminate()
        sim.wait()
    heap = live_heap(stderr_path)
    for minute in CHECKPOINTS_MIN:
        rss = at(samples, minute * 60, args.every)
        if rss:
            live = at(heap, minute * 60, 30)
            print("at %2d min (%5.0fs): RSS %7.1f MiB, live heap %s" % (minute, rss[0], rss[1],
                  "%d MB (gc at %.0fs)" % (live[1], live[0]) if live else "?"))
    settled = [s for s in samples if s[0] >= 60] or samples
    if len(settled) >= 2:
        grow = settled[-1][1] - settled[0][1]
        print("RSS from %.0fs to %.0fs: %.1f -> %.1f MiB (%+.1f MiB) at %g requests/s"
              % (settled[0][0], settled[-1][0], settled[0][1], settled[-1][1], grow, args.rate))
    settled_heap = [h for h in heap if h[0] >= 60] or heap
    if len(settled_heap) >= 2:
        print("live heap from %.0fs to %.0fs: %d -> %d MB, lowest %d, highest %d (%d collections)"
              % (settled_heap[0][0], settled_heap[-1][0], settled_heap[0][1], settled_heap[-1][1],
                 min(h[1] for h in settled_heap), max(h[1] for h in settled_heap), len(heap)))
    if run.returncode != 0:
        with open(stderr_path, errors="replace") as f:
            sys.stderr.write("".join(line for line in f if not GCTRACE.match(line))[-4000:])
        sys.exit("loadprof exited %d" % run.returncode)
    with open(os.path.join(work, "soak.json")) as f:
        res = json.load(f)
    print("%d requests, %.1f/s, peak in flight %d (the connections an open loop keeps), engine %s"
          % (res["requests"], res["throughput_rps"], res["client"]["peak_inflight"], res["client"].get("engine", "?")))
    hists = res.get("series_histograms") or []
    held = sum(len(h["histogram"]) for h in hists)
    print("the result holds %d per-second points and %d per-second histograms, %.0f KiB encoded "
          "(%.0f bytes a second): growth the design keeps in memory until the run ends"
          % (len(res.get("series") or []), len(hists), held / 1024.0, held / max(1, len(hists))))


if __name__ == "__main__":
    main()
