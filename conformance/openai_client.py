"""The official OpenAI Python client against loadprof's simulator.

Reads a JSON list of cases from argv[1]; each names a base URL, a model, an
endpoint ("chat" or "completions"), the request's extra arguments and
whether to stream. Runs them in order and prints one JSON list: per case the
chunks the client yielded (with the wall-clock nanosecond at which each
arrived, for comparison with the simulator's own record), the usage, the
finish reasons, and the exception the client raised, by class name and
module, if any. The client is made with max_retries=0 so that an error is
seen once, as the client raises it.
"""

import json
import sys
import time

import openai


def run_case(case):
    client = openai.OpenAI(base_url=case["base_url"], api_key="sim", max_retries=0,
                           timeout=case.get("timeout", 60))
    out = {"name": case["name"], "chunks": [], "usage": None, "error": None}
    kwargs = dict(case.get("args", {}))
    out["sent_ns"] = time.time_ns()
    try:
        if case["endpoint"] == "chat":
            create = client.chat.completions.create
        else:
            create = client.completions.create
        resp = create(model=case["model"], stream=case["stream"], **kwargs)
        if not case["stream"]:
            out["done_ns"] = time.time_ns()
            out["id"] = resp.id
            out["object"] = resp.object
            choice = resp.choices[0]
            out["finish_reason"] = choice.finish_reason
            if case["endpoint"] == "chat":
                out["text"] = choice.message.content
                out["role"] = choice.message.role
            else:
                out["text"] = choice.text
            out["usage"] = resp.usage.model_dump() if resp.usage else None
            return out
        for chunk in resp:
            at = time.time_ns()
            c = {"at_ns": at, "id": chunk.id, "object": chunk.object}
            if chunk.choices:
                choice = chunk.choices[0]
                c["finish_reason"] = choice.finish_reason
                if case["endpoint"] == "chat":
                    c["content"] = choice.delta.content
                    c["role"] = choice.delta.role
                else:
                    c["content"] = choice.text
            if getattr(chunk, "usage", None) is not None:
                c["usage"] = chunk.usage.model_dump()
                out["usage"] = c["usage"]
            out["chunks"].append(c)
    except Exception as e:  # the test checks which class the client raised
        out["error"] = {"class": type(e).__name__, "module": type(e).__module__,
                        "is_openai": isinstance(e, openai.OpenAIError),
                        "status": getattr(e, "status_code", None), "message": str(e)[:300]}
    return out


def main():
    cases = json.loads(sys.argv[1])
    print(json.dumps([run_case(c) for c in cases]))


if __name__ == "__main__":
    main()
