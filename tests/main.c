/* The test runner: every suite, one summary. The parallel test harness
 * keeps a test's output in its .log file; Check's summary line is also
 * written to file descriptor 9 when make check opens it (see
 * AM_TESTS_FD_REDIRECT in Makefile.am), so it shows on the terminal.
 * Tests that cannot run here say so (tu_skip); the skips are counted and
 * listed after the summary. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* Lists the skips the tests wrote into log, on stderr and fd 9; returns
 * how many. */
static int report_skips(const char *log, int fd9)
{
    FILE *f = fopen(log, "r");
    char line[1024];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        n++;
        fprintf(stderr, "SKIP: %s", line);
        if (fd9)
            dprintf(9, "SKIP: %s", line);
    }
    if (f)
        fclose(f);
    if (n) {
        fprintf(stderr, "Skipped: %d (tests or parts of tests that cannot run here)\n", n);
        if (fd9)
            dprintf(9, "Skipped: %d (tests or parts of tests that cannot run here)\n", n);
    }
    return n;
}

int main(void)
{
    char log[] = "/tmp/parlstm-skips-XXXXXX";
    int lfd = mkstemp(log);
    if (lfd < 0) {
        perror("mkstemp");
        return EXIT_FAILURE;
    }
    close(lfd);
    setenv(TU_SKIP_LOG_ENV, log, 1);
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
    srunner_add_suite(sr, tools_suite());
    srunner_add_suite(sr, dist_suite());
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
    report_skips(log, fcntl(9, F_GETFD) != -1);
    unlink(log);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
