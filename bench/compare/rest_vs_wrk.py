#!/usr/bin/env python3
"""Runs loadprof and wrk against the same loopback REST server in one run and
prints requests/s and client CPU time per request for both, then checks how
closely loadprof holds a constant --rate.

Usage: python3 bench/compare/rest_vs_wrk.py [--seconds 10] [--connections 16] [--rate 10000]

The server is `loadprof sim` with no simulated latency, started here on a free
127.0.0.1 port. wrk comes from Debian (apt-get install wrk); the script installs
it when it runs as root and wrk is missing. CPU time is the client process's
user+system time from rusage, so it does not depend on how busy the machine is
the way wall-clock numbers do; still, compare the two tools' numbers from the
same run, not across runs.
"""
import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BODY = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd, **kw):
    """Runs cmd to completion; returns (stdout, (user, system) cpu seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out.stdout, (after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime)


def ensure_wrk():
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rate", type=float, default=10000)
    args = ap.parse_args()
    ensure_wrk()

    work = tempfile.mkdtemp(prefix="loadprof-bench-")
    binary = os.path.join(work, "loadprof")
    subprocess.run(["go", "build", "-o", binary, "./cmd/loadprof"], check=True, cwd=ROOT)
    data = os.path.join(work, "data.json")
    with open(data, "w") as f:
        f.write(BODY)
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' % json.dumps(BODY))

    port = free_port()
    sim = subprocess.Popen([binary, "sim", "--rest", "127.0.0.1:%d" % port, "--latency", "0", "--jitter", "0"],
                           stdout=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d/v1/models/test_model:predict" % port
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)

        def run_wrk(threads):
            out, cpu = timed(["wrk", "-t%d" % threads, "-c%d" % args.connections, "-d%ds" % args.seconds, "-s", lua, url])
            n = int(re.search(r"(\d+) requests in", out).group(1))
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            if non2xx:
                sys.exit("wrk got %s error responses; the comparison is void" % non2xx.group(1))
            return ("wrk -t%d -c%d" % (threads, args.connections), n, n / args.seconds, cpu)

        def run_loadprof(cpus):
            result = os.path.join(work, "closed.json")
            _, cpu = timed([binary, "run", "--url", url, "--data", data, "--concurrency", str(args.connections),
                            "--duration", "%ds" % args.seconds, "--out", result, "-q", "--cpus", str(cpus)])
            res = json.load(open(result))
            if res["errors"]:
                sys.exit("loadprof got errors %s; the comparison is void" % res["errors"])
            n = res["requests"] + 1  # and the preflight request
            return ("loadprof --cpus %d -c %d" % (cpus, args.connections), n, res["throughput_rps"], cpu)

        # Interleaved, so that both tools see the same machine.
        rows = [run_wrk(1), run_loadprof(1), run_wrk(2), run_loadprof(2)]
        print("%-26s %10s %12s %8s %8s %10s %10s" % ("client", "requests", "requests/s", "user s", "sys s", "user us/r", "cpu us/r"))
        for name, n, rps, (user, system) in rows:
            print("%-26s %10d %12.0f %8.2f %8.2f %10.2f %10.2f" % (name, n, rps, user, system, 1e6 * user / n, 1e6 * (user + system) / n))
        per = [sum(r[3]) / r[1] for r in rows]
        print("loadprof CPU per request / wrk CPU per request: %.2f with one thread each, %.2f with two"
              % (per[1] / per[0], per[3] / per[2]))

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
