#!/usr/bin/env python3
"""Runs loadprof and wrk against the same loopback REST server in one run and
prints requests/s and client CPU time per request for both, then checks how
closely loadprof holds a constant --rate.

Usage: python3 scripts/peers/rest_vs_wrk.py [--seconds 10] [--connections 16] [--rate 10000] [--repeat 1]

The server is `loadprof sim` with no simulated latency, started here on a free
127.0.0.1 port. wrk comes from Debian; scripts/peers/install.sh installs it (as
root) when it is missing. CPU time is the client process's
user+system time from rusage, so it does not depend on how busy the machine is
the way wall-clock numbers do; still, compare the two tools' numbers from the
same run, not across runs.
"""
import argparse
import json
import os
import re
import shutil
import sys

from common import BODY, build_loadprof, peer, print_rows, start_sim, timed, workdir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--repeat", type=int, default=1, help="closed-loop rounds; the ratios' median is printed too")
    args = ap.parse_args()
    wrk = peer("wrk")

    work = workdir()
    binary = build_loadprof(work)
    data = os.path.join(work, "data.json")
    with open(data, "w") as f:
        f.write(BODY)
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' % json.dumps(BODY))

    sim, port, _ = start_sim(binary)
    url = "http://127.0.0.1:%d/v1/models/test_model:predict" % port
    try:
        def run_wrk(threads):
            out, cpu = timed([wrk, "-t%d" % threads, "-c%d" % args.connections, "-d%ds" % args.seconds, "-s", lua, url])
            n = int(re.search(r"(\d+) requests in", out).group(1))
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            if non2xx:
                sys.exit("wrk got %s error responses; the comparison is void" % non2xx.group(1))
            return ("wrk -t%d -c%d" % (threads, args.connections), n, n / args.seconds, cpu)

        def run_loadprof(cpus, engine="epoll"):
            result = os.path.join(work, "closed.json")
            _, cpu = timed([binary, "run", "--url", url, "--data", data, "--concurrency", str(args.connections),
                            "--duration", "%ds" % args.seconds, "--out", result, "-q", "--cpus", str(cpus),
                            "--rest-engine", engine])
            res = json.load(open(result))
            if res["errors"]:
                sys.exit("loadprof got errors %s; the comparison is void" % res["errors"])
            n = res["requests"] + 1  # and the preflight request
            name = "loadprof --cpus %d -c %d" % (cpus, args.connections)
            if engine != "epoll":
                name += " " + engine
            return (name, n, res["throughput_rps"], cpu)

        # Interleaved, so that both tools see the same machine. loadprof's
        # epoll engine runs one event loop with --cpus 1 or 2 (one P is
        # left to the Go runtime); the goroutine engine is the reference
        # for what Go's netpoller costs.
        ratios = []
        for _ in range(args.repeat):
            rows = [run_wrk(1), run_loadprof(1), run_loadprof(1, "goroutines"), run_wrk(2), run_loadprof(2)]
            print_rows(rows)
            per = [sum(r[3]) / r[1] for r in rows]
            ratios.append((per[1] / per[0], per[4] / per[3], per[2] / per[0]))
            print("loadprof CPU per request / wrk CPU per request: %.2f (epoll, --cpus 1 vs -t1), %.2f (epoll, --cpus 2 vs -t2), "
                  "%.2f (goroutine engine, --cpus 1 vs -t1)\n" % ratios[-1])
        if args.repeat > 1:
            med = [sorted(r[i] for r in ratios)[len(ratios) // 2] for i in range(3)]
            print("median of %d rounds: %.2f (epoll, one thread), %.2f (epoll, two), %.2f (goroutine engine, one)"
                  % (args.repeat, med[0], med[1], med[2]))

        result = os.path.join(work, "rate.json")
        _, cpu = timed([binary, "run", "--url", url, "--data", data, "--rate", str(args.rate),
                        "--duration", "%ds" % args.seconds, "--warmup", "1s", "--out", result, "-q"])
        res = json.load(open(result))
        achieved = res["throughput_rps"]
        print("\nopen loop --rate %g for %ds: achieved %.1f requests/s (%+.3f%%), %d errors, max send lag %.2f ms, "
              "p99 %.3f ms, %.2f cpu us/request"
              % (args.rate, args.seconds, achieved, 100 * (achieved - args.rate) / args.rate,
                 sum(res["errors"].values()), res["client"]["max_send_lag_ms"], res["latency_ms"]["p99"],
                 1e6 * sum(cpu) / (res["requests"] + res["phases"]["warmup"]["requests"])))
    finally:
        sim.terminate()
        sim.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
