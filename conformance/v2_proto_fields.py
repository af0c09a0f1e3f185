"""Prints the fields of the Open Inference Protocol's gRPC messages as a
real peer compiled them, as one JSON line:
{"inference.ModelInferRequest": [[name, number, type, label], ...], ...}.
The peer is the argument: "mlserver" (MLServer's dataplane.proto) or
"triton" (tritonclient's grpc_service.proto); each has its own process,
since both put their messages under the one package name "inference"."""
import json
import sys

REPEATED, OPTIONAL = 3, 1


def walk(desc, out):
    out[desc.full_name] = sorted(
        [f.name, f.number, f.type, REPEATED if f.is_repeated else OPTIONAL] for f in desc.fields
    )
    for nested in desc.nested_types:
        if not nested.GetOptions().map_entry:
            walk(nested, out)


def main():
    if sys.argv[1] == "mlserver":
        from mlserver.grpc import dataplane_pb2 as module
    else:
        from tritonclient.grpc import service_pb2 as module
    out = {}
    for desc in module.DESCRIPTOR.message_types_by_name.values():
        walk(desc, out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
