#!/bin/bash
# pgbench side by side with PostgreSQL, in one run (issue 11; bench/README.md
# "pgbench side by side with PostgreSQL (issue 11)"). Figures, no
# assertions about time.
#
#   bench/pgbench-compare.sh            (make bench-pgbench)
#
# The same pgbench binary (PGBENCH, /usr/bin/pgbench), its own TPC-B tables
# at scale SCALE (10) and its built-in script with -M prepared, against
#  (a) ninesdb: a fresh local 4-node, 2-site cluster (the embedded default
#      CONF, tools/local4.conf, moved to free loopback ports and a temporary
#      folder), started with tools/cluster.sh; pgbench talks to node 1's SQL
#      front end;
#  (b) PostgreSQL, when a server is installed (PG_BIN, else
#      /usr/lib/postgresql/15/bin, else the folder of pg_ctl in PATH): a
#      primary and a synchronous streaming standby on this machine (initdb,
#      pg_basebackup -R, synchronous_standby_names naming the standby,
#      synchronous_commit on, fsync on), unix sockets only (no TCP port),
#      run as the user `postgres` when this script runs as root.
# For each client count in CLIENT_COUNTS ("1 4 16"), interleaved (ninesdb,
# then PostgreSQL): DURATION (30) seconds, -j min(clients, 2), -l
# per-transaction logs. TPS is pgbench's "tps = ... (without initial
# connection time)"; p50 / p99 (ms) come from the logs' third column
# (latency, us). ninesdb must report 0 failed transactions, and after its
# runs the TPC-B invariant (sum abalance = sum tbalance = sum bbalance =
# sum history delta) must hold through psql; either failing fails the
# script (after the table is printed). The round-trip floor (net_rtt
# --quick) is measured after both clusters are stopped.
#
# Environment: NINES_BIN (build/bin), SCALE (10), DURATION (30),
# CLIENT_COUNTS ("1 4 16"), CONF (tools/local4.conf), PGBENCH
# (/usr/bin/pgbench), PG_BIN, NO_PG=1 (skip PostgreSQL), KEEP=1 keeps the
# folders (the clusters are stopped either way).
set -u
# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
cd "$bench_top" || exit 2
SCALE=${SCALE:-10} DURATION=${DURATION:-30} CLIENT_COUNTS=${CLIENT_COUNTS:-"1 4 16"}
CONF=${CONF:-tools/local4.conf}
PGBENCH=${PGBENCH:-/usr/bin/pgbench}
bench_need pgbench-compare ninesd ninesctl ninesarb net_rtt
build=$(dirname "$BIN")
[ -x "$PGBENCH" ] || { echo "pgbench-compare: $PGBENCH is missing (postgresql-15)" >&2; exit 2; }
command -v psql >/dev/null || { echo "pgbench-compare: psql is missing (postgresql-client-15)" >&2; exit 2; }

dir="" pgdir="" nines_up=0 pg_up=""
as_pg=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local rc=$?
    if [ "$nines_up" = 1 ]; then
        tools/cluster.sh stop "$build" "$dir/cluster.conf" "$dir/cluster" >/dev/null 2>&1
    fi
    local d
    for d in $pg_up; do
        "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1
    done
    if [ "${KEEP:-0}" = 1 ]; then
        [ -n "$dir" ] && echo "kept: $dir ${pgdir}" >&2
    else
        [ -n "$dir" ] && rm -rf "$dir"
        [ -n "$pgdir" ] && rm -rf "$pgdir"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
dir=$(mktemp -d /tmp/nines-pgbench.XXXXXX)

# --- PostgreSQL: present? -------------------------------------------------
PG_BIN=${PG_BIN:-}
if [ -z "$PG_BIN" ]; then
    if [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
        PG_BIN=/usr/lib/postgresql/15/bin
    elif command -v pg_ctl >/dev/null; then
        PG_BIN=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    fi
fi
pg=1 pg_why=""
if [ "${NO_PG:-0}" = 1 ]; then
    pg=0 pg_why="NO_PG=1"
elif [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/postgres" ] ||
    [ ! -x "$PG_BIN/pg_basebackup" ]; then
    pg=0 pg_why="no PostgreSQL server (initdb, postgres, pg_basebackup, pg_ctl) found"
fi

# base..base+4 free (lib.sh bench_base); a second base for 4 more ports
# apart from the first
other_base() { # not within 8 of $1
    local b try
    for try in $(seq 0 20); do
        b=$(bench_base)
        : "$try"
        if [ $(( b - $1 )) -gt 8 ] || [ $(( $1 - b )) -gt 8 ]; then echo "$b"; return; fi
    done
    echo $(( $1 + 10 ))
}

pgrun() { # args: psql-style command as the server's owner
    "${as_pg[@]}" "$@"
}

if [ $pg = 1 ]; then
    pgdir=$(mktemp -d /tmp/nines-pgbench-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then
        if ! id postgres >/dev/null 2>&1; then
            useradd --system --home-dir "$pgdir" --no-create-home --shell /bin/sh postgres ||
                { echo "pgbench-compare: cannot create the user postgres" >&2; exit 1; }
        fi
        chown postgres: "$pgdir"
        as_pg=(runuser -u postgres --)
    fi
    chmod 755 "$pgdir"
    pgport=$(other_base 0)
    pgport=$(( pgport + 1 ))
    pgsport=$(( pgport + 1 ))
    pgp=$pgdir/primary pgs=$pgdir/standby
    echo "PostgreSQL: $("$PG_BIN/postgres" --version); primary and synchronous standby in $pgdir (unix sockets, ports $pgport / $pgsport)"
    pgrun "$PG_BIN/initdb" -D "$pgp" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$pgdir/initdb.log" 2>&1 ||
        { cat "$pgdir/initdb.log"; echo "pgbench-compare: initdb failed" >&2; exit 1; }
    cat >>"$pgp/postgresql.conf" <<EOF
# bench/pgbench-compare.sh
listen_addresses = ''
port = $pgport
unix_socket_directories = '$pgdir'
max_connections = 60
shared_buffers = 256MB
synchronous_commit = on
synchronous_standby_names = 'nines_standby'
fsync = on
EOF
    pgrun "$PG_BIN/pg_ctl" -D "$pgp" -l "$pgdir/primary.log" -w start >/dev/null ||
        { cat "$pgdir/primary.log"; echo "pgbench-compare: the primary did not start" >&2; exit 1; }
    pg_up="$pgp"
    # the standby: a base backup with standby.signal and primary_conninfo
    # (-R); its name (cluster_name, the walreceiver's application_name) is
    # the one synchronous_standby_names lists
    pgrun "$PG_BIN/pg_basebackup" -h "$pgdir" -p "$pgport" -U postgres -D "$pgs" -R -X stream \
        >"$pgdir/basebackup.log" 2>&1 ||
        { cat "$pgdir/basebackup.log"; echo "pgbench-compare: pg_basebackup failed" >&2; exit 1; }
    printf "port = %s\ncluster_name = 'nines_standby'\n" "$pgsport" | pgrun tee -a "$pgs/postgresql.conf" >/dev/null
    pgrun "$PG_BIN/pg_ctl" -D "$pgs" -l "$pgdir/standby.log" -w start >/dev/null ||
        { cat "$pgdir/standby.log"; echo "pgbench-compare: the standby did not start" >&2; exit 1; }
    pg_up="$pgs $pgp"
    # wait until the primary sees it as its synchronous standby
    st=""
    for _ in $(seq 1 100); do
        st=$(psql -X -At -h "$pgdir" -p "$pgport" -U postgres -d postgres \
            -c "select application_name || ' ' || state || ' ' || sync_state from pg_stat_replication" 2>/dev/null)
        [ "$st" = "nines_standby streaming sync" ] && break
        sleep 0.2
    done
    [ "$st" = "nines_standby streaming sync" ] ||
        { echo "pgbench-compare: the standby is not a synchronous streaming standby: '$st'" >&2; exit 1; }
    echo "PostgreSQL: standby $st"
    "$PGBENCH" -q -i -s "$SCALE" -h "$pgdir" -p "$pgport" -U postgres postgres >"$dir/pg-init.log" 2>&1 ||
        { cat "$dir/pg-init.log"; echo "pgbench-compare: pgbench -i on PostgreSQL failed" >&2; exit 1; }
    echo "PostgreSQL: pgbench -i -s $SCALE: $(grep -E '^done in' "$dir/pg-init.log" || true)"
else
    echo "PostgreSQL skipped: $pg_why"
fi

# --- ninesdb: CONF on free ports, data in $dir ----------------------------
base=$(bench_base)
sqlbase=$(other_base "$base")
awk -v base="$base" -v sqlbase="$sqlbase" -v d="$dir/cluster" '
    $1 == "cluster_key" { $2 = d "/cluster.key" }
    $1 == "client_password_file" { $2 = d "/admin.password" }
    $1 == "arbitrator" { h = $2; sub(/:.*/, "", h); $2 = h ":" base
                         if ($3 == "data") $4 = d "/arbitrator" }
    $1 == "node" { h = $5; sub(/:.*/, "", h); $5 = h ":" (base + $2)
                   for (i = 6; i < NF; i++) {
                       if ($i == "data") $(i + 1) = d "/node" $2
                       if ($i == "sql") { h = $(i + 1); sub(/:.*/, "", h); $(i + 1) = h ":" (sqlbase + $2) }
                   } }
    { print }' "$CONF" >"$dir/cluster.conf"
sqlport=$(awk '$1 == "node" && $2 == 1 { for (i = 3; i < NF; i++) if ($i == "sql") print $(i + 1) }' \
    "$dir/cluster.conf" | sed 's/.*://')
[ -n "$sqlport" ] || { echo "pgbench-compare: node 1 has no sql address in $CONF" >&2; exit 1; }
nines_up=1
tools/cluster.sh start "$build" "$dir/cluster.conf" "$dir/cluster" >/dev/null ||
    { echo "pgbench-compare: tools/cluster.sh start failed" >&2; exit 1; }
"$BIN/ninesctl" --config "$dir/cluster.conf" status --wait-healthy 20 >/dev/null 2>&1 ||
    { echo "pgbench-compare: the ninesdb cluster did not become healthy (logs: KEEP=1)" >&2; exit 1; }
echo "ninesdb: 4-node cluster ($CONF on ports $base-$((base + 4)), SQL on node 1 127.0.0.1:$sqlport)"
# the file's login (the embedded default: admin, its password in the
# owner-only file tools/cluster.sh made); trust files: any name
nuser=$(awk '$1 == "client_user" { print $2 }' "$dir/cluster.conf")
npwfile=$(awk '$1 == "client_password_file" { print $2 }' "$dir/cluster.conf")
if [ -n "$npwfile" ] && [ -r "$npwfile" ]; then
    PGPASSWORD=$(head -n 1 "$npwfile")
    export PGPASSWORD # the PostgreSQL side logs in over its socket without one
fi
nines_args=(-h 127.0.0.1 -p "$sqlport" -U "${nuser:-nines}" nines)
"$PGBENCH" -q -i -s "$SCALE" "${nines_args[@]}" >"$dir/nines-init.log" 2>&1 ||
    { cat "$dir/nines-init.log"; echo "pgbench-compare: pgbench -i through ninesdb's SQL front end failed" >&2; exit 1; }
echo "ninesdb: pgbench -i -s $SCALE: $(grep -E '^done in' "$dir/nines-init.log" || true)"
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the runs ----------------------------------------------------------------
out=$dir/results
: >"$out"
bad=0
# one SIDE CLIENTS ARGS...: a run; appends "side clients tps p50 p99 failed"
one() {
    local side=$1 c=$2 j f tps p50 p99 failed rc
    shift 2
    j=$(( c < 2 ? c : 2 ))
    f=$dir/$side-c$c
    rm -f "$f".log.*
    "$PGBENCH" -n -M prepared -c "$c" -j "$j" -T "$DURATION" -l --log-prefix="$f.log" "$@" \
        >"$f.out" 2>&1
    rc=$?
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$f.out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\) .*/\1/p' "$f.out")
    # column 3: the transaction's latency in us; sorted, the nearest-rank percentiles
    read -r p50 p99 < <(cat "$f".log.* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n |
        awk '{ v[NR] = $1 }
             function rank(p,   r) { r = int(p * NR); if (r < p * NR) r++; if (r < 1) r = 1; return v[r] }
             END { if (NR) printf "%.3f %.3f\n", rank(0.50) / 1000, rank(0.99) / 1000; else print "? ?" }')
    echo "$side $c ${tps:-?} $p50 $p99 ${failed:-?}" >>"$out"
    if [ $rc != 0 ] || [ -z "$tps" ] || { [ "$side" = nines ] && [ "${failed:-x}" != 0 ]; }; then
        echo "--- $side, $c clients: pgbench exit status $rc, failed transactions ${failed:-?}:" >&2
        grep -v '^progress' "$f.out" | head -n 40 >&2
        bad=1
    fi
    rm -f "$f".log.*
}
for c in $CLIENT_COUNTS; do
    one nines "$c" "${nines_args[@]}"
    [ $pg = 1 ] && one pg "$c" -h "$pgdir" -p "$pgport" -U postgres postgres
done

load1=$(cut -d' ' -f1-3 /proc/loadavg)
# the TPC-B invariant through ninesdb's SQL front end
sums=$(psql -X -At "${nines_args[@]}" -c "select sum(abalance) from pgbench_accounts" \
    -c "select sum(tbalance) from pgbench_tellers" -c "select sum(bbalance) from pgbench_branches" \
    -c "select sum(delta) from pgbench_history" 2>&1 | tr '\n' ' ')
inv=ok
echo "$sums" | awk 'NF == 4 && $1 ~ /^-?[0-9]+$/ { exit !($1 == $2 && $2 == $3 && $3 == $4) } { exit 1 }' ||
    inv=FAILED
tools/cluster.sh stop "$build" "$dir/cluster.conf" "$dir/cluster" >/dev/null 2>&1
nines_up=0
for d in $pg_up; do "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1; done
pg_up=""
rtt=$("$BIN/net_rtt" --quick 2>/dev/null |
    sed -n 's/^  raw TCP ping-pong (blocking) *\([0-9.]*\) *\([0-9.]*\).*/raw TCP p50 \1 us, p99 \2 us/p' || true)

# --- the table -----------------------------------------------------------------
echo
echo "pgbench -M prepared, TPC-B scale $SCALE, $DURATION s per run, interleaved; p50/p99 from -l logs"
if [ $pg = 1 ]; then
    echo "PostgreSQL: primary + synchronous streaming standby (synchronous_commit on, fsync on)"
else
    echo "PostgreSQL skipped: $pg_why"
fi
printf '%7s | %11s %9s %9s | %11s %9s %9s | %s\n' clients "nines TPS" "p50 ms" "p99 ms" \
    "PG TPS" "p50 ms" "p99 ms" "nines/PG TPS"
awk '
    $1 == "nines" { n[$2] = $3 " " $4 " " $5; order[++k] = $2; f[$2] = $6 }
    $1 == "pg" { p[$2] = $3 " " $4 " " $5 }
    END {
        for (i = 1; i <= k; i++) {
            c = order[i]; split(n[c], a, " ")
            if (c in p) { split(p[c], b, " ")
                r = (b[1] + 0 > 0 && a[1] ~ /^[0-9.]+$/) ? sprintf("%.2f", a[1] / b[1]) : "?" }
            else { b[1] = b[2] = b[3] = "-"; r = "-" }
            printf "%7s | %11s %9s %9s | %11s %9s %9s | %s\n", c, a[1], a[2], a[3], b[1], b[2], b[3], r
        }
    }' "$out"
echo "ninesdb failed transactions: $(awk '$1 == "nines" { printf "%s%s clients %s", s, $2, $6; s = ", " }' "$out")"
echo "TPC-B invariant through ninesdb SQL (accounts tellers branches history): $sums-> $inv"
echo "round-trip floor (net_rtt --quick): $rtt"
echo "load average: before the runs $load0, after $load1 (1, 5, 15 min)"
[ "$inv" = ok ] || { echo "pgbench-compare: the TPC-B invariant does not hold through SQL" >&2; bad=1; }
[ $bad = 0 ] || { echo "pgbench-compare: a run failed (above)" >&2; exit 1; }
exit 0
