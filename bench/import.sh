#!/usr/bin/env bash
# bench/import.sh - time `consent-relay import` of a generated CSV into a fresh SQLite store.
#
# Generates N rows (email, campaign, action, at, source, evidence; N distinct addresses,
# 90 % grants / 10 % withdrawals over two campaigns), imports them into a fresh store under
# $STATE, then imports the same file again (every row already present: the idempotency check).
# Measures; never asserts a threshold.
#
# Usage:  bench/import.sh
# Output: one line per figure:  FIGURE<TAB>name<TAB>value<TAB>unit<TAB>conditions
#         progress on stderr ("# ...").
# Needs : python3, coreutils; cargo unless IMPORT_BIN is set. No network, no root.
#
# Tunables (env):
#   N=100000                 rows
#   STATE=/tmp/consent-relay-import-bench   work directory (config, CSV, store); the store is
#                            deleted first, so every run starts fresh
#   IMPORT_BIN=path          use this binary instead of `cargo build --release`
#   RUN_TIMEOUT=600          bound in seconds on each import
set -u
export LC_ALL=C
PATH=/usr/bin:/bin:$PATH:$HOME/.cargo/bin
N=${N:-100000}
STATE=${STATE:-/tmp/consent-relay-import-bench}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
here=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "# $*" >&2; }
figure() { printf 'FIGURE\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4"; }

if [ -n "${IMPORT_BIN:-}" ]; then
    bin=$IMPORT_BIN
else
    log "cargo build --release"
    (cd "$here" && cargo build --release --quiet) || { log "build failed"; exit 1; }
    bin=$here/target/release/consent-relay
fi

mkdir -p "$STATE"
rm -f "$STATE"/relay.db "$STATE"/relay.db-wal "$STATE"/relay.db-shm
cat > "$STATE/consent-relay.toml" <<TOML
[smtp]
listen = "127.0.0.1:2527"
hostname = "relay.bench"
[upstream]
url = "smtp://127.0.0.1:2600"
tls = "none"
[http]
listen = "127.0.0.1:8089"
public_url = "http://127.0.0.1:8089"
[signing]
current = "k1"
keys = { k1 = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMzJi" }
[store]
url = "sqlite://$STATE/relay.db"
[[campaign]]
id = "newsletter"
label = "Newsletter"
policy = "opt-in"
consent_max_age_days = 395
[[campaign]]
id = "offers"
label = "Offers"
policy = "opt-in"
TOML

csv=$STATE/import-$N.csv
log "generating $N rows in $csv"
python3 - "$N" "$csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("email,campaign,action,at,source,evidence\n")
    for i in range(n):
        campaign = "newsletter" if i % 2 == 0 else "offers"
        action = "withdraw" if i % 10 == 9 else "grant"
        day = 1 + i % 28
        f.write(f"person{i}@example{i % 97}.com,{campaign},{action},"
                f"2026-03-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z,form,\"signup form v2, page {i % 5}\"\n")
PY

run() { # name -> seconds on stdout, output in $STATE/$name.out
    local start end
    start=$(date +%s.%N)
    if ! timeout "$RUN_TIMEOUT" "$bin" import --config "$STATE/consent-relay.toml" "$csv" \
        > "$STATE/$1.out" 2> "$STATE/$1.err"; then
        log "$1 failed:"; cat "$STATE/$1.err" >&2; exit 1
    fi
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l 2>/dev/null || python3 -c "print($end - $start)"
}

host="$(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
log "first import"
t1=$(run first)
log "$(cat "$STATE/first.out")"
figure import_rows_per_s "$(python3 -c "print(round($N / $t1))")" rows/s \
    "$N rows into a fresh SQLite store in ${t1%????}s: $(cat "$STATE/first.out"); $host"
log "same file again"
t2=$(run again)
log "$(cat "$STATE/again.out")"
figure reimport_rows_per_s "$(python3 -c "print(round($N / $t2))")" rows/s \
    "the same $N rows again in ${t2%????}s: $(cat "$STATE/again.out"); $host"
figure store_bytes "$(cat "$STATE"/relay.db* | wc -c)" bytes "SQLite files (database and WAL) after the two imports"
