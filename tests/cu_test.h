/* Shared CUnit harness: each tests/unit/X_test.c and tests/cluster/X_test.c
 * defines cu_register(), adding its suites; tests/cu_main.c runs them all
 * and exits non-zero on any failure. Optional argv[1]: run only that suite. */
#ifndef NINES_CU_TEST_H
#define NINES_CU_TEST_H
#include <CUnit/CUnit.h>
#include <stdlib.h>

void cu_register(void);

/* Add a suite with setup/teardown (may be NULL) and its NULL-terminated tests. */
struct cu_case { const char *name; void (*fn)(void); };
void cu_add_suite(const char *name, int (*init)(void), int (*fini)(void),
                  const struct cu_case *cases);

/* Seed for randomized tests: env NINES_SEED or a fixed default; printed. */
unsigned long cu_seed(unsigned long dflt);
#endif
