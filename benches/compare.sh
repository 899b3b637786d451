#!/usr/bin/env bash
# The comparison harness: sessiongate against nginx (a plain reverse proxy, no auth) and
# HAProxy (the same HS256 token checked with jwt_verify, no session lookup), all in front of
# one nginx upstream, loaded in turns by wrk. Everything runs on 127.0.0.1 on free ports and
# is stopped at the end; configs, logs, pid files and the session store live in a temporary
# directory that is removed (KEEP_TMP=1 keeps it). Nothing else is written outside target/
# (and benches/pingora_floor/target/, target P's own build).
#
#   benches/compare.sh                              # 5 rounds of 10 s, 64 connections
#   ROUNDS=1 DURATION=3s benches/compare.sh         # a quick check that everything works
#
# Needs: nginx, haproxy (>= 2.5, for jwt_verify), wrk, curl, cargo, cmake for target P's
#   first build (pingora builds zlib-ng from source), and redis-server for targets R and RR
#   (Debian/Ubuntu: sudo apt-get install -y nginx haproxy wrk curl cmake redis-server).
#
# Environment (defaults in brackets):
#   ROUNDS [5]          rounds; each runs every target once, in turn
#   DURATION [10s]      wrk duration of one run
#   CONNECTIONS [64]    wrk connections
#   THREADS [1]         wrk threads
#   WARMUP [2s]         one unrecorded wrk run per target before the rounds ("0" skips it)
#   TARGETS ["STRAIGHT A B H P C C2"]  which targets to run, in this order within a round
#                       (A2, B2, C0, HG, R and RR are also known; see Targets)
#   SEED_SESSIONS [1000] SEED_USERS [100]  sessions in the gateway's store
#   RESULTS_FILE        if set, every run is appended to it as one JSON line
#   KEEP_TMP [0]        1: keep the temporary directory (configs, logs)
#   BASELINE_BIN        a sessiongate binary built from another commit (a release build of
#                       the commit before a change); enables target C0, and C/C0 in the ratios
#   CARGO_TARGET_DIR    where cargo builds [target/ in the repository; target P's crate,
#                       outside the workspace, in benches/pingora_floor/target/]
#
# Targets: STRAIGHT = wrk straight to the upstream; A = nginx proxy; B = HAProxy with
# jwt_verify; C = sessiongate with one worker thread; C2 = sessiongate with its default
# threads (one per core); A2 and B2 = A and B with two workers (nginx worker_processes 2,
# HAProxy nbthread 2), to set beside C2. H = the floor of sessiongate's HTTP stack: a bare hyper proxy on
# one thread built like the gateway's forwarding path, with none of its work
# (examples/hyper_floor.rs); HG = the same with the gateway's connection plumbing. P = a
# bare pingora-proxy reverse proxy on one thread, none of the gateway's work either
# (benches/pingora_floor, a crate of its own, built and started only when TARGETS has P).
# R = sessiongate with one worker and the Redis store (a redis-server of the script's own,
# appendonly with appendfsync everysec, holding the same sessions, copied in with
# `sessiongate migrate`); RR = two such replicas on that one Redis, loaded at once by two wrk
# processes of half the connections each (req/s summed, p99 the worse of the two). R and RR
# are started only when TARGETS has them. C0 = BASELINE_BIN started exactly like C, on its
# own copy of the same sessions, to measure a change in turns against the commit before it
# (started only when TARGETS has C0). See benches/README.md.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-2s}
TARGETS=${TARGETS:-STRAIGHT A B H P C C2}
SEED_SESSIONS=${SEED_SESSIONS:-1000}
SEED_USERS=${SEED_USERS:-100}
RESULTS_FILE=${RESULTS_FILE:-}
KEEP_TMP=${KEEP_TMP:-0}
BASELINE_BIN=${BASELINE_BIN:-}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir=$PWD/$target_dir
# Target P: built (and started) only when asked for; its crate is outside the workspace.
with_p=0
if [[ " $TARGETS " == *" P "* ]]; then with_p=1; fi
# Targets R and RR: a redis-server, started only when asked for.
with_r=0
if [[ " $TARGETS " == *" R "* || " $TARGETS " == *" RR "* ]]; then with_r=1; fi
# Target C0: another commit's build, started only when asked for.
with_c0=0
if [[ " $TARGETS " == *" C0 "* ]]; then
  [[ -n $BASELINE_BIN ]] || { echo "compare.sh: target C0 needs BASELINE_BIN (a sessiongate binary)" >&2; exit 64; }
  [[ -x $BASELINE_BIN ]] || { echo "compare.sh: BASELINE_BIN is not an executable file: $BASELINE_BIN" >&2; exit 64; }
  with_c0=1
fi
pingora_target_dir=$repo/benches/pingora_floor/target
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then pingora_target_dir=$target_dir; fi
# Debian puts nginx and haproxy in /usr/sbin, which a user's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

NAME=compare.sh
# say, die, $tmp with its clean-up, free_port, start, wait_ok.
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- what must be installed -------------------------------------------------------------
missing=()
for tool in nginx haproxy wrk curl cargo; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# cmake only for P's first build (zlib-ng); a built pingora_floor needs none.
if ((with_p)) && [[ ! -x $pingora_target_dir/release/pingora_floor ]]; then
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
fi
if ((with_r)); then
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
fi
if ((${#missing[@]})); then
  die "missing: ${missing[*]}. Install with: sudo apt-get install -y nginx haproxy wrk curl cmake redis-server (cargo: a Rust toolchain)"
fi
# sed, not head: head exits after one line, and haproxy, still writing, would die of SIGPIPE,
# failing the pipeline (pipefail) and with it the script, silently (1 run in 8 to 4 in 10).
haproxy_version=$(haproxy -v 2>&1 | sed -n 1p)
if [[ $haproxy_version =~ version\ ([0-9]+)\.([0-9]+) ]]; then
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  if ((major < 2 || (major == 2 && minor < 5))); then
    die "HAProxy $major.$minor has no jwt_verify (2.5 or later is needed): $haproxy_version"
  fi
else
  die "cannot read the HAProxy version from: $haproxy_version"
fi

# --- temporary directory and clean-up -----------------------------------------------------

# --- build and seed -----------------------------------------------------------------------
say "compare.sh: building sessiongate (release) in $target_dir"
CARGO_TARGET_DIR=$target_dir cargo build --release --quiet --manifest-path "$repo/Cargo.toml" \
  --bin sessiongate --example seed_sessions --example hyper_floor
gateway_bin=$target_dir/release/sessiongate
floor_bin=$target_dir/release/examples/hyper_floor
seed_bin=$target_dir/release/examples/seed_sessions
pingora_bin=$pingora_target_dir/release/pingora_floor
if ((with_p)); then
  say "compare.sh: building the pingora floor (release) in $pingora_target_dir"
  CARGO_TARGET_DIR=$pingora_target_dir cargo build --release --quiet --locked \
    --manifest-path "$repo/benches/pingora_floor/Cargo.toml"
fi

secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
"$seed_bin" "$tmp/sessions-c" "$secret" "$SEED_SESSIONS" "$SEED_USERS" >"$tmp/token" 2>"$tmp/seed.log" ||
  { cat "$tmp/seed.log" >&2; die "seeding the session store failed"; }
token=$(<"$tmp/token")
# sled locks its directory: each gateway gets its own copy of the same sessions.
cp -a "$tmp/sessions-c" "$tmp/sessions-c2"
if ((with_c0)); then cp -a "$tmp/sessions-c" "$tmp/sessions-c0"; fi

up_port='' a_port='' b_port='' c_port='' c2_port='' h_port='' hg_port='' p_port=''
r_port='' rr_port='' redis_port='' a2_port='' b2_port='' c0_port=''
free_port up_port
free_port a2_port
free_port b2_port
free_port r_port
free_port rr_port
free_port redis_port
free_port a_port
free_port b_port
free_port c_port
free_port c2_port
free_port h_port
free_port hg_port
free_port p_port
free_port c0_port

# --- upstream: nginx, one worker, {"ok":true} with keep-alive ------------------------------
nginx_conf() { # NAME [WORKERS]: the parts every nginx here shares
  cat <<EOF
worker_processes ${2:-1};
daemon off;
pid $tmp/$1.pid;
error_log $tmp/$1.error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_temp() { # NAME
  cat <<EOF
    client_body_temp_path $tmp/$1-temp/client;
    proxy_temp_path $tmp/$1-temp/proxy;
    fastcgi_temp_path $tmp/$1-temp/fastcgi;
    uwsgi_temp_path $tmp/$1-temp/uwsgi;
    scgi_temp_path $tmp/$1-temp/scgi;
EOF
}
mkdir -p "$tmp/upstream-temp" "$tmp/nginx-proxy-temp"
{
  nginx_conf upstream
  cat <<EOF
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
$(nginx_temp upstream)
    server {
        listen 127.0.0.1:$up_port;
        default_type application/json;
        location / { return 200 '{"ok":true}'; }
    }
}
EOF
} >"$tmp/upstream.conf"
start upstream nginx -e "$tmp/upstream.error.log" -p "$tmp/" -c "$tmp/upstream.conf"

# --- A and A2: nginx as a plain reverse proxy, upstream keep-alive pool, 1 / 2 workers -------
nginx_proxy_conf() { # NAME PORT WORKERS
  nginx_conf "$1" "$3"
  cat <<EOF
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
$(nginx_temp "$1")
    upstream app {
        server 127.0.0.1:$up_port;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$2;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}
for proxy in "nginx-proxy $a_port 1" "nginx-proxy2 $a2_port 2"; do
  read -r proxy_name proxy_port proxy_workers <<<"$proxy"
  mkdir -p "$tmp/$proxy_name-temp"
  nginx_proxy_conf "$proxy_name" "$proxy_port" "$proxy_workers" >"$tmp/$proxy_name.conf"
  start "$proxy_name" nginx -e "$tmp/$proxy_name.error.log" -p "$tmp/" -c "$tmp/$proxy_name.conf"
done

# --- B and B2: HAProxy, 1 / 2 threads, the token checked with jwt_verify (no session lookup) -
haproxy_cfg() { # PORT THREADS
  cat <<EOF
global
    nbthread $2
    maxconn 4096
    # No log, like nginx (access_log off) and sessiongate (log level warn) here.

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 300s

frontend bench
    bind 127.0.0.1:$1
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
    # The algorithm is pinned, as sessiongate pins HS256.
    http-request deny deny_status 401 unless { var(txn.alg) -m str HS256 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$secret") -m int 1 }
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
    default_backend app

backend app
    http-reuse always
    server upstream 127.0.0.1:$up_port
EOF
}
for proxy in "haproxy $b_port 1" "haproxy2 $b2_port 2"; do
  read -r proxy_name proxy_port proxy_threads <<<"$proxy"
  haproxy_cfg "$proxy_port" "$proxy_threads" >"$tmp/$proxy_name.cfg"
  haproxy -c -q -f "$tmp/$proxy_name.cfg" ||
    die "HAProxy refuses the generated $tmp/$proxy_name.cfg (KEEP_TMP=1 keeps it)"
  start "$proxy_name" haproxy -db -f "$tmp/$proxy_name.cfg"
done

# --- C and C2: sessiongate, one worker thread / the default threads -------------------------
gateway_conf() { # PORT DATA_DIR [STORE_SECTION]
  cat <<EOF
listen = "127.0.0.1:$1"
admin_listen = ""
workers = 0
upstream = "http://127.0.0.1:$up_port"
data_dir = "$2"

[limits]
shutdown_grace_seconds = 1

[log]
# No per-request access log, like nginx (access_log off) and HAProxy (no log) here.
level = "warn"
${3:-}
EOF
}

# --- R and RR: sessiongate on a Redis of its own, holding the same sessions -----------------
if ((with_r)); then
  mkdir -p "$tmp/redis"
  start redis redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp/redis" --save "" \
    --appendonly yes --appendfsync everysec
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  redis_store=$'[store]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:'"$redis_port"'"'
  gateway_conf 0 "$tmp/sessions-c" >"$tmp/migrate-from.toml"
  gateway_conf 0 "$tmp/unused" "$redis_store" >"$tmp/migrate-to.toml"
  "$gateway_bin" migrate --from "$tmp/migrate-from.toml" --to "$tmp/migrate-to.toml" >"$tmp/migrate.log" 2>&1 ||
    { cat "$tmp/migrate.log" >&2; die "copying the sessions into Redis failed"; }
  gateway_conf "$r_port" "$tmp/unused-r" "$redis_store" >"$tmp/gateway-r.toml"
  gateway_conf "$rr_port" "$tmp/unused-rr" "$redis_store" >"$tmp/gateway-rr.toml"
  start gateway-r env -u RUST_LOG JWT_SECRET="$secret" SESSIONGATE_WORKERS=1 \
    "$gateway_bin" --config "$tmp/gateway-r.toml"
  r_pid=${pids[-1]}
  start gateway-rr env -u RUST_LOG JWT_SECRET="$secret" SESSIONGATE_WORKERS=1 \
    "$gateway_bin" --config "$tmp/gateway-rr.toml"
fi
gateway_conf "$c_port" "$tmp/sessions-c" >"$tmp/gateway-c.toml"
gateway_conf "$c2_port" "$tmp/sessions-c2" >"$tmp/gateway-c2.toml"
start gateway-c env -u RUST_LOG JWT_SECRET="$secret" SESSIONGATE_WORKERS=1 \
  "$gateway_bin" --config "$tmp/gateway-c.toml"
c_pid=${pids[-1]}
start gateway-c2 env -u RUST_LOG -u SESSIONGATE_WORKERS JWT_SECRET="$secret" \
  "$gateway_bin" --config "$tmp/gateway-c2.toml"
c2_pid=${pids[-1]}
if ((with_c0)); then
  gateway_conf "$c0_port" "$tmp/sessions-c0" >"$tmp/gateway-c0.toml"
  start gateway-c0 env -u RUST_LOG JWT_SECRET="$secret" SESSIONGATE_WORKERS=1 \
    "$BASELINE_BIN" --config "$tmp/gateway-c0.toml"
fi

# --- H and HG: the floor of the gateway's HTTP stack (hyper, one thread, no gateway work) --
start hyper-floor "$floor_bin" "127.0.0.1:$h_port" "127.0.0.1:$up_port"
start hyper-floor-g "$floor_bin" --like-gateway "127.0.0.1:$hg_port" "127.0.0.1:$up_port"

# --- P: a bare pingora-proxy reverse proxy (one thread, no gateway work) --------------------
if ((with_p)); then
  start pingora-floor "$pingora_bin" "127.0.0.1:$p_port" "127.0.0.1:$up_port"
fi

declare -A url name
url[STRAIGHT]=http://127.0.0.1:$up_port/api/bench
url[A]=http://127.0.0.1:$a_port/api/bench
url[B]=http://127.0.0.1:$b_port/api/bench
url[A2]=http://127.0.0.1:$a2_port/api/bench
url[B2]=http://127.0.0.1:$b2_port/api/bench
url[C]=http://127.0.0.1:$c_port/api/bench
url[C2]=http://127.0.0.1:$c2_port/api/bench
url[H]=http://127.0.0.1:$h_port/api/bench
url[HG]=http://127.0.0.1:$hg_port/api/bench
if ((with_p)); then url[P]=http://127.0.0.1:$p_port/api/bench; fi
if ((with_c0)); then url[C0]=http://127.0.0.1:$c0_port/api/bench; fi
if ((with_r)); then
  url[R]=http://127.0.0.1:$r_port/api/bench
  # Two replicas at once: run() loads both (see pair_run).
  url[RR]=pair
  rr_url=http://127.0.0.1:$rr_port/api/bench
fi
# The processes whose CPU time a target's run is charged (their children too: nginx's workers).
declare -A proc=([STRAIGHT]=upstream [A]=nginx-proxy [B]=haproxy [A2]=nginx-proxy2 [B2]=haproxy2
  [C]=gateway-c [C2]=gateway-c2 [C0]=gateway-c0 [H]=hyper-floor [HG]=hyper-floor-g
  [P]=pingora-floor [R]=gateway-r)
name[STRAIGHT]="straight to the upstream (nginx)"
name[A]="A  nginx proxy, no auth"
name[B]="B  HAProxy jwt_verify"
name[A2]="A2 nginx proxy, no auth, 2 workers"
name[B2]="B2 HAProxy jwt_verify, nbthread 2"
name[C]="C  sessiongate, 1 worker"
name[C2]="C2 sessiongate, default workers ($(nproc) cores)"
name[H]="H  hyper floor: bare hyper proxy, 1 thread"
name[HG]="HG hyper floor + gateway's connection plumbing"
name[P]="P  pingora floor: bare pingora, 1 thread"
name[R]="R  sessiongate, 1 worker, Redis store"
name[RR]="RR 2 replicas x 1 worker on one Redis"
name[C0]="C0 BASELINE_BIN, 1 worker"

wait_ok upstream "${url[STRAIGHT]}"
wait_ok nginx-proxy "${url[A]}"
wait_ok haproxy "${url[B]}"
wait_ok nginx-proxy2 "${url[A2]}"
wait_ok haproxy2 "${url[B2]}"
wait_ok gateway-c "${url[C]}"
wait_ok gateway-c2 "${url[C2]}"
wait_ok hyper-floor "${url[H]}"
wait_ok hyper-floor-g "${url[HG]}"
if ((with_p)); then wait_ok pingora-floor "${url[P]}"; fi
if ((with_c0)); then wait_ok gateway-c0 "${url[C0]}"; fi
if ((with_r)); then
  wait_ok gateway-r "${url[R]}"
  wait_ok gateway-rr "$rr_url"
fi

# --- every target answers what it should, or the numbers mean nothing -----------------------
status_of() { # URL [TOKEN]
  if [[ -n ${2:-} ]]; then
    curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $2" "$1"
  else
    curl -s -o "$tmp/body" -w '%{http_code}' "$1"
  fi
}
# A token whose signature has one character changed in its middle.
signature=${token##*.}
middle=$((${#signature} / 2))
if [[ ${signature:middle:1} == A ]]; then swap=B; else swap=A; fi
forged="${token%.*}.${signature:0:middle}${swap}${signature:middle+1}"
served="STRAIGHT A B A2 B2 C C2 H HG"
if ((with_p)); then served+=" P"; fi
if ((with_r)); then served+=" R"; fi
if ((with_c0)); then served+=" C0"; fi
for t in $served; do
  [[ $(status_of "${url[$t]}" "$token") == 200 && $(<"$tmp/body") == '{"ok":true}' ]] ||
    die "$t does not answer {\"ok\":true} with the token"
done
refusing="B B2 C C2"
if ((with_r)); then refusing+=" R"; fi
if ((with_c0)); then refusing+=" C0"; fi
for t in $refusing; do
  [[ $(status_of "${url[$t]}") == 401 ]] || die "$t lets a request without a token through"
  [[ $(status_of "${url[$t]}" "$forged") == 401 ]] || die "$t lets a forged token through"
done
if ((with_r)); then
  [[ $(status_of "$rr_url" "$token") == 200 ]] || die "the second Redis replica does not pass the token"
fi
say "compare.sh: all targets up; $refusing refuse a missing or forged token (401)"

# --- the load -----------------------------------------------------------------------------
field() { # JSON KEY: a number from the one-line JSON wrk-report.lua prints
  local rest=${1#*\""$2"\":}
  printf '%s' "${rest%%[,\}]*}"
}

# cpu_ticks NAME: user + system CPU time, in clock ticks, of the process start gave NAME and
# of its children (nginx's workers), so far.
cpu_ticks() {
  local pid=${started[$1]} p sum=0 f
  for p in "$pid" $(pgrep -P "$pid" || true); do
    # Fields 14 and 15 of /proc/PID/stat; the command name (field 2) may hold spaces, so
    # count from after its closing parenthesis.
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a f <<<"$f"
    sum=$((sum + f[11] + f[12]))
  done
  printf '%s' "$sum"
}
clk_tck=$(getconf CLK_TCK)

# run TARGET DURATION: one wrk run; prints its WRK_JSON line, with "cpu_us" (the target's
# CPU time per request, in microseconds; -1 for RR) added.
run() {
  if [[ ${url[$1]} == pair ]]; then
    pair_run "$2"
    return
  fi
  local out=$tmp/wrk.out before after json requests
  before=$(cpu_ticks "${proc[$1]}")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency -s "$repo/benches/wrk-report.lua" \
    -H "Authorization: Bearer $token" "${url[$1]}" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk failed against $1"; }
  after=$(cpu_ticks "${proc[$1]}")
  json=$(grep '^WRK_JSON ' "$out" | sed 's/^WRK_JSON //')
  requests=$(field "$json" requests)
  printf '%s,"cpu_us":%s}\n' "${json%\}}" \
    "$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$requests" 'BEGIN{printf "%.3f", (n > 0) ? t * 1e6 / hz / n : -1}')"
}

# pair_run DURATION: target RR, two wrk at once of half the connections each, one per Redis
# replica; prints one WRK_JSON-like line: req/s and the error counts summed, p50 and p99 the
# worse of the two.
pair_run() {
  local half=$((CONNECTIONS / 2)) i target
  local -a wrks=()
  for i in 1 2; do
    target=${url[R]}
    ((i == 2)) && target=$rr_url
    wrk -t"$THREADS" -c"$half" -d"$1" --latency -s "$repo/benches/wrk-report.lua" \
      -H "Authorization: Bearer $token" "$target" >"$tmp/wrk-pair$i.out" 2>&1 &
    wrks+=("$!")
  done
  for i in "${wrks[@]}"; do
    wait "$i" || { cat "$tmp"/wrk-pair*.out >&2; die "wrk failed against RR"; }
  done
  local one two k a b v sum='{'
  one=$(grep '^WRK_JSON ' "$tmp/wrk-pair1.out" | sed 's/^WRK_JSON //')
  two=$(grep '^WRK_JSON ' "$tmp/wrk-pair2.out" | sed 's/^WRK_JSON //')
  for k in rps p50_us p99_us status connect read write timeout; do
    a=$(field "$one" "$k") b=$(field "$two" "$k")
    case $k in
      p50_us | p99_us) v=$(awk -v a="$a" -v b="$b" 'BEGIN{print (a > b) ? a : b}') ;;
      *) v=$(awk -v a="$a" -v b="$b" 'BEGIN{print a + b}') ;;
    esac
    sum+="\"$k\":$v,"
  done
  printf '%s"cpu_us":-1}\n' "$sum"
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
say "compare.sh: load average before the runs: $load ($(nproc) cores)"
if [[ $WARMUP != 0 ]]; then
  for t in $TARGETS; do run "$t" "$WARMUP" >/dev/null; done
fi

mkdir -p "$tmp/results"
for round in $(seq "$ROUNDS"); do
  for t in $TARGETS; do
    [[ -n ${url[$t]:-} ]] || die "unknown target $t (known: STRAIGHT A B A2 B2 C C0 C2 H HG P R RR)"
    json=$(run "$t" "$DURATION")
    [[ -n $json ]] || die "no result from wrk against $t"
    rps=$(field "$json" rps)
    p50=$(field "$json" p50_us)
    p99=$(field "$json" p99_us)
    cpu=$(field "$json" cpu_us)
    bad=$(($(field "$json" status) + $(field "$json" connect) + $(field "$json" read) + $(field "$json" write) + $(field "$json" timeout)))
    printf '%s %s %s %s %s\n' "$rps" "$p50" "$p99" "$bad" "$cpu" >>"$tmp/results/$t"
    printf 'round %d  %-8s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  cpu %6.2f us/req%s\n' "$round" "$t" "$rps" \
      "$(awk "BEGIN{print $p50/1000}")" "$(awk "BEGIN{print $p99/1000}")" "$cpu" \
      "$( ((bad)) && printf '  (%d errors or non-2xx: this run is not valid)' "$bad")"
    if [[ -n $RESULTS_FILE ]]; then
      printf '{"target":"%s","round":%d,"connections":%s,"threads":%s,"wrk":%s}\n' \
        "$t" "$round" "$CONNECTIONS" "$THREADS" "$json" >>"$RESULTS_FILE"
    fi
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the report ---------------------------------------------------------------------------
median() { sort -g | awk '{v[NR]=$1} END{if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$tmp/results/$1"; }
has() { [[ -s $tmp/results/$1 ]]; }

echo
echo "sessiongate comparison: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS round(s), $(nproc) cores"
echo "$haproxy_version | $(nginx -v 2>&1) | $(wrk --version 2>&1 | sed -n 1p | cut -d' ' -f1-2)"
echo "load average before: $load, after: $load_after; $SEED_SESSIONS sessions in the gateway's store"
echo
printf '%-44s %12s %10s %10s %12s %6s %8s\n' target "req/s" "p50 ms" "p99 ms" "cpu us/req" cores invalid
for t in $TARGETS; do
  has "$t" || continue
  printf '%-44s %12.0f %10.3f %10.3f %12.2f %6.2f %8d\n' "${name[$t]}" "$(col "$t" 1 | median)" \
    "$(col "$t" 2 | median | awk '{print $1/1000}')" "$(col "$t" 3 | median | awk '{print $1/1000}')" \
    "$(col "$t" 5 | median)" "$(awk '$5>0{print $1*$5/1e6}' "$tmp/results/$t" | median)" \
    "$(col "$t" 4 | awk '$1>0{n++} END{print n+0}')"
done
echo "(medians over the rounds; 'cpu us/req' is the target's own user + system CPU time per"
echo " request, children included, and 'cores' that times req/s: the cores it kept busy, near"
echo " 1 for a one-worker target that is the bottleneck; 'invalid' counts runs with socket errors"
echo " or non-2xx answers)"

# Ratios taken round by round, then their median.
ratios=()
for pair in C/A C/B C2/A C2/B C2/A2 C2/B2 H/A H/B HG/A C/H HG/H C/HG P/A P/H C/P R/C R/A RR/R RR/C2 C/C0; do
  if has "${pair%/*}" && has "${pair#*/}"; then ratios+=("$pair"); fi
done
if ((${#ratios[@]})); then
  echo
  header=$(printf '%-7s' round)
  for pair in "${ratios[@]}"; do header+=$(printf ' %8s' "$pair"); done
  # p99 ratios for the pairs against nginx (A or A2).
  against_nginx() { [[ ${1#*/} == A || ${1#*/} == A2 ]]; }
  for pair in "${ratios[@]}"; do
    if against_nginx "$pair"; then header+=$(printf ' %10s' "p99 $pair"); fi
  done
  # CPU ratios: requests per CPU-second of the first target over the second's (the second's
  # CPU time per request over the first's), so that, like req/s, higher is better. Unlike
  # req/s they do not depend on how the 2 cores were shared with wrk and the upstream.
  cpu_pair() { [[ $1 != RR/* && $1 != */RR && $1 != STRAIGHT/* ]]; }
  for pair in "${ratios[@]}"; do
    if cpu_pair "$pair"; then header+=$(printf ' %10s' "cpu $pair"); fi
  done
  echo "$header"
  declare -A all
  for round in $(seq "$ROUNDS"); do
    line=$(printf '%-7s' "$round")
    for pair in "${ratios[@]}"; do
      r=$(awk -v a="$(sed -n "${round}p" "$tmp/results/${pair%/*}" | cut -d' ' -f1)" \
        -v b="$(sed -n "${round}p" "$tmp/results/${pair#*/}" | cut -d' ' -f1)" 'BEGIN{printf "%.3f", a/b}')
      all[$pair]+="$r "
      line+=$(printf ' %8s' "$r")
    done
    for pair in "${ratios[@]}"; do
      against_nginx "$pair" || continue
      r=$(awk -v a="$(sed -n "${round}p" "$tmp/results/${pair%/*}" | cut -d' ' -f3)" \
        -v b="$(sed -n "${round}p" "$tmp/results/${pair#*/}" | cut -d' ' -f3)" 'BEGIN{printf "%.3f", a/b}')
      all[p99${pair}]+="$r "
      line+=$(printf ' %10s' "$r")
    done
    for pair in "${ratios[@]}"; do
      cpu_pair "$pair" || continue
      r=$(awk -v a="$(sed -n "${round}p" "$tmp/results/${pair%/*}" | cut -d' ' -f5)" \
        -v b="$(sed -n "${round}p" "$tmp/results/${pair#*/}" | cut -d' ' -f5)" 'BEGIN{printf "%.3f", (a > 0) ? b/a : 0}')
      all[cpu${pair}]+="$r "
      line+=$(printf ' %10s' "$r")
    done
    echo "$line"
  done
  line=$(printf '%-7s' median)
  for pair in "${ratios[@]}"; do
    line+=$(printf ' %8s' "$(tr ' ' '\n' <<<"${all[$pair]}" | grep . | median)")
  done
  for pair in "${ratios[@]}"; do
    against_nginx "$pair" || continue
    line+=$(printf ' %10s' "$(tr ' ' '\n' <<<"${all[p99$pair]}" | grep . | median)")
  done
  for pair in "${ratios[@]}"; do
    cpu_pair "$pair" || continue
    line+=$(printf ' %10s' "$(tr ' ' '\n' <<<"${all[cpu$pair]}" | grep . | median)")
  done
  echo "$line"
  echo
  verdict() { # LABEL VALUE OP LIMIT
    if awk -v v="$2" -v l="$4" "BEGIN{exit !(v $3 l)}"; then echo "  met     $1 = $2 (target $3 $4)"; else echo "  MISSED  $1 = $2 (target $3 $4)"; fi
  }
  echo "targets (on the medians of the per-round ratios):"
  # The gateway's own work is judged against H alone: it forwards through hyper, so C/P
  # (among the ratios above) compares it with pingora's floor, not with its own stack.
  for check in "C/A req/s:C/A:>=:1.0" "C2/A req/s:C2/A:>=:1.0" "C/B req/s:C/B:>=:1.3" \
    "C2/B req/s:C2/B:>=:1.3" "p99 C/A:p99C/A:<=:1.2" "p99 C2/A:p99C2/A:<=:1.2" \
    "C2/A2 req/s:C2/A2:>=:1.0" "C2/B2 req/s:C2/B2:>=:1.3" "p99 C2/A2:p99C2/A2:<=:1.2" \
    "R/C req/s (the Redis store against sled):R/C:>=:0.8" \
    "C/C0 req/s (this tree against BASELINE_BIN):C/C0:>=:0.98" \
    "the gateway's own work, C/H in CPU per request:cpuC/H:>=:0.9"; do
    IFS=: read -r label key op limit <<<"$check"
    if [[ -n ${all[$key]:-} ]]; then
      verdict "$label" "$(tr ' ' '\n' <<<"${all[$key]}" | grep . | median)" "$op" "$limit"
    fi
  done
fi
echo
echo "gateway RSS after the load: C $(awk '/VmRSS/{print $2, $3}' "/proc/$c_pid/status" 2>/dev/null || echo '?'), C2 $(awk '/VmRSS/{print $2, $3}' "/proc/$c2_pid/status" 2>/dev/null || echo '?')"
