#include "testutil.h"
Suite *idx_suite(void) { return suite_create("idx"); }
