#!/bin/bash
# Self-repair benchmark (issue 10 item 4; bench/README.md "Self-repair").
# Figures, no assertions.
#
#   bench/repair.sh
#
# A fresh local 4-node cluster (loopback; nodes 1, 3 at site 0, 2, 4 at site
# 1; an arbitrator when build/bin/ninesarb exists) with repair_after_ms
# REPAIR_AFTER_MS, TPC-B scale SCALE loaded, `tpcb --journal` at CLIENTS x
# WINDOW connected to node 1 first. After LOAD_S seconds node 4 is
# SIGKILLed and kept down: the coordinator has its replicas placed on node
# 2 (its only site-mate) as building replicas, node 2 copies each from its
# primary (fuzzy copy, then the live stream) and has it marked built. The
# script polls the dictionary (ninesctl placement: nothing placed on node
# 4, nothing building) and prints:
#
#   * the time from the kill to "two replicas everywhere" (the poll; and
#     from the nodes' logs: the kill to the repair request, the request to
#     the last replica marked built);
#   * what was copied: replicas, rows and bytes (the primaries' "copy ...
#     ends" lines), and rows/s and MB/s over the copy time (the first copy
#     begun to the last replica marked built: fuzzy copy plus catch-up);
#   * TPS from the journal before the kill (from 1 s after the start),
#     from the kill to the repair request (one replica + log copy: the
#     takeover), during the build, and after it (AFTER_S seconds).
# Then the load ends and drill_check --expect-two checks the result
# (every fragment two agreeing replicas, acknowledged present, invariant).
#
# Environment: NINES_BIN (build/bin), SCALE (10), REPAIR_AFTER_MS (2000),
# LOAD_S (5), AFTER_S (5: the load after the repair; then SIGINT ends it),
# BUDGET_S (120: the repair must end within it), CLIENTS (2), WINDOW (8),
# KEEP=1 keeps the folder.
set -u
# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
SCALE=${SCALE:-10} REPAIR_AFTER_MS=${REPAIR_AFTER_MS:-2000} LOAD_S=${LOAD_S:-5}
AFTER_S=${AFTER_S:-5} BUDGET_S=${BUDGET_S:-120} CLIENTS=${CLIENTS:-2} WINDOW=${WINDOW:-8}
VICTIM=4
bench_root nines-repair
bench_need repair ninesd ninesctl tpcb tpcb_load drill_check

d="$ROOT/c"
mkdir -p "$d"
bench_conf "$d" repair "repair_after_ms $REPAIR_AFTER_MS"
if [ -x "$BIN/ninesarb" ]; then
    mkdir -p "$d/arb"
    "$BIN/ninesarb" --config "$d/cluster.conf" --data "$d/arb" >>"$d/arb.log" 2>&1 &
    PIDS+=($!)
fi
declare -A NODEPID
for i in 1 2 3 4; do
    "$BIN/ninesd" --config "$d/cluster.conf" --node $i >>"$d/node$i.log" 2>&1 &
    NODEPID[$i]=$!
    PIDS+=($!)
    disown "$!" # the kill below is reaped without a "Killed" line
done
if ! "$BIN/ninesctl" --config "$d/cluster.conf" status --wait-healthy 20 >"$d/status.txt" 2>&1; then
    echo "repair: the cluster did not become healthy; logs in $d"
    KEEP=1
    exit 1
fi
t0=$(date +%s%3N)
if ! "$BIN/tpcb_load" --config "$d/cluster.conf" --scale "$SCALE" >"$d/load.txt" 2>&1; then
    echo "repair: tpcb_load failed: $(tail -n 2 "$d/load.txt")"
    KEEP=1
    exit 1
fi
echo "repair: TPC-B scale $SCALE loaded in $(( $(date +%s%3N) - t0 )) ms; repair_after_ms $REPAIR_AFTER_MS; load $CLIENTS x $WINDOW"
total=$(awk -v a="$LOAD_S" -v b="$BUDGET_S" -v c="$AFTER_S" 'BEGIN { print a + b + c }')
"$BIN/tpcb" --config "$d/cluster.conf" --scale "$SCALE" --clients "$CLIENTS" --window "$WINDOW" \
    --duration "$total" --no-verify --first-node 1 --journal "$d/load.jnl" >"$d/tpcb.out" 2>&1 &
tp=$!
PIDS+=($tp)
t_start=$(date +%s%6N)
sleep "$LOAD_S"
t_kill=$(date +%s%6N)
kill -KILL "${NODEPID[$VICTIM]}"
ok=0
while [ $(( $(date +%s%6N) - t_kill )) -lt $(( BUDGET_S * 1000000 )) ]; do
    left=0
    for t in branch teller account history; do
        "$BIN/ninesctl" --config "$d/cluster.conf" placement "$t" --json >"$d/poll_$t.json" 2>&1 ||
            left=$(( left + 1 ))
        grep -q '"standby_state":"building"' "$d/poll_$t.json" && left=$(( left + 1 ))
        grep -q "{\"id\":$VICTIM,\"site\":[01],\"primaries\":0,\"standbys\":0}" "$d/poll_$t.json" ||
            left=$(( left + 1 ))
    done
    [ $left = 0 ] && { ok=1; break; }
    sleep 0.1
done
t_two=$(date +%s%6N)
if [ $ok = 0 ]; then
    echo "repair: not every fragment had two replicas again within ${BUDGET_S} s of the kill; logs in $ROOT"
    KEEP=1
    exit 1
fi
sleep "$AFTER_S"
kill -INT "$tp" # ends the load (tpcb: SIGINT ends the measured interval)
wait "$tp"

# ---- figures -------------------------------------------------------------
# log time (2026-01-02T03:04:05.678901Z) -> epoch µs
iso_us() { date -u -d "$(sed 's/T/ /; s/Z$//' <<<"$1")" +%s%6N; }
first_line() { grep -h "$1" "$d"/node[1-3].log | sort | head -n 1 | awk '{ print $1 }'; }
last_line() { grep -h "$1" "$d"/node[1-3].log | sort | tail -n 1 | awk '{ print $1 }'; }
l_ask=$(first_line "asking to rebuild its replicas")
l_copy=$(first_line "rebuilds its replica of table")
l_built=$(last_line "is a hot standby now, marked built")
u_ask=$(iso_us "$l_ask")
u_copy=$(iso_us "$l_copy")
u_built=$(iso_us "$l_built")
nrep=$(grep -h "is a hot standby now, marked built" "$d"/node[1-3].log | wc -l)
# what was copied, from the building node's lines: "... marked built (...,
# B copy bytes)" and "copy of table T fragment F loaded (R records, ..."
cbytes=$(grep -h "is a hot standby now, marked built" "$d"/node[1-3].log |
    sed -n 's/.* \([0-9]*\) copy bytes).*/\1/p' | awk '{ b += $1 } END { print b + 0 }')
crows=$(grep -h "fragment [0-9]* loaded (" "$d"/node[1-3].log |
    sed -n 's/.* loaded (\([0-9]*\) records.*/\1/p' | awk '{ r += $1 } END { print r + 0 }')
copy_ms=$(( (u_built - u_copy) / 1000 ))
echo "node $VICTIM killed at +$(( (t_kill - t_start) / 1000 )) ms of the load"
echo "two replicas everywhere: $(( (t_two - t_kill) / 1000 )) ms after the kill (dictionary poll)"
echo "  from the logs: repair asked $(( (u_ask - t_kill) / 1000 )) ms after the kill (repair_after_ms $REPAIR_AFTER_MS)," \
     "first copy $(( (u_copy - u_ask) / 1000 )) ms later, last of $nrep replicas built $copy_ms ms after the first copy began"
awk -v b="$cbytes" -v r="$crows" -v ms="$copy_ms" 'BEGIN {
    s = ms > 0 ? ms / 1000 : 1
    printf "copied: %d rows, %.1f MB in %d ms (fuzzy copy + catch-up, every replica in parallel): %.0f rows/s, %.1f MB/s\n",
        r, b / 1e6, ms, r / s, b / 1e6 / s }'
# TPS per phase, from the journal's completion times
awk -v s="$t_start" -v k="$t_kill" -v a="$u_ask" -v c="$u_built" -v af="$AFTER_S" '
    $1 == "A" { t = $11
        if (t >= s + 1000000 && t < k) nb++
        else if (t >= k && t < a) nt++
        else if (t >= a && t < c) nd++
        else if (t >= c && t < c + af * 1000000) na++ }
    $1 == "R" || $1 == "U" { if ($11 >= k) fails++ }
    END {
        pb = (k - s - 1000000) / 1e6; pt = (a - k) / 1e6; pd = (c - a) / 1e6
        tt = pt > 0 ? nt / pt : 0
        td = pd > 0 ? nd / pd : 0
        printf "TPS: before %.0f (%.1f s), after the kill until the repair request %.0f (%.1f s), during the build %.0f (%.2f s), after %.0f (%d s); %d requests failed after the kill\n",
            nb / pb, pb, tt, pt, td, pd, na / af, af, fails
    }' "$d/load.jnl"
tail -n 3 "$d/tpcb.out" | sed 's/^/  tpcb: /'
"$BIN/drill_check" --config "$d/cluster.conf" --journal "$d/load.jnl" --expect-two --settle-ms 5000 \
    >"$d/check.txt" 2>&1
echo "check: $(tail -n 1 "$d/check.txt")"
grep -E "^(PASS|FAIL) (replicas agree|acknowledged|balance invariant)" "$d/check.txt" | sed 's/^/  /'
