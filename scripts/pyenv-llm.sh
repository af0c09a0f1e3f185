#!/usr/bin/env bash
# Creates (once) the Python virtualenv with the official OpenAI client that
# the conformance suite runs against the simulator's OpenAI-compatible
# routes, under ~/.cache/loadprof/venv-llm-<hash of the pins and the
# interpreter>, and prints its path. It is apart from the other venvs so
# that the client's pins (pydantic among them) conflict with none of theirs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/conformance/requirements-llm.txt"
py=${LOADPROF_PYTHON3:-python3}
key=$( (cat "$req"; "$py" --version) | sha256sum | cut -c1-12)
venv="${LOADPROF_CACHE:-$HOME/.cache/loadprof}/venv-llm-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  source "$root/scripts/pyenv-uv.sh"
  new_venv "$venv" "$py"
  venv_install "$venv" --no-deps -r "$req"
  "$venv/bin/python" -c 'import openai' >&2
  touch "$venv/.complete"
fi
echo "$venv"
