/* kern_log — micro-benchmark of kernel logging: log records/s encoded and
 * decoded, redo records/s onto a hot standby, fuzzy checkpoint write MB/s
 * (scan + file write + fsync + rename) and load MB/s (read + validate +
 * build the tree). A primary gets N rows (int64 key, 100-byte payload) in
 * transactions of 10 inserts (each log record carries the after image).
 * Prints figures; asserts nothing about time.
 *
 *   kern_log [--count N] [--dir DIR]
 */
#include "kernel/kern_ckpt.h"
#include "nclock.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng_s = 0x10c;
static uint64_t rnd(void)
{
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void check(const char *what, int rc)
{
    if (rc >= 0)
        return;
    fprintf(stderr, "kern_log: %s: %s (%s)\n", what, nines_strerror(rc), nines_errdetail());
    exit(1);
}

static double rate(double n, uint64_t ns)
{
    return ns ? n * 1e9 / (double)ns : 0;
}

static const struct kern_col cols[] = {{KERN_T_INT64, 0, 0}, {KERN_T_FBYTES, 0, 100}};
static const uint16_t pk[] = {0};

static struct kern_frag *mk(int role)
{
    struct kern_frag_def d = {1, 1, cols, 2, pk, 1};
    struct kern_frag *f;
    check("create fragment", kern_frag_create(&d, role, &f));
    return f;
}

static void op(struct kern_frag *f, uint64_t txn, int64_t k, int upd)
{
    uint8_t payload[100];
    memset(payload, (int)(rnd() & 0xff), sizeof payload);
    struct kern_val row[2] = {kern_v_i64(k), kern_v_bytes(KERN_T_FBYTES, payload, 100)};
    uint8_t key[16];
    size_t kl;
    struct kern_rec *r;
    check("row", kern_frag_row(f, row, key, sizeof key, &kl, &r));
    check(upd ? "update" : "insert", upd ? kern_frag_update(f, txn, key, kl, r, NULL)
                                         : kern_frag_insert(f, txn, key, kl, r, NULL));
}

int main(int argc, char **argv)
{
    long n = 200000;
    const char *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: kern_log [--count N] [--dir DIR]\n");
            return 2;
        }
    }
    struct kern_frag *p = mk(KERN_FRAG_PRIMARY);
    uint64_t txn = 1;
    uint64_t t0 = nclock_ns();
    for (long i = 0; i < n; i++) {
        op(p, txn, (int64_t)(rnd() >> 1), 0);
        if (i % 10 == 9)
            check("commit", kern_frag_commit(p, txn++, NULL));
    }
    check("commit", kern_frag_commit(p, txn++, NULL));
    uint64_t t_ins = nclock_ns() - t0;
    struct kern_log *log = kern_frag_log(p);
    uint64_t nrec = kern_log_count(log);
    printf("primary: %ld inserts with logging in %.0f ms (%.2f M ops/s); log %llu records, "
           "%.1f MB\n", n, t_ins / 1e6, rate((double)n, t_ins) / 1e6,
           (unsigned long long)nrec, kern_log_bytes(log) / 1e6);

    /* encode + decode every record */
    uint8_t *buf = malloc(KERN_LOG_MAX);
    t0 = nclock_ns();
    struct kern_log_cursor c;
    kern_log_cursor_init(&c, log, 1);
    const uint8_t *b;
    size_t bl;
    size_t bytes = 0;
    while (kern_log_cursor_next(&c, &b, &bl) == 0) {
        struct kern_logrec r;
        check("decode", kern_logrec_decode(b, bl, &r));
        check("encode", kern_logrec_encode(&r, buf, KERN_LOG_MAX));
        bytes += bl;
    }
    uint64_t t_codec = nclock_ns() - t0;
    printf("codec:   %.2f M records/s decode+encode (%.0f MB/s)\n",
           rate((double)nrec, t_codec) / 1e6, rate((double)bytes, t_codec) / 1e6);
    free(buf);

    /* redo onto a standby */
    struct kern_frag *s = mk(KERN_FRAG_HOT_STANDBY);
    t0 = nclock_ns();
    kern_log_cursor_init(&c, log, 1);
    while (kern_log_cursor_next(&c, &b, &bl) == 0)
        check("redo", kern_frag_redo_bytes(s, b, bl));
    uint64_t t_redo = nclock_ns() - t0;
    printf("redo:    %.2f M records/s (decode + apply + keep in the standby's log)\n",
           rate((double)nrec, t_redo) / 1e6);
    kern_frag_destroy(s);

    /* checkpoint: steps of 128 records, buffers written as they come */
    char path[4096];
    snprintf(path, sizeof path, "%s/kern_log_bench.%d.ckpt", dir, (int)getpid());
    t0 = nclock_ns();
    struct kern_ckpt *ck;
    check("checkpoint begin", kern_ckpt_begin(p, &ck));
    int fd;
    check("checkpoint create", kern_ckpt_file_create(path, &fd));
    int rc;
    size_t fbytes = 0;
    uint64_t steps = 0;
    do {
        rc = kern_ckpt_step(ck, 128);
        check("checkpoint step", rc);
        steps++;
        if (kern_ckpt_pending(ck) >= (1u << 20) || rc == 0) {
            uint8_t *out;
            size_t ol;
            check("checkpoint take", kern_ckpt_take(ck, &out, &ol));
            check("checkpoint write", kern_ckpt_file_write(fd, out, ol));
            fbytes += ol;
            free(out);
        }
    } while (rc == 1);
    check("checkpoint finish", kern_ckpt_file_finish(fd, path));
    uint64_t t_ck = nclock_ns() - t0;
    kern_ckpt_free(ck);
    printf("ckpt:    %llu rows in %llu steps, %.1f MB written in %.0f ms: %.0f MB/s "
           "(incl. fsync + rename)\n", (unsigned long long)kern_bt_count(kern_frag_tree(p)),
           (unsigned long long)steps, fbytes / 1e6, t_ck / 1e6, rate((double)fbytes, t_ck) / 1e6);

    t0 = nclock_ns();
    uint8_t *file;
    size_t flen;
    check("checkpoint read", kern_ckpt_file_read(path, &file, &flen));
    s = mk(KERN_FRAG_HOT_STANDBY);
    check("checkpoint load", kern_ckpt_load(s, file, flen, NULL));
    uint64_t t_load = nclock_ns() - t0;
    printf("load:    %.1f MB in %.0f ms: %.0f MB/s (read + validate + build the tree)\n",
           flen / 1e6, t_load / 1e6, rate((double)flen, t_load) / 1e6);
    free(file);
    unlink(path);
    kern_frag_destroy(s);
    kern_frag_destroy(p);
    return 0;
}
