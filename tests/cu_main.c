/* CUnit runner shared by every test program. */
#include "cu_test.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

static const char *only_suite;

/* CUnit does not call a suite's cleanup when its init fails: a cluster
 * test whose setup started nodes and then failed would leave them running
 * (holding ports the next test picks). Each suite's init is wrapped to
 * clean up itself when it fails. */
#define CU_SLOTS 4
static struct { int (*init)(void); int (*fini)(void); } slot[CU_SLOTS];
static int slot_init(int i)
{
    int rc = slot[i].init();
    if (rc && slot[i].fini)
        (void)slot[i].fini();
    return rc;
}
static int init0(void) { return slot_init(0); }
static int init1(void) { return slot_init(1); }
static int init2(void) { return slot_init(2); }
static int init3(void) { return slot_init(3); }
static int (*const slot_fn[CU_SLOTS])(void) = {init0, init1, init2, init3};
static int nslots;

void cu_add_suite(const char *name, int (*init)(void), int (*fini)(void),
                  const struct cu_case *cases)
{
    if (only_suite && strcmp(only_suite, name) != 0)
        return;
    int (*wrapped)(void) = init;
    if (init && fini && nslots < CU_SLOTS) {
        slot[nslots].init = init;
        slot[nslots].fini = fini;
        wrapped = slot_fn[nslots++];
    }
    CU_pSuite s = CU_add_suite(name, wrapped, fini);
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
