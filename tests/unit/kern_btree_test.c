/* B+tree: a model-based randomized test (insert/update/delete/get/scan
 * against arrays indexed by the rank of each key in a sorted key universe),
 * cursor stability under modification, splits and merges down to an empty
 * tree and back, errors and memory accounting. NINES_LONG=1 runs ~10x more. */
#include "kernel/kern_btree.h"
#include "kernel/kern_bt_node.h" /* slot layout, for the corruption case */
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

static bool long_run(void)
{
    const char *e = getenv("NINES_LONG");
    return e && *e && strcmp(e, "0") != 0;
}

static const struct kern_col vcol = {KERN_T_INT64, 0, 0};

static struct kern_rec *mkrec(int64_t v, uint64_t sid)
{
    struct kern_val val = kern_v_i64(v);
    struct kern_rec *r = NULL;
    N_ASSERT(kern_rec_build(&vcol, 1, &val, sid, &r) == 0);
    return r;
}

static int64_t recval(const struct kern_rec *r)
{
    struct kern_val v;
    N_ASSERT(kern_rec_col(r, &vcol, 1, 0, &v) == 0);
    return v.u.i64;
}

#define CHECK_TREE(t)                                                            \
    do {                                                                         \
        int rc_ = kern_bt_check(t);                                              \
        if (rc_ != 0)                                                            \
            fprintf(stderr, "kern_bt_check: %s\n", nines_errdetail());           \
        CU_ASSERT_EQUAL_FATAL(rc_, 0);                                           \
    } while (0)

/* ---- key universe ---- */

struct ukey {
    uint8_t *k;
    size_t n;
};

struct univ {
    struct ukey *keys; /* sorted, unique */
    size_t n;
};

static int ukey_cmp(const void *a, const void *b)
{
    const struct ukey *x = a, *y = b;
    return kern_key_cmp(x->k, x->n, y->k, y->n);
}

static uint8_t pattern[KERN_KEY_MAX];

/* Keys of 1..2048 bytes, mostly short; many share long prefixes so
 * separators get long (and out of line) too. */
static void rnd_key(uint8_t *k, size_t *n, int long_share)
{
    int r = (int)(rnd() % 100);
    size_t len;
    if (r < 100 - long_share - 25)
        len = 1 + rnd() % 12;
    else if (r < 100 - long_share)
        len = 13 + rnd() % 244;
    else if (r < 100 - long_share / 3)
        len = 257 + rnd() % 844;
    else
        len = 1101 + rnd() % (KERN_KEY_MAX - 1100);
    size_t pre = rnd() % 3 == 0 ? rnd() % len : 0;
    memcpy(k, pattern, pre);
    static const uint8_t alpha[] = {0x00, 0x01, 'a', 'b', 0xfe, 0xff};
    for (size_t i = pre; i < len; i++)
        k[i] = rnd() % 2 ? alpha[rnd() % 6] : (uint8_t)rnd();
    *n = len;
}

static void univ_make(struct univ *u, size_t want, int long_share)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)('A' + i % 7);
    u->keys = malloc(want * sizeof *u->keys);
    N_ASSERT(u->keys);
    uint8_t buf[KERN_KEY_MAX];
    for (size_t i = 0; i < want; i++) {
        size_t n;
        rnd_key(buf, &n, long_share);
        u->keys[i].k = malloc(n);
        N_ASSERT(u->keys[i].k);
        memcpy(u->keys[i].k, buf, n);
        u->keys[i].n = n;
    }
    qsort(u->keys, want, sizeof *u->keys, ukey_cmp);
    size_t w = 0;
    for (size_t i = 0; i < want; i++) {
        if (w && ukey_cmp(&u->keys[w - 1], &u->keys[i]) == 0) {
            free(u->keys[i].k);
            continue;
        }
        u->keys[w++] = u->keys[i];
    }
    u->n = w;
}

static void univ_free(struct univ *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->keys[i].k);
    free(u->keys);
}

/* Rank of the first universe key >= k. */
static size_t univ_lb(const struct univ *u, const uint8_t *k, size_t n)
{
    size_t lo = 0, hi = u->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kern_key_cmp(u->keys[mid].k, u->keys[mid].n, k, n) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- the model: presence and state id per universe rank ---- */

struct model {
    const struct univ *u;
    uint8_t *present;
    uint64_t *sid;
    size_t *list, *where; /* present ranks, for picking one at random */
    size_t count;
};

static void model_init(struct model *m, const struct univ *u)
{
    m->u = u;
    m->present = calloc(u->n, 1);
    m->sid = calloc(u->n, sizeof *m->sid);
    m->list = malloc(u->n * sizeof *m->list);
    m->where = malloc(u->n * sizeof *m->where);
    m->count = 0;
    N_ASSERT(m->present && m->sid && m->list && m->where);
}

static void model_free(struct model *m)
{
    free(m->present);
    free(m->sid);
    free(m->list);
    free(m->where);
}

static void model_add(struct model *m, size_t r, uint64_t sid)
{
    m->present[r] = 1;
    m->sid[r] = sid;
    m->where[r] = m->count;
    m->list[m->count++] = r;
}

static void model_del(struct model *m, size_t r)
{
    m->present[r] = 0;
    size_t w = m->where[r], last = m->list[--m->count];
    m->list[w] = last;
    m->where[last] = w;
}

/* Next present rank >= r (u->n when none) / previous present rank <= r
 * (SIZE_MAX when none). */
static size_t model_next(const struct model *m, size_t r)
{
    while (r < m->u->n && !m->present[r])
        r++;
    return r;
}

static size_t model_prev(const struct model *m, size_t r)
{
    for (;;) {
        if (r == SIZE_MAX)
            return r;
        if (m->present[r])
            return r;
        r--;
    }
}

/* Rank of the cursor's key (it is always a universe key here). */
static size_t cur_rank(const struct model *m, const struct kern_bt_cursor *c)
{
    size_t r = univ_lb(m->u, c->key, c->klen);
    N_ASSERT(r < m->u->n && kern_key_cmp(m->u->keys[r].k, m->u->keys[r].n, c->key, c->klen) == 0);
    return r;
}

static void expect_at(const struct model *m, const struct kern_bt_cursor *c, int rc, size_t want)
{
    if (want >= m->u->n || want == SIZE_MAX) {
        CU_ASSERT_EQUAL_FATAL(rc, NINES_ENOTFOUND);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    const struct ukey *k = &m->u->keys[want];
    CU_ASSERT_EQUAL_FATAL(c->klen, k->n);
    CU_ASSERT_EQUAL_FATAL(memcmp(c->key, k->k, k->n), 0);
    CU_ASSERT_EQUAL_FATAL(c->rec->sid, m->sid[want]);
    CU_ASSERT_EQUAL_FATAL(recval(c->rec), (int64_t)want);
}

/* One random scan from a random point, checked step by step. */
static void scan_check(struct kern_bt *t, const struct model *m)
{
    const struct univ *u = m->u;
    struct kern_bt_cursor c;
    kern_bt_cursor_init(&c, t);
    uint8_t k[KERN_KEY_MAX];
    size_t kn;
    if (rnd() % 2) {
        const struct ukey *x = &u->keys[rnd() % u->n];
        memcpy(k, x->k, x->n);
        kn = x->n;
    } else {
        rnd_key(k, &kn, 10);
    }
    size_t lb = univ_lb(u, k, kn);
    bool exact = lb < u->n && ukey_cmp(&u->keys[lb], &(struct ukey){k, kn}) == 0;
    size_t r;
    int rc;
    switch (rnd() % 6) {
    case 0:
        rc = kern_bt_seek_ge(&c, k, kn);
        r = model_next(m, lb);
        break;
    case 1:
        rc = kern_bt_seek_le(&c, k, kn);
        r = model_prev(m, exact ? lb : lb - 1);
        break;
    case 4:
        rc = kern_bt_seek_gt(&c, k, kn);
        r = model_next(m, exact ? lb + 1 : lb);
        break;
    case 5:
        rc = kern_bt_seek_lt(&c, k, kn);
        r = model_prev(m, lb - 1); /* lb 0: SIZE_MAX, none */
        break;
    case 2:
        rc = kern_bt_first(&c);
        r = model_next(m, 0);
        break;
    default:
        rc = kern_bt_last(&c);
        r = model_prev(m, u->n - 1);
        break;
    }
    expect_at(m, &c, rc, r);
    if (rc < 0)
        return;
    bool fwd = rnd() % 2;
    for (int steps = (int)(rnd() % 40); steps > 0; steps--) {
        if (rnd() % 8 == 0)
            fwd = !fwd;
        if (fwd) {
            rc = kern_bt_next(&c);
            r = model_next(m, r + 1);
        } else {
            rc = kern_bt_prev(&c);
            r = model_prev(m, r - 1);
        }
        expect_at(m, &c, rc, r);
        if (rc < 0)
            return;
    }
}

struct mstats {
    uint64_t ops, ins, del, upd, get, scan, max_count;
    int max_height;
};

/* Random operations; the insert share swings between growing and
 * shrinking phases so the tree repeatedly deepens and empties. */
static void run_model(unsigned long seed, size_t nuniv, int long_share, uint64_t nops,
                      struct mstats *st)
{
    rng_s = seed;
    struct univ u;
    univ_make(&u, nuniv, long_share);
    struct model m;
    model_init(&m, &u);
    struct kern_bt *t;
    CU_ASSERT_EQUAL_FATAL(kern_bt_create(&t), 0);
    uint64_t sid = 1, phase_len = 1000 + nuniv + rnd() % (2 * nuniv);
    bool grow = true;
    for (uint64_t op = 0; op < nops; op++) {
        if (op % phase_len == 0) {
            grow = !grow || m.count == 0;
            if (m.count > u.n * 9 / 10)
                grow = false;
        }
        unsigned w = (unsigned)(rnd() % 100);
        unsigned p_ins = grow ? 55 : 15, p_del = grow ? 15 : 55;
        size_t r = rnd() % u.n;
        const struct ukey *k = &u.keys[r];
        if (w < p_ins) {
            struct kern_rec *rec = mkrec((int64_t)r, sid);
            int rc = kern_bt_insert(t, k->k, k->n, rec);
            if (m.present[r]) {
                CU_ASSERT_EQUAL_FATAL(rc, NINES_EEXIST);
                kern_rec_free(rec);
            } else {
                CU_ASSERT_EQUAL_FATAL(rc, 0);
                model_add(&m, r, sid);
            }
            sid++;
            st->ins++;
        } else if (w < p_ins + p_del) {
            if (m.count && rnd() % 4) {
                r = m.list[rnd() % m.count];
                k = &u.keys[r];
            }
            struct kern_rec *old = NULL;
            int rc = kern_bt_delete(t, k->k, k->n, &old);
            if (m.present[r]) {
                CU_ASSERT_EQUAL_FATAL(rc, 0);
                CU_ASSERT_EQUAL_FATAL(old->sid, m.sid[r]);
                kern_rec_free(old);
                model_del(&m, r);
            } else {
                CU_ASSERT_EQUAL_FATAL(rc, NINES_ENOTFOUND);
            }
            st->del++;
        } else if (w < p_ins + p_del + 12) {
            if (m.count && rnd() % 4) {
                r = m.list[rnd() % m.count];
                k = &u.keys[r];
            }
            struct kern_rec *rec = mkrec((int64_t)r, sid), *old = NULL;
            int rc = kern_bt_update(t, k->k, k->n, rec, &old);
            if (m.present[r]) {
                CU_ASSERT_EQUAL_FATAL(rc, 0);
                CU_ASSERT_EQUAL_FATAL(old->sid, m.sid[r]);
                kern_rec_free(old);
                m.sid[r] = sid;
            } else {
                CU_ASSERT_EQUAL_FATAL(rc, NINES_ENOTFOUND);
                kern_rec_free(rec);
            }
            sid++;
            st->upd++;
        } else if (w < 98) {
            struct kern_rec *rec = NULL;
            int rc = kern_bt_get(t, k->k, k->n, &rec);
            if (m.present[r]) {
                CU_ASSERT_EQUAL_FATAL(rc, 0);
                CU_ASSERT_EQUAL_FATAL(rec->sid, m.sid[r]);
                CU_ASSERT_EQUAL_FATAL(recval(rec), (int64_t)r);
            } else {
                CU_ASSERT_EQUAL_FATAL(rc, NINES_ENOTFOUND);
            }
            st->get++;
        } else {
            scan_check(t, &m);
            st->scan++;
        }
        if (m.count > st->max_count)
            st->max_count = m.count;
        if (kern_bt_height(t) > st->max_height)
            st->max_height = kern_bt_height(t);
        if ((op + 1) % 4096 == 0) {
            CU_ASSERT_EQUAL_FATAL(kern_bt_count(t), m.count);
            CHECK_TREE(t);
        }
    }
    CHECK_TREE(t);
    st->ops += nops;
    kern_bt_destroy(t);
    model_free(&m);
    univ_free(&u);
}

static void test_model(void)
{
    unsigned long base = cu_seed(101);
    uint64_t mult = long_run() ? 10 : 1;
    /* universe size, share (%) of keys over 256 bytes, operations */
    static const struct { size_t nuniv; int long_share; uint64_t ops; } runs[] = {
        {300, 10, 100000},     /* a few leaves, constant merging */
        {4000, 10, 300000},
        {60000, 3, 400000},    /* depth 3, tens of thousands of rows */
        {8000, 60, 250000},    /* mostly out-of-line keys */
    };
    struct mstats st = {0};
    for (unsigned i = 0; i < sizeof runs / sizeof runs[0]; i++)
        run_model(base + i, runs[i].nuniv, runs[i].long_share, runs[i].ops * mult, &st);
    printf("    %llu ops (ins %llu del %llu upd %llu get %llu scan %llu), max rows %llu, "
           "max height %d\n", (unsigned long long)st.ops, (unsigned long long)st.ins,
           (unsigned long long)st.del, (unsigned long long)st.upd, (unsigned long long)st.get,
           (unsigned long long)st.scan, (unsigned long long)st.max_count, st.max_height);
    CU_ASSERT(st.ops >= 1000000);
    CU_ASSERT(st.max_height >= 3);
}

/* Scans with random modifications between every step: next() must return
 * the smallest key present now above the cursor, prev() the largest below. */
static void test_cursor_random(void)
{
    rng_s = cu_seed(202);
    struct univ u;
    univ_make(&u, 5000, 5);
    struct model m;
    model_init(&m, &u);
    struct kern_bt *t;
    CU_ASSERT_EQUAL_FATAL(kern_bt_create(&t), 0);
    uint64_t sid = 1;
    for (size_t r = 0; r < u.n; r++)
        if (rnd() % 2) {
            CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, u.keys[r].k, u.keys[r].n,
                                                 mkrec((int64_t)r, sid)), 0);
            model_add(&m, r, sid++);
        }
    int scans = long_run() ? 2000 : 200;
    for (int s = 0; s < scans; s++) {
        struct kern_bt_cursor c;
        kern_bt_cursor_init(&c, t);
        bool fwd = rnd() % 2;
        int rc = fwd ? kern_bt_first(&c) : kern_bt_last(&c);
        expect_at(&m, &c, rc, fwd ? model_next(&m, 0) : model_prev(&m, u.n - 1));
        while (rc == 0) {
            size_t cr = cur_rank(&m, &c);
            /* modify: the current key, its neighbours, random keys */
            for (int j = (int)(rnd() % 4); j > 0; j--) {
                size_t r;
                switch (rnd() % 4) {
                case 0: r = cr; break;
                case 1: r = cr + 1 < u.n ? cr + 1 : cr; break;
                case 2: r = cr > 0 ? cr - 1 : cr; break;
                default: r = rnd() % u.n; break;
                }
                if (m.present[r]) {
                    CU_ASSERT_EQUAL_FATAL(kern_bt_delete(t, u.keys[r].k, u.keys[r].n, NULL), 0);
                    model_del(&m, r);
                } else {
                    CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, u.keys[r].k, u.keys[r].n,
                                                         mkrec((int64_t)r, sid)), 0);
                    model_add(&m, r, sid++);
                }
            }
            if (rnd() % 10 == 0)
                fwd = !fwd;
            if (fwd) {
                rc = kern_bt_next(&c);
                expect_at(&m, &c, rc, model_next(&m, cr + 1));
            } else {
                rc = kern_bt_prev(&c);
                expect_at(&m, &c, rc, cr == 0 ? SIZE_MAX : model_prev(&m, cr - 1));
            }
        }
        /* keep the population around half */
        while (m.count < u.n / 3) {
            size_t r = rnd() % u.n;
            if (!m.present[r]) {
                CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, u.keys[r].k, u.keys[r].n,
                                                     mkrec((int64_t)r, sid)), 0);
                model_add(&m, r, sid++);
            }
        }
        if (s % 20 == 0)
            CHECK_TREE(t);
    }
    CHECK_TREE(t);
    kern_bt_destroy(t);
    model_free(&m);
    univ_free(&u);
}

static void k2(uint8_t *k, unsigned v)
{
    k[0] = (uint8_t)(v >> 8);
    k[1] = (uint8_t)v;
}

static void expect_key(struct kern_bt_cursor *c, int rc, int v)
{
    if (v < 0) {
        CU_ASSERT_EQUAL(rc, NINES_ENOTFOUND);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(c->klen, 2);
    CU_ASSERT_EQUAL(c->key[0] << 8 | c->key[1], v);
    CU_ASSERT_EQUAL(recval(c->rec), v);
}

static void put(struct kern_bt *t, unsigned v)
{
    uint8_t k[2];
    k2(k, v);
    CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, k, 2, mkrec(v, v)), 0);
}

static void del(struct kern_bt *t, unsigned v)
{
    uint8_t k[2];
    k2(k, v);
    CU_ASSERT_EQUAL_FATAL(kern_bt_delete(t, k, 2, NULL), 0);
}

/* The documented rule, step by step. */
static void test_cursor_rule(void)
{
    struct kern_bt *t;
    CU_ASSERT_EQUAL_FATAL(kern_bt_create(&t), 0);
    struct kern_bt_cursor c;
    kern_bt_cursor_init(&c, t);
    CU_ASSERT_EQUAL(kern_bt_next(&c), NINES_ENOTFOUND); /* empty tree */
    CU_ASSERT_EQUAL(kern_bt_prev(&c), NINES_ENOTFOUND);
    for (unsigned v = 10; v <= 100; v += 10)
        put(t, v);
    uint8_t k[2];
    k2(k, 25);
    expect_key(&c, kern_bt_seek_ge(&c, k, 2), 30);
    del(t, 30);                        /* current key deleted */
    expect_key(&c, kern_bt_next(&c), 40);
    put(t, 35);                        /* inserted behind the cursor: not seen */
    put(t, 45);                        /* inserted ahead: seen */
    expect_key(&c, kern_bt_next(&c), 45);
    del(t, 50);                        /* the next key deleted */
    expect_key(&c, kern_bt_next(&c), 60);
    expect_key(&c, kern_bt_prev(&c), 45); /* backwards: 50 is gone */
    del(t, 45);
    del(t, 40);
    expect_key(&c, kern_bt_prev(&c), 35);
    put(t, 36);                        /* ahead of a backward scan: not seen */
    expect_key(&c, kern_bt_prev(&c), 20);
    expect_key(&c, kern_bt_prev(&c), 10);
    expect_key(&c, kern_bt_prev(&c), -1); /* before the first */
    put(t, 5);
    expect_key(&c, kern_bt_prev(&c), 5);  /* the end is not sticky */
    expect_key(&c, kern_bt_next(&c), 10);
    /* seek_le, last, running off the end and coming back */
    k2(k, 99);
    expect_key(&c, kern_bt_seek_le(&c, k, 2), 90);
    expect_key(&c, kern_bt_next(&c), 100);
    expect_key(&c, kern_bt_next(&c), -1);
    expect_key(&c, kern_bt_prev(&c), 100); /* back from past the end */
    expect_key(&c, kern_bt_next(&c), -1);
    put(t, 200);
    expect_key(&c, kern_bt_next(&c), 200);
    expect_key(&c, kern_bt_last(&c), 200);
    expect_key(&c, kern_bt_first(&c), 5);
    k2(k, 201);
    expect_key(&c, kern_bt_seek_ge(&c, k, 2), -1);
    expect_key(&c, kern_bt_prev(&c), 200);
    k2(k, 4);
    expect_key(&c, kern_bt_seek_le(&c, k, 2), -1);
    expect_key(&c, kern_bt_next(&c), 5);
    k2(k, 36);
    expect_key(&c, kern_bt_seek_le(&c, k, 2), 36);
    expect_key(&c, kern_bt_seek_ge(&c, k, 2), 36);
    /* strict seeks: past a present key, from an absent one, off both ends;
     * the key may be the cursor's own (resuming where it stood) */
    expect_key(&c, kern_bt_seek_gt(&c, k, 2), 60);  /* 36 present: the next is 60 */
    expect_key(&c, kern_bt_seek_lt(&c, k, 2), 35);
    k2(k, 37);
    expect_key(&c, kern_bt_seek_gt(&c, k, 2), 60);  /* 37 absent */
    expect_key(&c, kern_bt_seek_lt(&c, k, 2), 36);
    expect_key(&c, kern_bt_seek_gt(&c, c.key, c.klen), 60);
    expect_key(&c, kern_bt_seek_lt(&c, c.key, c.klen), 36);
    k2(k, 200);
    expect_key(&c, kern_bt_seek_gt(&c, k, 2), -1);
    expect_key(&c, kern_bt_prev(&c), 200);          /* the end is not sticky */
    k2(k, 5);
    expect_key(&c, kern_bt_seek_lt(&c, k, 2), -1);
    expect_key(&c, kern_bt_next(&c), 5);
    CU_ASSERT_EQUAL(kern_bt_seek_gt(&c, k, 0), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_bt_seek_lt(&c, k, KERN_KEY_MAX + 1), NINES_ETOOBIG);
    k2(k, 36);
    expect_key(&c, kern_bt_seek_ge(&c, k, 2), 36);
    /* update keeps the position; the cursor sees the new record next time */
    uint8_t k60[2];
    k2(k60, 60);
    struct kern_rec *old = NULL;
    CU_ASSERT_EQUAL(kern_bt_update(t, k60, 2, mkrec(60, 6000), &old), 0);
    CU_ASSERT_EQUAL(old->sid, 60);
    kern_rec_free(old);
    expect_key(&c, kern_bt_next(&c), 60);
    CU_ASSERT_EQUAL(c.rec->sid, 6000);
    CU_ASSERT_EQUAL(kern_bt_seek_ge(&c, k, 0), NINES_EINVAL);
    CHECK_TREE(t);
    kern_bt_destroy(t);
}

/* Many keys in one scan while the tree splits and merges under it. */
static void test_cursor_big(void)
{
    struct kern_bt *t;
    CU_ASSERT_EQUAL_FATAL(kern_bt_create(&t), 0);
    uint8_t k[8];
    for (uint32_t v = 0; v < 40000; v += 2) {
        memset(k, 0, 8);
        k[4] = (uint8_t)(v >> 24); k[5] = (uint8_t)(v >> 16); k[6] = (uint8_t)(v >> 8);
        k[7] = (uint8_t)v;
        CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, k, 8, mkrec(v, v)), 0);
    }
    /* forward scan inserting the odd key after each even one (seen next)
     * and deleting the even key two behind (already passed) */
    struct kern_bt_cursor c;
    kern_bt_cursor_init(&c, t);
    uint32_t want = 0;
    int rc = kern_bt_first(&c);
    while (rc == 0) {
        CU_ASSERT_EQUAL_FATAL(recval(c.rec), want);
        if (want % 2 == 0) {
            memcpy(k, c.key, 8);
            k[7] |= 1;
            CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, k, 8, mkrec(want + 1, 0)), 0);
            if (want >= 4) {
                uint32_t d = want - 4;
                memset(k, 0, 8);
                k[4] = (uint8_t)(d >> 24); k[5] = (uint8_t)(d >> 16); k[6] = (uint8_t)(d >> 8);
                k[7] = (uint8_t)d;
                CU_ASSERT_EQUAL_FATAL(kern_bt_delete(t, k, 8, NULL), 0);
            }
        }
        want++;
        rc = kern_bt_next(&c);
    }
    CU_ASSERT_EQUAL(want, 40000);
    CU_ASSERT_EQUAL(kern_bt_count(t), 40000 - 19998);
    CHECK_TREE(t);
    /* backward scan deleting every key it passes */
    uint64_t seen = 0;
    for (rc = kern_bt_last(&c); rc == 0; rc = kern_bt_prev(&c)) {
        CU_ASSERT_EQUAL_FATAL(kern_bt_delete(t, c.key, c.klen, NULL), 0);
        seen++;
    }
    CU_ASSERT_EQUAL(seen, 40000 - 19998);
    CU_ASSERT_EQUAL(kern_bt_count(t), 0);
    CU_ASSERT_EQUAL(kern_bt_height(t), 1);
    CHECK_TREE(t);
    kern_bt_destroy(t);
}

/* Grow to depth >= 3 and shrink to an empty single leaf, twice, with short
 * keys and with long (out-of-line) keys sharing long prefixes. */
static void grow_shrink(size_t klen, uint32_t n, int want_h)
{
    struct kern_bt *t;
    CU_ASSERT_EQUAL_FATAL(kern_bt_create(&t), 0);
    uint8_t *keys = malloc((size_t)n * klen);
    uint32_t *perm = malloc(n * sizeof *perm);
    N_ASSERT(keys && perm);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *k = keys + (size_t)i * klen;
        memset(k, 'p', klen);
        k[klen - 4] = (uint8_t)(i >> 24); k[klen - 3] = (uint8_t)(i >> 16);
        k[klen - 2] = (uint8_t)(i >> 8); k[klen - 1] = (uint8_t)i;
        perm[i] = i;
    }
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = n - 1; i > 0; i--) {
            uint32_t j = (uint32_t)(rnd() % (i + 1)), x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        int hmax = 1, hprev = 1;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t v = round ? perm[i] : i; /* ascending, then random */
            CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, keys + (size_t)v * klen, klen,
                                                 mkrec(v, v)), 0);
            int h = kern_bt_height(t);
            CU_ASSERT_FATAL(h == hprev || h == hprev + 1);
            hprev = h;
            if (h > hmax)
                hmax = h;
            if (i % 5000 == 0)
                CHECK_TREE(t);
        }
        CHECK_TREE(t);
        if (hmax < want_h)
            fprintf(stderr, "klen %zu n %u: height %d\n", klen, n, hmax);
        CU_ASSERT(hmax >= want_h);
        struct kern_rec *dup = mkrec(0, 0);
        CU_ASSERT_EQUAL(kern_bt_insert(t, keys, klen, dup), NINES_EEXIST);
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "already in the tree"));
        kern_rec_free(dup);
        for (uint32_t i = n - 1; i > 0; i--) {
            uint32_t j = (uint32_t)(rnd() % (i + 1)), x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        for (uint32_t i = 0; i < n; i++) {
            uint32_t v = round ? n - 1 - i : perm[i]; /* random, then descending */
            struct kern_rec *old = NULL;
            CU_ASSERT_EQUAL_FATAL(kern_bt_delete(t, keys + (size_t)v * klen, klen, &old), 0);
            CU_ASSERT_EQUAL_FATAL(old->sid, v);
            kern_rec_free(old);
            int h = kern_bt_height(t);
            CU_ASSERT_FATAL(h == hprev || h == hprev - 1);
            hprev = h;
            if (i % 5000 == 0)
                CHECK_TREE(t);
        }
        CHECK_TREE(t);
        struct kern_bt_mem mem;
        kern_bt_mem(t, &mem);
        CU_ASSERT_EQUAL(mem.rows, 0);
        CU_ASSERT_EQUAL(mem.height, 1);
        CU_ASSERT_EQUAL(mem.nodes, 1);
        CU_ASSERT_EQUAL(mem.key_bytes, 0);
        CU_ASSERT_EQUAL(mem.rec_bytes, 0);
    }
    kern_bt_destroy(t);
    free(keys);
    free(perm);
}

static void test_grow_shrink(void)
{
    rng_s = cu_seed(303);
    grow_shrink(8, 60000, 3);
    grow_shrink(300, 40000, 3);  /* out-of-line keys and separators */
    grow_shrink(2048, 6000, 2);  /* maximal keys */
}

/* A tree freed a slice at a time (kern_bt_destroy_step): each call frees
 * at most about its budget, the calls end with 0, and nothing leaks or is
 * freed twice (the ASan run checks); a sliced destroy cut short by
 * kern_bt_destroy finishes there. Keys of 8 and of 300 bytes (out-of-line
 * keys and separators). */
static void destroy_in_slices(size_t klen, unsigned n, size_t budget, bool cut_short)
{
    struct kern_bt *t = NULL;
    CU_ASSERT_EQUAL_FATAL(kern_bt_create(&t), 0);
    uint8_t *k = calloc(1, klen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    for (unsigned i = 0; i < n; i++) {
        for (size_t b = 0; b < 4; b++)
            k[b] = (uint8_t)(i >> (24 - 8 * b));
        k[klen - 1] = (uint8_t)i;
        CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, k, klen, mkrec((int64_t)i, 1)), 0);
    }
    free(k);
    CU_ASSERT_EQUAL(kern_bt_count(t), n);
    unsigned calls = 0;
    int more = 1;
    while (more) {
        more = kern_bt_destroy_step(t, budget);
        calls++;
        if (cut_short && calls == 3 && more) {
            kern_bt_destroy(t);
            return;
        }
        CU_ASSERT_FATAL(calls <= 2 * n / budget + 16); /* it ends */
    }
    /* every record and node takes part of a budget: n / budget calls at least */
    CU_ASSERT(calls >= n / budget);
    if (n > budget) {
        CU_ASSERT(calls > 1);
    } else {
        CU_ASSERT_EQUAL(calls, 1);
    }
}

static void test_destroy_slices(void)
{
    destroy_in_slices(8, 100000, 4096, false);
    destroy_in_slices(300, 20000, 1000, false);
    destroy_in_slices(8, 50000, 1000, true);
    destroy_in_slices(8, 1, 1000, false); /* one leaf: one call */
}

static void test_errors_mem(void)
{
    struct kern_bt *t;
    CU_ASSERT_EQUAL_FATAL(kern_bt_create(&t), 0);
    uint8_t big[KERN_KEY_MAX + 1];
    memset(big, 7, sizeof big);
    struct kern_rec *r = mkrec(1, 1), *got = NULL;
    CU_ASSERT_EQUAL(kern_bt_insert(t, big, 0, r), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "empty key"));
    CU_ASSERT_EQUAL(kern_bt_insert(t, big, KERN_KEY_MAX + 1, r), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "2049 bytes"));
    CU_ASSERT_EQUAL(kern_bt_insert(t, big, 1, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_bt_get(t, big, 1, &got), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(kern_bt_get(t, big, KERN_KEY_MAX + 1, &got), NINES_ETOOBIG);
    CU_ASSERT_EQUAL(kern_bt_update(t, big, 1, r, NULL), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "update: no key of 1 bytes"));
    CU_ASSERT_EQUAL(kern_bt_delete(t, big, 1, NULL), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(kern_bt_insert(t, big, KERN_KEY_MAX, r), 0);
    CU_ASSERT_EQUAL(kern_bt_get(t, big, KERN_KEY_MAX, &got), 0);
    CU_ASSERT_PTR_EQUAL(got, r);
    CU_ASSERT_EQUAL(kern_bt_get(t, big, KERN_KEY_MAX - 1, &got), NINES_ENOTFOUND);

    /* memory accounting follows records and out-of-line keys */
    struct kern_bt_mem m;
    kern_bt_mem(t, &m);
    CU_ASSERT_EQUAL(m.rows, 1);
    CU_ASSERT(m.rec_bytes >= kern_rec_bytes(r));
    CU_ASSERT(m.key_bytes >= KERN_KEY_MAX);
    CU_ASSERT(m.node_bytes >= 4096);
    CU_ASSERT_EQUAL(m.total, kern_bt_bytes(t));
    CU_ASSERT_EQUAL(m.total, m.node_bytes + m.key_bytes + m.rec_bytes + m.other_bytes);
    CU_ASSERT(m.bytes_per_row >= (double)m.total - 0.5);
    size_t before = m.rec_bytes;
    uint8_t payload[1000] = {0};
    struct kern_col bc = {KERN_T_VBYTES, 0, 0};
    struct kern_val bv = kern_v_bytes(KERN_T_VBYTES, payload, sizeof payload);
    struct kern_rec *fat = NULL;
    CU_ASSERT_EQUAL_FATAL(kern_rec_build(&bc, 1, &bv, 2, &fat), 0);
    CU_ASSERT_EQUAL(kern_bt_update(t, big, KERN_KEY_MAX, fat, NULL), 0);
    kern_bt_mem(t, &m);
    CU_ASSERT(m.rec_bytes >= before + 900);
    CU_ASSERT_EQUAL(kern_bt_delete(t, big, KERN_KEY_MAX, NULL), 0);
    kern_bt_mem(t, &m);
    CU_ASSERT_EQUAL(m.rec_bytes, 0);
    CU_ASSERT_EQUAL(m.key_bytes, 0);
    CU_ASSERT_EQUAL(m.bytes_per_row, 0.0);
    CHECK_TREE(t);
    kern_bt_destroy(t);
}

/* Keys whose 8-byte slot prefixes tie: zero-padded short keys that are
 * prefixes of each other (01, 01 00, 01 00 00, ...) and long keys equal in
 * their first 8 bytes. Enough of them for internal nodes whose separators
 * tie too. Every key must be found, absent neighbours must not, and the
 * scan order must be kern_key_cmp order. Then kern_bt_check must notice a
 * slot prefix that no longer matches its key. */
static void test_prefix_ties(void)
{
    struct kern_bt *t;
    CU_ASSERT_EQUAL_FATAL(kern_bt_create(&t), 0);
    enum { NLONG = 3000 };
    uint8_t k[16];
    int64_t v = 0;
    for (size_t n = 1; n <= 12; n++) { /* 01 followed by zeros */
        memset(k, 0, sizeof k);
        k[0] = 1;
        CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, k, n, mkrec(v++, 1)), 0);
    }
    for (uint32_t i = 0; i < NLONG; i++) { /* 8 equal bytes, then i */
        memset(k, 0xab, 8);
        uint32_t j = (i * 1777u) % NLONG; /* shuffled: 1777 is coprime to NLONG */
        k[8] = (uint8_t)(j >> 8);
        k[9] = (uint8_t)j;
        CU_ASSERT_EQUAL_FATAL(kern_bt_insert(t, k, 10, mkrec(1000 + j, 1)), 0);
    }
    CHECK_TREE(t);
    CU_ASSERT(kern_bt_height(t) >= 2);
    struct kern_rec *got = NULL;
    for (size_t n = 1; n <= 12; n++) {
        memset(k, 0, sizeof k);
        k[0] = 1;
        CU_ASSERT_EQUAL(kern_bt_get(t, k, n, &got), 0);
        CU_ASSERT_EQUAL(recval(got), (int64_t)n - 1);
    }
    memset(k, 0, sizeof k);
    CU_ASSERT_EQUAL(kern_bt_get(t, k, 5, &got), NINES_ENOTFOUND); /* 00.. pads to 0 */
    k[0] = 1;
    CU_ASSERT_EQUAL(kern_bt_get(t, k, 13, &got), NINES_ENOTFOUND);
    for (uint32_t j = 0; j < NLONG; j++) {
        memset(k, 0xab, 8);
        k[8] = (uint8_t)(j >> 8);
        k[9] = (uint8_t)j;
        CU_ASSERT_EQUAL(kern_bt_get(t, k, 10, &got), 0);
        CU_ASSERT_EQUAL(recval(got), 1000 + (int64_t)j);
        CU_ASSERT_EQUAL(kern_bt_get(t, k, 9, &got), NINES_ENOTFOUND);
    }
    struct kern_bt_cursor c;
    kern_bt_cursor_init(&c, t);
    int64_t want = 0;
    for (int rc = kern_bt_first(&c); rc == 0; rc = kern_bt_next(&c)) {
        CU_ASSERT_EQUAL(recval(c.rec), want < 12 ? want : 1000 + (want - 12));
        want++;
    }
    CU_ASSERT_EQUAL(want, 12 + NLONG);

    /* a stale prefix in the first leaf's first slot is corruption */
    struct bt_node *x = t->root;
    while (!x->leaf)
        x = x->left;
    uint64_t p = bt_slot_pfx(x, 0);
    bt_slot_set(x, 0, p + 1, bt_slot_off(x, 0));
    CU_ASSERT_EQUAL(kern_bt_check(t), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "slot key prefix"));
    bt_slot_set(x, 0, p, bt_slot_off(x, 0));
    CHECK_TREE(t);
    kern_bt_destroy(t);
}

#ifdef NINES_FAULTS
/* Out of memory during insert leaves the tree valid and unchanged. */
static void test_nomem(void)
{
    struct kern_bt *t;
    CU_ASSERT_EQUAL_FATAL(kern_bt_create(&t), 0);
    uint8_t k[300];
    memset(k, 'q', sizeof k);
    nines_fault_arm("kern.bt.nomem", -1);
    uint32_t ok = 0;
    int rc = 0;
    for (uint32_t i = 0; i < 100000 && rc == 0; i++) {
        k[0] = (uint8_t)(i >> 16); k[1] = (uint8_t)(i >> 8); k[2] = (uint8_t)i;
        struct kern_rec *r = mkrec(i, i);
        rc = kern_bt_insert(t, k, 8, r);
        if (rc == 0)
            ok++;
        else
            kern_rec_free(r);
    }
    CU_ASSERT_EQUAL(rc, NINES_ENOMEM); /* the reserve ran dry eventually */
    CU_ASSERT_EQUAL(kern_bt_count(t), ok);
    CHECK_TREE(t);
    struct kern_rec *r = mkrec(0, 0);
    CU_ASSERT_EQUAL(kern_bt_insert(t, k, sizeof k, r), NINES_ENOMEM); /* out-of-line copy */
    CU_ASSERT_EQUAL(kern_bt_count(t), ok);
    nines_fault_arm("kern.bt.nomem", 0);
    CU_ASSERT_EQUAL(kern_bt_insert(t, k, sizeof k, r), 0);
    CHECK_TREE(t);
    kern_bt_destroy(t);
}
#endif

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"model", test_model},
        {"cursor_rule", test_cursor_rule},
        {"cursor_random", test_cursor_random},
        {"cursor_big", test_cursor_big},
        {"grow_shrink", test_grow_shrink},
        {"destroy_slices", test_destroy_slices},
        {"errors_mem", test_errors_mem},
        {"prefix_ties", test_prefix_ties},
#ifdef NINES_FAULTS
        {"nomem", test_nomem},
#endif
        {NULL, NULL}};
    cu_add_suite("kern_btree", NULL, NULL, cases);
}
