/* kern_vs_lmdb — the kernel's storage side by side with LMDB in one run, on
 * the same N random distinct 8-byte keys with 100-byte values: inserts/s
 * (random order), point lookups/s (every key, shuffled), updates/s (every
 * key's value replaced, shuffled), forward scan rows/s, and memory bytes
 * per row. Rows measured:
 *   kernel B+tree     kern_bt_* with records of one fixed bytes(100) column
 *   kernel + log      kern_frag_insert/update on a primary replica (each
 *                     change also writes its log record), commit every T ops
 *   lmdb              LMDB, no-sync write-mapped env, one write txn per phase
 *   lmdb txn/T        the same, committing every T inserts/updates
 * Prints figures, the ratios ours / LMDB and the goal verdicts of the issue
 * (a printed comparison; nothing is asserted about time). Method and
 * figures: kernel/README.md "Benchmark against LMDB".
 *
 *   kern_vs_lmdb [--keys N] [--txn-ops T] [--dir DIR] [--json]
 */
#include "kernel/kern_frag.h"
#include "nclock.h"
#include "nines/errors.h"

#include <lmdb.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef NINES_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#define VAL_LEN 100
#define KEY_LEN 8
#define RAW_ROW (KEY_LEN + VAL_LEN)

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_s = 0x1d0b;
static uint64_t rnd(void)
{
    return mix(rng_s += 0x9e3779b97f4a7c15ull);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "kern_vs_lmdb: %s: %s (%s)\n", what, nines_strerror(rc), nines_errdetail());
    exit(1);
}

static void die_mdb(const char *what, int rc)
{
    fprintf(stderr, "kern_vs_lmdb: lmdb %s: %s\n", what, mdb_strerror(rc));
    exit(1);
}

static double rate(uint64_t n, uint64_t ns)
{
    return ns ? (double)n * 1e9 / (double)ns : 0;
}

/* Resident set size of this process, bytes. */
static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Give freed heap pages back to the system so that the next row's RSS delta
 * is not hidden by memory the previous row freed. */
static void heap_purge(void)
{
#ifdef NINES_JEMALLOC
    char cmd[64];
    snprintf(cmd, sizeof cmd, "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
    mallctl(cmd, NULL, NULL, NULL, 0);
#else
    malloc_trim(0);
#endif
}

/* ---- the workload, shared by every row ---- */

static long n_keys;
static uint8_t *keys; /* n_keys * KEY_LEN: row i's key */
static long *ins_order, *get_order, *upd_order;

/* The value of row i in phase `tag` ('i' inserted, 'u' updated): its key,
 * then the tag, then filler. Lookups and the scan check both parts. */
static void value_of(long i, uint8_t tag, uint8_t *v)
{
    memcpy(v, keys + (size_t)i * KEY_LEN, KEY_LEN);
    v[KEY_LEN] = tag;
    memset(v + KEY_LEN + 1, (int)(i & 0x7f), VAL_LEN - KEY_LEN - 1);
}

static void shuffle(long *a)
{
    for (long i = 0; i < n_keys; i++)
        a[i] = i;
    for (long i = n_keys - 1; i > 0; i--) {
        long j = (long)(rnd() % (uint64_t)(i + 1)), x = a[i];
        a[i] = a[j];
        a[j] = x;
    }
}

static void workload(long n)
{
    n_keys = n;
    keys = malloc((size_t)n * KEY_LEN);
    ins_order = malloc((size_t)n * sizeof *ins_order);
    get_order = malloc((size_t)n * sizeof *get_order);
    upd_order = malloc((size_t)n * sizeof *upd_order);
    if (!keys || !ins_order || !get_order || !upd_order)
        die("allocating the workload", NINES_ENOMEM);
    /* mix() is a bijection of 64-bit words and the inputs differ, so the
     * keys are distinct without a duplicate check. Big-endian bytes: the
     * memcmp order of both stores is the numeric order. */
    uint64_t base = rnd();
    for (long i = 0; i < n; i++) {
        uint64_t k = mix(base + (uint64_t)i * 0x9e3779b97f4a7c15ull);
        for (int b = 0; b < KEY_LEN; b++)
            keys[(size_t)i * KEY_LEN + (size_t)b] = (uint8_t)(k >> (56 - 8 * b));
    }
    shuffle(ins_order);
    shuffle(get_order);
    shuffle(upd_order);
}

struct row {
    const char *name;
    double ins, get, upd, scan;  /* per second */
    double mem_row;              /* own accounting, bytes per row */
    double rss_row;              /* RSS delta over the load, bytes per row */
    double extra_row;            /* kernel + log: log bytes per row; lmdb: file high-water */
    int height;
};

/* ---- ours: B+tree alone, or a primary fragment replica with its log ---- */

static const struct kern_col key_col = {KERN_T_FBYTES, 0, KEY_LEN};
static const struct kern_col val_col = {KERN_T_FBYTES, 0, VAL_LEN};
static const struct kern_col frag_cols[2] = {{KERN_T_FBYTES, 0, KEY_LEN},
                                             {KERN_T_FBYTES, 0, VAL_LEN}};
static const uint16_t frag_pk[1] = {0};

static size_t enc_key(long i, uint8_t *out)
{
    struct kern_val kv = kern_v_bytes(KERN_T_FBYTES, keys + (size_t)i * KEY_LEN, KEY_LEN);
    int kl = kern_key_encode(&key_col, 1, &kv, out, 16);
    if (kl < 0)
        die("key encode", kl);
    return (size_t)kl;
}

static struct kern_rec *mk_rec(long i, uint8_t tag)
{
    uint8_t v[VAL_LEN];
    value_of(i, tag, v);
    struct kern_val vv = kern_v_bytes(KERN_T_FBYTES, v, VAL_LEN);
    struct kern_rec *r;
    int rc = kern_rec_build(&val_col, 1, &vv, 0, &r);
    if (rc < 0)
        die("record build", rc);
    return r;
}

/* The record's value must start with row i's key and carry `tag`. */
static void check_rec(const struct kern_rec *r, long i, uint8_t tag)
{
    struct kern_val v;
    int rc = kern_rec_col(r, &val_col, 1, 0, &v);
    if (rc < 0)
        die("record decode", rc);
    const uint8_t *p = v.u.p;
    if (v.len != VAL_LEN || memcmp(p, keys + (size_t)i * KEY_LEN, KEY_LEN) || p[KEY_LEN] != tag)
        die("value check", NINES_ECORRUPT);
}

static void frag_op(struct kern_frag *f, uint64_t txn, long i, uint8_t tag, int upd)
{
    uint8_t v[VAL_LEN];
    value_of(i, tag, v);
    struct kern_val row[2] = {kern_v_bytes(KERN_T_FBYTES, keys + (size_t)i * KEY_LEN, KEY_LEN),
                              kern_v_bytes(KERN_T_FBYTES, v, VAL_LEN)};
    uint8_t key[16];
    size_t kl;
    struct kern_rec *r;
    int rc = kern_frag_row(f, row, key, sizeof key, &kl, &r);
    if (rc < 0)
        die("fragment row", rc);
    rc = upd ? kern_frag_update(f, txn, key, kl, r, NULL)
             : kern_frag_insert(f, txn, key, kl, r, NULL);
    if (rc < 0)
        die(upd ? "fragment update" : "fragment insert", rc);
}

static void frag_commit(struct kern_frag *f, uint64_t *txn)
{
    int rc = kern_frag_commit(f, *txn, NULL);
    if (rc < 0)
        die("fragment commit", rc);
    ++*txn;
}

static void run_ours(int logged, long txn_ops, struct row *res)
{
    struct kern_bt *t = NULL;
    struct kern_frag *f = NULL;
    int rc;
    heap_purge();
    size_t rss0 = rss_bytes();
    if (logged) {
        struct kern_frag_def d = {1, 1, frag_cols, 2, frag_pk, 1};
        rc = kern_frag_create(&d, KERN_FRAG_PRIMARY, &f);
        if (rc < 0)
            die("fragment create", rc);
        t = kern_frag_tree(f);
    } else if ((rc = kern_bt_create(&t)) < 0) {
        die("tree create", rc);
    }
    uint64_t txn = 1;
    uint8_t key[16];

    uint64_t t0 = nclock_ns();
    for (long j = 0; j < n_keys; j++) {
        long i = ins_order[j];
        if (logged) {
            frag_op(f, txn, i, 'i', 0);
            if ((j + 1) % txn_ops == 0)
                frag_commit(f, &txn);
        } else {
            size_t kl = enc_key(i, key);
            struct kern_rec *r = mk_rec(i, 'i');
            if ((rc = kern_bt_insert(t, key, kl, r)) < 0)
                die("insert", rc);
        }
    }
    if (logged && n_keys % txn_ops)
        frag_commit(f, &txn);
    res->ins = rate((uint64_t)n_keys, nclock_ns() - t0);
    size_t rss1 = rss_bytes();
    struct kern_bt_mem m;
    kern_bt_mem(t, &m);
    res->mem_row = m.bytes_per_row;
    res->height = m.height;
    res->rss_row = rss1 > rss0 ? (double)(rss1 - rss0) / (double)n_keys : 0;
    res->extra_row = logged ? (double)kern_log_bytes(kern_frag_log(f)) / (double)n_keys : 0;

    t0 = nclock_ns();
    for (long j = 0; j < n_keys; j++) {
        long i = get_order[j];
        size_t kl = enc_key(i, key);
        if (logged) {
            const struct kern_rec *r;
            if ((rc = kern_frag_get(f, key, kl, &r)) < 0)
                die("fragment get", rc);
            check_rec(r, i, 'i');
        } else {
            struct kern_rec *r;
            if ((rc = kern_bt_get(t, key, kl, &r)) < 0)
                die("get", rc);
            check_rec(r, i, 'i');
        }
    }
    res->get = rate((uint64_t)n_keys, nclock_ns() - t0);

    t0 = nclock_ns();
    for (long j = 0; j < n_keys; j++) {
        long i = upd_order[j];
        if (logged) {
            frag_op(f, txn, i, 'u', 1);
            if ((j + 1) % txn_ops == 0)
                frag_commit(f, &txn);
        } else {
            size_t kl = enc_key(i, key);
            struct kern_rec *r = mk_rec(i, 'u');
            if ((rc = kern_bt_update(t, key, kl, r, NULL)) < 0)
                die("update", rc);
        }
    }
    if (logged && n_keys % txn_ops)
        frag_commit(f, &txn);
    res->upd = rate((uint64_t)n_keys, nclock_ns() - t0);

    struct kern_bt_cursor c;
    kern_bt_cursor_init(&c, t);
    uint64_t rows = 0, tags = 0;
    t0 = nclock_ns();
    for (rc = kern_bt_first(&c); rc == 0; rc = kern_bt_next(&c)) {
        struct kern_val v;
        if (kern_rec_col(c.rec, &val_col, 1, 0, &v) < 0)
            die("scan decode", NINES_ECORRUPT);
        tags += ((const uint8_t *)v.u.p)[KEY_LEN] == 'u';
        rows++;
    }
    res->scan = rate(rows, nclock_ns() - t0);
    if (rows != (uint64_t)n_keys || tags != rows)
        die("scan found the wrong rows", NINES_ECORRUPT);
    if (logged)
        kern_frag_destroy(f);
    else
        kern_bt_destroy(t);
}

/* ---- LMDB ---- */

static void mdb_ck(const char *what, int rc)
{
    if (rc != MDB_SUCCESS)
        die_mdb(what, rc);
}

static MDB_val mv(void *p, size_t len)
{
    MDB_val v = {len, p};
    return v;
}

static void check_val(const MDB_val *v, long i, uint8_t tag)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != VAL_LEN || memcmp(p, keys + (size_t)i * KEY_LEN, KEY_LEN) ||
        p[KEY_LEN] != tag)
        die("lmdb value check", NINES_ECORRUPT);
}

/* One write phase: put every key (in `order`) with the value of `tag`,
 * committing every txn_ops puts (0: one transaction for all). */
static void lmdb_puts(MDB_env *env, MDB_dbi dbi, const long *order, uint8_t tag,
                      unsigned flags, long txn_ops)
{
    MDB_txn *txn;
    mdb_ck("txn begin", mdb_txn_begin(env, NULL, 0, &txn));
    uint8_t v[VAL_LEN];
    for (long j = 0; j < n_keys; j++) {
        long i = order[j];
        value_of(i, tag, v);
        MDB_val k = mv(keys + (size_t)i * KEY_LEN, KEY_LEN), d = mv(v, VAL_LEN);
        mdb_ck("put", mdb_put(txn, dbi, &k, &d, flags));
        if (txn_ops && (j + 1) % txn_ops == 0 && j + 1 < n_keys) {
            mdb_ck("commit", mdb_txn_commit(txn));
            mdb_ck("txn begin", mdb_txn_begin(env, NULL, 0, &txn));
        }
    }
    mdb_ck("commit", mdb_txn_commit(txn));
}

static void run_lmdb(const char *dir_base, long txn_ops, struct row *res)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/kern_vs_lmdb.XXXXXX", dir_base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "kern_vs_lmdb: mkdtemp %s: %m\n", dir);
        exit(1);
    }
    MDB_env *env;
    mdb_ck("env create", mdb_env_create(&env));
    /* Room for the data (about 170 bytes/row) plus the pages a whole-table
     * write transaction copies before it commits. */
    size_t map = (size_t)n_keys * 1024u + (256u << 20);
    mdb_ck("set mapsize", mdb_env_set_mapsize(env, map));
    unsigned flags = MDB_NOSYNC | MDB_NOMETASYNC | MDB_WRITEMAP | MDB_MAPASYNC | MDB_NOTLS |
                     MDB_NORDAHEAD;
    mdb_ck("env open", mdb_env_open(env, dir, flags, 0600));
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_ck("txn begin", mdb_txn_begin(env, NULL, 0, &txn));
    mdb_ck("dbi open", mdb_dbi_open(txn, NULL, 0, &dbi));
    mdb_ck("commit", mdb_txn_commit(txn));
    heap_purge();
    size_t rss0 = rss_bytes();

    uint64_t t0 = nclock_ns();
    lmdb_puts(env, dbi, ins_order, 'i', MDB_NOOVERWRITE, txn_ops);
    res->ins = rate((uint64_t)n_keys, nclock_ns() - t0);
    size_t rss1 = rss_bytes();
    res->rss_row = rss1 > rss0 ? (double)(rss1 - rss0) / (double)n_keys : 0;

    MDB_stat st;
    MDB_envinfo info;
    mdb_ck("txn begin", mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    mdb_ck("stat", mdb_stat(txn, dbi, &st));
    mdb_txn_abort(txn);
    mdb_ck("env info", mdb_env_info(env, &info));
    if (st.ms_entries != (size_t)n_keys)
        die("lmdb row count", NINES_ECORRUPT);
    res->mem_row = (double)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) *
                   st.ms_psize / (double)n_keys;
    res->extra_row = (double)(info.me_last_pgno + 1) * st.ms_psize / (double)n_keys;
    res->height = (int)st.ms_depth;

    mdb_ck("txn begin", mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    t0 = nclock_ns();
    for (long j = 0; j < n_keys; j++) {
        long i = get_order[j];
        MDB_val k = mv(keys + (size_t)i * KEY_LEN, KEY_LEN), d;
        mdb_ck("get", mdb_get(txn, dbi, &k, &d));
        check_val(&d, i, 'i');
    }
    res->get = rate((uint64_t)n_keys, nclock_ns() - t0);
    mdb_txn_abort(txn);

    t0 = nclock_ns();
    lmdb_puts(env, dbi, upd_order, 'u', 0, txn_ops);
    res->upd = rate((uint64_t)n_keys, nclock_ns() - t0);

    mdb_ck("txn begin", mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    MDB_cursor *cur;
    mdb_ck("cursor open", mdb_cursor_open(txn, dbi, &cur));
    uint64_t rows = 0, tags = 0;
    MDB_val k, d;
    t0 = nclock_ns();
    for (int rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        tags += ((const uint8_t *)d.mv_data)[KEY_LEN] == 'u';
        rows++;
    }
    res->scan = rate(rows, nclock_ns() - t0);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rows != (uint64_t)n_keys || tags != rows)
        die("lmdb scan found the wrong rows", NINES_ECORRUPT);
    mdb_env_close(env);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- report ---- */

static const char *verdict(int met)
{
    return met ? "MET" : "NOT MET";
}

static void print_ratio(const char *name, const struct row *a, const struct row *b)
{
    printf("%-22s %11.2fx %11.2fx %11.2fx %11.2fx %9.2fx\n", name, a->ins / b->ins,
           a->get / b->get, a->upd / b->upd, a->scan / b->scan, a->mem_row / b->mem_row);
}

static void print_goals(const char *name, const struct row *a, const struct row *l)
{
    printf("goals, %s vs lmdb:\n", name);
    printf("  lookups >= 1x lmdb     %5.2fx  %s\n", a->get / l->get, verdict(a->get >= l->get));
    printf("  inserts >= 2x lmdb     %5.2fx  %s\n", a->ins / l->ins,
           verdict(a->ins >= 2 * l->ins));
    printf("  updates >= 2x lmdb     %5.2fx  %s\n", a->upd / l->upd,
           verdict(a->upd >= 2 * l->upd));
    printf("  memory <= 1.6x raw     %5.2fx  %s\n", a->mem_row / RAW_ROW,
           verdict(a->mem_row <= 1.6 * RAW_ROW));
}

static void json_row(const struct row *r, int first)
{
    printf("%s{\"name\":\"%s\",\"inserts_per_s\":%.0f,\"lookups_per_s\":%.0f,"
           "\"updates_per_s\":%.0f,\"scan_rows_per_s\":%.0f,\"bytes_per_row\":%.1f,"
           "\"rss_bytes_per_row\":%.1f,\"extra_bytes_per_row\":%.1f,\"height\":%d}",
           first ? "" : ",", r->name, r->ins, r->get, r->upd, r->scan, r->mem_row, r->rss_row,
           r->extra_row, r->height);
}

int main(int argc, char **argv)
{
    long n = 1000000, txn_ops = 10;
    int json = 0;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--keys") && i + 1 < argc) {
            n = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--txn-ops") && i + 1 < argc) {
            txn_ops = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else {
            fprintf(stderr, "usage: %s [--keys N] [--txn-ops T] [--dir DIR] [--json]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 1 || n > 100000000) {
        fprintf(stderr, "kern_vs_lmdb: --keys must be 1..100000000, got %ld\n", n);
        return 2;
    }
    if (txn_ops < 1) {
        fprintf(stderr, "kern_vs_lmdb: --txn-ops must be >= 1, got %ld\n", txn_ops);
        return 2;
    }
    workload(n);
    static char lname[64], fname[64];
    snprintf(fname, sizeof fname, "kernel + log txn/%ld", txn_ops);
    snprintf(lname, sizeof lname, "lmdb txn/%ld", txn_ops);
    struct row r[4] = {{.name = "kernel B+tree"}, {.name = fname}, {.name = "lmdb"},
                       {.name = lname}};
    run_ours(0, txn_ops, &r[0]);
    run_ours(1, txn_ops, &r[1]);
    run_lmdb(dir, 0, &r[2]);
    run_lmdb(dir, txn_ops, &r[3]);

    if (json) {
        printf("{\"keys\":%ld,\"txn_ops\":%ld,\"raw_bytes_per_row\":%d,\"rows\":[", n, txn_ops,
               RAW_ROW);
        for (int i = 0; i < 4; i++)
            json_row(&r[i], i == 0);
        const struct row *a = &r[0], *l = &r[2];
        printf("],\"ratio_tree_lmdb\":{\"inserts\":%.3f,\"lookups\":%.3f,\"updates\":%.3f,"
               "\"scan\":%.3f,\"memory\":%.3f},\"memory_over_raw\":%.3f,"
               "\"goals\":{\"lookups\":%d,\"inserts\":%d,\"updates\":%d,\"memory\":%d}}\n",
               a->ins / l->ins, a->get / l->get, a->upd / l->upd, a->scan / l->scan,
               a->mem_row / l->mem_row, a->mem_row / RAW_ROW, a->get >= l->get,
               a->ins >= 2 * l->ins, a->upd >= 2 * l->upd, a->mem_row <= 1.6 * RAW_ROW);
        return 0;
    }
    printf("kern_vs_lmdb: %ld random distinct 8-byte keys, 100-byte values (raw %d bytes/row); "
           "lmdb: NOSYNC|NOMETASYNC|WRITEMAP|MAPASYNC|NOTLS|NORDAHEAD\n", n, RAW_ROW);
    printf("%-22s %12s %12s %12s %12s %10s %10s %10s %6s\n", "", "inserts/s", "lookups/s",
           "updates/s", "scan rows/s", "bytes/row", "RSS B/row", "extra B/r", "height");
    for (int i = 0; i < 4; i++)
        printf("%-22s %12.0f %12.0f %12.0f %12.0f %10.1f %10.1f %10.1f %6d\n", r[i].name,
               r[i].ins, r[i].get, r[i].upd, r[i].scan, r[i].mem_row, r[i].rss_row,
               r[i].extra_row, r[i].height);
    printf("(bytes/row: kernel kern_bt_mem total, lmdb (branch+leaf+overflow pages) x page size;"
           " extra: kernel + log = log bytes, lmdb = file high-water)\n");
    printf("%-22s %12s %12s %12s %12s %10s\n", "ratio ours / lmdb", "inserts", "lookups",
           "updates", "scan", "memory");
    print_ratio("B+tree / lmdb", &r[0], &r[2]);
    print_ratio("+log / lmdb", &r[1], &r[2]);
    print_ratio("+log / lmdb same txns", &r[1], &r[3]);
    for (int i = 0; i < 4; i++)
        printf("memory / raw, %-22s %.2fx\n", r[i].name, r[i].mem_row / RAW_ROW);
    print_goals("kernel B+tree", &r[0], &r[2]);
    print_goals("kernel + log (tree memory, log excluded)", &r[1], &r[2]);
    free(keys);
    free(ins_order);
    free(get_order);
    free(upd_order);
    return 0;
}
