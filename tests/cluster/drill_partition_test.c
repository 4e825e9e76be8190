/* Partition drills with network namespaces (issue 9, tools/drill/README.md):
 * each node a host with its own address on a Linux bridge.
 *
 * Skipped, with a message, only when this machine cannot make network
 * namespaces (not root, no `ip`, no bridge). Otherwise always: the
 * namespace harness itself (tools/drill/drill.sh part-baseline: four nodes
 * in four namespaces, TPC-B with a journal, every check passes; the
 * namespaces and processes are gone afterwards). With
 * NINES_DRILLS_REQUIRED (tests/cluster/drill.h): the 1|3 partition drill
 * (part-1x3): the majority keeps serving and takes over, the isolated node
 * serves nothing (a client pinned to it gets refusals, no
 * acknowledgement), no fragment has two primaries, every acknowledged
 * transaction is present. */
#include "cu_test.h"
#include "drill.h"

#include <unistd.h>

static const char *why_not;

static int setup(void)
{
    if (geteuid() != 0)
        why_not = "not root";
    else if (system("ip netns add nines_probe_$$ >/dev/null 2>&1 && ip netns del nines_probe_$$"))
        why_not = "`ip netns add` does not work here";
    else if (system("ip link add nines_pb$$ type bridge >/dev/null 2>&1 && ip link del nines_pb$$"))
        why_not = "no bridge support";
    return 0;
}

static int ns_count(void)
{
    FILE *p = popen("ip netns list 2>/dev/null | grep -c '^d[0-9]*x[0-9]*n[1-4a]'", "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static void test_harness(void)
{
    if (why_not) {
        drill_skip("partition harness", why_not);
        return;
    }
    static char out[1 << 16];
    int before = ns_count();
    int rc = drill_run("part-baseline", out, sizeof out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "DRILL part-baseline: PASS"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "PASS acknowledged present"));
    /* cleaned up */
    CU_ASSERT_EQUAL(ns_count(), before);
}

static void test_partition_1x3(void)
{
    if (why_not) {
        drill_skip("1|3 partition drill", why_not);
        return;
    }
    if (!drills_required()) {
        drill_skip("1|3 partition drill", "the takeover is not merged yet "
                   "(NINES_DRILLS_REQUIRED unset; tools/drill/README.md)");
        return;
    }
    static char out[1 << 16];
    int rc = drill_run("part-1x3", out, sizeof out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "DRILL part-1x3: PASS"));
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"harness: four nodes in four namespaces, no cut", test_harness},
        {"drill: 1|3 partition under TPC-B", test_partition_1x3},
        {NULL, NULL},
    };
    cu_add_suite("drill_partition", setup, NULL, cases);
}
