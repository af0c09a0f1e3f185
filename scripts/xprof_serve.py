"""Serves a TensorBoard logdir with xprof's own web app (the profile plugin
and its frontend, as `xprof --logdir DIR` does), but on 127.0.0.1 only and
on a port the kernel picks, and without xprof's distributed-conversion gRPC
worker, which `xprof` binds on every interface and a single machine does not
need.

    python xprof_serve.py LOGDIR MAX_SECONDS

Prints {"port": N} on one line once the server listens, then serves until
it is killed, its standard input closes, or MAX_SECONDS pass, whichever
comes first, so that it never outlives the script that started it."""
import json
import os
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cheroot import wsgi  # noqa: E402
from xprof import server as xprof_server  # noqa: E402


def main():
    logdir, max_seconds = os.path.abspath(sys.argv[1]), float(sys.argv[2])
    if not os.path.isdir(logdir):
        sys.exit(f"xprof_serve.py: {logdir}: not a directory")
    context = xprof_server.TBContext(
        logdir, xprof_server.DataProvider(logdir), xprof_server.TBContext.Flags(False))
    context.hide_capture_profile_button = True
    context.enable_tab_name_label = False
    context.src_prefix = None
    plugin = xprof_server.ProfilePluginLoader().load(context)
    if plugin is None:
        sys.exit("xprof_serve.py: xprof's profile plugin did not load")
    server = wsgi.Server(("127.0.0.1", 0), xprof_server.make_wsgi_app(plugin))
    server.prepare()

    def stop(reason):
        print(f"xprof_serve.py: stopping ({reason})", file=sys.stderr, flush=True)
        server.stop()
        os._exit(0)

    def watch_stdin():
        sys.stdin.read()
        stop("standard input closed")

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Timer(max_seconds, stop, args=(f"{max_seconds:g} s passed",)).start()
    print(json.dumps({"port": server.bind_addr[1]}), flush=True)
    server.serve()


if __name__ == "__main__":
    main()
