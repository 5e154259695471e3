#!/usr/bin/env bash
# Resident memory of a real replica holding 1,000,000 messages: the storage benchmark writes
# its 1M-message state as a snapshot into a fresh data folder, a release replica starts on
# it (loading and digest-checking the snapshot), and its VmRSS is read from /proc by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cargo build --release --quiet
QUINTET_BENCH_DATA_OUT="$work/A" cargo bench --quiet --bench storage
bin=target/release/quintet
pub=$("$bin" keygen --out "$work/A.key")
cat > "$work/cluster.toml" <<TOML
name = "bench"
delta_ms = 200
[[replica]]
id = "A"
address = "127.0.0.1:0"
public_key = "$pub"
TOML
start=$(date +%s%N)
"$bin" replica --config "$work/cluster.toml" --id A > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 1 600); do grep -q listening "$work/out" && break; sleep 0.1; done
grep -q listening "$work/out" || { cat "$work/err"; exit 1; }
ready=$(date +%s%N)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "replica with 1M messages: started (snapshot loaded, digest checked) in $(( (ready - start) / 1000000 )) ms; VmRSS $((rss_kb / 1024)) MB"
