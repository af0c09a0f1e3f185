#!/usr/bin/env bash
# Fetches the chart library embedded in HTML reports (report/assets) from the
# npm registry at the pinned version.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=1.6.32
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "uplot@$version" >/dev/null && tar xzf "uplot-$version.tgz")
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$root/report/assets/"
cp "$tmp/package/LICENSE" "$root/report/assets/LICENSE.uPlot"
