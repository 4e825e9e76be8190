/* Failure drills with real ninesd processes on loopback (issue 9,
 * tools/drill/README.md).
 *
 * Always: the drill harness itself. A TPC-B client with a journal against
 * four nodes, then drill_check: every check passes on a cluster without a
 * fault; a forged journal (an acknowledgement the cluster never saw, an
 * "aborted" transaction that is in the history, an acknowledgement counted
 * twice) fails the right check — the checker is not a stub that passes.
 *
 * With NINES_DRILLS_REQUIRED (tests/cluster/drill.h): SIGKILL of a node
 * holding primaries under TPC-B load (tools/drill/drill.sh kill-primary):
 * every acknowledged transaction present, aborted ones absent, balances,
 * surviving replicas agree, one primary per fragment, the node set without
 * the victim, every fragment served by a primary again. */
#include "clu.h"
#include "cu_test.h"
#include "drill.h"

static struct clu C;

static int setup(void)
{
    if (clu_setup(&C, 4, NULL))
        return 1;
    if (clu_run(&C, "ninesctl", 0, "status --wait-healthy 20"))
        return 1;
    return clu_run(&C, "tpcb_load", 1, "--scale 1");
}

static int teardown(void) { return clu_teardown(&C); }

static char jpath[200], fpath[200];
static unsigned long long forged_t1; /* the forged line's acknowledgement time (µs) */

static void test_harness_pass(void)
{
    snprintf(jpath, sizeof jpath, "%s/load.jnl", C.dir);
    int rc = clu_run(&C, "tpcb", 1, "--clients 2 --window 4 --duration 1 --no-verify --journal %s",
                     jpath);
    CU_ASSERT_EQUAL(rc, 0);
    rc = clu_run(&C, "drill_check", 1, "--journal %s --settle-ms 5000", jpath);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "drill_check: PASS"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "PASS acknowledged present"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "PASS balance invariant"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "PASS replicas agree"));
    CU_ASSERT_PTR_NULL(strstr(C.out, " 0 acknowledged"));
    if (rc)
        printf("\n%s\n", C.out);
}

/* Copy the journal with its first acknowledged line forged:
 * 'x': kept, plus an acknowledgement of a request that never ran (its delta
 *      outside the client's range, so no history row has it);
 * 'r': turned into a refusal ("aborted") although its history row exists. */
static int forge(char how)
{
    FILE *in = fopen(jpath, "r"), *out = fopen(fpath, "w");
    if (!in || !out) {
        if (in)
            fclose(in);
        if (out)
            fclose(out);
        return -1;
    }
    char line[512];
    int done = 0;
    while (fgets(line, sizeof line, in)) {
        int thr;
        unsigned long long seq, txn, t0, t1;
        long long aid, tid, bid, delta, bal;
        if (done || line[0] != 'A' ||
            sscanf(line, "A %d %llu %llu %lld %lld %lld %lld %lld %llu %llu", &thr, &seq, &txn,
                   &aid, &tid, &bid, &delta, &bal, &t0, &t1) != 10) {
            fputs(line, out);
            continue;
        }
        done = 1;
        forged_t1 = t1;
        if (how == 'x') {
            fputs(line, out);
            fprintf(out, "A %d %llu 0 %lld %lld %lld %lld %lld %llu %llu\n", thr, seq + 1000000,
                    aid, tid, bid, delta + 5000000, bal, t0, t1);
        } else {
            fprintf(out, "R %d %llu 0 %lld %lld %lld %lld -16 %llu %llu forged refusal\n", thr,
                    seq, aid, tid, bid, delta, t0, t1);
        }
    }
    fclose(in);
    fclose(out);
    return done ? 0 : -1;
}

static void test_harness_catches_forgery(void)
{
    snprintf(fpath, sizeof fpath, "%s/forged.jnl", C.dir);
    CU_ASSERT_EQUAL_FATAL(forge('x'), 0);
    int rc = clu_run(&C, "drill_check", 1, "--journal %s --settle-ms 0 --no-takeover", fpath);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "FAIL acknowledged present"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "PASS aborted absent"));
    if (rc != 1)
        printf("\n%s\n", C.out);

    CU_ASSERT_EQUAL_FATAL(forge('r'), 0);
    rc = clu_run(&C, "drill_check", 1, "--journal %s --settle-ms 0 --no-takeover", fpath);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "FAIL aborted absent"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "PASS acknowledged present"));
    if (rc != 1)
        printf("\n%s\n", C.out);

    /* a journal full of acknowledgements from a node that should have
     * served nothing */
    rc = clu_run(&C, "drill_check", 1, "--noack-journal %s --settle-ms 0 --no-data", jpath);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "FAIL minority served nothing"));
    /* a node that is up and serving, named as one that must be out */
    rc = clu_run(&C, "drill_check", 1, "--expect-out 2 --settle-ms 0 --no-data");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "FAIL node set"));
}

/* The whole-cluster restart's loss window (drill kill-all): the checker's
 * own self-test on made-up data, then a forged acknowledgement that never
 * ran, read against this live cluster as if every node had been killed
 * --kill-us after it: inside the window it is a measured loss (PASS),
 * outside it, under sync (window 0) or acknowledged by the "restarted"
 * cluster it fails "acknowledged present". */
static void test_harness_loss_window(void)
{
    int rc = clu_run(&C, "drill_check", 1, "--self-test");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "drill_check self-test: PASS"));
    CU_ASSERT_PTR_NULL(strstr(C.out, "self-test FAIL"));
    if (rc)
        printf("\n%s\n", C.out);

    snprintf(fpath, sizeof fpath, "%s/forged-window.jnl", C.dir);
    CU_ASSERT_EQUAL_FATAL(forge('x'), 0);
    CU_ASSERT_FATAL(forged_t1 > 0);
    rc = clu_run(&C, "drill_check", 1, "--journal %s --settle-ms 5000 --kill-us %llu "
                 "--lost-window-ms 300", fpath, forged_t1 + 50000);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "PASS acknowledged present"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "1 missing within the 300 ms loss window"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(C.out, "loss window measured: 1 commits, at most 50.0 ms before the kill"));
    if (rc)
        printf("\n%s\n", C.out);

    /* 5 s before the kill: older than the window */
    rc = clu_run(&C, "drill_check", 1, "--journal %s --settle-ms 0 --no-takeover --kill-us %llu "
                 "--lost-window-ms 300", fpath, forged_t1 + 5000000);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "FAIL acknowledged present"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(C.out, "loss window measured: 1 commits, at most 5000.0 ms before the kill"));
    /* sync: no loss at all */
    rc = clu_run(&C, "drill_check", 1, "--journal %s --settle-ms 0 --no-takeover --kill-us %llu "
                 "--lost-window-ms 0", fpath, forged_t1 + 50000);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "FAIL acknowledged present"));
    /* acknowledged after the restart began */
    rc = clu_run(&C, "drill_check", 1, "--journal %s --settle-ms 0 --no-takeover --kill-us %llu "
                 "--restart-us %llu --lost-window-ms 300", fpath, forged_t1 - 2000000,
                 forged_t1 - 1000000);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "FAIL acknowledged present"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "1 acknowledged by the restarted cluster"));
    /* a window without the kill's time is a usage error */
    rc = clu_run(&C, "drill_check", 1, "--journal %s --lost-window-ms 300", fpath);
    CU_ASSERT_EQUAL(rc, 2);
}

/* The drill proper: tools/drill/drill.sh kill-primary (fresh cluster of its
 * own). */
static void test_kill_primary(void)
{
    if (!drills_required()) {
        drill_skip("kill-primary drill", "the takeover is not merged yet (NINES_DRILLS_REQUIRED "
                   "unset; tools/drill/README.md)");
        return;
    }
    static char out[1 << 16];
    int rc = drill_run("kill-primary", out, sizeof out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "DRILL kill-primary: PASS"));
}

/* Every node killed at once and restarted from disk (tools/drill/drill.sh
 * kill-all; fresh cluster of its own), under disk_log async (acknowledged
 * commits lost only inside the loss window before the kill) and sync (none
 * lost). */
static void test_kill_all(void)
{
    if (!killall_required()) {
        drill_skip("kill-all drill", "the whole-cluster restart is not merged yet "
                   "(NINES_KILLALL_REQUIRED unset; tools/drill/README.md)");
        return;
    }
    static char out[1 << 16];
    static const char *const policies[] = {"async", "sync"};
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        setenv("KILLALL_POLICY", policies[i], 1);
        int rc = drill_run("kill-all", out, sizeof out);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "DRILL kill-all: PASS"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "loss window measured: "));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "PASS serves after the restart"));
    }
    unsetenv("KILLALL_POLICY");
}

/* Bad disks at a whole-cluster restart (kill-all-bad-ckpt / -bad-log):
 * node 1's newest disk log segment truncated while everything is down; its
 * recovery refuses it (the durable bound) and the other site restarts the
 * cluster, node 1 rebuilt from it. */
static void test_kill_all_bad_disk(void)
{
    if (!killall_required()) {
        drill_skip("kill-all-bad-log drill", "the whole-cluster restart is off "
                   "(NINES_KILLALL_REQUIRED=0)");
        return;
    }
    static char out[1 << 16];
    int rc = drill_run("kill-all-bad-log", out, sizeof out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "DRILL kill-all-bad-log: PASS"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "PASS damage refused"));
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"harness: journal and checker pass without a fault", test_harness_pass},
        {"harness: the checker fails forged journals", test_harness_catches_forgery},
        {"harness: the loss window of a whole-cluster kill", test_harness_loss_window},
        {"drill: SIGKILL of a node holding primaries under TPC-B", test_kill_primary},
        {"drill: every node killed at once and restarted from disk", test_kill_all},
        {"drill: a truncated disk log at a whole-cluster restart", test_kill_all_bad_disk},
        {NULL, NULL},
    };
    cu_add_suite("drill_kill", setup, teardown, cases);
}
