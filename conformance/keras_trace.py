"""Traces a small Keras model fed by a tf.data pipeline with TensorFlow's
own profiler (tf.profiler.experimental.start/stop) and writes the trace
under LOGDIR/plugins/profile/RUN: keras_trace.py LOGDIR [STEPS].

Its host plane has what a served Keras model's has and the dense model of
server.py has not: grappler's fused ops (_FusedMatMul named after the layer's
activation, "sequential_1/dense_b_1/Relu"), ops nested in ops, and tf.data
iterator events ("Iterator::Root::Prefetch::..."), which xprof counts as ops
of type Dataset."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main():
    logdir = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    model = tf.keras.Sequential([
        tf.keras.Input((16,)),
        tf.keras.layers.Dense(64, activation="relu", name="dense_a"),
        tf.keras.layers.Dense(64, activation="relu", name="dense_b"),
        tf.keras.layers.Dense(4, name="out"),
    ])
    x = np.random.default_rng(1).standard_normal((32, 16)).astype(np.float32)
    batches = iter(tf.data.Dataset.from_tensor_slices(x).batch(8).map(lambda v: v * 2.0).repeat())

    @tf.function
    def step(v):
        return tf.reduce_sum(model(v))

    for _ in range(3):  # traced and warm before the profile
        step(next(batches))
        model.predict(x, verbose=0)
    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        step(next(batches))
        model.predict(x, verbose=0)
    tf.profiler.experimental.stop()


if __name__ == "__main__":
    main()
