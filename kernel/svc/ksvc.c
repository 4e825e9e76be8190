/* Kernel service: lifecycle, runtime events, and the replicas of this node
 * created from the distribution dictionary. */
#include "ksvc_int.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdlib.h>
#include <string.h>


const char *sk_txn_state_name(enum sk_txn_state st)
{
    switch (st) {
    case SK_TX_ACTIVE:
        return "active";
    case SK_TX_WAITING_LOCK:
        return "waiting-lock";
    case SK_TX_PREPARED:
        return "prepared";
    case SK_TX_ENDED:
        return "ended";
    case SK_TX_END_FAILED:
        return "end-failed";
    default:
        return "invalid";
    }
}

/* ---- dictionary -> kernel definitions ---------------------------------- */

/* Kernel type of a dictionary column type; NINES_EINVAL for an unknown one. */
static int sk_kern_type(uint32_t dict_type, uint8_t *out)
{
    int kt = kern_type_from_dict(dict_type);
    if (kt < 0)
        return nines_err(NINES_EINVAL, "dictionary column type %u has no kernel type",
                         dict_type);
    *out = (uint8_t)kt;
    return 0;
}

void sk_rep_free(struct sk_rep *r)
{
    if (!r)
        return;
    sk_rb_free(r);
    kern_frag_destroy(r->f);
    free(r->cols);
    free(r->kcols);
    free(r->pk);
    free(r->colkey);
    free(r->colrec);
    free(r->names);
    free(r->pend);
    free(r);
}

/* Build the replica of fragment `frag` of dictionary table t with `role`
 * (the kern_frag_def comes from the table's columns and primary key). */
int sk_rep_new(const struct dict_table *t, uint32_t frag, int role, struct sk_rep **out)
{
    const struct dict_table_def *d = &t->def;
    struct sk_rep *r = calloc(1, sizeof *r);
    if (!r)
        return nines_err(NINES_ENOMEM, "no memory for a replica of table %s", d->name);
    r->table = t->id;
    r->frag = frag;
    r->role = role;
    r->ncols = d->ncols;
    r->npk = d->npk;
    r->cols = calloc(d->ncols, sizeof *r->cols);
    r->kcols = calloc(d->npk ? d->npk : 1, sizeof *r->kcols);
    r->colkey = malloc(d->ncols * sizeof *r->colkey);
    r->pk = calloc(d->npk ? d->npk : 1, sizeof *r->pk);
    r->colrec = malloc(d->ncols * sizeof *r->colrec);
    r->names = calloc(d->ncols, sizeof *r->names);
    snprintf(r->tname, sizeof r->tname, "%s", d->name);
    int rc = 0;
    if (!r->cols || !r->kcols || !r->pk || !r->colkey || !r->colrec || !r->names)
        rc = nines_err(NINES_ENOMEM, "no memory for a replica of table %s", d->name);
    for (unsigned i = 0; rc == 0 && i < d->ncols; i++) {
        rc = sk_kern_type(d->cols[i].type, &r->cols[i].type);
        r->cols[i].nullable = d->cols[i].nullable;
        r->cols[i].size = d->cols[i].size;
        snprintf(r->names[i], sizeof r->names[i], "%s", d->cols[i].name);
        r->colkey[i] = -1;
    }
    for (unsigned j = 0; rc == 0 && j < d->npk; j++) {
        if (d->pk[j] >= d->ncols) {
            rc = nines_err(NINES_EINVAL, "table %s: key column %u of %u", d->name, d->pk[j],
                           d->ncols);
            break;
        }
        r->colkey[d->pk[j]] = (int16_t)j;
        r->pk[j] = d->pk[j];
        r->kcols[j] = r->cols[d->pk[j]];
    }
    int16_t nrec = 0;
    for (unsigned i = 0; rc == 0 && i < d->ncols; i++)
        r->colrec[i] = r->colkey[i] >= 0 ? -1 : nrec++;
    if (rc == 0) {
        struct kern_frag_def fd = {
            .table = t->id,
            .frag = frag,
            .cols = r->cols,
            .ncols = d->ncols,
            .pk = d->pk,
            .npk = d->npk,
        };
        rc = kern_frag_create(&fd, role, &r->f);
    }
    if (rc) {
        sk_rep_free(r);
        return rc;
    }
    r->node.a = t->id;
    r->node.b = frag;
    *out = r;
    return 0;
}

struct sk_rep *sk_rep_get(const struct ksvc *k, uint32_t table, uint32_t frag)
{
    struct sk_node *nd = sk_map_get(&k->reps, table, frag, 0);
    return nd ? (struct sk_rep *)nd : NULL;
}

void sk_rep_drop(struct ksvc *k, struct sk_rep *r)
{
    size_t open = kern_frag_txns(r->f, NULL, 0);
    NLOG_INFO("kern", "dropping the %s replica of table %s (%u) fragment %u (%zu open "
              "transactions there)", kern_frag_role_name(kern_frag_role(r->f)), r->tname,
              r->table, r->frag, open);
    sk_pend_flush(k, r); /* nothing left here to wait for */
    sk_marks_drop(k, r);
    sk_dg_rep_dropped(k, r); /* digests in progress leave it out */
    sk_ck_rep_dropped(k, r); /* its checkpoint goes (ksvc_ckpt.c) */
    sk_rb_rep_gone(k, r);    /* a copy served from it ends */
    (void)kern_lock_shield(k->locks, r->table, r->frag, false); /* dropped mid-takeover */
    upd_recv_forget(k->u, r->table, r->frag);
    if (r->ship)
        upd_ship_remove(k->u, r->ship);
    sk_map_del(&k->reps, &r->node);
    /* its rows are freed a slice per turn: a replica of millions of rows
     * freed in one handler would stall the executor past the watchdog */
    struct kern_frag *f = r->f;
    r->f = NULL;
    sk_rep_free(r);
    sk_grave_add(k, f);
}

void sk_grave_add(struct ksvc *k, struct kern_frag *f)
{
    if (!f)
        return;
    if (k->ngrave == k->capgrave) {
        size_t cap = k->capgrave ? 2 * k->capgrave : 8;
        struct kern_frag **g = realloc(k->grave, cap * sizeof *g);
        if (!g) {
            kern_frag_destroy(f); /* no memory for the list: free it now */
            return;
        }
        k->grave = g;
        k->capgrave = cap;
    }
    k->grave[k->ngrave++] = f;
    if (!k->grave_armed && rt_timer_add(k->rt, RT_SVC_KERN, 0, SK_TIMER_FREE) > 0)
        k->grave_armed = true;
}

/* SK_TIMER_FREE: one slice of the oldest dropped replica. */
void sk_grave_step(struct ksvc *k)
{
    if (!k->ngrave)
        return;
    k->st.free_steps++;
    if (!kern_frag_destroy_step(k->grave[0], KSVC_FREE_STEP_ROWS)) {
        memmove(k->grave, k->grave + 1, (k->ngrave - 1) * sizeof *k->grave);
        k->ngrave--;
    }
    if (k->ngrave && rt_timer_add(k->rt, RT_SVC_KERN, 0, SK_TIMER_FREE) > 0)
        k->grave_armed = true;
}

void ksvc_dict_changed(struct ksvc *k, const struct dict *d, bool live_commit)
{
    if (!k)
        return;
    sk_reconcile(k, d, live_commit);
    sk_copy_reconcile(k, d); /* log copies this node no longer is (ksvc_copy.c) */
    sk_rb_reconcile(k, d);   /* rebuilds (ksvc_rebuild.c) */
}

bool sk_member(const struct ksvc *k, uint32_t node)
{
    if (node == k->self)
        return true;
    return node && node <= NINES_MAX_NODES && (rt_nodeset(k->rt)->members & RT_NODE_BIT(node));
}

struct dict_live sk_live(const struct ksvc *k)
{
    const struct rt_nodeset *ns = rt_nodeset(k->rt);
    return (struct dict_live){.members = ns->members, .current = ns->current,
                              .standby_only = ns->standby_only, .since = ns->since};
}

size_t ksvc_nreplicas(const struct ksvc *k) { return k->reps.n; }
size_t ksvc_ntxns(const struct ksvc *k) { return k->txns.n; }
struct kern_frag *ksvc_replica(const struct ksvc *k, uint32_t table, uint32_t frag)
{
    const struct sk_rep *r = sk_rep_get(k, table, frag);
    return r ? r->f : NULL;
}
uint64_t sk_table_bytes(const struct ksvc *k)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < k->reps.cap; i++)
        for (const struct sk_node *nd = k->reps.bk[i]; nd; nd = nd->next) {
            const struct sk_rep *r = (const struct sk_rep *)nd;
            if (r->f)
                sum += kern_bt_bytes(kern_frag_tree(r->f));
        }
    return sum;
}

void ksvc_get_stats(const struct ksvc *k, struct ksvc_stats *out)
{
    *out = k->st;
    out->table_bytes = sk_table_bytes(k);
    out->marks_held = k->marks.n;
    out->digest_jobs = k->ndg;
    out->freeing = k->ngrave;
}

/* ---- lifecycle ---------------------------------------------------------- */

int ksvc_init(struct ksvc **out, struct rt *rt, const struct ksvc_config *cfg)
{
    if (!cfg || !cfg->dict)
        return nines_err(NINES_EINVAL, "kernel service needs the node's dictionary");
    struct ksvc *k = calloc(1, sizeof *k);
    if (!k)
        return nines_err(NINES_ENOMEM, "no memory for the kernel service");
    k->dict = cfg->dict;
    k->dict_ctx = cfg->dict_ctx;
    k->ns_accepted = cfg->ns_accepted;
    k->ns_ctx = cfg->ns_ctx;
    k->gcp_on = cfg->gcp_on;
    k->budget = cfg->memory_budget;
    k->rt = rt;
    k->u = cfg->upd;
    k->self = rt_self(rt);
    const struct nines_conf *nc = rt_conf(rt);
    k->ask_us = (nc && nc->txn_timeout_ms ? (uint64_t)KSVC_OUTCOME_TIMEOUTS * nc->txn_timeout_ms
                                          : KSVC_OUTCOME_ASK_MS) * 1000u;
    struct kern_lock_conf lc = {.timeout_ms = nc ? nc->lock_timeout_ms
                                                 : KSVC_LOCK_TIMEOUT_MS};
    struct kern_lock_cb cb = {.on_grant = sk_on_grant, .on_fail = sk_on_fail, .ctx = k};
    k->locks = kern_lock_new(&lc, &cb);
    int rc = k->locks ? 0 : nines_err(NINES_ENOMEM, "no memory for the lock manager");
    if (rc == 0)
        rc = sk_map_init(&k->reps, 64);
    if (rc == 0)
        rc = sk_map_init(&k->txns, 1024);
    if (rc == 0)
        rc = sk_map_init(&k->marks, 1024);
    if (rc == 0)
        rc = sk_dlog_init(k, cfg);
    if (rc == 0)
        rc = sk_ck_init(k, cfg); /* checkpoints, with the disk log (ksvc_ckpt.c) */
    if (rc == 0)
        rc = sk_rc_init(k, cfg); /* whole-cluster restart (ksvc_restart.c) */
    if (rc == 0)
        rc = rt_task_add(rt, RT_SVC_KERN, "kernel", ksvc_on_event, k);
    if (rc == 0)
        rc = rt_subscribe_nodeset(rt, RT_SVC_KERN); /* roles follow every node set */
    if (rc) {
        ksvc_fini(k);
        return rc;
    }
    *out = k;
    return 0;
}

static void sk_msg_release(struct rt_msg *m)
{
    if (m) {
        arena_destroy(&m->arena);
        free(m);
    }
}

void ksvc_fini(struct ksvc *k)
{
    if (!k)
        return;
    for (uint32_t i = 0; i < k->ndeferred; i++)
        sk_msg_release(k->deferred[i]);
    sk_dg_fini(k);
    if (k->txns.bk)
        SK_MAP_FOREACH(&k->txns, i, nd, nx)
        {
            struct sk_txn *t = (struct sk_txn *)nd;
            sk_msg_release(t->req); /* the runtime is gone: release directly */
            sk_msg_release(t->conf);
            free(t->touch);
            free(t);
        }
    while (k->free_txns) {
        struct sk_txn *t = k->free_txns;
        k->free_txns = t->free_next;
        free(t->touch);
        free(t);
    }
    if (k->reps.bk)
        SK_MAP_FOREACH(&k->reps, i, nd, nx)
        sk_rep_free((struct sk_rep *)nd);
    for (size_t i = 0; i < k->ngrave; i++)
        kern_frag_destroy(k->grave[i]);
    free(k->grave);
    sk_copy_fini(k);
    sk_rb_fini(k);
    sk_tb_fini(k);
    sk_marks_free(k);
    sk_map_free(&k->txns);
    sk_map_free(&k->reps);
    kern_lock_free(k->locks);
    sk_rc_fini(k);
    sk_ck_fini(k);
    sk_dlog_fini(k);
    sk_gcp_fini(k);
    free(k);
}

/* ---- events ------------------------------------------------------------- */

void sk_arm_tick(struct ksvc *k)
{
    if (k->tick_armed)
        return;
    if (rt_timer_add(k->rt, RT_SVC_KERN, KSVC_TICK_MS * 1000u, SK_TIMER_TICK) > 0)
        k->tick_armed = true;
}

void sk_after(struct ksvc *k)
{
    kern_lock_dispatch(k->locks);
    if (k->nwaiting)
        sk_arm_tick(k);
    if (k->dg_head && !k->dg_armed)
        sk_dg_arm(k); /* a timer that could not be added before */
    sk_tb_after(k); /* a takeback drain: done now? */
}

void ksvc_on_event(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    switch (m->type) {
    case RT_MSG_START:
        sk_dlog_start(k);
        sk_ck_start(k);
        sk_reconcile(k, k->dict(k->dict_ctx), false);
        break;
    case KSVC_MSG_RECOVER: /* whole-cluster restart (ksvc_restart.c) */
        sk_rc_start(k, m->cookie);
        break;
    case RT_MSG_IO_DONE:
        if (!sk_dlog_on_io_done(k, (struct rt_io_req *)(uintptr_t)m->cookie) &&
            !sk_ck_on_io_done(k, (struct rt_io_req *)(uintptr_t)m->cookie) &&
            !sk_rc_on_io_done(k, (struct rt_io_req *)(uintptr_t)m->cookie))
            NLOG_WARN("kern", "an I/O completion that is neither the disk log's nor a "
                      "checkpoint's");
        break;
    case RT_MSG_NODESET: /* roles follow the installed node set (README "Roles") */
        sk_rc_nodeset(k, k->dict(k->dict_ctx)); /* a restart set: recovered replicas */
        sk_reconcile(k, k->dict(k->dict_ctx), false);
        sk_copy_reconcile(k, k->dict(k->dict_ctx)); /* log copies (ksvc_copy.c) */
        sk_rb_reconcile(k, k->dict(k->dict_ctx));   /* rebuilds (ksvc_rebuild.c) */
        sk_tb_nodeset(k);                            /* a takeback drain ends */
        break;
    case UPD_MSG_BARRIER_DONE: /* takeover: redo of what came before the epoch is done */
        sk_on_barrier_done(k, m->cookie);
        break;
    case RT_MSG_TIMER:
        switch (m->cookie) {
        case SK_TIMER_TICK:
            k->tick_armed = false;
            kern_lock_tick(k->locks, rt_now_us(rt) / 1000u);
            break;
        case SK_TIMER_ASK:
            k->ask_armed = false;
            sk_ask_due(k);
            break;
        case SK_TIMER_TAKEOVER_ASK:
            k->tk_armed = false;
            sk_takeover_ask_due(k);
            break;
        case SK_TIMER_DIGEST:
            k->dg_armed = false;
            sk_dg_step(k);
            break;
        case SK_TIMER_FREE:
            k->grave_armed = false;
            sk_grave_step(k);
            break;
        case SK_TIMER_DLOG:
        case SK_TIMER_DLOG_RETRY:
            sk_dlog_on_timer(k, m->cookie);
            break;
        case SK_TIMER_REBUILD:
            sk_rb_tick(k);
            break;
        case SK_TIMER_CKPT:
        case SK_TIMER_CKPT_DUE:
            sk_ck_on_timer(k, m->cookie);
            break;
        case SK_TIMER_TAKEBACK:
            sk_tb_timer(k);
            break;
        case SK_TIMER_LEAVE:
            k->leave_armed = false;
            sk_leave_due(k);
            break;
        default:
            NLOG_WARN("kern", "unknown timer %llu", (unsigned long long)m->cookie);
            break;
        }
        break;
    case UPD_MSG_REDO:
        m->kept = false; /* handed over kept by the update channel: recycle after us */
        sk_on_redo(k, m);
        break;
    case UPD_MSG_ACKED:
        sk_on_acked(k, (const struct upd_acked *)(uintptr_t)m->cookie);
        break;
    case RT_MSG_GCP_SAVED: /* this node's supervisor made the epoch durable as restorable */
        if (m->from == 0)
            sk_gcp_saved(k, m->cookie);
        break;
    case RT_MSG_CLIENT_CLOSED: /* its digest and checkpoint requests are given up */
        sk_dg_client_closed(k, m->from);
        sk_ck_client_closed(k, m->from);
        break;
    default:
        NLOG_WARN("kern", "kernel service ignores message type %u", m->type);
        break;
    }
    sk_after(k);
}
