"""Helpers shared by the comparison scripts: build loadprof, install the
peers, start the servers (the simulator, nginx) on free loopback ports, and
time a client process's CPU."""
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("LOADPROF_CACHE", os.path.expanduser("~/.cache/loadprof"))
PEERS_BIN = os.path.join(CACHE, "peers", "bin")

# The body every client sends, and what the nginx target answers.
BODY = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
NGINX_ANSWER = '{"predictions":[[1.0]]}'
NGINX_PATH = "/v1/models/m:predict"


def peer(name):
    """The path of a peer tool: fortio and ghz from PEERS_BIN, wrk and nginx
    from the system. Runs install.sh once when one is missing."""
    def find():
        if name in ("fortio", "ghz"):
            path = os.path.join(PEERS_BIN, name)
            return path if os.access(path, os.X_OK) else None
        return shutil.which(name) or (("/usr/sbin/" + name) if os.access("/usr/sbin/" + name, os.X_OK) else None)
    path = find()
    if path is None:
        print("%s is missing: running scripts/peers/install.sh" % name, file=sys.stderr)
        if subprocess.run(["bash", os.path.join(HERE, "install.sh")], stdout=subprocess.DEVNULL).returncode != 0:
            sys.exit("scripts/peers/install.sh failed; %s is needed" % name)
        path = find()
        if path is None:
            sys.exit("%s is still missing after scripts/peers/install.sh" % name)
    return path


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


def pinned(cmd, core):
    """cmd run on one core (taskset), or as it is when core is None."""
    return cmd if core is None else ["taskset", "-c", str(core)] + cmd


def run_cpu(cmd, core=None, cwd=None):
    """Runs cmd to completion, pinned to core, with stdout and stderr in
    files; returns (stdout, cpu seconds user+system of the process and the
    children it waited for). The CPU comes from wait4's rusage of this one
    process, so it is unaffected by how busy the rest of the machine is.
    taskset execs cmd, so the process measured is the tool itself."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(pinned(cmd, core), stdout=out, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        sys.exit("%s exited %d:\n%s%s" % (" ".join(cmd), proc.returncode, stdout[-2000:], stderr[-2000:]))
    return stdout, usage.ru_utime + usage.ru_stime


def start_sim(binary, rest=True, grpc=False, core=None):
    """Starts `loadprof sim` with no simulated latency, pinned to core when
    given; returns (process, rest port, grpc port)."""
    rest_port, grpc_port = free_port(), free_port()
    args = [binary, "sim", "--latency", "0", "--jitter", "0",
            "--rest", "127.0.0.1:%d" % rest_port if rest else "",
            "--grpc", "127.0.0.1:%d" % grpc_port if grpc else ""]
    proc = subprocess.Popen(pinned(args, core), stdout=subprocess.DEVNULL)
    if rest:
        wait_port(rest_port)
    if grpc:
        wait_port(grpc_port)
    return proc, rest_port, grpc_port


NGINX_CONF = """
worker_processes 1;
daemon off;
master_process off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:%(port)d;
        location = %(path)s {
            default_type application/json;
            return 200 '%(answer)s';
        }
    }
}
"""


def start_nginx(work, core=None):
    """Starts nginx (one process, no master) on a free 127.0.0.1 port with a
    config written under work, answering POST NGINX_PATH with NGINX_ANSWER;
    returns (process, url). keepalive_requests is raised so that no client
    pays for reconnecting every 1000 requests (nginx's default)."""
    nginx = peer("nginx")
    port = free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"dir": work, "port": port, "path": NGINX_PATH, "answer": NGINX_ANSWER})
    proc = subprocess.Popen(pinned([nginx, "-p", work, "-c", conf], core), stdout=subprocess.DEVNULL)
    wait_port(port)
    return proc, "http://127.0.0.1:%d%s" % (port, NGINX_PATH)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def median_spread(values):
    """(median, min, max) of values."""
    return statistics.median(values), min(values), max(values)


def workdir():
    return tempfile.mkdtemp(prefix="loadprof-bench-")


def print_rows(rows):
    print("%-30s %10s %12s %8s %8s %10s %10s" % ("client", "requests", "requests/s", "user s", "sys s", "user us/r", "cpu us/r"))
    for name, n, rps, (user, system) in rows:
        print("%-30s %10d %12.0f %8.2f %8.2f %10.2f %10.2f" % (name, n, rps, user, system, 1e6 * user / n, 1e6 * (user + system) / n))
