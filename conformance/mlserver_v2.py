"""Serves a small model of the test's own over the Open Inference Protocol
(KServe V2) with Seldon's MLServer: REST and gRPC on free loopback ports,
printed as one JSON line ({"rest": PORT, "grpc": PORT}, and "metrics": PORT
with --metrics) once REST answers.
Nothing is downloaded: the model is the custom MLModel runtime below.

The model "scorer" has inputs x (FP32 [-1, 4]), ids (INT64 [-1, 2]), text
(BYTES [-1]) and flag (BOOL [-1]), and one output y (FP32 [-1]): for each
row, the sum of its x and ids, the byte length of its text, and 1 if its
flag is true (the simulator's model computes the same). Every infer call
is counted in the file given as --count, which the test reads.

The process ends when its stdin closes."""
import argparse
import asyncio
import json
import os
import socket
import sys
import threading
import time

import numpy as np
from mlserver import MLModel, MLServer
from mlserver.codecs import NumpyCodec
from mlserver.settings import ModelSettings, Settings
from mlserver.types import InferenceRequest, InferenceResponse, MetadataTensor


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COUNT_FILE = None
ANNOUNCE = None


class Scorer(MLModel):
    async def load(self):
        self.calls = 0
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        arrays = {inp.name: NumpyCodec.decode_input(inp) for inp in payload.inputs}
        x = arrays["x"].astype(np.float64).reshape(-1, 4)
        ids = arrays["ids"].astype(np.float64).reshape(-1, 2)
        text = arrays["text"].reshape(-1)
        flag = arrays["flag"].astype(bool).reshape(-1)
        lengths = np.array([len(t if isinstance(t, bytes) else str(t).encode()) for t in text], dtype=np.float64)
        y = (x.sum(axis=1) + ids.sum(axis=1) + lengths + flag.astype(np.float64)).astype(np.float32)
        self.calls += 1
        with open(COUNT_FILE + ".tmp", "w") as f:
            f.write(str(self.calls))
        os.replace(COUNT_FILE + ".tmp", COUNT_FILE)
        return InferenceResponse(
            model_name=self.name, id=payload.id,
            outputs=[NumpyCodec.encode_output("y", y)],
        )


def main():
    global COUNT_FILE
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", required=True)
    ap.add_argument("--metrics", action="store_true",
                    help="serve MLServer's Prometheus metrics at /metrics on a port of their own, printed as \"metrics\"")
    args = ap.parse_args()
    COUNT_FILE = args.count
    ports = {"rest": free_port(), "grpc": free_port()}
    metrics = {"metrics_endpoint": None}
    if args.metrics:
        ports["metrics"] = free_port()
        metrics = {"metrics_endpoint": "/metrics", "metrics_port": ports["metrics"]}
    settings = Settings(
        host="127.0.0.1", http_port=ports["rest"], grpc_port=ports["grpc"],
        parallel_workers=0, debug=False, **metrics,
    )
    model = ModelSettings(
        name="scorer", implementation=Scorer,
        inputs=[
            MetadataTensor(name="x", datatype="FP32", shape=[-1, 4]),
            MetadataTensor(name="ids", datatype="INT64", shape=[-1, 2]),
            MetadataTensor(name="text", datatype="BYTES", shape=[-1]),
            MetadataTensor(name="flag", datatype="BOOL", shape=[-1]),
        ],
        outputs=[MetadataTensor(name="y", datatype="FP32", shape=[-1])],
    )

    def stop_when_stdin_closes():
        sys.stdin.read()
        os._exit(0)

    def announce():
        import urllib.request
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v2/models/scorer/ready" % ports["rest"], timeout=1) as r:
                    if r.status == 200:
                        print(json.dumps(ports), file=ANNOUNCE, flush=True)
                        return
            except Exception:
                time.sleep(0.1)
        os._exit(1)

    # MLServer logs to stdout: the first line there is the ports'.
    global ANNOUNCE
    ANNOUNCE, sys.stdout = sys.stdout, sys.stderr
    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    threading.Thread(target=announce, daemon=True).start()
    asyncio.run(MLServer(settings).start([model]))


if __name__ == "__main__":
    main()
