/* tpcb_load — create and fill the TPC-B tables (or the two-update tables).
 *
 *   tpcb_load --config FILE --scale S [--threads T] [--batch B] [--two-upd]
 *
 * Creates branch, teller, account and history through the dictionary
 * (reusing tables that exist with the right shape), then inserts S
 * branches, 10·S tellers and 100,000·S accounts with balance 0: T threads,
 * each with its own client connection, commit transactions of B inserts
 * (one round trip each: the inserts are buffered and travel with the
 * commit), so T transactions are in flight at a time. --two-upd fills t1
 * and t2 with 100,000·S rows each instead. Prints rows/s. */
#include "nines/nines.h"
#include "tpcb_schema.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct load_job {
    const char *table;
    int64_t n;          /* rows 0..n-1 */
    uint32_t kind;      /* 0 branch, 1 teller, 2 account, 3 t1/t2 */
};

static const char *opt_config;
static int64_t opt_scale = 1;
static int opt_threads = 8, opt_batch = 200;
static bool opt_two;

static struct load_job jobs[4];
static size_t njobs;
static atomic_llong next_row[4];
static atomic_int failed;
static char fail_msg[600];
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

static const char filler[100] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

static void load_fail(const char *what, const char *detail)
{
    pthread_mutex_lock(&fail_mu);
    if (!atomic_load(&failed))
        snprintf(fail_msg, sizeof fail_msg, "%s: %s", what, detail);
    atomic_store(&failed, 1);
    pthread_mutex_unlock(&fail_mu);
}

/* One row of job j with key k. */
static size_t load_row(const struct load_job *j, int64_t k, struct nines_value *v)
{
    switch (j->kind) {
    case 0:
        v[0] = nines_v_int64(k);
        v[1] = nines_v_int64(0);
        v[2] = nines_v_string(filler, 88);
        return 3;
    case 1:
        v[0] = nines_v_int64(k);
        v[1] = nines_v_int64(k / TPCB_TELLERS_PER_BRANCH);
        v[2] = nines_v_int64(0);
        v[3] = nines_v_string(filler, 84);
        return 4;
    case 2:
        v[0] = nines_v_int64(k);
        v[1] = nines_v_int64(k / TPCB_ACCOUNTS_PER_BRANCH);
        v[2] = nines_v_int64(0);
        v[3] = nines_v_string(filler, 84);
        return 4;
    default:
        v[0] = nines_v_int64(k);
        v[1] = nines_v_int64(0);
        v[2] = nines_v_string(filler, 92);
        return 3;
    }
}

static void *load_thread(void *arg)
{
    nines_conn *c;
    if (nines_connect_config(&c, opt_config)) {
        load_fail("connect", nines_errdetail());
        return NULL;
    }
    for (size_t j = 0; j < njobs && !atomic_load(&failed); j++) {
        for (;;) {
            int64_t lo = atomic_fetch_add(&next_row[j], opt_batch);
            if (lo >= jobs[j].n || atomic_load(&failed))
                break;
            int64_t hi = lo + opt_batch < jobs[j].n ? lo + opt_batch : jobs[j].n;
            nines_txn *t = NULL;
            int rc = nines_txn_begin(c, &t);
            for (int64_t k = lo; rc == 0 && k < hi; k++) {
                struct nines_value v[4];
                size_t n = load_row(&jobs[j], k, v);
                rc = nines_txn_insert(t, jobs[j].table, v, n);
            }
            if (rc == 0) {
                rc = nines_txn_commit(t);
            } else if (t) {
                nines_txn_rollback(t);
            }
            if (rc) {
                char what[96];
                snprintf(what, sizeof what, "%s rows %lld..%lld", jobs[j].table, (long long)lo,
                         (long long)hi - 1);
                load_fail(what, nines_conn_errdetail(c));
                break;
            }
        }
    }
    nines_close(c);
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tpcb_load --config FILE --scale S [--threads T] [--batch B] "
               "[--two-upd]\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (!strcmp(argv[i], "--config") && more)
            opt_config = argv[++i];
        else if (!strcmp(argv[i], "--scale") && more)
            opt_scale = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && more)
            opt_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && more)
            opt_batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--two-upd"))
            opt_two = true;
        else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tpcb_load: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!opt_config || opt_scale <= 0 || opt_threads <= 0 || opt_threads > 256 ||
        opt_batch <= 0) {
        usage(stderr);
        return 2;
    }
    static struct nines_conf cf;
    if (nines_conf_load(opt_config, &cf)) {
        fprintf(stderr, "tpcb_load: %s\n", nines_errdetail());
        return 2;
    }
    int rc = opt_two ? tpcb_ensure_tables(&cf, tpcb_two_tables, 2)
                     : tpcb_ensure_tables(&cf, tpcb_tables, 4);
    if (rc) {
        fprintf(stderr, "tpcb_load: tables: %s\n", nines_errdetail());
        return 1;
    }
    if (opt_two) {
        jobs[njobs++] = (struct load_job){"t1", TPCB_ACCOUNTS_PER_BRANCH * opt_scale, 3};
        jobs[njobs++] = (struct load_job){"t2", TPCB_ACCOUNTS_PER_BRANCH * opt_scale, 3};
    } else {
        jobs[njobs++] = (struct load_job){"branch", opt_scale, 0};
        jobs[njobs++] = (struct load_job){"teller", TPCB_TELLERS_PER_BRANCH * opt_scale, 1};
        jobs[njobs++] = (struct load_job){"account", TPCB_ACCOUNTS_PER_BRANCH * opt_scale, 2};
    }
    int64_t rows = 0;
    for (size_t j = 0; j < njobs; j++)
        rows += jobs[j].n;
    uint64_t t0 = nclock_ns();
    pthread_t th[256];
    for (int i = 0; i < opt_threads; i++)
        if (pthread_create(&th[i], NULL, load_thread, NULL)) {
            fprintf(stderr, "tpcb_load: cannot start thread %d\n", i);
            return 1;
        }
    for (int i = 0; i < opt_threads; i++)
        pthread_join(th[i], NULL);
    double s = (double)(nclock_ns() - t0) / 1e9;
    if (atomic_load(&failed)) {
        fprintf(stderr, "tpcb_load: %s\n", fail_msg);
        return 1;
    }
    printf("loaded %lld rows (scale %lld) in %.2f s: %.0f rows/s (%d threads, %d inserts per "
           "transaction)\n", (long long)rows, (long long)opt_scale, s, (double)rows / s,
           opt_threads, opt_batch);
    return 0;
}
