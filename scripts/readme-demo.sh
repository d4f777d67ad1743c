#!/usr/bin/env bash
# The README's first command, as a new user runs it: the demo built on its own with `-p` (never as part of
# the workspace, whose feature unification hides a missing feature), started with no configuration, and
# driven over loopback with the sample token it prints. Then the demo's stop contract: SIGINT and SIGTERM,
# each sent the moment `listening on` appears, must end it with status 0 (examples/demo/README.md).
# scripts/test.sh calls it; it needs cargo, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo build --release -p jwtgate-demo (as the README says, on its own)"
cargo build --release --locked -p jwtgate-demo
bin=target/release/jwtgate-demo
work="$(mktemp -d)"
demo_pid=""
# A failure never leaves a demo behind, holding its port.
trap '[ -z "$demo_pid" ] || kill -KILL "$demo_pid" 2>/dev/null; rm -rf "$work"' EXIT

fail() {
    echo "readme-demo.sh: $*" >&2
    if [ -s "$work/stderr" ]; then
        echo "--- the demo's log:" >&2
        cat "$work/stderr" >&2
    fi
    exit 1
}

# No configuration: every JWTGATE_* variable unset. The contract's default address is 127.0.0.1:3000; when
# something else holds that port on this machine, the demo is given a free one instead.
unset_vars=()
while IFS= read -r name; do unset_vars+=(-u "$name"); done < <(env | sed -n 's/^\(JWTGATE_[A-Z_]*\)=.*/\1/p')
addr_env=()
if (exec 3<>/dev/tcp/127.0.0.1/3000) 2>/dev/null; then
    echo "readme-demo.sh: port 3000 is taken here; the demo gets a free port instead"
    addr_env=(JWTGATE_ADDR=127.0.0.1:0)
fi

# Starts the demo and reads its stdout up to `listening on <addr>`. Sets `addr`, `token` and `demo_pid`;
# the demo keeps running, its stdout on the coprocess's pipe.
start_demo() {
    coproc DEMO { exec env "${unset_vars[@]}" "${addr_env[@]}" "$bin" 2>"$work/stderr"; }
    demo_pid=$DEMO_PID
    # A copy of the pipe: bash drops DEMO once the demo exits, and a demo that dies at start must still be
    # read to its end, and reported.
    exec {demo_out}<&"${DEMO[0]}"
    token=""
    addr=""
    local line
    while IFS= read -r -t 60 line <&"$demo_out"; do
        case "$line" in
            "listening on "*) addr="${line#listening on }"; return 0 ;;
            *.*.*" "*) ;;
            *.*.*) token="$line" ;;
        esac
    done
    fail "the demo did not print 'listening on' within 60 s (or exited first)"
}

# Sends `signal` to the demo and checks that it exits with status 0 within 10 s.
stop_demo() {
    local signal="$1" status=0
    kill "-$signal" "$demo_pid"
    for _ in $(seq 100); do
        kill -0 "$demo_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$demo_pid" 2>/dev/null && fail "SIG$signal did not stop the demo within 10 s"
    wait "$demo_pid" || status=$?
    demo_pid=""
    exec {demo_out}<&-
    [ "$status" -eq 0 ] || fail "after SIG$signal the demo exited with status $status, not 0"
    echo "   SIG$signal: exit status 0"
}

# `GET path` with optional curl arguments; checks the status, and runs the Python check on the JSON body.
expect() {
    local path="$1" want="$2" check="$3"
    shift 3
    local got
    got="$(curl -sS -o "$work/body" -w '%{http_code}' "$@" "http://$addr$path")" || fail "GET $path: curl failed"
    [ "$got" = "$want" ] || fail "GET $path: status $got, expected $want; body: $(cat "$work/body")"
    if [ -n "$check" ]; then
        python3 -c "import json, sys; body = json.load(open(sys.argv[1])); assert $check, body" "$work/body" \
            || fail "GET $path: unexpected body $(cat "$work/body")"
    fi
    echo "   GET $path: $got"
}

echo "== the demo with no configuration: the sample token it prints, over loopback"
start_demo
[ -n "$token" ] || fail "the demo printed no sample token"
expect /health 200 ""
[ "$(cat "$work/body")" = "ok" ] || fail "GET /health: body $(cat "$work/body")"
expect /me 200 'body["sub"] == "demo" and body["roles"] == ["admin"] and body["jti"] and body["exp"]' \
    -H "Authorization: Bearer $token"
expect /admin 200 'body == {"sub": "demo", "admin": True}' -H "Authorization: Bearer $token"
expect /me 401 'body["error_description"] == "no bearer token was sent"'
stop_demo INT

echo "== a signal sent the moment 'listening on' appears"
for signal in TERM INT; do
    start_demo
    stop_demo "$signal"
done
echo "readme-demo.sh: ok"
