#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Everything it
# needs is installed here or comes from go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted"
  exit 1
fi

echo "== go vet"
go vet ./...

echo "== python peers for the conformance suite (cached virtualenv)"
venv=$(bash scripts/pyenv.sh)
export LOADPROF_PYTHON="$venv/bin/python"

echo "== go test"
go test -count=1 -timeout 20m ./...

echo "== fuzz (short): payload parser"
go test -run '^$' -fuzz '^FuzzParseBody$' -fuzztime "${LOADPROF_FUZZTIME:-15s}" ./payloads
