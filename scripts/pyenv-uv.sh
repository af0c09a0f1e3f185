# Sourced by the scripts/pyenv*.sh scripts (not run on its own): sets $uv to
# the pinned uv binary under ~/.cache/loadprof/uv-<version>/, installing it
# there from PyPI with python3's pip the first time, and points uv's own
# cache at ~/.cache/loadprof/uv-cache. uv downloads the wheels of a venv in
# parallel and links them from its cache (hard links on one filesystem,
# hence the cache beside the venvs), where pip fetches and unpacks them one
# by one: a cold vLLM venv takes minutes instead of tens of minutes.
uv_pin=0.13.8
cache_root="${LOADPROF_CACHE:-$HOME/.cache/loadprof}"
uv_dir="$cache_root/uv-$uv_pin"
uv="$uv_dir/bin/uv"
if [ ! -x "$uv" ]; then
  mkdir -p "$cache_root"
  # scripts/test.sh runs the venv scripts concurrently: one installs uv while
  # the others wait on the lock, then find it there.
  exec {uv_lock}>"$cache_root/.uv-$uv_pin.lock"
  flock "$uv_lock"
  if [ ! -x "$uv" ]; then
    # Into a directory of its own first, so that an interrupted install
    # leaves no uv-<version>/ behind.
    uv_tmp=$(mktemp -d "$cache_root/.uv-$uv_pin.XXXXXX")
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      --no-deps --no-compile --target "$uv_tmp" "uv==$uv_pin" >&2
    rm -rf "$uv_dir"
    mv -T "$uv_tmp" "$uv_dir"
  fi
  exec {uv_lock}>&-
  [ -x "$uv" ] || { echo "pyenv-uv.sh: uv==$uv_pin did not install into $uv_dir" >&2; exit 1; }
fi
export UV_CACHE_DIR="${UV_CACHE_DIR:-$cache_root/uv-cache}"
# Only the interpreter each script names: never one uv would download.
export UV_PYTHON_DOWNLOADS=never

# new_venv VENV PYTHON: a virtualenv for the interpreter PYTHON, made by its
# own venv module (not uv venv) so that it holds the pip and setuptools that
# interpreter bundles, as before: vLLM imports torch.utils.cpp_extension,
# which imports setuptools, and no requirements file pins it.
new_venv() {
  "$2" -m venv "$1" >&2
}

# venv_install VENV ARGS...: uv pip install ARGS into VENV, compiling the
# .pyc files as pip does (PYTHONDONTWRITEBYTECODE=1 machines would otherwise
# compile vLLM's modules again at each server start of the suite).
venv_install() {
  local venv=$1
  shift
  "$uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" "$@" >&2
}
