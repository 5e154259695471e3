#!/usr/bin/env bash
# Recovery of a stopped Quintet cluster after more than two faults. `./reset.sh --help`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ " $* " == *" --help "* || " $* " == *" -h "* ]]; then
  cat <<'USAGE'
usage: ./reset.sh [--config quintet-data/cluster.toml] [--data-root DIR] [--keep REPLICA [--unproven]] [--dry-run]
       ./reset.sh --wipe [--yes] [--config ...] [--data-root DIR]

Run it when the cluster cannot recover by itself: three or more replicas lost their data,
were restored from old backups, diverged or lied together. Stop every replica first (it
refuses while one runs). It reads every replica's folder (DIR/A, DIR/B, ...; DIR defaults to
the config's folder), checks every signature against cluster.toml's keys, prints one line
per replica (height, proven height, newest image, what it found: behind, diverged at height
H, unprovable blocks, damaged files) and keeps the longest history that q replicas' signed
CHECKPOINTs (or a state certificate) prove. Then it copies every folder and cluster.toml to
NAME.backup-STAMP beside it, re-seeds every replica from that history, and writes
cluster.toml with a new reset epoch: copy that file to every host and client.
If the cluster can recover by itself (enough replicas hold the proven history, none damaged
or diverged), it changes nothing. If two proven histories conflict (only possible after
more than two faults) it stops and prints both: choose one with --keep REPLICA. Blocks above
the proven history are dropped (they stay in the backup); --keep REPLICA --unproven keeps
that replica's whole committed chain. --dry-run shows the table and the decision only.

--wipe starts the cluster over, empty, with the same keys (backup first; asks unless --yes).
Exit codes: 0 done or nothing to do, 1 refused or failed, 2 no proven history or a conflict.
Replicas on several hosts: stop them all, copy every replica's folder into one DIR on one
host, run ./reset.sh --config DIR/cluster.toml --data-root DIR there, then copy each folder
back to its host and cluster.toml to every host and client (README, "Recovery after more
than two faults" and "Several machines").
USAGE
  exit 0
fi
bin="${QUINTET_BIN:-}"
if [[ -z "$bin" ]]; then
  (cd "$here" && cargo build --release --quiet)
  bin="$here/target/release/quintet"
fi
exec "$bin" recover "$@"
