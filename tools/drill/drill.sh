#!/bin/bash
# Failure drills on real ninesd processes (issue 9; tools/drill/README.md).
#
#   tools/drill/drill.sh DRILL...      (DRILL: a name below, or kills, partitions, all)
#
# baseline: the same load and checks without a fault (tests the harness).
# Kill drills (loopback, no privileges): kill-primary kill-client-node
#   kill-standby-only kill-coordinator stop-cont; the coordinator killed in
#   the middle of a node-set round (node 1's fault point, after node 3's
#   kill): kill-coordinator-mid-build kill-coordinator-mid-accept
#   kill-coordinator-mid-install; a node killed and started again, rebuilt
#   and current again: restart; node 3's data folder (a small tmpfs, disk
#   log on) filled mid-load and freed again: disk-full (root); a node kept
#   down past repair_after_ms, its replicas rebuilt on its site-mate, then
#   started again: repair; every node killed at once and the whole cluster
#   started again from its disks: kill-all (not in `kills`/`all` until the
#   whole-cluster restart is merged)
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
# how partitions are cut; nft when the nft command exists), MIDROUND_WAIT_S
# (how long the mid-round drills wait for node 1's fault point, 10),
# DISKFULL_MB (disk-full: the tmpfs size, 48), DISKFULL_GAP=1 (disk-full: the
# disk stays full past node 3's disk log buffer, lowered to DISKFULL_BUF_MB
# MiB (4) by the cluster file's disk_log_buffer_mb: a gap, then the resume).
# REBUILD_WAIT_S (restart, repair: how long a restarted node may take to be
# current, 30), REPAIR_AFTER_MS (repair: the cluster file's repair_after_ms,
# 1000; other drills: written when set), REPAIR_WAIT_S (repair: how long
# after the kill two replicas everywhere may take, 90). kill-all:
# KILLALL_POLICY (the disk_log setting: async or sync; async), GCP_MS (the
# cluster file's gcp_interval_ms, 100; left out when this build does not
# know it), KILLALL_CKPT_MS (checkpoint_interval_ms, 2000), KILLALL_CKPT_WAIT_S
# (how long past LOAD_S the kill waits for a checkpoint round on every node,
# 20), KILLALL_WAIT_S (restart to every node current, 60), KILLALL_AFTER_S
# (load after the restart, 3), KILLALL_WINDOW_MS (the loss window allowed;
# 2 x GCP_MS + 200 under async, 0 under sync).
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
    # killed nodes (disowned: not waited for) may still hold files there
    for m in "${MOUNTS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do umount "$m" 2>/dev/null && break; sleep 0.2; done
        mountpoint -q "$m" && umount -l "$m"
    done
    MOUNTS=()
}
MOUNTS=()                      # file systems this script mounted (disk-full)
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
        [ -n "${REPAIR_AFTER_MS:-}" ] && echo "repair_after_ms $REPAIR_AFTER_MS"
        [ -n "${TAKEBACK_MS:-}" ] && echo "takeback_ms $TAKEBACK_MS"
        echo "reconnect_min_ms 5"
        echo "reconnect_max_ms 100"
        [ -n "${DISK_LOG:-}" ] && echo "disk_log $DISK_LOG"
        [ -n "${DISK_LOG_BUF_MB:-}" ] && echo "disk_log_buffer_mb $DISK_LOG_BUF_MB"
        # more settings of one drill (kill-all), one per line
        [ -n "${EXTRA_CONF:-}" ] && printf '%s\n' "$EXTRA_CONF"
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
    used=$(cat /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null | awk 'NR > 1 { split($2, a, ":"); h = toupper(a[2]); v = 0
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
# NODEENV[id]: extra environment of that node's ninesd ("NAME=value ...",
# e.g. NINES_FAULTS=sup_kill_after_build:1); set per drill by the runner
declare -A NODEENV
# node_start D ID [NS]
node_start() {
    local d=$1 id=$2 ns=${3:-}
    local envp=()
    # shellcheck disable=SC2206  # NAME=value words, split on purpose
    [ -n "${NODEENV[$id]:-}" ] && envp=(env ${NODEENV[$id]})
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "${envp[@]}" "$BIN/ninesd" --config "$d/cluster.conf" --node "$id" \
            >>"$d/node$id.log" 2>&1 &
    else
        "${envp[@]}" "$BIN/ninesd" --config "$d/cluster.conf" --node "$id" >>"$d/node$id.log" 2>&1 &
    fi
    NODEPID[$id]=$!   # env execs ninesd: the same process
    PIDS+=($!)
    # out of the job table: a node the drill kills is reaped without a
    # "Killed" line from the shell (proc_gone tells whether it exited)
    disown "$!"
}

ARBPID=""
arb_start() {
    local d=$1 ns=${2:-}
    ARBPID=""
    [ -x "$BIN/ninesarb" ] || { log "  (no $BIN/ninesarb: the arbitrator is not running)"; return; }
    mkdir -p "$d/arb"
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "$BIN/ninesarb" --config "$d/cluster.conf" --data "$d/arb" \
            >>"$d/arb.log" 2>&1 &
    else
        "$BIN/ninesarb" --config "$d/cluster.conf" --data "$d/arb" >>"$d/arb.log" 2>&1 &
    fi
    ARBPID=$!
    PIDS+=($!)
}

# proc_gone PID: the process has exited (gone, or a zombie not waited for yet)
proc_gone() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
    [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
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
    if [ "$sig" = STOP ]; then
        # the node that hung is out of the set when it wakes; it rejoins as a
        # member that is not current, is rebuilt, made current and takes its
        # primaries back (kernel/svc/README.md "Rebuild", "Takeback")
        "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-current "$REBUILD_WAIT_S" \
            >"$d/status1.txt" 2>&1 || echo "node $victim was not current again within ${REBUILD_WAIT_S} s"
        check "$d" --journal "$d/load.jnl" --expect-two "$@"
        return
    fi
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

# A node killed under load and started again (issue 10, "Rebuild",
# "Takeback"): it rejoins as a member that is not current, rebuilds every
# replica placed on it from the primaries (fuzzy copy, then the live
# stream) while the load goes on, and is made current again, standby-only
# (a hot standby of all of them); takeback_ms later (1 s by default) the
# coordinator drains its dictionary-primary fragments at their interim
# primaries and a node-set round gives them back to it — under the same
# load. The check then wants every node serving, every fragment with two
# current replicas that agree, the original placement (--expect-balanced),
# and no request refused or left unknown in the takeback's window (from
# the drain to the install plus a transaction timeout: what a takeback
# that aborted transactions would show). TAKEBACK_MS writes takeback_ms to
# the cluster file.
REBUILD_WAIT_S=${REBUILD_WAIT_S:-30}
TAKEBACK_WAIT_S=${TAKEBACK_WAIT_S:-30}
# log_us "2026-01-02T03:04:05.678901Z": wall-clock microseconds
log_us() { date -u -d "$(echo "$1" | sed 's/T/ /; s/Z$//')" +%s%6N; }
drill_restart() {
    local d=$1 victim=4
    local total
    total=$(awk -v a="$LOAD_S" -v b="$AFTER_S" 'BEGIN { print a + b + 5 }')
    watch_start "$d" "$(awk -v t="$total" 'BEGIN { print t + 1 }')"
    load_start "$d" load --duration "$total" --first-node 1
    sleep "$LOAD_S"
    echo "fault: SIGKILL node $victim at $(date +%s%6N) us" | tee -a "$d/faults.txt"
    kill -KILL "${NODEPID[$victim]}"
    sleep "$(detect_s)"
    echo "restart: node $victim at $(date +%s%6N) us" | tee -a "$d/faults.txt"
    node_start "$d" "$victim"
    load_wait
    local t0 t1
    t0=$(date +%s%3N)
    if ! "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-current "$REBUILD_WAIT_S" \
            >"$d/status1.txt" 2>&1; then
        echo "node $victim was not current again within ${REBUILD_WAIT_S} s"
        cat "$d/status1.txt"
    fi
    t1=$(date +%s%3N)
    echo "node $victim current again $(( t1 - t0 )) ms after the load ended"
    grep -h "rebuilt replica\|copy of table .* loaded\|asking to be current" "$d/node$victim.log" | tail -n 4
    if ! "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-balanced "$TAKEBACK_WAIT_S" \
            >"$d/status2.txt" 2>&1; then
        echo "node $victim did not take its primaries back within ${TAKEBACK_WAIT_S} s"
        cat "$d/status2.txt"
    fi
    "$BIN/ninesctl" --config "$d/cluster.conf" status --json >"$d/status2.json" 2>&1
    # the takeback, from the coordinator's log: drain start, install
    local first done_line ts0 ts1 us0 us1
    first=$(grep -h "takeback of node $victim (standby-only" "$d"/node*.log | sort | head -n 1)
    done_line=$(grep -h "node $victim took its primaries back in node set" "$d"/node*.log | sort | head -n 1)
    if [ -z "$done_line" ]; then
        echo "no takeback of node $victim in the logs"
    else
        ts0=$(echo "$first" | awk '{ print $1 }')
        ts1=$(echo "$done_line" | awk '{ print $1 }')
        us0=$(log_us "$ts0")
        us1=$(log_us "$ts1")
        echo "takeback: $(echo "$done_line" | sed 's/.*took its primaries back in //')"
        echo "takeback: first drain $ts0, install $ts1 ($(( (us1 - us0) / 1000 )) ms; $(grep -hc "takeback of node $victim (standby-only" "$d"/node*.log | paste -sd+ | bc) attempts)"
        grep -h "takeback of node $victim, attempt" "$d"/node*.log | sed 's/^/  retried: /' | head -n 5
        # requests submitted from the first drain to 1 s after the install
        # that were refused or left unknown, and any refusal that names the
        # takeback (a transaction the takeback aborted shows as one of them)
        local win_end=$(( us1 + 1000000 ))
        awk -v a="$us0" -v b="$win_end" '($1 == "R" || $1 == "U") && (($10 >= a && $10 <= b) ||
            /hands table|handed back|takeback|taken over/)' "$d/load.jnl" >"$d/takeback-refused.txt"
        local nref nall nacked
        nref=$(wc -l <"$d/takeback-refused.txt")
        nall=$(awk '$1 == "R" || $1 == "U"' "$d/load.jnl" | wc -l)
        nacked=$(awk -v a="$us0" -v b="$win_end" '$1 == "A" && $10 >= a && $10 <= b' "$d/load.jnl" | wc -l)
        echo "takeback: of the requests submitted from the first drain to 1 s after the install, $nacked acknowledged and $nref refused or unknown ($nall refused or unknown in the whole load, the kill's included)"
        head -n 3 "$d/takeback-refused.txt" | sed 's/^/  /'
        grep -o '"takeback":{[^}]*}' "$d/status2.json" | sed 's/^/  /'
    fi
    local tbrc=0
    # a refusal that names the takeback (a transaction it aborted, an EAGAIN
    # the controller did not retry) fails the drill; a request that timed
    # out because a message of it crossed the takeback's node-set install
    # (the epoch check drops it: kernel/svc/README.md "Takeback", not yet)
    # is reported, not failed
    if [ -n "$done_line" ] && [ -s "$d/takeback-refused.txt" ]; then
        local named epoch_lost
        named=$(grep -c 'hands table\|handed back\|takeback\|drain' "$d/takeback-refused.txt")
        epoch_lost=$(grep -c 'timed out after' "$d/takeback-refused.txt")
        if [ "$named" != 0 ]; then
            echo "FAIL requests refused by the takeback itself: $named (takeback-refused.txt)"
            tbrc=1
        else
            echo "INFO $(wc -l <"$d/takeback-refused.txt") requests in the takeback window refused" \
                 "or unknown, none by the takeback ($epoch_lost timed out across its node-set install)"
        fi
    fi
    [ -z "$done_line" ] && tbrc=1
    check "$d" --journal "$d/load.jnl" --expect-two --expect-balanced || return 1
    return $tbrc
}

# A full disk (issue 10 item 6): node 3's data folder is a small tmpfs and
# the cluster runs with the disk log on (async). Mid-load the file system
# is filled: node 3's disk log must stop (status says so, with the reason)
# while every node keeps serving and commits go on (2-safe in memory at two
# sites); when space returns the disk log must resume by itself. Needs root
# (mount); skipped otherwise. With DISKFULL_GAP=1 the disk stays full until
# node 3's disk log dropped records (a gap: its buffer, disk_log_buffer_mb,
# lowered to DISKFULL_BUF_MB), then the space comes back: the log must
# resume after a gap marker ("resumed, not yet recoverable"), checkpoint
# every replica by itself and be "on" again, with the segments from before
# the gap removed (kernel/svc/README.md "Gap and resume").
DISKFULL_MB=${DISKFULL_MB:-48}
DISKFULL_GAP=${DISKFULL_GAP:-0}
DISKFULL_BUF_MB=${DISKFULL_BUF_MB:-4}
dlog_line_of() { # D ID WORDS: node ID's status line holding WORDS
    "$BIN/ninesctl" --config "$1/cluster.conf" status 2>/dev/null |
        awk -v id="$2" -v w="$3" '/^[0-9]+ / { node = $1 }
            node == id && index($0, w) { print; exit }'
}
gap_counts() { # D ID: node ID's disk log gaps and resumes ("0 0" before any)
    dlog_line_of "$1" "$2" "disk log gaps:" |
        awk '{ g = 0; r = 0; if (match($0, /gaps: [0-9]+/)) g = substr($0, RSTART + 6, RLENGTH - 6)
               if (match($0, /resumed [0-9]+ times/)) r = substr($0, RSTART + 8, RLENGTH - 14)
               print g, r } END { if (NR == 0) print 0, 0 }'
}
dlog_state_of() { # D ID: node ID's disk log state, from ninesctl status
    "$BIN/ninesctl" --config "$1/cluster.conf" status 2>/dev/null |
        awk -v id="$2" '/^[0-9]+ / { node = $1 }
            node == id && /\(disk log [a-z]/ { sub(/.*\(disk log /, ""); sub(/[:)].*/, ""); print; exit }'
}
wait_dlog() { # D ID PATTERNS SECONDS: until node ID's disk log state matches
    local i st p pats            # one of PATTERNS (globs separated by '|')
    IFS='|' read -ra pats <<< "$3"
    for i in $(seq 1 $(( $4 * 10 ))); do
        st=$(dlog_state_of "$1" "$2")
        for p in "${pats[@]}"; do
            case "$st" in $p) echo "$st"; return 0 ;; esac
        done
        sleep 0.1
    done
    echo "${st:-?}"
    return 1
}
commits_now() { grep -c . "$1" 2>/dev/null || echo 0; }
drill_disk_full() {
    local d=$1 victim=3 ok=0 st
    local total
    total=$(awk -v a="$LOAD_S" -v b="$AFTER_S" -v g="$DISKFULL_GAP" \
        'BEGIN { print a + b + 12 + (g == 1 ? 20 : 0) }')
    watch_start "$d" "$(awk -v t="$total" 'BEGIN { print t + 1 }')"
    load_start "$d" load --duration "$total" --first-node 1
    sleep "$LOAD_S"
    st=$(wait_dlog "$d" $victim "on" 5) || { echo "FAIL disk log on at first: $st"; ok=1; }
    local g0 r0 # gaps before the fault (a small buffer may see the bulk load outrun the disk)
    read -r g0 r0 < <(gap_counts "$d" $victim)
    echo "fault: fill node $victim's data folder at $(date +%s%6N) us" | tee -a "$d/faults.txt"
    dd if=/dev/zero of="$d/node$victim/fill" bs=1M >/dev/null 2>&1
    df -m "$d/node$victim" | tail -n 1
    if st=$(wait_dlog "$d" $victim "stopped*" 3); then
        echo "PASS disk log stops on a full disk: $st"
    else
        echo "FAIL disk log did not stop on a full disk: $st"; ok=1
    fi
    if [ "$DISKFULL_GAP" = 1 ]; then
        if st=$(wait_dlog "$d" $victim "stopped (gap*" 40); then
            echo "PASS the disk stays full past the ${DISKFULL_BUF_MB} MiB buffer: a gap: $st"
        else
            echo "FAIL no gap with the disk full: $st"; ok=1
        fi
    fi
    "$BIN/ninesctl" --config "$d/cluster.conf" status > "$d/status-full.txt" 2>&1
    grep -h "disk log" "$d/status-full.txt" | head -n 6
    local j1 j2
    j1=$(commits_now "$d/load.jnl"); sleep 2; j2=$(commits_now "$d/load.jnl")
    if [ "$j2" -gt "$j1" ]; then
        echo "PASS commits go on with the disk full: $(( j2 - j1 )) journal lines in 2 s"
    else
        echo "FAIL no commits with the disk full ($j1 -> $j2 journal lines)"; ok=1
    fi
    echo "fault: space back at $(date +%s%6N) us" | tee -a "$d/faults.txt"
    rm -f "$d/node$victim/fill"
    if [ "$DISKFULL_GAP" = 1 ]; then
        if st=$(wait_dlog "$d" $victim "resumed*|on" 5); then
            echo "PASS disk log resumes after the gap when space returns: $st"
        else
            echo "FAIL disk log did not resume after the gap: $st"; ok=1
        fi
        "$BIN/ninesctl" --config "$d/cluster.conf" status > "$d/status-resumed.txt" 2>&1
        grep -h "disk log" "$d/status-resumed.txt" | head -n 6
    fi
    if st=$(wait_dlog "$d" $victim "on" 30); then
        echo "PASS disk log on again when space returns: $st"
    else
        echo "FAIL disk log not on again: $st"; ok=1
    fi
    if [ "$DISKFULL_GAP" = 1 ]; then
        local gl fl g1 r1
        gl=$(dlog_line_of "$d" $victim "disk log gaps:")
        fl=$(dlog_line_of "$d" $victim "disk log files:")
        echo "status: $gl"
        echo "status: $fl"
        read -r g1 r1 < <(gap_counts "$d" $victim)
        if [ "$g1" -ge $(( g0 + 1 )) ] && [ "$r1" = "$g1" ]; then
            echo "PASS status counts the gap and the resume (gaps $g0 -> $g1, resumes $r0 -> $r1)"
        else
            echo "FAIL status gaps $g0 -> $g1, resumes $r0 -> $r1"; ok=1
        fi
        if grep -q "recoverable again" "$d/node$victim.log"; then
            echo "PASS every replica checkpointed after the gap (log: recoverable again)"
        else
            echo "FAIL no 'recoverable again' in node $victim's log"; ok=1
        fi
        local gp first
        gp=$(grep -ho "resumed at position [0-9]*" "$d/node$victim.log" | tail -n 1 | awk '{ print $4 }')
        first=$(ls "$d/node$victim/log" | grep '^log-.*\.ndl$' | head -n 1 | sed 's/^log-//; s/\.ndl$//')
        if [ -n "$gp" ] && [ -n "$first" ] && [ $(( 16#$first )) -ge "$gp" ]; then
            echo "PASS segments before the gap removed (first segment at $(( 16#$first )), gap at $gp)"
        else
            echo "FAIL segments before the gap still there (first ${first:-?}, gap ${gp:-?})"; ok=1
        fi
    fi
    grep -h "disk log" "$d/node$victim.log" | tail -n 5
    load_wait
    check "$d" --journal "$d/load.jnl" || ok=1
    return $ok
}

# Self-repair (issue 10 item 4; supervisor/README.md "Self-repair"): node 4
# is killed under load and kept down past repair_after_ms (REPAIR_AFTER_MS,
# 1000 for this drill). The coordinator has its replicas placed on node 2,
# its site-mate, as building replicas; node 2 builds them (fuzzy copy from
# the primaries, then their live stream) while the load goes on and has
# each marked built. The drill waits until every fragment has two current
# replicas that agree (drill_check --expect-two, polled: the time from the
# kill is the repair time), then starts node 4 again: it holds nothing, is
# made current, and the final check wants every node serving, node 4
# holding no replica, and two agreeing replicas everywhere.
REPAIR_WAIT_S=${REPAIR_WAIT_S:-90}
REINT_WAIT_S=${REINT_WAIT_S:-90}  # node back -> balanced placement
REINT_LOAD_S=${REINT_LOAD_S:-20}  # the load started with the node's restart
drill_repair() {
    local d=$1 victim=4
    local total
    total=$(awk -v a="$LOAD_S" -v b="$AFTER_S" -v r="${REPAIR_AFTER_MS:-1000}" \
        'BEGIN { print a + b + r / 1000 + 6 }')
    watch_start "$d" "$(awk -v t="$total" 'BEGIN { print t + 1 }')"
    load_start "$d" load --duration "$total" --first-node 1
    sleep "$LOAD_S"
    local t_kill t_two
    t_kill=$(date +%s%3N)
    echo "fault: SIGKILL node $victim at $(date +%s%6N) us (repair after ${REPAIR_AFTER_MS:-?} ms)" |
        tee -a "$d/faults.txt"
    kill -KILL "${NODEPID[$victim]}"
    # the dictionary places nothing on the victim and nothing is building
    # any more (DICT_GET only: cheap; a digest of every replica every poll
    # would load the nodes), and the node set is unchanged otherwise: every
    # fragment has two current replicas (the final check compares them
    # once the load is over)
    local ok=0 tries=0
    while [ $(( $(date +%s%3N) - t_kill )) -lt $(( REPAIR_WAIT_S * 1000 )) ]; do
        local t left=0
        for t in branch teller account history; do
            "$BIN/ninesctl" --config "$d/cluster.conf" placement "$t" --json \
                >"$d/repair_poll_$t.json" 2>&1 || left=$(( left + 1 ))
            grep -q '"standby_state":"building"' "$d/repair_poll_$t.json" && left=$(( left + 1 ))
            grep -q "{\"id\":$victim,\"site\":[01],\"primaries\":0,\"standbys\":0}" \
                "$d/repair_poll_$t.json" || left=$(( left + 1 ))
        done
        if [ $left = 0 ]; then
            ok=1
            break
        fi
        tries=$(( tries + 1 ))
        sleep 0.1
    done
    t_two=$(date +%s%3N)
    if [ $ok = 0 ]; then
        echo "FAIL repair                   not every fragment had two replicas again within" \
             "${REPAIR_WAIT_S} s of the kill (repair_poll_*.json)"
        "$BIN/ninesctl" --config "$d/cluster.conf" replicas >"$d/replicas_repair.txt" 2>&1
        grep -v " EQUAL " "$d/replicas_repair.txt" | tail -n 20
        load_wait
        watch_wait
        return 1
    fi
    # the same from the logs: the kill, the repair request, the last replica marked built
    local lk lr lb
    lr=$(grep -h "asking to rebuild its replicas" "$d"/node[1-3].log | sort | head -n 1 | awk '{ print $1 }')
    lb=$(grep -h "is a hot standby now, marked built" "$d"/node[1-3].log | sort | tail -n 1 | awk '{ print $1 }')
    lk=$(date -u -d "@$(awk -v t="$t_kill" 'BEGIN { printf "%.3f", t / 1000 }')" +%Y-%m-%dT%H:%M:%S.%6NZ)
    echo "PASS repair                   two replicas everywhere $(( t_two - t_kill )) ms after" \
         "node $victim's kill (repair_after_ms ${REPAIR_AFTER_MS:-?}; $tries polls); from the logs:" \
         "repair asked $(iso_ms "$lk" "$lr") ms after the kill, last replica built" \
         "$(iso_ms "$lr" "$lb") ms after that"
    echo "repair: two replicas at $(date +%s%6N) us" | tee -a "$d/faults.txt"
    grep -h "self-repair of node\|asking to rebuild" "$d"/node[1-3].log | head -n 4 | sed 's/^/  /'
    grep -h "is a hot standby now, marked built" "$d"/node[1-3].log | tail -n 2 | sed 's/^/  /'
    local nb
    nb=$(grep -h "is a hot standby now, marked built" "$d"/node[1-3].log | wc -l)
    echo "  $nb replicas built by self-repair"
    echo "restart: node $victim at $(date +%s%6N) us" | tee -a "$d/faults.txt"
    local t_back
    t_back=$(date +%s%3N)
    node_start "$d" "$victim"
    # a second load through the reintegration (the first may end before it)
    load_start "$d" reint --duration "$REINT_LOAD_S" --first-node 1
    if ! "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-current "$REBUILD_WAIT_S" \
            >"$d/status1.txt" 2>&1; then
        echo "FAIL back                     node $victim was not current again within ${REBUILD_WAIT_S} s"
        cat "$d/status1.txt"
        load_wait
        watch_wait
        return 1
    fi
    echo "PASS back                     node $victim is current again $(( $(date +%s%3N) - t_back )) ms after its start"
    # reintegration (supervisor/README.md "Reintegration"): once its
    # takeback is done, hot standbys move back to it one at a time until,
    # per site, every node holds within one replica of the others and
    # nothing is building (the dictionary, polled: DICT_GET only)
    local spread="" sp_ok=0 sp_tries=0 held=0
    while [ $(( $(date +%s%3N) - t_back )) -lt $(( REINT_WAIT_S * 1000 )) ]; do
        local t building=0
        for t in branch teller account history; do
            "$BIN/ninesctl" --config "$d/cluster.conf" placement "$t" --json \
                >"$d/reint_poll_$t.json" 2>&1 || building=$(( building + 1 ))
            grep -q '"standby_state":"building"' "$d/reint_poll_$t.json" && building=$(( building + 1 ))
        done
        # "ok node:count ...": ok = 1 when each site's counts are within one
        spread=$(cat "$d"/reint_poll_{branch,teller,account,history}.json |
            grep -o '{"id":[0-9]*,"site":[01],"primaries":[0-9]*,"standbys":[0-9]*}' |
            tr -c '0-9\n' ' ' | awk '{ n[$1] += $3 + $4; s[$1] = $2 }
                END { for (i = 1; i <= 64; i++) if (i in n) {
                          k = s[i]; if (!(k in mx) || n[i] > mx[k]) mx[k] = n[i]
                          if (!(k in mn) || n[i] < mn[k]) mn[k] = n[i]; out = out " " i ":" n[i] }
                      ok = 1; for (k in mx) if (mx[k] - mn[k] > 1) ok = 0
                      printf "%d%s\n", ok, out }')
        held=$(echo "$spread" | tr ' ' '\n' | awk -F: -v v="$victim" '$1 == v { print $2 }')
        if [ "$building" = 0 ] && [ "${spread%% *}" = 1 ] && [ "${held:-0}" -gt 0 ]; then
            sp_ok=1
            break
        fi
        sp_tries=$(( sp_tries + 1 ))
        sleep 0.2
    done
    local t_bal running=no
    t_bal=$(date +%s%3N)
    kill -0 "${LOADPIDS[-1]}" 2>/dev/null && running=yes
    "$BIN/ninesctl" --config "$d/cluster.conf" status >"$d/status_reint.txt" 2>&1
    if [ $sp_ok = 0 ]; then
        echo "FAIL reintegrated             node $victim got no balanced share of replicas within" \
             "${REINT_WAIT_S} s of its start (replicas per node:${spread#?}; reint_poll_*.json)"
        grep "self-repair" "$d/status_reint.txt" | head -n 5
        load_wait
        watch_wait
        return 1
    fi
    local nmoved
    nmoved=$(grep -h "a replica moves back to node $victim" "$d"/node[1-3].log | wc -l)
    echo "PASS reintegrated             node $victim holds its share again $(( t_bal - t_back )) ms" \
         "after its start: $nmoved hot standbys moved back one at a time; replicas per" \
         "node:${spread#?} (load still running then: $running; $sp_tries polls)"
    echo "reintegrated: at $(date +%s%6N) us" | tee -a "$d/faults.txt"
    grep -h "is reintegrated\|moves back to node" "$d"/node[1-3].log | tail -n 2 | sed 's/^/  /'
    grep "self-repair" "$d/status_reint.txt" | head -n 4 | sed 's/^/  /'
    load_wait
    check "$d" --journal "$d/load.jnl" --journal "$d/reint.jnl" --expect-two --expect-spread
}

# Whole-cluster restart (issue 10 item 5; README "Whole-cluster restart";
# /work/notes/gcp-spec.md): the disk log on (KILLALL_POLICY: async or sync),
# commit epochs every gcp_interval_ms (GCP_MS), checkpoints every
# KILLALL_CKPT_MS. TPC-B load with a journal; once LOAD_S has passed and
# every node has run a checkpoint round, one `kill -9` with the pids of all
# four ninesd (the arbitrator keeps running). The clients then fail; they
# are stopped. Every node is started again with the same cluster file and
# data folders; the cluster must serve within KILLALL_WAIT_S (one site's
# nodes recover from their disks up to the restorable epoch, the other
# site's nodes are rebuilt from them, then take their primaries back), a
# second load (KILLALL_AFTER_S) must commit, and the checker wants every
# acknowledged commit present except, under async, those acknowledged
# within the loss window before the kill (KILLALL_WINDOW_MS; by default
# 2 x GCP_MS + 200 under async, 0 under sync), every refused one absent,
# the balances, two agreeing replicas everywhere and the original placement.
KILLALL_POLICY=${KILLALL_POLICY:-async}
KILLALL_DAMAGE_ENV=${KILLALL_DAMAGE:-} # ckpt or log: damage node 1's files while everything is down
GCP_MS=${GCP_MS:-100}
KILLALL_CKPT_MS=${KILLALL_CKPT_MS:-2000}
KILLALL_CKPT_WAIT_S=${KILLALL_CKPT_WAIT_S:-20}
KILLALL_WAIT_S=${KILLALL_WAIT_S:-60}
KILLALL_AFTER_S=${KILLALL_AFTER_S:-5}
KILLALL_GCP_KNOWN=1           # set by the runner: this build knows gcp_interval_ms
# conf_knows "KEY VALUE": 0 when this build's cluster-file parser takes the
# line, 1 when it does not know KEY, 2 when it refuses VALUE (message on stdout)
conf_knows() {
    local f out
    f=$(mktemp "$ROOT/probe.XXXXXX")
    printf 'cluster probe\n%s\nnode 1 site 0 127.0.0.1:1\nnode 2 site 1 127.0.0.1:2\n' "$1" >"$f"
    out=$("$BIN/ninesctl" --config "$f" drill-probe-no-such-command 2>&1)
    rm -f "$f"
    case "$out" in
    *"unknown setting"*) return 1 ;;
    *"unknown command"*) return 0 ;;
    *) echo "$out" | head -n 1; return 2 ;;
    esac
}
# pids_forget PID...: out of PIDS (dead nodes: their pids may be reused)
pids_forget() {
    local keep=() p x drop
    for p in "${PIDS[@]}"; do
        drop=0
        for x in "$@"; do [ "$p" = "$x" ] && drop=1; done
        [ $drop = 0 ] && keep+=("$p")
    done
    PIDS=("${keep[@]}")
}
# ckpt_rounds D: "id rounds" per node answering (ninesctl status --json)
ckpt_rounds() {
    "$BIN/ninesctl" --config "$1/cluster.conf" status --json 2>/dev/null |
        grep -o '"id":[0-9]*,\|"checkpoints":{"state":"[^"]*","interval_ms":[0-9]*,"rounds":[0-9]*' |
        awk -F'[:,]' '/^"id"/ { id = $2 } /checkpoints/ { print id, $NF }'
}
killall_window_ms() {
    if [ -n "${KILLALL_WINDOW_MS:-}" ]; then echo "$KILLALL_WINDOW_MS"
    elif [ "$KILLALL_POLICY" = sync ]; then echo 0
    else echo $(( 2 * GCP_MS + 200 )); fi
}
drill_kill_all_bad_ckpt() { drill_kill_all "$@"; }
drill_kill_all_bad_log() { drill_kill_all "$@"; }
drill_kill_all() {
    local d=$1 ok=0 w
    w=$(killall_window_ms)
    local gcpnote="in the cluster file"
    [ "$KILLALL_GCP_KNOWN" = 1 ] || gcpnote="NOT in the cluster file: this build does not know the setting (the commit-epoch code is not merged), so the restart is not expected to keep the data"
    echo "disk_log $KILLALL_POLICY, gcp_interval_ms $GCP_MS ($gcpnote), checkpoint_interval_ms $KILLALL_CKPT_MS; loss window allowed: $w ms"
    local total
    total=$(awk -v a="$LOAD_S" -v b="$KILLALL_CKPT_WAIT_S" 'BEGIN { print int(a + b + 60) }')
    watch_start "$d" "$LOAD_S"
    load_start "$d" load --duration "$total" --first-node 1
    local loadpids=("${LOADPIDS[@]}")
    sleep "$LOAD_S"
    # a checkpoint round on every node before the kill (the restart then
    # starts from checkpoints, not from the disk log's beginning)
    local t_end=$(( $(date +%s) + KILLALL_CKPT_WAIT_S )) rounds n_ok
    while :; do
        rounds=$(ckpt_rounds "$d")
        n_ok=$(awk '$2 >= 1' <<<"$rounds" | wc -l)
        [ "$n_ok" -ge 4 ] && break
        if [ "$(date +%s)" -ge "$t_end" ]; then
            echo "FAIL checkpoints                not every node ran a checkpoint round within" \
                 "${KILLALL_CKPT_WAIT_S} s of load (rounds per node: $(paste -sd';' <<<"$rounds"))"
            ok=1
            break
        fi
        sleep 0.2
    done
    "$BIN/ninesctl" --config "$d/cluster.conf" status >"$d/status-before-kill.txt" 2>&1
    [ $ok = 0 ] && echo "PASS checkpoints                every node ran a checkpoint round before the kill (rounds per node: $(paste -sd';' <<<"$rounds"))"
    # commit epochs, when this build reports them
    grep -i 'restorable\|gci\|commit epoch' "$d/status-before-kill.txt" | head -n 4 | sed 's/^/  /'

    # the fault: one kill(1) with every ninesd's pid
    local pids=() i
    for i in 1 2 3 4; do pids+=("${NODEPID[$i]}"); done
    local t_issue t_kill
    t_issue=$(date +%s%6N)
    kill -KILL "${pids[@]}"
    t_kill=$(date +%s%6N)
    echo "fault: SIGKILL nodes 1 2 3 4 (pids ${pids[*]}, one kill) at $t_kill us (issued at $t_issue us)" |
        tee -a "$d/faults.txt"
    local waited=0 alive
    while :; do
        alive=0
        for i in "${pids[@]}"; do proc_gone "$i" || alive=$(( alive + 1 ))
        done
        [ $alive = 0 ] && break
        [ $waited -ge 100 ] && { echo "FAIL kill                      $alive ninesd still alive 5 s after SIGKILL"; ok=1; break; }
        sleep 0.05
        waited=$(( waited + 1 ))
    done
    pids_forget "${pids[@]}"
    # the clients see errors now (expected); stop them (SIGINT: they finish
    # their journal), bounded
    local p
    for p in "${loadpids[@]}"; do kill -INT "$p" 2>/dev/null; done
    waited=0
    while :; do
        alive=0
        for p in "${loadpids[@]}"; do proc_gone "$p" || alive=$(( alive + 1 )); done
        [ $alive = 0 ] && break
        if [ $waited -ge 300 ]; then
            echo "INFO clients                    still running 30 s after SIGINT: killed (the journal may end torn)"
            for p in "${loadpids[@]}"; do kill -KILL "$p" 2>/dev/null; done
            break
        fi
        sleep 0.1
        waited=$(( waited + 1 ))
    done
    load_wait
    watch_wait
    local wrc=$?
    mv "$d/watch.txt" "$d/watch-load.txt"
    sed 's/^/  (load) /' "$d/watch-load.txt"
    [ $wrc = 0 ] || ok=1
    local n_acked n_before n_sub n_after_kill
    read -r n_sub n_acked n_before n_after_kill < <(awk -v t="$t_kill" '
        $1 ~ /^[ARU]$/ { n++ } $1 == "A" { a++; if ($11 <= t) b++ }
        $1 ~ /^[ARU]$/ && $11 > t { k++ } END { print n + 0, a + 0, b + 0, k + 0 }' "$d/load.jnl")
    echo "load before the kill: $n_sub requests, $n_acked acknowledged ($n_before at or before the kill), $n_after_kill outcomes learned after it"
    tail -n 2 "$d/load.out" | sed 's/^/  tpcb: /'

    # bad disks (kill-all-bad-ckpt, kill-all-bad-log): node 1's files are
    # damaged while everything is down; its recovery must refuse them and
    # the other site's disks must carry the restart
    local damaged=""
    case ${KILLALL_DAMAGE:-} in
    "") ;;
    ckpt)
        damaged=$(ls -S "$d"/node1/ckpt/t*-f*.nck 2>/dev/null | head -n 1)
        if [ -z "$damaged" ]; then
            echo "FAIL damage                     node 1 has no checkpoint file to damage"; ok=1
        else
            local sz
            sz=$(stat -c %s "$damaged")
            # one byte in the middle, flipped
            python3 -c 'import sys; p,o=sys.argv[1],int(sys.argv[2]); f=open(p,"r+b"); f.seek(o); b=f.read(1); f.seek(o); f.write(bytes([b[0]^0x40])); f.close()' "$damaged" $(( sz / 2 ))
            echo "damage: flipped the byte at offset $(( sz / 2 )) of $damaged ($sz bytes)" | tee -a "$d/faults.txt"
        fi ;;
    log)
        damaged=$(ls "$d"/node1/log/log-*.ndl 2>/dev/null | sort | tail -n 1)
        if [ -z "$damaged" ]; then
            echo "FAIL damage                     node 1 has no disk log segment to truncate"; ok=1
        else
            local sz
            sz=$(stat -c %s "$damaged")
            truncate -s $(( sz / 2 )) "$damaged"
            echo "damage: truncated $damaged from $sz to $(( sz / 2 )) bytes" | tee -a "$d/faults.txt"
        fi ;;
    *) echo "FAIL damage                     KILLALL_DAMAGE '$KILLALL_DAMAGE': ckpt or log"; ok=1 ;;
    esac

    # the restart: every node, same cluster file and data folders
    for i in 1 2 3 4; do echo "---- drill kill-all: every node killed at $t_kill us, restarted now" >>"$d/node$i.log"; done
    local t_restart
    t_restart=$(date +%s%6N)
    for i in 1 2 3 4; do node_start "$d" "$i"; done
    echo "restart: nodes 1 2 3 4 at $t_restart us ($(( (t_restart - t_kill) / 1000 )) ms after the kill)" |
        tee -a "$d/faults.txt"
    local deadline=$(( t_restart / 1000000 + KILLALL_WAIT_S )) left t_h=0 t_c=0 t_b=0
    left=$(( deadline - $(date +%s) )); [ $left -lt 1 ] && left=1
    if "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-healthy "$left" >"$d/status-healthy.txt" 2>&1; then
        t_h=$(date +%s%6N)
        left=$(( deadline - $(date +%s) )); [ $left -lt 1 ] && left=1
        if "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-current "$left" >"$d/status-current.txt" 2>&1; then
            t_c=$(date +%s%6N)
        fi
    fi
    if [ "$t_c" = 0 ]; then
        echo "FAIL restart                   the cluster did not serve with every node current within ${KILLALL_WAIT_S} s of the restart ($( [ "$t_h" = 0 ] && echo "not even healthy" || echo "healthy after $(( (t_h - t_restart) / 1000 )) ms"))"
        "$BIN/ninesctl" --config "$d/cluster.conf" status 2>&1 | head -n 20 | sed 's/^/  /'
        ok=1
    else
        echo "PASS restart                   serving $(( (t_h - t_restart) / 1000 )) ms after the restart, every node current after $(( (t_c - t_restart) / 1000 )) ms"
    fi
    if [ -n "$damaged" ]; then
        # node 1 must have refused its damaged file, and site 1 ({2, 4})
        # must have recovered the cluster
        local why site
        why=$(awk '/^---- drill kill-all:/ { p = 1; next } p' "$d/node1.log" | grep -m1 'not recovered')
        site=$(awk '/^---- drill kill-all:/ { p = 1; next } p' "$d"/node*.log | grep -m1 -o 'site [0-9]* recovers from its disks')
        if [ -n "$why" ] && [ "$site" = "site 1 recovers from its disks" ]; then
            echo "PASS damage refused            node 1: ${why#*not recovered: }; $site"
        else
            echo "FAIL damage refused            node 1's damaged file was not refused (${why:-no refusal logged}; ${site:-no site chosen})"
            ok=1
        fi
    fi
    echo "-- the nodes' logs after the restart (recovery, epochs, rebuilds):"
    for i in 1 2 3 4; do
        awk '/^---- drill kill-all:/ { p = 1; next } p' "$d/node$i.log" |
            grep -i 'recover\|restorable\|restart\|gci\|rebuil\|ERROR\|FATAL' | head -n 4 | sed "s/^/  node $i: /"
    done

    # a second load (another seed: its requests must not collide with the
    # first load's) proves the restarted cluster serves; the takeback
    # happens under it
    local n2=0
    if [ "$t_c" != 0 ]; then
        watch_start "$d" "$(( KILLALL_AFTER_S + 1 ))"
        load_start "$d" load2 --duration "$KILLALL_AFTER_S" --first-node 1 --seed 2
        left=$(( deadline - $(date +%s) )); [ $left -lt $(( KILLALL_AFTER_S + 5 )) ] && left=$(( KILLALL_AFTER_S + 5 ))
        if "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-balanced "$left" >"$d/status-balanced.txt" 2>&1; then
            t_b=$(date +%s%6N)
            echo "PASS takeback                  the original placement again $(( (t_b - t_restart) / 1000 )) ms after the restart"
        else
            echo "FAIL takeback                  the placement was not the original again within $left s (status-balanced.txt)"
            ok=1
        fi
        load_wait
        n2=$(awk '$1 == "A"' "$d/load2.jnl" | wc -l)
        if [ "$n2" -gt 0 ]; then
            echo "PASS serves after the restart  $n2 commits acknowledged in ${KILLALL_AFTER_S} s of load"
        else
            echo "FAIL serves after the restart  no commit acknowledged in ${KILLALL_AFTER_S} s of load"
            ok=1
        fi
        tail -n 2 "$d/load2.out" | sed 's/^/  tpcb: /'
    else
        watch_start "$d" 1
    fi
    local jn=(--journal "$d/load.jnl")
    [ -f "$d/load2.jnl" ] && jn+=(--journal "$d/load2.jnl")
    check "$d" "${jn[@]}" --kill-us "$t_kill" --restart-us "$t_restart" --lost-window-ms "$w" \
        --expect-two --expect-balanced || ok=1
    local lw
    lw=$(grep -m1 '^loss window measured:' "$d/check.txt")
    [ -n "$lw" ] || lw="loss window measured: not measured (no data read: check.txt)"
    echo "FIGURES kill-all: disk_log $KILLALL_POLICY, gcp_interval_ms $GCP_MS$( [ "$KILLALL_GCP_KNOWN" = 1 ] || echo " (not set: unknown to this build)"): $n_acked commits acknowledged before the kill ($n_sub requests); after the restart: ${lw#loss window measured: }; serving after $( [ "$t_h" = 0 ] && echo "-" || echo "$(( (t_h - t_restart) / 1000 )) ms"), every node current after $( [ "$t_c" = 0 ] && echo "-" || echo "$(( (t_c - t_restart) / 1000 )) ms"), original placement after $( [ "$t_b" = 0 ] && echo "-" || echo "$(( (t_b - t_restart) / 1000 )) ms"); $n2 commits in ${KILLALL_AFTER_S} s after"
    return $ok
}

# The coordinator dies in the middle of a node-set round (README "Coordinator
# killed mid-round"). Node 1 runs with NINES_FAULTS=sup_kill_after_POINT:1
# (set by the runner, see midround_env): it SIGKILLs itself right after it
# put the first NS_BUILD_REQ / NS_ACCEPT_REQ / NS_INSTALL_ORD of a round for
# an epoch > 1 on the wire. The drill kills node 3, so that node 1 starts the
# round for epoch 2 and dies in it; nodes 2 and 4 (site 1, exactly half of
# {1,2,3,4}: the arbitrator's grant) must finish or redo it and install a set
# without 1 and 3. Site 0 is then lost: every fragment is PRIMARY ALONE at
# site 1 with no log-copy node, so writes are refused (until the durability
# issue) — the load's refusals after the fault are expected; nothing
# acknowledged may be lost and the reads and every check must hold.
MIDROUND_WAIT_S=${MIDROUND_WAIT_S:-10}
midround_env() { NODEENV[1]="NINES_FAULTS=sup_kill_after_$1:1"; }

# iso_ms T1 T2: milliseconds from log time T1 to T2 (2026-01-02T03:04:05.678901Z)
iso_ms() {
    awk -v a="$1" -v b="$2" 'function s(t, p) { split(substr(t, 12, 15), p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
        BEGIN { d = s(b) - s(a); if (d < -43200) d += 86400; printf "%.1f", d * 1000 }'
}

# node_line FILE ID: drill_check's status line of node ID ("node 2: serving, ...")
node_line() { grep -m1 "^node $2: " "$1"; }

midround_drill() {
    local d=$1 point=$2 fp="sup_kill_after_$2"
    local total fault_us p1=${NODEPID[1]}
    total=$(awk -v a="$LOAD_S" -v b="$AFTER_S" 'BEGIN { print a + b }')
    case "${NODEENV[1]:-}" in
    *"$fp"*) ;;
    *) echo "FAIL node 1 was not started with NINES_FAULTS=$fp (NODEENV: ${NODEENV[1]:-none})"; return 1 ;;
    esac
    # {2,4} is exactly half of {1,2,3,4}: without the arbitrator nobody goes on
    if [ -z "$ARBPID" ] || proc_gone "$ARBPID"; then
        echo "FAIL the arbitrator is not running (build/bin/ninesarb; arb.log): the survivors {2,4} are exactly half and need its grant"
        return 1
    fi
    echo "arbitrator running (pid $ARBPID); node 1 armed: ${NODEENV[1]}"
    watch_start "$d" "$(awk -v t="$total" 'BEGIN { print t + 1 }')"
    load_start "$d" load --duration "$total" --first-node 2
    sleep "$LOAD_S"
    if grep -q 'fault point' "$d/node1.log" || proc_gone "$p1"; then
        echo "FAIL node 1 died before node 3 was killed (a round for an epoch > 1 ran before the fault):"
        grep -E 'fault point|coordinates round|installed' "$d/node1.log" | tail -n 5
        load_wait
        watch_wait
        return 1
    fi
    fault_us=$(date +%s%6N)
    echo "fault: SIGKILL node 3 at $fault_us us" | tee -a "$d/faults.txt"
    kill -KILL "${NODEPID[3]}"

    # node 1 must die by its fault point, in the round the kill started
    local waited=0 line=""
    while :; do
        # gone first, then the log: the line is written before the kill
        local gone=0
        proc_gone "$p1" && gone=1
        line=$(grep -m1 "fault point $fp" "$d/node1.log")
        [ -n "$line" ] && [ $gone = 1 ] && break
        if [ $gone = 1 ]; then
            echo "FAIL node 1 died without reaching fault point $fp; its log ends:"
            tail -n 5 "$d/node1.log"
            load_wait
            watch_wait
            return 1
        fi
        if [ "$waited" -ge $(( MIDROUND_WAIT_S * 20 )) ]; then
            echo "FAIL node 1 did not reach fault point $fp within ${MIDROUND_WAIT_S}s of the kill" \
                 "(the round went differently: no $point message of a round for epoch > 1 from node 1)." \
                 "Its node-set lines:"
            grep -E ' ns: |fault' "$d/node1.log" | tail -n 8
            load_wait
            watch_wait
            return 1
        fi
        sleep 0.05
        waited=$(( waited + 1 ))
    done
    echo "fault: node 1 at its fault point at ${line%% *}: ${line#* sup: }" | tee -a "$d/faults.txt"
    load_wait

    # what the client was told after the fault (site 0 lost: writes refused)
    awk -v f="$fault_us" '$1 ~ /^[ARU]$/ && $11 + 0 >= f { n[$1]++ }
        $1 ~ /^[RU]$/ && $11 + 0 >= f { why = ""; for (i = 12; i <= NF; i++) why = why " " $i
            gsub(/[0-9a-f]*[0-9][0-9a-f]*/, "N", why); c[$1 " " $9 why]++ }
        END { printf "load after the fault: %d acknowledged, %d refused, %d unknown; by reason (numbers as N):\n",
                     n["A"], n["R"], n["U"]
              k = 0; for (x in c) if (k++ < 8) printf "  %7d x %s\n", c[x], substr(x, 1, 240) }' "$d/load.jnl"
    tail -n 3 "$d/load.out" | sed 's/^/  tpcb: /'

    check "$d" --journal "$d/load.jnl" --expect-out 1 --expect-out 3
    local rc=$?

    # the survivors converged: 2 and 4 serving one set, members = current = {2,4}
    echo "-- convergence (node logs)"
    local n2 n4 e2 e4 ok=1
    n2=$(node_line "$d/check.txt" 2)
    n4=$(node_line "$d/check.txt" 4)
    e2=$(sed -n 's/^node 2: serving, epoch \([0-9]*\) (members a, current a).*/\1/p' <<<"$n2")
    e4=$(sed -n 's/^node 4: serving, epoch \([0-9]*\) (members a, current a).*/\1/p' <<<"$n4")
    if [ -z "$e2" ] || [ "$e2" != "$e4" ]; then
        echo "FAIL survivors                 nodes 2 and 4 do not both serve one set {2,4} (members = current = a):"
        echo "     $n2"
        echo "     $n4"
        ok=0
    else
        echo "PASS survivors                 nodes 2 and 4 serve epoch $e2, members = current = {2,4}"
    fi
    for i in 1 3; do
        case "$(node_line "$d/check.txt" $i)" in
        *silent*) ;;
        *) echo "FAIL survivors                 node $i answers after its kill: $(node_line "$d/check.txt" $i)"; ok=0 ;;
        esac
    done
    echo "rounds (every node):"
    grep -h 'coordinates round\|gives up\|has no quorum\|did not grant\|fault point' \
        "$d"/node[1-4].log | sort | sed 's/^/  /'
    local i
    for i in 1 2 3 4; do
        echo "epochs installed at node $i: $(sed -n 's/.*node set of epoch \([0-9]*\) installed: members \([0-9a-f]*\), current \([0-9a-f]*\), coordinator \([0-9]*\).*/\1 (members \2, current \3, coordinator \4)/p' \
            "$d/node$i.log" | paste -sd';' | sed 's/;/; /g')"
    done
    [ -s "$d/arb.log" ] && { echo "arbitrator:"; sed 's/^/  /' "$d/arb.log" | tail -n 6; }
    # what the controllers and kernels did with the transactions in flight
    grep -h 'txc: node [0-9]* is outside node set' "$d"/node[24].log | grep -v 'set 1 ' | sed 's/^/  /'
    for i in 2 4; do
        local k
        k=$(grep -c 'outcome is unknown.*keeps its locks' "$d/node$i.log")
        [ "$k" -gt 0 ] && echo "  node $i: $k reports of a prepared transaction kept in doubt with its locks (last: $(grep 'outcome is unknown.*keeps its locks' "$d/node$i.log" | tail -n 1 | awk '{ print $1 }'))"
    done
    # node 2 took over coordination and installed a set without node 1
    if ! grep -q 'node 2 coordinates round' "$d/node2.log"; then
        echo "FAIL coordination             node 2 (next in the line of succession) ran no round"
        ok=0
    elif ! grep 'node set of epoch [0-9]* installed' "$d/node2.log" |
            awk '{ for (i = 1; i <= NF; i++) if ($i == "members") m = $(i + 1) }
                 END { sub(",", "", m); exit !(m != "" && index("13579bdf", substr(m, length(m), 1)) == 0) }'; then
        echo "FAIL coordination             node 2's last installed set still has node 1"
        ok=0
    else
        # how long the survivors took: node 1's death to node 2's first set without it
        local t1 t2
        t1=$(awk '{ print $1; exit }' <<<"$line")
        t2=$(grep 'node set of epoch [0-9]* installed' "$d/node2.log" |
            awk '{ for (i = 1; i <= NF; i++) if ($i == "members") m = $(i + 1); sub(",", "", m)
                   if (index("13579bdf", substr(m, length(m), 1)) == 0) { print $1; exit } }')
        echo "PASS coordination             node 2 ran a round after node 1 died; its last installed set excludes node 1" \
             "(first such set $(iso_ms "$t1" "$t2") ms after node 1's fault point)"
    fi
    [ $rc = 0 ] && [ $ok = 1 ]
}
drill_kill_coordinator_mid_build() { midround_drill "$1" build; }
drill_kill_coordinator_mid_accept() { midround_drill "$1" accept; }
drill_kill_coordinator_mid_install() { midround_drill "$1" install; }

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

KILLS="kill-primary kill-client-node kill-standby-only kill-coordinator stop-cont
       kill-coordinator-mid-build kill-coordinator-mid-accept kill-coordinator-mid-install
       restart disk-full repair kill-all kill-all-bad-ckpt kill-all-bad-log"
PARTS="part-2x2 part-1x3 part-oneway part-arb-unreachable"
list=()
for a in "$@"; do
    case $a in
    kills) list+=($KILLS) ;;
    partitions) list+=($PARTS) ;;
    all) list+=($KILLS $PARTS) ;;
    -h|--help) sed -n '2,48p' "$0"; exit 0 ;;
    *) list+=("$a") ;;
    esac
done
[ ${#list[@]} -gt 0 ] || { sed -n '2,48p' "$0" >&2; exit 2; }
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
    saved_repair=${REPAIR_AFTER_MS-unset}
    [ "$name" = repair ] && REPAIR_AFTER_MS=${REPAIR_AFTER_MS:-1000}
    NODEENV=()
    case $name in kill-coordinator-mid-*) midround_env "${name##*-}" ;; esac
    DISK_LOG="" DISK_LOG_BUF="" EXTRA=""
    case $name in
    kill-all-bad-ckpt) KILLALL_DAMAGE=ckpt ;;
    kill-all-bad-log) KILLALL_DAMAGE=log ;;
    kill-all) KILLALL_DAMAGE=${KILLALL_DAMAGE_ENV:-} ;;
    esac
    if [ "${name%%-bad-*}" = kill-all ]; then
        case $KILLALL_POLICY in
        async|sync) ;;
        *) echo "DRILL $name: FAIL (KILLALL_POLICY '$KILLALL_POLICY': async or sync)"; failed=1; continue ;;
        esac
        DISK_LOG=$KILLALL_POLICY
        EXTRA="checkpoint_interval_ms $KILLALL_CKPT_MS"
        KILLALL_GCP_KNOWN=1
        why=$(conf_knows "gcp_interval_ms $GCP_MS")
        case $? in
        0) EXTRA="$EXTRA"$'\n'"gcp_interval_ms $GCP_MS" ;;
        1) KILLALL_GCP_KNOWN=0 ;;
        *) echo "DRILL $name: FAIL (gcp_interval_ms $GCP_MS refused: $why)"; failed=1; continue ;;
        esac
    fi
    if [ "$name" = disk-full ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "DRILL $name: SKIP (needs root to mount a small tmpfs)"
            continue
        fi
        mkdir -p "$d/node3"
        mount -t tmpfs -o size=${DISKFULL_MB}m tmpfs "$d/node3" && MOUNTS+=("$d/node3") ||
            { echo "DRILL $name: SKIP (cannot mount a tmpfs)"; continue; }
        DISK_LOG=async
        [ "$DISKFULL_GAP" = 1 ] && DISK_LOG_BUF=$DISKFULL_BUF_MB
    fi
    if ! DISK_LOG=$DISK_LOG DISK_LOG_BUF_MB=$DISK_LOG_BUF EXTRA_CONF=$EXTRA PRECREATE_FRAGS=$PRE cluster_up "$d" $mode >"$d/setup.txt" 2>&1; then
        cat "$d/setup.txt"
        echo "DRILL $name: FAIL (setup; logs in $d)"
        failed=1
        cleanup
        continue
    fi
    "$fn" "$d" >"$d/result.txt" 2>&1
    rc=$?
    if [ "$saved_repair" = unset ]; then unset REPAIR_AFTER_MS; else REPAIR_AFTER_MS=$saved_repair; fi
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
