#!/usr/bin/env bash
# The Redis store at scale: starts a redis-server of its own (appendonly, appendfsync
# everysec, in a temporary directory), fills it with SESSIONS sessions through the store's
# own scripts, and measures it (examples/redis_scale): memory per session from INFO memory,
# token lookup and the whole check p50/p99, listing a user's sessions p50/p99, lookups 64 in
# flight at a time. The server is stopped and its directory removed at the end.
#
#   benches/redis_scale.sh                         # 1 million sessions, 1,000 per user
#   SESSIONS=10000000 benches/redis_scale.sh       # 10 million (about 6 GiB of Redis memory)
#   USERS=1000000 benches/redis_scale.sh           # 1 million users of one session each
#
# Needs: cargo, redis-server (Debian: apt-get install -y redis-server), memory for Redis.
#
# Environment (defaults in brackets):
#   SESSIONS [1000000]   sessions in the store
#   USERS [SESSIONS/1000] users they are dealt to
#   LOOKUPS [100000]     random token lookups measured
#   LISTS [200]          random users whose sessions are listed
#   REDIS_ARGS           more redis-server arguments, e.g. "--hash-max-listpack-value 256"
#   KEEP_TMP [0]         1: keep the temporary directory (the append-only file, logs)
#   CARGO_TARGET_DIR     where cargo builds [target/ in the repository]
set -euo pipefail

SESSIONS=${SESSIONS:-1000000}
USERS=${USERS:-$(((SESSIONS + 999) / 1000))}
LOOKUPS=${LOOKUPS:-100000}
LISTS=${LISTS:-200}
KEEP_TMP=${KEEP_TMP:-0}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir=$PWD/$target_dir

NAME=redis_scale.sh
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in cargo redis-server redis-cli; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed (Debian: apt-get install -y redis-server)"
done

say "redis_scale.sh: building examples/redis_scale (release) in $target_dir"
CARGO_TARGET_DIR=$target_dir cargo build --release --quiet --manifest-path "$repo/Cargo.toml" \
  --example redis_scale

redis_port=''
free_port redis_port
mkdir -p "$tmp/redis"
# shellcheck disable=SC2086 # REDIS_ARGS is a list of words
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp/redis" --save "" \
  --appendonly yes --appendfsync everysec ${REDIS_ARGS:-}
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done

echo "redis_scale: $(redis-server --version | cut -d' ' -f1-3), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo "sessions: $SESSIONS for $USERS users; redis-server arguments: ${REDIS_ARGS:-none}"
"$target_dir/release/examples/redis_scale" "redis://127.0.0.1:$redis_port" "$SESSIONS" "$USERS" \
  --lookups "$LOOKUPS" --lists "$LISTS"
redis-cli -p "$redis_port" info memory | grep -E '^(used_memory|used_memory_rss|used_memory_dataset|mem_fragmentation_ratio):' | tr -d '\r'
redis-cli -p "$redis_port" info keyspace | grep '^db' | tr -d '\r'
echo "aof_bytes: $(du -sb "$tmp/redis" | cut -f1)"
