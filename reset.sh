#!/usr/bin/env bash
# Recovery of a stopped Quintet cluster after more than two faults. `./reset.sh --help`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ " $* " == *" --help "* || " $* " == *" -h "* ]]; then
  cat <<'USAGE'
usage: ./reset.sh [--config quintet-data/cluster.toml] [--data-root DIR] [--keep REPLICA] [--dry-run]
       ./reset.sh --wipe [--yes] [--config ...] [--data-root DIR]

Run it when the cluster cannot recover by itself: three or more replicas lost their data,
were restored from old backups, diverged or lied together. Stop every replica first (it
refuses while one runs). It reads every replica's folder (DIR/A, DIR/B, ...; DIR defaults to
the config's folder), checks every signature against cluster.toml's keys, prints one line
per replica (height, proven height, newest image, what it found: behind, diverged at height
H, unprovable blocks, damaged files) and keeps the longest history that q replicas' signed
CHECKPOINTs prove. Then it copies every folder and cluster.toml to NAME.backup-STAMP beside
it, re-seeds every replica from that history, and writes cluster.toml with a new reset
epoch: copy that file to every host and client. A second run on a healthy cluster changes
nothing. If two proven histories conflict (only possible after more than two faults) it
stops and prints both: choose one with --keep REPLICA.

--wipe starts the cluster over, empty, with the same keys (backup first; asks unless --yes).
Exit codes: 0 done or nothing to do, 1 refused or failed, 2 no proven history or a conflict.
Replicas on several hosts: stop them all, copy every replica's folder into one DIR on one
host, run ./reset.sh --data-root DIR there, then copy the folders and cluster.toml back
(README, "Recovery").
USAGE
  exit 0
fi
bin="${QUINTET_BIN:-}"
if [[ -z "$bin" ]]; then
  (cd "$here" && cargo build --release --quiet)
  bin="$here/target/release/quintet"
fi
exec "$bin" recover "$@"
