/* Record lock manager: compatibility (S, X, INC), FIFO grants, upgrades, re-entrancy,
 * deadlock cycles and victims, timeouts, fragment shield and standby role,
 * callbacks re-entering the manager, and a randomized run checked against
 * kern_lock_check() and a model after every step. */
#include "cu_test.h"
#include "kernel/kern_lock.h"
#include "nines/errors.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T 1u /* table */
#define F 3u /* fragment */

/* ---- event log filled by the callbacks ---- */

struct ev {
    uint64_t txn, cookie;
    uint32_t table, frag;
    int mode, err;
    char detail[512];
};
static struct ev evs[256];
static int nevs;

static void log_ev(const struct kern_lock_event *e)
{
    CU_ASSERT_FATAL(nevs < 256);
    struct ev *x = &evs[nevs++];
    x->txn = e->txn;
    x->cookie = e->cookie;
    x->table = e->table;
    x->frag = e->frag;
    x->mode = e->mode;
    x->err = e->err;
    snprintf(x->detail, sizeof x->detail, "%s", e->detail);
}
static void on_grant(void *ctx, uint64_t txn, const struct kern_lock_event *e)
{
    (void)ctx;
    CU_ASSERT_EQUAL(txn, e->txn);
    CU_ASSERT_EQUAL(e->err, 0);
    log_ev(e);
}
static void on_fail(void *ctx, uint64_t txn, const struct kern_lock_event *e)
{
    (void)ctx;
    CU_ASSERT_EQUAL(txn, e->txn);
    CU_ASSERT_NOT_EQUAL(e->err, 0);
    /* the thread's detail is set to the event's before the call */
    CU_ASSERT_STRING_EQUAL(nines_errdetail(), e->detail);
    log_ev(e);
}

static struct kern_lock_mgr *mk(uint32_t timeout_ms)
{
    nevs = 0;
    struct kern_lock_conf c = {.timeout_ms = timeout_ms, .initial_buckets = 16};
    struct kern_lock_cb cb = {.on_grant = on_grant, .on_fail = on_fail};
    struct kern_lock_mgr *m = kern_lock_new(&c, &cb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    return m;
}

/* Dispatch and check; returns the number of events delivered. */
static int pump(struct kern_lock_mgr *m)
{
    int n = kern_lock_dispatch(m);
    int rc = kern_lock_check(m);
    if (rc)
        printf("\n  %s\n", nines_errdetail());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return n;
}

static void ck(struct kern_lock_mgr *m)
{
    int rc = kern_lock_check(m);
    if (rc)
        printf("\n  %s\n", nines_errdetail());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* 4-byte big-endian key n */
static unsigned char kb[4];
static const unsigned char *K(uint32_t n)
{
    kb[0] = (unsigned char)(n >> 24);
    kb[1] = (unsigned char)(n >> 16);
    kb[2] = (unsigned char)(n >> 8);
    kb[3] = (unsigned char)n;
    return kb;
}

static int acq(struct kern_lock_mgr *m, uint64_t txn, uint32_t key, int mode)
{
    int rc = kern_lock_acquire(m, txn, T, F, K(key), 4, (enum kern_lock_mode)mode,
                               txn * 1000 + key);
    ck(m);
    return rc;
}

static int held(struct kern_lock_mgr *m, uint64_t txn, uint32_t key)
{
    return (int)kern_lock_held(m, txn, T, F, K(key), 4);
}

static void fin(struct kern_lock_mgr *m)
{
    ck(m);
    kern_lock_free(m);
}

#define S KERN_LOCK_S
#define X KERN_LOCK_X
#define I KERN_LOCK_INC
#define G KERN_LOCK_GRANTED
#define W KERN_LOCK_WAITING

/* ---- compatibility ---- */

static void test_matrix(void)
{
    static const struct { int first, second, expect; } cases[] = {
        {S, S, G}, {S, X, W}, {X, S, W}, {X, X, W},
        {I, I, G}, {I, S, W}, {S, I, W}, {I, X, W}, {X, I, W},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kern_lock_mgr *m = mk(0);
        CU_ASSERT_EQUAL(acq(m, 1, 7, cases[i].first), G);
        CU_ASSERT_EQUAL(acq(m, 2, 7, cases[i].second), cases[i].expect);
        CU_ASSERT_EQUAL(pump(m), 0);
        if (cases[i].expect == W) {
            CU_ASSERT_EQUAL(kern_lock_txn_state(m, 2), KERN_LOCK_T_WAITING);
            CU_ASSERT_EQUAL(held(m, 2, 7), KERN_LOCK_NONE);
            CU_ASSERT_EQUAL(kern_lock_release_all(m, 1), 1);
            CU_ASSERT_EQUAL(pump(m), 1);
            CU_ASSERT_EQUAL(evs[0].txn, 2);
            CU_ASSERT_EQUAL(evs[0].cookie, 2007);
            CU_ASSERT_EQUAL(evs[0].err, 0);
            CU_ASSERT_EQUAL(evs[0].mode, cases[i].second);
            CU_ASSERT_EQUAL(evs[0].table, T);
            CU_ASSERT_EQUAL(evs[0].frag, F);
        }
        CU_ASSERT_EQUAL(held(m, 2, 7), cases[i].second);
        CU_ASSERT_EQUAL(kern_lock_txn_state(m, 2), KERN_LOCK_T_ACTIVE);
        kern_lock_release_all(m, 1);
        kern_lock_release_all(m, 2);
        struct kern_lock_stats st;
        kern_lock_stats(m, &st);
        CU_ASSERT_EQUAL(st.heads, 0);
        CU_ASSERT_EQUAL(st.txns, 0);
        fin(m);
    }
}

/* Different keys, fragments and tables never conflict. */
static void test_names(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), G);
    CU_ASSERT_EQUAL(acq(m, 2, 8, X), G);
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 3, T, F + 1, K(7), 4, X, 0), G);
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 4, T + 1, F, K(7), 4, X, 0), G);
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 5, T, F, K(7), 3, X, 0), G); /* prefix is another key */
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 6, T, F, NULL, 0, X, 0), G);  /* empty key */
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 7, T, F, NULL, 0, S, 0), W);
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.heads, 6);
    CU_ASSERT_EQUAL(st.held, 6);
    CU_ASSERT_EQUAL(st.waiting, 1);
    fin(m);
}

/* ---- FIFO ---- */

static void test_fifo(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 3, 7, S), W);
    CU_ASSERT_EQUAL(acq(m, 4, 7, S), W);
    CU_ASSERT_EQUAL(acq(m, 5, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 6, 7, S), W);

    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(pump(m), 1); /* only the X at the front */
    CU_ASSERT_EQUAL(evs[0].txn, 2);

    nevs = 0;
    kern_lock_release_all(m, 2);
    CU_ASSERT_EQUAL(pump(m), 2); /* both S together, in order; not the X behind */
    CU_ASSERT_EQUAL(evs[0].txn, 3);
    CU_ASSERT_EQUAL(evs[1].txn, 4);
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 5), KERN_LOCK_T_WAITING);
    /* txn 6's S is compatible with the holders but stays behind txn 5's X */
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 6), KERN_LOCK_T_WAITING);
    /* a new S request does not overtake the queue either */
    CU_ASSERT_EQUAL(acq(m, 8, 7, S), W);

    nevs = 0;
    kern_lock_release_all(m, 3);
    CU_ASSERT_EQUAL(pump(m), 0);
    kern_lock_release_all(m, 4);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 5);
    nevs = 0;
    kern_lock_release_all(m, 5);
    CU_ASSERT_EQUAL(pump(m), 2);
    CU_ASSERT_EQUAL(evs[0].txn, 6);
    CU_ASSERT_EQUAL(evs[1].txn, 8);
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.waiting, 0);
    CU_ASSERT_EQUAL(st.held, 2);
    CU_ASSERT_EQUAL(st.deadlocks, 0);
    fin(m);
}

static void test_many_shared(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), G);
    for (uint64_t t = 2; t <= 21; t++)
        CU_ASSERT_EQUAL(acq(m, t, 7, S), W);
    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(pump(m), 20);
    for (int i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(evs[i].txn, (uint64_t)i + 2);
        CU_ASSERT_EQUAL(held(m, (uint64_t)i + 2, 7), S);
    }
    fin(m);
}

/* ---- upgrade and re-entrancy ---- */

static void test_upgrade(void)
{
    struct kern_lock_mgr *m = mk(0);
    /* sole holder upgrades at once, even with a waiter queued */
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), G);
    CU_ASSERT_EQUAL(held(m, 1, 7), X);
    uint32_t h, w;
    kern_lock_txn_counts(m, 1, &h, &w);
    CU_ASSERT_EQUAL(h, 1);
    CU_ASSERT_EQUAL(w, 0);
    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    kern_lock_release_all(m, 2);
    fin(m);

    /* with another holder: waits, and goes ahead of earlier waiters */
    m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 3, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), W);
    CU_ASSERT_EQUAL(held(m, 1, 7), S); /* keeps S while waiting */
    CU_ASSERT_EQUAL(acq(m, 4, 7, S), W); /* behind the upgrade */
    kern_lock_txn_counts(m, 1, &h, &w);
    CU_ASSERT_EQUAL(h, 1);
    CU_ASSERT_EQUAL(w, 1);
    kern_lock_release_all(m, 2);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 1);
    CU_ASSERT_EQUAL(evs[0].mode, X);
    CU_ASSERT_EQUAL(held(m, 1, 7), X);
    nevs = 0;
    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 3);
    nevs = 0;
    kern_lock_release_all(m, 3);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 4);
    fin(m);
}

/* Two S holders both upgrading: the classic conversion deadlock. */
static void test_upgrade_deadlock(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 2, 7, X), NINES_EDEADLOCK); /* 2 is youngest: the requester */
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "victim txn 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "txn 2 waits for txn 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "txn 1 waits for txn 2"));
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 2), KERN_LOCK_T_DOOMED);
    CU_ASSERT_EQUAL(held(m, 2, 7), S); /* until it releases */
    CU_ASSERT_EQUAL(acq(m, 2, 8, S), NINES_EABORTED);
    CU_ASSERT_EQUAL(pump(m), 0);
    kern_lock_release_all(m, 2);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 1);
    CU_ASSERT_EQUAL(held(m, 1, 7), X);
    fin(m);

    /* the older one asks second: the youngest waiter is cancelled by event */
    m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 5, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 3, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 5, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 3, 7, X), W);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 5);
    CU_ASSERT_EQUAL(evs[0].err, NINES_EDEADLOCK);
    CU_ASSERT_EQUAL(evs[0].mode, X);
    CU_ASSERT_EQUAL(evs[0].cookie, 5007);
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 5), KERN_LOCK_T_DOOMED);
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 3), KERN_LOCK_T_WAITING);
    nevs = 0;
    kern_lock_release_all(m, 5);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 3);
    CU_ASSERT_EQUAL(held(m, 3, 7), X);
    fin(m);
}

static void test_reentrant(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), G); /* despite the waiter */
    CU_ASSERT_EQUAL(acq(m, 3, 8, X), G);
    CU_ASSERT_EQUAL(acq(m, 3, 8, X), G);
    CU_ASSERT_EQUAL(acq(m, 3, 8, S), G); /* X covers S */
    CU_ASSERT_EQUAL(held(m, 3, 8), X);
    uint32_t h, w;
    kern_lock_txn_counts(m, 1, &h, &w);
    CU_ASSERT_EQUAL(h, 1);
    kern_lock_txn_counts(m, 3, &h, &w);
    CU_ASSERT_EQUAL(h, 1);
    CU_ASSERT_EQUAL(kern_lock_release_all(m, 3), 1);
    CU_ASSERT_EQUAL(pump(m), 0);
    fin(m);
}

/* ---- deadlocks ---- */

static void test_deadlock2(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 0x0a0b, X), G);
    CU_ASSERT_EQUAL(acq(m, 2, 0x0c0d, X), G);
    CU_ASSERT_EQUAL(acq(m, 1, 0x0c0d, X), W);
    CU_ASSERT_EQUAL(acq(m, 2, 0x0a0b, X), NINES_EDEADLOCK);
    const char *d = nines_errdetail();
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "deadlock (cycle of 2, victim txn 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "txn 2 waits for txn 1 (X on table 1 fragment 3 key 00000a0b)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "txn 1 waits for txn 2 (X on table 1 fragment 3 key 00000c0d)"));
    uint32_t h, w;
    kern_lock_txn_counts(m, 2, &h, &w);
    CU_ASSERT_EQUAL(h, 1);
    CU_ASSERT_EQUAL(w, 0); /* the request was not queued */
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.deadlocks, 1);
    kern_lock_release_all(m, 2);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 1);
    fin(m);

    /* victim is not the requester */
    m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 9, 1, X), G);
    CU_ASSERT_EQUAL(acq(m, 7, 2, S), G);
    CU_ASSERT_EQUAL(acq(m, 9, 2, X), W);
    CU_ASSERT_EQUAL(acq(m, 7, 1, S), W);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 9);
    CU_ASSERT_EQUAL(evs[0].err, NINES_EDEADLOCK);
    CU_ASSERT_PTR_NOT_NULL(strstr(evs[0].detail, "victim txn 9"));
    CU_ASSERT_PTR_NOT_NULL(strstr(evs[0].detail, "txn 7 waits for txn 9 (S on"));
    CU_ASSERT_PTR_NOT_NULL(strstr(evs[0].detail, "txn 9 waits for txn 7 (X on"));
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 7), KERN_LOCK_T_WAITING);
    CU_ASSERT_EQUAL(acq(m, 9, 3, S), NINES_EABORTED);
    nevs = 0;
    kern_lock_release_all(m, 9);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 7);
    CU_ASSERT_EQUAL(evs[0].err, 0);
    fin(m);
}

static void test_deadlock3(void)
{
    /* requester is the youngest */
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 1, X), G);
    CU_ASSERT_EQUAL(acq(m, 2, 2, X), G);
    CU_ASSERT_EQUAL(acq(m, 3, 3, X), G);
    CU_ASSERT_EQUAL(acq(m, 1, 2, X), W);
    CU_ASSERT_EQUAL(acq(m, 2, 3, X), W);
    CU_ASSERT_EQUAL(acq(m, 3, 1, X), NINES_EDEADLOCK);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "cycle of 3, victim txn 3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "txn 3 waits for txn 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "txn 1 waits for txn 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "txn 2 waits for txn 3"));
    fin(m);

    /* youngest in the middle of the cycle */
    m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 10, 1, X), G);
    CU_ASSERT_EQUAL(acq(m, 30, 2, X), G);
    CU_ASSERT_EQUAL(acq(m, 20, 3, X), G);
    CU_ASSERT_EQUAL(acq(m, 10, 2, S), W);
    CU_ASSERT_EQUAL(acq(m, 30, 3, S), W);
    CU_ASSERT_EQUAL(acq(m, 20, 1, S), W);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 30);
    CU_ASSERT_EQUAL(evs[0].err, NINES_EDEADLOCK);
    CU_ASSERT_PTR_NOT_NULL(strstr(evs[0].detail, "cycle of 3, victim txn 30"));
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 10), KERN_LOCK_T_WAITING);
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 20), KERN_LOCK_T_WAITING);
    nevs = 0;
    kern_lock_release_all(m, 30); /* 10 gets key 2 */
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 10);
    fin(m);
}

static void test_deadlock_long(void)
{
    enum { N = 12 };
    struct kern_lock_mgr *m = mk(0);
    /* ids shuffled so that the youngest (105) sits inside the ring */
    static const uint64_t id[N] = {101, 103, 105, 102, 104, 100, 99, 98, 97, 96, 95, 94};
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(acq(m, id[i], (uint32_t)i, X), G);
    for (int i = 0; i < N - 1; i++)
        CU_ASSERT_EQUAL(acq(m, id[i], (uint32_t)i + 1, X), W);
    CU_ASSERT_EQUAL(acq(m, id[N - 1], 0, X), W);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 105);
    CU_ASSERT_EQUAL(evs[0].err, NINES_EDEADLOCK);
    CU_ASSERT_PTR_NOT_NULL(strstr(evs[0].detail, "cycle of 12, victim txn 105"));
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.deadlocks, 1);
    CU_ASSERT_EQUAL(st.waiting, N - 1);
    /* releasing the victim unwinds the chain one commit at a time */
    kern_lock_release_all(m, 105);
    for (int i = 1; i >= 0; i--) {
        nevs = 0;
        CU_ASSERT_EQUAL(pump(m), 1);
        CU_ASSERT_EQUAL(evs[0].txn, id[i]);
        kern_lock_release_all(m, id[i]);
    }
    for (int i = N - 1; i > 2; i--) {
        nevs = 0;
        CU_ASSERT_EQUAL(pump(m), 1);
        CU_ASSERT_EQUAL(evs[0].txn, id[i]);
        kern_lock_release_all(m, id[i]);
    }
    CU_ASSERT_EQUAL(pump(m), 0);
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.heads, 0);
    CU_ASSERT_EQUAL(st.txns, 0);
    fin(m);
}

/* Chains, diamonds and shared "cycles" are no deadlocks. */
static void test_no_false_deadlock(void)
{
    struct kern_lock_mgr *m = mk(0);
    for (uint64_t t = 1; t <= 20; t++)
        CU_ASSERT_EQUAL(acq(m, t, (uint32_t)t, X), G);
    for (uint64_t t = 2; t <= 20; t++)
        CU_ASSERT_EQUAL(acq(m, t, (uint32_t)t - 1, X), W); /* t waits for t-1 */
    /* diamond: 30 and 31 both wait for 20's key; 32 waits for both */
    CU_ASSERT_EQUAL(acq(m, 30, 40, S), G);
    CU_ASSERT_EQUAL(acq(m, 31, 40, S), G);
    CU_ASSERT_EQUAL(acq(m, 30, 20, S), W);
    CU_ASSERT_EQUAL(acq(m, 31, 20, S), W);
    CU_ASSERT_EQUAL(acq(m, 32, 40, X), W);
    /* shared locks both ways: no wait at all */
    CU_ASSERT_EQUAL(acq(m, 50, 51, S), G);
    CU_ASSERT_EQUAL(acq(m, 52, 53, S), G);
    CU_ASSERT_EQUAL(acq(m, 50, 53, S), G);
    CU_ASSERT_EQUAL(acq(m, 52, 51, S), G);
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.deadlocks, 0);
    CU_ASSERT(st.dl_searches >= 22);
    CU_ASSERT_EQUAL(pump(m), 0);
    fin(m);
}

/* ---- timeout ---- */

static void test_timeout(void)
{
    struct kern_lock_mgr *m = mk(100);
    kern_lock_tick(m, 1000);
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, X), W); /* since 1000 */
    uint64_t p = kern_lock_patience_ms(m, 2);
    CU_ASSERT_TRUE(p >= 100 && p <= 150);
    CU_ASSERT_EQUAL(kern_lock_tick(m, 1000 + p - 1), 0);
    CU_ASSERT_EQUAL(kern_lock_tick(m, 500), 0); /* time does not go back */
    CU_ASSERT_EQUAL(kern_lock_tick(m, 1000 + p), 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 2);
    CU_ASSERT_EQUAL(evs[0].err, NINES_ELOCKTIMEOUT);
    char want[160];
    snprintf(want, sizeof want,
             "txn 2 waited %llu ms (patience %llu ms: timeout 100 ms + spread by txn id) for X "
             "on table 1 fragment 3 key 00000007",
             (unsigned long long)p, (unsigned long long)p);
    CU_ASSERT_PTR_NOT_NULL(strstr(evs[0].detail, want));
    CU_ASSERT_EQUAL(acq(m, 3, 7, S), G); /* the X waiter is gone: compatible */
    /* patience is spread over transactions (within timeout .. 1.5 timeout),
     * so the members of a cross-node deadlock do not time out together */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t txn = 1; txn <= 64; txn++) {
        uint64_t q = kern_lock_patience_ms(m, txn);
        lo = q < lo ? q : lo;
        hi = q > hi ? q : hi;
    }
    CU_ASSERT_TRUE(lo >= 100 && hi <= 150 && hi - lo >= 20);
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 2), KERN_LOCK_T_DOOMED);
    CU_ASSERT_EQUAL(acq(m, 2, 9, S), NINES_EABORTED);
    CU_ASSERT_EQUAL(kern_lock_release_all(m, 2), 0);
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.timeouts, 1);
    fin(m);

    /* timeout 0: never */
    m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, X), W);
    CU_ASSERT_EQUAL(kern_lock_tick(m, UINT64_C(1) << 40), 0);
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 2), KERN_LOCK_T_WAITING);
    fin(m);
}

/* A cross-node deadlock seen from one node: txn 5 (older) waits here for
 * txn 9 (younger). At its deadline 5 is spared and waits again (in the
 * cycle, 9's own wait elsewhere times out and 9 is the victim); it gives up
 * only after 4 patience periods. A younger waiter is not spared. */
static void test_timeout_spares_older(void)
{
    struct kern_lock_mgr *m = mk(100);
    kern_lock_tick(m, 1000);
    CU_ASSERT_EQUAL(acq(m, 9, 7, X), G);
    CU_ASSERT_EQUAL(acq(m, 5, 7, X), W);
    uint64_t p = kern_lock_patience_ms(m, 5);
    CU_ASSERT_EQUAL(kern_lock_tick(m, 1000 + p), 0); /* spared */
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 5), KERN_LOCK_T_WAITING);
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.timeouts_spared, 1);
    CU_ASSERT_EQUAL(kern_lock_check(m), 0);
    /* the younger holder goes away (its abort elsewhere): 5 is granted */
    kern_lock_release_all(m, 9);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 5);
    CU_ASSERT_EQUAL(evs[0].err, 0);
    kern_lock_release_all(m, 5);

    /* a stuck younger holder: the older waiter gives up after 4 periods */
    nevs = 0;
    CU_ASSERT_EQUAL(acq(m, 9, 8, X), G);
    CU_ASSERT_EQUAL(acq(m, 5, 8, X), W);
    uint64_t t0 = 1000 + p;
    for (uint64_t now = t0; now < t0 + 4 * p; now += 10)
        CU_ASSERT_EQUAL(kern_lock_tick(m, now), 0);
    CU_ASSERT_EQUAL(kern_lock_tick(m, t0 + 5 * p), 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 5);
    CU_ASSERT_EQUAL(evs[0].err, NINES_ELOCKTIMEOUT);
    kern_lock_release_all(m, 5);

    /* the younger waiter is not spared */
    nevs = 0;
    CU_ASSERT_EQUAL(acq(m, 3, 9, X), G);
    CU_ASSERT_EQUAL(acq(m, 9, 9, X), W);
    uint64_t q = kern_lock_patience_ms(m, 9);
    CU_ASSERT_EQUAL(kern_lock_tick(m, t0 + 5 * p + q), 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 9);
    CU_ASSERT_EQUAL(evs[0].err, NINES_ELOCKTIMEOUT);
    kern_lock_release_all(m, 9);
    kern_lock_release_all(m, 3);
    fin(m);
}

/* ---- shield and standby ---- */

static void test_shield(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 9, 5, S), G); /* held before the shield */
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, true), 0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 2, 8, S), W);
    CU_ASSERT_EQUAL(acq(m, 3, 7, S), W);
    CU_ASSERT_EQUAL(acq(m, 9, 5, S), W); /* re-entrant requests queue too */
    /* other fragments are not shielded */
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 4, T, F + 1, K(7), 4, X, 0), G);
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.shielded, 4);
    CU_ASSERT_EQUAL(st.waiting, 0);
    CU_ASSERT_EQUAL(pump(m), 0);
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, true), 0); /* idempotent */
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, false), 4);
    CU_ASSERT_EQUAL(pump(m), 3);
    CU_ASSERT_EQUAL(evs[0].txn, 1);
    CU_ASSERT_EQUAL(evs[0].mode, X);
    CU_ASSERT_EQUAL(evs[1].txn, 2);
    CU_ASSERT_EQUAL(evs[2].txn, 9);
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 3), KERN_LOCK_T_WAITING); /* behind 1's X */
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, false), 0);
    nevs = 0;
    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 3);
    fin(m);
}

/* Lowering the shield can close a cycle: the victim learns it by event. */
static void test_shield_deadlock_and_timeout(void)
{
    struct kern_lock_mgr *m = mk(100);
    kern_lock_tick(m, 10);
    CU_ASSERT_EQUAL(acq(m, 1, 1, X), G);
    CU_ASSERT_EQUAL(acq(m, 2, 2, X), G);
    CU_ASSERT_EQUAL(acq(m, 1, 2, X), W);
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, true), 0);
    CU_ASSERT_EQUAL(acq(m, 2, 1, X), W);
    CU_ASSERT_EQUAL(pump(m), 0);
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, false), 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 2);
    CU_ASSERT_EQUAL(evs[0].err, NINES_EDEADLOCK);
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 2), KERN_LOCK_T_DOOMED);
    kern_lock_release_all(m, 2);
    nevs = 0;
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 1);
    kern_lock_release_all(m, 1);

    /* a wait behind the shield times out like any other */
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, true), 0);
    CU_ASSERT_EQUAL(acq(m, 5, 1, S), W);
    CU_ASSERT_EQUAL(kern_lock_tick(m, 200), 1);
    nevs = 0;
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].err, NINES_ELOCKTIMEOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(evs[0].detail, "behind the fragment shield"));
    kern_lock_release_all(m, 5);
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, false), 0);
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.heads, 0);
    fin(m);
}

static void test_standby(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(kern_lock_set_role(m, T, F, KERN_LOCK_STANDBY), 0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), NINES_ENOTPRIMARY);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "table 1 fragment 3 is a hot standby"));
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 1), KERN_LOCK_T_NONE);
    /* promotion: shield up, primary, requests queue, redo done, shield down */
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, true), 0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), NINES_ENOTPRIMARY);
    CU_ASSERT_EQUAL(kern_lock_set_role(m, T, F, KERN_LOCK_PRIMARY), 0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), W);
    CU_ASSERT_EQUAL(kern_lock_shield(m, T, F, false), 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(held(m, 1, 7), S);
    /* a fragment with locks cannot be demoted */
    CU_ASSERT_EQUAL(kern_lock_set_role(m, T, F, KERN_LOCK_STANDBY), NINES_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "1 record lock(s)"));
    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(kern_lock_set_role(m, T, F, KERN_LOCK_STANDBY), 0);
    CU_ASSERT_EQUAL(kern_lock_set_role(m, T, F, (enum kern_lock_role)7), NINES_EINVAL);
    fin(m);
}

/* ---- increment (escrow) locks ---- */

/* INC with INC: granted together; upgrades of INC; X covers INC; FIFO. */
static void test_inc(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 3, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, I), G); /* re-entrant */
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.held, 3);
    /* an S request waits for the increments; a later INC does not overtake it */
    CU_ASSERT_EQUAL(acq(m, 4, 7, S), W);
    CU_ASSERT_EQUAL(acq(m, 5, 7, I), W);
    /* an INC holder asking S upgrades to X: waits ahead of the queue */
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), W);
    CU_ASSERT_EQUAL(held(m, 1, 7), I);
    kern_lock_release_all(m, 2);
    CU_ASSERT_EQUAL(pump(m), 0);
    kern_lock_release_all(m, 3);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 1);
    CU_ASSERT_EQUAL(evs[0].mode, X);
    CU_ASSERT_EQUAL(held(m, 1, 7), X);
    CU_ASSERT_EQUAL(acq(m, 1, 7, I), G); /* X covers INC */
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), G);
    CU_ASSERT_EQUAL(held(m, 1, 7), X);
    nevs = 0;
    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(pump(m), 1); /* the S, not the INC behind it */
    CU_ASSERT_EQUAL(evs[0].txn, 4);
    CU_ASSERT_EQUAL(kern_lock_txn_state(m, 5), KERN_LOCK_T_WAITING);
    nevs = 0;
    kern_lock_release_all(m, 4);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 5);
    CU_ASSERT_EQUAL(evs[0].mode, I);
    CU_ASSERT_EQUAL(held(m, 5, 7), I);
    /* sole INC holder upgrades to X at once, even with a waiter queued */
    CU_ASSERT_EQUAL(acq(m, 6, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 7, 7, S), W);
    kern_lock_release_all(m, 6);
    CU_ASSERT_EQUAL(acq(m, 5, 7, X), G);
    CU_ASSERT_EQUAL(held(m, 5, 7), X);
    kern_lock_release_all(m, 5);
    nevs = 0;
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 7);
    kern_lock_release_all(m, 7);
    fin(m);

    /* an S holder asking INC upgrades to X too (S + INC excludes what X does) */
    m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, S), G);
    CU_ASSERT_EQUAL(acq(m, 1, 7, I), W);
    CU_ASSERT_EQUAL(held(m, 1, 7), S);
    kern_lock_release_all(m, 2);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].mode, X);
    CU_ASSERT_EQUAL(held(m, 1, 7), X);
    fin(m);
}

/* Deadlocks with INC: two INC holders both upgrading; a cycle closed through
 * a queue edge (an INC waiting behind an S, compatible with the INC holder);
 * and INC holders that do not form a cycle. */
static void test_inc_deadlock(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 2, 7, S), NINES_EDEADLOCK);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "txn 2 waits for txn 1 (X on"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "txn 1 waits for txn 2 (X on"));
    CU_ASSERT_EQUAL(held(m, 2, 7), I);
    kern_lock_release_all(m, 2);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(held(m, 1, 7), X);
    fin(m);

    /* 1 holds INC on 7, 3 holds X on 8; 2 queues S on 7 (-> 1); 3 queues INC
     * on 7 behind that S (-> 2 only: compatible with 1's INC); 1 asks X on 8
     * (-> 3): cycle 1 -> 3 -> 2 -> 1, victim 3 (youngest) by event. */
    m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 3, 8, X), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, S), W);
    CU_ASSERT_EQUAL(acq(m, 3, 7, I), W);
    CU_ASSERT_EQUAL(pump(m), 0);
    CU_ASSERT_EQUAL(acq(m, 1, 8, X), W);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 3);
    CU_ASSERT_EQUAL(evs[0].err, NINES_EDEADLOCK);
    CU_ASSERT_EQUAL(evs[0].mode, I);
    CU_ASSERT_PTR_NOT_NULL(strstr(evs[0].detail, "cycle of 3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(evs[0].detail, "txn 3 waits for txn 2 (INC on"));
    nevs = 0;
    kern_lock_release_all(m, 3);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(evs[0].txn, 1);
    CU_ASSERT_EQUAL(held(m, 1, 8), X);
    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(held(m, 2, 7), S);
    fin(m);

    /* no false deadlock: two INC holders of 7, one waits for the other's X
     * on 8, which then increments 7 again (re-entrant) */
    m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 2, 8, X), G);
    CU_ASSERT_EQUAL(acq(m, 1, 8, I), W);
    CU_ASSERT_EQUAL(acq(m, 2, 7, I), G);
    CU_ASSERT_EQUAL(acq(m, 3, 7, I), G);
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.deadlocks, 0);
    kern_lock_release_all(m, 2);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(held(m, 1, 8), I);
    fin(m);
}

/* ---- argument and state errors ---- */

static void test_errors(void)
{
    struct kern_lock_mgr *m = mk(0);
    static unsigned char big[KERN_LOCK_KEY_MAX + 1];
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 1, T, F, big, sizeof big, X, 0), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "2049 bytes"));
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 1, T, F, big, KERN_LOCK_KEY_MAX, X, 0), G);
    CU_ASSERT_EQUAL(kern_lock_held(m, 1, T, F, big, KERN_LOCK_KEY_MAX), X);
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 1, T, F, K(1), 4, (enum kern_lock_mode)4, 0), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "INC (3)"));
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 1, T, F, K(1), 4, KERN_LOCK_NONE, 0), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 0, T, F, K(1), 4, S, 0), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 1, T, F, NULL, 4, S, 0), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_lock_acquire(m, 2, T, F, big, KERN_LOCK_KEY_MAX, S, 0), W);
    CU_ASSERT_EQUAL(acq(m, 2, 9, S), NINES_ESTATE); /* already waiting */
    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(acq(m, 2, 9, S), NINES_ESTATE); /* grant not yet delivered */
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "undelivered"));
    CU_ASSERT_EQUAL(kern_lock_pending(m), 1);
    CU_ASSERT_EQUAL(pump(m), 1);
    CU_ASSERT_EQUAL(acq(m, 2, 9, S), G);
    CU_ASSERT_EQUAL(kern_lock_release_all(m, 2), 2);
    CU_ASSERT_EQUAL(kern_lock_release_all(m, 2), 0);
    CU_ASSERT_STRING_EQUAL(kern_lock_tstate_name(KERN_LOCK_T_DOOMED), "doomed");
    fin(m);
}

/* Releasing a waiting txn cancels its request silently and drops its
 * undelivered events; kern_lock_free frees what is still held. */
static void test_release_waiting(void)
{
    struct kern_lock_mgr *m = mk(0);
    CU_ASSERT_EQUAL(acq(m, 1, 7, X), G);
    CU_ASSERT_EQUAL(acq(m, 2, 7, S), W);
    CU_ASSERT_EQUAL(acq(m, 3, 7, S), W);
    CU_ASSERT_EQUAL(kern_lock_release_all(m, 2), 0);
    kern_lock_release_all(m, 1);
    CU_ASSERT_EQUAL(kern_lock_pending(m), 1);
    kern_lock_release_all(m, 3); /* its grant is never delivered */
    CU_ASSERT_EQUAL(pump(m), 0);
    CU_ASSERT_EQUAL(acq(m, 4, 7, X), G);
    CU_ASSERT_EQUAL(acq(m, 5, 7, X), W);
    CU_ASSERT_EQUAL(acq(m, 4, 8, S), G);
    kern_lock_free(m); /* with locks and a waiter: ASan checks for leaks */
}

/* ---- callbacks re-entering the manager (the executor pattern) ---- */

static struct kern_lock_mgr *rm;
static int re_grants, re_fails;

static void re_grant(void *ctx, uint64_t txn, const struct kern_lock_event *e)
{
    (void)ctx;
    re_grants++;
    /* resume: take the next key (cookie), or commit */
    if (e->cookie < 5) {
        int rc = kern_lock_acquire(rm, txn, T, F, K((uint32_t)e->cookie + 1), 4, X, e->cookie + 1);
        CU_ASSERT(rc == G || rc == W || rc == NINES_EDEADLOCK);
        if (rc == G)
            kern_lock_release_all(rm, txn);
        if (rc == NINES_EDEADLOCK)
            kern_lock_release_all(rm, txn);
    } else {
        kern_lock_release_all(rm, txn);
    }
    CU_ASSERT_EQUAL(kern_lock_dispatch(rm), 0); /* nested dispatch is a no-op */
}

static void re_fail(void *ctx, uint64_t txn, const struct kern_lock_event *e)
{
    (void)ctx;
    (void)e;
    re_fails++;
    kern_lock_release_all(rm, txn); /* abort */
}

static void test_callbacks_reenter(void)
{
    struct kern_lock_cb cb = {.on_grant = re_grant, .on_fail = re_fail};
    rm = kern_lock_new(NULL, &cb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rm);
    re_grants = re_fails = 0;
    /* txn 1 holds key 1; txns 2..6 queue for it; each, when granted, moves on */
    CU_ASSERT_EQUAL(kern_lock_acquire(rm, 1, T, F, K(1), 4, X, 1), G);
    for (uint64_t t = 2; t <= 6; t++)
        CU_ASSERT_EQUAL(kern_lock_acquire(rm, t, T, F, K(1), 4, X, 1), W);
    kern_lock_release_all(rm, 1);
    int total = 0;
    for (int i = 0; i < 100 && kern_lock_pending(rm); i++) {
        total += kern_lock_dispatch(rm);
        ck(rm);
    }
    CU_ASSERT_EQUAL(kern_lock_pending(rm), 0);
    CU_ASSERT_EQUAL(re_fails, 0);
    CU_ASSERT(re_grants >= 5);
    CU_ASSERT_EQUAL(total, re_grants + re_fails);
    struct kern_lock_stats st;
    kern_lock_stats(rm, &st);
    CU_ASSERT_EQUAL(st.txns, 0);
    CU_ASSERT_EQUAL(st.heads, 0);
    ck(rm);
    kern_lock_free(rm);
}

/* ---- randomized run against a model ---- */

enum { R_TX = 10, R_KEYS = 24, R_FRAGS = 2 };

struct rtx {
    uint64_t id;   /* 0: slot free */
    int state;     /* 0 free, 1 active, 2 awaiting event, 3 doomed */
    uint8_t mode[R_FRAGS][R_KEYS];
    int pf, pk, pmode; /* state 2: the pending request */
};
static struct rtx rt[R_TX];
static uint64_t r_next_id;
static unsigned long r_rng;

/* The mode held after holding a and being granted b (NONE < S, INC < X). */
static uint8_t join(int a, int b)
{
    return (uint8_t)(a == 0 ? b : b == 0 || a == b ? a : X);
}

static unsigned rnd(unsigned n)
{
    r_rng = r_rng * 6364136223846793005ul + 1442695040888963407ul;
    return (unsigned)((r_rng >> 33) % n);
}

static struct rtx *r_find(uint64_t id)
{
    for (int i = 0; i < R_TX; i++)
        if (rt[i].id == id)
            return &rt[i];
    return NULL;
}

/* cookie: frag * 256 + key, mode in event */
static void r_grant(void *ctx, uint64_t txn, const struct kern_lock_event *e)
{
    (void)ctx;
    struct rtx *x = r_find(txn);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->state, 2);
    uint8_t *mm = &x->mode[e->cookie / 256][e->cookie % 256];
    *mm = join(*mm, (int)e->mode);
    x->state = 1;
}
static void r_fail(void *ctx, uint64_t txn, const struct kern_lock_event *e)
{
    (void)ctx;
    struct rtx *x = r_find(txn);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->state, 2);
    CU_ASSERT(e->err == NINES_EDEADLOCK || e->err == NINES_ELOCKTIMEOUT);
    x->state = 3;
}

static void r_release(struct kern_lock_mgr *m, struct rtx *x)
{
    int n = 0;
    for (int f = 0; f < R_FRAGS; f++)
        for (int k = 0; k < R_KEYS; k++)
            n += x->mode[f][k] != 0;
    /* a first lock on the pending key may be granted, its event undelivered */
    if (x->state == 2 && !x->mode[x->pf][x->pk] &&
        kern_lock_held(m, x->id, T, (uint32_t)x->pf, K((uint32_t)x->pk), 4) != KERN_LOCK_NONE)
        n++;
    CU_ASSERT_EQUAL(kern_lock_release_all(m, x->id), n);
    memset(x, 0, sizeof *x);
}

/* The model agrees with the manager and itself. */
static void r_verify(struct kern_lock_mgr *m)
{
    ck(m);
    for (int f = 0; f < R_FRAGS; f++)
        for (int k = 0; k < R_KEYS; k++) {
            int ns = 0, nx = 0, ni = 0;
            for (int i = 0; i < R_TX; i++) {
                if (!rt[i].id)
                    continue;
                int md = rt[i].mode[f][k];
                int got = (int)kern_lock_held(m, rt[i].id, T, (uint32_t)f, K((uint32_t)k), 4);
                /* a grant may be made but not yet delivered */
                if (rt[i].state == 2 && rt[i].pf == f && rt[i].pk == k && got == rt[i].pmode &&
                    got != md)
                    md = got;
                if (got != md)
                    printf("\n  txn %" PRIu64 " (model state %d) frag %d key %d: holds %d, model %d\n",
                           rt[i].id, rt[i].state, f, k, got, md);
                CU_ASSERT_EQUAL_FATAL(
                    (int)kern_lock_held(m, rt[i].id, T, (uint32_t)f, K((uint32_t)k), 4), md);
                ns += md == S;
                nx += md == X;
                ni += md == I;
            }
            CU_ASSERT_FATAL(nx == 0 || (nx == 1 && ns == 0 && ni == 0));
            CU_ASSERT_FATAL(ns == 0 || ni == 0);
        }
    for (int i = 0; i < R_TX; i++) {
        if (!rt[i].id)
            continue;
        enum kern_lock_tstate s = kern_lock_txn_state(m, rt[i].id);
        switch (rt[i].state) {
        case 1:
            CU_ASSERT_EQUAL_FATAL(s, KERN_LOCK_T_ACTIVE);
            break;
        case 2: /* waiting, or its outcome is queued for dispatch */
            CU_ASSERT_FATAL(s != KERN_LOCK_T_NONE);
            break;
        case 3:
            CU_ASSERT_EQUAL_FATAL(s, KERN_LOCK_T_DOOMED);
            break;
        default:
            CU_FAIL_FATAL("bad model state");
        }
    }
}

static void run_random(unsigned long seed, int steps, uint32_t timeout_ms)
{
    r_rng = seed;
    r_next_id = 1;
    memset(rt, 0, sizeof rt);
    struct kern_lock_conf c = {.timeout_ms = timeout_ms, .initial_buckets = 1};
    struct kern_lock_cb cb = {.on_grant = r_grant, .on_fail = r_fail};
    struct kern_lock_mgr *m = kern_lock_new(&c, &cb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint64_t now = 0;
    bool shield[R_FRAGS] = {false};
    long grants = 0, waits = 0, dls = 0;
    for (int step = 0; step < steps; step++) {
        unsigned op = rnd(100);
        struct rtx *x = &rt[rnd(R_TX)];
        if (op < 3) {
            now += rnd(60);
            kern_lock_tick(m, now);
        } else if (op < 5) {
            int f = (int)rnd(R_FRAGS);
            shield[f] = !shield[f];
            CU_ASSERT_FATAL(kern_lock_shield(m, T, (uint32_t)f, shield[f]) >= 0);
        } else if (x->state == 0 || x->state == 1) {
            if (x->state == 0) {
                x->id = r_next_id++;
                x->state = 1;
            }
            if (op < 20 && x->id) {
                r_release(m, x);
            } else {
                int f = (int)rnd(R_FRAGS), k = (int)rnd(R_KEYS);
                unsigned pick = rnd(6);
                int md = pick < 3 ? S : pick < 5 ? I : X;
                int rc = kern_lock_acquire(m, x->id, T, (uint32_t)f, K((uint32_t)k), 4,
                                           (enum kern_lock_mode)md, (uint64_t)(f * 256 + k));
                if (rc == G) {
                    x->mode[f][k] = join(x->mode[f][k], md);
                    grants++;
                } else if (rc == W) {
                    x->state = 2;
                    x->pf = f;
                    x->pk = k;
                    x->pmode = join(x->mode[f][k], md);
                    waits++;
                } else {
                    CU_ASSERT_EQUAL_FATAL(rc, NINES_EDEADLOCK);
                    x->state = 3;
                    dls++;
                }
            }
        } else if (x->state == 2) {
            if (op < 7) /* abort while waiting (e.g. another fragment failed) */
                r_release(m, x);
        } else if (x->state == 3) {
            r_release(m, x);
        }
        if (rnd(4))
            kern_lock_dispatch(m);
        r_verify(m);
    }
    /* wind down: lower shields, then commit everything that can go */
    for (int f = 0; f < R_FRAGS; f++)
        kern_lock_shield(m, T, (uint32_t)f, false);
    for (int round = 0; round < 10 * R_TX; round++) {
        kern_lock_dispatch(m);
        r_verify(m);
        for (int i = 0; i < R_TX; i++)
            if (rt[i].id && rt[i].state != 2)
                r_release(m, &rt[i]);
    }
    kern_lock_dispatch(m);
    for (int i = 0; i < R_TX; i++)
        CU_ASSERT_EQUAL(rt[i].id, 0);
    struct kern_lock_stats st;
    kern_lock_stats(m, &st);
    CU_ASSERT_EQUAL(st.heads, 0);
    CU_ASSERT_EQUAL(st.txns, 0);
    CU_ASSERT_EQUAL(st.held, 0);
    CU_ASSERT_EQUAL(st.waiting + st.shielded, 0);
    CU_ASSERT_EQUAL(kern_lock_pending(m), 0);
    CU_ASSERT(st.grants_late > 0);
    CU_ASSERT(st.deadlocks > 0);
    printf("  (%d steps: %ld at once, %ld waits, %" PRIu64 " late grants, %ld own deadlocks, "
           "%" PRIu64 " deadlocks, %" PRIu64 " timeouts)\n",
           steps, grants, waits, st.grants_late, dls, st.deadlocks, st.timeouts);
    ck(m);
    kern_lock_free(m);
}

static void test_random(void)
{
    unsigned long seed = cu_seed(20240611);
    int steps = getenv("NINES_LONG") ? 400000 : 40000;
    run_random(seed, steps, 0);
    run_random(seed + 1, steps, 150);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"compatibility matrix", test_matrix},
        {"names: key, fragment, table", test_names},
        {"FIFO grants, no overtaking", test_fifo},
        {"many S granted together", test_many_shared},
        {"upgrade S to X", test_upgrade},
        {"upgrade deadlock", test_upgrade_deadlock},
        {"re-entrant requests", test_reentrant},
        {"deadlock cycle of 2", test_deadlock2},
        {"deadlock cycle of 3", test_deadlock3},
        {"deadlock cycle of 12", test_deadlock_long},
        {"no false deadlocks", test_no_false_deadlock},
        {"lock wait timeout", test_timeout},
        {"timeout spares an older waiter (cross-node cycles)", test_timeout_spares_older},
        {"fragment shield", test_shield},
        {"shield: deadlock and timeout", test_shield_deadlock_and_timeout},
        {"standby refuses record locks", test_standby},
        {"INC: compatibility, upgrades, FIFO", test_inc},
        {"INC: deadlocks", test_inc_deadlock},
        {"argument and state errors", test_errors},
        {"release while waiting, free", test_release_waiting},
        {"callbacks re-enter", test_callbacks_reenter},
        {"randomized against invariants", test_random},
        {NULL, NULL},
    };
    cu_add_suite("kern_lock", NULL, NULL, cases);
}
