#!/usr/bin/env bash
# Measures failover: five release replicas, one client sending back to back (each send
# waits for its acknowledgment); the leader is SIGKILLed ROUNDS times (each restarted
# before the next kill). Prints, per kill, the longest gap between two acknowledgments
# around it and when service came back, and the usual gap (one request's latency).
# Everything it starts is killed by PID at the end.
#
#   scripts/measure-failover.sh [DELTA_MS=200] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
delta_ms=${1:-200}
rounds=${2:-3}
bin=${QUINTET_BIN:-$PWD/target/release/quintet}
[ -x "$bin" ] || { echo "no binary at $bin: run cargo build --release first (or set QUINTET_BIN)" >&2; exit 1; }
dir=$(mktemp -d /tmp/quintet-failover.XXXXXX)
declare -A pid
client=""
cleanup() {
    for p in "${pid[@]}" $client; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
start() { RUST_LOG=info,quintet::replica::delay=debug "$bin" replica --id "$1" --config "$dir/cluster.toml" >>"$dir/$1.out" 2>>"$dir/$1.log" & pid[$1]=$!; }
leader() { "$bin" status --config "$dir/cluster.toml" --json 2>/dev/null | grep -o '"leader":"[A-E]"' | sort | uniq -c | sort -rn | head -1 | grep -o '[A-E]' || true; }

"$bin" init --dir "$dir" --delta-ms "$delta_ms" >/dev/null
for id in A B C D E; do start "$id"; done
for _ in $(seq 100); do "$bin" status --config "$dir/cluster.toml" >/dev/null 2>&1 && break; sleep 0.2; done

# The client: one send every 100 ms; each output line stamped with the time it came.
{ echo create; while true; do echo "send failover tick"; sleep 0.1; done; } \
    | QUINTET_PASSWORD=pw "$bin" chat --json --user failover --config "$dir/cluster.toml" 2>/dev/null \
    | while IFS= read -r line; do echo "$(date +%s.%N) $line"; done > "$dir/acks" &
client=$!
sleep 5
echo "five replicas, Δ = $delta_ms ms, release build, loopback, $(nproc) cores"
for round in $(seq "$rounds"); do
    l=$(leader)
    [ -n "$l" ] || { echo "no leader reported" >&2; exit 1; }
    killed_at=$(date +%s.%N)
    kill -9 "${pid[$l]}"
    sleep 6
    # The longest gap between two acknowledgments around the kill (a send in flight may
    # still be acknowledged just after it), and when service came back.
    read -r gap back < <(awk -v t="$killed_at" '/"type":"result"/ {
            if (p && $1 > t && $1 < t + 6 && $1 - p > g) { g = $1 - p; b = $1 - t }
            p = $1
        } END { printf "%.3f %.3f\n", g, b }' "$dir/acks")
    [ "$back" != "0.000" ] || { echo "round $round: no acknowledgment within 6 s of killing $l" >&2; exit 1; }
    echo "round $round: leader $l killed; longest gap between acknowledgments $gap s, service back $back s after the kill"
    start "$l"
    sleep 4
done
echo "gaps between acknowledgments (s), all rounds: $(awk '/"type":"result"/ { if (p) print $1 - p; p = $1 }' "$dir/acks" | sort -n | awk '{ a[NR] = $1 } END { printf "median %.3f, p90 %.3f, max %.3f over %d", a[int(NR / 2) + 1], a[int(NR * 0.9) + 1], a[NR], NR }')"
errors=$(grep -v '"type":"result"' "$dir/acks" | grep -v '"type":"delivery"' || true)
[ -z "$errors" ] || echo "other lines: $(echo "$errors" | wc -l), the first: $(echo "$errors" | head -1)"
