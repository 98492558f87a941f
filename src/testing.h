/* Test hooks of libparlstm: switched on by the program from environment
 * variables (PARLSTM_FAULT, PARLSTM_TEST_SLOW_WRITE_MS,
 * PARLSTM_TEST_DIVERGE) and by the tests.
 * Not part of the API; the library itself reads no environment. */
#ifndef PARLSTM_TESTING_H
#define PARLSTM_TESTING_H

#include "parlstm.h"

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
