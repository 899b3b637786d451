#!/usr/bin/env bash
# A large upload through sessiongate against the same upload straight to the upstream, and
# the gateway's memory: idle after start, and before / at its peak during / after the
# uploads. The upstream for both paths is the stand-in uploader (examples/stand_in_uploader),
# whose POST /upload streams the body and answers its byte count and SHA-256 (checked here
# against the file sent). Everything runs on 127.0.0.1 on free ports and is stopped at the
# end; the file, configs and logs live in a temporary directory that is removed (KEEP_TMP=1
# keeps it). Nothing else is written outside target/.
#
# Each round also sends the file through the floor of the gateway's HTTP stack
# (examples/hyper_floor: a bare hyper proxy with none of the gateway's work), which shows how
# much of the gap to the straight path any proxy built on hyper pays on the machine.
#
#   benches/upload.sh                       # 1 GiB, 3 rounds
#   SIZE=64M ROUNDS=1 benches/upload.sh     # a quick check
#
# Needs: curl, cargo (and ~SIZE of free space in $TMPDIR, default /tmp).
#
# Environment (defaults in brackets):
#   SIZE [1G]        the upload (head -c syntax: 1G is 1 GiB)
#   ROUNDS [3]       rounds; each uploads straight, through the gateway, through the floor
#   WORKERS [0]      the gateway's worker threads (0: one per core)
#   READ_BUFFER      the gateway's limits.read_buffer_bytes [its default, 262144]
#   KEEP_TMP [0]     1: keep the temporary directory
#   CARGO_TARGET_DIR where cargo builds [target/ in the repository]
set -euo pipefail

SIZE=${SIZE:-1G}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-0}
READ_BUFFER=${READ_BUFFER:-}
KEEP_TMP=${KEEP_TMP:-0}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir=$PWD/$target_dir

NAME=upload.sh
# say, die, $tmp with its clean-up, free_port, start, wait_ok.
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl cargo sha256sum; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "missing: $tool. Install with: sudo apt-get install -y curl coreutils (cargo: a Rust toolchain)"
done


rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

say "upload.sh: building sessiongate and the stand-in uploader (release) in $target_dir"
CARGO_TARGET_DIR=$target_dir cargo build --release --quiet --manifest-path "$repo/Cargo.toml" \
  --bin sessiongate --example seed_sessions --example stand_in_uploader --example hyper_floor
bin=$target_dir/release

secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
"$bin/examples/seed_sessions" "$tmp/sessions" "$secret" 1 1 >"$tmp/token" 2>"$tmp/seed.log" ||
  { cat "$tmp/seed.log" >&2; die "seeding the session store failed"; }
token=$(<"$tmp/token")

up_port='' gw_port='' floor_port=''
free_port up_port
free_port gw_port
free_port floor_port
start stand-in env JWT_SECRET="$secret" STAND_IN_LISTEN="127.0.0.1:$up_port" \
  "$bin/examples/stand_in_uploader"
up_pid=${pids[-1]}
cat >"$tmp/gateway.toml" <<EOF
listen = "127.0.0.1:$gw_port"
admin_listen = ""
workers = $WORKERS
upstream = "http://127.0.0.1:$up_port"
data_dir = "$tmp/sessions"

[limits]
shutdown_grace_seconds = 1
${READ_BUFFER:+read_buffer_bytes = $READ_BUFFER}

[log]
level = "warn"
EOF
start gateway env -u RUST_LOG -u SESSIONGATE_WORKERS JWT_SECRET="$secret" \
  "$bin/sessiongate" --config "$tmp/gateway.toml"
gw_pid=${pids[-1]}
start hyper-floor "$bin/examples/hyper_floor" "127.0.0.1:$floor_port" "127.0.0.1:$up_port"
floor_pid=${pids[-1]}
wait_ok stand-in "http://127.0.0.1:$up_port/ready"
wait_ok gateway "http://127.0.0.1:$gw_port/api/ready"
wait_ok hyper-floor "http://127.0.0.1:$floor_port/ready"
sleep 2
idle_rss=$(rss_kib "$gw_pid")
say "upload.sh: gateway idle RSS $(mib "$idle_rss") MiB"

say "upload.sh: writing $SIZE of random bytes"
head -c "$SIZE" /dev/urandom >"$tmp/upload.bin"
bytes=$(stat -c %s "$tmp/upload.bin")
sha=$(sha256sum "$tmp/upload.bin" | cut -d' ' -f1)

# upload URL [AUTH]: prints "bytes/s seconds"; checks the stand-in got every byte.
upload() {
  local auth=()
  [[ -n ${2:-} ]] && auth=(-H "Authorization: Bearer $2")
  local out
  out=$(curl -sS -X POST -T "$tmp/upload.bin" -H 'Expect:' -H 'Content-Type: application/octet-stream' \
    ${auth[@]+"${auth[@]}"} -o "$tmp/response" -w '%{http_code} %{speed_upload} %{time_total}' "$1")
  read -r code speed seconds <<<"$out"
  [[ $code == 200 ]] || die "upload to $1 answered $code: $(head -c 300 "$tmp/response")"
  if ! grep -q "\"bytes\":$bytes" "$tmp/response" || ! grep -q "\"sha256\":\"$sha\"" "$tmp/response"; then
    die "the upstream did not receive the file intact: $(head -c 300 "$tmp/response")"
  fi
  printf '%s %s\n' "$speed" "$seconds"
}

before_rss=$(rss_kib "$gw_pid")
peak_sampled=$before_rss
ticks=$(getconf CLK_TCK)
mib_s() { awk -v s="$1" 'BEGIN{print s/1048576}'; }
cpu_s() { awk -v t="$1" -v h="$ticks" 'BEGIN{print t/h}'; }

# timed PID URL [TOKEN]: one upload; sets speed, seconds and cpu (PID's CPU ticks during it).
# (An assignment, not `read <<<"$(upload ...)"`: a failed upload must end the script.)
timed() {
  local before out
  before=$(cpu_ticks "$1")
  out=$(upload "$2" "${3:-}")
  cpu=$(($(cpu_ticks "$1") - before))
  read -r speed seconds <<<"$out"
}

: >"$tmp/straight" && : >"$tmp/gateway" && : >"$tmp/floor"
for round in $(seq "$ROUNDS"); do
  timed "$up_pid" "http://127.0.0.1:$up_port/upload"
  echo "$speed" >>"$tmp/straight"
  printf 'round %d  straight  %8.1f MiB/s  %6.2f s   upstream CPU %.2f s\n' "$round" \
    "$(mib_s "$speed")" "$seconds" "$(cpu_s "$cpu")"

  # Sample the gateway's RSS while the upload runs.
  (while kill -0 "$gw_pid" 2>/dev/null; do rss_kib "$gw_pid"; sleep 0.1; done) >"$tmp/rss-samples" 2>/dev/null &
  sampler=$!
  up_cpu=$(cpu_ticks "$up_pid")
  timed "$gw_pid" "http://127.0.0.1:$gw_port/api/upload" "$token"
  up_cpu=$(($(cpu_ticks "$up_pid") - up_cpu))
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  round_peak=$(sort -n "$tmp/rss-samples" | tail -n1)
  ((${round_peak:-0} > peak_sampled)) && peak_sampled=$round_peak
  echo "$speed" >>"$tmp/gateway"
  printf 'round %d  gateway   %8.1f MiB/s  %6.2f s   gateway CPU %.2f s, upstream CPU %.2f s, RSS peak %s MiB\n' \
    "$round" "$(mib_s "$speed")" "$seconds" "$(cpu_s "$cpu")" "$(cpu_s "$up_cpu")" "$(mib "${round_peak:-0}")"

  timed "$floor_pid" "http://127.0.0.1:$floor_port/upload"
  echo "$speed" >>"$tmp/floor"
  printf 'round %d  floor     %8.1f MiB/s  %6.2f s   floor proxy CPU %.2f s\n' "$round" \
    "$(mib_s "$speed")" "$seconds" "$(cpu_s "$cpu")"
done
sleep 1
after_rss=$(rss_kib "$gw_pid")
hwm=$(hwm_kib "$gw_pid")

median() { sort -g | awk '{v[NR]=$1} END{if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
straight=$(median <"$tmp/straight")
through=$(median <"$tmp/gateway")
floor=$(median <"$tmp/floor")
ratio=$(awk -v a="$through" -v b="$straight" 'BEGIN{printf "%.3f", a/b}')
growth=$((peak_sampled - before_rss))
verdict() { # LABEL VALUE OP LIMIT
  if awk -v v="$2" -v l="$4" "BEGIN{exit !(v $3 l)}"; then echo "  met     $1 = $2 (target $3 $4)"; else echo "  MISSED  $1 = $2 (target $3 $4)"; fi
}

echo
echo "sessiongate upload: $bytes bytes, $ROUNDS round(s), gateway workers $WORKERS, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'straight to the upstream   %8.1f MiB/s (median)\n' "$(mib_s "$straight")"
printf 'through the gateway        %8.1f MiB/s (median)\n' "$(mib_s "$through")"
printf 'through the floor (H)      %8.1f MiB/s (median): floor/straight %s, gateway/floor %s\n' \
  "$(mib_s "$floor")" "$(awk -v a="$floor" -v b="$straight" 'BEGIN{printf "%.3f", a/b}')" \
  "$(awk -v a="$through" -v b="$floor" 'BEGIN{printf "%.3f", a/b}')"
echo "gateway RSS: idle $(mib "$idle_rss") MiB, before $(mib "$before_rss") MiB, peak sampled $(mib "$peak_sampled") MiB (VmHWM $(mib "$hwm") MiB), after $(mib "$after_rss") MiB"
echo "targets:"
verdict "throughput gateway/straight" "$ratio" ">=" 0.8
verdict "RSS growth during the upload (MiB)" "$(mib "$growth")" "<" 32
verdict "idle RSS (MiB)" "$(mib "$idle_rss")" "<" 30
