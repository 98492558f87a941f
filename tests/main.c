/* The test runner: every suite, one summary. The parallel test harness
 * keeps a test's output in its .log file; Check's summary line is also
 * written to file descriptor 9 when make check opens it (see
 * AM_TESTS_FD_REDIRECT in Makefile.am), so it shows on the terminal. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

int main(void)
{
    SRunner *sr = srunner_create(idx_suite());
    srunner_add_suite(sr, gemm_suite());
    srunner_add_suite(sr, lstm_suite());
    srunner_add_suite(sr, parallel_suite());
    srunner_add_suite(sr, optim_suite());
    srunner_add_suite(sr, cli_suite());
    srunner_add_suite(sr, train_suite());
    srunner_add_suite(sr, reliability_suite());
    srunner_add_suite(sr, torch_suite());
    srunner_add_suite(sr, safetensors_suite());
    srunner_add_suite(sr, image_suite());
    srunner_run_all(sr, CK_NORMAL);
    int run = srunner_ntests_run(sr), failed = srunner_ntests_failed(sr);
    if (fcntl(9, F_GETFD) != -1) {
        int failures = 0, errors = 0;
        TestResult **res = srunner_failures(sr);
        for (int i = 0; i < failed; i++) {
            if (tr_rtype(res[i]) == CK_ERROR)
                errors++;
            else
                failures++;
            dprintf(9, "%s:%d:%s: %s\n", tr_lfile(res[i]), tr_lno(res[i]), tr_tcname(res[i]),
                    tr_msg(res[i]));
        }
        free(res);
        dprintf(9, "%d%%: Checks: %d, Failures: %d, Errors: %d\n",
                run ? 100 * (run - failed) / run : 0, run, failures, errors);
    }
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
