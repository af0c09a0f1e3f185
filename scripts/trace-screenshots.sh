#!/usr/bin/env bash
# Screenshots of a loadprof run as a person sees it in xprof's trace viewer
# (TensorBoard's Profile tab): the server's trace and loadprof's client plane
# with both hosts selected.
#
#   bash scripts/trace-screenshots.sh LOGDIR OUTDIR [RUN]
#
# LOGDIR is the --logdir of a profiled run (RUN defaults to the newest run
# under LOGDIR/plugins/profile) or a run directory itself. The script starts
# xprof's own web app on 127.0.0.1 (scripts/xprof_serve.py, from the
# conformance virtualenv), opens the Trace Viewer of the run in headless
# Chromium (scripts/node/trace_screenshots.js, with puppeteer-core from
# scripts/nodeenv.sh), and writes timeline.png, zoom.png (50 ms where client
# requests sit beside the server's events), the trace JSON the viewer fetched
# and shots.json into OUTDIR. It prints the span of the timeline and where
# each host's events are, so a client plane far from the server's events is
# plain to see. xprof is stopped whatever happens.
#
# Environment: LOADPROF_PYTHON (default: scripts/pyenv.sh's virtualenv),
# LOADPROF_NODE_MODULES (default: scripts/nodeenv.sh), LOADPROF_CHROMIUM
# (default: chromium on PATH), LOADPROF_SHOT_ZOOM_MS (50),
# LOADPROF_SHOT_TIMEOUT (seconds for the browser part, 180).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "trace-screenshots.sh: $*" >&2; exit 2; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: trace-screenshots.sh LOGDIR OUTDIR [RUN]"
logdir=$1 out=$2 run=${3:-}
zoom_ms=${LOADPROF_SHOT_ZOOM_MS:-50}
timeout_s=${LOADPROF_SHOT_TIMEOUT:-180}
[[ $timeout_s =~ ^[0-9]+$ ]] && [ "$timeout_s" -ge 10 ] || die "LOADPROF_SHOT_TIMEOUT $timeout_s: must be a whole number of seconds, at least 10"

has_xplane() { compgen -G "$1/*.xplane.pb" >/dev/null; }
[ -d "$logdir" ] || die "$logdir: not a directory"
if [ -z "$run" ] && has_xplane "$logdir"; then
  run_dir=$(cd "$logdir" && pwd)
  run=$(basename "$run_dir")
else
  runs="$logdir/plugins/profile"
  [ -d "$runs" ] || die "$logdir: no plugins/profile directory (pass the run's --logdir)"
  if [ -z "$run" ]; then
    # The newest run that holds a trace.
    for d in $(ls -1t "$runs"); do
      if has_xplane "$runs/$d"; then run=$d; break; fi
    done
    [ -n "$run" ] || die "$runs: no run holds an .xplane.pb"
  fi
  run_dir=$(cd "$runs/$run" 2>/dev/null && pwd) || die "$runs/$run: no such run"
fi
[ -f "$run_dir/loadprof-client.xplane.pb" ] || die "$run_dir: no loadprof-client.xplane.pb (a run without a profile window?)"
server_planes=$(ls -1 "$run_dir"/*.xplane.pb | grep -cv '/loadprof-client\.xplane\.pb$' || true)
[ "$server_planes" -ge 1 ] || die "$run_dir: no server trace beside loadprof-client.xplane.pb"

python=${LOADPROF_PYTHON:-}
[ -n "$python" ] || python="$(bash "$root/scripts/pyenv.sh")/bin/python"
modules=${LOADPROF_NODE_MODULES:-}
[ -n "$modules" ] || modules=$(bash "$root/scripts/nodeenv.sh")
[ -d "$modules/puppeteer-core" ] || die "$modules: no puppeteer-core (scripts/nodeenv.sh installs it)"
chromium=${LOADPROF_CHROMIUM:-$(command -v chromium || true)}
[ -n "$chromium" ] || die "no chromium (apt-get install chromium, or set LOADPROF_CHROMIUM)"
mkdir -p "$out"

# xprof writes caches next to the traces it reads: give it a logdir of
# links, so the run's directory stays as loadprof wrote it.
work=$(mktemp -d "${TMPDIR:-/tmp}/loadprof-shots.XXXXXX")
xprof_pid= browser_pid=
cleanup() {
  if [ -n "$browser_pid" ]; then # timeout passes the signal on; puppeteer closes Chromium
    kill "$browser_pid" 2>/dev/null || true
    wait "$browser_pid" 2>/dev/null || true
  fi
  exec 3>&- 2>/dev/null || true # xprof_serve.py stops when its stdin closes
  if [ -n "$xprof_pid" ] && kill -0 "$xprof_pid" 2>/dev/null; then
    kill "$xprof_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$xprof_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$xprof_pid" 2>/dev/null || true
  fi
  [ -z "$xprof_pid" ] || wait "$xprof_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$work/logdir/plugins/profile/$run"
for f in "$run_dir"/*.xplane.pb; do
  ln -s "$f" "$work/logdir/plugins/profile/$run/"
done

# The server lives at most as long as the browser part may take, plus its
# own start; its stdin is a fifo this shell holds open, so it also stops
# when this script dies without running the trap.
mkfifo "$work/keepalive"
"$python" "$root/scripts/xprof_serve.py" "$work/logdir" "$((timeout_s + 180))" \
  <"$work/keepalive" >"$work/port.json" 2>"$work/xprof.log" &
xprof_pid=$!
exec 3>"$work/keepalive"

port=
for _ in $(seq 600); do # xprof imports TensorFlow: up to 2 minutes
  if [ -s "$work/port.json" ]; then
    port=$(sed -n 's/^{"port": \([0-9]*\)}$/\1/p' "$work/port.json")
    break
  fi
  kill -0 "$xprof_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$port" ]; then
  tail -20 "$work/xprof.log" >&2
  die "xprof did not start (its log is above)"
fi
echo "xprof 127.0.0.1:$port serves run $run ($run_dir)"

# In the background, so that a signal runs the trap at once, not after it.
NODE_PATH="$modules" timeout -k 10 "$((timeout_s + 60))" node "$root/scripts/node/trace_screenshots.js" \
  --port "$port" --run "$run" --out "$out" --chromium "$chromium" \
  --zoom-ms "$zoom_ms" --timeout-s "$timeout_s" 3>&- &
browser_pid=$!
status=0
wait "$browser_pid" || status=$?
browser_pid=
if [ "$status" -ne 0 ]; then
  echo "xprof's log ends with:" >&2
  tail -20 "$work/xprof.log" >&2
  exit "$status"
fi
