#include "testutil.h"
Suite *parallel_suite(void) { return suite_create("parallel"); }
