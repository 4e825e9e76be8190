/* kern_btree — micro-benchmark of the kernel B+tree: inserts/s, gets/s,
 * forward and backward scan rows/s, deletes/s and memory per row for N
 * random 8-byte and 32-byte keys with 100-byte-payload records. Prints
 * figures; asserts nothing about time.
 *
 *   kern_btree [--count N] [--json]
 */
#include "kernel/kern_btree.h"
#include "nclock.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_s = 0x5eed;
static uint64_t rnd(void)
{
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "kern_btree: %s: %s (%s)\n", what, nines_strerror(rc), nines_errdetail());
    exit(1);
}

struct result {
    size_t klen;
    double ins, get, scan_fwd, scan_bwd, del;
    struct kern_bt_mem mem;
};

static double rate(uint64_t n, uint64_t ns)
{
    return ns ? (double)n * 1e9 / (double)ns : 0;
}

static void run(size_t klen, long n, struct result *res)
{
    uint8_t *keys = malloc((size_t)n * klen);
    struct kern_rec **recs = malloc((size_t)n * sizeof *recs);
    long *order = malloc((size_t)n * sizeof *order);
    if (!keys || !recs || !order)
        die("allocating the workload", NINES_ENOMEM);
    uint8_t payload[100];
    memset(payload, 'x', sizeof payload);
    struct kern_col col = {KERN_T_FBYTES, 0, sizeof payload};
    struct kern_val val = kern_v_bytes(KERN_T_FBYTES, payload, sizeof payload);
    for (long i = 0; i < n; i++) {
        for (size_t j = 0; j < klen; j += 8) {
            uint64_t r = rnd();
            memcpy(keys + (size_t)i * klen + j, &r, klen - j < 8 ? klen - j : 8);
        }
        int rc = kern_rec_build(&col, 1, &val, (uint64_t)i, &recs[i]);
        if (rc < 0)
            die("building a record", rc);
        order[i] = i;
    }
    struct kern_bt *t;
    int rc = kern_bt_create(&t);
    if (rc < 0)
        die("creating the tree", rc);
    long dups = 0;
    uint64_t t0 = nclock_ns();
    for (long i = 0; i < n; i++) {
        rc = kern_bt_insert(t, keys + (size_t)i * klen, klen, recs[i]);
        if (rc == NINES_EEXIST) { /* a repeated random key: keep going */
            kern_rec_free(recs[i]);
            dups++;
        } else if (rc < 0) {
            die("insert", rc);
        }
    }
    uint64_t t1 = nclock_ns();
    res->ins = rate((uint64_t)n, t1 - t0);
    kern_bt_mem(t, &res->mem);
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(rnd() % (uint64_t)(i + 1)), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    uint64_t sum = 0;
    t0 = nclock_ns();
    for (long i = 0; i < n; i++) {
        struct kern_rec *r;
        rc = kern_bt_get(t, keys + (size_t)order[i] * klen, klen, &r);
        if (rc < 0)
            die("get", rc);
        sum += r->sid;
    }
    t1 = nclock_ns();
    res->get = rate((uint64_t)n, t1 - t0);
    struct kern_bt_cursor c;
    kern_bt_cursor_init(&c, t);
    uint64_t rows = 0;
    t0 = nclock_ns();
    for (rc = kern_bt_first(&c); rc == 0; rc = kern_bt_next(&c)) {
        sum += c.rec->sid;
        rows++;
    }
    t1 = nclock_ns();
    res->scan_fwd = rate(rows, t1 - t0);
    rows = 0;
    t0 = nclock_ns();
    for (rc = kern_bt_last(&c); rc == 0; rc = kern_bt_prev(&c)) {
        sum += c.rec->sid;
        rows++;
    }
    t1 = nclock_ns();
    res->scan_bwd = rate(rows, t1 - t0);
    if (rows != (uint64_t)(n - dups))
        die("scan row count", NINES_ECORRUPT);
    t0 = nclock_ns();
    long deleted = 0;
    for (long i = 0; i < n; i++)
        deleted += kern_bt_delete(t, keys + (size_t)order[i] * klen, klen, NULL) == 0;
    t1 = nclock_ns();
    res->del = rate((uint64_t)deleted, t1 - t0);
    if (kern_bt_count(t) != 0 || sum == 42)
        die("tree not empty after deleting every key", NINES_ECORRUPT);
    res->klen = klen;
    kern_bt_destroy(t);
    free(keys);
    free(recs);
    free(order);
}

int main(int argc, char **argv)
{
    long n = 1000000;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            n = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: %s [--count N] [--json]\n", argv[0]);
            return 2;
        }
    }
    if (n < 1) {
        fprintf(stderr, "kern_btree: --count must be >= 1, got %ld\n", n);
        return 2;
    }
    struct result res[2];
    run(8, n, &res[0]);
    run(32, n, &res[1]);
    if (json) {
        printf("[");
        for (int i = 0; i < 2; i++)
            printf("%s{\"key_bytes\":%zu,\"rows\":%ld,\"inserts_per_s\":%.0f,\"gets_per_s\":%.0f,"
                   "\"scan_fwd_rows_per_s\":%.0f,\"scan_bwd_rows_per_s\":%.0f,"
                   "\"deletes_per_s\":%.0f,\"bytes_per_row\":%.1f,"
                   "\"index_bytes_per_row\":%.1f,\"height\":%d}",
                   i ? "," : "", res[i].klen, n, res[i].ins, res[i].get, res[i].scan_fwd,
                   res[i].scan_bwd, res[i].del, res[i].mem.bytes_per_row,
                   res[i].mem.index_bytes_per_row, res[i].mem.height);
        printf("]\n");
        return 0;
    }
    printf("kern_btree: %ld random keys, records of 16-byte header + 101-byte body "
           "(100-byte payload)\n", n);
    printf("%5s %12s %12s %12s %12s %12s %10s %10s %6s\n", "key", "inserts/s", "gets/s",
           "scan fwd/s", "scan bwd/s", "deletes/s", "bytes/row", "index B/r", "height");
    for (int i = 0; i < 2; i++)
        printf("%4zuB %12.0f %12.0f %12.0f %12.0f %12.0f %10.1f %10.1f %6d\n", res[i].klen,
               res[i].ins, res[i].get, res[i].scan_fwd, res[i].scan_bwd, res[i].del,
               res[i].mem.bytes_per_row, res[i].mem.index_bytes_per_row, res[i].mem.height);
    return 0;
}
