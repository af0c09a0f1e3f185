#!/usr/bin/env python3
"""Runs loadprof and ghz against the same loopback gRPC PredictionService in
one run and prints requests/s and client CPU time per request for both.

Usage: python3 scripts/peers/grpc_vs_ghz.py [--seconds 10] [--concurrency 16] [--connections 1]

The server is `loadprof sim` with no simulated latency on a free 127.0.0.1
port. ghz (the version scripts/peers/install.sh pins, built with `go install`
into ~/.cache/loadprof/peers/bin; the script runs install.sh when it is
missing) runs with --disable-template-functions
--disable-template-data against loadprof's own proto files, with the same
predict request loadprof sends. CPU is the client process's user+system time
from rusage; compare the two tools within one run.
"""
import argparse
import json
import os
import re
import sys

from common import BODY, ROOT, build_loadprof, peer, print_rows, start_sim, timed, workdir

# The same PredictRequest in protojson, for ghz.
GHZ_DATA = {"model_spec": {"name": "test_model", "signature_name": "serving_default"},
            "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "1"}, {"size": "4"}]},
                             "float_val": [1, 2, 3, 4]}}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--connections", type=int, default=1)
    args = ap.parse_args()
    ghz = peer("ghz")
    work = workdir()
    binary = build_loadprof(work)
    data = os.path.join(work, "data.json")
    with open(data, "w") as f:
        f.write(BODY)
    ghz_data = os.path.join(work, "ghz.json")
    with open(ghz_data, "w") as f:
        json.dump(GHZ_DATA, f)
    sim, _, port = start_sim(binary, rest=False, grpc=True)
    addr = "127.0.0.1:%d" % port
    try:
        def run_ghz():
            out, cpu = timed([ghz, "--insecure", "--proto", os.path.join(ROOT, "proto/tensorflow_serving/apis/prediction_service.proto"),
                              "--import-paths", os.path.join(ROOT, "proto"),
                              "--call", "tensorflow.serving.PredictionService.Predict", "-D", ghz_data,
                              "--disable-template-functions", "--disable-template-data",
                              "-c", str(args.concurrency), "--connections", str(args.connections),
                              "-z", "%ds" % args.seconds, addr])
            count = int(re.search(r"Count:\s+(\d+)", out).group(1))
            ok = re.search(r"\[OK\]\s+(\d+) responses", out)
            n = int(ok.group(1)) if ok else 0
            # ghz closes its connections at the deadline under calls still in
            # flight; a few such Unavailable errors are its cut-off, more is a fault.
            if count - n > args.concurrency:
                sys.exit("ghz got errors; the comparison is void:\n" + out)
            return ("ghz -c %d --connections %d" % (args.concurrency, args.connections), n, n / args.seconds, cpu)

        def run_loadprof():
            result = os.path.join(work, "result.json")
            _, cpu = timed([binary, "run", "--grpc", addr, "--model", "test_model", "--data", data,
                            "--concurrency", str(args.concurrency), "--connections", str(args.connections),
                            "--duration", "%ds" % args.seconds, "--out", result, "-q"])
            res = json.load(open(result))
            if res["errors"]:
                sys.exit("loadprof got errors %s; the comparison is void" % res["errors"])
            n = res["requests"] + 1  # and the preflight request
            return ("loadprof -c %d --connections %d" % (args.concurrency, args.connections), n, res["throughput_rps"], cpu)

        rows = [run_ghz(), run_loadprof(), run_ghz(), run_loadprof()]  # interleaved
        print_rows(rows)
        per = [sum(r[3]) / r[1] for r in rows]
        print("loadprof CPU per request / ghz CPU per request: %.2f, %.2f (target: at most 0.7)"
              % (per[1] / per[0], per[3] / per[2]))
    finally:
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()
