#!/usr/bin/env bash
# Fuzzes jwtgate's parsers with cargo-fuzz (libFuzzer), one target after another. Not part of CI: the
# committed inputs under fuzz/regressions/ are replayed by the normal test run instead
# (tests/tests/fuzz_regressions.rs).
#
#   scripts/fuzz.sh                      # every target, 10 minutes each
#   FUZZ_SECS=60 scripts/fuzz.sh token   # one target, one minute
#
# FUZZ_SECS: seconds per target (default 600). FUZZ_SANITIZER: address (default) or none.
# Targets are built with debug assertions (`-a`), which turn integer overflow checks on: an arithmetic
# overflow is a crash, as it is in tests and debug builds.
# cargo-fuzz passes nightly `-Z` flags to rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
# Crashes are written to fuzz/artifacts/<target>/; the script stops at the first one. Minimize it with
# `RUSTC_BOOTSTRAP=1 cargo fuzz tmin <target> <file>`, fix the bug, and add the input to
# fuzz/regressions/<target>/ so that the test run keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz > /dev/null; then
    cargo install cargo-fuzz --locked
fi

secs=${FUZZ_SECS:-600}
sanitizer=${FUZZ_SANITIZER:-address}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(token mapping_presets sources jwks dpop_proof introspection_answer jwe)
fi

cargo fuzz build --fuzz-dir fuzz -a -s "$sanitizer"
for target in "${targets[@]}"; do
    corpus=fuzz/corpus/$target
    mkdir -p "$corpus"
    echo "== $target: ${secs}s"
    # The regressions seed the corpus; new inputs go to the corpus directory (not committed).
    cargo fuzz run --fuzz-dir fuzz -a -s "$sanitizer" "$target" "$corpus" "fuzz/regressions/$target" -- \
        -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
