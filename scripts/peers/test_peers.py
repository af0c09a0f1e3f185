"""Tests of the peer scripts' parsing and verdicts, without running any tool:
python3 -m unittest discover -s scripts/peers"""
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import llm_cpu  # noqa: E402
import ratios  # noqa: E402
import soak_rss  # noqa: E402

WRK_OUT = """Running 5s test @ http://127.0.0.1:4000/v1/models/m:predict
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   400.00us  100.00us   2.00ms   90.00%
  250000 requests in 5.00s, 40.00MB read
Requests/sec:  49990.12
Transfer/sec:      8.00MB
"""


def write_json(obj):
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
    return path


def loadprof_json(requests=50000, warmup=0, errors=None, lag_p99_ms=None):
    client = {"max_send_lag_ms": 1.0}
    if lag_p99_ms is not None:
        client["send_lag_ms"] = {"count": requests, "p99": lag_p99_ms}
    return {"requests": requests, "errors": errors or {}, "throughput_rps": 10000.0,
            "phases": {"warmup": {"requests": warmup}}, "client": client}


class ParseTest(unittest.TestCase):
    def test_loadprof_counts_preflight_and_warmup(self):
        n, rps, lag = ratios.loadprof_result(write_json(loadprof_json(50000, warmup=100, lag_p99_ms=0.0425)))
        self.assertEqual(n, 50101)
        self.assertEqual(rps, 10000.0)
        self.assertAlmostEqual(lag, 42.5)

    def test_loadprof_send_lag_p50(self):
        res = loadprof_json(lag_p99_ms=0.09)
        res["client"]["send_lag_ms"]["p50"] = 0.0315
        self.assertAlmostEqual(ratios.loadprof_lag_p50(write_json(res)), 31.5)
        self.assertIsNone(ratios.loadprof_lag_p50(write_json(loadprof_json())))

    def test_loadprof_without_send_lag(self):
        self.assertIsNone(ratios.loadprof_result(write_json(loadprof_json()))[2])

    def test_loadprof_errors_void_the_comparison(self):
        with self.assertRaises(SystemExit):
            ratios.loadprof_result(write_json(loadprof_json(errors={"http_500": 3})))

    def test_fortio(self):
        path = write_json({"RetCodes": {"200": 49990}, "ActualQPS": 9998.0})
        self.assertEqual(ratios.fortio_result(path), (49990, 9998.0))
        with self.assertRaises(SystemExit):
            ratios.fortio_result(write_json({"RetCodes": {"200": 10, "-1": 2}, "ActualQPS": 9998.0}))

    def test_wrk(self):
        self.assertEqual(ratios.wrk_result(WRK_OUT), (250000, 49990.12))
        with self.assertRaises(SystemExit):
            ratios.wrk_result(WRK_OUT + "  Non-2xx or 3xx responses: 7\n")


class SummaryTest(unittest.TestCase):
    def summary(self, rounds, goal=0.6, rate=10000):
        q = ratios.Ratio("open loop, a / b", "a", "b", goal, ["a", "b"])
        with contextlib.redirect_stdout(io.StringIO()):
            return ratios.summarize(rounds, [q], rate, ["a"])

    def round(self, a_us, b_us, a_rps=10000, b_rps=10000, lag=50.0):
        return {"a": ratios.Measure(1000, a_us * 1e-3, a_rps, lag), "b": ratios.Measure(1000, b_us * 1e-3, b_rps)}

    def line(self, lines, prefix):
        return next(s for s in lines if s.startswith(prefix))

    def test_median_and_spread_of_the_ratio(self):
        lines = self.summary([self.round(20, 40), self.round(30, 40), self.round(10, 40)])
        self.assertIn("0.50x [0.25..0.75]  goal <= 0.60x: met", self.line(lines, "open loop, a / b"))

    def test_goal_not_met(self):
        lines = self.summary([self.round(30, 40)] * 3)
        self.assertIn("goal <= 0.60x: NOT met", self.line(lines, "open loop, a / b"))

    def test_a_tool_short_of_the_rate_makes_the_ratio_meaningless(self):
        lines = self.summary([self.round(20, 40, b_rps=9000)] * 3)
        self.assertIn("meaningless: b reached only 9000", self.line(lines, "open loop, a / b"))
        self.assertIn("did NOT reach", self.line(lines, "achieved rate, b"))
        self.assertIn(": reached", self.line(lines, "achieved rate, a"))

    def test_send_lag_goal(self):
        self.assertIn("goal < 100 us: met", self.line(self.summary([self.round(1, 1, lag=99)] * 3), "send lag p99, a"))
        self.assertIn("NOT met", self.line(self.summary([self.round(1, 1, lag=100)] * 3), "send lag p99, a"))
        self.assertIn("not in result.json", self.line(self.summary([self.round(1, 1, lag=None)] * 3), "send lag p99, a"))


class SlackCurveTest(unittest.TestCase):
    def test_ratio_to_the_peer_in_the_same_round_and_lag_medians(self):
        def rnd(a_us, peer_us, p50, p99):
            return {"a": ratios.Measure(1000, a_us * 1e-3, 10000, p99, p50), "peer": ratios.Measure(1000, peer_us * 1e-3, 10000)}
        rounds = [rnd(20, 40, 30, 90), rnd(30, 40, 50, 120), rnd(10, 20, 40, 100)]
        with contextlib.redirect_stdout(io.StringIO()):
            lines = ratios.slack_curve(rounds, [("250us", "a")], "peer")
        row = next(s for s in lines if s.startswith("250us"))
        self.assertEqual(row.split(), ["250us", "20.00", "[10.00..30.00]", "0.50x", "[0.50..0.75]", "40", "[30..50]", "100", "[90..120]"])

    def test_a_missing_send_lag_is_a_dash(self):
        rounds = [{"a": ratios.Measure(1000, 0.02, 10000), "peer": ratios.Measure(1000, 0.04, 10000)}]
        with contextlib.redirect_stdout(io.StringIO()):
            lines = ratios.slack_curve(rounds, [("1ms", "a")], "peer")
        self.assertEqual(lines[-1].split()[-2:], ["-", "-"])


class LLMParseTest(unittest.TestCase):
    def test_loadprof_tokens(self):
        path = write_json({"requests": 4000, "errors": {}, "throughput_rps": 399.5, "output_tokens": 256000})
        self.assertEqual(llm_cpu.loadprof_result(path), (4000, 256000, 399.5))

    def test_loadprof_errors_void_the_comparison(self):
        path = write_json({"requests": 4000, "errors": {"stream_stalled": 2}, "throughput_rps": 399.5,
                           "output_tokens": 255900})
        with self.assertRaises(SystemExit):
            llm_cpu.loadprof_result(path)

    def test_loadprof_without_tokens_is_not_a_stream_run(self):
        path = write_json({"requests": 4000, "errors": {}, "throughput_rps": 399.5})
        with self.assertRaises(SystemExit):
            llm_cpu.loadprof_result(path)

    def test_vllm_tokens(self):
        path = write_json({"completed": 4000, "failed": 0, "total_output_tokens": 256000,
                           "request_throughput": 380.25, "duration": 10.5})
        self.assertEqual(llm_cpu.vllm_result(path), (4000, 256000, 380.25))

    def test_vllm_failures_void_the_comparison(self):
        path = write_json({"completed": 3990, "failed": 10, "total_output_tokens": 255360, "request_throughput": 380.0})
        with self.assertRaises(SystemExit):
            llm_cpu.vllm_result(path)


class LLMSummaryTest(unittest.TestCase):
    def run_of(self, tokens, cpu_s, rps=400.0):
        return llm_cpu.Run(tokens // 64, tokens, cpu_s, rps)

    def test_start_up_cpu_is_taken_off(self):
        # 16 s of start-up, then 64,000 tokens for 3.2 s more: 50 us a token.
        us = llm_cpu.marginal_us_per_token(self.run_of(64064, 19.2), self.run_of(64, 16.0))
        self.assertAlmostEqual(us, 50.0)

    def test_no_more_tokens_than_the_one_prompt_run_exits(self):
        with self.assertRaises(SystemExit):
            llm_cpu.marginal_us_per_token(self.run_of(64, 17.0), self.run_of(64, 16.0))

    def rnd(self, lp_us, vllm_us, vllm_rps=400.0):
        tokens = 64000
        return {"loadprof": (self.run_of(tokens + 64, 0.01 + lp_us * tokens * 1e-6), self.run_of(64, 0.01)),
                "vllm": (self.run_of(tokens + 64, 16 + vllm_us * tokens * 1e-6, vllm_rps), self.run_of(64, 16.0))}

    def summary(self, rounds, rate=400):
        with contextlib.redirect_stdout(io.StringIO()):
            return llm_cpu.summarize(rounds, rate, 64)

    def test_median_and_spread_of_the_ratio(self):
        lines = self.summary([self.rnd(2, 40), self.rnd(4, 40), self.rnd(2, 20)])
        ratio = next(s for s in lines if s.startswith("vLLM bench serve / loadprof"))
        self.assertTrue(ratio.endswith("10.0x [10.0..20.0]"), ratio)
        row = next(s for s in lines if s.startswith("loadprof "))
        self.assertEqual(row.split()[1:5], ["2.00", "[2.00..4.00]", "0.01", "[0.01..0.01]"])
        row = next(s for s in lines if s.startswith("vllm "))
        self.assertEqual(row.split()[1:5], ["40.00", "[20.00..40.00]", "16.00", "[16.00..16.00]"])
        self.assertFalse(any("reached less" in s for s in lines))

    def test_a_client_short_of_the_rate_is_said(self):
        lines = self.summary([self.rnd(2, 40, vllm_rps=300)] * 3)
        self.assertIn("vllm reached less than 90% of 400 requests/s", lines[-1])


class SoakTest(unittest.TestCase):
    def test_live_heap_from_gctrace(self):
        fd, path = tempfile.mkstemp()
        with os.fdopen(fd, "w") as f:
            f.write("gc 1 @0.012s 2%: 0.010+0.5+0.003 ms clock, 0.02+0.1/0.2/0+0.006 ms cpu, 3->4->1 MB, 4 MB goal, "
                    "0 MB stacks, 0 MB globals, 2 P\n"
                    "loadprof: something else\n"
                    "gc 2 @61.500s 1%: 0.010+0.5+0.003 ms clock, 0.02+0.1/0.2/0+0.006 ms cpu, 8->9->5 MB, 10 MB goal, "
                    "0 MB stacks, 0 MB globals, 2 P\n")
        self.assertEqual(soak_rss.live_heap(path), [(0.012, 1), (61.5, 5)])

    def test_at_takes_the_nearest_within_slack(self):
        series = [(10.0, 1), (58.0, 2), (63.0, 3), (200.0, 4)]
        self.assertEqual(soak_rss.at(series, 60, 10), (58.0, 2))
        self.assertIsNone(soak_rss.at(series, 120, 30))


class RunCPUTest(unittest.TestCase):
    def test_counts_the_process_cpu(self):
        # A child that burns CPU for a while: run_cpu's figure must cover it.
        _, busy = common.run_cpu([sys.executable, "-c", "import time\nt=time.process_time()\n"
                                  "while time.process_time()-t<0.3: pass"])
        _, idle = common.run_cpu([sys.executable, "-c", "import time; time.sleep(0.3)"])
        self.assertGreater(busy, 0.25)
        self.assertLess(idle, busy)

    def test_pinned_runs_on_the_core(self):
        out, _ = common.run_cpu([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"], core=0)
        self.assertEqual(out.strip(), "[0]")

    def test_failure_exits(self):
        with self.assertRaises(SystemExit):
            common.run_cpu([sys.executable, "-c", "raise SystemExit(3)"])


@unittest.skipUnless(shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"), "nginx is not installed (scripts/peers/install.sh installs it)")
class NginxTest(unittest.TestCase):
    def test_answers_the_predict_path(self):
        work = tempfile.mkdtemp()
        proc, url = common.start_nginx(work)
        try:
            req = urllib.request.Request(url, data=common.BODY.encode(), method="POST")
            with urllib.request.urlopen(req, timeout=10) as resp:
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.read().decode(), common.NGINX_ANSWER)
        finally:
            common.stop(proc)


if __name__ == "__main__":
    unittest.main()
