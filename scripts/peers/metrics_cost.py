"""What --metrics costs the client: CPU per request of `loadprof run` at the
same rate without --metrics, scraping the simulator's metrics page, and
scraping a page the size of a busy TF Serving's (5 models, TF Serving's 34
latency buckets, 200 more families of TensorFlow's own), served by a second
process so that its serving is not the client's. Runs alternate, repeated,
on a machine that may be busy: compare the medians.

    python3 scripts/peers/metrics_cost.py [RATE] [SECONDS] [REPEATS]
"""
import http.server
import json
import os
import statistics
import sys
import threading

from common import build_loadprof, start_sim, timed, wait_port, free_port, workdir


def tf_serving_page(scale=1):
    """The page at scale: its serving families' counts times scale (a
    server counting on), TensorFlow's own families as they are."""
    bounds, v = [], 10.0
    for _ in range(33):
        bounds.append("%.6g" % v)
        v *= 1.8
    bounds.append("+Inf")
    out = ["# TYPE :tensorflow:serving:request_count counter"]
    for m in range(5):
        for st in ("OK", "INVALID_ARGUMENT", "NOT_FOUND"):
            out.append(':tensorflow:serving:request_count{model_name="model%d",status="%s"} %d' % (m, st, 1000 * scale))

    def hist(name, labels):
        for i, le in enumerate(bounds):
            out.append('%s_bucket{%s,le="%s"} %d' % (name, labels, le, (i + 1) * scale))
        out.append("%s_sum{%s} %d" % (name, labels, 1000 * scale))
        out.append("%s_count{%s} %d" % (name, labels, len(bounds) * scale))

    out.append("# TYPE :tensorflow:serving:request_latency histogram")
    for m in range(5):
        for ep in ("REST", "GRPC"):
            hist(":tensorflow:serving:request_latency", 'model_name="model%d",API="predict",entrypoint="%s"' % (m, ep))
    out.append("# TYPE :tensorflow:serving:runtime_latency histogram")
    for m in range(5):
        hist(":tensorflow:serving:runtime_latency", 'model_name="model%d",API="Predict",runtime="TF1"' % m)
    for f in range(200):
        out.append("# TYPE :tensorflow:core:family%d counter" % f)
        for op in range(3):
            out.append(':tensorflow:core:family%d{op="op%d"} %d' % (f, op, f))
    return ("\n".join(out) + "\n").encode()


def serve_page(page):
    """Serves page (bytes, or a function of the request's number giving
    them) on a free loopback port from a thread of this process (not the
    client's)."""
    served = [0]
    pages = page if callable(page) else (lambda n: page)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served[0] += 1
            page = pages(served[0])
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    wait_port(port)
    return "http://127.0.0.1:%d/monitoring/prometheus/metrics" % port


def main():
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 1000
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    work = workdir()
    binary = build_loadprof(work)
    sim, rest_port, _ = start_sim(binary)
    big = serve_page(tf_serving_page())
    # The same page counting on, as a busy server's does: its serving
    # families change from scrape to scrape (a page that never changes is
    # the best case for a parser that reuses what did not change).
    counting = serve_page(tf_serving_page)
    data = os.path.join(work, "data.json")
    with open(data, "w") as f:
        f.write('{"instances": [[1, 2, 3, 4]]}\n')
    url = "http://127.0.0.1:%d/v1/models/test_model:predict" % rest_port
    sim_page = "http://127.0.0.1:%d/monitoring/prometheus/metrics" % rest_port
    cases = [("without --metrics", []), ("sim page, 1s", ["--metrics", sim_page]),
             ("93 KB page, 1s", ["--metrics", big]), ("93 KB page, 100ms", ["--metrics", big, "--metrics-interval", "100ms"]),
             ("counting, 100ms", ["--metrics", counting, "--metrics-interval", "100ms"])]
    per_request = {name: [] for name, _ in cases}
    try:
        for _ in range(repeats):
            for name, extra in cases:
                out = os.path.join(work, "r.json")
                _, (user, system) = timed([binary, "run", "--url", url, "--data", data, "--rate", str(rate),
                                           "--duration", "%ds" % seconds, "-q", "--out", out] + extra)
                with open(out) as f:
                    res = json.load(f)
                if extra and res["server"]["endpoints"][0]["failed_scrapes"]:
                    raise SystemExit("%s: scrapes failed" % name)
                per_request[name].append((user + system) / res["requests"] * 1e6)
    finally:
        sim.terminate()
    base = statistics.median(per_request[cases[0][0]])
    print("loadprof run --rate %g for %d s, %d runs each, alternating" % (rate, seconds, repeats))
    print("%-20s %12s %12s   %s" % ("case", "cpu us/r", "vs without", "each run"))
    for name, _ in cases:
        m = statistics.median(per_request[name])
        print("%-20s %12.1f %+12.1f   %s" % (name, m, m - base, " ".join("%.0f" % v for v in per_request[name])))


if __name__ == "__main__":
    main()
