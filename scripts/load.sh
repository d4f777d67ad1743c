#!/usr/bin/env bash
# Loopback load test: requests per second of axum with no auth, with JwtAuthLayer, and with its
# validated-token cache, measured by wrk on 127.0.0.1; then a soak (60 s by default) of the cached layer
# against 50,000 distinct tokens, reporting the server's resident memory. Installs wrk when missing, and
# redis-server, which the benchmark crate's shared helpers expect. Tune with LOAD_SECS, LOAD_ROUNDS and
# SOAK_SECS. The figures go to docs/benchmarks.md by hand, with the date and the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get install -y wrk >/dev/null 2>&1 \
        || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y wrk >/dev/null; }
fi

exec cargo bench -p jwtgate-benches --bench load
