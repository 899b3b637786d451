#!/usr/bin/env bash
# Bounded soak of sessiongate, on loopback only.
#
# Builds the release binaries, starts the stand-in uploader and the gateway in front of it
# (temporary data directory, free loopback ports), then runs examples/soak_load.rs for
# DURATION seconds: virtual users logging in, refreshing, making authenticated requests and
# revoking or logging out, each on its own connection. Every EVERY seconds it prints the
# request and error counts and the gateway's RSS, open file descriptors and threads; at the
# end, after SETTLE idle seconds, a summary. Exits non-zero on any error or fd growth.
#
#   scripts/soak.sh                      # 180 s
#   DURATION=60 USERS=64 scripts/soak.sh
#
# Environment: DURATION (180), USERS (32), EVERY (10), SETTLE (65: the upstream pool closes
# connections idle for 30 s at checks 30 s apart, so all are gone by then), KEEP=1 keeps the
# work directory (logs, samples.csv).
set -euo pipefail

DURATION=${DURATION:-180}
USERS=${USERS:-32}
EVERY=${EVERY:-10}
SETTLE=${SETTLE:-65}
SECRET=soak-secret-$$

cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sessiongate-soak.XXXXXX")
STAND_IN_PID=
GATEWAY_PID=

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    local status=$?
    for pid in "$GATEWAY_PID" "$STAND_IN_PID"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "soak: work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing answers on right now.
free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "soak: no free port found" >&2
    return 1
}

# Waits up to 30 s for a line matching $2 in file $1, while process $3 lives.
wait_for_line() {
    for _ in $(seq 1 300); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        if ! kill -0 "$3" 2>/dev/null; then
            echo "soak: process $3 exited; its output:" >&2
            cat "$1" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "soak: timed out waiting for \"$2\" in $1" >&2
    return 1
}

echo "soak: building (release)"
cargo build --release --locked --bin sessiongate --example stand_in_uploader --example soak_load

STAND_IN_PORT=$(free_port)
JWT_SECRET=$SECRET STAND_IN_LISTEN=127.0.0.1:$STAND_IN_PORT \
    "$TARGET_DIR/release/examples/stand_in_uploader" >"$WORK/stand-in.log" 2>&1 &
STAND_IN_PID=$!
wait_for_line "$WORK/stand-in.log" "listening on" "$STAND_IN_PID"

GATEWAY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
JWT_SECRET=$SECRET \
    SESSIONGATE_LISTEN=127.0.0.1:$GATEWAY_PORT \
    SESSIONGATE_ADMIN_LISTEN=127.0.0.1:$ADMIN_PORT \
    SESSIONGATE_UPSTREAM=http://127.0.0.1:$STAND_IN_PORT \
    SESSIONGATE_DATA_DIR="$WORK/sessions" \
    RUST_LOG=warn \
    "$TARGET_DIR/release/sessiongate" --config config/sessiongate.toml >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_PORT") 2>/dev/null; then
        break
    fi
    if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
        echo "soak: the gateway exited:" >&2
        cat "$WORK/gateway.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "soak: gateway pid $GATEWAY_PID on 127.0.0.1:$GATEWAY_PORT, stand-in on 127.0.0.1:$STAND_IN_PORT"
echo "soak: $USERS virtual users for $DURATION s, a sample every $EVERY s, then $SETTLE s idle"
status=0
"$TARGET_DIR/release/examples/soak_load" \
    --gateway "http://127.0.0.1:$GATEWAY_PORT" \
    --pid "$GATEWAY_PID" \
    --duration "$DURATION" \
    --users "$USERS" \
    --every "$EVERY" \
    --settle "$SETTLE" \
    --csv "$WORK/samples.csv" || status=$?

if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
    echo "soak: the gateway died during the run" >&2
    status=1
fi
logged=$(grep -c -E ' (WARN|ERROR) ' "$WORK/gateway.log" || true)
echo "soak: the gateway logged $logged warnings or errors"
if [[ $logged -gt 0 ]]; then
    grep -m 20 -E ' (WARN|ERROR) ' "$WORK/gateway.log"
fi
echo "soak: samples (CSV):"
cat "$WORK/samples.csv"
exit "$status"
