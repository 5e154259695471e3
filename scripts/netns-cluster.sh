#!/usr/bin/env bash
# Five Quintet replicas as five hosts on one machine: each replica in its own network
# namespace with its own address, joined by bridges, plus a namespace for clients. Needs
# root (network namespaces). Everything made here is named after TAG, so several runs can
# live side by side and nothing outside them is touched.
#
# Topology: two bridges, "left" and "right", each in a namespace of its own and joined by
# a trunk (a veth pair). Every replica and the client start on the left; `partition` moves
# the named replicas to the right bridge and takes the trunk down, so they still reach each
# other but not the others; `heal` brings the trunk back.
#
#   netns-cluster.sh create TAG           namespaces TAG-A..TAG-E, TAG-client; 10.77.0.1-5, .100
#   netns-cluster.sh addresses TAG        the replicas' addresses, one per line
#   netns-cluster.sh exec TAG NAME CMD... run CMD in namespace TAG-NAME (exec: same PID)
#   netns-cluster.sh partition TAG ID...  cut the named replicas (e.g. A C) off from the rest
#   netns-cluster.sh heal TAG             undo `partition`
#   netns-cluster.sh destroy TAG          remove every namespace of TAG (idempotent)
#   netns-cluster.sh demo DIR             create, then the README's several-machines steps:
#                                         a key per host (DIR/host-A..E), `init --from`,
#                                         `quintet up` on each host (PIDs in DIR/pids);
#   netns-cluster.sh stop DIR             kill the demo's replicas by PID and destroy
set -euo pipefail

IDS=(A B C D E)
SUBNET=10.77.0

die() { echo "netns-cluster.sh: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "needs root (network namespaces); run it with sudo"; }
ns() { echo "$1-$2"; }

# Interface names are at most 15 characters: a short hash of the tag keeps them unique.
short() { printf '%s' "$1" | sha256sum | cut -c1-6; }

create() {
    local tag=$1 s; s=$(short "$tag")
    need_root
    ip netns add "$(ns "$tag" left)"
    ip netns add "$(ns "$tag" right)"
    for side in left right; do
        ip -n "$(ns "$tag" $side)" link add br0 type bridge
        ip -n "$(ns "$tag" $side)" link set br0 up
    done
    ip link add "t$s-l" netns "$(ns "$tag" left)" type veth peer name "t$s-r" netns "$(ns "$tag" right)"
    ip -n "$(ns "$tag" left)" link set "t$s-l" master br0 up
    ip -n "$(ns "$tag" right)" link set "t$s-r" master br0 up
    local i=0 name
    for name in "${IDS[@]}" client; do
        i=$((i + 1))
        local addr="$SUBNET.$i"
        [ "$name" = client ] && addr="$SUBNET.100"
        ip netns add "$(ns "$tag" "$name")"
        ip link add "p$s$name" netns "$(ns "$tag" left)" type veth peer name eth0 netns "$(ns "$tag" "$name")"
        ip -n "$(ns "$tag" left)" link set "p$s$name" master br0 up
        ip -n "$(ns "$tag" "$name")" link set lo up
        ip -n "$(ns "$tag" "$name")" addr add "$addr/24" dev eth0
        ip -n "$(ns "$tag" "$name")" link set eth0 up
    done
}

addresses() {
    local i
    for i in 1 2 3 4 5; do echo "$SUBNET.$i"; done
}

partition() {
    local tag=$1 s id; s=$(short "$tag"); shift
    need_root
    [ $# -gt 0 ] || die "partition: name the replicas to cut off (e.g. A C)"
    for id in "$@"; do
        [[ " ${IDS[*]} " == *" $id "* ]] || die "partition: no replica $id (A to E)"
        ip -n "$(ns "$tag" left)" link set "p$s$id" netns "$(ns "$tag" right)"
        ip -n "$(ns "$tag" right)" link set "p$s$id" master br0 up
    done
    ip -n "$(ns "$tag" left)" link set "t$s-l" down
}

heal() {
    local tag=$1 s; s=$(short "$tag")
    need_root
    ip -n "$(ns "$tag" left)" link set "t$s-l" up
}

destroy() {
    local tag=$1 name
    for name in "${IDS[@]}" client left right; do
        ip netns del "$(ns "$tag" "$name")" 2>/dev/null || true
    done
}

# The README's "Several machines" steps, one namespace per host: each host makes its own
# key and prints its [[replica]] part (the private key never leaves the host's folder), the
# parts are put together with `init --from`, cluster.toml is copied to every host, and each
# host runs `quintet up`, which starts the replica whose address is there.
demo() {
    local dir=$1 bin tag hosts=() i id host parts=()
    need_root
    bin=${QUINTET_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/quintet}
    [ -x "$bin" ] || die "no binary at $bin: run cargo build --release first (or set QUINTET_BIN)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -e "$dir/pids" ] && die "$dir/pids exists: a demo runs there (stop it with: $0 stop $dir)"
    tag="q$(short "$dir")"
    echo "$tag" > "$dir/tag"
    create "$tag"
    mapfile -t hosts < <(addresses)
    if [ ! -e "$dir/cluster.toml" ]; then
        for i in 0 1 2 3 4; do
            id=${IDS[$i]} host="$dir/host-${IDS[$i]}"
            mkdir -p "$host"
            ip netns exec "$(ns "$tag" "$id")" "$bin" keygen --out "$host/$id.key" --id "$id" \
                --address "${hosts[$i]}:7101" > "$host/$id.part"
            parts+=("$host/$id.part")
        done
        "$bin" init --dir "$dir" --delta-ms 50 --from "${parts[@]}" >/dev/null
        for id in "${IDS[@]}"; do cp "$dir/cluster.toml" "$dir/host-$id/cluster.toml"; done
    fi
    for i in 0 1 2 3 4; do
        id=${IDS[$i]}
        ip netns exec "$(ns "$tag" "$id")" "$bin" up --dir "$dir/host-$id" >>"$dir/host-$id/up.log" 2>&1 &
        echo "$id $!" >> "$dir/pids"
    done
    echo "five hosts in namespaces $tag-A..$tag-E ($SUBNET.1-5), each running quintet up in $dir/host-ID; PIDs in $dir/pids"
    echo "chat:   ip netns exec $tag-client $bin chat --config $dir/cluster.toml --user alice"
    echo "status: ip netns exec $tag-client $bin status --config $dir/cluster.toml"
    echo "cut A and B off: $0 partition $tag A B; back: $0 heal $tag; stop: $0 stop $dir"
}

stop() {
    local dir=$1 id pid
    need_root
    [ -e "$dir/tag" ] || die "no demo in $dir"
    if [ -e "$dir/pids" ]; then
        # SIGTERM: each `up` stops its replica (SIGKILL after its own 10 s grace).
        while read -r id pid; do kill -TERM "$pid" 2>/dev/null || true; done < "$dir/pids"
        local waited=0
        while read -r id pid; do
            while kill -0 "$pid" 2>/dev/null && [ $waited -lt 150 ]; do sleep 0.1; waited=$((waited + 1)); done
            kill -9 "$pid" 2>/dev/null || true
        done < "$dir/pids"
        rm -f "$dir/pids"
    fi
    destroy "$(cat "$dir/tag")"
}

command=${1:-}
[ $# -ge 2 ] || die "usage: $0 create|addresses|exec|partition|heal|destroy TAG ... | demo|stop DIR (see the script's head)"
shift
case "$command" in
    create) create "$1" ;;
    addresses) addresses ;;
    exec)
        [ $# -ge 3 ] || die "exec: TAG NAME COMMAND..."
        tag=$1 name=$2; shift 2
        exec ip netns exec "$(ns "$tag" "$name")" "$@"
        ;;
    partition) partition "$@" ;;
    heal) heal "$1" ;;
    destroy) destroy "$1" ;;
    demo) demo "$1" ;;
    stop) stop "$1" ;;
    *) die "unknown command $command" ;;
esac
