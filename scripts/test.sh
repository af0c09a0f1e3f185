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

echo "== staticcheck (pinned)"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go mod tidy leaves go.mod and go.sum as committed"
go mod tidy -diff || { echo "go mod tidy would change go.mod or go.sum (the diff above): run it and commit the result"; exit 1; }

echo "== tfproto/ equals what scripts/genproto.sh generates"
bash scripts/genproto-check.sh

echo "== the peer comparison scripts (their parsing, ratios and verdicts)"
python3 -m unittest discover -s scripts/peers

# vLLM's venv is the largest download (about 4 GiB the first time): it is
# built in the background while the other peers install.
vllm_path=$(mktemp)
trap 'rm -f "$vllm_path"' EXIT
bash scripts/pyenv-vllm.sh >"$vllm_path" &
vllm_pid=$!

echo "== python peers for the conformance suite (cached virtualenv)"
venv=$(bash scripts/pyenv.sh)
export LOADPROF_PYTHON="$venv/bin/python"

echo "== JAX's profiler server for the conformance suite (cached Python 3.12 virtualenv)"
if jaxenv=$(bash scripts/pyenv-jax.sh); then
  export LOADPROF_PYTHON_JAX="$jaxenv/bin/python"
else
  rc=$?
  [ "$rc" = 3 ] || exit "$rc" # 3: no Python 3.12 on this machine, said on stderr
  echo "the JAX conformance test will be skipped"
fi

echo "== Open Inference Protocol (KServe V2) peers for the conformance suite: MLServer, tritonclient (cached virtualenv of their own)"
v2env=$(bash scripts/pyenv-v2.sh)
export LOADPROF_PYTHON_V2="$v2env/bin/python"

echo "== vLLM's CPU build, the real OpenAI-compatible peer (cached virtualenv of its own, ~6 GiB, built in the background since the start)"
wait "$vllm_pid" || { echo "scripts/pyenv-vllm.sh failed (its output above)"; exit 1; }
vllmenv=$(cat "$vllm_path")
export LOADPROF_PYTHON_VLLM="$vllmenv/bin/python"

echo "== the official OpenAI Python client, which checks the simulator's OpenAI-compatible routes (cached virtualenv of its own)"
llmenv=$(bash scripts/pyenv-llm.sh)
export LOADPROF_PYTHON_LLM="$llmenv/bin/python"

echo "== chromium (renders the HTML report and xprof's trace viewer) and npm's hdr-histogram-js (decodes our histograms) and puppeteer-core (drives chromium)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
  fi
fi
command -v chromium >/dev/null 2>&1 || { echo "chromium is missing and could not be installed (apt-get install chromium)"; exit 1; }
export LOADPROF_CHROMIUM=$(command -v chromium)
LOADPROF_NODE_MODULES=$(bash scripts/nodeenv.sh)
export LOADPROF_NODE_MODULES

echo "== go test"
go test -count=1 -timeout 20m ./...

echo "== go test -race (everything but the conformance suite, which the run above covers)"
go test -race -count=1 -timeout 20m $(go list ./... | grep -v /conformance)

echo "== fuzz (short): payload parser, JSON-to-TensorProto conversion, V2 body parsing and rendering, OpenAI .jsonl reading, HTTP response framing, OpenAI event streams, response heads against fasthttp"
go test -run '^$' -fuzz '^FuzzParseBody$' -fuzztime "${LOADPROF_FUZZTIME:-15s}" ./payloads
go test -run '^$' -fuzz '^FuzzToTensorProtos$' -fuzztime "${LOADPROF_FUZZTIME:-15s}" ./payloads
go test -run '^$' -fuzz '^FuzzParseV2Body$' -fuzztime "${LOADPROF_FUZZTIME:-15s}" ./payloads
go test -run '^$' -fuzz '^FuzzOpenAIJSONLines$' -fuzztime "${LOADPROF_FUZZTIME:-15s}" ./payloads
go test -run '^$' -fuzz '^FuzzResponseFramer$' -fuzztime "${LOADPROF_FUZZTIME:-15s}" ./load
go test -run '^$' -fuzz '^FuzzSSE$' -fuzztime "${LOADPROF_FUZZTIME:-15s}" ./load
go test -run '^$' -fuzz '^FuzzPlainResponseHead$' -fuzztime "${LOADPROF_FUZZTIME:-15s}" ./load
