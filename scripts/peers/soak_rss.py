#!/usr/bin/env python3
"""Measures loadprof's memory over a long run at a high rate: starts the
simulator on loopback, runs loadprof (open loop) for --minutes, samples the
resident set size of the loadprof process every --every seconds, and prints
the samples, the RSS at 1, 10, 30 and 60 minutes (those the run reaches)
and the growth after the first minute. The result keeps one encoded latency
histogram per second by design (series_histograms, for `merge`); the script
says how many bytes of the result that is, the part of the growth it explains.

Usage: python3 scripts/peers/soak_rss.py [--minutes 10] [--rate 5000] [--every 10] [--loadprof BINARY]
"""
import argparse
import json
import os
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
    run = subprocess.Popen([binary, "run", "--url", url, "--data", data, "--rate", str(args.rate),
                            "--duration", "%ds" % seconds, "-q", "--out", os.path.join(work, "soak.json")],
                           stdout=subprocess.DEVNULL)
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
        sim.terminate()
        sim.wait()
    for minute in CHECKPOINTS_MIN:
        near = [s for s in samples if s[0] <= minute * 60 + args.every]
        if near and near[-1][0] >= minute * 60 - args.every:
            print("RSS at %2d min (%5.0fs): %7.1f MiB" % (minute, near[-1][0], near[-1][1]))
    settled = [s for s in samples if s[0] >= 60] or samples
    if len(settled) >= 2:
        grow = settled[-1][1] - settled[0][1]
        print("RSS from %.0fs to %.0fs: %.1f -> %.1f MiB (%+.1f MiB) at %g requests/s"
              % (settled[0][0], settled[-1][0], settled[0][1], settled[-1][1], grow, args.rate))
    if run.returncode != 0:
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
