/* Helpers shared by kern_log_test.c and kern_ckpt_test.c: a fragment
 * schema with a composite key, a fixed key universe, a random transaction
 * workload with commits, aborts and savepoints, log shipping and
 * record-by-record replica comparison. Static: each test program includes
 * it once. */
#ifndef NINES_KERN_FRAG_TEST_UTIL_H
#define NINES_KERN_FRAG_TEST_UTIL_H

#include "kernel/kern_frag.h"
#include "cu_test.h"
#include "nassert.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_s;
static uint64_t rnd(void)
{
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int long_run(void)
{
    const char *e = getenv("NINES_LONG");
    return e && *e && strcmp(e, "0") != 0;
}

#define CHECK_RC(expr)                                                                   \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        if (rc_ < 0)                                                                     \
            fprintf(stderr, "%s:%d: %s -> %s (%s)\n", __FILE__, __LINE__, #expr,         \
                    nines_strerror(rc_), nines_errdetail());                             \
        CU_ASSERT_FATAL(rc_ >= 0);                                                       \
    } while (0)

/* table 7, columns: grp int32 | name vbytes(24) | val int64 | note vstr(64) NULL;
 * key (grp, name) */
static const struct kern_col t_cols[] = {
    {KERN_T_INT32, 0, 0},
    {KERN_T_VBYTES, 0, 24},
    {KERN_T_INT64, 0, 0},
    {KERN_T_VSTR, 1, 64},
};
static const uint16_t t_pk[] = {0, 1};

static struct kern_frag *t_frag(uint32_t fragid, int role)
{
    struct kern_frag_def d = {7, fragid, t_cols, 4, t_pk, 2};
    struct kern_frag *f = NULL;
    CHECK_RC(kern_frag_create(&d, role, &f));
    return f;
}

/* Key universe: NKEYS keys; key i = (i % 8, "n<i/8>" with a 0 byte inside). */
#define NKEYS 1200
static uint8_t t_key[NKEYS][64];
static size_t t_klen[NKEYS];

/* (called from suite setup: no CUnit asserts) */
static int t_keys_init(struct kern_frag *f)
{
    for (int i = 0; i < NKEYS; i++) {
        char nm[24];
        int n = snprintf(nm, sizeof nm, "n%d", i / 8);
        nm[n] = 0; /* an embedded zero byte exercises the key escape */
        struct kern_val row[4] = {kern_v_i32(i % 8),
                                  kern_v_bytes(KERN_T_VBYTES, nm, (uint32_t)n + 1), kern_v_i64(0),
                                  kern_v_null(KERN_T_VSTR)};
        struct kern_rec *r = NULL;
        if (kern_frag_row(f, row, t_key[i], sizeof t_key[i], &t_klen[i], &r) < 0)
            return -1;
        kern_rec_free(r);
    }
    return 0;
}

/* A record for key i with value v (the note is NULL or a string of v's length). */
static struct kern_rec *t_rec(struct kern_frag *f, int i, int64_t v)
{
    char note[64];
    unsigned nl = (unsigned)(v % 50);
    memset(note, 'a' + (int)(v % 26), nl);
    char nm[24];
    int n = snprintf(nm, sizeof nm, "n%d", i / 8);
    nm[n] = 0;
    struct kern_val row[4] = {kern_v_i32(i % 8), kern_v_bytes(KERN_T_VBYTES, nm, (uint32_t)n + 1),
                              kern_v_i64(v),
                              v % 7 == 0 ? kern_v_null(KERN_T_VSTR)
                                         : kern_v_bytes(KERN_T_VSTR, note, nl)};
    uint8_t k[64];
    size_t kl;
    struct kern_rec *r = NULL;
    CHECK_RC(kern_frag_row(f, row, k, sizeof k, &kl, &r));
    N_ASSERT(kl == t_klen[i] && memcmp(k, t_key[i], kl) == 0);
    return r;
}

/* Model of one replica's visible values: present flag + value per key. */
struct model {
    uint8_t present[NKEYS];
    int64_t val[NKEYS];
};

static int64_t t_val(const struct kern_frag *f, const struct kern_rec *r)
{
    unsigned n;
    const struct kern_col *rc = kern_frag_rec_cols(f, &n);
    struct kern_val v;
    N_ASSERT(kern_rec_col(r, rc, n, 0, &v) == 0);
    return v.u.i64;
}

static void t_model_of(const struct kern_frag *f, struct model *m)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < NKEYS; i++) {
        const struct kern_rec *r;
        if (kern_frag_get(f, t_key[i], t_klen[i], &r) == 0) {
            m->present[i] = 1;
            m->val[i] = t_val(f, r);
        }
    }
}

/* One random operation of txn on a key the transaction "locks" (the
 * caller keeps keys of concurrent transactions disjoint): insert when
 * absent, else update, add (val += delta, logged as ADD) or delete.
 * Updates the model. Returns the LSN. */
static uint64_t t_op(struct kern_frag *f, uint64_t txn, int i, struct model *m)
{
    uint64_t lsn = 0;
    const struct kern_rec *cur;
    if (kern_frag_get(f, t_key[i], t_klen[i], &cur) != 0) {
        int64_t v = (int64_t)(rnd() % 1000000);
        struct kern_rec *r = t_rec(f, i, v);
        CHECK_RC(kern_frag_insert(f, txn, t_key[i], t_klen[i], r, &lsn));
        if (m) {
            m->present[i] = 1;
            m->val[i] = v;
        }
    } else if (rnd() % 4 == 0) {
        int64_t d = (int64_t)(rnd() % 2001) - 1000;
        CHECK_RC(kern_frag_add(f, txn, t_key[i], t_klen[i], 2, d, &lsn));
        if (m)
            m->val[i] += d;
    } else if (rnd() % 3) {
        int64_t v = (int64_t)(rnd() % 1000000);
        struct kern_rec *r = t_rec(f, i, v);
        CHECK_RC(kern_frag_update(f, txn, t_key[i], t_klen[i], r, &lsn));
        if (m)
            m->val[i] = v;
    } else {
        CHECK_RC(kern_frag_delete(f, txn, t_key[i], t_klen[i], &lsn));
        if (m)
            m->present[i] = 0;
    }
    return lsn;
}

/* A whole random transaction: 1..maxops operations on distinct keys, a
 * savepoint rollback now and then, then commit (or abort, 1 in 4). The
 * model follows the outcome. Returns 1 when committed. */
static int t_txn(struct kern_frag *f, uint64_t txn, int maxops, struct model *m)
{
    struct model before = *m;
    int nops = 1 + (int)(rnd() % (unsigned)maxops);
    struct model sp_model;
    uint64_t sp = 0;
    int have_sp = 0;
    for (int k = 0; k < nops; k++) {
        if (!have_sp && k > 0 && rnd() % 5 == 0) {
            sp = kern_frag_txn_last_lsn(f, txn);
            sp_model = *m;
            have_sp = 1;
        }
        t_op(f, txn, (int)(rnd() % NKEYS), m);
    }
    if (have_sp && rnd() % 2) {
        CHECK_RC(kern_frag_rollback(f, txn, sp));
        *m = sp_model;
    }
    if (rnd() % 4 == 0) {
        CHECK_RC(kern_frag_abort(f, txn, NULL));
        *m = before;
        return 0;
    }
    CHECK_RC(kern_frag_commit_gci(f, txn, txn / 7, NULL)); /* epochs grow with the ids */
    return 1;
}

/* Replicas equal record by record: same keys, same record bytes
 * (state ids included when with_sid), same count. */
static int t_equal(const struct kern_frag *a, const struct kern_frag *b, int with_sid)
{
    struct kern_bt_cursor ca, cb;
    kern_bt_cursor_init(&ca, kern_frag_tree(a));
    kern_bt_cursor_init(&cb, kern_frag_tree(b));
    if (kern_bt_count(kern_frag_tree(a)) != kern_bt_count(kern_frag_tree(b))) {
        fprintf(stderr, "t_equal: %llu vs %llu records\n",
                (unsigned long long)kern_bt_count(kern_frag_tree(a)),
                (unsigned long long)kern_bt_count(kern_frag_tree(b)));
        return 0;
    }
    for (uint64_t n = 0;; n++) {
        int ra = kern_bt_next(&ca), rb = kern_bt_next(&cb);
        if (ra != rb)
            return 0;
        if (ra == NINES_ENOTFOUND)
            return 1;
        if (kern_key_cmp(ca.key, ca.klen, cb.key, cb.klen) != 0) {
            fprintf(stderr, "t_equal: key %llu differs\n", (unsigned long long)n);
            return 0;
        }
        size_t la = kern_rec_bytes(ca.rec), lb = kern_rec_bytes(cb.rec);
        size_t skip = with_sid ? 0 : 8; /* the sid is the first 8 bytes */
        if (la != lb || memcmp((const uint8_t *)ca.rec + skip, (const uint8_t *)cb.rec + skip,
                               la - skip) != 0) {
            fprintf(stderr, "t_equal: record %llu differs (sid %llu vs %llu)\n",
                    (unsigned long long)n, (unsigned long long)ca.rec->sid,
                    (unsigned long long)cb.rec->sid);
            return 0;
        }
    }
}

/* Model equals the replica's visible values (quiet: no message). */
static int t_matches_q(const struct kern_frag *f, const struct model *m, int quiet)
{
    struct model x;
    t_model_of(f, &x);
    for (int i = 0; i < NKEYS; i++)
        if (x.present[i] != m->present[i] || (x.present[i] && x.val[i] != m->val[i])) {
            if (!quiet)
                fprintf(stderr, "t_matches: key %d: replica %d/%lld, model %d/%lld\n", i,
                        x.present[i], (long long)x.val[i], m->present[i], (long long)m->val[i]);
            return 0;
        }
    return 1;
}

static int t_matches(const struct kern_frag *f, const struct model *m)
{
    return t_matches_q(f, m, 0);
}

/* Ship src's log records [from, to) to dst by bytes (to 0: to the end). */
static void t_ship(const struct kern_frag *src, struct kern_frag *dst, uint64_t from, uint64_t to)
{
    struct kern_log_cursor c;
    kern_log_cursor_init(&c, kern_frag_log(src), from);
    const uint8_t *p;
    size_t n;
    while ((!to || c.lsn < to) && kern_log_cursor_next(&c, &p, &n) == 0)
        CHECK_RC(kern_frag_redo_bytes(dst, p, n));
}

#endif
