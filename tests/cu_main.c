/* CUnit runner shared by every test program. */
#include "cu_test.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

static const char *only_suite;

void cu_add_suite(const char *name, int (*init)(void), int (*fini)(void),
                  const struct cu_case *cases)
{
    if (only_suite && strcmp(only_suite, name) != 0)
        return;
    CU_pSuite s = CU_add_suite(name, init, fini);
    if (!s) {
        fprintf(stderr, "cannot add suite %s: %s\n", name, CU_get_error_msg());
        exit(2);
    }
    for (const struct cu_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn)) {
            fprintf(stderr, "cannot add test %s: %s\n", c->name, CU_get_error_msg());
            exit(2);
        }
}

unsigned long cu_seed(unsigned long dflt)
{
    const char *env = getenv("NINES_SEED");
    unsigned long s = env ? strtoul(env, NULL, 0) : dflt;
    printf("  (seed %lu; rerun with NINES_SEED=%lu)\n", s, s);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        only_suite = argv[1];
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    cu_register();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "no tests ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
