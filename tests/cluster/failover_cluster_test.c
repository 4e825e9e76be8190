/* Client failover with exactly-once outcomes, on four real ninesd
 * processes (2 sites) with the node-set protocol and takeover: a client
 * with failover on runs pipelined TPC-B calls against node 1 — every call
 * with its own account and its own delta — and node 1 is hit under that
 * load: killed (SIGKILL), and, restarted as a member without current
 * replicas, hung (SIGSTOP) then resumed (SIGCONT) outside the node set. The
 * client moves to another node and resolves every call it had in flight
 * (committed / aborted / NINES_EINDOUBT), sending again the ones that never
 * ran. Then, read through the surviving nodes: every call the client saw
 * committed has its history row under the transaction id it was given, no
 * call reported aborted has one, none has two, calls in doubt have at most
 * one; each call's account holds its delta exactly when it committed;
 * sum(account) = sum(teller) = sum(branch) = sum(history.delta); no
 * fragment has two primaries and no standby differs from its primary.
 *
 * When another node leaves the node set during a test (a second failure:
 * on a loaded machine a node whose executor stalls is evicted), its
 * fragments may be down: the read-back is then reported NOT VERIFIED
 * instead of failing (the outcome checks still run). */
#include <stdbool.h>

#include "clu.h"
#include "cu_test.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nines/nines.h"

static struct clu C;

#define MAXREQ 20000
#define WINDOW 16

struct call {
    int64_t aid, tid, bid, delta;
    int done, rc;
    struct nines_answer_info info;
    bool in_flight_at_kill;
    char detail[400];
};

static struct {
    nines_conn *c;
    struct call calls[MAXREQ];
    int n, done;
    int64_t aid_base;          /* each call its own account: aid_base + permuted index */
    int64_t delta_base;        /* each call its own delta: delta_base + index + 1 */
} R;

static int setup(void)
{
    if (clu_setup(&C, 4, "lock_timeout_ms 500\n"))
        return 1;
    if (clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") != 0)
        return 1;
    return clu_run(&C, "tpcb_load", 1, "--scale 1") == 0 ? 0 : 1;
}

static int teardown(void) { return clu_teardown(&C); }

static void addr_of(int id, char *buf, size_t n)
{
    snprintf(buf, n, "127.0.0.1:%d", C.base_port + id);
}

static void on_done(void *arg, int rc, int64_t value, const char *detail)
{
    struct call *k = arg;
    k->done++;
    k->rc = rc;
    nines_conn_answer_info(R.c, &k->info);
    R.done++;
    snprintf(k->detail, sizeof k->detail, "%s", detail ? detail : "");
    (void)value;
}

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static int submit_one(void)
{
    if (R.n >= MAXREQ)
        return 0;
    struct call *k = &R.calls[R.n];
    k->aid = R.aid_base + (int64_t)(((uint64_t)R.n * 7919u) % 50000u);
    k->tid = (int64_t)(rnd() % 10);
    k->bid = 0;
    k->delta = R.delta_base + R.n + 1; /* unique: a history row names its call */
    int rc = nines_tpcb_async(R.c, k->aid, k->tid, k->bid, k->delta, on_done, k);
    if (rc == 0)
        R.n++;
    return rc;
}

static int64_t balance_of(nines_conn *c, int64_t aid, int *rc)
{
    nines_txn *t;
    nines_row *row = NULL;
    struct nines_value k = nines_v_int64(aid);
    *rc = nines_txn_begin(c, &t);
    if (*rc)
        return 0;
    *rc = nines_txn_get(t, "account", &k, 1, &row);
    int64_t bal = *rc == 0 ? nines_row_value(row, 2).u.i64 : 0;
    nines_txn_rollback(t);
    return bal;
}

/* Keep WINDOW calls in flight until `until` completions or the deadline. */
static void run_until(int until, uint64_t deadline_ms)
{
    while (R.done < until && nclock_ms() < deadline_ms) {
        while ((int)nines_conn_inflight(R.c) < WINDOW && R.n < MAXREQ)
            if (submit_one())
                break;
        nines_poll(R.c, 50);
    }
}

/* ---- reading back ----------------------------------------------------- */

struct sum {
    int col;
    int64_t sum, last;
    uint64_t rows;
    /* history: (hid, delta) of every row */
    int64_t *hid, *delta;
    size_t nhist, caphist;
};

static int sum_row(void *arg, const nines_row *r)
{
    struct sum *s = arg;
    s->last = nines_row_value(r, 0).u.i64;
    s->sum += nines_row_value(r, (size_t)s->col).u.i64;
    s->rows++;
    if (s->hid && s->nhist < s->caphist) {
        s->hid[s->nhist] = s->last;
        s->delta[s->nhist++] = nines_row_value(r, 4).u.i64;
    }
    return 0;
}

/* Sum column col of every row of table (pages of 1000 by primary key). */
static int scan_sum(nines_conn *c, const char *table, struct sum *s)
{
    int64_t lo = INT64_MIN;
    for (;;) {
        nines_txn *t;
        if (nines_txn_begin(c, &t))
            return -1;
        struct nines_value k = nines_v_int64(lo);
        int n = nines_txn_scan(t, table, &k, 1, NULL, 0, 1000, sum_row, s);
        nines_txn_rollback(t);
        if (n < 0) {
            printf("\n  scan of %s: %s\n", table, nines_conn_errdetail(c));
            return n;
        }
        if (n < 1000)
            return 0;
        lo = s->last + 1;
    }
}


/* Nodes other than node 1 that are not current members (a second failure
 * during the test: on this shared machine, a node evicted for a stalled
 * executor). Their fragments may be down: the data cannot be read back. */
static uint64_t others_out(void)
{
    (void)clu_run(&C, "ninesctl", 0, "replicas --json");
    const char *p = strstr(C.out, "\"current\":[");
    if (!p)
        return 0;
    uint64_t cur = 0;
    for (p += 11; *p && *p != ']'; p++)
        if (*p >= '0' && *p <= '9')
            cur |= (uint64_t)1 << (strtoul(p, (char **)&p, 10) - 1), p--;
    return ~cur & 0xe; /* nodes 2..4 */
}

/* Run TPC-B calls against node 1 with failover on, hit node 1 with `sig`
 * after 300 completions with WINDOW calls in flight, keep the load going
 * 200 more calls, drain; every call has exactly one outcome. */
static void run_with_failure(int sig, int64_t aid_base, int64_t delta_base)
{
    char a[4][32];
    const char *addrs[4];
    for (int i = 0; i < 4; i++) {
        addr_of(i + 1, a[i], sizeof a[i]);
        addrs[i] = a[i];
    }
    memset(&R, 0, sizeof R);
    R.aid_base = aid_base;
    R.delta_base = delta_base;
    const struct nines_connect_opts first = {.flags = NINES_CONNECT_FIRST_NODE};
    CU_ASSERT_EQUAL_FATAL(nines_connect_with(&R.c, addrs, 4, "clutest", 2000, &first), 0);
    CU_ASSERT_EQUAL_FATAL(nines_conn_node(R.c), 1);
    CU_ASSERT_EQUAL(nines_conn_set_failover(R.c, 1, 10000), 0);
    run_until(300, nclock_ms() + 20000);
    CU_ASSERT_FATAL(R.done >= 300);
    while ((int)nines_conn_inflight(R.c) < WINDOW)
        if (submit_one())
            break;
    int inflight = 0;
    for (int i = 0; i < R.n; i++)
        if (!R.calls[i].done) {
            R.calls[i].in_flight_at_kill = true;
            inflight++;
        }
    if (sig == SIGKILL)
        clu_stop(&C, 1, SIGKILL);
    else
        kill(C.pids[1], sig);
    run_until(R.done + 200, nclock_ms() + 8000);
    uint64_t deadline = nclock_ms() + 60000;
    while (nines_conn_inflight(R.c) > 0 && nclock_ms() < deadline)
        nines_poll(R.c, 100);
    CU_ASSERT_EQUAL_FATAL(nines_conn_inflight(R.c), 0);
    CU_ASSERT_NOT_EQUAL(nines_conn_node(R.c), 1);

    int committed = 0, aborted = 0, doubt = 0, fl_c = 0, fl_a = 0, fl_d = 0;
    for (int i = 0; i < R.n; i++) {
        struct call *k = &R.calls[i];
        CU_ASSERT_EQUAL(k->done, 1);
        committed += k->rc == 0;
        doubt += k->rc == NINES_EINDOUBT;
        aborted += k->rc != 0 && k->rc != NINES_EINDOUBT;
        if (k->rc == NINES_EINDOUBT)
            printf("\n  in doubt: %s", k->detail);
        if (k->in_flight_at_kill) {
            fl_c += k->rc == 0;
            fl_d += k->rc == NINES_EINDOUBT;
            fl_a += k->rc != 0 && k->rc != NINES_EINDOUBT;
        }
        if (k->rc == 0)
            CU_ASSERT_NOT_EQUAL(k->info.txn, 0);
    }
    struct nines_failover_stats st;
    nines_conn_failover_stats(R.c, &st);
    printf("\n  %s: %d calls: %d committed, %d aborted, %d in doubt; %d in flight at the "
           "failure: %d committed, %d aborted, %d in doubt; failovers %llu, questions %llu, "
           "resent %llu\n", sig == SIGKILL ? "SIGKILL" : "SIGSTOP", R.n, committed, aborted,
           doubt, inflight, fl_c, fl_a, fl_d, (unsigned long long)st.failovers,
           (unsigned long long)st.questions, (unsigned long long)st.resent);
    CU_ASSERT(st.failovers >= 1);
    CU_ASSERT(inflight > 0);
    CU_ASSERT(committed >= 300 - WINDOW || others_out());
    nines_close(R.c);
    R.c = NULL;
}

/* Every call's account (its own) holds its delta exactly when it
 * committed: 0 when aborted, delta when committed, one of the two when in
 * doubt — never twice. Accounts whose primary is on a node in `skip` are
 * not read (returns how many were). */
static int check_accounts(nines_conn *v, uint32_t skip)
{
    int checked = 0, wrong = 0;
    for (int i = 0; i < R.n; i++) {
        struct call *k = &R.calls[i];
        struct nines_value key = nines_v_int64(k->aid);
        uint32_t primary = 0;
        if (skip && nines_key_fragment(v, "account", &key, 1, NULL, &primary, NULL) == 0 &&
            primary == skip)
            continue;
        /* a prepared transaction whose controller died keeps its locks until
         * its kernels ask the hsc (3 x the transaction timeout); with
         * takeover the hsc finishes it at once */
        int rc;
        int64_t bal;
        uint64_t until = nclock_ms() + 30000;
        while ((bal = balance_of(v, k->aid, &rc)), rc == NINES_ELOCKTIMEOUT &&
                                                       nclock_ms() < until)
            ;
        CU_ASSERT_EQUAL(rc, 0);
        if (rc) {
            printf("\n  account %lld: %s\n", (long long)k->aid, nines_conn_errdetail(v));
            continue;
        }
        checked++;
        bool ok = k->rc == 0 ? bal == k->delta
                : k->rc == NINES_EINDOUBT ? (bal == 0 || bal == k->delta)
                                          : bal == 0;
        if (!ok) {
            wrong++;
            printf("\n  call %d (account %lld, delta %lld) reported %s (attempts %u%s) but the "
                   "balance is %lld\n", i + 1, (long long)k->aid, (long long)k->delta,
                   k->rc ? nines_strerror(k->rc) : "committed", k->info.attempts,
                   k->info.via_failover ? ", via failover" : "", (long long)bal);
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
    return checked;
}

static void connect_all(nines_conn **v, int first, int n)
{
    char a[4][32];
    const char *addrs[4];
    for (int i = 0; i < n; i++) {
        addr_of(first + i, a[i], sizeof a[i]);
        addrs[i] = a[i];
    }
    CU_ASSERT_EQUAL_FATAL(nines_connect(v, addrs, (size_t)n, "clutest", 5000), 0);
}

/* Read everything back through nodes 2..4: every committed call has its
 * history row under the transaction id the client was told, no call
 * reported aborted has one, none has two, calls in doubt have at most one;
 * the invariant holds; each call's own account holds its delta exactly
 * when it committed; no fragment has two primaries and no standby differs
 * from its primary (node 1 left the node set: its replicas are not current
 * any more, so fragments may be primary-alone). */
static void verify_all(void)
{
    uint64_t out = others_out();
    if (out) {
        /* every call had exactly one outcome (checked); what is stored
         * cannot be read while a fragment is down */
        printf("  NOT VERIFIED: node set lost node(s) other than node 1 during the test "
               "(mask %#llx): a second failure, fragments may be down\n",
               (unsigned long long)out);
        return;
    }
    nines_conn *v = NULL;
    connect_all(&v, 2, 3);
    struct sum hist = {.col = 4};
    hist.caphist = 2 * MAXREQ;
    hist.hid = calloc(hist.caphist, sizeof *hist.hid);
    hist.delta = calloc(hist.caphist, sizeof *hist.delta);
    struct sum acc = {.col = 2}, tel = {.col = 2}, br = {.col = 1};
    CU_ASSERT_EQUAL_FATAL(scan_sum(v, "history", &hist), 0);
    CU_ASSERT_EQUAL(scan_sum(v, "account", &acc), 0);
    CU_ASSERT_EQUAL(scan_sum(v, "teller", &tel), 0);
    CU_ASSERT_EQUAL(scan_sum(v, "branch", &br), 0);
    CU_ASSERT_EQUAL(acc.rows, 100000);
    /* the invariant (balances start at 0) */
    CU_ASSERT_EQUAL(acc.sum, hist.sum);
    CU_ASSERT_EQUAL(tel.sum, hist.sum);
    CU_ASSERT_EQUAL(br.sum, hist.sum);
    /* this run's history rows: deltas delta_base + 1 .. delta_base + n */
    int *rows = calloc((size_t)R.n + 1, sizeof *rows);
    int wrong_txn = 0, ghost = 0;
    for (size_t h = 0; h < hist.nhist; h++) {
        int64_t i = hist.delta[h] - R.delta_base - 1;
        if (i < 0 || i >= R.n)
            continue; /* another run's */
        struct call *k = &R.calls[i];
        rows[i]++;
        if (k->rc == 0 && (uint64_t)hist.hid[h] != k->info.txn) {
            wrong_txn++;
            printf("\n  call %lld committed as txn %llx, its history row is %llx\n",
                   (long long)i + 1, (unsigned long long)k->info.txn,
                   (unsigned long long)hist.hid[h]);
        }
        if (k->rc != 0 && k->rc != NINES_EINDOUBT) {
            ghost++;
            printf("\n  call %lld reported %s (attempts %u) but its history row %llx exists\n",
                   (long long)i + 1, nines_strerror(k->rc), k->info.attempts,
                   (unsigned long long)hist.hid[h]);
        }
    }
    int missing = 0, dups = 0;
    for (int i = 0; i < R.n; i++) {
        dups += rows[i] > 1;
        if (R.calls[i].rc == 0 && rows[i] == 0) {
            missing++;
            printf("\n  call %d committed as txn %llx (attempts %u%s) has no history row\n",
                   i + 1, (unsigned long long)R.calls[i].info.txn, R.calls[i].info.attempts,
                   R.calls[i].info.via_failover ? ", via failover" : "");
        }
    }
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(wrong_txn, 0);
    CU_ASSERT_EQUAL(ghost, 0);
    CU_ASSERT_EQUAL(check_accounts(v, 0), R.n);
    free(rows);
    free(hist.hid);
    free(hist.delta);
    nines_close(v);
    (void)clu_run(&C, "ninesctl", 0, "replicas --json");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"two_primaries\":0"));
    CU_ASSERT_PTR_NULL(strstr(C.out, "DIFFERENT"));
}

/* Node 1 is killed (SIGKILL) under load: the client moves on, every call
 * it had in flight gets its outcome, the cluster takes over node 1's
 * fragments and transactions, and everything is verified. */
static void test_kill_under_load(void)
{
    run_with_failure(SIGKILL, 0, 0);
    verify_all();
}

/* Node 1, restarted (a member again, but its replicas not current: it
 * controls transactions only), hangs (SIGSTOP) under load: the client's
 * requests time out, it moves to another node and resolves them; the
 * cluster evicts node 1; node 1 then resumes (SIGCONT) with what it still
 * held — a request unread in its socket, a START it had not sent — and none
 * of it may commit a second time. */
static void test_hang_then_resume(void)
{
    if (others_out()) {
        printf("  NOT RUN: a node other than node 1 left the node set in the test before\n");
        return;
    }
    clu_start(&C, 1);
    char a1[32];
    addr_of(1, a1, sizeof a1);
    const char *one[] = {a1};
    int rc = -1;
    for (uint64_t until = nclock_ms() + 30000; rc != 0 && nclock_ms() < until;) {
        nines_conn *c = NULL;
        if (nines_connect(&c, one, 1, "clutest", 2000) == 0) {
            rc = nines_tpcb(c, 99999, 0, 0, 0, NULL); /* node 1 serves again */
            nines_close(c);
        }
        if (rc)
            usleep(200000);
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    run_with_failure(SIGSTOP, 50000, 100000);
    kill(C.pids[1], SIGCONT);
    sleep(2); /* node 1 acts on its backlog, then finds itself outside the set */
    verify_all();
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"kill_under_load", test_kill_under_load},
        {"hang_then_resume", test_hang_then_resume},
        {NULL, NULL},
    };
    cu_add_suite("failover_cluster", setup, teardown, cases);
}
