#!/usr/bin/env bash
# Installs the tools the peer comparisons run against, at pinned versions:
# fortio and ghz built with `go install` into $LOADPROF_CACHE/peers/bin
# (default ~/.cache/loadprof/peers/bin), wrk and nginx from Debian.
# Run again at any time: what is already there at the pinned version is kept.
# Prints the bin directory on its last line.
set -euo pipefail

# fortio v1.69.0 and later need grol.io/grol, which the Go module proxy this
# project's machines use does not serve; v1.68.2 is the newest without it.
FORTIO_VERSION=v1.68.2
GHZ_VERSION=v0.120.0

cache=${LOADPROF_CACHE:-$HOME/.cache/loadprof}
bin=$cache/peers/bin
mkdir -p "$bin"

# go_tool NAME PACKAGE VERSION: builds PACKAGE@VERSION into $bin unless the
# binary there was built from that version (go version -m tells).
go_tool() {
  local name=$1 pkg=$2 version=$3
  if [ -x "$bin/$name" ] && go version -m "$bin/$name" 2>/dev/null | grep -q "^[[:space:]]*mod[[:space:]].*[[:space:]]$version[[:space:]]"; then
    return
  fi
  echo "installing $name $version into $bin" >&2
  GOBIN=$bin GOFLAGS=-buildvcs=false go install "$pkg@$version" >&2
}

command -v go >/dev/null || { echo "install.sh: go is not on PATH; fortio and ghz are built with go install" >&2; exit 1; }
go_tool fortio fortio.org/fortio "$FORTIO_VERSION"
go_tool ghz github.com/bojand/ghz/cmd/ghz "$GHZ_VERSION"

# wrk and nginx: Debian's packages (their version is the distribution's).
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v taskset >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: ${missing[*]} missing and not root: run 'sudo apt-get install -y ${missing[*]}' (Debian packages)" >&2
    exit 1
  fi
  echo "installing ${missing[*]} from Debian" >&2
  apt-get update -qq >&2
  # The package's service is not wanted: the scripts start nginx themselves
  # on a free loopback port with their own config.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq "${missing[@]}" >&2
fi
echo "$bin"
