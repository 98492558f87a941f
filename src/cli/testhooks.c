/* The program's test hooks (src/testing.h), set from the environment: the
 * one place that reads PARLSTM_TEST_* (the tests and tests/kill-resume.sh
 * set them). In a build with --disable-test-hooks nothing is read. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "testing.h"

static const char *test_var(const char *name)
{
    const char *v = pl_test_hooks_built() ? getenv(name) : NULL;
    return v && *v ? v : NULL;
}

void cli_test_hooks_process(void)
{
    /* the kill test: every atomic write pauses before its rename */
    const char *slow = test_var("PARLSTM_TEST_SLOW_WRITE_MS");
    if (slow)
        pl_test_set_write_delay(atoi(slow));
    /* a full disk: writes into this directory fail */
    const char *full = test_var("PARLSTM_TEST_FULL_DIR");
    if (full)
        pl_test_set_full_dir(full);
}

void cli_test_hooks_trainer(pl_trainer *tr, int rank)
{
    /* "STEP,GROUP": a NaN into that parameter group's gradient */
    const char *fault = test_var("PARLSTM_TEST_FAULT");
    long step;
    int n;
    if (fault && sscanf(fault, "%ld,%d", &step, &n) == 2)
        pl_trainer_set_fault(tr, step, n);
    /* "RANK,STEP": that rank's parameters drift at that step */
    const char *diverge = test_var("PARLSTM_TEST_DIVERGE");
    if (diverge && sscanf(diverge, "%d,%ld", &n, &step) == 2 && n == rank)
        pl_trainer_set_diverge(tr, step);
}

const char *cli_test_dump_dir(void)
{
    return test_var("PARLSTM_TEST_DUMP_PARAMS");
}
