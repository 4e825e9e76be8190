#!/bin/sh
# Start or stop a local cluster: tools/cluster.sh start|stop BUILD CONF DIR
# start: one ninesd per node of CONF, logs and pid files in DIR.
set -e
cmd=$1 build=$2 conf=$3 dir=$4
mkdir -p "$dir"
ids=$(awk '$1 == "node" { print $2 }' "$conf")
case "$cmd" in
start)
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
    done ;;
stop)
    for id in $ids; do
        [ -f "$dir/node$id.pid" ] || continue
        pid=$(cat "$dir/node$id.pid")
        if kill "$pid" 2>/dev/null; then
            i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
            echo "stopped node $id"
        fi
        rm -f "$dir/node$id.pid"
    done ;;
*) echo "usage: $0 start|stop BUILD CONF DIR" >&2; exit 2 ;;
esac
