#!/bin/bash
# Failure drills on real ninesd processes (issue 9; tools/drill/README.md).
#
#   tools/drill/drill.sh DRILL...      (DRILL: a name below, or kills, partitions, all)
#
# baseline: the same load and checks without a fault (tests the harness).
# Kill drills (loopback, no privileges): kill-primary kill-client-node
#   kill-standby-only kill-coordinator stop-cont
# Partition drills (root: one network namespace per node on a bridge;
#   part-baseline: the namespaces without a cut):
#   part-2x2 part-1x3 part-oneway part-arb-unreachable
#
# Each drill: a fresh 4-node cluster, TPC-B scale 1, TPC-B load with a
# journal (tpcb --journal), the fault in the middle of the load, a watcher
# sampling for two primaries the whole time (drill_check --watch), then the
# checker (drill_check) over the journals and the cluster. Prints one
# "DRILL name: PASS|FAIL|SKIP (why)" line per drill; exit 0 when none failed.
#
# Environment: NINES_BIN (build/bin), DRILL_DIR (a new /tmp/nines-drill.*
# folder; kept with KEEP=1 or when a drill fails), LOAD_S (seconds of load
# before the fault, 2), AFTER_S (seconds of load after it, 4), CLIENTS (2),
# WINDOW (4), SETTLE_MS (checker retry window, 5000), HEARTBEAT_MS /
# HEARTBEAT_MISSES (written to the cluster file when set), CUT (nft|route:
# how partitions are cut; nft when the nft command exists).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BIN=${NINES_BIN:-build/bin}
case "$BIN" in /*) ;; *) BIN="$top/$BIN" ;; esac
LOAD_S=${LOAD_S:-2} AFTER_S=${AFTER_S:-4} CLIENTS=${CLIENTS:-2} WINDOW=${WINDOW:-4}
SETTLE_MS=${SETTLE_MS:-5000}
if [ -z "${CUT:-}" ]; then
    if command -v nft >/dev/null 2>&1; then CUT=nft; else CUT=route; fi
fi
ROOT=${DRILL_DIR:-$(mktemp -d /tmp/nines-drill.XXXXXX)}
mkdir -p "$ROOT"
base_tag=d$(( $$ % 100000 ))   # prefix of this run's namespaces and links
tag=$base_tag                  # + the drill's number (set per drill)
net=$(( $$ % 200 + 20 ))       # 10.77.$net.0/24
PIDS=()                        # every process this script started
NSLIST=()                      # every namespace this script made
BR=""

log() { printf '%s\n' "$*" >&2; }

cleanup() {
    for p in "${PIDS[@]}"; do
        kill -CONT "$p" 2>/dev/null
        kill -KILL "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    PIDS=()
    # the host ends of the veth pairs first: deleting one deletes both ends
    # at once, while a namespace's own links go away asynchronously
    for h in 1 2 3 4 a; do ip link del "${tag}v$h" 2>/dev/null; done
    for ns in "${NSLIST[@]}"; do ip netns del "$ns" 2>/dev/null; done
    NSLIST=()
    if [ -n "$BR" ]; then ip link del "$BR" 2>/dev/null; BR=""; fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# ---- cluster setup ------------------------------------------------------------

# conf_write DIR MODE: the cluster file (MODE lo: loopback ports; ns: addresses)
conf_write() {
    local d=$1 mode=$2 base=$3
    {
        echo "cluster drill"
        [ -n "${HEARTBEAT_MS:-}" ] && echo "heartbeat_ms $HEARTBEAT_MS"
        [ -n "${HEARTBEAT_MISSES:-}" ] && echo "heartbeat_misses $HEARTBEAT_MISSES"
        echo "reconnect_min_ms 5"
        echo "reconnect_max_ms 100"
        if [ "$mode" = ns ]; then
            echo "arbitrator 10.77.$net.100:7400"
        else
            echo "arbitrator 127.0.0.1:$base"
        fi
        for i in 1 2 3 4; do
            mkdir -p "$d/node$i"
            if [ "$mode" = ns ]; then
                echo "node $i site $(( (i - 1) % 2 )) 10.77.$net.$i:$(( 7400 + i )) data $d/node$i"
            else
                echo "node $i site $(( (i - 1) % 2 )) 127.0.0.1:$(( base + i )) data $d/node$i"
            fi
        done
    } > "$d/cluster.conf"
}

# A base port with 5 free ports after it (loopback drills).
pick_base() {
    local b used
    used=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk 'NR > 1 { split($2, a, ":"); h = toupper(a[2]); v = 0
        for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1
        print v }')
    for try in $(seq 0 50); do
        b=$(( 21000 + ($$ * 13 + try * 101) % 25000 ))
        local clash=0
        for k in 0 1 2 3 4; do
            if printf '%s\n' $used | grep -qx "$(( b + k ))"; then clash=1; fi
        done
        [ $clash = 0 ] && { echo $b; return; }
    done
    echo 0
}

declare -A NODEPID
# node_start D ID [NS]
node_start() {
    local d=$1 id=$2 ns=${3:-}
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "$BIN/ninesd" --config "$d/cluster.conf" --node "$id" \
            >>"$d/node$id.log" 2>&1 &
    else
        "$BIN/ninesd" --config "$d/cluster.conf" --node "$id" >>"$d/node$id.log" 2>&1 &
    fi
    NODEPID[$id]=$!
    PIDS+=($!)
}

arb_start() {
    local d=$1 ns=${2:-}
    [ -x "$BIN/ninesarb" ] || { log "  (no $BIN/ninesarb: the arbitrator is not running)"; return; }
    mkdir -p "$d/arb"
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "$BIN/ninesarb" --config "$d/cluster.conf" --data "$d/arb" \
            >>"$d/arb.log" 2>&1 &
    else
        "$BIN/ninesarb" --config "$d/cluster.conf" --data "$d/arb" >>"$d/arb.log" 2>&1 &
    fi
    PIDS+=($!)
}

# Namespaces: nodes 1..4 and the arbitrator ("a"), each on the bridge.
ns_name() { echo "${tag}n$1"; }
ns_addr() { if [ "$1" = a ]; then echo "10.77.$net.100"; else echo "10.77.$net.$1"; fi; }
ns_setup() {
    BR="${tag}br"
    ip link add "$BR" type bridge || return 1
    ip link set "$BR" up
    ip addr add "10.77.$net.254/24" dev "$BR"
    for h in 1 2 3 4 a; do
        local ns
        ns=$(ns_name "$h")
        ip netns add "$ns" || return 1
        NSLIST+=("$ns")
        ip link add "${tag}v$h" type veth peer name eth0 netns "$ns" || return 1
        ip link set "${tag}v$h" master "$BR" up
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$(ns_addr "$h")/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

# Can this machine run the partition drills?
ns_usable() {
    [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
    command -v ip >/dev/null || { echo "no ip command"; return 1; }
    local t="${tag}probe"
    if ! ip netns add "$t" 2>/dev/null; then echo "ip netns add fails"; return 1; fi
    ip netns del "$t"
    if ! ip link add "${t}b" type bridge 2>/dev/null; then echo "no bridge support"; return 1; fi
    ip link del "${t}b"
    return 0
}

# drop FROM TO: packets from host FROM no longer reach host TO (one way).
# nft: a drop rule on TO's input (silent for the sender); route: a
# blackhole route in FROM (the sender's send fails at once).
drop() {
    local from=$1 to=$2
    if [ "$CUT" = nft ]; then
        local ns
        ns=$(ns_name "$to")
        ip netns exec "$ns" nft list table inet drill >/dev/null 2>&1 ||
            { ip netns exec "$ns" nft add table inet drill &&
              ip netns exec "$ns" nft add chain inet drill in \
                  '{ type filter hook input priority 0; policy accept; }'; }
        ip netns exec "$ns" nft add rule inet drill in ip saddr "$(ns_addr "$from")" drop
    else
        ip -n "$(ns_name "$from")" route add blackhole "$(ns_addr "$to")/32"
    fi
}
heal_all() {
    for h in 1 2 3 4 a; do
        local ns
        ns=$(ns_name "$h")
        ip netns exec "$ns" nft delete table inet drill 2>/dev/null
        for x in 1 2 3 4 a; do ip -n "$ns" route del blackhole "$(ns_addr "$x")/32" 2>/dev/null; done
    done
    return 0
}
# cut "A B" "C D": both directions between the two groups.
cut() { for a in $1; do for b in $2; do drop "$a" "$b"; drop "$b" "$a"; done; done; }

# cluster_up D MODE: nodes (and arbitrator), healthy, TPC-B loaded.
cluster_up() {
    local d=$1 mode=$2 base=0
    if [ "$mode" = ns ]; then
        ns_setup || { log "namespace setup failed"; return 1; }
    else
        base=$(pick_base)
        [ "$base" != 0 ] || { log "no free ports"; return 1; }
    fi
    conf_write "$d" "$mode" "$base"
    if [ "$mode" = ns ]; then
        arb_start "$d" "$(ns_name a)"
        for i in 1 2 3 4; do node_start "$d" $i "$(ns_name $i)"; done
    else
        arb_start "$d"
        for i in 1 2 3 4; do node_start "$d" $i; done
    fi
    if ! "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-healthy 20 >"$d/status0.txt" 2>&1; then
        log "the cluster did not become healthy (logs in $d)"
        return 1
    fi
    if [ -n "${PRECREATE_FRAGS:-}" ]; then
        local c="$BIN/ninesctl --config $d/cluster.conf create-table"
        $c branch --columns "bid:int64,balance:int64,filler:string(88)" --key bid --frags "$PRECREATE_FRAGS" >/dev/null &&
        $c teller --columns "tid:int64,bid:int64,balance:int64,filler:string(84)" --key tid --frags "$PRECREATE_FRAGS" >/dev/null &&
        $c account --columns "aid:int64,bid:int64,balance:int64,filler:string(84)" --key aid --frags "$PRECREATE_FRAGS" >/dev/null &&
        $c history --columns "hid:int64,aid:int64,tid:int64,bid:int64,delta:int64,ts:timestamp,filler:string(22)" --key hid --frags "$PRECREATE_FRAGS" >/dev/null ||
            { log "create-table failed"; return 1; }
    fi
    "$BIN/tpcb_load" --config "$d/cluster.conf" --scale 1 >"$d/load.txt" 2>&1 ||
        { log "tpcb_load failed: $(tail -n 3 "$d/load.txt")"; return 1; }
}

# load_start D NAME [tpcb options]: a journaled TPC-B client in the background.
LOADPIDS=()
load_start() {
    local d=$1 name=$2
    shift 2
    "$BIN/tpcb" --config "$d/cluster.conf" --scale 1 --clients "$CLIENTS" --window "$WINDOW" \
        --no-verify --journal "$d/$name.jnl" "$@" >"$d/$name.out" 2>&1 &
    LOADPIDS+=($!)
    PIDS+=($!)
}
load_wait() { for p in "${LOADPIDS[@]}"; do wait "$p"; done; LOADPIDS=(); }

WATCHPID=""
watch_start() {
    "$BIN/drill_check" --config "$1/cluster.conf" --watch "$2" --interval-ms 100 >"$1/watch.txt" 2>&1 &
    WATCHPID=$!
    PIDS+=($!)
}
watch_wait() { [ -n "$WATCHPID" ] && wait "$WATCHPID"; local rc=$?; WATCHPID=""; return $rc; }

detect_s() {
    # generous wait for detection and a node-set round: 20 intervals or 1 s
    local hb=${HEARTBEAT_MS:-50} m=${HEARTBEAT_MISSES:-2}
    local ms=$(( hb * (m + 1) * 20 ))
    [ $ms -lt 1000 ] && ms=1000
    awk -v ms=$ms 'BEGIN { printf "%.3f", ms / 1000 }'
}

# Which nodes serve (from drill_check's node lines).
serving_nodes() {
    "$BIN/drill_check" --config "$1/cluster.conf" --no-data --no-takeover --settle-ms 0 2>/dev/null |
        awk '/^node [0-9]+: serving/ { sub(":", "", $2); printf "%s ", $2 }'
}

# ---- the drills -----------------------------------------------------------------

# Each prints its findings into $d/result.txt and returns 0 pass, 1 fail, 77 skip.
check() {
    local d=$1
    shift
    "$BIN/drill_check" --config "$d/cluster.conf" --settle-ms "$SETTLE_MS" "$@" >"$d/check.txt" 2>&1
    local rc=$?
    watch_wait
    local wrc=$?
    # ninesctl's own view, kept with the drill; its two-primaries warning
    # (when it has one) fails the drill too
    "$BIN/ninesctl" --config "$d/cluster.conf" replicas --json >"$d/replicas.json" 2>&1
    local prc=0
    if grep -q '"two_primaries":[1-9]' "$d/replicas.json"; then
        echo "FAIL ninesctl replicas          warns of two primaries (replicas.json)"
        prc=1
    fi
    cat "$d/watch.txt" "$d/check.txt"
    [ $rc = 0 ] && [ $wrc = 0 ] && [ $prc = 0 ]
}

kill_drill() {
    local d=$1 victim=$2 sig=$3 first=$4
    shift 4
    local total
    total=$(awk -v a="$LOAD_S" -v b="$AFTER_S" 'BEGIN { print a + b }')
    watch_start "$d" "$(awk -v t="$total" 'BEGIN { print t + 1 }')"
    load_start "$d" load --duration "$total" --first-node "$first"
    sleep "$LOAD_S"
    if [ "$victim" = 0 ]; then
        load_wait
        check "$d" --journal "$d/load.jnl" "$@"
        return
    fi
    echo "fault: SIG$sig node $victim at $(date +%s%6N) us" | tee -a "$d/faults.txt"
    kill -"$sig" "${NODEPID[$victim]}"
    if [ "$sig" = STOP ]; then
        sleep "$(detect_s)"
        echo "fault: SIGCONT node $victim at $(date +%s%6N) us" | tee -a "$d/faults.txt"
        kill -CONT "${NODEPID[$victim]}"
    fi
    load_wait
    tail -n 1 "$d/load.out" >/dev/null
    check "$d" --journal "$d/load.jnl" --expect-out "$victim" "$@"
}

drill_baseline() { kill_drill "$1" 0 NONE 1; }              # no fault: the harness itself
drill_kill_primary() { kill_drill "$1" 4 KILL 1; }           # node 4 holds primaries (MISD)
drill_kill_client_node() { kill_drill "$1" 2 KILL 2; }       # every client starts on node 2
drill_kill_coordinator() { kill_drill "$1" 1 KILL 2; }       # lowest id = first in succession
drill_stop_cont() { kill_drill "$1" 3 STOP 1; }              # a hang, then it wakes up
drill_kill_standby_only() {
    # Tables with 3 fragments on 4 nodes (PRECREATE_FRAGS below): one node
    # holds no primary but a standby (MISD: node 4).
    local d=$1 victim=""
    for id in 4 3 2 1; do
        local p s ok=1 standbys=0
        for t in branch teller account history; do
            read -r p s < <("$BIN/ninesctl" --config "$d/cluster.conf" placement "$t" --json |
                tr '{' '\n' | awk -v id=$id -F'[:,]' '$1 == "\"id\"" && $2 == id {
                    for (i = 1; i <= NF; i++) { if ($i == "\"primaries\"") p = $(i+1); if ($i == "\"standbys\"") s = $(i+1) }
                    gsub(/[^0-9]/, "", p); gsub(/[^0-9]/, "", s); print p, s }')
            [ "${p:-1}" = 0 ] || ok=0
            standbys=$(( standbys + ${s:-0} ))
        done
        [ $ok = 1 ] && [ $standbys -gt 0 ] && { victim=$id; break; }
    done
    if [ -z "$victim" ]; then
        echo "no node holds only standbys in this placement"
        return 77
    fi
    echo "node $victim holds only standbys"
    kill_drill "$d" "$victim" KILL 1
}

# Partitions: load on the majority side, a client pinned to the minority.
part_drill() {
    local d=$1 kind=$2
    local total minority="" opts=()
    total=$(awk -v a="$LOAD_S" -v b="$AFTER_S" 'BEGIN { print a + b }')
    watch_start "$d" "$(awk -v t="$total" 'BEGIN { print t + 1 }')"
    load_start "$d" load --duration "$total" --first-node 1
    sleep "$LOAD_S"
    if [ "$kind" = none ]; then
        load_wait
        check "$d" --journal "$d/load.jnl"
        return
    fi
    echo "fault: $kind ($CUT) at $(date +%s%6N) us" | tee -a "$d/faults.txt"
    case $kind in
    2x2)        cut "1 3" "2 4" ;;                        # the two sites apart
    1x3)        cut "3" "1 2 4" ;;
    oneway)     for x in 1 2 4 a; do drop 3 "$x"; done ;;  # 3 hears all, nobody hears 3
    arb-unreachable) cut "1 3" "2 4"; cut "1 3" "a" ;;   # site 0 cannot reach the arbitrator
    esac
    sleep "$(detect_s)"
    case $kind in
    1x3|oneway)      minority="3" ;;
    arb-unreachable) minority="1 3" ;;
    2x2)
        local srv
        srv=$(serving_nodes "$d")
        echo "serving after the cut: ${srv:-none}"
        case " $srv " in
        *" 1 "*|*" 3 "*) minority="2 4" ;;
        *) minority="1 3" ;;
        esac ;;
    esac
    echo "minority: $minority"
    local m
    for m in $minority; do
        "$BIN/tpcb" --config "$d/cluster.conf" --scale 1 --clients 1 --window 2 --duration 1 \
            --no-verify --only-node "$m" --timeout-ms 1000 --journal "$d/minority$m.jnl" \
            >"$d/minority$m.out" 2>&1
        opts+=(--noack-journal "$d/minority$m.jnl" --expect-out "$m")
    done
    load_wait
    check "$d" --journal "$d/load.jnl" "${opts[@]}"
    local rc=$?
    heal_all
    return $rc
}
drill_part_baseline() { part_drill "$1" none; }              # namespaces, no cut
drill_part_2x2() { part_drill "$1" 2x2; }
drill_part_1x3() { part_drill "$1" 1x3; }
drill_part_oneway() { part_drill "$1" oneway; }
drill_part_arb_unreachable() { part_drill "$1" arb-unreachable; }

# ---- runner -------------------------------------------------------------------

KILLS="kill-primary kill-client-node kill-standby-only kill-coordinator stop-cont"
PARTS="part-2x2 part-1x3 part-oneway part-arb-unreachable"
list=()
for a in "$@"; do
    case $a in
    kills) list+=($KILLS) ;;
    partitions) list+=($PARTS) ;;
    all) list+=($KILLS $PARTS) ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) list+=("$a") ;;
    esac
done
[ ${#list[@]} -gt 0 ] || { sed -n '2,22p' "$0" >&2; exit 2; }
for x in "$BIN/ninesd" "$BIN/ninesctl" "$BIN/tpcb" "$BIN/tpcb_load" "$BIN/drill_check"; do
    [ -x "$x" ] || { log "drill: $x is missing (make first)"; exit 2; }
done

failed=0
for name in "${list[@]}"; do
    fn="drill_${name//-/_}"
    if ! declare -F "$fn" >/dev/null; then log "drill: unknown drill '$name'"; exit 2; fi
    d="$ROOT/$name"
    rm -rf "$d"
    nth=$(( ${nth:-0} + 1 ))
    tag="${base_tag}x$nth"
    mkdir -p "$d"
    mode=lo
    case $name in part-*) mode=ns ;; esac
    if [ $mode = ns ] && ! why=$(ns_usable); then
        echo "DRILL $name: SKIP (partition drills need root and network namespaces: $why)"
        continue
    fi
    start=$(date +%s)
    PRE=""
    [ "$name" = kill-standby-only ] && PRE=3
    if ! PRECREATE_FRAGS=$PRE cluster_up "$d" $mode >"$d/setup.txt" 2>&1; then
        cat "$d/setup.txt"
        echo "DRILL $name: FAIL (setup; logs in $d)"
        failed=1
        cleanup
        continue
    fi
    "$fn" "$d" >"$d/result.txt" 2>&1
    rc=$?
    cleanup
    sed 's/^/  /' "$d/result.txt"
    secs=$(( $(date +%s) - start ))
    case $rc in
    0)  echo "DRILL $name: PASS (${secs}s)" ;;
    77) echo "DRILL $name: SKIP ($(tail -n 1 "$d/result.txt"))" ;;
    *)  echo "DRILL $name: FAIL (${secs}s; logs in $d)"; failed=1 ;;
    esac
done
if [ $failed = 0 ] && [ "${KEEP:-0}" != 1 ] && [ -z "${DRILL_DIR:-}" ]; then rm -rf "$ROOT"; fi
exit $failed
