#!/usr/bin/env bash
# Creates (once) the Python virtualenv with the Open Inference Protocol
# (KServe V2) peers of the conformance suite, MLServer and tritonclient,
# under ~/.cache/loadprof/venv-v2-<hash of the pins and the interpreter>, and
# prints its path. It is apart from scripts/pyenv.sh's venv because MLServer's
# pins (FastAPI among them) conflict with kserve's and tensorflow-cpu's there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/conformance/requirements-v2.txt"
py=${LOADPROF_PYTHON3:-python3}
key=$( (cat "$req"; "$py" --version) | sha256sum | cut -c1-12)
venv="${LOADPROF_CACHE:-$HOME/.cache/loadprof}/venv-v2-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  source "$root/scripts/pyenv-uv.sh"
  new_venv "$venv" "$py"
  venv_install "$venv" --no-deps -r "$req"
  "$venv/bin/python" -c 'import mlserver, tritonclient.http' >&2
  touch "$venv/.complete"
fi
echo "$venv"
