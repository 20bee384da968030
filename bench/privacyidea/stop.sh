#!/usr/bin/env bash
# Stop the privacyIDEA that setup.sh started: stop.sh <out.json> [--clean]
# --clean also removes its work directory (not a venv given by PI_VENV).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <out.json> [--clean]" >&2; exit 2; }
read -r pid workdir < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["pid"], d.get("workdir", ""))' "$1")
# Only a gunicorn: a stale out.json's pid may belong to something else by now.
if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q gunicorn; then
  # gunicorn's master stops its workers gracefully on TERM.
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
fi
if [ "${2:-}" = "--clean" ] && [ -n "$workdir" ] && [ -f "$workdir/pi.cfg" ]; then
  rm -rf "$workdir"
fi
