#!/usr/bin/env bash
# Regenerates the committed Go code in tfproto/ from proto/. Needs protoc
# (Debian: protobuf-compiler) and the pinned plugins below.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
gobin=$(go env GOPATH)/bin
GOBIN=$gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN=$gobin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
cd "$root/proto"
rm -f "$root"/tfproto/*.pb.go
PATH="$gobin:$PATH" protoc -I . \
  --go_out="$root/tfproto" --go_opt=paths=source_relative \
  --go-grpc_out="$root/tfproto" --go-grpc_opt=paths=source_relative \
  $(find . -name '*.proto' | sort)
# Flatten: one Go package, file names from the proto paths.
cd "$root/tfproto"
find . -mindepth 2 -name '*.go' | while read -r f; do
  mv "$f" "./$(echo "${f#./}" | tr '/' '_')"
done
find . -mindepth 1 -type d -empty -delete
