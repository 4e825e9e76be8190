/* One node without a network for the kernel service's disk tests
 * (ksvc_dlog_test.c, ksvc_ckpt_test.c): the runtime (with its I/O
 * thread), the update channel and the kernel service with a disk log
 * folder (and, when asked, checkpoints), a dictionary built here with
 * single-replica tables (k int64 key, v int64, s varstring(32)),
 * transactions run straight on the replicas. CKPT_CONF answers to the
 * test's own task are collected in W.got. Waits are counted in loop turns,
 * never timed. Include once per test program. */
#ifndef NINES_KSVC_RIG_H
#define NINES_KSVC_RIG_H

#include "cu_test.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include "../../kernel/kern_dlog.h"
#include "../../kernel/kern_frag.h"
#include "../../kernel/kern_log.h"
#include "../../kernel/svc/ksvc.h"
#include "../../updchan/upd.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLUSTER 0x5eedu
#define MAX_TURNS 1000000
#define RIG_TAB_LEN (NINES__MSG_TYPE__GCP_SAVED_ORD + 1) /* room for the GCP rows */
#define RIG_MAXGOT 16
#define RIG_FN __attribute__((unused)) static

static struct {
    struct rt *rt;
    struct upd *upd;
    struct ksvc *k;
    struct dict d;
    uint32_t t1;
    uint64_t txn;
    char root[64], dir[128], ckdir[128];
    struct rt_msg_entry tab[RIG_TAB_LEN];
    struct rt_msg *got[RIG_MAXGOT]; /* CKPT_CONF received, in order */
    int ngot;
    bool no_nodeset; /* rig_open installs no node set (a restart's bootstrap) */
    bool gcp_on;     /* commit epochs run (ksvc_config.gcp_on) */
} W;

RIG_FN const struct dict *dict_now(void *ctx) { return ctx; }

RIG_FN void app_on_msg(struct rt *rt, void *st, struct rt_msg *m)
{
    if (m->type != NINES__MSG_TYPE__CKPT_CONF)
        return;
    CU_ASSERT_FATAL(W.ngot < RIG_MAXGOT);
    rt_msg_keep(m);
    W.got[W.ngot++] = m;
}

RIG_FN void got_clear(void)
{
    for (int i = 0; i < W.ngot; i++)
        rt_msg_free(W.rt, W.got[i]);
    W.ngot = 0;
}

RIG_FN struct ksvc_dlog_status dls(void)
{
    struct ksvc_dlog_status s;
    ksvc_dlog_status(W.k, &s);
    return s;
}

/* A single-replica table (k int64 key, v int64, s varstring(32)). */
RIG_FN uint32_t table_new(const char *name, uint32_t nfrags)
{
    static const struct dict_column cols[3] = {
        {.name = "k", .type = 2, .size = 0, .nullable = false},
        {.name = "v", .type = 2, .size = 0, .nullable = false},
        {.name = "s", .type = 5, .size = 32, .nullable = true}};
    static const uint16_t pk[1] = {0};
    struct dict_table_def def = {.ncols = 3, .cols = cols, .npk = 1, .pk = pk,
                                 .method = DICT_FRAG_HASH, .nfrags = nfrags, .replicas = 1,
                                 .scheme = DICT_PLACE_MISD};
    snprintf(def.name, sizeof def.name, "%s", name);
    uint32_t id = 0;
    if (dict_create_table(&W.d, &def, &id))
        return 0;
    ksvc_dict_changed(W.k, &W.d, true);
    return id;
}

RIG_FN struct kern_frag *frag_of(uint32_t table, uint32_t frag)
{
    struct kern_frag *f = ksvc_replica(W.k, table, frag);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    return f;
}

/* Insert keys [lo, hi) into (table, frag) in one transaction `txn`, left
 * open (the caller commits). Keys are taken as they are: whichever
 * fragment they would route to, they go to `frag`. */
RIG_FN void put_rows_open(uint32_t table, uint32_t frag, uint64_t txn, int64_t lo, int64_t hi)
{
    struct kern_frag *f = frag_of(table, frag);
    for (int64_t k = lo; k < hi; k++) {
        char s[24];
        int n = snprintf(s, sizeof s, "row-%lld", (long long)k);
        struct kern_val row[3] = {kern_v_i64(k), kern_v_i64(k * 3),
                                  kern_v_bytes(KERN_T_VSTR, s, (uint32_t)n)};
        uint8_t key[KERN_KEY_MAX];
        size_t klen;
        struct kern_rec *rec;
        CU_ASSERT_EQUAL_FATAL(kern_frag_row(f, row, key, KERN_KEY_MAX, &klen, &rec), 0);
        CU_ASSERT_EQUAL_FATAL(kern_frag_insert(f, txn, key, klen, rec, NULL), 0);
    }
}

/* Insert keys [lo, hi) into (table, frag) in one committed transaction;
 * every call succeeds whatever the disk does. */
RIG_FN void put_rows_t(uint32_t table, uint32_t frag, int64_t lo, int64_t hi)
{
    uint64_t txn = ++W.txn;
    put_rows_open(table, frag, txn, lo, hi);
    CU_ASSERT_EQUAL_FATAL(kern_frag_commit(frag_of(table, frag), txn, NULL), 0);
}

/* The same into the suite's table t1. */
RIG_FN void put_rows(uint32_t frag, int64_t lo, int64_t hi) { put_rows_t(W.t1, frag, lo, hi); }

/* Turn the loop until everything taken is durable (state on, or resumed
 * after a gap). */
RIG_FN void settle(void)
{
    int t = 0;
    for (; t < MAX_TURNS; t++) {
        struct ksvc_dlog_status s = dls();
        if ((s.state == KSVC_DLOG_ON || s.state == KSVC_DLOG_RESUMED) && s.buffered == 0)
            break;
        rt_step(W.rt, 10);
    }
    CU_ASSERT_FATAL(t < MAX_TURNS);
}

/* Turn the loop until the disk log is in state `st`. */
RIG_FN void until_state(enum ksvc_dlog_state st)
{
    int t = 0;
    for (; t < MAX_TURNS && dls().state != st; t++)
        rt_step(W.rt, 10);
    CU_ASSERT_EQUAL_FATAL(dls().state, st);
}

/* Start the node's runtime, update channel and kernel service on W.root
 * and W.d: disk log in <root>/log with at most `buf_max` bytes buffered
 * and segments of `seg_bytes` (0: the default); checkpoints in
 * <root>/ckpt every `ckpt_ms` (0: on demand) when `ckpt`. Opens the disk
 * log (START); replicas of the tables W.d holds already are made as at a
 * node's start (marked lost). 0 or 1. */
RIG_FN int rig_open(size_t buf_max, uint64_t seg_bytes, bool ckpt, uint32_t ckpt_ms)
{
    W.tab[NINES__MSG_TYPE__CKPT_REQ] =
        (struct rt_msg_entry){"CKPT_REQ", &nines__ckpt_req__descriptor, RT_SVC_KERN,
                              ksvc_on_ckpt_req, RT_FROM_ANY, RT_EPOCH_ANY};
    W.tab[NINES__MSG_TYPE__CKPT_CONF] =
        (struct rt_msg_entry){"CKPT_CONF", &nines__ckpt_conf__descriptor, RT_SVC_APP,
                              app_on_msg, RT_FROM_LOCAL, RT_EPOCH_ANY};
    struct rt_config rc = {.self = 1, .msgtab = W.tab, .msgtab_len = RIG_TAB_LEN};
    if (rt_create(&W.rt, &rc) || upd_init(&W.upd, W.rt) ||
        ksvc_init(&W.k, W.rt,
                  &(struct ksvc_config){.upd = W.upd, .dict = dict_now, .dict_ctx = &W.d,
                                        .dlog_dir = W.dir, .dlog_cluster = CLUSTER,
                                        .dlog_buf_max = buf_max, .dlog_seg_bytes = seg_bytes,
                                        .ckpt_dir = ckpt ? W.ckdir : NULL,
                                        .ckpt_interval_ms = ckpt_ms,
                                        .gcp_on = W.gcp_on}) ||
        rt_task_add(W.rt, RT_SVC_APP, "app", app_on_msg, NULL))
        return 1;
    if (dls().state != KSVC_DLOG_OPENING)
        return 1;
    struct rt_nodeset ns = {.epoch = 1, .members = 1, .current = 1, .coordinator = 1,
                            .member = true, .serving = true};
    if (!W.no_nodeset)
        rt_install_nodeset(W.rt, &ns);
    for (int i = 0; i < 4; i++)
        rt_step(W.rt, 0); /* START everywhere: the log is being opened */
    return 0;
}

/* Stop the node (its folders and W.d stay). */
RIG_FN void rig_close(void)
{
    got_clear();
    rt_destroy(W.rt);
    ksvc_fini(W.k);
    upd_fini(W.upd);
    W.rt = NULL;
    W.k = NULL;
    W.upd = NULL;
}

/* A new node in a new folder <tmp>/<tag>_XXXXXX (rig_open). 0 or 1 (a
 * CUnit suite init). */
RIG_FN int rig_init(const char *tag, size_t buf_max, uint64_t seg_bytes, bool ckpt,
                    uint32_t ckpt_ms)
{
    nlog_set_level(getenv("KT_DEBUG") ? NLOG_DEBUG : NLOG_WARN);
    bool gcp_on = W.gcp_on; /* set by the suite before */
    memset(&W, 0, sizeof W);
    W.gcp_on = gcp_on;
    snprintf(W.root, sizeof W.root, "/tmp/%s_XXXXXX", tag);
    if (!mkdtemp(W.root))
        return 1;
    snprintf(W.dir, sizeof W.dir, "%s/log", W.root);
    snprintf(W.ckdir, sizeof W.ckdir, "%s/ckpt", W.root);
    struct dict_node nodes[1] = {{1, 0}};
    if (dict_init(&W.d, nodes, 1))
        return 1;
    return rig_open(buf_max, seg_bytes, ckpt, ckpt_ms);
}

RIG_FN int rig_fini(void)
{
    rig_close();
    W.gcp_on = false;
    dict_free(&W.d);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", W.root);
    return system(cmd) == 0 ? 0 : 1;
}
#endif
