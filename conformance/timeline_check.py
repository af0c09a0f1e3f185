"""Converts a run's server trace and loadprof's client plane together with
xprof's own trace viewer conversion, as TensorBoard's Profile tab requests it
when both hosts are selected (the streaming "trace_viewer@" tool, a "hosts"
list, the UI's default resolution), and prints what the viewer would draw as
one JSON line: {"full_timespan_ms": [from, to], "processes": {pid: name},
"events": [[pid, name, ts_us, dur_us], ...]} (complete events only).
Usage: timeline_check.py SERVER.xplane.pb CLIENT.xplane.pb"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from xprof.convert import raw_to_tool_data  # noqa: E402


def host_of(path):
    return os.path.basename(path)[: -len(".xplane.pb")]


def main():
    paths = sys.argv[1:]
    params = {
        "trace_viewer_options": {"resolution": 8000, "full_dma": False},
        "hosts": [host_of(p) for p in paths],
        "use_saved_result": False,
    }
    data, _ = raw_to_tool_data.xspace_to_tool_data(paths, "trace_viewer@", params)
    if not data:
        sys.exit("trace_viewer@ conversion failed")
    doc = json.loads(data)
    processes, events = {}, []
    for e in doc.get("traceEvents", []):
        if e.get("ph") == "M" and e.get("name") == "process_name":
            processes[str(e["pid"])] = e["args"]["name"]
        elif e.get("ph") == "X":
            events.append([e["pid"], e["name"], float(e["ts"]), float(e.get("dur", 0))])
    print(json.dumps({"full_timespan_ms": doc.get("fullTimespan"), "processes": processes, "events": events}))


if __name__ == "__main__":
    main()
