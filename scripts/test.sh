#!/usr/bin/env bash
# jwtgate's whole test run: formatting; lints (warnings are errors) of every published crate on its own with
# each of its features, and of every example on its own; the README's demo command as written; then every
# test of the workspace. This is the command the README names, and the one .ci/run calls. Whatever the
# tests need, this script installs: redis-server, curl, cargo-hack, cargo-deny, and node, npm and python3 for the
# interop fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo is not on PATH; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

# Installs Debian packages with apt (with sudo when not root), quietly unless it fails.
apt_install() {
    echo "== installing $*"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: $* missing and apt-get is not available; install them" >&2
        exit 1
    fi
    local sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get install -y "$@" >/dev/null 2>&1 \
        || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y "$@" >/dev/null; }
}

# The Redis tests start their own redis-server on a free loopback port, and a Redis Cluster of six of them
# joined by redis-cli (Debian's redis-tools): they need both on PATH.
# The interop tests run PyJWT, jose (npm) and oidc-provider (npm): they need node, npm and python3 with
# venv; tests/interop/setup.sh then installs the packages into tests/interop (node_modules, .venv).
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# The cookie-session browser test drives Debian's Chromium with playwright-core (from npm, via setup.sh).
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ "${#need[@]}" -gt 0 ]; then
    apt_install "${need[@]}"
fi
echo "== installing the interop fixtures (tests/interop/setup.sh)"
tests/interop/setup.sh

# Users build one crate with the features they chose, never the workspace, whose build unifies features and
# hides a missing one. cargo-hack checks each crate that way.
if ! cargo hack --version >/dev/null 2>&1; then
    echo "== installing cargo-hack"
    cargo install --locked cargo-hack --version "^0.6" --quiet
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

if ! cargo deny --version >/dev/null 2>&1; then
    echo "== installing cargo-deny"
    cargo install --locked cargo-deny --version "^0.20" --quiet
fi
# Licences, banned and duplicated crates, and sources, by deny.toml. Advisories need the RustSec database
# from GitHub, which CI machines cannot reach: see deny.toml.
echo "== cargo deny check licenses bans sources"
cargo deny --locked check licenses bans sources

echo "== cargo clippy of each published crate on its own: no features, its defaults, and each feature alone"
cargo hack clippy --locked --workspace --ignore-private --each-feature -- -D warnings

echo "== cargo clippy of each example on its own, as \`cargo run -p\` builds it"
examples="$(cargo metadata --no-deps --format-version 1 --locked \
    | python3 -c 'import json, sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"] if p["manifest_path"].split("/")[-3] == "examples"))')"
[ -n "$examples" ] || { echo "scripts/test.sh: found no example to check" >&2; exit 1; }
for example in $examples; do
    cargo clippy --locked -p "$example" -- -D warnings
done

echo "== the README's demo command, as written"
./scripts/readme-demo.sh

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo doc, as docs.rs builds it (every feature; broken intra-doc links and other warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

echo "== cargo test"
cargo test --workspace --locked
