/* kern_lock — record lock manager micro-benchmark. Prints figures; asserts
 * nothing about time.
 *
 *   kern_lock [--count N] [--quick]
 *
 *  1. uncontended acquire + release_all pairs per second (one lock per txn)
 *  2. uncontended: 8 locks per txn, acquire each + one release_all
 *  3. deadlock-search cost when a request joins the end of a wait chain of
 *     length L (no cycle; the search walks the whole chain), per search and
 *     per transaction visited
 *  4. cost of detecting and breaking a cycle of length L
 * Keys are 8-byte big-endian counters (an encoded int64 primary key). */
#include "kernel/kern_lock.h"
#include "nclock.h"
#include "nines/errors.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long opt_count = 2000000;

static const unsigned char *key8(uint64_t n)
{
    static unsigned char k[8];
    for (int i = 0; i < 8; i++)
        k[i] = (unsigned char)(n >> (56 - 8 * i));
    return k;
}

static void must(int rc, int want, const char *what)
{
    if (rc != want) {
        fprintf(stderr, "kern_lock bench: %s returned %d (%s: %s), expected %d\n", what, rc,
                nines_strerror(rc), nines_errdetail(), want);
        exit(1);
    }
}

static struct kern_lock_mgr *mk(void)
{
    struct kern_lock_conf c = {.timeout_ms = 0, .initial_buckets = 4096};
    struct kern_lock_mgr *m = kern_lock_new(&c, NULL);
    if (!m) {
        fprintf(stderr, "kern_lock bench: out of memory\n");
        exit(1);
    }
    return m;
}

static void bench_uncontended(int per_txn)
{
    struct kern_lock_mgr *m = mk();
    long txns = opt_count / per_txn;
    uint64_t t0 = nclock_ns();
    for (long t = 1; t <= txns; t++) {
        for (int i = 0; i < per_txn; i++)
            must(kern_lock_acquire(m, (uint64_t)t, 1, 1, key8((uint64_t)(t * per_txn + i) % 100000), 8,
                                   (i & 1) ? KERN_LOCK_S : KERN_LOCK_X, 0),
                 KERN_LOCK_GRANTED, "acquire");
        kern_lock_release_all(m, (uint64_t)t);
    }
    double s = (double)(nclock_ns() - t0) / 1e9;
    printf("uncontended, %d lock(s)/txn: %.2f M lock+release pairs/s (%.0f ns/pair)\n", per_txn,
           (double)(txns * per_txn) / s / 1e6, s * 1e9 / (double)(txns * per_txn));
    kern_lock_free(m);
}

/* Chain: txn i+1 holds key i+1 and waits for key i held by txn i. */
static void build_chain(struct kern_lock_mgr *m, int len)
{
    for (int i = 1; i <= len; i++) {
        must(kern_lock_acquire(m, (uint64_t)i, 1, 1, key8((uint64_t)i), 8, KERN_LOCK_X, 0),
             KERN_LOCK_GRANTED, "chain acquire");
        if (i > 1)
            must(kern_lock_acquire(m, (uint64_t)i, 1, 1, key8((uint64_t)i - 1), 8, KERN_LOCK_X, 0),
                 KERN_LOCK_WAITING, "chain wait");
    }
}

static void bench_chain(int len, long reps)
{
    struct kern_lock_mgr *m = mk();
    build_chain(m, len);
    struct kern_lock_stats a, b;
    kern_lock_stats(m, &a);
    uint64_t joiner = 1000000;
    uint64_t t0 = nclock_ns();
    for (long r = 0; r < reps; r++) {
        must(kern_lock_acquire(m, joiner, 1, 1, key8((uint64_t)len), 8, KERN_LOCK_X, 0),
             KERN_LOCK_WAITING, "join chain");
        kern_lock_release_all(m, joiner);
    }
    double ns = (double)(nclock_ns() - t0) / (double)reps;
    kern_lock_stats(m, &b);
    double visits = (double)(b.dl_visits - a.dl_visits) / (double)(b.dl_searches - a.dl_searches);
    printf("deadlock search, chain of %5d waiting: %9.0f ns per wait (incl. enqueue+release), "
           "%.0f txns visited, %.1f ns/visit\n",
           len, ns, visits, ns / visits);
    kern_lock_free(m);
}

static void bench_cycle(int len, long reps)
{
    uint64_t t0 = 0, total = 0;
    for (long r = 0; r < reps; r++) {
        struct kern_lock_mgr *m = mk();
        build_chain(m, len);
        /* txn 1 closes the ring by waiting for the last key */
        t0 = nclock_ns();
        int rc = kern_lock_acquire(m, 1, 1, 1, key8((uint64_t)len), 8, KERN_LOCK_X, 0);
        total += nclock_ns() - t0;
        must(rc, KERN_LOCK_WAITING, "close ring"); /* victim is txn len, by event */
        kern_lock_free(m);
    }
    printf("deadlock detect+break, cycle of %5d: %9.0f ns\n", len, (double)total / (double)reps);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            opt_count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            opt_count = 200000;
        else {
            fprintf(stderr, "usage: kern_lock [--count N] [--quick]\n");
            return 2;
        }
    }
    if (opt_count < 8)
        opt_count = 8;
    bench_uncontended(1);
    bench_uncontended(8);
    static const int lens[] = {2, 10, 100, 1000, 10000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        long reps = opt_count / 10 / lens[i];
        bench_chain(lens[i], reps < 20 ? 20 : reps);
    }
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        bench_cycle(lens[i], lens[i] >= 1000 ? 5 : 200);
    return 0;
}
