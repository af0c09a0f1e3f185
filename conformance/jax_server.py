"""A small JAX program with JAX's profiler server, for loadprof's conformance
tests: a jit-compiled function (a dense layer and a reduction) called in a
loop, and jax.profiler.start_server, the ProfilerService that JAX programs
expose to TensorBoard's CAPTURE PROFILE.

It prints one JSON line, {"profiler": PORT}, once the function has been
compiled and the server listens, then keeps calling the function until
stdin closes or it is killed."""
import json
import socket
import sys
import threading
import time

import jax
import jax.numpy as jnp


@jax.jit
def layer(x, w, b):
    return jnp.tanh(x @ w + b).sum(axis=1)


def free_port():
    # JAX's server takes a port, not a listener: ask the kernel for a free
    # one on loopback.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    key = jax.random.PRNGKey(7)
    kx, kw = jax.random.split(key)
    x = jax.random.normal(kx, (32, 64))
    w = jax.random.normal(kw, (64, 64))
    b = jnp.zeros(64)
    layer(x, w, b).block_until_ready()  # compile before anyone profiles
    port = free_port()
    server = jax.profiler.start_server(port)  # noqa: F841 (serves while referenced)

    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    print(json.dumps({"profiler": port}), flush=True)
    while not done.is_set():
        layer(x, w, b).block_until_ready()
        time.sleep(0.002)


if __name__ == "__main__":
    main()
