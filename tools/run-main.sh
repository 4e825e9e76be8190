#!/bin/sh
# The main job on the embedded default: bring up the local 4-node, 2-site
# cluster, wait until it is healthy, show its status, measure node-to-node
# messaging, and stop it again (KEEP=1 leaves it running).
set -e
build=$1 conf=$2 dir=$3
trap 'tools/cluster.sh stop "$build" "$conf" "$dir" >/dev/null' EXIT INT TERM
[ "${KEEP:-0}" = 1 ] && trap - EXIT INT TERM
tools/cluster.sh start "$build" "$conf" "$dir"
echo
if ! "$build/bin/ninesctl" --config "$conf" status --wait-healthy 20; then
    echo "run: the cluster did not become healthy; logs in $dir" >&2
    exit 1
fi
echo
"$build/bin/ninesctl" --config "$conf" ping --node 2 --count 5
echo
"$build/bin/net_rtt" --quick
[ "${KEEP:-0}" = 1 ] && echo "cluster left running: 'make cluster-stop' stops it"
exit 0
