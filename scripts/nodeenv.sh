#!/usr/bin/env bash
# Installs (once) the npm packages the tests use into
# ~/.cache/loadprof/node-<hash of the pins> and prints its node_modules path.
set -euo pipefail
pins="hdr-histogram-js@3.0.1 puppeteer-core@24.43.1"
key=$( (echo "$pins"; node --version) | sha256sum | cut -c1-12)
dir="${LOADPROF_CACHE:-$HOME/.cache/loadprof}/node-$key"
if [ ! -f "$dir/.complete" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$dir" && echo '{"private": true}' > package.json && npm install --silent --no-audit --no-fund $pins >&2)
  touch "$dir/.complete"
fi
echo "$dir/node_modules"
