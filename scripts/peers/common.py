"""Helpers shared by the comparison scripts: build loadprof, start the
simulator on a free loopback port, and time a client process's CPU."""
import os
import resource
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("LOADPROF_CACHE", os.path.expanduser("~/.cache/loadprof"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listens on 127.0.0.1:%d" % port)


def timed(cmd, **kw):
    """Runs cmd to completion; returns (stdout, (user, system) cpu seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out.stdout, (after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime)


def build_loadprof(work):
    binary = os.path.join(work, "loadprof")
    subprocess.run(["go", "build", "-o", binary, "./cmd/loadprof"], check=True, cwd=ROOT)
    return binary


def start_sim(binary, rest=True, grpc=False):
    """Starts `loadprof sim` with no simulated latency; returns (process, rest port, grpc port)."""
    rest_port, grpc_port = free_port(), free_port()
    args = [binary, "sim", "--latency", "0", "--jitter", "0",
            "--rest", "127.0.0.1:%d" % rest_port if rest else "",
            "--grpc", "127.0.0.1:%d" % grpc_port if grpc else ""]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    if rest:
        wait_port(rest_port)
    if grpc:
        wait_port(grpc_port)
    return proc, rest_port, grpc_port


def workdir():
    return tempfile.mkdtemp(prefix="loadprof-bench-")


def print_rows(rows):
    print("%-30s %10s %12s %8s %8s %10s %10s" % ("client", "requests", "requests/s", "user s", "sys s", "user us/r", "cpu us/r"))
    for name, n, rps, (user, system) in rows:
        print("%-30s %10d %12.0f %8.2f %8.2f %10.2f %10.2f" % (name, n, rps, user, system, 1e6 * user / n, 1e6 * (user + system) / n))
