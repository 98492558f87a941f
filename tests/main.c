/* The test runner: every suite, one summary. */
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
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
