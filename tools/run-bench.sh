#!/bin/sh
# Run every benchmark with its full settings; each prints its own figures.
set -e
build=$1
for b in net_rtt kern_btree kern_lock kern_log kern_vs_lmdb; do
    [ -x "$build/bin/$b" ] || continue
    echo "== $b"
    "$build/bin/$b"
    echo
done
