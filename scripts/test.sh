#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Everything it
# needs is installed here or comes from go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."

# The peers' virtualenvs and the npm packages are cached under
# ~/.cache/loadprof/, keyed by their pins. Where they are missing (a fresh
# machine) the scripts build them, all at once in the background from the
# start: they wait mostly on downloads, and none needs another. Each one's
# stdout (the path it prints) goes to $installs/NAME; their errors show here.
installs=$(mktemp -d)
trap 'rm -rf "$installs"' EXIT
declare -A install_pids
start_install() { # NAME SCRIPT [ARG...]
  local name=$1
  shift
  bash "$@" >"$installs/$name" &
  install_pids[$name]=$!
}
# wait_install NAME: waits for that install and returns its script's status.
wait_install() { wait "${install_pids[$1]}"; }
start_install vllm scripts/pyenv-vllm.sh
start_install tf scripts/pyenv.sh
start_install jax scripts/pyenv-jax.sh
start_install v2 scripts/pyenv-v2.sh
start_install llm scripts/pyenv-llm.sh
start_install node scripts/nodeenv.sh

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

echo "== python peers for the conformance suite (cached virtualenv)"
wait_install tf || { echo "scripts/pyenv.sh failed (its output above)"; exit 1; }
export LOADPROF_PYTHON="$(cat "$installs/tf")/bin/python"

echo "== JAX's profiler server for the conformance suite (cached Python 3.12 virtualenv)"
if wait_install jax; then
  export LOADPROF_PYTHON_JAX="$(cat "$installs/jax")/bin/python"
else
  rc=$?
  [ "$rc" = 3 ] || exit "$rc" # 3: no Python 3.12 on this machine, said on stderr
  echo "the JAX conformance test will be skipped"
fi

echo "== Open Inference Protocol (KServe V2) peers for the conformance suite: MLServer, tritonclient (cached virtualenv of their own)"
wait_install v2 || { echo "scripts/pyenv-v2.sh failed (its output above)"; exit 1; }
export LOADPROF_PYTHON_V2="$(cat "$installs/v2")/bin/python"

echo "== vLLM's CPU build, the real OpenAI-compatible peer (cached virtualenv of its own, ~6 GiB, built in the background since the start)"
wait_install vllm || { echo "scripts/pyenv-vllm.sh failed (its output above)"; exit 1; }
export LOADPROF_PYTHON_VLLM="$(cat "$installs/vllm")/bin/python"

echo "== the official OpenAI Python client, which checks the simulator's OpenAI-compatible routes (cached virtualenv of its own)"
wait_install llm || { echo "scripts/pyenv-llm.sh failed (its output above)"; exit 1; }
export LOADPROF_PYTHON_LLM="$(cat "$installs/llm")/bin/python"

echo "== chromium (renders the HTML report and xprof's trace viewer) and npm's hdr-histogram-js (decodes our histograms) and puppeteer-core (drives chromium)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
  fi
fi
command -v chromium >/dev/null 2>&1 || { echo "chromium is missing and could not be installed (apt-get install chromium)"; exit 1; }
export LOADPROF_CHROMIUM=$(command -v chromium)
wait_install node || { echo "scripts/nodeenv.sh failed (its output above)"; exit 1; }
export LOADPROF_NODE_MODULES="$(cat "$installs/node")"

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
