#!/usr/bin/env bash
# Fleet soak on a real Redis Cluster: three demo processes on one cluster (three primaries, three replicas,
# started by the tests' RedisCluster from redis-server and redis-cli), FLEET_SECS seconds (default 300) of mixed
# traffic from FLEET_CLIENTS clients (default 16) spread over them, logouts through random instances, and a
# primary killed at a third of the run and restarted at half. Reports requests, wrong answers (must be 0), the
# propagation of revocations between instances (p50, p99) and each process's memory; fails on a wrong answer.
# FLEET_MODE (default replicated) and FLEET_WAIT_REPLICAS (default 1) set the demo's Redis mode and durability.
# Not part of CI; record the result in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p jwtgate-demo
FLEET_DEMO="$(pwd)/target/release/jwtgate-demo" exec cargo bench --locked -p jwtgate-benches --bench fleet
