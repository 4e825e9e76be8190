#!/bin/sh
# Start or stop a local cluster: tools/cluster.sh start|stop BUILD CONF DIR
# start: one ninesd per node of CONF and, when CONF has an
# `arbitrator HOST:PORT [data ADIR]` line, the arbitrator (ninesarb; its
# grant record in ADIR, else in DIR/arbitrator); logs and pid files in DIR
# (nodeID.log/.pid, arbitrator.log/.pid).
# stop: the nodes, then the arbitrator (SIGTERM; each waited for up to 5 s).
set -e
cmd=$1 build=$2 conf=$3 dir=$4
mkdir -p "$dir"
ids=$(awk '$1 == "node" { print $2 }' "$conf")
arb=$(awk '$1 == "arbitrator" { print $2 }' "$conf")
arb_data=$(awk '$1 == "arbitrator" && $3 == "data" { print $4 }' "$conf")

# stop_pid NAME PIDFILE: SIGTERM, wait up to 5 s for it to go.
stop_pid() {
    [ -f "$2" ] || return 0
    pid=$(cat "$2")
    if kill "$pid" 2>/dev/null; then
        i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
        echo "stopped $1"
    fi
    rm -f "$2"
}

case "$cmd" in
start)
    # a cluster key named but not made yet: make it (mode 0600)
    key=$(awk '$1 == "cluster_key" { print $2 }' "$conf")
    if [ -n "$key" ] && [ ! -e "$key" ]; then
        mkdir -p "$(dirname "$key")"
        "$build/bin/ninesctl" keygen "$key"
    fi
    if [ -n "$arb" ]; then
        if [ -f "$dir/arbitrator.pid" ] && kill -0 "$(cat "$dir/arbitrator.pid")" 2>/dev/null; then
            echo "arbitrator already running (pid $(cat "$dir/arbitrator.pid"))"
        else
            [ -n "$arb_data" ] || arb_data="$dir/arbitrator"
            mkdir -p "$arb_data"
            "$build/bin/ninesarb" --config "$conf" --data "$arb_data" >>"$dir/arbitrator.log" 2>&1 &
            echo $! > "$dir/arbitrator.pid"
            echo "started arbitrator $arb (pid $!, log $dir/arbitrator.log, grant record in $arb_data)"
        fi
    fi
    # the nodes' data folders ("node ID site S HOST:PORT data DIR")
    for d in $(awk '$1 == "node" && $6 == "data" { print $7 }' "$conf"); do
        mkdir -p "$d"
    done
    for id in $ids; do
        if [ -f "$dir/node$id.pid" ] && kill -0 "$(cat "$dir/node$id.pid")" 2>/dev/null; then
            echo "node $id already running (pid $(cat "$dir/node$id.pid"))"
            continue
        fi
        "$build/bin/ninesd" --config "$conf" --node "$id" >>"$dir/node$id.log" 2>&1 &
        echo $! > "$dir/node$id.pid"
        echo "started node $id (pid $!, log $dir/node$id.log)"
    done
    # the first admin (README.md "SECURITY"): with a cluster key (ninesctl is
    # then an admin link) and a client_user whose password file does not
    # exist yet, make a random password there (owner-only) and give the
    # user it, as an admin
    user=$(awk '$1 == "client_user" { print $2 }' "$conf")
    pwfile=$(awk '$1 == "client_password_file" { print $2 }' "$conf")
    if [ -n "$key" ] && [ -n "$user" ] && [ -n "$pwfile" ] && [ ! -e "$pwfile" ]; then
        "$build/bin/ninesctl" --config "$conf" status --wait-healthy 30 >/dev/null || {
            echo "cluster.sh: the cluster did not become healthy: no admin user made" >&2
            exit 1
        }
        mkdir -p "$(dirname "$pwfile")"
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '\n=' >"$pwfile.tmp" &&
            echo >>"$pwfile.tmp")
        if ! "$build/bin/ninesctl" --config "$conf" user add "$user" --role admin \
            <"$pwfile.tmp" >/dev/null 2>"$dir/user-add.err"; then
            # a dictionary from an earlier run may have the user already
            "$build/bin/ninesctl" --config "$conf" user passwd "$user" <"$pwfile.tmp" >/dev/null || {
                cat "$dir/user-add.err" >&2
                rm -f "$pwfile.tmp"
                exit 1
            }
        fi
        mv "$pwfile.tmp" "$pwfile"
        echo "admin user '$user' created; its password is in $pwfile (readable by you only)"
    fi ;;
stop)
    for id in $ids; do
        stop_pid "node $id" "$dir/node$id.pid"
    done
    # also an arbitrator started from an earlier version of CONF
    stop_pid arbitrator "$dir/arbitrator.pid" ;;
*) echo "usage: $0 start|stop BUILD CONF DIR" >&2; exit 2 ;;
esac
