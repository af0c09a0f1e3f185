#!/usr/bin/env python3
"""Measures the CPU ratios issue #16 sets goals for, every figure beside its
peer in the same run, and says whether each goal is met.

Usage: python3 scripts/peers/ratios.py [--rounds 3] [--seconds 5] [--rate 10000]
                                       [--connections 32] [--loadprof BINARY] [--json FILE]
                                       [--slacks 1ns,40us,100us,250us,1ms]

CPU is the user+system time of the client process (wait4's rusage) divided
by the requests it made. The client runs on core 0 and the server on core 1
(taskset). Each round runs every measurement once for --seconds, in the
opposite order to the round before, so slow drift on a shared machine falls
on every tool alike; the summary gives the median over the rounds and the
spread (lowest..highest). Targets, both on 127.0.0.1 and free ports:
nginx (one process, `return 200` on POST /v1/models/m:predict) for REST,
`loadprof sim --grpc` (no simulated latency) for gRPC.

Measurements, per round:
  REST  wrk -t1 -c32                   closed loop
  REST  loadprof --concurrency 32      closed loop, epoll engine
  REST  fortio load -qps R -c 32       open loop
  REST  loadprof --rate R              open loop, epoll engine
  gRPC  loadprof --rate R              open loop
  gRPC  loadprof --concurrency 32      closed loop
  REST  loadprof --rate R --send-slack S, for each S of --slacks (the
        trade-off between CPU per request and send lag, beside fortio)
"""
import argparse
import json
import os
import re
import subprocess
import sys

from common import (BODY, ROOT, build_loadprof, median_spread, peer, run_cpu, start_nginx, start_sim, stop,
                    workdir)

# A tool that finished fewer than this share of the requested rate did not
# run the open loop asked for: its CPU per request is not comparable.
REACHED = 0.98


class Measure:
    """One tool's figures from one round."""

    def __init__(self, requests, cpu_s, achieved_rps, send_lag_p99_us=None, send_lag_p50_us=None):
        self.requests, self.cpu_s, self.achieved_rps = requests, cpu_s, achieved_rps
        self.send_lag_p99_us, self.send_lag_p50_us = send_lag_p99_us, send_lag_p50_us

    @property
    def cpu_us_per_request(self):
        return 1e6 * self.cpu_s / self.requests


def loadprof_result(path):
    """Requests, achieved rate and send lag p99 (us, open loop) of a loadprof
    result.json; exits when the run had errors."""
    with open(path) as f:
        res = json.load(f)
    if res["errors"]:
        sys.exit("loadprof got errors %s; the comparison is void" % res["errors"])
    # The preflight request and the warm-up cost CPU too.
    n = res["requests"] + res["phases"]["warmup"]["requests"] + 1
    lag = (res.get("client") or {}).get("send_lag_ms")
    return n, res["throughput_rps"], (1000 * lag["p99"] if lag else None)


def loadprof_lag_p50(path):
    """The send lag p50 (us) of an open-loop loadprof result.json, or None."""
    with open(path) as f:
        lag = (json.load(f).get("client") or {}).get("send_lag_ms")
    return 1000 * lag["p50"] if lag and "p50" in lag else None


def fortio_result(path):
    """Requests and achieved rate of a fortio -json file; exits on non-200s."""
    with open(path) as f:
        res = json.load(f)
    codes = res["RetCodes"]
    bad = {k: v for k, v in codes.items() if k != "200"}
    if bad:
        sys.exit("fortio got responses %s; the comparison is void" % bad)
    return sum(codes.values()), res["ActualQPS"]


def wrk_result(out):
    """Requests and requests/s from wrk's output; exits on error responses."""
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        sys.exit("wrk got %s error responses; the comparison is void" % non2xx.group(1))
    return int(re.search(r"(\d+) requests in", out).group(1)), float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


class Ratio:
    """A goal on num's CPU per request over den's."""

    def __init__(self, label, num, den, goal, open_loop):
        self.label, self.num, self.den, self.goal, self.open_loop = label, num, den, goal, open_loop


def verdict(value, goal, below=False):
    met = value < goal if below else value <= goal
    return "met" if met else "NOT met"


def summarize(rounds, ratios, rate, lag_tools):
    """Prints the per-tool medians, each ratio with its goal and verdict, the
    send lag p99 and the achieved rates; returns the lines it printed."""
    lines = []

    def say(s=""):
        print(s)
        lines.append(s)

    n = len(rounds)
    say("== median over %d rounds [lowest..highest]" % n)
    say("%-46s %16s %22s" % ("client", "cpu us/request", "requests/s"))
    tools = list(rounds[0].keys())
    achieved = {}
    for tool in tools:
        cpu = median_spread([r[tool].cpu_us_per_request for r in rounds])
        rps = median_spread([r[tool].achieved_rps for r in rounds])
        achieved[tool] = rps[0]
        say("%-46s %6.2f [%.2f..%.2f] %8.0f [%.0f..%.0f]" % ((tool,) + cpu + rps))
    say()
    for q in ratios:
        value = median_spread([r[q.num].cpu_us_per_request / r[q.den].cpu_us_per_request for r in rounds])
        line = "%-58s %.2fx [%.2f..%.2f]  goal <= %.2fx: %s" % ((q.label,) + value + (q.goal, verdict(value[0], q.goal)))
        short = [t for t in q.open_loop if achieved[t] < REACHED * rate]
        if short:
            line += "  (meaningless: %s reached only %s requests/s of %g)" % (
                " and ".join(short), " and ".join("%.0f" % achieved[t] for t in short), rate)
        say(line)
    for tool in lag_tools:
        lags = [r[tool].send_lag_p99_us for r in rounds]
        if None in lags:
            say("%-58s not in result.json (client.send_lag_ms)" % ("send lag p99, " + tool))
            continue
        value = median_spread(lags)
        say("%-58s %.1f us [%.1f..%.1f]  goal < 100 us: %s" % (("send lag p99, " + tool,) + value + (verdict(value[0], 100, below=True),)))
    say()
    for tool in tools:
        if tool in set(t for q in ratios for t in q.open_loop):
            reached = "reached" if achieved[tool] >= REACHED * rate else "did NOT reach"
            say("achieved rate, %-40s %8.0f requests/s: %s %g" % (tool, achieved[tool], reached, rate))
    return lines


def slack_curve(rounds, slack_tools, peer_tool):
    """Prints, for each (slack, tool) of slack_tools, its CPU per request,
    its ratio to peer_tool's in the same round and its send lag p50 and
    p99, each the median over the rounds [lowest..highest]; returns the
    lines it printed."""
    lines = ["== CPU per request against send lag, by --send-slack (open loop; the ratio is to %s)" % peer_tool,
             "%-10s %22s %22s %22s %22s" % ("slack", "cpu us/request", "ratio", "send lag p50 us", "send lag p99 us")]
    for slack, tool in slack_tools:
        cpu = median_spread([r[tool].cpu_us_per_request for r in rounds])
        ratio = median_spread([r[tool].cpu_us_per_request / r[peer_tool].cpu_us_per_request for r in rounds])
        cells = ["%6.2f [%.2f..%.2f]" % cpu, "%5.2fx [%.2f..%.2f]" % ratio]
        for lags in ([r[tool].send_lag_p50_us for r in rounds], [r[tool].send_lag_p99_us for r in rounds]):
            cells.append("-" if None in lags else "%6.0f [%.0f..%.0f]" % median_spread(lags))
        lines.append("%-10s %22s %22s %22s %22s" % tuple([slack] + cells))
    for line in lines:
        print(line)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="length of each measurement")
    ap.add_argument("--rate", type=float, default=10000, help="open loop requests/s")
    ap.add_argument("--connections", type=int, default=32, help="closed loop connections, and fortio's -c")
    ap.add_argument("--loadprof", help="loadprof binary to measure (default: built from this tree)")
    ap.add_argument("--json", help="also write every round's figures and the summary lines to this file")
    ap.add_argument("--client-core", type=int, default=0)
    ap.add_argument("--server-core", type=int, default=1)
    ap.add_argument("--slacks", default="", help="also the REST open loop at each of these --send-slack values, comma-separated (1ns,40us,1ms)")
    args = ap.parse_args()
    if args.rounds < 3:
        print("note: fewer than 3 rounds give no meaningful spread", file=sys.stderr)
    cpus = os.sched_getaffinity(0)
    if not {args.client_core, args.server_core} <= cpus or args.client_core == args.server_core:
        sys.exit("--client-core %d and --server-core %d must be two different cores of %s"
                 % (args.client_core, args.server_core, sorted(cpus)))
    fortio, wrk = peer("fortio"), peer("wrk")
    peer("taskset")

    work = workdir()
    binary = args.loadprof or build_loadprof(work)
    data = os.path.join(work, "data.json")
    with open(data, "w") as f:
        f.write(BODY)
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' % json.dumps(BODY))
    core, secs, rate, conns = args.client_core, args.seconds, args.rate, args.connections
    nginx, url = start_nginx(work, core=args.server_core)
    sim, _, grpc_port = start_sim(binary, rest=False, grpc=True, core=args.server_core)
    addr = "127.0.0.1:%d" % grpc_port
    print("loadprof %s (%s), fortio %s, %s; client on core %d, server on core %d, %ds each; load average %.2f"
          % (binary, git_head(), tool_version(fortio, ["version"]), tool_version(wrk, ["--version"]).split(" Copyright")[0],
             core, args.server_core, secs, os.getloadavg()[0]))

    def run_loadprof(target, load):
        out = os.path.join(work, "result.json")
        _, cpu = run_cpu([binary, "run"] + target + ["--data", data] + load +
                         ["--duration", "%ds" % secs, "-q", "--out", out], core)
        n, rps, lag = loadprof_result(out)
        return Measure(n, cpu, rps, lag, loadprof_lag_p50(out))

    rest = ["--url", url, "--rest-engine", "epoll"]
    grpc = ["--grpc", addr, "--model", "test_model"]
    closed, opened = ["--concurrency", str(conns)], ["--rate", "%g" % rate]

    def run_wrk():
        out, cpu = run_cpu([wrk, "-t1", "-c%d" % conns, "-d%ds" % secs, "-s", lua, url], core)
        n, rps = wrk_result(out)
        return Measure(n, cpu, rps)

    def fortio_measure():
        out = os.path.join(work, "fortio.json")
        _, cpu = run_cpu([fortio, "load", "-qps", "%g" % rate, "-c", str(conns), "-t", "%ds" % secs,
                          "-loglevel", "Warning", "-payload", BODY, "-content-type", "application/json",
                          "-json", out, url], core)
        n, rps = fortio_result(out)
        return Measure(n, cpu, rps)

    names = {
        "wrk": "REST wrk -t1 -c%d" % conns,
        "lp_closed": "REST loadprof -c %d" % conns,
        "fortio": "REST fortio -qps %g -c %d" % (rate, conns),
        "lp_open": "REST loadprof --rate %g" % rate,
        "grpc_open": "gRPC loadprof --rate %g" % rate,
        "grpc_closed": "gRPC loadprof -c %d" % conns,
    }
    plan = [
        (names["wrk"], run_wrk),
        (names["lp_closed"], lambda: run_loadprof(rest, closed)),
        (names["fortio"], fortio_measure),
        (names["lp_open"], lambda: run_loadprof(rest, opened)),
        (names["grpc_open"], lambda: run_loadprof(grpc, opened)),
        (names["grpc_closed"], lambda: run_loadprof(grpc, closed)),
    ]
    slack_tools = []
    for slack in [v for v in args.slacks.split(",") if v]:
        name = "REST loadprof --rate %g --send-slack %s" % (rate, slack)
        slack_tools.append((slack, name))
        plan.append((name, lambda slack=slack: run_loadprof(rest, opened + ["--send-slack", slack])))
    ratios = [
        Ratio("REST open loop, loadprof / fortio (cpu per request)", names["lp_open"], names["fortio"], 0.6,
              [names["lp_open"], names["fortio"]]),
        Ratio("REST loadprof, open loop / closed loop", names["lp_open"], names["lp_closed"], 1.5, [names["lp_open"]]),
        Ratio("gRPC loadprof, open loop / closed loop", names["grpc_open"], names["grpc_closed"], 1.5,
              [names["grpc_open"]]),
        Ratio("REST closed loop, loadprof / wrk", names["lp_closed"], names["wrk"], 0.85, []),
    ]
    rounds = []
    try:
        for i in range(args.rounds):
            order = plan if i % 2 == 0 else plan[::-1]
            got = {}
            print("\n== round %d of %d" % (i + 1, args.rounds))
            print("%-46s %10s %12s %8s %12s %14s" % ("client", "requests", "requests/s", "cpu s", "cpu us/req", "send lag p99"))
            for name, measure in order:
                m = measure()
                got[name] = m
                lag = "" if m.send_lag_p99_us is None else "%.1f us" % m.send_lag_p99_us
                print("%-46s %10d %12.0f %8.2f %12.2f %14s" % (name, m.requests, m.achieved_rps, m.cpu_s,
                                                               m.cpu_us_per_request, lag), flush=True)
            rounds.append({name: got[name] for name, _ in plan})
        print()
        lines = summarize(rounds, ratios, rate, [names["lp_open"], names["grpc_open"]])
        if slack_tools:
            print()
            lines += [""] + slack_curve(rounds, slack_tools, names["fortio"])
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"rate": rate, "seconds": secs, "connections": conns, "loadprof": git_head(),
                           "rounds": [{name: vars(m) | {"cpu_us_per_request": m.cpu_us_per_request}
                                       for name, m in r.items()} for r in rounds],
                           "summary": lines}, f, indent=1)
        # Send lag and the cheaper tools' figures suffer first on a busy
        # machine: this says how busy it was.
        print("\nload average at the end: %.2f (an idle 2-core machine is below 1)" % os.getloadavg()[0])
    finally:
        stop(sim)
        stop(nginx)


def git_head():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return "commit " + out.stdout.strip() if out.returncode == 0 else "no git"


def tool_version(path, args):
    out = subprocess.run([path] + args, capture_output=True, text=True)
    return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else "?"


if __name__ == "__main__":
    main()
