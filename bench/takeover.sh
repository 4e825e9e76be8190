#!/bin/bash
# Takeover benchmark (issue 9; bench/README.md "Takeover"). Figures, no assertions.
#
#   bench/takeover.sh [kill]         ROUNDS rounds: fresh 4-node cluster, TPC-B
#                                    back-to-back, SIGKILL of a node holding
#                                    primaries; the client-seen commit gap
#   bench/takeover.sh suspicions     a saturated TPC-B run without kills for
#                                    SAT_S seconds; ring suspicions per node
#
# kill: each round starts a fresh local cluster (loopback; a restarted node's
# replicas are lost until the durability issue, so every round reloads
# TPC-B scale 1), runs `tpcb --journal` with CLIENTS x WINDOW (1 x 1:
# back-to-back) connected to node 1 first, kills node VICTIM (2: holds
# primaries under MISD, not the client's node, not the coordinator) after
# LOAD_S seconds and keeps the load AFTER_S more seconds. From the journal
# (wall-clock completion time of every request) the gap is the longest
# time between two consecutive commits from the last commit before the kill
# on ("last commit before — first commit after" when the stream stalls
# once), and the outage the time from the kill to the last failed request.
# A round with fewer than 5 commits after its last failure counts as not
# recovered. Prints every round, then count, average, p50, min, max, and
# the node-to-node round trip (net_rtt --quick) for scale.
#
# suspicions: one cluster, TPC-B at CLIENTS x WINDOW (4 x 32: saturation)
# for SAT_S (600) seconds, then each node's StatusConf.suspicions and node
# set epoch (drill_check's node lines). A false suspicion is any suspicion
# in this run: nothing failed.
#
# Environment: NINES_BIN (build/bin), ROUNDS (20), VICTIM (2), LOAD_S (1.5),
# AFTER_S (3), CLIENTS, WINDOW, SAT_S, HEARTBEAT_MS / HEARTBEAT_MISSES
# (written to the cluster file when set), KEEP=1 keeps the folder.
set -u
mode=${1:-kill}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
BIN=${NINES_BIN:-build/bin}
case "$BIN" in /*) ;; *) BIN="$top/$BIN" ;; esac
ROUNDS=${ROUNDS:-20} VICTIM=${VICTIM:-2} LOAD_S=${LOAD_S:-1.5} AFTER_S=${AFTER_S:-3}
SAT_S=${SAT_S:-600}
ROOT=$(mktemp -d /tmp/nines-takeover.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    PIDS=()
}
trap 'cleanup; [ "${KEEP:-0}" = 1 ] || rm -rf "$ROOT"' EXIT
trap 'exit 130' INT TERM

for x in ninesd ninesctl tpcb tpcb_load drill_check net_rtt; do
    [ -x "$BIN/$x" ] || { echo "takeover: $BIN/$x is missing (make first)" >&2; exit 2; }
done

declare -A NODEPID
# cluster_up DIR: 4 nodes on free loopback ports, healthy, TPC-B scale 1.
cluster_up() {
    local d=$1 base used
    mkdir -p "$d"
    used=$(cat /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null | awk 'NR > 1 { split($2, a, ":"); h = toupper(a[2]); v = 0
        for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1
        print v }')
    for try in $(seq 0 50); do
        base=$(( 21000 + ($$ * 17 + try * 103 + RANDOM) % 25000 ))
        local clash=0
        for k in 0 1 2 3 4; do printf '%s\n' $used | grep -qx "$(( base + k ))" && clash=1; done
        [ $clash = 0 ] && break
    done
    {
        echo "cluster takeover"
        [ -n "${HEARTBEAT_MS:-}" ] && echo "heartbeat_ms $HEARTBEAT_MS"
        [ -n "${HEARTBEAT_MISSES:-}" ] && echo "heartbeat_misses $HEARTBEAT_MISSES"
        echo "arbitrator 127.0.0.1:$base"
        for i in 1 2 3 4; do
            mkdir -p "$d/node$i"
            echo "node $i site $(( (i - 1) % 2 )) 127.0.0.1:$(( base + i )) data $d/node$i"
        done
    } > "$d/cluster.conf"
    if [ -x "$BIN/ninesarb" ]; then
        mkdir -p "$d/arb"
        "$BIN/ninesarb" --config "$d/cluster.conf" --data "$d/arb" >>"$d/arb.log" 2>&1 &
        PIDS+=($!)
    fi
    for i in 1 2 3 4; do
        "$BIN/ninesd" --config "$d/cluster.conf" --node $i >>"$d/node$i.log" 2>&1 &
        NODEPID[$i]=$!
        PIDS+=($!)
    done
    "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-healthy 20 >"$d/status.txt" 2>&1 &&
        "$BIN/tpcb_load" --config "$d/cluster.conf" --scale 1 >"$d/load.txt" 2>&1
}

# One round's figures from its journal and the kill time K (µs):
#   "GAP OUTAGE AFTER" — GAP: the longest time between consecutive commits
#   from the last commit before K on (ms); OUTAGE: from K to the completion
#   of the last failed request (ms, 0: none failed); AFTER: commits after
#   that last failure. "none ..." when the stream did not recover (fewer
#   than 5 commits after the last failure).
round_figures() {
    awk '$1 == "A" || $1 == "R" || $1 == "U" { print $11, $1 }' "$1" | sort -n |
    awk -v k="$2" '
        { t[n] = $1; a[n] = ($2 == "A"); n++ }
        END {
            lastfail = k; before = -1
            for (i = 0; i < n; i++) {
                if (!a[i] && t[i] >= k && t[i] > lastfail) lastfail = t[i]
                if (a[i] && t[i] <= k) before = t[i]
            }
            after = 0; gap = 0; prev = before
            for (i = 0; i < n; i++) {
                if (!a[i]) continue
                if (t[i] > lastfail) after++
                if (prev >= 0 && t[i] > prev) { if (t[i] - prev > gap) gap = t[i] - prev; prev = t[i] }
            }
            if (before < 0 || after < 5) { printf "none %.1f %d\n", (lastfail - k) / 1000, after; exit }
            printf "%.1f %.1f %d\n", gap / 1000, (lastfail - k) / 1000, after
        }'
}

rtt_line() {
    "$BIN/net_rtt" --quick --json 2>/dev/null |
        sed -n 's/.*"raw_tcp":{"p50_us":\([0-9.]*\).*"runtime":{"p50_us":\([0-9.]*\).*/net_rtt (node-to-node round trip, p50): runtime \2 us, raw TCP \1 us/p'
}

case $mode in
kill)
    CLIENTS=${CLIENTS:-1} WINDOW=${WINDOW:-1}
    total=$(awk -v a="$LOAD_S" -v b="$AFTER_S" 'BEGIN { print a + b }')
    echo "takeover: $ROUNDS rounds, SIGKILL node $VICTIM after ${LOAD_S}s of TPC-B ($CLIENTS x $WINDOW, back-to-back), ${AFTER_S}s after"
    gaps=()
    lost=0
    for r in $(seq 1 "$ROUNDS"); do
        d="$ROOT/round$r"
        if ! cluster_up "$d"; then
            echo "round $r: cluster setup failed ($(tail -n 1 "$d/status.txt" "$d/load.txt" 2>/dev/null | tail -n 1))"
            cleanup
            continue
        fi
        "$BIN/tpcb" --config "$d/cluster.conf" --scale 1 --clients "$CLIENTS" --window "$WINDOW" \
            --duration "$total" --no-verify --first-node 1 --journal "$d/load.jnl" >"$d/tpcb.out" 2>&1 &
        tp=$!
        PIDS+=($tp)
        sleep "$LOAD_S"
        k=$(date +%s%6N)
        kill -KILL "${NODEPID[$VICTIM]}"
        wait "$tp" 2>/dev/null
        cleanup
        read -r g o after < <(round_figures "$d/load.jnl" "$k")
        errs=$(awk -v k="$k" '($1 == "R" || $1 == "U") && $11 >= k' "$d/load.jnl" | wc -l)
        if [ "$g" = none ]; then
            lost=$((lost + 1))
            echo "round $r: not recovered — requests failed until +$o ms after the kill ($errs failed, $after commits after the last failure)"
        else
            gaps+=("$g")
            echo "round $r: gap $g ms; failed requests until +$o ms ($errs failed); $after commits after"
        fi
    done
    if [ ${#gaps[@]} -gt 0 ]; then
        printf '%s\n' "${gaps[@]}" | sort -n | awk -v lost=$lost '
            { v[n++] = $1; s += $1 }
            END {
                printf "takeover gap: count %d, avg %.1f ms, p50 %.1f ms, min %.1f ms, max %.1f ms", n, s / n, v[int((n - 1) / 2)], v[0], v[n - 1]
                if (lost) printf " (%d more rounds without a commit after the kill)", lost
                printf "\n"
            }'
    else
        echo "takeover gap: count 0 — no round committed anything after the kill ($lost rounds)"
    fi
    rtt_line
    ;;
suspicions)
    CLIENTS=${CLIENTS:-4} WINDOW=${WINDOW:-32}
    d="$ROOT/sat"
    cluster_up "$d" || { echo "cluster setup failed; logs in $d"; KEEP=1; exit 1; }
    before=$("$BIN/drill_check" --config "$d/cluster.conf" --no-data --no-takeover --settle-ms 0 | grep '^node ')
    echo "suspicions: TPC-B $CLIENTS x $WINDOW for ${SAT_S}s without kills"
    "$BIN/tpcb" --config "$d/cluster.conf" --scale 1 --clients "$CLIENTS" --window "$WINDOW" \
        --duration "$SAT_S" --no-verify | sed -n '/^committed/p;/^response time us/p;/^errors/p'
    after=$("$BIN/drill_check" --config "$d/cluster.conf" --no-data --no-takeover --settle-ms 0 | grep '^node ')
    echo "$after"
    total=$(printf '%s\n' "$after" | sed -n 's/.*suspicions \([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
    was=$(printf '%s\n' "$before" | sed -n 's/.*suspicions \([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
    e0=$(printf '%s\n' "$before" | sed -n 's/.*epoch \([0-9]*\).*/\1/p' | sort -n | tail -n 1)
    e1=$(printf '%s\n' "$after" | sed -n 's/.*epoch \([0-9]*\).*/\1/p' | sort -n | tail -n 1)
    echo "false suspicions in ${SAT_S}s: $(( total - was )) (all nodes; StatusConf.suspicions, 0 while the supervisor does not count them); node set epoch $e0 -> $e1"
    rtt_line
    ;;
*) sed -n '2,30p' "$0"; exit 2 ;;
esac
