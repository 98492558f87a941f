#!/bin/sh
# The kill test: train with checkpoints, SIGKILL the run at random moments
# (some during a checkpoint write), resume each time, and check that the
# final weights equal an uninterrupted run's, bit for bit.
#   tests/kill-resume.sh [PARLSTM [KILLS]]     (defaults: ./parlstm, 12)
set -eu
bin=${1:-./parlstm}
kills_wanted=${2:-12}
dir=$(mktemp -d "${TMPDIR:-/tmp}/parlstm-kill.XXXXXX")
trap 'rm -rf "$dir"' EXIT

# A random data set: N images of 12 rows x 10 columns, labels 0..4.
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
make_set() { # PREFIX N
    { be32 2051; be32 "$2"; be32 12; be32 10; head -c $(($2 * 120)) /dev/urandom; } \
        >"$dir/$1-images-idx3-ubyte"
    { be32 2049; be32 "$2"; tr -dc '\000-\004' </dev/urandom | head -c "$2"; } \
        >"$dir/$1-labels-idx1-ubyte"
}
make_set train 600
make_set t10k 100

run="train --data $dir --val 0 --batch 20 --steps 12000 --hidden 32 --workers 2 --threads 1 --quiet"
"$bin" $run --save "$dir/reference.bin" >/dev/null

ck="$dir/state.ckpt"
kills=0
in_write=0
starts=0
while :; do
    resume=""
    [ -f "$ck" ] && resume="--resume $ck"
    # every other run writes slowly, so that kills land inside writes
    slow=0
    [ $((starts % 2)) = 1 ] && slow=25
    starts=$((starts + 1))
    PARLSTM_TEST_SLOW_WRITE_MS=$slow "$bin" $run --checkpoint "$ck" --checkpoint-every 9 \
        $resume --save "$dir/final.bin" >"$dir/out" 2>"$dir/err" &
    pid=$!
    if [ "$kills" -lt "$kills_wanted" ]; then
        sleep "0.$(shuf -i 10-45 -n 1)"
        if kill -9 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            kills=$((kills + 1))
            if ls "$ck".tmp.* >/dev/null 2>&1; then
                in_write=$((in_write + 1))
                note="during a checkpoint write"
            else
                note="between writes"
            fi
            step=$(od -An -t u8 -j 96 -N 8 "$ck" 2>/dev/null | tr -d ' ' || echo none)
            echo "kill $kills: SIGKILL $note; checkpoint at step ${step:-none}"
            continue
        fi
    fi
    if ! wait "$pid"; then
        echo "kill-resume: a resumed run failed:" >&2
        cat "$dir/err" >&2
        exit 1
    fi
    if [ "$kills" -lt "$kills_wanted" ]; then
        echo "kill-resume: FAILED: training finished after only $kills kills; make it longer" >&2
        exit 1
    fi
    break
done

if cmp -s "$dir/reference.bin" "$dir/final.bin"; then
    echo "kill-resume: $kills SIGKILLs ($in_write during a checkpoint write), $starts starts:" \
         "final weights bitwise identical to the uninterrupted run"
else
    echo "kill-resume: FAILED: final weights differ from the uninterrupted run" >&2
    exit 1
fi
if [ "$in_write" -lt 1 ]; then
    echo "kill-resume: FAILED: no kill landed during a checkpoint write" >&2
    exit 1
fi
