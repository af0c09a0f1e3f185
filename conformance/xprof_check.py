"""Converts a captured .xplane.pb with xprof's own conversion code (the path
TensorBoard's profile plugin takes) to the trace viewer and the TensorFlow
stats tool, and prints what they hold as one JSON line:
{"tools": [...], "trace_events": N, "trace_names": [...], "op_types": {type: self_us}}.
Exits non-zero when a conversion fails."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from xprof.convert import raw_to_tool_data  # noqa: E402


def main():
    paths = sys.argv[1:]
    tools = raw_to_tool_data.xspace_to_tool_names(paths)
    trace, _ = raw_to_tool_data.xspace_to_tool_data(paths, "trace_viewer", {})
    if not trace:
        sys.exit("trace_viewer conversion failed")
    events = [e for e in json.loads(trace).get("traceEvents", []) if e.get("ph") == "X"]
    stats, _ = raw_to_tool_data.xspace_to_tool_data(paths, "framework_op_stats", {})
    if not stats:
        sys.exit("framework_op_stats conversion failed")
    tables = json.loads(stats)
    table = tables[0] if isinstance(tables, list) else tables
    cols = [c["id"] for c in table["cols"]]
    op_types = {}
    for row in table.get("rows", []):
        values = dict(zip(cols, [cell.get("v") for cell in row["c"]]))
        op_types[values["type"]] = op_types.get(values["type"], 0) + float(values["total_self_time"])
    print(json.dumps({"tools": tools, "trace_events": len(events),
                      "trace_names": sorted({e["name"] for e in events}), "op_types": op_types}))


if __name__ == "__main__":
    main()
