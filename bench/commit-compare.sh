#!/bin/sh
# Side by side, in one run: the 2-safe commit of two builds (e.g. before and
# after a commit-protocol change) on the same machine, the same local
# 4-node cluster file and the same TPC-B scale. For each build: a fresh
# cluster, tpcb_load, then TPC-B at 4 clients x 32 in flight (throughput)
# and at 1 client x 1 in flight (latency), each DURATION seconds; the node
# messages per transaction, TPS and response times are the tpcb client's
# own figures. The round-trip floor (net_rtt) is measured once beside them.
#
#   bench/commit-compare.sh BUILD_A BUILD_B [LABEL_A LABEL_B]
#
# SCALE (1), DURATION (10), ROUNDS (2: A B A B ...) change the run;
# CONF_A / CONF_B give each side its own cluster file (default CONF, the
# embedded local4.conf), e.g. the same build with disk_log off and on. Each
# BUILD is a folder with bin/ninesd, bin/tpcb_load, bin/tpcb (the build of
# either checkout). Prints one table; exits non-zero if a run failed.
set -e
a=$1 b=$2 la=${3:-A} lb=${4:-B}
[ -x "$a/bin/ninesd" ] && [ -x "$b/bin/ninesd" ] || {
    echo "usage: $0 BUILD_A BUILD_B [LABEL_A LABEL_B] (each with bin/ninesd, bin/tpcb)" >&2
    exit 2
}
scale=${SCALE:-1} duration=${DURATION:-10} rounds=${ROUNDS:-2}
conf=${CONF:-tools/local4.conf}
conf_a=${CONF_A:-$conf} conf_b=${CONF_B:-$conf}
dir=$(mktemp -d /tmp/nines-compare.XXXXXX)
out=$dir/results
: >"$out"

stop() { tools/cluster.sh stop "$1" "$conf" "$dir/cluster" >/dev/null 2>&1 || true; }

one() { # build label conf
    build=$1 label=$2 conf=$3
    stop "$build"
    rm -rf build/cluster "$dir/cluster"
    tools/cluster.sh start "$build" "$conf" "$dir/cluster" >/dev/null
    "$build/bin/ninesctl" --config "$conf" status --wait-healthy 20 >/dev/null
    "$build/bin/tpcb_load" --config "$conf" --scale "$scale" >/dev/null
    for shape in "4 32" "1 1"; do
        set -- $shape
        "$build/bin/tpcb" --config "$conf" --scale "$scale" --clients "$1" --window "$2" \
            --duration "$duration" >"$dir/run.txt" 2>&1 || { cat "$dir/run.txt"; stop "$build"; exit 1; }
        tps=$(sed -n 's/^committed [0-9]*: \([0-9]*\) TPS$/\1/p' "$dir/run.txt")
        p50=$(sed -n 's/^response time us: avg [0-9.]*  p50 \([0-9.]*\).*/\1/p' "$dir/run.txt")
        p99=$(sed -n 's/^response time us: .* p99 \([0-9.]*\).*/\1/p' "$dir/run.txt")
        msgs=$(sed -n 's/^node messages per transaction: in \([0-9.]*\), out \([0-9.]*\).*/\1 \2/p' \
            "$dir/run.txt")
        cpu=$(sed -n 's/^CPU per transaction: nodes \([0-9.]*\) us.*/\1/p' "$dir/run.txt")
        echo "$label ${1}x$2 $tps $p50 $p99 ${cpu:-?} $msgs" >>"$out"
    done
    stop "$build"
}

r=0
while [ $r -lt "$rounds" ]; do
    one "$a" "$la" "$conf_a"
    one "$b" "$lb" "$conf_b"
    r=$((r + 1))
done
rtt=$("$b/bin/net_rtt" --quick 2>/dev/null | sed -n 's/^  raw TCP ping-pong (blocking) *\([0-9.]*\) *\([0-9.]*\).*/raw TCP p50 \1 us, p99 \2 us/p' || true)

printf '%-10s %-6s %9s %9s %9s %10s %8s %8s %9s\n' build shape TPS p50_us p99_us cpu_us/txn \
    msg_in msg_out msg_in+out
awk '{ printf "%-10s %-6s %9s %9s %9s %10s %8s %8s %9.2f\n", $1, $2, $3, $4, $5, $6, $7, $8,
       $7 + $8 }' "$out"
# medians per build and shape (the figures are noisy: compare these)
echo "medians:"
for l in "$la" "$lb"; do
    for sh in 4x32 1x1; do
        awk -v l="$l" -v sh="$sh" '$1 == l && $2 == sh' "$out" |
        awk -v l="$l" -v sh="$sh" '
            { tps[NR] = $3; p50[NR] = $4; cpu[NR] = $6; m[NR] = $7 + $8 }
            function med(a, n,   i, j, t) {
                for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                    if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
                return a[int((n + 1) / 2)]
            }
            END { if (NR) printf "  %-10s %-6s TPS %s  p50 %s us  cpu %s us/txn  msgs %.2f\n",
                                l, sh, med(tps, NR), med(p50, NR), med(cpu, NR), med(m, NR) }'
    done
done
echo "round-trip floor (net_rtt --quick): $rtt"
rm -rf "$dir"
