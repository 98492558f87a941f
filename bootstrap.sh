#!/bin/sh
# Sets up a fresh Debian/Ubuntu checkout: installs the packages parlstm
# needs (when run as root or with sudo), generates ./configure, and fetches
# MNIST into data/mnist. Safe to run again.
set -eu
cd "$(dirname "$0")"

PKGS="build-essential autoconf automake libtool pkg-config libopenblas-dev zlib1g-dev check libjansson-dev libpng-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="none"; fi
    if [ "$SUDO" = none ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap.sh: missing packages:$missing" >&2
        echo "bootstrap.sh: install them (as root: apt-get install$missing) and run me again" >&2
        exit 1
    fi
    echo "bootstrap.sh: installing$missing" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

echo "bootstrap.sh: autoreconf -fi" >&2
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi

if [ "${PARLSTM_SKIP_DATA:-0}" != 1 ]; then
    sh data/fetch-mnist.sh || echo "bootstrap.sh: MNIST not fetched; 'make check' does not need it, 'parlstm train' does" >&2
fi
