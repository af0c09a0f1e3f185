"""Prints, as one JSON line, the tools xprof (the TensorBoard profile
plugin's conversion code) offers for the given .xplane.pb files, the list
the Profile tab's tool menu shows: {"tools": [...]}."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from xprof.convert import raw_to_tool_data  # noqa: E402


def main():
    paths = sys.argv[1:]
    print(json.dumps({"tools": raw_to_tool_data.xspace_to_tool_names(paths)}))


if __name__ == "__main__":
    main()
