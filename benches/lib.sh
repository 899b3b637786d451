# shellcheck shell=bash
# shellcheck disable=SC2153,SC2154 # NAME, KEEP_TMP and token come from the sourcing script
# Shared by the benchmark scripts (sourced, not run). The sourcing script sets NAME (its name,
# for messages) and KEEP_TMP before sourcing; after sourcing it has $tmp (removed at exit
# unless KEEP_TMP=1), and every process started with `start` is stopped at exit.

say() { printf '%s\n' "$*" >&2; }
die() { say "$NAME: $*"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sessiongate-$NAME.XXXXXX")
pids=()
# started[NAME]: the pid start gave NAME.
declare -A started=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in ${pids[@]+"${pids[@]}"}; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [[ $KEEP_TMP == 1 ]]; then say "$NAME: kept $tmp"; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port VAR: a loopback port nobody listens on (and not handed out before) into VAR.
# It is picked below the kernel's range of ephemeral ports: one picked inside it can become
# the local port of some connection (wrk's, curl's, a proxy's to its upstream) before its
# server binds it, which then fails with "Address already in use".
handed_out=" "
free_port() {
  local port low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((low > 11024)) || die "the ephemeral port range starts at $low: no room below it for the servers' ports"
  for _ in $(seq 500); do
    port=$((10000 + RANDOM % (low - 10000)))
    [[ $handed_out == *" $port "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      handed_out+="$port "
      printf -v "$1" '%s' "$port"
      return 0
    fi
  done
  die "no free port found"
}

# start NAME CMD...: runs CMD in the background, output to $tmp/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pids+=("$!")
  started[$name]=$!
}

# wait_ok NAME URL: until URL answers 200 with the bearer $token (10 s at most).
wait_ok() {
  for _ in $(seq 100); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$2" || true) == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  say "$NAME: $1 did not come up at $2; its log:"
  cat "$tmp/$1.log" >&2 || true
  exit 1
}
