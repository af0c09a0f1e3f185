#!/usr/bin/env bash
# Creates (once) the Python 3.12 virtualenv with JAX that the conformance
# suite profiles, under ~/.cache/loadprof/venv-jax-<hash of the pins and the
# interpreter>, and prints its path. jaxlib 0.12 needs Python 3.12: the
# interpreter is $LOADPROF_PYTHON312, else python3.12 on PATH, else pyenv's
# newest 3.12. Exits 3, saying so, when there is none.
#
# With an argument, another pinned requirements file of conformance/ for
# Python 3.12, in venv-<its name>-<hash>: requirements-torch-xla.txt is
# PyTorch/XLA (opt-in, 7 GB; LOADPROF_PYTHON_TORCH_XLA).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req=$(cd "$root" && realpath "${1:-conformance/requirements-jax.txt}")
[ -f "$req" ] || { echo "pyenv-jax.sh: $req: no such requirements file" >&2; exit 1; }
name=$(basename "$req" .txt)
name=${name#requirements-}
# A pyenv shim named python3.12 may exist without answering: try each.
py=
for cand in ${LOADPROF_PYTHON312:-} $(command -v python3.12 || true) \
  $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python 2>/dev/null | sort -rV); do
  if "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; then
    py=$cand
    break
  fi
done
if [ -z "$py" ]; then
  echo "pyenv-jax.sh: no Python 3.12 (set LOADPROF_PYTHON312, or put python3.12 on PATH); jaxlib 0.12 has no wheel for $(python3 --version 2>&1)" >&2
  exit 3
fi
key=$( (cat "$req"; "$py" --version) | sha256sum | cut -c1-12)
venv="${LOADPROF_CACHE:-$HOME/.cache/loadprof}/venv-$name-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  source "$root/scripts/pyenv-uv.sh"
  new_venv "$venv" "$py"
  venv_install "$venv" --no-deps -r "$req"
  if [ "$name" = jax ]; then
    "$venv/bin/python" -c 'import jax.profiler' >&2
  fi
  touch "$venv/.complete"
fi
echo "$venv"
