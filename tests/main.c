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

/* Every suite, in the order they run. */
static const struct {
    const char *name;
    Suite *(*make)(void);
} SUITES[] = {
    {"idx", idx_suite},         {"gemm", gemm_suite},   {"lstm", lstm_suite},
    {"parallel", parallel_suite}, {"optim", optim_suite}, {"cli", cli_suite},
    {"train", train_suite},     {"reliability", reliability_suite},
    {"torch", torch_suite},     {"safetensors", safetensors_suite},
    {"image", image_suite},     {"tools", tools_suite}, {"dist", dist_suite},
    {"series", series_suite},   {"bf16", bf16_suite},
};
#define NSUITES (sizeof SUITES / sizeof *SUITES)

/* Adds the suites that PARLSTM_TEST_SUITES names (separated by spaces or
 * commas; tests/mutants.sh runs a mutant's area first), or all of them
 * when it is unset or empty. Returns 0, or -1 for a name that is no
 * suite's. */
static int add_suites(SRunner *sr)
{
    const char *list = getenv("PARLSTM_TEST_SUITES");
    int want[NSUITES] = {0}, all = !list || !list[strspn(list, " ,")];
    for (const char *p = list; !all && *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, " ,"), k = 0;
        while (k < NSUITES && !(strlen(SUITES[k].name) == len && !strncmp(p, SUITES[k].name, len)))
            k++;
        if (len && k == NSUITES) {
            fprintf(stderr, "PARLSTM_TEST_SUITES: no suite '%.*s'\n", (int)len, p);
            return -1;
        }
        if (len)
            want[k] = 1;
        p += len;
    }
    for (size_t k = 0; k < NSUITES; k++)
        if (all || want[k])
            srunner_add_suite(sr, SUITES[k].make());
    return 0;
}

/* OpenBLAS, declared here so that cblas.h variants without it compile. */
extern void openblas_set_num_threads(int n);

int main(void)
{
    /* The library runs OpenBLAS single-threaded inside its workers
     * (trainer.c); the kernel tests that call it directly do the same
     * (OpenBLAS's own threads would also sync in ways ThreadSanitizer
     * cannot see: it reported their writes to C as races under the
     * Haswell kernels). */
    openblas_set_num_threads(1);
    char log[] = "/tmp/parlstm-skips-XXXXXX";
    int lfd = mkstemp(log);
    if (lfd < 0) {
        perror("mkstemp");
        return EXIT_FAILURE;
    }
    close(lfd);
    setenv(TU_SKIP_LOG_ENV, log, 1);
    SRunner *sr = srunner_create(NULL);
    if (add_suites(sr) != 0) {
        unlink(log);
        srunner_free(sr);
        return 2;
    }
    tu_root_begin(); /* every test's directories under one, removed at the end */
    srunner_run_all(sr, CK_NORMAL);
    tu_root_end();
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
