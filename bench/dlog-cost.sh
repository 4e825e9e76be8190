#!/bin/sh
# The disk log's cost on TPC-B, in one run (issue 10): the same build and
# machine, a local 4-node, 2-site cluster on loopback under three cluster
# files that differ only in `disk_log` — off, async (the default policy
# once on: commits wait for the disk only while a fragment is PRIMARY
# ALONE, i.e. never in this healthy cluster) and sync (every commit waits
# for the local fsync at every primary it wrote; kernel/svc/README.md
# "Commits that wait for the disk"). For each policy and round: a fresh
# cluster (empty data folders), tpcb_load, then TPC-B at 4 clients x 32 in
# flight (throughput) and 1 client x 1 in flight (latency), DURATION
# seconds each; TPS and response times are the tpcb client's own figures;
# after the runs, node 1's disk-log line of `ninesctl status` (how many
# commits waited for the fsync and how long). The round-trip floor
# (net_rtt --quick) is measured once beside them.
#
#   bench/dlog-cost.sh [BUILD]        (BUILD: a folder with bin/; default build)
#
# SCALE (1), DURATION (5), ROUNDS (2: off async sync off async sync ...),
# PORT_BASE (7440: the arbitrator on PORT_BASE, node N on PORT_BASE + N;
# away from the local4.conf ports other clusters on this machine use).
# Prints one table and the medians per policy and shape; exits non-zero if
# a run failed. bench/README.md "The disk log's cost on TPC-B".
set -e
build=${1:-build}
for b in ninesd ninesarb ninesctl tpcb_load tpcb net_rtt; do
    [ -x "$build/bin/$b" ] || { echo "$0: no $build/bin/$b (make first)" >&2; exit 2; }
done
scale=${SCALE:-1} duration=${DURATION:-5} rounds=${ROUNDS:-2} base=${PORT_BASE:-7440}
dir=$(mktemp -d /tmp/nines-dlogcost.XXXXXX)
out=$dir/results
: >"$out"

# conf POLICY: the cluster file of one policy (local4.conf's timing knobs)
conf() {
    f=$dir/$1.conf
    {
        echo "cluster      dlogcost"
        echo "transport    tcp"
        echo "disk_log     $1"
        echo "heartbeat_ms 10"
        echo "heartbeat_misses 5"
        echo "arbitrator   127.0.0.1:$base data $dir/data/arbitrator"
        for n in 1 2 3 4; do
            echo "node $n site $(( (n - 1) % 2 )) 127.0.0.1:$((base + n)) data $dir/data/node$n"
        done
    } >"$f"
    echo "$f"
}

stop() { tools/cluster.sh stop "$build" "$1" "$dir/cluster" >/dev/null 2>&1 || true; }

# one POLICY: a fresh cluster, the load, both shapes; 1 (the cluster
# stopped, the reason printed) when something failed.
one() {
    pol=$1
    c=$(conf "$pol")
    stop "$c"
    rm -rf "$dir/data" "$dir/cluster"
    tools/cluster.sh start "$build" "$c" "$dir/cluster" >/dev/null || { stop "$c"; return 1; }
    if ! "$build/bin/ninesctl" --config "$c" status --wait-healthy 20 >/dev/null; then
        echo "$pol: the cluster did not become healthy" >&2; stop "$c"; return 1
    fi
    if ! "$build/bin/tpcb_load" --config "$c" --scale "$scale" >"$dir/run.txt" 2>&1; then
        echo "$pol: tpcb_load failed: $(tail -n 1 "$dir/run.txt")" >&2; stop "$c"; return 1
    fi
    : >"$dir/one"
    for shape in "4 32" "1 1"; do
        set -- $shape
        if ! "$build/bin/tpcb" --config "$c" --scale "$scale" --clients "$1" --window "$2" \
                --duration "$duration" >"$dir/run.txt" 2>&1; then
            echo "$pol ${1}x$2: tpcb failed: $(grep -E 'error|FAIL' "$dir/run.txt" | head -n 3)" >&2
            stop "$c"; return 1
        fi
        tps=$(sed -n 's/^committed [0-9]*: \([0-9]*\) TPS$/\1/p' "$dir/run.txt")
        p50=$(sed -n 's/^response time us: avg [0-9.]*  p50 \([0-9.]*\).*/\1/p' "$dir/run.txt")
        p99=$(sed -n 's/^response time us: .* p99 \([0-9.]*\).*/\1/p' "$dir/run.txt")
        echo "$pol ${1}x$2 ${tps:-?} ${p50:-?} ${p99:-?}" >>"$dir/one"
    done
    cat "$dir/one" >>"$out"
    # node 1's disk log after both runs: policy, commits that waited, fsyncs
    "$build/bin/ninesctl" --config "$c" status 2>/dev/null |
        awk -v p="$pol" '$1 ~ /^[0-9]+$/ { on = ($1 == 1); next }
                         on && /disk log/ { sub(/^ */, ""); print p ": node 1 " $0 }' \
        >"$dir/status.$pol" || true
    stop "$c"
    return 0
}

# A round that fails (a stall of this shared VM can cost a node its lease
# mid-load) is run again once from a fresh cluster, and said so.
r=0
while [ $r -lt "$rounds" ]; do
    for pol in off async sync; do
        if ! one "$pol"; then
            echo "$pol: round $((r + 1)) failed; running it again (logs of the failed one lost)" >&2
            one "$pol" || { echo "$pol failed twice; giving up" >&2; exit 1; }
        fi
    done
    r=$((r + 1))
done
rtt=$("$build/bin/net_rtt" --quick 2>/dev/null |
      sed -n 's/^  raw TCP ping-pong (blocking) *\([0-9.]*\) *\([0-9.]*\).*/raw TCP p50 \1 us, p99 \2 us/p' || true)

printf '%-7s %-6s %9s %9s %9s\n' policy shape TPS p50_us p99_us
awk '{ printf "%-7s %-6s %9s %9s %9s\n", $1, $2, $3, $4, $5 }' "$out"
echo "medians (of $rounds rounds, scale $scale, $duration s each):"
for pol in off async sync; do
    for sh in 4x32 1x1; do
        awk -v l="$pol" -v sh="$sh" '$1 == l && $2 == sh' "$out" |
        awk -v l="$pol" -v sh="$sh" '
            { tps[NR] = $3; p50[NR] = $4; p99[NR] = $5 }
            function med(a, n,   i, j, t) {
                for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                    if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
                return a[int((n + 1) / 2)]
            }
            END { if (NR) printf "  %-6s %-5s TPS %7s  p50 %8s us  p99 %8s us\n",
                                l, sh, med(tps, NR), med(p50, NR), med(p99, NR) }'
    done
done
echo "disk log at node 1 after both runs (last round):"
for pol in off async sync; do
    sed 's/^/  /' "$dir/status.$pol" 2>/dev/null || true
done
echo "round-trip floor (net_rtt --quick): ${rtt:-?}"
rm -rf "$dir"
