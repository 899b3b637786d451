#!/usr/bin/env bash
# The session store at scale: fills a store with SESSIONS sessions (examples/seed_sessions,
# through the bulk loader SledStore::import), then measures it in a fresh process
# (examples/store_scale): token lookup p50/p99 over random sessions, the whole per-request
# check, listing a user's sessions, bytes on disk and RSS.
#
#   benches/store_scale.sh                          # 10 million sessions, 1,000 per user
#   SESSIONS=100000 benches/store_scale.sh          # a quick check (and the fill rate)
#   DATA_DIR=/big/disk/store benches/store_scale.sh # keep the store; a second run with the
#                                                   # same DATA_DIR measures it again, no fill
#   COMPACT=1 DATA_DIR=/big/disk/store benches/store_scale.sh  # compact it, then measure
#
# Needs: cargo, and disk: up to about 5 KB per session (10 million: 39.3–49.5 GB) where the store goes.
#
# Environment (defaults in brackets):
#   SESSIONS [10000000]  sessions in the store
#   USERS [SESSIONS/1000] users they are dealt to (so each has SESSIONS/USERS sessions)
#   LOOKUPS [100000]     random token lookups measured
#   LISTS [200]          random users whose sessions are listed
#   CACHE_MIB [1024]     the store's page cache while measuring (sessions.cache_mib)
#   COLD_LISTS [0]       1: drop the store from the OS page cache before each listing (and
#                        each write), so that they read the disk (a store larger than
#                        memory, at worst)
#   WRITES [10]          rounds of writes for random users: a login, its logout, and a
#                        logout from every device (the user's sessions are put back after),
#                        each timed with how long it held the thread that called it
#   COMPACT [0]          1: compact the store (`sessiongate compact`, in place) before
#                        measuring, and report the sizes before and after
#   CHURN [0]            N: after the rest, N logins each followed by its logout, for random
#                        users, reporting the bytes on disk after each tenth of them (how a
#                        store grows back after COMPACT=1); the seeded sessions stay
#   DATA_DIR             where the store goes [a temporary directory, removed at the end];
#                        its seeding parameters are kept beside it in DATA_DIR.params
#   KEEP_TMP [0]         1: keep the temporary directory
#   CARGO_TARGET_DIR     where cargo builds [target/ in the repository]
set -euo pipefail

SESSIONS=${SESSIONS:-10000000}
USERS=${USERS:-$(((SESSIONS + 999) / 1000))}
LOOKUPS=${LOOKUPS:-100000}
LISTS=${LISTS:-200}
CACHE_MIB=${CACHE_MIB:-1024}
DATA_DIR=${DATA_DIR:-}
KEEP_TMP=${KEEP_TMP:-0}
COLD_LISTS=${COLD_LISTS:-0}
COMPACT=${COMPACT:-0}
WRITES=${WRITES:-10}
CHURN=${CHURN:-0}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir=$PWD/$target_dir

say() { printf '%s\n' "$*" >&2; }
die() { say "store_scale.sh: $*"; exit 1; }
command -v cargo >/dev/null 2>&1 || die "cargo (a Rust toolchain) is needed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sessiongate-store.XXXXXX")
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ $KEEP_TMP == 1 ]]; then say "store_scale.sh: kept $tmp"; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "store_scale.sh: building the examples (release) in $target_dir"
CARGO_TARGET_DIR=$target_dir cargo build --release --quiet --manifest-path "$repo/Cargo.toml" \
  --example seed_sessions --example store_scale --bin sessiongate
bin=$target_dir/release/examples

store=${DATA_DIR:-$tmp/store}
params=${DATA_DIR:+$DATA_DIR.params}
params=${params:-$tmp/store.params}
if [[ -s $params ]]; then
  # shellcheck source=/dev/null
  source "$params"
  say "store_scale.sh: measuring the store already in $store ($SESSIONS sessions, $USERS users)"
  fill_line="(filled by an earlier run)"
else
  [[ ! -e $store ]] || die "$store exists but $params does not: not a store this script filled"
  mkdir -p "$(dirname "$store")"
  need=$((SESSIONS * 5500))
  avail=$(df --output=avail -B1 "$(dirname "$store")" | tail -n1)
  if ((avail < need)); then
    die "about $((need >> 30)) GiB are needed in $(dirname "$store"), $((avail >> 30)) GiB are free (DATA_DIR= elsewhere?)"
  fi
  SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  BASE=$(date +%s)
  say "store_scale.sh: filling $store with $SESSIONS sessions for $USERS users"
  started=$(date +%s.%N)
  "$bin/seed_sessions" "$store" "$SECRET" "$SESSIONS" "$USERS" --base "$BASE" >/dev/null 2>"$tmp/seed.log" ||
    { cat "$tmp/seed.log" >&2; die "the fill failed"; }
  elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
  fill_line="$elapsed s, $(awk -v n="$SESSIONS" -v t="$elapsed" 'BEGIN{printf "%.0f", n/t}') sessions/s; $(tail -n1 "$tmp/seed.log" | sed 's/^seed_sessions: //')"
  printf 'SESSIONS=%q\nUSERS=%q\nSECRET=%q\nBASE=%q\n' "$SESSIONS" "$USERS" "$SECRET" "$BASE" >"$params"
fi
# Access tokens were made to live a day from BASE.
if (($(date +%s) > BASE + 86000)); then
  die "the store's access tokens have expired (seeded more than a day ago): fill it again"
fi

compact_line="not compacted (COMPACT=1 compacts first)"
if [[ $COMPACT == 1 ]]; then
  say "store_scale.sh: compacting $store"
  SESSIONGATE_DATA_DIR=$store "$target_dir/release/sessiongate" compact \
    --config "$repo/config/sessiongate.toml" >"$tmp/compact.log" 2>&1 ||
    { cat "$tmp/compact.log" >&2; die "the compaction failed"; }
  compact_line=$(sed 's/^sessiongate compact: //; s/; it replaced.*//' "$tmp/compact.log")
fi

cold=()
[[ $COLD_LISTS == 1 ]] && cold=(--cold-lists)
say "store_scale.sh: measuring ($LOOKUPS lookups, $LISTS listings, $WRITES rounds of writes, $CHURN of churn)"
"$bin/store_scale" "$store" "$SECRET" "$SESSIONS" "$USERS" --base "$BASE" \
  --lookups "$LOOKUPS" --lists "$LISTS" --cache-mib "$CACHE_MIB" --writes "$WRITES" --churn "$CHURN" "${cold[@]}" >"$tmp/measured" 2>"$tmp/measure.log" ||
  { cat "$tmp/measure.log" >&2; die "the measurement failed"; }
value() { awk -v k="$1:" '$1==k{print $2}' "$tmp/measured"; }

echo
echo "sessiongate store at scale: $SESSIONS sessions, $USERS users ($((SESSIONS / USERS)) sessions each), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "fill: $fill_line"
echo "compaction: $compact_line"
echo "open: $(value open_ms) ms; page cache (CACHE_MIB): $CACHE_MIB MiB"
printf '%-34s %10s %10s %10s %10s %10s\n' "" "p50 us" "p99 us" "p99.9 us" "max us" "mean us"
rows=(lookup_cold lookup_warm check list_user)
((WRITES > 0)) && rows+=(create create_stall revoke revoke_stall revoke_user revoke_user_stall)
for name in "${rows[@]}"; do
  printf '%-34s %10s %10s %10s %10s %10s\n' "$name" "$(value "${name}_p50_us")" "$(value "${name}_p99_us")" \
    "$(value "${name}_p99.9_us")" "$(value "${name}_max_us")" "$(value "${name}_mean_us")"
done
echo "(lookup_cold: the first pass over $LOOKUPS random tokens in a fresh process; lookup_warm: the same again;"
echo " check: JWT verify + SHA-512 + lookup + expiry/user comparison; list_user: $(value list_sessions_per_user) sessions per user$(
  [[ $COLD_LISTS == 1 ]] && echo ", the store dropped from the OS page cache before each"))"
((WRITES > 0)) && echo " create, revoke, revoke_user: a login, its logout, and a logout from every device ($WRITES each);
 _stall: the longest the runtime's thread was kept from its other tasks meanwhile"
if ((CHURN > 0)); then
  echo "churn: $CHURN logins, each followed by its logout, $(value churn_rounds_per_s) a second; MB on disk before and after each tenth:"
  echo "  $(for t in 0 1 2 3 4 5 6 7 8 9 10; do awk -v b="$(value "churn_disk_bytes_$t")" 'BEGIN{printf "%.0f ", b/1e6}'; done)"
fi
echo "on disk: $(du -sb "$store" | cut -f1) bytes ($(du -sh "$store" | cut -f1))"
echo "RSS of the measuring process: $(($(value rss_kib) / 1024)) MiB, peak $(($(value rss_peak_kib) / 1024)) MiB (after open: $(($(value rss_after_open_kib) / 1024)) MiB)"
verdict() { # LABEL VALUE OP LIMIT
  if awk -v v="$2" -v l="$4" "BEGIN{exit !(v $3 l)}"; then echo "  met     $1 = $2 (target $3 $4)"; else echo "  MISSED  $1 = $2 (target $3 $4)"; fi
}
echo "targets:"
verdict "token lookup p99 (us, cold pass)" "$(value lookup_cold_p99_us)" "<" 20
verdict "listing a user's $(value list_sessions_per_user) sessions p99 (ms)" "$(awk -v u="$(value list_user_p99_us)" 'BEGIN{printf "%.2f", u/1000}')" "<" 5
