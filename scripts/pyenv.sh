#!/usr/bin/env bash
# Creates (once) the Python virtualenv with the real peers the conformance
# tests use, under ~/.cache/loadprof/venv-<hash of the pins>, and prints its
# path. tensorflow-serving-api is installed without its dependency on the
# full tensorflow package: tensorflow-cpu provides the same modules.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/conformance/requirements.txt"
serving_api="tensorflow-serving-api==2.21.0"
key=$( (cat "$req"; echo "$serving_api"; python3 --version) | sha256sum | cut -c1-12)
venv="${LOADPROF_CACHE:-$HOME/.cache/loadprof}/venv-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  source "$root/scripts/pyenv-uv.sh"
  new_venv "$venv" python3
  venv_install "$venv" -r "$req"
  venv_install "$venv" --no-deps "$serving_api"
  touch "$venv/.complete"
fi
echo "$venv"
