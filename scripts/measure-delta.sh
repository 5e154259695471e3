#!/usr/bin/env bash
# Measures what Δ must bound: the delay of replica-to-replica messages plus their
# processing (sender's queue to handled and fsynced at the receiver), on this machine's
# loopback, with five replicas (release build). Two phases: light (one client, one send a
# second) and load (CLIENTS clients sending as fast as they are acknowledged). Prints the
# replicas' "peer delay" lines (percentiles over 10 s windows) for each phase, and the load
# phase's committed sends per second. Everything it starts is killed by PID at the end.
#
#   scripts/measure-delta.sh [LIGHT_SECS=30] [CLIENTS=16] [SENDS_PER_CLIENT=200] [DELTA_MS=200]
#
# PLAINTEXT=1 removes the certificates from the cluster's config (every link plaintext), to
# measure what TLS costs against the same run with them.
set -euo pipefail
cd "$(dirname "$0")/.."
light_secs=${1:-30}
clients=${2:-16}
sends=${3:-200}
delta_ms=${4:-200}
bin=${QUINTET_BIN:-$PWD/target/release/quintet}
[ -x "$bin" ] || { echo "no binary at $bin: run cargo build --release first (or set QUINTET_BIN)" >&2; exit 1; }
dir=$(mktemp -d /tmp/quintet-delta.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

"$bin" init --dir "$dir" --delta-ms "$delta_ms" >/dev/null
if [ "${PLAINTEXT:-0}" = 1 ]; then
    sed -i '/^certificate = /d' "$dir/cluster.toml"
fi
for id in A B C D E; do
    RUST_LOG=info,quintet::replica::delay=debug "$bin" replica --id "$id" --config "$dir/cluster.toml" >"$dir/$id.out" 2>"$dir/$id.log" &
    pids+=($!)
done
for _ in $(seq 100); do
    "$bin" status --config "$dir/cluster.toml" >/dev/null 2>&1 && break
    sleep 0.2
done
"$bin" status --config "$dir/cluster.toml" >/dev/null

# A chat client for user $1 reading commands from stdin (its own process; output kept).
chat() { QUINTET_PASSWORD="pw-$1" "$bin" chat --json --user "$1" --config "$dir/cluster.toml" > "$dir/chat-$1.out" 2>&1; }
mark() { for id in A B C D E; do wc -l < "$dir/$id.log"; done | paste -sd' '; }
report() { # $1 $2: marks (line counts) at the phase's start and end
    local -a from to; read -ra from <<< "$1"; read -ra to <<< "$2"
    local i=0 id
    for id in A B C D E; do
        sed -n "$((from[i] + 1)),$((to[i]))p" "$dir/$id.log" | grep 'peer delay' | sed -e 's/\x1b\[[0-9;]*m//g' -e "s/^.*peer delay/$id:/" || true
        i=$((i + 1))
    done
}

echo "five replicas, Δ = $delta_ms ms, $(nproc) cores, $(grep -q '^certificate = ' "$dir/cluster.toml" && echo TLS || echo plaintext); windows of 10 s per replica"
start=$(mark)
{ echo create; for k in $(seq "$light_secs"); do echo "send light-0 ping $k"; sleep 1; done; } | chat light-0
light=$(mark)
echo "--- light: one client, one send a second, $light_secs s"
report "$start" "$light"
sleep 11 # a fresh window for the load phase
light=$(mark)
t0=$(date +%s.%N)
load_pids=()
for c in $(seq 0 $((clients - 1))); do
    { echo create; for k in $(seq "$sends"); do echo "send load-$(((c + 1) % clients)) message $k from $c"; done; } | chat "load-$c" &
    load_pids+=($!)
done
# A client exits 1 when one of its commands was refused (a send to an account its client
# has not created yet): that is reported below as an "other line", not a failed run.
for pid in "${load_pids[@]}"; do wait "$pid" || true; done
t1=$(date +%s.%N)
sleep 11 # let the last window close
loaded=$(mark)
acked=$(cat "$dir"/chat-load-*.out | grep '"command":"send"' | grep -c '"type":"result"' || true)
echo "--- load: $clients clients x $sends sends: $acked acknowledged in $(echo "$t1 - $t0" | bc) s ($(echo "scale=1; $acked / ($t1 - $t0)" | bc) sends/s)"
report "$light" "$loaded"
errors=$(cat "$dir"/chat-load-*.out | grep -v '"type":"result"' | grep -v '"type":"delivery"' || true)
if [ -n "$errors" ]; then
    echo "--- load: $(echo "$errors" | wc -l) other lines, the first: $(echo "$errors" | head -1)"
fi
