"""Prints xprof's framework_op_stats (TensorBoard's "TensorFlow stats") of
.xplane.pb files as one JSON line, converted by xprof's own code the way
the profile plugin converts it:
{"ops": [{"host_or_device", "type", "name", "occurrences", "total_us",
"self_us", "host_share", "device_share"}...], "idle_us": {"Host": us}}.
The ops come from the table without IDLE, in xprof's order; idle_us is the
IDLE row of the table with it. Exits non-zero when the conversion fails."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from xprof.convert import raw_to_tool_data  # noqa: E402


def rows(table):
    cols = [c["id"] for c in table["cols"]]
    for row in table.get("rows", []):
        yield dict(zip(cols, [cell.get("v") for cell in row["c"]]))


def main():
    data, _ = raw_to_tool_data.xspace_to_tool_data(sys.argv[1:], "framework_op_stats", {})
    if not data:
        sys.exit("framework_op_stats conversion failed")
    tables = json.loads(data)
    if not isinstance(tables, list):
        tables = [tables]
    idle, ops = {}, []
    for table in tables:
        values = list(rows(table))
        if any(v["type"] == "IDLE" for v in values):
            for v in values:
                if v["type"] == "IDLE":
                    idle[v["host_or_device"]] = float(v["total_self_time"])
            continue
        for v in values:
            ops.append({"host_or_device": v["host_or_device"], "type": v["type"], "name": v["operation"],
                        "occurrences": int(v["occurrences"]), "total_us": float(v["total_time"]),
                        "self_us": float(v["total_self_time"]),
                        "host_share": float(v["host_total_self_time_percent"]),
                        "device_share": float(v["device_total_self_time_percent"])})
    print(json.dumps({"ops": ops, "idle_us": idle}))


if __name__ == "__main__":
    main()
