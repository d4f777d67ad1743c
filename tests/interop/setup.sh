#!/usr/bin/env bash
# Install the interop fixtures' dependencies locally (idempotent, quiet unless it fails):
#   node_modules/ via `npm ci` (when missing or older than package-lock.json)
#   .venv/        via `python3 -m venv` + `pip install -r requirements.txt`
#                 (when missing or older than requirements.txt)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

run_quiet() {
  if ! "$@" >"$log" 2>&1; then
    echo "setup.sh: command failed: $*" >&2
    cat "$log" >&2
    exit 1
  fi
}

# Stamp files record a completed install, so an interrupted one is redone.
npm_stamp=node_modules/.interop-setup-done
if [ ! -f "$npm_stamp" ] || [ package-lock.json -nt "$npm_stamp" ]; then
  run_quiet npm ci --no-audit --no-fund
  touch "$npm_stamp"
fi

pip_stamp=.venv/.interop-setup-done
if [ ! -f "$pip_stamp" ] || [ requirements.txt -nt "$pip_stamp" ]; then
  if [ ! -x .venv/bin/python ]; then
    rm -rf .venv
    run_quiet python3 -m venv .venv
  fi
  run_quiet .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
  touch "$pip_stamp"
fi
