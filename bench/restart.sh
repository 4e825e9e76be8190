#!/bin/bash
# Restart benchmark (issue 10; bench/README.md "Restart"). Figures, no
# assertions.
#
#   bench/restart.sh
#
# A fresh 4-node local cluster (loopback), TPC-B loaded at SCALE (20: 2M
# accounts, so each node holds about 1M rows as primary or hot standby),
# TPC-B load (CLIENTS x WINDOW) running throughout. Node VICTIM (4) is
# SIGKILLed and started again after DOWN_S seconds; it rejoins as a member
# that is not current, rebuilds every replica placed on it from the
# primaries (kernel/svc/README.md "Rebuild") and is made current again.
# Prints:
#   - rows the restarted node holds (from `ninesctl replicas --json`);
#   - time from its process start to current (polled every 100 ms with
#     `ninesctl status`), and from the start to the last "hot standby
#     again" line of its log;
#   - copy figures from its log: rows and bytes copied, the time of the
#     longest copy, and rows/s and MB/s over the whole rebuild;
#   - client TPS per second before, during and after (from the journal);
#   - the node-to-node round trip (net_rtt --quick) for scale.
#
# Environment: NINES_BIN (build/bin), SCALE (20), VICTIM (4), CLIENTS (4),
# WINDOW (8), BEFORE_S (5), DOWN_S (1), AFTER_S (5: load after the node is
# current), KEEP=1 keeps the folder.
set -u
# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
SCALE=${SCALE:-20} VICTIM=${VICTIM:-4} CLIENTS=${CLIENTS:-4} WINDOW=${WINDOW:-8}
BEFORE_S=${BEFORE_S:-5} DOWN_S=${DOWN_S:-1} AFTER_S=${AFTER_S:-5}
bench_root nines-restart
bench_need restart ninesd ninesctl tpcb tpcb_load net_rtt
now_us() { date +%s%6N; }

d=$ROOT
bench_conf "$d" restartbench
declare -A NODEPID
start_node() {
    "$BIN/ninesd" --config "$d/cluster.conf" --node "$1" >>"$d/node$1.log" 2>&1 &
    NODEPID[$1]=$!
    PIDS+=($!)
    disown "$!" # reaped without a "Killed" line
}
if [ -x "$BIN/ninesarb" ]; then
    mkdir -p "$d/arb"
    "$BIN/ninesarb" --config "$d/cluster.conf" --data "$d/arb" >>"$d/arb.log" 2>&1 &
    PIDS+=($!)
fi
for i in 1 2 3 4; do start_node $i; done
"$BIN/ninesctl" --config "$d/cluster.conf" status --wait-healthy 20 >"$d/status0.txt" 2>&1 ||
    { echo "restart: the cluster did not become healthy"; exit 1; }
t0=$(now_us)
"$BIN/tpcb_load" --config "$d/cluster.conf" --scale "$SCALE" >"$d/load.txt" 2>&1 ||
    { echo "restart: tpcb_load failed: $(tail -n 2 "$d/load.txt")"; exit 1; }
echo "TPC-B scale $SCALE loaded in $(( ($(now_us) - t0) / 1000 )) ms"

rows_of() { # rows node $1 holds, from ninesctl replicas --json
    "$BIN/ninesctl" --config "$d/cluster.conf" replicas --json 2>/dev/null |
        grep -o "\"node\":$1,\"rows\":[0-9]*" | awk -F: '{ s += $3 } END { print s + 0 }'
}
echo "node $VICTIM holds $(rows_of "$VICTIM") rows (primary and hot-standby replicas)"

total=$(( BEFORE_S + DOWN_S + 120 ))
"$BIN/tpcb" --config "$d/cluster.conf" --scale "$SCALE" --clients "$CLIENTS" --window "$WINDOW" \
    --duration "$total" --no-verify --first-node 1 --journal "$d/load.jnl" >"$d/tpcb.out" 2>&1 &
LOADPID=$!
PIDS+=($LOADPID)
sleep "$BEFORE_S"
k_us=$(now_us)
kill -KILL "${NODEPID[$VICTIM]}"
sleep "$DOWN_S"
s_us=$(now_us)
start_node "$VICTIM"
c_us=0
for _ in $(seq 1 3000); do
    if "$BIN/ninesctl" --config "$d/cluster.conf" status 2>/dev/null |
        grep -q "current 1 2 3 4"; then
        c_us=$(now_us)
        break
    fi
    sleep 0.1
done
sleep "$AFTER_S"
kill -INT "$LOADPID" 2>/dev/null
wait "$LOADPID" 2>/dev/null
if [ "$c_us" = 0 ]; then
    echo "node $VICTIM was not current again within 300 s"
else
    echo "node $VICTIM: process start to current: $(( (c_us - s_us) / 1000 )) ms (kill at +0, start at +$(( (s_us - k_us) / 1000 )) ms)"
fi
log=$d/node$VICTIM.log
awk -v s="$s_us" '
    function us(ts,   a, b) { # 2026-12-03T16:21:05.818705Z -> µs of the day
        split(substr(ts, 12, 15), a, ":"); return ((a[1] * 60 + a[2]) * 60 + a[3]) * 1000000 }
    /rebuilds its replica/ { n++; if (!first) first = us($1) }
    /copy of table .* loaded \(/ {
        r = $0; sub(/.*loaded \(/, "", r); sub(/ records.*/, "", r); rows += r
        b = $0; sub(/ bytes,.*/, "", b); sub(/.* records, /, "", b); bytes += b
        m = $0; sub(/.* in /, "", m); sub(/ ms.*/, "", m); if (m + 0 > maxms) maxms = m + 0
        last = us($1) }
    /is a hot standby again/ { hot = us($1) }
    END {
        if (!n) { print "no rebuild lines in the log"; exit }
        span = (last - first) / 1e6
        rate = span > 0 ? rows / span : 0
        mbs = span > 0 ? bytes / 1048576 / span : 0
        printf "rebuild: %d replicas, %d rows, %.1f MB copied; first rebuild begun to last copy loaded %.3f s (%.0f rows/s, %.0f MB/s); longest copy %d ms; first rebuild begun to hot standby %.3f s\n", n, rows, bytes / 1048576, span, rate, mbs, maxms, (hot - first) / 1e6
    }' "$log"
# TPS per second from the journal (wall-clock completion µs in column 11)
awk '$1 == "A" { print int($11 / 1000000) }' "$d/load.jnl" | sort -n | uniq -c |
    awk -v k="$((k_us / 1000000))" -v s="$((s_us / 1000000))" -v c="$((c_us / 1000000))" '
        { sec = $2; n = $1
          if (sec < k) { b += n; nb++ } else if (c && sec > c) { a += n; na++ }
          else { r += n; nr++ } }
        END { printf "TPS: before the kill %.0f; from the kill until current %.0f (%d s); after %.0f\n",
              nb ? b / nb : 0, nr ? r / nr : 0, nr, na ? a / na : 0 }'
"$BIN/net_rtt" --quick --json 2>/dev/null |
    sed -n 's/.*"raw_tcp":{"p50_us":\([0-9.]*\).*"runtime":{"p50_us":\([0-9.]*\).*/net_rtt (node-to-node round trip, p50): runtime \2 us, raw TCP \1 us/p'
[ "${KEEP:-0}" = 1 ] && echo "kept: $ROOT"
exit 0
