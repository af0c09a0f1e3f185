"""A small PyTorch/XLA program with its profiler server, for loadprof's
conformance tests: a dense layer on the XLA device (PJRT_DEVICE=CPU), run
in a loop, and torch_xla.debug.profiler.start_server, the same
ProfilerService as TensorFlow's and JAX's.

It prints one JSON line, {"profiler": PORT}, once the graph has been
compiled and the server listens, then keeps running it until stdin closes
or it is killed."""
import json
import socket
import sys
import threading
import time

import torch
import torch_xla
import torch_xla.debug.profiler as xp


def free_port():
    # The server takes a port, not a listener: ask the kernel for a free one
    # on loopback.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(w, device):
    x = torch.randn(32, 64, device=device)
    y = torch.tanh(x @ w).sum()
    torch_xla.sync()
    return y.item()


def main():
    device = torch_xla.device()
    torch.manual_seed(7)
    w = torch.randn(64, 64, device=device)
    step(w, device)  # compile before anyone profiles
    port = free_port()
    server = xp.start_server(port)  # noqa: F841 (serves while referenced)

    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    print(json.dumps({"profiler": port}), flush=True)
    while not done.is_set():
        step(w, device)
        time.sleep(0.002)


if __name__ == "__main__":
    main()
