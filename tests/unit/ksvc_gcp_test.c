/* Commit epochs, the kernel service's part (kernel/svc/ksvc_gcp.c, README
 * "Commit epochs: SAVE"): GCP_SAVE_REQ is answered GCP_SAVE_CONF only once
 * the disk log is durable up to what it had taken when the request came
 * (completions held with ksvc_dlog_fault_hold), at once when nothing
 * waits; GCP_SAVE_REF when the disk log is stopped (ENOSPC injected) or
 * there is none; RT_MSG_GCP_SAVED raises ksvc_restorable. One node, the
 * test's task standing in for the coordinator's supervisor. */
#include "ksvc_rig.h"

#define BUF_MAX (1u << 20)

static struct rt_msg *ans[32]; /* GCP_SAVE_CONF / REF received, in order */
static int nans;

static void sup_on_msg(struct rt *rt, void *st, struct rt_msg *m)
{
    (void)rt;
    (void)st;
    if (m->type != NINES__MSG_TYPE__GCP_SAVE_CONF && m->type != NINES__MSG_TYPE__GCP_SAVE_REF)
        return;
    CU_ASSERT_FATAL(nans < 32);
    rt_msg_keep(m);
    ans[nans++] = m;
}

static void ans_clear(struct rt *rt)
{
    for (int i = 0; i < nans; i++)
        rt_msg_free(rt, ans[i]);
    nans = 0;
}

static void add_rows(struct rt_msg_entry *tab)
{
    tab[NINES__MSG_TYPE__GCP_SAVE_REQ] =
        (struct rt_msg_entry){"GCP_SAVE_REQ", &nines__gcp_save_req__descriptor, RT_SVC_KERN,
                              ksvc_on_gcp_save_req, RT_FROM_ANY, RT_EPOCH_ANY};
    tab[NINES__MSG_TYPE__GCP_SAVE_CONF] =
        (struct rt_msg_entry){"GCP_SAVE_CONF", &nines__gcp_save_conf__descriptor, RT_SVC_SUP,
                              sup_on_msg, RT_FROM_ANY, RT_EPOCH_ANY};
    tab[NINES__MSG_TYPE__GCP_SAVE_REF] =
        (struct rt_msg_entry){"GCP_SAVE_REF", &nines__gcp_save_ref__descriptor, RT_SVC_SUP,
                              sup_on_msg, RT_FROM_ANY, RT_EPOCH_ANY};
}

static int suite_init(void)
{
    if (rig_init("ksvc_gcp", BUF_MAX, 0, false, 0))
        return 1;
    add_rows(W.tab);
    if (rt_task_add(W.rt, RT_SVC_SUP, "sup", sup_on_msg, NULL))
        return 1;
    W.t1 = table_new("t1", 2);
    return W.t1 ? 0 : 1;
}

static int suite_fini(void)
{
    ans_clear(W.rt);
    return rig_fini();
}

static void save_req(struct rt *rt, uint64_t round, uint64_t gci)
{
    struct rt_msg *m = rt_msg_new(rt, NINES__MSG_TYPE__GCP_SAVE_REQ);
    Nines__GcpSaveReq *q = RT_BODY(m, Nines__GcpSaveReq, nines__gcp_save_req__init);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    q->coordinator = 1;
    q->epoch = 1;
    q->round = round;
    q->gci = gci;
    CU_ASSERT_EQUAL(rt_send(rt, 0, RT_SVC_KERN, m), 0);
}

static void turns(struct rt *rt, int n)
{
    for (int i = 0; i < n; i++)
        rt_step(rt, 0);
}

/* Nothing waiting for the disk: answered at once, with the durable position. */
static void test_save_at_once(void)
{
    settle();
    ans_clear(W.rt);
    save_req(W.rt, 1, 5);
    turns(W.rt, 2);
    CU_ASSERT_EQUAL_FATAL(nans, 1);
    CU_ASSERT_EQUAL(ans[0]->type, NINES__MSG_TYPE__GCP_SAVE_CONF);
    const Nines__GcpSaveConf *c = (const Nines__GcpSaveConf *)ans[0]->body;
    CU_ASSERT_EQUAL(c->node, 1);
    CU_ASSERT_EQUAL(c->round, 1);
    CU_ASSERT_EQUAL(c->gci, 5);
    CU_ASSERT_EQUAL(c->durable, dls().durable);
    ans_clear(W.rt);
}

#ifdef NINES_FAULTS
/* Records taken before the request: the answer waits for the flush that
 * covers them (its completion held), then comes; records taken after the
 * request do not hold it back. */
static void test_save_after_flush(void)
{
    settle();
    ans_clear(W.rt);
    CU_ASSERT_EQUAL(ksvc_dlog_fault_hold(W.k, true), 0);
    put_rows(0, 100, 200);
    int t = 0;
    for (; t < MAX_TURNS && ksvc_dlog_fault_hold(W.k, true) == 0; t++)
        rt_step(W.rt, 10); /* until the flush finished and its completion is held */
    CU_ASSERT_FATAL(t < MAX_TURNS);
    uint64_t before = dls().durable;
    save_req(W.rt, 2, 6);
    turns(W.rt, 5);
    CU_ASSERT_EQUAL(nans, 0); /* not durable yet */
    put_rows(1, 200, 300);    /* after the request */
    turns(W.rt, 5);
    CU_ASSERT_EQUAL(nans, 0);
    CU_ASSERT_EQUAL(ksvc_dlog_fault_hold(W.k, false), 1); /* the completion goes on */
    turns(W.rt, 2);
    CU_ASSERT_EQUAL_FATAL(nans, 1);
    CU_ASSERT_EQUAL(ans[0]->type, NINES__MSG_TYPE__GCP_SAVE_CONF);
    const Nines__GcpSaveConf *c = (const Nines__GcpSaveConf *)ans[0]->body;
    CU_ASSERT_EQUAL(c->round, 2);
    CU_ASSERT_EQUAL(c->gci, 6);
    CU_ASSERT(c->durable > before);
    ans_clear(W.rt);
    settle();
    CU_ASSERT_EQUAL(nans, 0);
}

/* Records staged but no flush handed over yet: the request kicks one. */
static void test_save_kicks(void)
{
    settle();
    ans_clear(W.rt);
    put_rows(0, 300, 310);
    save_req(W.rt, 3, 7);
    int t = 0;
    for (; t < MAX_TURNS && nans == 0; t++)
        rt_step(W.rt, 10);
    CU_ASSERT_EQUAL_FATAL(nans, 1);
    CU_ASSERT_EQUAL(ans[0]->type, NINES__MSG_TYPE__GCP_SAVE_CONF);
    CU_ASSERT_EQUAL(((const Nines__GcpSaveConf *)ans[0]->body)->durable, dls().durable);
    ans_clear(W.rt);
}

/* A disk log stopped by ENOSPC: a waiting save is refused (EFULL) when the
 * flush fails, and a new one at once; after the retry, saves succeed. */
static void test_save_refused_when_stopped(void)
{
    settle();
    ans_clear(W.rt);
    CU_ASSERT_EQUAL(ksvc_dlog_fault_hold(W.k, true), 0);
    nines_fault_arm("kern.dlog.enospc", 1);
    put_rows(0, 400, 500);
    int t = 0;
    for (; t < MAX_TURNS && ksvc_dlog_fault_hold(W.k, true) == 0; t++)
        rt_step(W.rt, 10);
    CU_ASSERT_FATAL(t < MAX_TURNS);
    save_req(W.rt, 4, 8);
    turns(W.rt, 3);
    CU_ASSERT_EQUAL(nans, 0);
    CU_ASSERT_EQUAL(ksvc_dlog_fault_hold(W.k, false), 1); /* the failed flush completes */
    turns(W.rt, 2);
    CU_ASSERT_EQUAL(dls().state, KSVC_DLOG_STOPPED);
    CU_ASSERT_EQUAL_FATAL(nans, 1);
    CU_ASSERT_EQUAL(ans[0]->type, NINES__MSG_TYPE__GCP_SAVE_REF);
    const Nines__GcpSaveRef *r = (const Nines__GcpSaveRef *)ans[0]->body;
    CU_ASSERT_EQUAL(r->round, 4);
    CU_ASSERT_EQUAL(r->error, NINES_EFULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->detail, "stopped"));
    ans_clear(W.rt);
    save_req(W.rt, 5, 8);
    turns(W.rt, 2);
    CU_ASSERT_EQUAL_FATAL(nans, 1);
    CU_ASSERT_EQUAL(ans[0]->type, NINES__MSG_TYPE__GCP_SAVE_REF);
    ans_clear(W.rt);
    CU_ASSERT_EQUAL(rt_fault_advance_clock(W.rt, KSVC_DLOG_RETRY_MS * 1000u), 0);
    settle();
    save_req(W.rt, 6, 9);
    turns(W.rt, 2);
    CU_ASSERT_EQUAL_FATAL(nans, 1);
    CU_ASSERT_EQUAL(ans[0]->type, NINES__MSG_TYPE__GCP_SAVE_CONF);
    ans_clear(W.rt);
}
#endif

/* RT_MSG_GCP_SAVED from the supervisor: restorable only goes up. */
static void test_saved_notice(void)
{
    CU_ASSERT_EQUAL(ksvc_restorable(W.k), 0);
    uint64_t g[3] = {9, 4, 12};
    for (int i = 0; i < 3; i++) {
        struct rt_msg *m = rt_msg_new(W.rt, RT_MSG_GCP_SAVED);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        m->cookie = g[i];
        rt_post_local(W.rt, RT_SVC_KERN, m);
        turns(W.rt, 1);
    }
    CU_ASSERT_EQUAL(ksvc_restorable(W.k), 12);
    struct ksvc_gcp_status s;
    ksvc_gcp_status(W.k, &s);
    CU_ASSERT_EQUAL(s.restorable, 12);
    CU_ASSERT_EQUAL(s.waiting, 0);
}

/* A node without a disk log refuses every save (NINES_ESTATE). */
static void test_save_without_disk_log(void)
{
    static struct rt_msg_entry tab[RIG_TAB_LEN];
    add_rows(tab);
    struct rt *rt;
    struct upd *u;
    struct ksvc *k;
    struct rt_config rc = {.self = 1, .msgtab = tab, .msgtab_len = RIG_TAB_LEN};
    CU_ASSERT_EQUAL_FATAL(rt_create(&rt, &rc), 0);
    CU_ASSERT_EQUAL_FATAL(upd_init(&u, rt), 0);
    CU_ASSERT_EQUAL_FATAL(ksvc_init(&k, rt, &(struct ksvc_config){.upd = u, .dict = dict_now,
                                                                  .dict_ctx = &W.d}), 0);
    CU_ASSERT_EQUAL_FATAL(rt_task_add(rt, RT_SVC_SUP, "sup", sup_on_msg, NULL), 0);
    struct rt_nodeset ns = {.epoch = 1, .members = 1, .current = 1, .coordinator = 1,
                            .member = true, .serving = true};
    rt_install_nodeset(rt, &ns);
    turns(rt, 3);
    ans_clear(W.rt);
    save_req(rt, 7, 3);
    turns(rt, 2);
    CU_ASSERT_EQUAL_FATAL(nans, 1);
    CU_ASSERT_EQUAL(ans[0]->type, NINES__MSG_TYPE__GCP_SAVE_REF);
    const Nines__GcpSaveRef *r = (const Nines__GcpSaveRef *)ans[0]->body;
    CU_ASSERT_EQUAL(r->error, NINES_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->detail, "no disk log"));
    ans_clear(rt);
    rt_destroy(rt);
    ksvc_fini(k);
    upd_fini(u);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"save_at_once", test_save_at_once},
#ifdef NINES_FAULTS
        {"save_after_flush", test_save_after_flush},
        {"save_kicks", test_save_kicks},
        {"save_refused_when_stopped", test_save_refused_when_stopped},
#endif
        {"saved_notice", test_saved_notice},
        {"save_without_disk_log", test_save_without_disk_log},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_gcp", suite_init, suite_fini, cases);
}
