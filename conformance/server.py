"""A real model server for loadprof's conformance tests.

It builds small SavedModels with TensorFlow (never downloaded), loads them
back, and serves them with real components that loadprof did not write:

- TensorFlow Serving's gRPC PredictionService, from the official
  tensorflow-serving-api stubs: Predict runs the SavedModel signature on
  tf.make_ndarray of the received TensorProtos; GetModelMetadata returns the
  SignatureDefs read from the saved_model.pb;
- optionally (--rest) TF Serving's v1 REST protocol through KServe's
  ModelServer, with a model class that runs the same SavedModel;
- TensorFlow's own ProfilerService (tf.profiler.experimental.server.start),
  the same service TF Serving exposes.

It prints one JSON line with its ports when everything listens, then serves
until stdin closes or it is killed. Everything listens on 127.0.0.1 only.
"""
import argparse
import base64
import json
import os
import socket
import sys
import threading
from concurrent import futures

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc  # noqa: E402


class DenseModel(tf.Module):
    """x: float32 [batch, 4] -> relu(x W1 + b1) W2 + b2 -> y: float32 [batch, 2]."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(7)
        self.w1 = tf.Variable(rng.standard_normal((4, 8)).astype(np.float32), name="w1")
        self.b1 = tf.Variable(rng.standard_normal(8).astype(np.float32), name="b1")
        self.w2 = tf.Variable(rng.standard_normal((8, 2)).astype(np.float32), name="w2")
        self.b2 = tf.Variable(rng.standard_normal(2).astype(np.float32), name="b2")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def serve(self, x):
        hidden = tf.nn.relu(tf.matmul(x, self.w1) + self.b1)
        return {"y": tf.matmul(hidden, self.w2) + self.b2}


class TextModel(tf.Module):
    """text: string [batch], count: int64 [batch] -> score: float32 [batch]."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([None], tf.int64, name="count")])
    def serve(self, text, count):
        length = tf.cast(tf.strings.length(text), tf.float32)
        return {"score": length * tf.cast(count, tf.float32)}


def build(workdir):
    """Saves both models as version 1 and loads them back."""
    models = {}
    for name, module in (("dense", DenseModel()), ("text", TextModel())):
        path = os.path.join(workdir, name, "1")
        tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
        loaded = tf.saved_model.load(path)
        sm = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            sm.ParseFromString(f.read())
        models[name] = (loaded, sm.meta_graphs[0].signature_def)
    return models


_request_ids = iter(range(1, 1 << 62))


def run_signature(loaded, signature_name, inputs):
    # One request-level event per predict call (REST and gRPC), named as
    # TF Serving's runs are without batching: TensorFlow's DirectSession
    # marks each Session::Run as a "SessionRun" root event (_r=1) with the
    # step's id.
    with tf.profiler.experimental.Trace("SessionRun", id=next(_request_ids), _r=1):
        fn = loaded.signatures[signature_name]
        outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models):
        self.models = models

    def _model(self, spec, context):
        if spec.name not in self.models:
            context.abort(grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(%s)" % spec.name)
        if spec.HasField("version") and spec.version.value != 1:
            context.abort(grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(%s, %d)" % (spec.name, spec.version.value))
        return self.models[spec.name]

    def Predict(self, request, context):
        loaded, sigs = self._model(request.model_spec, context)
        name = request.model_spec.signature_name or "serving_default"
        if name not in sigs:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "Serving signature key \"%s\" not found." % name)
        try:
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            outputs = run_signature(loaded, name, inputs)
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.signature_name = name
        response.model_spec.version.value = 1
        for k, v in outputs.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        return response

    def GetModelMetadata(self, request, context):
        _, sigs = self._model(request.model_spec, context)
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Metadata field %s is not supported" % list(request.metadata_field))
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for name, sig in sigs.items():
            if not name.startswith("__"):
                sig_map.signature_def[name].CopyFrom(sig)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 1
        response.metadata["signature_def"].Pack(sig_map)
        return response


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def decode_b64(v):
    if isinstance(v, dict):
        if set(v) == {"b64"}:
            return base64.b64decode(v["b64"])
        return {k: decode_b64(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode_b64(x) for x in v]
    return v


def serve_kserve(models, port):
    """Serves the models over TF Serving's v1 REST protocol with KServe's
    ModelServer, in this (the main) thread, until the process ends."""
    import kserve
    import kserve.protocol.rest.server as rest_server

    # KServe listens on 0.0.0.0; the tests keep everything on loopback.
    uvicorn_config = rest_server.uvicorn.Config

    class LoopbackConfig(uvicorn_config):
        def __init__(self, *args, **kwargs):
            kwargs["host"] = "127.0.0.1"
            super().__init__(*args, **kwargs)

    rest_server.uvicorn.Config = LoopbackConfig

    class SavedModelPredictor(kserve.Model):
        def __init__(self, name, loaded, sigs):
            super().__init__(name)
            self.loaded, self.sigs = loaded, sigs
            self.ready = True

        def predict(self, payload, headers=None):
            # KServe hands the body to the model's own code: decode TF
            # Serving's {"b64": ...} binary values here.
            payload = decode_b64(payload)
            sig = self.sigs["serving_default"]
            names = sorted(sig.inputs.keys())
            if "instances" in payload:
                rows = payload["instances"]
                if len(names) == 1 and not isinstance(rows[0], dict):
                    inputs = {names[0]: rows}
                else:
                    inputs = {n: [r[n] for r in rows] for n in names}
            else:
                cols = payload["inputs"]
                inputs = cols if isinstance(cols, dict) else {names[0]: cols}
            arrays = {}
            for n, v in inputs.items():
                dtype = tf.dtypes.as_dtype(sig.inputs[n].dtype)
                arrays[n] = np.asarray(v, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
            outputs = run_signature(self.loaded, "serving_default", arrays)
            if "instances" in payload:
                if len(outputs) == 1:
                    return {"predictions": next(iter(outputs.values())).tolist()}
                keys = sorted(outputs)
                return {"predictions": [{k: outputs[k][i].tolist() for k in keys} for i in range(len(outputs[keys[0]]))]}
            return {"outputs": {k: v.tolist() for k, v in outputs.items()}}

    predictors = [SavedModelPredictor(name, loaded, sigs) for name, (loaded, sigs) in models.items()]
    kserve.ModelServer(http_port=port, grpc_port=free_port(), enable_grpc=False, workers=1).start(predictors)


def wait_port(port, timeout=60.0):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("port %d did not open" % port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rest", action="store_true", help="also serve TF Serving's v1 REST protocol with KServe")
    args = ap.parse_args()
    models = build(args.workdir)

    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                              options=[("grpc.max_receive_message_length", 64 << 20)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(models), grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()

    profiler_port = free_port()
    tf.profiler.experimental.server.start(profiler_port)
    wait_port(profiler_port)

    ports = {"grpc": grpc_port, "profiler": profiler_port}

    def stop_when_stdin_closes():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    if not args.rest:
        print(json.dumps(ports), flush=True)
        threading.Event().wait()
    ports["rest"] = free_port()

    def announce():
        wait_port(ports["rest"])
        print(json.dumps(ports), flush=True)

    threading.Thread(target=announce, daemon=True).start()
    serve_kserve(models, ports["rest"])


if __name__ == "__main__":
    main()
