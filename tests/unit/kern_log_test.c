/* Log records, undo with CLRs and redo by state id: codec round trips and
 * fuzzing, the in-memory log and its cursor, aborts and savepoints against
 * a model, takeover in the middle of an undo, and randomized replay of a
 * primary's whole log onto hot standbys (whole, twice, random prefixes,
 * duplicated records); ADD records (commutative increments): logical undo
 * under interleaving, overflow and escrow bounds, replay and takeover.
 * NINES_LONG=1 runs more transactions. */
#include "kern_frag_test_util.h"

#include "crc32c.h"

/* ---- codec ---- */

static uint8_t img_a[64], img_b[64];

/* A record image: 16-byte header + `body` bytes of pattern. */
static uint32_t mk_img(uint8_t *img, uint64_t sid, uint32_t body)
{
    memset(img, 0, 16);
    memcpy(img, &sid, 8);
    memcpy(img + 8, &body, 4);
    img[12] = KERN_REC_VERSION;
    for (uint32_t i = 0; i < body; i++)
        img[16 + i] = (uint8_t)(i * 7 + sid);
    return 16 + body;
}

static const uint8_t kkey[] = {1, 0x80, 0, 0, 5, 1, 'k', 0, 0};

/* One well-formed record of each op (index 0..8). */
static struct kern_logrec sample(int which)
{
    struct kern_logrec r = {.lsn = 100 + (uint64_t)which, .txn = 42, .sid = 900, .prev_lsn = 50,
                            .table = 7, .frag = 3, .key = kkey, .klen = sizeof kkey};
    uint32_t bl = mk_img(img_b, 800, 20), al = mk_img(img_a, 900, 30);
    switch (which) {
    case 0:
        r.op = KERN_LOG_INSERT;
        r.after = img_a, r.alen = al;
        break;
    case 1:
        r.op = KERN_LOG_UPDATE;
        r.before = img_b, r.blen = bl;
        r.after = img_a, r.alen = al;
        break;
    case 2:
        r.op = KERN_LOG_DELETE;
        r.before = img_b, r.blen = bl;
        break;
    case 3:
        r.op = KERN_LOG_CLR_INSERT;
        r.after = img_a, r.alen = al;
        r.comp_lsn = 60, r.undo_next_lsn = 40;
        break;
    case 4:
        r.op = KERN_LOG_CLR_UPDATE;
        r.after = img_a, r.alen = al;
        r.comp_lsn = 60, r.undo_next_lsn = 0;
        break;
    case 5:
        r.op = KERN_LOG_CLR_DELETE;
        r.comp_lsn = 99, r.undo_next_lsn = 98;
        break;
    case 8:
        r.op = KERN_LOG_ADD;
        r.before = img_b, r.blen = bl;
        r.after = img_a, r.alen = al;
        r.column = 2, r.delta = -123456789012345;
        break;
    case 6:
        r.op = KERN_LOG_COMMIT;
        r.key = NULL, r.klen = 0, r.sid = 0;
        r.gci = 0x0102030405060708ull;
        break;
    default:
        r.op = KERN_LOG_ABORT;
        r.key = NULL, r.klen = 0, r.sid = 0;
        break;
    }
    return r;
}

static void test_roundtrip(void)
{
    uint8_t buf[512], buf2[512];
    for (int w = 0; w < 9; w++) {
        struct kern_logrec r = sample(w), d;
        int n = kern_logrec_encode(&r, buf, sizeof buf);
        CU_ASSERT_EQUAL_FATAL(n, (int)kern_logrec_size(&r));
        CU_ASSERT_EQUAL_FATAL(kern_logrec_decode(buf, (size_t)n, &d), n);
        CU_ASSERT_EQUAL(d.op, r.op);
        CU_ASSERT_EQUAL(d.lsn, r.lsn);
        CU_ASSERT_EQUAL(d.txn, r.txn);
        CU_ASSERT_EQUAL(d.sid, r.sid);
        CU_ASSERT_EQUAL(d.prev_lsn, r.prev_lsn);
        CU_ASSERT_EQUAL(d.undo_next_lsn, r.undo_next_lsn);
        CU_ASSERT_EQUAL(d.comp_lsn, r.comp_lsn);
        CU_ASSERT_EQUAL(d.table, 7);
        CU_ASSERT_EQUAL(d.frag, 3);
        CU_ASSERT_EQUAL(d.klen, r.klen);
        CU_ASSERT_EQUAL(d.blen, r.blen);
        CU_ASSERT_EQUAL(d.alen, r.alen);
        CU_ASSERT_EQUAL(d.column, r.column);
        CU_ASSERT_EQUAL(d.delta, r.delta);
        CU_ASSERT_EQUAL(d.gci, r.gci);
        if (r.klen)
            CU_ASSERT(memcmp(d.key, r.key, r.klen) == 0);
        if (r.blen)
            CU_ASSERT(memcmp(d.before, r.before, r.blen) == 0);
        if (r.alen)
            CU_ASSERT(memcmp(d.after, r.after, r.alen) == 0);
        /* deterministic: re-encoding the decoded record gives the same bytes */
        CU_ASSERT_EQUAL(kern_logrec_encode(&d, buf2, sizeof buf2), n);
        CU_ASSERT(memcmp(buf, buf2, (size_t)n) == 0);
        /* two records back to back: decode consumes exactly one */
        memcpy(buf2, buf, (size_t)n);
        memcpy(buf2 + n, buf, (size_t)n);
        CU_ASSERT_EQUAL(kern_logrec_decode(buf2, 2 * (size_t)n, &d), n);
        /* every shorter prefix is truncated */
        for (int k = 0; k < n; k++)
            CU_ASSERT_EQUAL(kern_logrec_decode(buf, (size_t)k, &d), NINES_ETRUNC);
    }
    /* the encoder stamps the after image with the record's state id */
    struct kern_logrec r = sample(0), d;
    r.sid = 1234;
    CU_ASSERT(kern_logrec_encode(&r, buf, sizeof buf) > 0);
    CU_ASSERT(kern_logrec_decode(buf, sizeof buf, &d) > 0);
    uint64_t s;
    memcpy(&s, d.after, 8);
    CU_ASSERT_EQUAL(s, 1234);
}

static void fix_crc(uint8_t *b, size_t n);

static void test_encode_rejects(void)
{
    uint8_t buf[512];
    struct kern_logrec r;
    r = sample(0), r.lsn = 0;
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(0), r.txn = 0;
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(0), r.prev_lsn = r.lsn;
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(0), r.before = img_b, r.blen = 36; /* insert with a before image */
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(1), r.sid = 800; /* before image not older */
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(2), r.blen = 10; /* shorter than a record header */
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(3), r.undo_next_lsn = r.comp_lsn;
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(3), r.comp_lsn = 0;
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(0), r.comp_lsn = 5; /* CLR field on a non-CLR */
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(6), r.sid = 3;
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(0), r.op = 99;
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(1);
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, 100), NINES_ETOOBIG);
    r = sample(1), r.delta = 4; /* ADD fields on another op */
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(4), r.column = 1;
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(8), r.blen = 0, r.before = NULL; /* an ADD needs its before image */
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    r = sample(8), r.comp_lsn = 5;
    CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf), NINES_EINVAL);
    for (int w = 0; w < 9; w++) { /* a commit epoch only on a COMMIT */
        r = sample(w), r.gci = 9;
        CU_ASSERT_EQUAL(kern_logrec_encode(&r, buf, sizeof buf),
                        w == 6 ? (int)kern_logrec_size(&r) : NINES_EINVAL);
    }
    /* decoding: an ABORT carrying an epoch word is refused, a COMMIT's is read */
    r = sample(7);
    int n = kern_logrec_encode(&r, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0);
    buf[64] = 3;
    fix_crc(buf, (size_t)n);
    struct kern_logrec d;
    CU_ASSERT_EQUAL(kern_logrec_decode(buf, (size_t)n, &d), NINES_ECORRUPT);
}

/* Recompute the CRC of an encoded record after editing it. */
static void fix_crc(uint8_t *b, size_t n)
{
    uint32_t c = crc32c(0, b + 8, n - 8);
    memcpy(b + 4, &c, 4);
}

static void test_fuzz(void)
{
    rng_s = cu_seed(11);
    uint8_t good[512], b[600];
    int rounds = long_run() ? 200000 : 20000;
    for (int w = 0; w < 9; w++) {
        struct kern_logrec r = sample(w), d;
        int n = kern_logrec_encode(&r, good, sizeof good);
        CU_ASSERT_FATAL(n > 0);
        /* every single-byte change is detected (CRC-32C catches any burst <= 32 bits;
         * a changed length is truncation or a CRC over other bytes) */
        for (int pos = 0; pos < n; pos++) {
            for (int bit = 0; bit < 8; bit += 3) {
                memcpy(b, good, (size_t)n);
                b[pos] ^= (uint8_t)(1u << bit);
                int rc = kern_logrec_decode(b, (size_t)n, &d);
                CU_ASSERT(rc == NINES_ECORRUPT || rc == NINES_ETRUNC || rc == NINES_EVERSION);
            }
        }
        /* a wrong version with a valid CRC is a version error */
        memcpy(b, good, (size_t)n);
        b[8] = 2;
        fix_crc(b, (size_t)n);
        CU_ASSERT_EQUAL(kern_logrec_decode(b, (size_t)n, &d), NINES_EVERSION);
    }
    /* random edits, with and without a repaired CRC, never crash; an
     * accepted record re-encodes to exactly its bytes */
    int accepted = 0;
    for (int k = 0; k < rounds; k++) {
        struct kern_logrec r = sample((int)(rnd() % 8)), d;
        int n = kern_logrec_encode(&r, good, sizeof good);
        memcpy(b, good, (size_t)n);
        int edits = 1 + (int)(rnd() % 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = 8 + rnd() % (size_t)(n - 8);
            if (rnd() % 4 == 0 && pos < KERN_LOG_HDR)
                pos = 8 + (rnd() % 72); /* header fields are the interesting part */
            b[pos] = (uint8_t)rnd();
        }
        size_t len = (size_t)n;
        if (rnd() % 8 == 0)
            len = rnd() % (size_t)(n + 1);
        int fixed = rnd() % 2;
        if (fixed && len >= 8)
            fix_crc(b, len);
        int rc = kern_logrec_decode(b, len, &d);
        if (rc >= 0) {
            CU_ASSERT_FATAL(rc <= (int)len);
            uint8_t again[600];
            CU_ASSERT_EQUAL_FATAL(kern_logrec_encode(&d, again, sizeof again), rc);
            CU_ASSERT(memcmp(again, b, (size_t)rc) == 0);
            accepted++;
        } else {
            CU_ASSERT(rc == NINES_ECORRUPT || rc == NINES_ETRUNC || rc == NINES_EVERSION);
            CU_ASSERT(nines_errdetail()[0] != 0);
        }
    }
    printf("\n  fuzz: %d of %d edited records still well formed\n", accepted, rounds);
    /* pure garbage */
    for (int k = 0; k < rounds; k++) {
        size_t len = rnd() % sizeof b;
        for (size_t i = 0; i < len; i++)
            b[i] = (uint8_t)rnd();
        if (len >= 4 && rnd() % 2) {
            uint32_t l = (uint32_t)(KERN_LOG_HDR + rnd() % 64);
            memcpy(b, &l, 4);
        }
        struct kern_logrec d;
        CU_ASSERT(kern_logrec_decode(b, len, &d) < 0);
    }
}

/* ---- the in-memory log ---- */

static void test_log_cursor(void)
{
    struct kern_log *l;
    CHECK_RC(kern_log_create(1, &l));
    uint8_t big[3000];
    memset(big, 0x5a, sizeof big);
    const uint64_t N = 3000;
    for (uint64_t i = 1; i <= N; i++) {
        struct kern_logrec r = sample(0);
        r.lsn = i, r.prev_lsn = i - 1;
        r.sid = i + 1000;
        /* records of varying size, some large, span several segments */
        uint32_t body = (uint32_t)(i % 97 == 0 ? 2900 : i % 300);
        memcpy(big, &r.sid, 8);
        memcpy(big + 8, &body, 4);
        big[12] = KERN_REC_VERSION;
        r.after = big, r.alen = 16 + body;
        CHECK_RC(kern_log_append(l, &r));
    }
    CU_ASSERT_EQUAL(kern_log_next_lsn(l), N + 1);
    CU_ASSERT_EQUAL(kern_log_count(l), N);
    struct kern_logrec d;
    for (uint64_t i = 1; i <= N; i++) {
        CU_ASSERT_EQUAL_FATAL(kern_log_read(l, i, &d), 0);
        CU_ASSERT_EQUAL(d.lsn, i);
        CU_ASSERT_EQUAL(d.alen, 16 + (i % 97 == 0 ? 2900 : i % 300));
    }
    CU_ASSERT_EQUAL(kern_log_read(l, N + 1, &d), NINES_ENOTFOUND);
    struct kern_logrec bad = sample(0);
    bad.lsn = N + 5;
    CU_ASSERT_EQUAL(kern_log_append(l, &bad), NINES_EINVAL);

    /* cursor from the middle; not sticky at the end */
    struct kern_log_cursor c;
    kern_log_cursor_init(&c, l, 1500);
    const uint8_t *p;
    size_t n;
    uint64_t want = 1500;
    while (kern_log_cursor_next(&c, &p, &n) == 0) {
        CU_ASSERT_EQUAL_FATAL(kern_logrec_decode(p, n, &d), (int)n);
        CU_ASSERT_EQUAL(d.lsn, want);
        want++;
    }
    CU_ASSERT_EQUAL(want, N + 1);
    struct kern_logrec r = sample(6);
    r.lsn = N + 1, r.prev_lsn = 0;
    CHECK_RC(kern_log_append(l, &r));
    CU_ASSERT_EQUAL(kern_log_cursor_next(&c, &p, &n), 0);
    CU_ASSERT_EQUAL(kern_log_cursor_next(&c, &p, &n), NINES_ENOTFOUND);

    /* truncation frees whole segments below the bound, never above it */
    size_t bytes = kern_log_bytes(l);
    uint64_t freed = kern_log_truncate(l, 2000);
    CU_ASSERT(freed > 0 && freed < 2000);
    CU_ASSERT(kern_log_first_lsn(l) <= 2000 && kern_log_first_lsn(l) == freed + 1);
    CU_ASSERT(kern_log_bytes(l) < bytes);
    CU_ASSERT_EQUAL(kern_log_count(l), N + 1 - freed);
    CU_ASSERT_EQUAL(kern_log_read(l, 1, &d), NINES_ESTALE);
    CU_ASSERT_EQUAL(kern_log_read(l, 2000, &d), 0);
    kern_log_cursor_init(&c, l, 1);
    CU_ASSERT_EQUAL(kern_log_cursor_next(&c, &p, &n), NINES_ESTALE);
    /* truncating everything keeps the last segment (readable records stay) */
    kern_log_truncate(l, N + 2);
    CU_ASSERT_EQUAL(kern_log_read(l, N + 1, &d), 0);
    CU_ASSERT_EQUAL(kern_log_reset(l, 5), NINES_ESTATE);
    kern_log_destroy(l);

    CHECK_RC(kern_log_create(77, &l));
    CU_ASSERT_EQUAL(kern_log_first_lsn(l), 77);
    CHECK_RC(kern_log_reset(l, 500));
    CU_ASSERT_EQUAL(kern_log_next_lsn(l), 500);
    kern_log_destroy(l);
}

/* ---- undo ---- */

static struct kern_frag *P, *S;
static struct model M;

static int setup(void)
{
    struct kern_frag_def d = {7, 3, t_cols, 4, t_pk, 2};
    if (kern_frag_create(&d, KERN_FRAG_PRIMARY, &P) < 0 ||
        kern_frag_create(&d, KERN_FRAG_HOT_STANDBY, &S) < 0)
        return -1;
    return t_keys_init(P);
}

static int teardown(void)
{
    kern_frag_destroy(P);
    kern_frag_destroy(S);
    P = S = NULL;
    return 0;
}

/* Fresh primary with `n` committed keys (txn 1). */
static void base(int n)
{
    kern_frag_destroy(P);
    P = t_frag(3, KERN_FRAG_PRIMARY);
    memset(&M, 0, sizeof M);
    for (int i = 0; i < n; i++)
        t_op(P, 1, (int)(rnd() % NKEYS), &M);
    CHECK_RC(kern_frag_commit(P, 1, NULL));
}

/* sid of key i in f, 0 when absent */
static uint64_t sid_of(const struct kern_frag *f, int i)
{
    const struct kern_rec *r;
    return kern_frag_get(f, t_key[i], t_klen[i], &r) == 0 ? r->sid : 0;
}

static void test_abort_restores(void)
{
    rng_s = cu_seed(21);
    base(600);
    uint64_t sids[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        sids[i] = sid_of(P, i);
    struct model before = M;
    uint8_t touched[NKEYS] = {0};
    int ops = 0;
    for (int k = 0; k < 300; k++) {
        int i = (int)(rnd() % NKEYS);
        t_op(P, 9, i, &M);
        touched[i] = 1;
        ops++;
    }
    CU_ASSERT(!t_matches_q(P, &before, 1)); /* the transaction changed something */
    uint64_t next = kern_log_next_lsn(kern_frag_log(P));
    uint64_t nsid = kern_frag_next_sid(P);
    int clrs = kern_frag_rollback(P, 9, 0);
    CU_ASSERT_EQUAL(clrs, ops);
    CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(P)), next + (uint64_t)ops);
    CU_ASSERT(t_matches(P, &before));
    /* sids: a key the transaction touched moved forward (its CLR's state,
     * or it is absent as before); the others kept theirs */
    for (int i = 0; i < NKEYS; i++) {
        uint64_t s = sid_of(P, i);
        if (!touched[i]) {
            CU_ASSERT_EQUAL(s, sids[i]);
        } else if (before.present[i]) {
            CU_ASSERT(s > sids[i] && s >= nsid);
        } else {
            CU_ASSERT_EQUAL(s, 0);
        }
    }
    /* a second rollback finds everything compensated: no CLR */
    CU_ASSERT_EQUAL(kern_frag_rollback(P, 9, 0), 0);
    CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(P)), next + (uint64_t)ops);
    uint64_t alsn;
    CHECK_RC(kern_frag_abort(P, 9, &alsn)); /* writes only the ABORT record */
    CU_ASSERT_EQUAL(alsn, next + (uint64_t)ops);
    CU_ASSERT_EQUAL(kern_frag_txn_last_lsn(P, 9), 0);
    CU_ASSERT_EQUAL(kern_frag_abort(P, 9, &alsn), 0);
    CU_ASSERT_EQUAL(alsn, 0);
    CU_ASSERT(t_matches(P, &before));
    /* every CLR compensates one record of txn 9, at most once */
    uint8_t *seen = calloc(next, 1);
    struct kern_logrec d;
    for (uint64_t l = next; l < next + (uint64_t)ops; l++) {
        CHECK_RC(kern_log_read(kern_frag_log(P), l, &d));
        CU_ASSERT_FATAL(kern_log_op_is_clr(d.op));
        CU_ASSERT_FATAL(d.comp_lsn < next);
        CU_ASSERT(!seen[d.comp_lsn]);
        seen[d.comp_lsn] = 1;
        struct kern_logrec u;
        CHECK_RC(kern_log_read(kern_frag_log(P), d.comp_lsn, &u));
        CU_ASSERT_EQUAL(u.txn, 9);
        CU_ASSERT_EQUAL(d.undo_next_lsn, u.prev_lsn);
    }
    free(seen);
    CU_ASSERT_EQUAL(kern_bt_check(kern_frag_tree(P)), 0);
}

static void test_savepoint(void)
{
    rng_s = cu_seed(22);
    base(300);
    struct model m0 = M;
    for (int k = 0; k < 40; k++)
        t_op(P, 5, (int)(rnd() % NKEYS), &M);
    uint64_t sp = kern_frag_txn_last_lsn(P, 5);
    struct model m1 = M;
    for (int k = 0; k < 30; k++)
        t_op(P, 5, (int)(rnd() % NKEYS), &M);
    CU_ASSERT_EQUAL(kern_frag_rollback(P, 5, sp), 30);
    CU_ASSERT(t_matches(P, &m1));
    CU_ASSERT_EQUAL(kern_frag_rollback(P, 5, sp), 0);
    M = m1;
    for (int k = 0; k < 20; k++)
        t_op(P, 5, (int)(rnd() % NKEYS), &M);
    /* the full rollback undoes the 20 new and the 40 first records; the 30
     * compensated ones are jumped over */
    CU_ASSERT_EQUAL(kern_frag_rollback(P, 5, 0), 60);
    CU_ASSERT(t_matches(P, &m0));
    CU_ASSERT_EQUAL(kern_frag_rollback(P, 5, 0), 0);
    CHECK_RC(kern_frag_commit(P, 5, NULL)); /* committing an undone transaction is allowed */
    CU_ASSERT(t_matches(P, &m0));
}

static void test_interleaved(void)
{
    rng_s = cu_seed(23);
    base(400);
    /* three transactions on disjoint key classes (i % 3), interleaved */
    struct model m[3];
    struct model start = M;
    for (int t = 0; t < 3; t++)
        m[t] = M;
    for (int k = 0; k < 600; k++) {
        int t = (int)(rnd() % 3);
        int i = (int)(rnd() % (NKEYS / 3)) * 3 + t;
        t_op(P, 100 + (uint64_t)t, i, &m[t]);
    }
    uint64_t txns[8];
    CU_ASSERT_EQUAL(kern_frag_txns(P, txns, 8), 3);
    CU_ASSERT(kern_frag_undo_floor(P) < kern_log_next_lsn(kern_frag_log(P)));
    CHECK_RC(kern_frag_abort(P, 101, NULL));
    CHECK_RC(kern_frag_commit(P, 100, NULL));
    CHECK_RC(kern_frag_commit(P, 102, NULL));
    CU_ASSERT_EQUAL(kern_frag_txns(P, txns, 8), 0);
    CU_ASSERT_EQUAL(kern_frag_undo_floor(P), kern_log_next_lsn(kern_frag_log(P)));
    struct model want = start;
    for (int i = 0; i < NKEYS; i++) {
        if (i % 3 == 1)
            continue;
        want.present[i] = m[i % 3].present[i];
        want.val[i] = m[i % 3].val[i];
    }
    CU_ASSERT(t_matches(P, &want));
}

/* A primary aborts a transaction; its standby received the log only up
 * to the k-th CLR when the primary failed. The promoted standby finishes
 * the undo: it skips what was compensated and writes the very same
 * records (LSNs and state ids) the old primary wrote. */
static void test_takeover_mid_undo(void)
{
    rng_s = cu_seed(24);
    for (int round = 0; round < 6; round++) {
        base(300);
        for (int k = 0; k < 50; k++)
            t_op(P, 8, (int)(rnd() % NKEYS), &M);
        uint64_t a = kern_log_next_lsn(kern_frag_log(P));
        CHECK_RC(kern_frag_abort(P, 8, NULL));
        uint64_t end = kern_log_next_lsn(kern_frag_log(P));
        CU_ASSERT_EQUAL(end - a, 51); /* 50 CLRs and the ABORT */
        uint64_t cut = a + (uint64_t)round * 10; /* 0, 10, ..., 50 CLRs shipped */
        kern_frag_destroy(S);
        S = t_frag(3, KERN_FRAG_HOT_STANDBY);
        t_ship(P, S, 1, cut);
        uint64_t tx[4];
        CU_ASSERT_EQUAL(kern_frag_txns(S, tx, 4), 1);
        CU_ASSERT_EQUAL(tx[0], 8);
        CU_ASSERT_EQUAL(kern_frag_abort(S, 8, NULL), NINES_ENOTPRIMARY);
        CHECK_RC(kern_frag_set_role(S, KERN_FRAG_PROMOTING));
        CHECK_RC(kern_frag_set_role(S, KERN_FRAG_PRIMARY));
        int clrs = kern_frag_rollback(S, 8, 0);
        CU_ASSERT_EQUAL(clrs, 50 - round * 10);
        CHECK_RC(kern_frag_abort(S, 8, NULL));
        CU_ASSERT(t_equal(P, S, 1));
        CU_ASSERT_EQUAL(kern_frag_next_sid(S), kern_frag_next_sid(P));
        CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(S)), end);
        for (uint64_t l = a; l < end; l++) {
            const uint8_t *p1, *p2;
            size_t n1, n2;
            CHECK_RC(kern_log_get(kern_frag_log(P), l, &p1, &n1));
            CHECK_RC(kern_log_get(kern_frag_log(S), l, &p2, &n2));
            CU_ASSERT(n1 == n2 && memcmp(p1, p2, n1) == 0);
        }
    }
}

/* ---- redo ---- */

static void test_redo_replay(void)
{
    unsigned long seed0 = cu_seed(31);
    int ntx = long_run() ? 20000 : 3000;
    for (unsigned long s = 0; s < 3; s++) {
        rng_s = seed0 + s * 7919;
        kern_frag_destroy(P);
        P = t_frag(3, KERN_FRAG_PRIMARY);
        memset(&M, 0, sizeof M);
        int commits = 0;
        for (int t = 0; t < ntx; t++)
            commits += t_txn(P, 1000 + (uint64_t)t, 8, &M);
        CU_ASSERT(t_matches(P, &M));
        CU_ASSERT(commits > ntx / 2 && commits < ntx);
        uint64_t end = kern_log_next_lsn(kern_frag_log(P));
        struct kern_frag_stats ps;
        kern_frag_stats(P, &ps);
        CU_ASSERT(ps.clrs > 0);
        CU_ASSERT(kern_frag_max_gci(P) > 0 && kern_frag_max_gci(P) <= (1000 + (uint64_t)ntx) / 7);

        /* whole log onto an empty standby */
        kern_frag_destroy(S);
        S = t_frag(3, KERN_FRAG_HOT_STANDBY);
        t_ship(P, S, 1, 0);
        CU_ASSERT(t_equal(P, S, 1));
        CU_ASSERT_EQUAL(kern_frag_next_sid(S), kern_frag_next_sid(P));
        CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(S)), end);
        CU_ASSERT_EQUAL(kern_log_bytes(kern_frag_log(S)), kern_log_bytes(kern_frag_log(P)));
        CU_ASSERT_EQUAL(kern_frag_txns(S, NULL, 0), 0);
        CU_ASSERT_EQUAL(kern_bt_check(kern_frag_tree(S)), 0);
        CU_ASSERT_EQUAL(kern_frag_max_gci(S), kern_frag_max_gci(P)); /* redo keeps the epoch */
        /* twice: nothing changes, every record is a duplicate */
        struct kern_frag_stats st0, st1;
        kern_frag_stats(S, &st0);
        t_ship(P, S, 1, 0);
        kern_frag_stats(S, &st1);
        CU_ASSERT(t_equal(P, S, 1));
        CU_ASSERT_EQUAL(st1.redo_applied, st0.redo_applied);
        CU_ASSERT_EQUAL(st1.redo_dup - st0.redo_dup, end - 1);

        /* random prefixes, repeatedly, from the start: then the rest */
        kern_frag_destroy(S);
        S = t_frag(3, KERN_FRAG_HOT_STANDBY);
        for (int k = 0; k < 12; k++)
            t_ship(P, S, 1, 1 + rnd() % end);
        t_ship(P, S, 1, 0);
        CU_ASSERT(t_equal(P, S, 1));

        /* every record duplicated, some three times, older ones re-sent */
        kern_frag_destroy(S);
        S = t_frag(3, KERN_FRAG_HOT_STANDBY);
        for (uint64_t l = 1; l < end; l++) {
            t_ship(P, S, l, l + 1);
            t_ship(P, S, l, l + 1);
            if (rnd() % 5 == 0) {
                uint64_t old = 1 + rnd() % l;
                t_ship(P, S, old, old + 1);
            }
        }
        CU_ASSERT(t_equal(P, S, 1));
        CU_ASSERT_EQUAL(kern_frag_next_sid(S), kern_frag_next_sid(P));
    }
}

static void test_redo_rules(void)
{
    rng_s = cu_seed(32);
    base(50);
    kern_frag_destroy(S);
    S = t_frag(3, KERN_FRAG_HOT_STANDBY);
    t_ship(P, S, 1, 0);
    uint64_t end = kern_log_next_lsn(kern_frag_log(P));
    struct model ms;
    t_model_of(S, &ms);

    /* a gap is refused, nothing applied */
    t_op(P, 2, 5, &M);
    t_op(P, 2, 6, &M);
    CHECK_RC(kern_frag_commit(P, 2, NULL));
    struct kern_logrec r;
    CHECK_RC(kern_log_read(kern_frag_log(P), end + 1, &r));
    CU_ASSERT_EQUAL(kern_frag_redo(S, &r), NINES_ESTATE);
    CU_ASSERT(t_matches(S, &ms));
    CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(S)), end);

    /* wrong fragment, wrong role */
    CHECK_RC(kern_log_read(kern_frag_log(P), end, &r));
    r.frag = 4;
    CU_ASSERT_EQUAL(kern_frag_redo(S, &r), NINES_EINVAL);
    r.frag = 3;
    CU_ASSERT_EQUAL(kern_frag_redo(P, &r), NINES_ESTATE);
    struct kern_rec *x = t_rec(S, 1, 5);
    CU_ASSERT_EQUAL(kern_frag_insert(S, 3, t_key[1], t_klen[1], x, NULL), NINES_ENOTPRIMARY);
    kern_rec_free(x);

    /* the state-id rule alone: a record older than the stored state changes
     * nothing (the fuzzy-checkpoint case), a newer one applies */
    struct kern_logrec u = r;
    CU_ASSERT(u.op == KERN_LOG_INSERT || u.op == KERN_LOG_UPDATE || u.op == KERN_LOG_DELETE);
    CU_ASSERT_EQUAL(kern_frag_redo(S, &u), 1);
    t_ship(P, S, end + 1, 0);
    CU_ASSERT(t_equal(P, S, 1));
    int i = -1;
    for (int k = 0; k < NKEYS && i < 0; k++)
        if (M.present[k])
            i = k;
    CU_ASSERT_FATAL(i >= 0);
    const struct kern_rec *cur;
    CHECK_RC(kern_frag_get(S, t_key[i], t_klen[i], &cur));
    uint8_t img[256];
    size_t il = kern_rec_bytes(cur);
    CU_ASSERT_FATAL(il <= sizeof img);
    memcpy(img, cur, il);
    struct kern_logrec old = {.lsn = kern_log_next_lsn(kern_frag_log(S)), .txn = 77,
                              .sid = cur->sid - 1 ? cur->sid - 1 : 1, .table = 7, .frag = 3,
                              .op = KERN_LOG_DELETE, .key = t_key[i], .klen = (uint32_t)t_klen[i]};
    uint64_t zero = 0;
    memcpy(img, &zero, 8);
    old.before = img, old.blen = (uint32_t)il;
    if (cur->sid > 1) {
        CU_ASSERT_EQUAL(kern_frag_redo(S, &old), 0); /* older delete: ignored */
        CU_ASSERT_EQUAL(kern_frag_get(S, t_key[i], t_klen[i], &cur), 0);
        old.lsn++;
    }
    old.sid = kern_frag_next_sid(S) + 10;
    CU_ASSERT_EQUAL(kern_frag_redo(S, &old), 1); /* newer delete: applied */
    CU_ASSERT_EQUAL(kern_frag_get(S, t_key[i], t_klen[i], &cur), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(kern_frag_next_sid(S), old.sid + 1);

    /* a record whose image does not fit the layout is corrupt */
    struct kern_logrec bad = {.lsn = kern_log_next_lsn(kern_frag_log(S)), .txn = 77,
                              .sid = old.sid + 1, .table = 7, .frag = 3,
                              .op = KERN_LOG_INSERT, .key = t_key[i], .klen = (uint32_t)t_klen[i]};
    uint8_t junk[24] = {0};
    uint32_t bl = 8;
    memcpy(junk + 8, &bl, 4);
    junk[12] = KERN_REC_VERSION;
    junk[14] = 1; /* one column, the layout has two */
    bad.after = junk, bad.alen = 24;
    CU_ASSERT_EQUAL(kern_frag_redo(S, &bad), NINES_ECORRUPT);
    CU_ASSERT_EQUAL(kern_frag_get(S, t_key[i], t_klen[i], &cur), NINES_ENOTFOUND);
}

/* ---- ADD: commutative increments ---- */

static int64_t val_of(const struct kern_frag *f, int i)
{
    const struct kern_rec *r;
    CU_ASSERT_FATAL(kern_frag_get(f, t_key[i], t_klen[i], &r) == 0);
    return t_val(f, r);
}

/* A committed record at key i with value v (txn 2). */
static void put_key(int i, int64_t v)
{
    const struct kern_rec *cur;
    struct kern_rec *r = t_rec(P, i, v);
    if (kern_frag_get(P, t_key[i], t_klen[i], &cur) == 0)
        CHECK_RC(kern_frag_update(P, 2, t_key[i], t_klen[i], r, NULL));
    else
        CHECK_RC(kern_frag_insert(P, 2, t_key[i], t_klen[i], r, NULL));
    CHECK_RC(kern_frag_commit(P, 2, NULL));
}

/* Two transactions increment the same record interleaved; one aborts: the
 * record holds exactly the other's delta (undo is logical), with one CLR
 * per ADD and a new state id; a standby redoing the log ends equal. */
static void test_add_interleaved(void)
{
    rng_s = cu_seed(41);
    base(100);
    put_key(5, 1000);
    uint64_t sid0 = sid_of(P, 5);
    uint64_t l1;
    CHECK_RC(kern_frag_add(P, 10, t_key[5], t_klen[5], 2, 5, &l1));
    CHECK_RC(kern_frag_add(P, 11, t_key[5], t_klen[5], 2, 7, NULL));
    CHECK_RC(kern_frag_add(P, 10, t_key[5], t_klen[5], 2, 100, NULL));
    CHECK_RC(kern_frag_add(P, 11, t_key[5], t_klen[5], 2, -3, NULL));
    CU_ASSERT_EQUAL(val_of(P, 5), 1109);
    struct kern_logrec lr;
    CHECK_RC(kern_log_read(kern_frag_log(P), l1, &lr));
    CU_ASSERT_EQUAL(lr.op, KERN_LOG_ADD);
    CU_ASSERT_EQUAL(lr.column, 2);
    CU_ASSERT_EQUAL(lr.delta, 5);
    CU_ASSERT(lr.blen > 0 && lr.alen > 0);
    uint64_t a = kern_log_next_lsn(kern_frag_log(P));
    CU_ASSERT_EQUAL(kern_frag_rollback(P, 10, 0), 2);
    CU_ASSERT_EQUAL(val_of(P, 5), 1004); /* 1000 + 7 - 3: txn 11's increments stay */
    CU_ASSERT(sid_of(P, 5) > sid0);
    for (uint64_t l = a; l < a + 2; l++) {
        CHECK_RC(kern_log_read(kern_frag_log(P), l, &lr));
        CU_ASSERT_EQUAL(lr.op, KERN_LOG_CLR_UPDATE);
        CU_ASSERT_EQUAL(lr.txn, 10);
    }
    CU_ASSERT_EQUAL(kern_frag_rollback(P, 10, 0), 0); /* at most one CLR per record */
    CHECK_RC(kern_frag_abort(P, 10, NULL));
    CHECK_RC(kern_frag_commit(P, 11, NULL));
    CU_ASSERT_EQUAL(val_of(P, 5), 1004);
    kern_frag_destroy(S);
    S = t_frag(3, KERN_FRAG_HOT_STANDBY);
    t_ship(P, S, 1, 0);
    CU_ASSERT(t_equal(P, S, 1));

    /* the other order: the later one aborts after the earlier committed */
    CHECK_RC(kern_frag_add(P, 12, t_key[5], t_klen[5], 2, 50, NULL));
    CHECK_RC(kern_frag_add(P, 13, t_key[5], t_klen[5], 2, -20, NULL));
    CHECK_RC(kern_frag_commit(P, 12, NULL));
    CHECK_RC(kern_frag_add(P, 14, t_key[5], t_klen[5], 2, 1, NULL));
    CHECK_RC(kern_frag_abort(P, 13, NULL));
    CHECK_RC(kern_frag_commit(P, 14, NULL));
    CU_ASSERT_EQUAL(val_of(P, 5), 1055);
    t_ship(P, S, 1, 0);
    CU_ASSERT(t_equal(P, S, 1));
    CU_ASSERT_EQUAL(kern_frag_next_sid(S), kern_frag_next_sid(P));
}

/* Overflow and escrow bounds, bad columns; nothing changes on a refusal. */
static void test_add_limits(void)
{
    rng_s = cu_seed(42);
    base(10);
    put_key(3, INT64_MAX - 10);
    uint64_t next = kern_log_next_lsn(kern_frag_log(P)), sid = kern_frag_next_sid(P);
    CU_ASSERT_EQUAL(kern_frag_add(P, 20, t_key[3], t_klen[3], 2, 11, NULL), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "overflows int64 column 2"));
    CU_ASSERT_EQUAL(kern_frag_add(P, 20, t_key[3], t_klen[3], 2, 1, NULL), 0);
    CU_ASSERT_EQUAL(kern_frag_add(P, 20, t_key[3], t_klen[3], 2, -6, NULL), 0); /* MAX - 15 */
    next += 2, sid += 2;
    /* +14 fits now (MAX - 1), but undoing txn 20's -6 would overflow */
    CU_ASSERT_EQUAL(kern_frag_add(P, 21, t_key[3], t_klen[3], 2, 14, NULL), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "pending increments"));
    CU_ASSERT_EQUAL(kern_frag_add(P, 21, t_key[3], t_klen[3], 2, 4, NULL), 0); /* MAX - 11 */
    next++, sid++;
    CU_ASSERT_EQUAL(kern_frag_add(P, 20, t_key[3], t_klen[3], 2, 0, NULL), 0);
    next++, sid++;
    /* refusals of every kind change nothing */
    CU_ASSERT_EQUAL(kern_frag_add(P, 22, t_key[3], t_klen[3], 0, 1, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "key column"));
    CU_ASSERT_EQUAL(kern_frag_add(P, 22, t_key[3], t_klen[3], 3, 1, NULL), NINES_ETYPE);
    CU_ASSERT_EQUAL(kern_frag_add(P, 22, t_key[3], t_klen[3], 4, 1, NULL), NINES_EINVAL);
    int absent = 0;
    while (sid_of(P, absent))
        absent++;
    CU_ASSERT_EQUAL(kern_frag_add(P, 22, t_key[absent], t_klen[absent], 2, 1, NULL),
                    NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(kern_frag_add(P, 0, t_key[3], t_klen[3], 2, 1, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(P)), next);
    CU_ASSERT_EQUAL(kern_frag_next_sid(P), sid);
    CU_ASSERT_EQUAL(kern_frag_txn_last_lsn(P, 22), 0);
    CHECK_RC(kern_frag_abort(P, 20, NULL));
    CU_ASSERT_EQUAL(val_of(P, 3), INT64_MAX - 6);
    CHECK_RC(kern_frag_commit(P, 21, NULL));
    /* nothing pending any more: +6 reaches MAX exactly */
    CU_ASSERT_EQUAL(kern_frag_add(P, 23, t_key[3], t_klen[3], 2, 6, NULL), 0);
    CHECK_RC(kern_frag_commit(P, 23, NULL));
    CU_ASSERT_EQUAL(val_of(P, 3), INT64_MAX);

    /* int32 column; NULL value */
    static const struct kern_col c32[] = {
        {KERN_T_INT64, 0, 0}, {KERN_T_INT32, 0, 0}, {KERN_T_INT64, 1, 0}};
    static const uint16_t pk32[] = {0};
    struct kern_frag_def d = {9, 1, c32, 3, pk32, 1};
    struct kern_frag *f;
    CHECK_RC(kern_frag_create(&d, KERN_FRAG_PRIMARY, &f));
    struct kern_val row[3] = {kern_v_i64(1), kern_v_i32(INT32_MAX - 1), kern_v_null(KERN_T_INT64)};
    uint8_t k[16];
    size_t kl;
    struct kern_rec *r;
    CHECK_RC(kern_frag_row(f, row, k, sizeof k, &kl, &r));
    CHECK_RC(kern_frag_insert(f, 1, k, kl, r, NULL));
    CHECK_RC(kern_frag_commit(f, 1, NULL));
    CU_ASSERT_EQUAL(kern_frag_add(f, 2, k, kl, 1, 2, NULL), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "int32"));
    CU_ASSERT_EQUAL(kern_frag_add(f, 2, k, kl, 1, -((int64_t)1 << 40), NULL), NINES_ETOOBIG);
    CU_ASSERT_EQUAL(kern_frag_add(f, 2, k, kl, 2, 1, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "NULL"));
    CU_ASSERT_EQUAL(kern_frag_add(f, 2, k, kl, 1, 1, NULL), 0);
    const struct kern_rec *cur;
    struct kern_val v;
    unsigned nrc;
    const struct kern_col *rc = kern_frag_rec_cols(f, &nrc);
    CHECK_RC(kern_frag_get(f, k, kl, &cur));
    CHECK_RC(kern_rec_col(cur, rc, nrc, 0, &v));
    CU_ASSERT_EQUAL(v.u.i32, INT32_MAX);
    CHECK_RC(kern_frag_abort(f, 2, NULL));
    CHECK_RC(kern_frag_get(f, k, kl, &cur));
    CHECK_RC(kern_rec_col(cur, rc, nrc, 0, &v));
    CU_ASSERT_EQUAL(v.u.i32, INT32_MAX - 1);
    kern_frag_destroy(f);
}

/* Randomized: up to 6 open transactions increment a few hot keys
 * concurrently (as INC locks allow) and commit or abort; every committed
 * value is base + the committed deltas. The whole log redone onto an empty
 * standby equals the primary record by record with state ids; a standby
 * that got a prefix, promoted, aborts its in-doubt transactions and holds
 * exactly the increments committed before the cut. */
enum { HOT = 6, OPEN = 6 };
struct add_tx {
    uint64_t id;
    int64_t d[HOT];
    uint64_t end_lsn; /* its COMMIT/ABORT record */
    int committed;
};

static void test_add_random(void)
{
    unsigned long seed = cu_seed(43);
    int steps = long_run() ? 40000 : 6000;
    rng_s = seed;
    base(100);
    int64_t base_v[HOT];
    for (int h = 0; h < HOT; h++) {
        put_key(h * 11, (int64_t)(rnd() % 100000));
        base_v[h] = val_of(P, h * 11);
    }
    uint64_t first = kern_log_next_lsn(kern_frag_log(P));
    static struct add_tx tx[20000 + OPEN];
    int ntx = 0, open[OPEN];
    for (int s = 0; s < OPEN; s++)
        open[s] = -1;
    uint64_t next_id = 100;
    for (int step = 0; step < steps && ntx < 20000; step++) {
        int s = (int)(rnd() % OPEN);
        if (open[s] < 0) {
            open[s] = ntx;
            tx[ntx++] = (struct add_tx){.id = next_id++};
        }
        struct add_tx *x = &tx[open[s]];
        unsigned what = (unsigned)(rnd() % 10);
        if (what < 7) {
            int h = (int)(rnd() % HOT);
            int64_t d = (int64_t)(rnd() % 2001) - 1000;
            CHECK_RC(kern_frag_add(P, x->id, t_key[h * 11], t_klen[h * 11], 2, d, NULL));
            x->d[h] += d;
        } else {
            x->committed = what < 9;
            CHECK_RC(x->committed ? kern_frag_commit(P, x->id, &x->end_lsn)
                                  : kern_frag_abort(P, x->id, &x->end_lsn));
            open[s] = -1;
        }
    }
    for (int s = 0; s < OPEN; s++)
        if (open[s] >= 0) {
            tx[open[s]].committed = 1;
            CHECK_RC(kern_frag_commit(P, tx[open[s]].id, &tx[open[s]].end_lsn));
        }
    int64_t want[HOT];
    for (int h = 0; h < HOT; h++) {
        want[h] = base_v[h];
        for (int i = 0; i < ntx; i++)
            if (tx[i].committed)
                want[h] += tx[i].d[h];
        CU_ASSERT_EQUAL(val_of(P, h * 11), want[h]);
    }
    kern_frag_destroy(S);
    S = t_frag(3, KERN_FRAG_HOT_STANDBY);
    t_ship(P, S, 1, 0);
    CU_ASSERT(t_equal(P, S, 1));
    CU_ASSERT_EQUAL(kern_frag_next_sid(S), kern_frag_next_sid(P));

    uint64_t end = kern_log_next_lsn(kern_frag_log(P));
    for (int round = 0; round < 4; round++) {
        uint64_t cut = first + rnd() % (end - first);
        kern_frag_destroy(S);
        S = t_frag(3, KERN_FRAG_HOT_STANDBY);
        t_ship(P, S, 1, cut);
        CHECK_RC(kern_frag_set_role(S, KERN_FRAG_PROMOTING));
        CHECK_RC(kern_frag_set_role(S, KERN_FRAG_PRIMARY));
        uint64_t ids[OPEN + 1];
        size_t n = kern_frag_txns(S, ids, OPEN + 1);
        CU_ASSERT_FATAL(n <= OPEN);
        for (size_t i = 0; i < n; i++)
            CHECK_RC(kern_frag_abort(S, ids[i], NULL));
        for (int h = 0; h < HOT; h++) {
            int64_t w = base_v[h];
            for (int i = 0; i < ntx; i++)
                if (tx[i].committed && tx[i].end_lsn && tx[i].end_lsn < cut)
                    w += tx[i].d[h];
            CU_ASSERT_EQUAL(val_of(S, h * 11), w);
        }
    }
    printf("  (%d transactions)\n", ntx);
}

static void test_roles(void)
{
    struct kern_frag *f = t_frag(9, KERN_FRAG_HOT_STANDBY);
    CU_ASSERT_EQUAL(kern_frag_set_role(f, KERN_FRAG_PRIMARY), NINES_ESTATE);
    CU_ASSERT_EQUAL(kern_frag_set_role(f, KERN_FRAG_HOT_STANDBY), NINES_ESTATE);
    CU_ASSERT_EQUAL(kern_frag_set_role(f, 77), NINES_ESTATE);
    CHECK_RC(kern_frag_set_role(f, KERN_FRAG_PROMOTING));
    CU_ASSERT_EQUAL(kern_frag_role(f), KERN_FRAG_PROMOTING);
    CHECK_RC(kern_frag_set_role(f, KERN_FRAG_HOT_STANDBY));
    CHECK_RC(kern_frag_set_role(f, KERN_FRAG_PROMOTING));
    CHECK_RC(kern_frag_set_role(f, KERN_FRAG_PRIMARY));
    CU_ASSERT_EQUAL(kern_frag_set_role(f, KERN_FRAG_PROMOTING), NINES_ESTATE);
    struct kern_rec *r = t_rec(f, 3, 3);
    CHECK_RC(kern_frag_insert(f, 4, t_key[3], t_klen[3], r, NULL));
    r = t_rec(f, 3, 4);
    CU_ASSERT_EQUAL(kern_frag_insert(f, 4, t_key[3], t_klen[3], r, NULL), NINES_EEXIST);
    CU_ASSERT_EQUAL(kern_frag_update(f, 0, t_key[3], t_klen[3], r, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_frag_update(f, 4, t_key[4], t_klen[4], r, NULL), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(kern_frag_update(f, 4, "\x07", 1, r, NULL) < 0, 1); /* malformed key */
    kern_rec_free(r);
    CU_ASSERT_EQUAL(kern_frag_set_role(f, KERN_FRAG_HOT_STANDBY), NINES_ESTATE); /* txn 4 open */
    CHECK_RC(kern_frag_commit(f, 4, NULL));
    CHECK_RC(kern_frag_set_role(f, KERN_FRAG_HOT_STANDBY));
    kern_frag_destroy(f);

    struct kern_frag_def d = {7, 1, t_cols, 4, (const uint16_t[]){0, 0}, 2};
    CU_ASSERT_EQUAL(kern_frag_create(&d, KERN_FRAG_PRIMARY, &f), NINES_EINVAL);
    d.pk = t_pk;
    CU_ASSERT_EQUAL(kern_frag_create(&d, KERN_FRAG_PROMOTING, &f), NINES_EINVAL);
}

void cu_register(void)
{
    static const struct cu_case codec[] = {
        {"roundtrip", test_roundtrip},
        {"encode_rejects", test_encode_rejects},
        {"fuzz", test_fuzz},
        {"log_cursor_truncate", test_log_cursor},
        {NULL, NULL},
    };
    static const struct cu_case frag[] = {
        {"abort_restores", test_abort_restores},
        {"savepoint", test_savepoint},
        {"interleaved", test_interleaved},
        {"takeover_mid_undo", test_takeover_mid_undo},
        {"redo_replay", test_redo_replay},
        {"redo_rules", test_redo_rules},
        {"roles", test_roles},
        {"add_interleaved", test_add_interleaved},
        {"add_limits", test_add_limits},
        {"add_random", test_add_random},
        {NULL, NULL},
    };
    cu_add_suite("kern_logrec", NULL, NULL, codec);
    cu_add_suite("kern_frag_log", setup, teardown, frag);
}
