/* ninesd — one database node: `ninesd --config FILE --node ID`. */
#include "sup_users.h"
#include "conf.h"
#include "nines/errors.h"
#include "nlog.h"
#include "dict/svc/dsvc.h"
#include "kernel/svc/ksvc.h"
#include "runtime/rt.h"
#include "sql/sql_srv.h"
#include "sup.h"
#include "updchan/upd.h"
#include "txctl/txc.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct rt *the_rt;

/* The kernel service hears of every dictionary the dictionary service
 * installs (dsvc_subscribe_install). */
static void kern_dict_installed(void *kern, const struct dict *d, bool live_commit)
{
    ksvc_dict_changed(kern, d, live_commit);
}

static void on_signal(int sig)
{
    (void)sig;
    if (the_rt)
        rt_stop(the_rt); /* atomic store + eventfd write: async-signal-safe */
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ninesd --config FILE --node ID [--log debug|info|warn|error]\n"
               "Runs one ninesdb node of the cluster described in FILE.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"node", required_argument, NULL, 'n'},
        {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *node_arg = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "c:n:l:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            config = optarg;
            break;
        case 'n':
            node_arg = optarg;
            break;
        case 'l':
            if (!strcmp(optarg, "debug"))
                nlog_set_level(NLOG_DEBUG);
            else if (!strcmp(optarg, "info"))
                nlog_set_level(NLOG_INFO);
            else if (!strcmp(optarg, "warn"))
                nlog_set_level(NLOG_WARN);
            else if (!strcmp(optarg, "error"))
                nlog_set_level(NLOG_ERROR);
            else {
                fprintf(stderr, "ninesd: --log '%s' must be debug, info, warn or error\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config || !node_arg || optind != argc) {
        usage(stderr);
        return 2;
    }
    char *end;
    unsigned long id = strtoul(node_arg, &end, 10);
    if (*end || id == 0 || id > NINES_MAX_NODES) {
        fprintf(stderr, "ninesd: --node '%s' is not a node id in 1..%d\n", node_arg,
                NINES_MAX_NODES);
        return 2;
    }
    static struct nines_conf conf;
    if (nines_conf_load(config, &conf)) {
        fprintf(stderr, "ninesd: %s\n", nines_errdetail());
        return 2;
    }
    const struct nines_node_conf *me = nines_conf_node(&conf, (uint32_t)id);
    if (!me) {
        fprintf(stderr, "ninesd: node %lu is not defined in %s\n", id, config);
        return 2;
    }
    struct rt_config rc = {
        .self = (uint32_t)id,
        .conf = &conf,
        .msgtab = sup_msgtab,
        .msgtab_len = sup_msgtab_len,
        .poll_us = conf.poll_us,
    };
    int err = rt_create(&the_rt, &rc);
    if (err) {
        fprintf(stderr, "ninesd: node %lu cannot start: %s (%s)\n", id, nines_strerror(err),
                nines_errdetail());
        return 1;
    }
    /* The node's services, each its own task; they reach each other only
     * through messages, the dictionary's published accessor and the
     * install subscription wired here. */
    static struct sup sup;
    static struct dsvc *dict;     /* distribution dictionary service task */
    static struct txc *txc;       /* transaction controller task */
    static struct upd *upd;       /* update channel task */
    static struct ksvc *kern;     /* kernel service task */
    err = sup_init(&sup, the_rt);
    if (!err)
        err = dsvc_create(&dict, the_rt);
    if (!err)
        err = upd_init(&upd, the_rt);
    /* disk logging: <data>/log when the cluster file says disk_log async|sync
     * (kernel/svc/README.md "Disk logging"; sync needs every node's data
     * folder, which the parser checked), and checkpoints beside it in
     * <data>/ckpt (kernel/svc/README.md "Checkpoints") */
    static char dlog_dir[sizeof me->data_dir + 8], ckpt_dir[sizeof me->data_dir + 8];
    if (conf.disk_log != NINES_DISK_LOG_OFF && me->data_dir[0]) {
        snprintf(dlog_dir, sizeof dlog_dir, "%s/log", me->data_dir);
        snprintf(ckpt_dir, sizeof ckpt_dir, "%s/ckpt", me->data_dir);
    } else if (conf.disk_log != NINES_DISK_LOG_OFF) {
        NLOG_WARN("ninesd", "node %lu has no data folder in %s: no disk log (disk_log %s)", id,
                  config, nines_disk_log_name(conf.disk_log));
    }
    uint64_t cluster_id = 0xcbf29ce484222325ull; /* FNV-1a 64 of the cluster name */
    for (const char *p = conf.cluster; *p; p++)
        cluster_id = (cluster_id ^ (uint8_t)*p) * 0x100000001b3ull;
    /* the restorable commit epoch in <data>/gcp.ncg (supervisor/README.md
     * "Global checkpoints"), read now; written by the supervisor */
    if (!err)
        sup_set_disk(&sup, me->data_dir, cluster_id);
    if (!err)
        err = ksvc_init(&kern, the_rt,
                        &(struct ksvc_config){.upd = upd, .dict = dsvc_current_fn,
                                              .dict_ctx = dict, .dlog_dir = dlog_dir,
                                              .dlog_cluster = cluster_id,
                                              .dlog_buf_max = (size_t)conf.disk_log_buffer_mb
                                                              << 20,
                                              .dlog_sync = conf.disk_log ==
                                                           NINES_DISK_LOG_SYNC,
                                              .gcp_on = conf.disk_log != NINES_DISK_LOG_OFF &&
                                                        conf.gcp_interval_ms > 0,
                                              .ckpt_dir = ckpt_dir,
                                              .ckpt_interval_ms = conf.checkpoint_interval_ms,
                                              .memory_budget =
                                                  (uint64_t)conf.memory_budget_mb << 20,
                                              .ns_accepted = sup_ns_accepted,
                                              .ns_ctx = &sup});
    if (!err)
        sup_set_kernel(&sup, kern);
    if (!err)
        err = dsvc_subscribe_install(dict, kern_dict_installed, kern);
    /* logins (supervisor/README.md "Users"): the dictionary's users to the
     * endpoint and the SQL front end after every install */
    static struct sup_users users;
    if (!err)
        err = sup_users_init(&users, the_rt, &conf);
    if (!err)
        err = dsvc_subscribe_install(dict, sup_users_installed, &users);
    if (!err)
        err = txc_create(&txc, the_rt,
                         &(struct txc_config){.dict = dsvc_current_fn, .dict_ctx = dict,
                                              .timeout_ms = conf.txn_timeout_ms,
                                              .max_inflight = conf.max_requests_per_connection,
                                              /* commit epochs: decisions wait for an epoch
                                               * where coordinators run rounds, the same
                                               * condition as sup_gcp_node.c's: disk_log
                                               * async|sync and gcp_interval_ms > 0 */
                                              .gcp_on = conf.disk_log != NINES_DISK_LOG_OFF &&
                                                        conf.gcp_interval_ms > 0});
    if (!err)
        sup_set_txc(&sup, txc);
    /* the PostgreSQL protocol listener on the node line's `sql HOST:PORT`
     * (sql/README.md; none without it): its own threads, a session per
     * connection; its engine reaches the cluster as a client of this node */
    static struct sql_srv *sqlsrv;
    if (!err)
        err = sql_srv_start_as(&conf, (uint32_t)id, config, sup_users_internal_user(&users),
                               sup_users_internal_password(&users), &sqlsrv);
    if (!err)
        sup_users_set_sql(&users, sqlsrv, dsvc_current_fn(dict));
    if (err) {
        fprintf(stderr, "ninesd: node %lu: %s\n", id, nines_errdetail());
        rt_destroy(the_rt);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    NLOG_INFO("ninesd", "node %lu (site %u) of cluster %s serving on %s:%u, transport %s, pid %d",
              id, me->site, conf.cluster, me->host, me->port, net_transport_name(rt_net(the_rt)),
              (int)getpid());
    rt_run(the_rt);
    sql_srv_stop(sqlsrv); /* sessions closed, running statements cancelled, threads joined */
    sup_shutdown(&sup); /* STOPPING: the signal handler only stopped the executor */
    txc_destroy(txc);
    rt_destroy(the_rt); /* joins the I/O thread: no save is running after it */
    ksvc_fini(kern);
    upd_fini(upd);
    dsvc_destroy(dict);
    return 0;
}
