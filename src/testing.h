/* Test hooks of libparlstm: faults the test suite injects to see the
 * program handle them (a slow or failing write, a NaN in the gradient,
 * ranks that diverge). Compiled in when config.h defines PL_TEST_HOOKS
 * (./configure's default; --disable-test-hooks compiles them out for
 * release builds: the setters then do nothing, the library checks
 * nothing, and pl_test_hooks_built() says 0, so that the tests that need a
 * hook skip it by name). The library reads no environment: the program's
 * one reader of PARLSTM_TEST_* is src/cli/testhooks.c. Not part of the
 * API. */
#ifndef PARLSTM_TESTING_H
#define PARLSTM_TESTING_H

#include "parlstm.h"

/* 1 when the hooks are compiled in, else 0. */
int pl_test_hooks_built(void);

/* Every atomic write pauses ms milliseconds between writing its temporary
 * file and renaming it (0 = off), widening the window in which a SIGKILL
 * lands in the middle of a write. Process-wide; set it before writing. */
void pl_test_set_write_delay(int ms);

/* A full disk under directory dir (NULL = off): an atomic write of a file
 * in dir writes half its bytes, then fails as write(2) does on a full
 * disk (ENOSPC). Process-wide; set it before writing. */
void pl_test_set_full_dir(const char *dir);

/* Fault injection: after step `step`'s backward pass (0-based, as passed
 * to pl_trainer_step; -1 = never), a NaN goes into the gradient of
 * parameter group `group` (pl_param_groups order). */
void pl_trainer_set_fault(pl_trainer *tr, long step, int group);

/* With several ranks: at the start of step `step` (-1 = never) this rank
 * changes one of its parameters, which the ranks' checksum must catch. */
void pl_trainer_set_diverge(pl_trainer *tr, long step);

#endif
