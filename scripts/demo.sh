#!/usr/bin/env bash
# The five-terminal demo: a tmux session with one pane per replica (A-E, each running its
# replica and following it: role, view, height, commits, peers heard, proofs against it),
# two chat clients (alice, bob), a status pane and a control pane that offers the demo's
# steps as keys: chat; kill a replica; chat on; restart and catch up; two Byzantine
# replicas (the clients stay right, evidence names them); three down (the client stops:
# no quorum); stop, damage three replicas, reset.sh, the history back.
#
#   scripts/demo.sh [DIR] [--tui]      start it (DIR: ./quintet-demo) and attach; inside
#                                      tmux it switches to the demo's session
#   scripts/demo.sh --check [DIR]      the same steps unattended, in a detached session on
#                                      a private tmux socket; one line per step; exit 0 only
#                                      when every outcome holds (DIR: a temporary folder)
#   scripts/demo.sh --stop [DIR]       stop a demo: its replicas (by PID) and its session
#
# QUINTET_BIN names the binary (default: a release build of this repository); DEMO_DELTA_MS
# sets Δ for a new demo cluster (default 200). Installs tmux when it is missing (apt-get).
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
IDS=(A B C D E)

die() { echo "demo: $*" >&2; exit 1; }
now() { date +%H:%M:%S; }

# ---------------------------------------------------------------- arguments
mode=run; tui=""; dir=""; sub=""; subargs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --check) mode=check ;;
        --stop) mode=stop ;;
        --tui) tui="--tui" ;;
        --help|-h) sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        pane|status-pane|control|client) sub=$1; shift; subargs=("$@"); break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) dir=$1 ;;
    esac
    shift
done

bin="${QUINTET_BIN:-}"
if [[ -z "$bin" ]]; then
    if [[ -z "$sub" ]]; then
        (cd "$here" && cargo build --release --quiet) || die "cargo build failed"
    fi
    bin="$here/target/release/quintet"
fi
export QUINTET_BIN="$bin"

config() { echo "$1/cluster.toml"; }
# The replicas this host runs: those whose key is in the demo's folder and whose address is
# on this machine (the others run on their own hosts: their panes follow them).
here_ids() {
    python3 - "$(config "$1")" "$1" <<'PY'
import ipaddress, os, socket, sys, tomllib
config, folder = sys.argv[1], sys.argv[2]
here = []
for r in tomllib.load(open(config, "rb"))["replica"]:
    host = r["address"].rsplit(":", 1)[0].strip("[]")
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        with socket.socket(family) as s:
            s.bind((host, 0))
    except OSError:
        continue
    if os.path.exists(os.path.join(folder, r["id"] + ".key")):
        here.append(r["id"])
print(" ".join(here))
PY
}
is_here() { [[ " $(cat "$dir/here" 2>/dev/null) " == *" $1 "* ]]; }
elsewhere() { # id: what to do on its own host instead
    echo "$1 runs on another host: do it there (Ctrl-C in its \`quintet up\` stops it; \`quintet up --dir .\` starts it again)"
}
pid_of() { [[ -s "$1/$2.pid" ]] && cat "$1/$2.pid"; }
alive() { local p; p=$(pid_of "$1" "$2") && kill -0 "$p" 2>/dev/null; }

# ---------------------------------------------------------------- the panes
# A replica's pane: runs it (again after each kill, unless marked down) and follows it.
pane() {
    local d=$1 id=$2
    if ! is_here "$id"; then # it runs on its own host: follow it from here
        echo "$(now) $id  runs on another host ($(grep -A2 "id = \"$id\"" "$(config "$d")" | sed -n 's/^address = "\(.*\)"/\1/p'))"
        while [[ ! -e "$d/stop" ]]; do
            "$bin" follow --config "$(config "$d")" --id "$id" --seconds 60 $( (( $(tput cols 2>/dev/null || echo 80) < 80 )) && echo --compact)
        done
        return
    fi
    while [[ ! -e "$d/stop" ]]; do
        if [[ -e "$d/$id.down" ]]; then
            echo "$(now) $id  down (killed); restart it from the control pane"
            while [[ -e "$d/$id.down" && ! -e "$d/stop" ]]; do sleep 0.3; done
            continue
        fi
        local modes=() started
        [[ -s "$d/$id.byzantine" ]] && modes=(--byzantine "$(cat "$d/$id.byzantine")")
        "$bin" replica --config "$(config "$d")" --id "$id" "${modes[@]}" >>"$d/$id.out" 2>>"$d/$id.log" &
        local rpid=$!
        echo "$rpid" >"$d/$id.pid"
        started=$(date +%s)
        echo "$(now) $id  started (pid $rpid)${modes[*]:+, ${modes[*]}}"
        "$bin" follow --config "$(config "$d")" --id "$id" $( (( $(tput cols 2>/dev/null || echo 80) < 80 )) && echo --compact) &
        local fpid=$!
        wait "$rpid"
        kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null
        echo "$(now) $id  stopped"
        if (( $(date +%s) - started < 3 )) && [[ ! -e "$d/$id.down" ]]; then
            echo "$(now) $id  did not stay up: $(grep -v '^$' "$d/$id.log" | tail -n 1 | cut -c1-300)"
            sleep 5
        fi
    done
}

status_pane() { # the status table when the pane is wide, a summary when it is narrow
    local d=$1
    while [[ ! -e "$d/stop" ]]; do
        local out
        if (( $(tput cols 2>/dev/null || echo 80) >= 100 )); then
            out=$("$bin" status --config "$(config "$d")" 2>&1)
        else
            out=$("$bin" status --json --config "$(config "$d")" 2>/dev/null | python3 -c '
import json,sys
v=json.load(sys.stdin)
print("%d/%d up, %d needed; leader %s, view %s, height %s" % (v["up"], len(v["replicas"]), v["quorum"], v.get("leader") or "-", v.get("view"), v.get("height")))
print("  ".join("%s %s" % (r["replica"], r["height"] if r.get("up") else "down") for r in v["replicas"]))' 2>&1)
        fi
        clear; echo "$out"; sleep 2
    done
}

client_pane() {
    local d=$1 user=$2; shift 2
    echo "$user's client: waiting for the demo to make the accounts..."
    while [[ ! -e "$d/accounts" && ! -e "$d/stop" ]]; do sleep 0.3; done
    [[ " $* " == *" --tui "* ]] || echo "Type login, then help for the commands."
    while [[ ! -e "$d/stop" ]]; do
        QUINTET_PASSWORD="$user-demo-password" "$bin" chat --config "$(config "$d")" --user "$user" "$@"
        echo "(the client ended; it starts again in 3 s)"; sleep 3
    done
}

# ---------------------------------------------------------------- the steps
# Each step is used by the control pane and by --check; each prints what it did.
chat_json() { # user, then command lines on stdin: one JSON object per line out
    QUINTET_PASSWORD="$1-demo-password" "$bin" chat --json --config "$(config "$dir")" --user "$1" --timeout-ms "${DEMO_TIMEOUT_MS:-10000}" 2>/dev/null
}

step_accounts() { # alice's and bob's accounts, made once; then the client panes start
    local u out
    for u in alice bob; do
        out=$(printf 'create\nlogout\n' | chat_json "$u")
        [[ $out == *'"command":"create","differed"'* ]] && continue
        out=$(printf 'login\nlogout\n' | chat_json "$u")
        [[ $out == *'"command":"login","differed"'* ]] || return 1
    done
    touch "$dir/accounts"
}

step_send() { # text: alice sends it to bob; prints the result line
    printf 'login\nsend bob %s\nlogout\n' "$1" | chat_json alice | grep '"command":"send"'
}

step_kill() { # id: kill -9 by PID, marked down so its pane waits
    local id=$1 p
    is_here "$id" || { elsewhere "$id"; return 1; }
    touch "$dir/$id.down"
    p=$(pid_of "$dir" "$id") && kill -9 "$p" 2>/dev/null
    for _ in $(seq 50); do alive "$dir" "$id" || return 0; sleep 0.1; done
    return 1
}

step_restart() { local id; for id in "$@"; do is_here "$id" && rm -f "$dir/$id.down"; done; return 0; }

step_byzantine() { # modes, ids: restart them misbehaving (modes empty: honest again)
    local modes=$1 id p; shift
    for id in "$@"; do
        is_here "$id" || { [[ -n "$modes" ]] && echo "$id runs on another host: start it there with \`quintet up --dir . --byzantine $id=$modes\`"; continue; }
        if [[ -n "$modes" ]]; then echo "$modes" >"$dir/$id.byzantine"; else rm -f "$dir/$id.byzantine"; fi
        p=$(pid_of "$dir" "$id") && kill -9 "$p" 2>/dev/null
    done
}

up_count() { # replicas answering status
    "$bin" status --json --config "$(config "$dir")" 2>/dev/null | python3 -c '
import json,sys
v=json.load(sys.stdin); print(sum(1 for r in v.get("replicas",[]) if r.get("up")))' 2>/dev/null || echo 0
}

heights() { # one height per answering replica, space separated
    "$bin" status --json --config "$(config "$dir")" 2>/dev/null | python3 -c '
import json,sys
v=json.load(sys.stdin); print(" ".join(str(r.get("height")) for r in v.get("replicas",[]) if r.get("up")))' 2>/dev/null
}

pick() { # count, ids in order of preference: the first that run here
    local count=$1 id out=(); shift
    for id in "$@"; do is_here "$id" && out+=("$id"); (( ${#out[@]} == count )) && break; done
    echo "${out[@]}"
}

wait_for() { # seconds, command...: until it succeeds
    local until=$(( $(date +%s) + $1 )); shift
    while ! "$@"; do (( $(date +%s) < until )) || return 1; sleep 0.5; done
}
all_up() { [[ "$(up_count)" == "${1:-5}" ]]; }
caught_up() { local h; h=$(heights); [[ -n "$h" && $(wc -w <<<"$h") == 5 && $(tr ' ' '\n' <<<"$h" | sort -u | wc -l) == 1 ]]; }

step_stop_cluster() { local id; for id in $(cat "$dir/here"); do step_kill "$id" || return 1; done; }

step_damage() { # ids: flip a byte in each vote record copy and in the chain
    local id f
    for id in "$@"; do
        for f in "$dir/$id"/consensus.qlog "$dir/$id"/consensus.mirror.qlog "$dir/$id"/chain-*.qlog; do
            [[ -s "$f" ]] || continue
            printf '\xff' | dd of="$f" bs=1 seek=20 conv=notrunc status=none
        done
    done
}

step_reset() { bash "$here/reset.sh" --config "$(config "$dir")"; }

bob_reads() { # every message bob has from alice, one per line
    printf 'login\nhistory alice 100\nlogout\n' | chat_json bob | python3 -c '
import json,sys
for line in sys.stdin:
    o=json.loads(line)
    if o.get("command")=="history":
        for m in o.get("messages",[]): print(m["text"])'
}

evidence_names() { # the replicas that checked proofs accuse, space separated
    "$bin" evidence --json --config "$(config "$dir")" 2>/dev/null | python3 -c '
import json,sys
v=json.load(sys.stdin); print(" ".join(sorted({p["accused"] for p in v.get("proofs",[])})))' 2>/dev/null
}

# ---------------------------------------------------------------- setup and layout
setup() {
    if [[ ! -e "$(config "$dir")" ]]; then
        "$bin" init --dir "$dir" --delta-ms "${DEMO_DELTA_MS:-200}" >/dev/null || die "quintet init failed"
        if [[ -n "${DEMO_FAST_KDF:-}" ]]; then # unattended runs: a cheap password hash
            sed -i 's/^memory_kib = .*/memory_kib = 64/; s/^iterations = .*/iterations = 1/' "$(config "$dir")"
        fi
    fi
    rm -f "$dir/stop" "$dir/accounts" "$dir"/*.down "$dir"/*.byzantine
    here_ids "$dir" >"$dir/here" || die "cannot read $(config "$dir")"
    [[ -s "$dir/here" ]] || die "no replica of $(config "$dir") runs here: put the keys of this host's replicas (ID.key) beside it"
}

tmux_() { tmux ${socket:+-S "$socket"} "$@"; }

layout() { # session name: the replicas in a column on the left; clients, status, control on the right
    local s=$1 me q; me="bash $(printf %q "$0")"; q=$(printf %q "$dir")
    split() { tmux_ split-window -P -F '#{pane_id}' "$@"; }
    local a alice bob st ctl b c d e
    a=$(tmux_ new-session -d -P -F '#{pane_id}' -s "$s" -x 80 -y 24 "$me pane $q A")
    tmux_ set-option -t "$s" remain-on-exit on >/dev/null
    alice=$(split -h -l 41 -t "$a" "$me client $q alice $tui")
    bob=$(split -v -l 16 -t "$alice" "$me client $q bob $tui")
    ctl=$(split -v -l 8 -t "$bob" "$me control $q $tui")
    st=$(split -v -l 2 -t "$ctl" "$me status-pane $q")
    b=$(split -v -l 19 -t "$a" "$me pane $q B")
    c=$(split -v -l 14 -t "$b" "$me pane $q C")
    d=$(split -v -l 9 -t "$c" "$me pane $q D")
    e=$(split -v -l 4 -t "$d" "$me pane $q E")
    local pane title
    for pane in "$a:A" "$b:B" "$c:C" "$d:D" "$e:E" "$alice:alice" "$bob:bob" "$st:status" "$ctl:control"; do
        title=${pane#*:}; pane=${pane%%:*}
        tmux_ select-pane -t "$pane" -T "$title" 2>/dev/null
        echo "$pane" >"$dir/pane-$title"
    done
    tmux_ set-option -t "$s" pane-border-status top >/dev/null 2>&1
    tmux_ select-pane -t "$ctl"
}

stop_demo() {
    touch "$dir/stop"
    local id p
    for id in "${IDS[@]}"; do p=$(pid_of "$dir" "$id") && kill -9 "$p" 2>/dev/null; done
    if [[ -n "${socket:-}" ]]; then
        local server; server=$(tmux_ display-message -p '#{pid}' 2>/dev/null) && kill "$server" 2>/dev/null
    else
        tmux kill-session -t quintet-demo 2>/dev/null
    fi
    return 0
}

# ---------------------------------------------------------------- the control pane
said() { # what, a send's JSON line: one plain line
    if [[ $2 == *'"type":"result"'* ]]; then
        echo "$1: acknowledged by $(sed -n 's/.*"agreed":\[\([^]]*\)\].*/\1/p' <<<"$2" | tr -d '"')"
    else
        echo "$1: no quorum, no three matching replies (nothing shown as sent)"
    fi
}

show() { # title, command...: its whole output in a tmux popup (the control pane is small)
    local out="$dir/step.txt"
    { echo "== $1 (q closes)"; "${@:2}"; } >"$out" 2>&1
    tail -n 3 "$out"
    tmux display-popup -w 78 -h 22 -E "less -R $(printf %q "$out")" 2>/dev/null || echo "(all of it: $out)"
}

log_in_clients() { # the line clients log in by themselves (the full-screen ones do)
    [[ -z "$tui" ]] || return 0
    local user; for user in alice bob; do tmux send-keys -t "$(cat "$dir/pane-$user")" "login" Enter 2>/dev/null; done
}

restart_clients() { # after a reset the clients start again with the new cluster.toml
    local user; for user in alice bob; do tmux send-keys -t "$(cat "$dir/pane-$user")" C-c 2>/dev/null; done
    sleep 5; log_in_clients
}

stop_damage_reset() {
    step_stop_cluster; step_damage C D E; echo "C, D and E damaged (a byte flipped in each of their logs)"; echo; step_reset
}

control() {
    cat <<'KEYS'
1 alice->bob 2 kill one 3 restart all
4 two lie 5 honest 6 evidence 7 kill 3
8 stop,damage,reset.sh s status q quit
KEYS
    [[ -n "${DEMO_CHECK:-}" ]] || { { wait_for 60 all_up && step_accounts; } >/dev/null 2>&1; sleep 1; log_in_clients; }
    local n=0 key id ids
    while read -r -n 1 -p "> " key; do
        echo
        case "$key" in
            1) n=$((n + 1)); said "alice -> bob: hello bob, number $n" "$(step_send "hello bob, number $n")" ;;
            2) read -r -n 1 -p "which replica (A-E)? " id; echo; step_kill "${id^^}" && echo "${id^^} killed" ;;
            3) step_restart "${IDS[@]}"; echo "restarting; watch them catch up" ;;
            4) read -r -n 2 -p "which two (two letters, e.g. BE)? " ids; echo; ids=$(sed 's/./& /g; s/ $//' <<<"${ids^^}")
               step_byzantine lie $ids; echo "$ids now lie in every answer (their dots turn red in the clients)" ;;
            5) step_byzantine "" $(cd "$dir" && ls -- *.byzantine 2>/dev/null | sed 's/\.byzantine$//'); echo "every replica honest again" ;;
            6) show "quintet evidence" "$bin" evidence --config "$(config "$dir")" ;;
            7) for id in $(pick 3 A B C D E); do step_kill "$id"; done; step_send "into the void" || echo "alice's client: no quorum (3 replicas down); press 3 to restart them" ;;
            8) [[ $(wc -w <"$dir/here") == 5 ]] || { echo "the replicas are on several hosts: stop them all, then reset as the README's \"Several machines\" says"; continue; }
               echo "stopping every replica, damaging C, D and E, running reset.sh..."
               show "stop, damage, reset.sh" stop_damage_reset
               step_restart "${IDS[@]}"; restart_clients
               wait_for 60 all_up; echo "bob's history with alice:"; bob_reads | tail -n 3 ;;
            s) "$bin" status --config "$(config "$dir")" ;;
            q) stop_demo; exit 0 ;;
            *) echo "keys: 1-8, s, q" ;;
        esac
    done
}

# ---------------------------------------------------------------- --check
check() {
    local failed=0
    result() { # ok?, text
        if [[ $1 == 0 ]]; then echo "ok    $2"; else echo "FAIL  $2"; failed=1; fi
    }
    wait_for 60 all_up; result $? "five replicas up, one pane each, at 80x24"
    local panes; panes=$(tmux_ list-panes -t demo-check | wc -l)
    [[ $panes == 9 ]]; result $? "nine panes: A-E, alice, bob, status, control ($panes)"

    step_accounts; result $? "alice and bob have accounts"
    local bob_pane; bob_pane=$(cat "$dir/pane-bob")
    sleep 1; [[ -z "$tui" ]] && tmux_ send-keys -t "$bob_pane" "login" Enter
    local sent=() r
    r=$(step_send "hello bob"); [[ $r == *'"type":"result"'* ]]; result $? "alice -> bob: acknowledged by 3 matching replies"
    sent+=("hello bob")
    # The line client prints the message; the full-screen one lists alice's conversation as unread.
    local shown='hello bob'; [[ -n "$tui" ]] && shown='alice (1)'
    wait_for 20 bash -c "tmux ${socket:+-S $socket} capture-pane -p -J -t $bob_pane | grep -qF '$shown'"; result $? "bob's pane shows it live${tui:+ (full screen)}"
    [[ $failed == 0 ]] || tmux_ capture-pane -p -t "$bob_pane" | sed 's/^/      | /' 

    local kill=($(pick 2 C D E A B)) liars=($(pick 2 B E A C D)) three=($(pick 3 A B C D E))
    (( ${#kill[@]} == 2 && ${#liars[@]} == 2 && ${#three[@]} == 3 )) || { result 1 "three replicas run here (only $(cat "$dir/here"))"; return 1; }
    [[ $(wc -w <"$dir/here") == 5 ]] || echo "      (replicas $(cat "$dir/here") run here; the others on another host)"
    step_kill "${kill[0]}"; result $? "${kill[0]} killed (by PID)"
    step_kill "${kill[1]}"; result $? "${kill[1]} killed (by PID)"
    r=$(step_send "with two down"); [[ $r == *'"type":"result"'* ]]; result $? "alice -> bob with ${kill[*]} down: acknowledged"
    sent+=("with two down")
    step_restart "${kill[@]}"; wait_for 90 caught_up; result $? "${kill[*]} restarted and caught up (heights: $(heights))"

    step_byzantine lie "${liars[@]}"; wait_for 60 all_up
    local good=0 names="" want; want=$(printf '%s\n' "${liars[@]}" | sort | tr '\n' ' ' | sed 's/ $//')
    for k in 1 2 3 4 5 6; do
        r=$(step_send "among liars $k")
        [[ $r == *'"type":"result"'* ]] && good=$((good + 1)) && sent+=("among liars $k")
        names=$(evidence_names); [[ $names == "$want" ]] && break
    done
    (( good > 0 )); result $? "${liars[*]} lie: alice's sends still get the right result ($good acknowledged)"
    [[ $names == "$want" ]]; result $? "evidence names the liars: [$names]"
    step_byzantine "" "${liars[@]}"; wait_for 60 all_up; result $? "${liars[*]} honest again"

    for id in "${three[@]}"; do step_kill "$id"; done
    r=$(step_send "into the void"; printf 'login\nsend bob into the void\n' | QUINTET_PASSWORD=alice-demo-password "$bin" chat --config "$(config "$dir")" --user alice --timeout-ms 3000 2>&1)
    [[ $r == *"no quorum"* ]]; result $? "three down: alice's client stops with no quorum"
    step_restart "${three[@]}"; wait_for 90 caught_up; result $? "${three[*]} back, caught up"
    r=$(step_send "before the reset"); [[ $r == *'"type":"result"'* ]]; result $? "alice -> bob again"
    sent+=("before the reset")

    if [[ $(wc -w <"$dir/here") == 5 ]]; then
        sleep 2; step_stop_cluster; result $? "cluster stopped"
        step_damage C D E
        r=$(step_reset 2>&1); local code=$?
        echo "$r" | sed 's/^/      /'
        [[ $code == 0 && $r == *"re-seeded"* ]]; result $? "reset.sh re-seeded the cluster from the proven history"
        step_restart "${IDS[@]}"; wait_for 90 all_up; result $? "five replicas up in the new reset epoch"
    else
        echo "skip  the reset: it needs every replica's folder on one host (README, \"Several machines\")"
    fi
    local history; history=$(bob_reads)
    local missing=0 s
    for s in "${sent[@]}"; do grep -qxF "$s" <<<"$history" || { missing=1; echo "      missing: $s"; }; done
    [[ $missing == 0 ]]; result $? "bob's history holds every acknowledged message (${#sent[@]})"
    r=$(step_send "after the reset"); [[ $r == *'"type":"result"'* ]]; result $? "alice -> bob after the reset"
    return $failed
}

# ---------------------------------------------------------------- main
case "$sub" in
    pane) dir=${subargs[0]}; pane "${subargs[0]}" "${subargs[1]}"; exit ;;
    status-pane) status_pane "${subargs[0]}"; exit ;;
    client) d=${subargs[0]}; u=${subargs[1]}; client_pane "$d" "$u" "${subargs[@]:2}"; exit ;;
    control) dir=${subargs[0]}; tui=${subargs[1]:-}; control; exit ;;
esac

if ! command -v tmux >/dev/null; then
    echo "demo: tmux is missing; installing it (apt-get install tmux)" >&2
    if [[ $(id -u) == 0 ]]; then apt-get install -y -qq tmux >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1
    elif command -v sudo >/dev/null; then sudo apt-get install -y -qq tmux >/dev/null 2>&1
    fi
    command -v tmux >/dev/null || die "tmux is needed and could not be installed: install it (apt-get install tmux) and run again"
fi

case "$mode" in
    stop)
        dir=${dir:-$PWD/quintet-demo}; socket=""; [[ -S "$dir/tmux.sock" ]] && socket="$dir/tmux.sock"
        stop_demo; echo "demo stopped" ;;
    check)
        made=""
        if [[ -z "$dir" ]]; then dir=$(mktemp -d /tmp/quintet-demo-check.XXXXXX); made=$dir; fi
        mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
        socket="$dir/tmux.sock"
        export DEMO_FAST_KDF=${DEMO_FAST_KDF:-1} DEMO_CHECK=1
        trap 'stop_demo >/dev/null 2>&1; [[ -n "$made" && ${keep:-0} == 0 ]] && rm -rf "$made"' EXIT
        setup
        layout demo-check
        check; code=$?
        if [[ $code != 0 ]]; then keep=1; echo "demo --check failed; its folder is kept: $dir"; for id in "${IDS[@]}"; do echo "--- $id.log (last lines)"; tail -n 5 "$dir/$id.log" 2>/dev/null; done; fi
        exit $code ;;
    run)
        dir=${dir:-$PWD/quintet-demo}; mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
        socket=""
        tmux has-session -t quintet-demo 2>/dev/null && die "a demo runs already (tmux session quintet-demo): scripts/demo.sh --stop $dir"
        setup
        layout quintet-demo
        if [[ -n "${TMUX:-}" ]]; then
            tmux switch-client -t quintet-demo 2>/dev/null || echo "the demo runs in tmux session quintet-demo: tmux switch-client -t quintet-demo (or tmux attach -t quintet-demo)"
        else
            exec tmux attach -t quintet-demo
        fi ;;
esac
