#include "testutil.h"
Suite *gemm_suite(void) { return suite_create("gemm"); }
