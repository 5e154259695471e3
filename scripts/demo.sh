#!/usr/bin/env bash
# A tmux session with the cluster (`quintet up`) in the top pane and two chat clients
# (alice, bob) below. Leave with `tmux kill-session -t quintet-demo`; Ctrl-C in the top pane
# stops the replicas cleanly. `scripts/demo.sh [DIR] [--tui]`: `--tui` runs the clients
# full screen.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
bin="$PWD/target/release/quintet"
dir="${1:-$PWD/quintet-data}"
session=quintet-demo
mode="${2:-}"
tmux new-session -d -s "$session" "$bin up --dir '$dir'; read -r -p 'cluster stopped; press enter'"
sleep 2
tmux split-window -v -t "$session" "$bin chat --config '$dir/cluster.toml' --user alice $mode; read -r"
tmux split-window -h -t "$session" "$bin chat --config '$dir/cluster.toml' --user bob $mode; read -r"
tmux select-layout -t "$session" main-horizontal
exec tmux attach -t "$session"
