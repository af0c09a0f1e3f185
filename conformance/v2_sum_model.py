"""An MLServer runtime for loadprof's V2 conformance tests: whatever inputs
it gets, each example's output "y" is the sum of its elements over all the
inputs (BYTES elements count as their lengths, BOOL as 0 or 1), as FP32;
"calls" is how many inference calls the model has answered, this one
included, so that a test can compare what it sent with what was served."""
import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


def example_sums(inp):
    shape = list(inp.shape)
    if inp.datatype == "BYTES":
        # The elements as they came (bytes over gRPC, str over REST JSON):
        # NumpyCodec would read gRPC's elements of unequal length as one
        # buffer of fixed-size strings.
        data = getattr(inp.data, "root", inp.data)
        values = np.array([len(v) for v in data], dtype=np.float64)
    else:
        values = NumpyCodec.decode_input(inp)
    values = np.asarray(values).astype(np.float64).reshape(shape[0] if shape else 1, -1)
    return values.sum(axis=1)


class SumModel(MLModel):
    async def load(self) -> bool:
        self.calls = 0
        return True

    async def predict(self, request: InferenceRequest) -> InferenceResponse:
        self.calls += 1
        total = None
        for inp in request.inputs:
            sums = example_sums(inp)
            total = sums if total is None else total + sums
        return InferenceResponse(
            model_name=self.name,
            id=request.id,
            outputs=[
                NumpyCodec.encode_output("y", total.astype(np.float32)),
                NumpyCodec.encode_output("calls", np.array([self.calls], dtype=np.int64)),
            ],
        )
