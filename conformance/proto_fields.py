"""Prints the fields of TensorFlow's own profiler protos, as its python
package compiled them (profiler_options.proto and xplane.proto), as one
JSON line: {"tensorflow.ProfileOptions": [[name, number, type, label], ...]},
for every message, nested ones included, by full name."""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tensorflow.tsl.profiler.protobuf import profiler_options_pb2, xplane_pb2  # noqa: E402


def walk(desc, out):
    out[desc.full_name] = sorted([f.name, f.number, f.type, f.label] for f in desc.fields)
    for nested in desc.nested_types:
        walk(nested, out)


def main():
    out = {}
    for module in (profiler_options_pb2, xplane_pb2):
        for desc in module.DESCRIPTOR.message_types_by_name.values():
            walk(desc, out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
