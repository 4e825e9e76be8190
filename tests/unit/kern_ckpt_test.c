/* Fuzzy checkpoints: written in small steps while a random workload runs
 * on the same replica, loaded into an empty replica and brought up to date
 * by redo from the redo start -> equal to the primary record by record
 * with state ids; transactions active at the checkpoint are undone after
 * recovery; flipped bytes, truncation, wrong magic/version/fragment are
 * rejected without touching the target; the temp-file/rename protocol. */
#include "kern_frag_test_util.h"

#include "kernel/kern_ckpt.h"

#include <unistd.h>

static struct kern_frag *P;
static struct model M;
static char dir[64];

static int setup(void)
{
    strcpy(dir, "/tmp/kern_ckpt_test.");
    memset(dir + strlen(dir), 'X', 6); /* the mkdtemp template */
    dir[sizeof "/tmp/kern_ckpt_test." - 1 + 6] = 0;
    if (!mkdtemp(dir))
        return -1;
    struct kern_frag_def d = {7, 3, t_cols, 4, t_pk, 2};
    if (kern_frag_create(&d, KERN_FRAG_PRIMARY, &P) < 0)
        return -1;
    return t_keys_init(P);
}

static int teardown(void)
{
    kern_frag_destroy(P);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Fresh primary with committed data from `ntx` random transactions. */
static void base(int ntx)
{
    kern_frag_destroy(P);
    P = t_frag(3, KERN_FRAG_PRIMARY);
    memset(&M, 0, sizeof M);
    for (int t = 0; t < ntx; t++)
        t_txn(P, 10 + (uint64_t)t, 8, &M);
}

/* Write a checkpoint of P to `path` in steps of 1..maxstep records, running
 * `work` random transactions between steps; `open_txn` (if nonzero) keeps
 * a transaction open across the whole checkpoint. Returns the info. */
static struct kern_ckpt_info write_ckpt(const char *path, unsigned maxstep, int work,
                                        uint64_t *txn_id)
{
    struct kern_ckpt *ck;
    CHECK_RC(kern_ckpt_begin(P, &ck));
    int fd;
    CHECK_RC(kern_ckpt_file_create(path, &fd));
    int rc;
    int steps = 0;
    do {
        rc = kern_ckpt_step(ck, 1 + (unsigned)(rnd() % maxstep));
        CHECK_RC(rc);
        steps++;
        for (int k = 0; k < work; k++)
            t_txn(P, (*txn_id)++, 6, &M);
        if (rnd() % 3 == 0 || rc == 0) {
            uint8_t *b;
            size_t n;
            CHECK_RC(kern_ckpt_take(ck, &b, &n));
            CHECK_RC(kern_ckpt_file_write(fd, b, n));
            free(b);
        }
    } while (rc == 1);
    CU_ASSERT_EQUAL(kern_ckpt_step(ck, 5), 0);
    CU_ASSERT_EQUAL(kern_ckpt_pending(ck), 0);
    CHECK_RC(kern_ckpt_file_finish(fd, path));
    struct kern_ckpt_info info;
    kern_ckpt_get_info(ck, &info);
    kern_ckpt_free(ck);
    CU_ASSERT(steps > 1);
    return info;
}

/* Load `path` into a fresh standby and redo P's log from the redo start. */
static struct kern_frag *recover(const char *path, struct kern_ckpt_info *info)
{
    uint8_t *buf;
    size_t len;
    CHECK_RC(kern_ckpt_file_read(path, &buf, &len));
    struct kern_frag *s = t_frag(3, KERN_FRAG_HOT_STANDBY);
    CHECK_RC(kern_ckpt_load(s, buf, len, info));
    free(buf);
    CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(s)), info->redo_start_lsn);
    CU_ASSERT_EQUAL(kern_bt_check(kern_frag_tree(s)), 0);
    t_ship(P, s, info->redo_start_lsn, 0);
    return s;
}

/* Index of a key of the universe: (grp, "n<i/8>\0") -> i. */
static int key_index(const uint8_t *k, size_t kl)
{
    N_ASSERT(kl > 8 && k[0] == 1 && k[5] == 1 && k[6] == 'n');
    uint32_t g = ((uint32_t)k[1] << 24 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 8 | k[4]) ^
                 0x80000000u;
    int q = 0;
    for (size_t j = 7; j < kl && k[j]; j++)
        q = q * 10 + (k[j] - '0');
    return q * 8 + (int)g;
}

/* Load `path` into a fresh standby and redo P's log record by record,
 * checking the state-id rule on the way: a key's state never goes back
 * below what the checkpoint or an earlier record gave it. */
static struct kern_frag *recover_checked(const char *path, struct kern_ckpt_info *info)
{
    uint8_t *buf;
    size_t len;
    CHECK_RC(kern_ckpt_file_read(path, &buf, &len));
    struct kern_frag *s = t_frag(3, KERN_FRAG_HOT_STANDBY);
    CHECK_RC(kern_ckpt_load(s, buf, len, info));
    free(buf);
    static uint64_t high[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        const struct kern_rec *r;
        high[i] = kern_frag_get(s, t_key[i], t_klen[i], &r) == 0 ? r->sid : 0;
    }
    struct kern_log_cursor c;
    kern_log_cursor_init(&c, kern_frag_log(P), info->redo_start_lsn);
    const uint8_t *p;
    size_t n;
    int bad = 0;
    while (kern_log_cursor_next(&c, &p, &n) == 0) {
        struct kern_logrec d;
        CU_ASSERT_FATAL(kern_logrec_decode(p, n, &d) == (int)n);
        CHECK_RC(kern_frag_redo(s, &d));
        if (!d.klen)
            continue;
        int i = key_index(d.key, d.klen);
        const struct kern_rec *r;
        int present = kern_frag_get(s, d.key, d.klen, &r) == 0;
        if (present && r->sid < high[i])
            bad++;
        if (present && r->sid > high[i])
            high[i] = r->sid;
        if (!present && d.sid > high[i])
            high[i] = d.sid;
    }
    CU_ASSERT_EQUAL(bad, 0);
    return s;
}

static void test_fuzzy(void)
{
    unsigned long seed0 = cu_seed(41);
    char path[128];
    snprintf(path, sizeof path, "%s/f3.ckpt", dir);
    for (unsigned long s = 0; s < 3; s++) {
        rng_s = seed0 + s * 104729;
        base(long_run() ? 4000 : 1500);
        uint64_t txn = 100000;
        struct kern_ckpt_info info = write_ckpt(path, s == 0 ? 1 : 200, 2, &txn);
        CU_ASSERT(info.records > 0);
        CU_ASSERT_EQUAL(info.table, 7);
        CU_ASSERT_EQUAL(info.frag, 3);
        CU_ASSERT(info.redo_start_lsn <= info.begin_lsn);
        CU_ASSERT(kern_log_next_lsn(kern_frag_log(P)) > info.begin_lsn); /* work ran */
        /* a little more work after the checkpoint finished */
        for (int k = 0; k < 50; k++)
            t_txn(P, txn++, 6, &M);
        struct kern_ckpt_info got;
        struct kern_frag *r = recover_checked(path, &got);
        CU_ASSERT_EQUAL(got.records, info.records);
        CU_ASSERT_EQUAL(got.redo_start_lsn, info.redo_start_lsn);
        CU_ASSERT_EQUAL(got.next_sid, info.next_sid);
        CU_ASSERT(t_equal(P, r, 1));
        CU_ASSERT(t_matches(r, &M));
        CU_ASSERT_EQUAL(kern_frag_next_sid(r), kern_frag_next_sid(P));
        struct kern_frag_stats st;
        kern_frag_stats(r, &st);
        /* the fuzzy window shows: some replayed records found their state there already */
        CU_ASSERT(st.redo_nochange > 0);
        kern_frag_destroy(r);
    }
}

/* A transaction open during the checkpoint: the redo start goes back to
 * its first record, so the recovered replica can undo it after promotion. */
static void test_active_txn(void)
{
    rng_s = cu_seed(42);
    char path[128];
    snprintf(path, sizeof path, "%s/active.ckpt", dir);
    base(500);
    struct model before = M;
    for (int k = 0; k < 40; k++)
        t_op(P, 7777, (int)(rnd() % (NKEYS / 2)) * 2, NULL); /* even keys: txn 7777 */
    for (int k = 0; k < 50; k++) /* odd keys: other committed work */
        t_op(P, 8888, (int)(rnd() % (NKEYS / 2)) * 2 + 1, &before);
    CHECK_RC(kern_frag_commit(P, 8888, NULL));
    uint64_t first = 0;
    struct kern_logrec d;
    for (uint64_t l = kern_log_first_lsn(kern_frag_log(P)); !first; l++) {
        CHECK_RC(kern_log_read(kern_frag_log(P), l, &d));
        if (d.txn == 7777)
            first = l;
    }
    uint64_t txn = 200000;
    struct kern_ckpt_info info = write_ckpt(path, 50, 0, &txn);
    CU_ASSERT_EQUAL(info.redo_start_lsn, first);
    CU_ASSERT(info.redo_start_lsn < info.begin_lsn);
    struct kern_ckpt_info got;
    struct kern_frag *r = recover(path, &got);
    CU_ASSERT(t_equal(P, r, 1));
    uint64_t tx[4];
    CU_ASSERT_EQUAL(kern_frag_txns(r, tx, 4), 1);
    CU_ASSERT_EQUAL(tx[0], 7777);
    /* the primary aborts; so does the promoted recovered replica: same result */
    CHECK_RC(kern_frag_abort(P, 7777, NULL));
    CHECK_RC(kern_frag_set_role(r, KERN_FRAG_PROMOTING));
    CHECK_RC(kern_frag_set_role(r, KERN_FRAG_PRIMARY));
    CHECK_RC(kern_frag_abort(r, 7777, NULL));
    CU_ASSERT(t_equal(P, r, 1));
    CU_ASSERT(t_matches(r, &before));
    /* the log may now be truncated below the checkpoint's redo start */
    CU_ASSERT(kern_frag_log_truncate(P, kern_log_next_lsn(kern_frag_log(P))) >= 0);
    kern_frag_destroy(r);
}

static void test_truncate_guard(void)
{
    rng_s = cu_seed(43);
    base(2000);
    t_op(P, 99, 3, NULL);
    uint64_t end = kern_log_next_lsn(kern_frag_log(P));
    CU_ASSERT_EQUAL(kern_frag_log_truncate(P, end), NINES_ESTATE);
    CU_ASSERT(kern_frag_log_truncate(P, end - 1) > 0);
    CHECK_RC(kern_frag_abort(P, 99, NULL));
    CU_ASSERT(kern_frag_log_truncate(P, kern_log_next_lsn(kern_frag_log(P))) >= 0);
}

/* Load must fail with `want` (or any error when want is 0) and leave the
 * target replica empty. */
static void load_fails(const uint8_t *buf, size_t len, int want)
{
    struct kern_frag *s = t_frag(3, KERN_FRAG_HOT_STANDBY);
    struct kern_ckpt_info info;
    int rc = kern_ckpt_load(s, buf, len, &info);
    CU_ASSERT(rc < 0);
    if (want)
        CU_ASSERT_EQUAL(rc, want);
    if (rc >= 0 || (want && rc != want))
        fprintf(stderr, "load of %zu bytes: %d %s\n", len, rc, nines_errdetail());
    CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(s)), 0);
    CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(s)), 1);
    kern_frag_destroy(s);
}

static void test_corruption(void)
{
    rng_s = cu_seed(44);
    char path[128];
    snprintf(path, sizeof path, "%s/c.ckpt", dir);
    base(300);
    uint64_t txn = 300000;
    write_ckpt(path, 40, 1, &txn);
    uint8_t *buf;
    size_t len;
    CHECK_RC(kern_ckpt_file_read(path, &buf, &len));
    {
        struct kern_frag *s = t_frag(3, KERN_FRAG_HOT_STANDBY);
        CHECK_RC(kern_ckpt_load(s, buf, len, NULL));
        /* not into a replica that holds anything */
        CU_ASSERT_EQUAL(kern_ckpt_load(s, buf, len, NULL), NINES_ESTATE);
        kern_frag_destroy(s);
    }
    /* a flipped byte anywhere: every header and trailer byte, then a spread */
    uint8_t *b = malloc(len);
    size_t step = len / 1500 + 1;
    for (size_t pos = 0; pos < len; pos += (pos < 64 || pos + 64 >= len) ? 1 : step) {
        memcpy(b, buf, len);
        b[pos] ^= (uint8_t)(1u << (rnd() % 8));
        load_fails(b, len, 0);
    }
    /* truncation at many lengths */
    for (size_t n = 0; n < len; n += (n < 128 || n + 64 >= len) ? 1 : step)
        load_fails(buf, n, 0);
    load_fails(buf, 40, NINES_ETRUNC);
    load_fails(buf, len - 1, NINES_ETRUNC);
    /* trailing garbage after the trailer */
    uint8_t *longer = malloc(len + 8);
    memcpy(longer, buf, len);
    memset(longer + len, 0, 8);
    load_fails(longer, len + 8, 0);
    free(longer);
    /* wrong magic, wrong version */
    memcpy(b, buf, len);
    b[0] = 'X';
    load_fails(b, len, NINES_ECORRUPT);
    memcpy(b, buf, len);
    b[8] = 2;
    load_fails(b, len, NINES_EVERSION);
    /* another fragment or schema */
    struct kern_frag *o = t_frag(4, KERN_FRAG_HOT_STANDBY);
    CU_ASSERT_EQUAL(kern_ckpt_load(o, buf, len, NULL), NINES_EINVAL);
    kern_frag_destroy(o);
    struct kern_col cols2[4];
    memcpy(cols2, t_cols, sizeof cols2);
    cols2[3].size = 65;
    struct kern_frag_def d2 = {7, 3, cols2, 4, t_pk, 2};
    CHECK_RC(kern_frag_create(&d2, KERN_FRAG_HOT_STANDBY, &o));
    CU_ASSERT_EQUAL(kern_ckpt_load(o, buf, len, NULL), NINES_EINVAL);
    kern_frag_destroy(o);
    /* not into a primary */
    o = t_frag(3, KERN_FRAG_PRIMARY);
    CU_ASSERT_EQUAL(kern_ckpt_load(o, buf, len, NULL), NINES_ESTATE);
    kern_frag_destroy(o);
    free(b);
    free(buf);
}

/* Crash points of the file protocol: an unfinished temp file never
 * replaces the previous checkpoint; the rename does. */
static void test_file_protocol(void)
{
    rng_s = cu_seed(45);
    char path[128], tmp[140];
    snprintf(path, sizeof path, "%s/p.ckpt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    base(200);
    uint64_t txn = 400000;
    struct kern_ckpt_info first = write_ckpt(path, 30, 0, &txn);
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    for (int k = 0; k < 100; k++)
        t_txn(P, txn++, 6, &M);
    /* crash while writing: half the bytes in the temp file, no rename */
    struct kern_ckpt *ck;
    CHECK_RC(kern_ckpt_begin(P, &ck));
    while (kern_ckpt_step(ck, 64) == 1)
        ;
    uint8_t *b;
    size_t n;
    CHECK_RC(kern_ckpt_take(ck, &b, &n));
    int fd;
    CHECK_RC(kern_ckpt_file_create(path, &fd));
    CHECK_RC(kern_ckpt_file_write(fd, b, n / 2));
    close(fd);
    /* recovery reads `path`: still the first checkpoint, and a half file is rejected */
    struct kern_ckpt_info got;
    struct kern_frag *r = recover(path, &got);
    CU_ASSERT_EQUAL(got.begin_lsn, first.begin_lsn);
    CU_ASSERT(t_equal(P, r, 1));
    kern_frag_destroy(r);
    uint8_t *half;
    size_t hl;
    CHECK_RC(kern_ckpt_file_read(tmp, &half, &hl));
    CU_ASSERT_EQUAL(hl, n / 2);
    load_fails(half, hl, NINES_ETRUNC);
    free(half);
    /* the next attempt completes: the rename makes it current */
    CHECK_RC(kern_ckpt_file_create(path, &fd));
    CHECK_RC(kern_ckpt_file_write(fd, b, n));
    CHECK_RC(kern_ckpt_file_finish(fd, path));
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    struct kern_ckpt_info second;
    kern_ckpt_get_info(ck, &second);
    r = recover(path, &got);
    CU_ASSERT_EQUAL(got.begin_lsn, second.begin_lsn);
    CU_ASSERT(got.begin_lsn > first.begin_lsn);
    CU_ASSERT(t_equal(P, r, 1));
    kern_frag_destroy(r);
    free(b);
    kern_ckpt_free(ck);
    /* an abandoned attempt is removed */
    CHECK_RC(kern_ckpt_file_create(path, &fd));
    kern_ckpt_file_discard(fd, path);
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    CU_ASSERT_EQUAL(kern_ckpt_file_read(tmp, &b, &n), NINES_ENOTFOUND);
}

/* An empty replica checkpoints to a header and a trailer. */
static void test_empty(void)
{
    struct kern_frag *e = t_frag(3, KERN_FRAG_PRIMARY);
    struct kern_ckpt *ck;
    CHECK_RC(kern_ckpt_begin(e, &ck));
    CU_ASSERT_EQUAL(kern_ckpt_step(ck, 0), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_ckpt_step(ck, 10), 0);
    uint8_t *b;
    size_t n;
    CHECK_RC(kern_ckpt_take(ck, &b, &n));
    CU_ASSERT_EQUAL(n, KERN_CKPT_HDR + KERN_CKPT_TRAILER);
    struct kern_frag *s = t_frag(3, KERN_FRAG_HOT_STANDBY);
    struct kern_ckpt_info info;
    CHECK_RC(kern_ckpt_load(s, b, n, &info));
    CU_ASSERT_EQUAL(info.records, 0);
    CU_ASSERT_EQUAL(info.redo_start_lsn, 1);
    kern_frag_destroy(s);
    kern_frag_destroy(e);
    kern_ckpt_free(ck);
    free(b);
}

/* Feed buf[0..len) to a loader in pieces of 1..maxchunk bytes. */
static int stream_load(struct kern_frag *s, const uint8_t *buf, size_t len, size_t maxchunk,
                       struct kern_ckpt_info *info)
{
    struct kern_ckpt_loader *l;
    int rc = kern_ckpt_loader_begin(s, &l);
    if (rc < 0)
        return rc;
    for (size_t off = 0; off < len && rc == 0;) {
        size_t n = 1 + rnd() % maxchunk;
        if (n > len - off)
            n = len - off;
        rc = kern_ckpt_loader_feed(l, buf + off, n);
        off += n;
    }
    if (rc == 0)
        rc = kern_ckpt_loader_end(l, info);
    kern_ckpt_loader_free(l);
    return rc;
}

/* A copy loaded as it arrives (kernel/svc README "Rebuild"): any chunking
 * gives the same replica as the whole file; a flipped byte or a cut is
 * refused and leaves the replica empty. */
static void test_streamed(void)
{
    rng_s = cu_seed(45);
    char path[128];
    snprintf(path, sizeof path, "%s/s.ckpt", dir);
    base(2000);
    uint64_t txn = 500000;
    write_ckpt(path, 64, 1, &txn);
    uint8_t *buf;
    size_t len;
    CHECK_RC(kern_ckpt_file_read(path, &buf, &len));
    struct kern_frag *whole = t_frag(3, KERN_FRAG_HOT_STANDBY);
    struct kern_ckpt_info wi, si;
    CHECK_RC(kern_ckpt_load(whole, buf, len, &wi));
    static const size_t chunks[] = {1, 7, 100, 4096, 65536, 1u << 22};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        struct kern_frag *s = t_frag(3, KERN_FRAG_HOT_STANDBY);
        CHECK_RC(stream_load(s, buf, len, chunks[c], &si));
        CU_ASSERT(t_equal(whole, s, 1));
        CU_ASSERT_EQUAL(si.records, wi.records);
        CU_ASSERT_EQUAL(si.redo_start_lsn, wi.redo_start_lsn);
        CU_ASSERT_EQUAL(kern_frag_next_sid(s), kern_frag_next_sid(whole));
        CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(s)), kern_log_next_lsn(kern_frag_log(whole)));
        kern_frag_destroy(s);
    }
    uint8_t *b = malloc(len);
    for (int i = 0; i < 200; i++) {
        memcpy(b, buf, len);
        size_t pos = rnd() % len;
        b[pos] ^= (uint8_t)(1u << (rnd() % 8));
        struct kern_frag *s = t_frag(3, KERN_FRAG_HOT_STANDBY);
        int rc = stream_load(s, b, len, 1 + rnd() % 5000, NULL);
        CU_ASSERT(rc < 0);
        if (rc >= 0)
            fprintf(stderr, "flipped byte at %zu of %zu loaded\n", pos, len);
        CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(s)), 0);
        kern_frag_destroy(s);
        s = t_frag(3, KERN_FRAG_HOT_STANDBY);
        size_t cut = rnd() % len;
        CU_ASSERT_EQUAL(stream_load(s, buf, cut, 1 + rnd() % 5000, NULL), NINES_ETRUNC);
        CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(s)), 0);
        kern_frag_destroy(s);
    }
    free(b);
    kern_frag_destroy(whole);
    free(buf);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"fuzzy_under_load", test_fuzzy},
        {"active_txn_undo_after_recovery", test_active_txn},
        {"truncate_guard", test_truncate_guard},
        {"corruption", test_corruption},
        {"file_protocol", test_file_protocol},
        {"empty", test_empty},
        {"streamed", test_streamed},
        {NULL, NULL},
    };
    cu_add_suite("kern_ckpt", setup, teardown, cases);
}
