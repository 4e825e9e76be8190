#!/bin/bash
# Client spreading, before / after in one run (issue 13 item 1; bench/README.md
# "Issue 13: every node a controller"). Figures, no assertions.
#
#   bench/spread.sh
#
# A fresh 4-node local cluster (loopback, free ports), TPC-B loaded at SCALE
# (1); then, ROUNDS times (2), interleaved on the same cluster: TPC-B at
# 4 clients x 32 in flight and at 1 client x 1 in flight, each DURATION
# seconds (10), once with every client starting at node 1 (`--first-node 1`:
# the library's behaviour before spreading) and once spread (the default).
# Prints per run TPS, p50 / p99, where the clients landed, each node's CPU
# per committed transaction (STATUS cpu_us before and after), their sum
# and max/avg; then the medians per mode and shape, and the round-trip
# floor (net_rtt --quick) beside them.
#
# Environment: NINES_BIN (build/bin), SCALE (1), DURATION (10), ROUNDS (2),
# KEEP=1 keeps the folder.
set -u
# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
SCALE=${SCALE:-1} DURATION=${DURATION:-10} ROUNDS=${ROUNDS:-2}
bench_root nines-spread
bench_need spread ninesd ninesctl tpcb tpcb_load net_rtt
d=$ROOT
bench_conf "$d" spreadbench
if [ -x "$BIN/ninesarb" ]; then
    mkdir -p "$d/arb"
    "$BIN/ninesarb" --config "$d/cluster.conf" --data "$d/arb" >>"$d/arb.log" 2>&1 &
    PIDS+=($!)
fi
for i in 1 2 3 4; do
    "$BIN/ninesd" --config "$d/cluster.conf" --node "$i" >>"$d/node$i.log" 2>&1 &
    PIDS+=($!)
    disown "$!"
done
"$BIN/ninesctl" --config "$d/cluster.conf" status --wait-healthy 20 >/dev/null 2>&1 ||
    { echo "spread: the cluster did not become healthy"; exit 1; }
"$BIN/tpcb_load" --config "$d/cluster.conf" --scale "$SCALE" >"$d/load.txt" 2>&1 ||
    { echo "spread: tpcb_load failed: $(tail -n 2 "$d/load.txt")"; exit 1; }

out=$d/results
: >"$out"
run() { # mode clients window
    local mode=$1 extra=""
    [ "$mode" = first ] && extra="--first-node 1"
    # shellcheck disable=SC2086
    "$BIN/tpcb" --config "$d/cluster.conf" --scale "$SCALE" --clients "$2" --window "$3" \
        --duration "$DURATION" --no-verify $extra >"$d/run.txt" 2>&1 ||
        { cat "$d/run.txt"; exit 1; }
    local f=$d/run.txt tps p50 p99 land cpus sum ratio
    tps=$(sed -n 's/^committed [0-9]*: \([0-9]*\) TPS$/\1/p' "$f")
    p50=$(sed -n 's/^response time us: avg [0-9.]*  p50 \([0-9.]*\).*/\1/p' "$f")
    p99=$(sed -n 's/^response time us: .* p99 \([0-9.]*\).*/\1/p' "$f")
    land=$(sed -n 's/^clients per node at start: *//p' "$f" | tr ' ' ',')
    cpus=$(sed -n 's/^node CPU per transaction (STATUS cpu_us), us: *//p' "$f" |
        sed 's/ *(sum.*//; s/node [0-9]* //g; s/  */\//g')
    sum=$(sed -n 's/.*(sum \([0-9.]*\), max\/avg \([0-9.]*\)).*/\1/p' "$f")
    ratio=$(sed -n 's/.*(sum \([0-9.]*\), max\/avg \([0-9.]*\)).*/\2/p' "$f")
    echo "$mode ${2}x$3 $tps $p50 $p99 ${land:-?} ${cpus:-?} ${sum:-?} ${ratio:-?}" >>"$out"
}
r=0
while [ $r -lt "$ROUNDS" ]; do
    for shape in "4 32" "1 1"; do
        # shellcheck disable=SC2086
        run first $shape
        # shellcheck disable=SC2086
        run spread $shape
    done
    r=$((r + 1))
done
rtt=$("$BIN/net_rtt" --quick 2>/dev/null |
    sed -n 's/^  raw TCP ping-pong (blocking) *\([0-9.]*\) *\([0-9.]*\).*/raw TCP p50 \1 us, p99 \2 us/p' || true)

echo "TPC-B scale $SCALE, $DURATION s per run, $ROUNDS rounds; first = --first-node 1 (before), spread = the default (after)"
printf '%-7s %-5s %7s %7s %7s %-13s %-27s %7s %7s\n' mode shape TPS p50_us p99_us clients/node \
    "cpu_us/txn node1/2/3/4" sum max/avg
awk '{ printf "%-7s %-5s %7s %7s %7s %-13s %-27s %7s %7s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' \
    "$out"
echo "medians:"
for sh in 4x32 1x1; do
    for m in first spread; do
        awk -v m="$m" -v sh="$sh" '$1 == m && $2 == sh' "$out" |
        awk -v m="$m" -v sh="$sh" '
            { tps[NR] = $3; p50[NR] = $4; sum[NR] = $8; r[NR] = $9 }
            function med(a, n,   i, j, t) {
                for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                    if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
                return a[int((n + 1) / 2)]
            }
            END { if (NR) printf "  %-7s %-5s TPS %s  p50 %s us  node cpu %s us/txn  max/avg %s\n",
                                m, sh, med(tps, NR), med(p50, NR), med(sum, NR), med(r, NR) }'
    done
done
echo "round-trip floor (net_rtt --quick): $rtt"
