"""Renders V2 infer requests in the binary tensor extension with
tritonclient's own HTTP encoder (InferInput.set_data_from_numpy(...,
binary_data=True) and InferenceServerClient.generate_request_body), for
the test to compare with loadprof's rendering byte for byte.

stdin: a JSON list of requests, each {"id"?, "inputs": [{"name",
"datatype", "shape", "data"}], "outputs": [NAME, ...]} with data flat
(BYTES elements as strings, UTF-8 encoded). stdout: a JSON list of
{"header_length": N, "body": BASE64}, one per request."""
import base64
import json
import sys

import numpy as np
import tritonclient.http as httpclient

DTYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32,
          "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_, "BYTES": np.object_}


def render(req):
    inputs = []
    for spec in req["inputs"]:
        data = spec["data"]
        if spec["datatype"] == "BYTES":
            data = [s.encode("utf-8") for s in data]
        array = np.array(data, dtype=DTYPES[spec["datatype"]]).reshape(spec["shape"])
        infer_input = httpclient.InferInput(spec["name"], list(spec["shape"]), spec["datatype"])
        infer_input.set_data_from_numpy(array, binary_data=True)
        inputs.append(infer_input)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=True) for name in req["outputs"]]
    body, header_length = httpclient.InferenceServerClient.generate_request_body(
        inputs, outputs=outputs, request_id=req.get("id", ""))
    return {"header_length": header_length, "body": base64.b64encode(body).decode()}


json.dump([render(r) for r in json.load(sys.stdin)], sys.stdout)
