#!/usr/bin/env python3
"""Measures loadprof's memory over a long run at a high rate: starts the
simulator on loopback, runs loadprof (open loop) for --minutes, samples the
resident set size of the loadprof process every --every seconds, and prints
the samples and the growth after the first minute.

Usage: python3 scripts/peers/soak_rss.py [--minutes 10] [--rate 5000] [--every 10]
"""
import argparse
import json
import os
import subprocess
import sys
import time

from common import build_loadprof, start_sim, workdir

BODY = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'


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
    ap.add_argument("--every", type=float, default=10)
    args = ap.parse_args()
    work = workdir()
    binary = build_loadprof(work)
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


if __name__ == "__main__":
    main()
