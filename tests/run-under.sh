#!/bin/sh
# The parlstm program under an emulator, for the tests of a cross build:
# with make check TEST_RUNNER=CMD, the tests start $PARLSTM_BIN = this
# script, which runs CMD (e.g. qemu-aarch64) on the program just built.
# exec keeps the process id, so the tests' signals reach the emulator,
# which passes them on to the program.
exec $PARLSTM_RUN "$PARLSTM_RUN_BIN" "$@"
