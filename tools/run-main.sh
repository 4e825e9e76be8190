#!/bin/sh
# The main job on the embedded default: bring up the local 4-node, 2-site
# cluster and its arbitrator, wait until it is healthy (the arbitrator
# answering too), show its status, load TPC-B scale 1,
# run the TPC-B benchmark for a short while (it checks the balance
# invariant at the end), check every hot standby equals its primary,
# check the disk logs (segments in every data folder, none stopped) and a
# round of checkpoints on demand (a manifest in every data folder),
# run unmodified pgbench through node 1's SQL front end and check the TPC-B
# invariant through psql, measure node-to-node messaging, and stop the
# cluster (KEEP=1 leaves it
# running). SCALE, CLIENTS, WINDOW and DURATION override the defaults.
set -e
build=$1 conf=$2 dir=$3
scale=${SCALE:-1} clients=${CLIENTS:-4} window=${WINDOW:-16} duration=${DURATION:-5}
stop() { tools/cluster.sh stop "$build" "$conf" "$dir" >/dev/null; }
if [ "${KEEP:-0}" != 1 ]; then trap stop EXIT INT TERM; fi
stop
rm -rf "$dir"
tools/cluster.sh start "$build" "$conf" "$dir"
echo
if ! "$build/bin/ninesctl" --config "$conf" status --wait-healthy 20; then
    echo "run: the cluster did not become healthy; logs in $dir" >&2
    exit 1
fi
# the arbitrator (when the file names one) must answer too: without it a
# site failure could not be survived
if awk '$1 == "arbitrator" { found = 1 } END { exit !found }' "$conf" &&
    "$build/bin/ninesctl" --config "$conf" status --json |
        grep -q '"arbitrator":{"configured":true,"address":"[^"]*","reachable":false'; then
    echo "run: the arbitrator does not answer; log in $dir/arbitrator.log" >&2
    exit 1
fi
echo
"$build/bin/tpcb_load" --config "$conf" --scale "$scale"
echo
"$build/bin/tpcb" --config "$conf" --scale "$scale" --clients "$clients" --window "$window" \
    --duration "$duration" --plot "$dir/tpcb-response-times.svg"
echo "(response-time plot: $dir/tpcb-response-times.svg)"
echo
# a difference between a standby and its primary fails the main job
if ! out=$("$build/bin/ninesctl" --config "$conf" replicas 2>&1); then
    echo "$out"
    echo "run: a hot standby differs from its primary (ninesctl replicas); logs in $dir" >&2
    exit 1
fi
echo "$out" | tail -n 1
# disk logging (when the file turns it on): every node with a data folder
# has log segments, and none reports its disk log stopped
if grep -Eq '^[[:space:]]*disk_log[[:space:]]+(on|async|sync)' "$conf"; then
    st=$("$build/bin/ninesctl" --config "$conf" status)
    if echo "$st" | grep -q "disk log stopped"; then
        echo "$st" | grep "disk log"
        echo "run: a node's disk log stopped; logs in $dir" >&2
        exit 1
    fi
    for d in $(awk '$1 == "node" && $6 == "data" { print $7 }' "$conf"); do
        if ! ls "$d"/log/log-*.ndl >/dev/null 2>&1; then
            echo "run: no disk log segment in $d/log" >&2
            exit 1
        fi
    done
    echo "$st" | grep "disk log" | head -n 1
    echo "disk log: segments in every node's data folder"
    # a round of checkpoints at every node (kernel/svc/README.md "Checkpoints")
    if ! "$build/bin/ninesctl" --config "$conf" checkpoint --timeout 120; then
        echo "run: ninesctl checkpoint failed; logs in $dir" >&2
        exit 1
    fi
    for d in $(awk '$1 == "node" && $6 == "data" { print $7 }' "$conf"); do
        if [ ! -f "$d/ckpt/manifest.ncm" ]; then
            echo "run: no checkpoint manifest in $d/ckpt" >&2
            exit 1
        fi
    done
    echo "checkpoints: a manifest in every node's data folder"
fi
# the SQL front end (sql/README.md): node 1's PostgreSQL listener, driven
# by unmodified pgbench and psql when the file gives nodes an `sql` address
sqlport=$(awk '$1 == "node" && $2 == 1 { for (i = 3; i < NF; i++) if ($i == "sql") print $(i + 1) }' "$conf" |
    sed 's/.*://')
if [ -n "$sqlport" ] && command -v pgbench >/dev/null && command -v psql >/dev/null; then
    echo
    echo "SQL front end: pgbench -i -s 1, then 3 s of its TPC-B script (4 clients, -M prepared) on node 1 (127.0.0.1:$sqlport)"
    export PGHOST=127.0.0.1 PGPORT=$sqlport PGDATABASE=${PGDATABASE:-nines}
    # the file's login when it has one (the embedded default: admin, its
    # password in the owner-only file tools/cluster.sh made)
    cuser=$(awk '$1 == "client_user" { print $2 }' "$conf")
    cpw=$(awk '$1 == "client_password_file" { print $2 }' "$conf")
    export PGUSER=${PGUSER:-${cuser:-nines}}
    if [ -n "$cpw" ] && [ -r "$cpw" ] && [ -z "${PGPASSWORD:-}" ]; then
        PGPASSWORD=$(head -n 1 "$cpw")
        export PGPASSWORD
    fi
    if ! pgbench -q -i -s 1 >"$dir/pgbench-init.log" 2>&1; then
        cat "$dir/pgbench-init.log"
        echo "run: pgbench -i through the SQL front end failed" >&2
        exit 1
    fi
    out=$(pgbench -n -T 3 -c 4 -M prepared 2>&1) || { echo "$out"; exit 1; }
    echo "$out" | grep -E "^(number of failed|tps|latency average)"
    if ! echo "$out" | grep -q "number of failed transactions: 0 "; then
        echo "run: pgbench reported failed transactions" >&2
        exit 1
    fi
    sums=$(psql -X -At -c "select sum(abalance) from pgbench_accounts" \
        -c "select sum(tbalance) from pgbench_tellers" -c "select sum(bbalance) from pgbench_branches" \
        -c "select sum(delta) from pgbench_history" | tr '\n' ' ')
    echo "TPC-B invariant through SQL (accounts tellers branches history): $sums"
    echo "$sums" | awk '{ exit !($1 == $2 && $2 == $3 && $3 == $4) }' ||
        { echo "run: the TPC-B invariant does not hold through SQL" >&2; exit 1; }
    if [ -n "$cpw" ]; then
        echo "connect with: PGPASSWORD=\$(cat $cpw) psql -h 127.0.0.1 -p $sqlport -U $PGUSER -d $PGDATABASE   (any node's sql port)"
    else
        echo "connect with: psql -h 127.0.0.1 -p $sqlport -U $PGUSER -d $PGDATABASE   (any node's sql port; trust logins in $conf)"
    fi
fi
echo
"$build/bin/net_rtt" --quick
[ "${KEEP:-0}" = 1 ] && echo "cluster left running: 'make cluster-stop' stops it"
exit 0
