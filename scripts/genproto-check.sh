#!/usr/bin/env bash
# Checks that the committed tfproto/ and v2proto/ are exactly what
# scripts/genproto.sh generates from proto/: regenerates into a scratch
# copy of the tree and compares. Installs protoc from Debian when it is missing and we are root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v protoc >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null && apt-get install -y -qq protobuf-compiler >/dev/null
fi
command -v protoc >/dev/null 2>&1 || { echo "protoc is missing and could not be installed (apt-get install protobuf-compiler)" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$root/proto" "$root/scripts" "$root/tfproto" "$root/v2proto" "$root/go.mod" "$root/go.sum" "$scratch/"
bash "$scratch/scripts/genproto.sh"
# The header names the protoc that generated the file; a different protoc
# on this machine is not a difference in the code.
strip() { grep -v '^// 	protoc  ' "$1"; }
status=0
for pkg in tfproto v2proto; do
  names=$(cd "$root/$pkg" && ls *.pb.go; cd "$scratch/$pkg" && ls *.pb.go)
  for name in $(echo "$names" | sort -u); do
    [ -e "$root/$pkg/$name" ] || { echo "$pkg/$name is generated but not committed"; status=1; continue; }
    [ -e "$scratch/$pkg/$name" ] || { echo "$pkg/$name is committed but not generated"; status=1; continue; }
    if ! diff -q <(strip "$root/$pkg/$name") <(strip "$scratch/$pkg/$name") >/dev/null; then
      echo "$pkg/$name differs from what scripts/genproto.sh generates:"
      diff <(strip "$root/$pkg/$name") <(strip "$scratch/$pkg/$name") | head -20 || true
      status=1
    fi
  done
done
[ "$status" = 0 ] && echo "tfproto/ and v2proto/ are what scripts/genproto.sh generates"
exit "$status"
