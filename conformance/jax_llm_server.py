"""A JAX language-model server for loadprof's conformance tests: an
OpenAI-compatible /v1/completions and /v1/chat/completions that streams
Server-Sent Events, one token per call of a jit-compiled decode step, and
jax.profiler.start_server, the ProfilerService that JAX- and
PyTorch/XLA-based LLM servers (vLLM on TPU among them) expose to
TensorBoard's CAPTURE PROFILE.

The "model" is a random dense layer: each decode step maps the previous
hidden state to the next and picks the token with the largest logit, so the
tokens are the program's own, and every one is a real XLA execution that a
profile window records. Decoding runs in one thread at a time, as a server
with one device does.

It prints one JSON line, {"profiler": PORT, "http": PORT}, once the step
has been compiled and both servers listen, and serves until stdin closes.
It counts what it served (GET /counts: requests, output tokens) so that a
test can compare loadprof's figures with the server's."""
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jax
import jax.numpy as jnp

VOCAB = 256
HIDDEN = 64
MODEL = "jax-tiny"


@jax.jit
def decode_step(h, w, e):
    logits = jnp.tanh(h @ w) @ e.T
    token = jnp.argmax(logits)
    return jnp.tanh(h + e[token]), token


key = jax.random.PRNGKey(11)
kw, ke = jax.random.split(key)
W = jax.random.normal(kw, (HIDDEN, HIDDEN)) / 8
E = jax.random.normal(ke, (VOCAB, HIDDEN))
device_lock = threading.Lock()
counts_lock = threading.Lock()
counts = {"requests": 0, "output_tokens": 0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Each event is its own small write: without this, Nagle's
        # algorithm holds the first behind the unacknowledged headers until
        # the client's delayed ACK, 40 ms of TTFT that real servers
        # (uvicorn among them) do not have.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        if self.path != "/counts":
            self.send_error(404)
            return
        with counts_lock:
            body = json.dumps(counts).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        chat = self.path == "/v1/chat/completions"
        if not chat and self.path != "/v1/completions":
            self.send_error(404)
            return
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if chat:
            prompt = " ".join(m.get("content", "") for m in req.get("messages", []))
        else:
            prompt = req.get("prompt", "")
        prompt_tokens = len(prompt.split())
        max_tokens = int(req.get("max_tokens", 16))
        usage = bool((req.get("stream_options") or {}).get("include_usage"))
        if not req.get("stream"):
            self.send_error(400, "this server streams only")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        rid = "cmpl-%d" % time.monotonic_ns()
        kind = "chat.completion.chunk" if chat else "text_completion"

        def event(obj):
            data = b"data: " + json.dumps(obj).encode() + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        h = jnp.full((HIDDEN,), (prompt_tokens % 7) / 7.0)
        for i in range(max_tokens):
            with device_lock:
                h, token = decode_step(h, W, E)
                token = int(token)
            text = " t%d" % token
            if chat:
                delta = {"content": text} if i else {"role": "assistant", "content": text}
                choice = {"index": 0, "delta": delta, "finish_reason": None}
            else:
                choice = {"index": 0, "text": text, "finish_reason": None}
            if i == max_tokens - 1:
                choice["finish_reason"] = "length"
            event({"id": rid, "object": kind, "model": MODEL, "choices": [choice]})
        if usage:
            event({"id": rid, "object": kind, "model": MODEL, "choices": [],
                   "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": max_tokens,
                             "total_tokens": prompt_tokens + max_tokens}})
        self.wfile.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
        self.wfile.flush()
        with counts_lock:
            counts["requests"] += 1
            counts["output_tokens"] += max_tokens


def main():
    h, _ = decode_step(jnp.zeros(HIDDEN), W, E)  # compile before anyone profiles
    h.block_until_ready()
    profiler_port = free_port()
    profiler = jax.profiler.start_server(profiler_port)  # noqa: F841 (serves while referenced)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print(json.dumps({"profiler": profiler_port, "http": httpd.server_address[1]}), flush=True)
    sys.stdin.read()
    httpd.shutdown()


if __name__ == "__main__":
    main()
