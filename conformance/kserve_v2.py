"""Serves models of the test's own with KServe's ModelServer, which speaks
the Open Inference Protocol (KServe V2) REST routes, the binary tensor
extension included, beside TF Serving's v1 REST protocol, on a free
loopback port printed as one JSON line ({"rest": PORT}) once
the models are ready. Nothing is downloaded.

Models (the same function as conformance/mlserver_v2.py's, and the
simulator's: per row the sum of the numbers, byte lengths of strings and
true booleans):
- "scorer": x (FP32 [-1, 4]), ids (INT64 [-1, 2]), text (BYTES [-1]),
  flag (BOOL [-1]); output y (FP32 [-1]).
- "half": x (FP16 [-1, 4]), which only the binary extension carries;
  output y (FP32 [-1]).
Each counts its V2 infer calls in the file --count-dir/NAME, which the
test reads. (gRPC stays off: KServe would listen on every interface.)

The process ends when its stdin closes."""
import argparse
import base64
import json
import os
import socket
import sys
import threading
import time
import urllib.request

import numpy as np


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SPECS = {
    "scorer": [("x", "FP32", [-1, 4]), ("ids", "INT64", [-1, 2]), ("text", "BYTES", [-1]), ("flag", "BOOL", [-1])],
    "half": [("x", "FP16", [-1, 4])],
}


def b64(v):
    if isinstance(v, dict) and set(v) == {"b64"}:
        return base64.b64decode(v["b64"])
    return v


def score(arrays):
    """Per row: sum of numbers, byte lengths of strings, true booleans."""
    total = None
    for a in arrays:
        if isinstance(a, list) and a and isinstance(a[0], (str, bytes)):
            # Mixed str and bytes would not make one numpy array.
            a = [len(v if isinstance(v, bytes) else v.encode()) for v in a]
        a = np.asarray(a)
        rows = a.shape[0] if a.ndim else 1
        if a.dtype == object or a.dtype.kind in "SU":
            flat = np.array([len(v if isinstance(v, bytes) else str(v).encode()) for v in a.reshape(-1)], dtype=np.float64)
        else:
            flat = a.astype(np.float64).reshape(-1)
        part = flat.reshape(rows, -1).sum(axis=1)
        total = part if total is None else total + part
    return total.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count-dir", required=True)
    args = ap.parse_args()

    import kserve
    import kserve.protocol.rest.server as rest_server
    from kserve import InferOutput, InferRequest, InferResponse

    # KServe listens on 0.0.0.0; the tests keep everything on loopback.
    uvicorn_config = rest_server.uvicorn.Config

    class LoopbackConfig(uvicorn_config):
        def __init__(self, *a, **kw):
            kw["host"] = "127.0.0.1"
            super().__init__(*a, **kw)

    rest_server.uvicorn.Config = LoopbackConfig

    class Scorer(kserve.Model):
        def __init__(self, name):
            super().__init__(name)
            self.calls = 0
            self.ready = True

        def get_input_types(self):
            return [{"name": n, "datatype": d, "shape": s} for n, d, s in SPECS[self.name]]

        def get_output_types(self):
            return [{"name": "y", "datatype": "FP32", "shape": [-1]}]

        def predict(self, payload, headers=None):
            if isinstance(payload, InferRequest):
                by_name = {i.name: i.as_numpy() for i in payload.inputs}
                y = score([by_name[n] for n, _, _ in SPECS[self.name]])
                self.calls += 1
                path = os.path.join(args.count_dir, self.name)
                with open(path + ".tmp", "w") as f:
                    f.write(str(self.calls))
                os.replace(path + ".tmp", path)
                out = InferOutput(name="y", shape=list(y.shape), datatype="FP32")
                out.set_data_from_numpy(y, binary_data=False)
                return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[out],
                                     use_binary_outputs=payload.use_binary_outputs,
                                     requested_outputs=payload.request_outputs)
            # TF Serving's v1 body, named instances or rows of the only
            # input; KServe leaves {"b64": ...} values to the model.
            rows = [{k: b64(v) for k, v in r.items()} if isinstance(r, dict) else {SPECS[self.name][0][0]: r}
                    for r in payload["instances"]]
            cols = [[r[n] for r in rows] for n, _, _ in SPECS[self.name]]
            return {"predictions": score(cols).tolist()}

    port, grpc_port = free_port(), free_port()

    def stop_when_stdin_closes():
        sys.stdin.read()
        os._exit(0)

    def announce():
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v2/health/ready" % port, timeout=1) as r:
                    if r.status == 200:
                        print(json.dumps({"rest": port}), file=announce_to, flush=True)
                        return
            except Exception:
                time.sleep(0.1)
        os._exit(1)

    # KServe's access log goes to stdout: the first line there is the port's.
    announce_to, sys.stdout = sys.stdout, sys.stderr
    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    threading.Thread(target=announce, daemon=True).start()
    kserve.ModelServer(http_port=port, grpc_port=grpc_port, enable_grpc=False, workers=1).start([Scorer(n) for n in SPECS])


if __name__ == "__main__":
    main()
