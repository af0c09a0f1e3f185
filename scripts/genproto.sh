#!/usr/bin/env bash
# Regenerates the committed Go code from proto/: the TensorFlow, TF Serving
# and profiler protos into tfproto/, the Open Inference Protocol (KServe V2)
# protos under proto/inference/ into v2proto/. Needs protoc (Debian:
# protobuf-compiler) and the pinned plugins below.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
gobin=$(go env GOPATH)/bin
GOBIN=$gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN=$gobin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }

# generate OUT PROTO...: one Go package in $root/OUT, its file names
# flattened from the proto paths.
generate() {
  local out=$1
  shift
  rm -f "$root/$out"/*.pb.go
  (cd "$root/proto" && PATH="$gobin:$PATH" protoc -I . \
    --go_out="$root/$out" --go_opt=paths=source_relative \
    --go-grpc_out="$root/$out" --go-grpc_opt=paths=source_relative \
    "$@")
  (cd "$root/$out" &&
    find . -mindepth 2 -name '*.go' | while read -r f; do
      mv "$f" "./$(echo "${f#./}" | tr '/' '_')"
    done &&
    find . -mindepth 1 -type d -empty -delete)
}

cd "$root/proto"
generate tfproto $(find . -name '*.proto' -not -path './inference/*' | sort)
generate v2proto $(find ./inference -name '*.proto' | sort)
