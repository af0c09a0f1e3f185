"""Captures a profile with TensorFlow's own python client, as TensorBoard
and TF Serving's profiler_client.py do: tf_trace.py ADDR LOGDIR DURATION_MS."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

addr, logdir, duration_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
tf.profiler.experimental.client.trace(addr, logdir, duration_ms)
