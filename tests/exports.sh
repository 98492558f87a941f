#!/bin/sh
# libparlstm.so exports exactly the functions that include/parlstm.h
# declares: every pl_*( in the header is a defined dynamic symbol, and
# nothing else is. Skipped (77) when no shared library was built.
srcdir=${PARLSTM_SRCDIR:-.}
so=src/.libs/libparlstm.so
if [ ! -f "$so" ]; then
    echo "SKIP: no $so (configured with --disable-shared?)"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/parlstm-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$so" | awk '{ print $3 }' | sort -u >"$tmp/exported"
grep -o '\bpl_[a-z0-9_]*(' "$srcdir/include/parlstm.h" | tr -d '(' | sort -u >"$tmp/declared"
echo "$(wc -l <"$tmp/exported") symbols exported, $(wc -l <"$tmp/declared") functions declared"
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
    echo "exported but not declared in parlstm.h:"
    comm -23 "$tmp/exported" "$tmp/declared"
    echo "declared in parlstm.h but not exported:"
    comm -13 "$tmp/exported" "$tmp/declared"
    exit 1
fi
readelf -d "$so" | grep -q 'SONAME.*libparlstm\.so\.[0-9]' || { echo "no soname libparlstm.so.N"; exit 1; }
echo "the exports match the header; $(readelf -d "$so" | grep SONAME | sed 's/.*\[\(.*\)\]/soname \1/')"
