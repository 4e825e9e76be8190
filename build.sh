#!/bin/sh
# ninesdb set-up and build entry point:
#   ./build.sh run    install missing Debian packages, build, run the main job
#   ./build.sh test   install missing Debian packages, build, run all tests
# Any other arguments are passed to make after the packages are in place.
set -e
cd "$(dirname "$0")"
PKGS="build-essential make pkg-config libibverbs-dev librdmacm-dev libprotobuf-c-dev \
protobuf-c-compiler libjemalloc-dev libcunit1-dev liblmdb-dev libssl-dev \
clang-14 libfuzzer-14-dev libpg-query-dev libpq-dev postgresql-client-15 postgresql-15 openssl"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "build.sh: installing missing Debian packages:$missing"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq $missing
fi
[ $# -gt 0 ] || set -- run
exec make -j"$(nproc)" "$@"
