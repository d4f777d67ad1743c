#!/usr/bin/env bash
# Soak test over loopback: SOAK_SECS seconds (default 600) of mixed traffic (valid, revoked, expired, forged,
# tampered and garbage tokens, no token, another scheme) from SOAK_CLIENTS concurrent clients (default 32)
# against JwtAuthLayer with a denylist and a cache. Fails on any 5xx, any wrong answer, or resident memory
# growing by more than 10%. Not part of CI; record the result in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p jwtgate-benches --bench soak
