# Shared by the benchmark scripts that run a local 4-node cluster
# (restart.sh, repair.sh): sourced, not run. Sets BIN (NINES_BIN or
# build/bin, absolute), PIDS (every process started: bench_cleanup kills
# them) and provides:
#   bench_need NAME PROG...   exit 2 unless every build/bin program exists
#   bench_root PREFIX         ROOT: a new /tmp/PREFIX.XXXXXX folder, removed
#                             at exit unless KEEP=1; processes killed at exit
#   bench_base                a base port with the 5 ports after it free for
#                             TCP and UDP (arbitrator + 4 nodes), on stdout
#   bench_conf DIR NAME [LINE...]  DIR/cluster.conf: cluster NAME, the extra
#                             LINEs, the arbitrator and 4 nodes on loopback
#                             (sites 0 1 0 1), data DIR/nodeN
bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${NINES_BIN:-build/bin}
case "$BIN" in /*) ;; *) BIN="$bench_top/$BIN" ;; esac
PIDS=()

bench_cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    PIDS=()
}

bench_need() {
    local name=$1 x
    shift
    for x in "$@"; do
        [ -x "$BIN/$x" ] || { echo "$name: $BIN/$x is missing (make first)" >&2; exit 2; }
    done
}

bench_root() {
    ROOT=$(mktemp -d "/tmp/$1.XXXXXX")
    trap 'bench_cleanup; [ "${KEEP:-0}" = 1 ] || rm -rf "$ROOT"' EXIT
    trap 'exit 130' INT TERM
}

bench_base() {
    local used try base clash k
    used=$(cat /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null |
        awk 'NR > 1 { split($2, a, ":"); h = toupper(a[2]); v = 0
            for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1
            print v }')
    for try in $(seq 0 50); do
        base=$(( 21000 + ($$ * 19 + try * 107 + RANDOM) % 25000 ))
        clash=0
        for k in 0 1 2 3 4; do printf '%s\n' $used | grep -qx "$(( base + k ))" && clash=1; done
        [ $clash = 0 ] && break
    done
    echo "$base"
}

bench_conf() {
    local dir=$1 name=$2 base i
    shift 2
    base=$(bench_base)
    {
        echo "cluster $name"
        local l
        for l in "$@"; do echo "$l"; done
        echo "arbitrator 127.0.0.1:$base"
        for i in 1 2 3 4; do
            mkdir -p "$dir/node$i"
            echo "node $i site $(( (i - 1) % 2 )) 127.0.0.1:$(( base + i )) data $dir/node$i"
        done
    } >"$dir/cluster.conf"
}
