/* Hot-standby controller role: hold the participant list of a transaction
 * whose primary controller is on the other site, collect the readies of
 * its kernels, acknowledge with TXC_READY_CONF, forget on TXC_FORGET_REQ. */
#include "txc_int.h"

#include <inttypes.h>
#include <string.h>

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#define TXC_HSC_HOLD_FACTOR 4   /* started entries live at most 4 timeouts */

static void apply(struct txc *t, struct txc_txn *x, const Nines__ReadyInd *b)
{
    if (!b->standby) {
        for (uint32_t i = 0; i < x->nparts; i++)
            if (x->parts[i].primary == b->node)
                x->parts[i].p_ready = true;
        txc_part_frags(x, b->node, b->frags, b->n_frags);
        return;
    }
    for (uint32_t i = 0; i < x->nparts; i++) {
        struct txc_part *p = &x->parts[i];
        if (p->table == b->table && p->frag == b->frag && p->standby == b->node) {
            p->s_ready = true;
            return;
        }
    }
    t->st.stale++;
}

static void check(struct txc *t, struct txc_txn *x)
{
    if (x->st != TXC_HSC_WAITING || !x->hsc_started)
        return;
    for (uint32_t i = 0; i < x->nparts; i++)
        if (!x->parts[i].p_ready || (x->parts[i].standby && !x->parts[i].s_ready))
            return;
    struct rt_msg *m = rt_msg_new(t->rt, NINES__MSG_TYPE__TXC_READY_CONF);
    Nines__TxcReadyConf *b = m ? RT_BODY(m, Nines__TxcReadyConf, nines__txc_ready_conf__init) : NULL;
    if (!b) {
        if (m)
            rt_msg_free(t->rt, m);
        NLOG_ERROR("txc", "hsc txn %" PRIx64 ": no memory for TXC_READY_CONF", x->id);
        return;
    }
    b->txn = x->id;
    x->st = TXC_HSC_READY;
    t->st.hsc_ready++;
    txc_send(t, x->ctl, RT_SVC_TXC, m);
}

void txc_on_start_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxcStartReq *b = (const Nines__TxcStartReq *)m->body;
    if (m->from == 0 || m->from >= NET_CONN_BASE || TXC_ID_NODE(b->txn) != m->from ||
        TXC_ID_NODE(b->txn) == t->self) {
        NLOG_WARN("txc", "TXC_START_REQ for txn %" PRIx64 " from %llu ignored: not from its "
                  "controller", b->txn, (unsigned long long)m->from);
        return;
    }
    struct txc_txn *x = txc_find(t, b->txn);
    if (x && (x->st != TXC_HSC_WAITING || x->hsc_started)) {
        t->st.stale++;
        return;
    }
    if (!x) {
        x = txc_alloc(t, b->txn);
        if (!x) {
            NLOG_ERROR("txc", "hsc: no room for txn %" PRIx64 " (%u held); its controller will "
                       "time out", b->txn, t->cfg.max_txns);
            return;
        }
        x->st = TXC_HSC_WAITING;
    }
    x->ctl = (uint32_t)m->from;
    x->parts = b->n_parts ? rt_msg_alloc(m, b->n_parts * sizeof *x->parts) : NULL;
    if (b->n_parts && !x->parts) {
        NLOG_ERROR("txc", "hsc: no memory for txn %" PRIx64, b->txn);
        txc_forget(t, x);
        return;
    }
    uint32_t n = 0;
    for (size_t i = 0; i < b->n_parts; i++) {
        const Nines__Participant *p = b->parts[i];
        if (!p)
            continue;
        struct txc_part *q = &x->parts[n++];
        memset(q, 0, sizeof *q);
        q->table = p->table;
        q->frag = p->frag;
        q->primary = p->primary;
        q->standby = p->standby;
    }
    x->nparts = x->capparts = n;
    x->hsc_started = true;
    t->st.hsc_started++;
    /* readies that came before the start */
    for (struct rt_msg *e = x->kept; e; e = e->next)
        if (e->type == NINES__MSG_TYPE__READY_IND)
            apply(t, x, (const Nines__ReadyInd *)e->body);
    txc_keep(x, m);
    txc_arm(t, x, TXC_HSC_HOLD_FACTOR * t->cfg.timeout_ms);
    check(t, x);
    (void)rt;
}

void txc_hsc_ready_ind(struct txc *t, const Nines__ReadyInd *b, struct rt_msg *m)
{
    struct txc_txn *x = txc_find(t, b->txn);
    if (!x && t->gone[b->txn % TXC_GONE_SLOTS] == b->txn) {
        t->st.stale++; /* late: the controller already told us to forget it */
        return;
    }
    if (!x) {
        /* before TXC_START_REQ (other connection), or after a forget
         * this node no longer remembers (dropped after a timeout) */
        x = txc_alloc(t, b->txn);
        if (!x) {
            NLOG_ERROR("txc", "hsc: no room for txn %" PRIx64, b->txn);
            return;
        }
        x->st = TXC_HSC_WAITING;
        x->ctl = TXC_ID_NODE(b->txn);
        txc_keep(x, m);
        txc_arm(t, x, t->cfg.timeout_ms);
        return;
    }
    switch (x->st) {
    case TXC_HSC_WAITING:
        if (!x->hsc_started) {
            txc_keep(x, m);
            return;
        }
        apply(t, x, b);
        check(t, x);
        break;
    case TXC_HSC_READY:
        break;
    default:
        t->st.stale++;
        break;
    }
}

void txc_on_forget_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct txc *t = st;
    const Nines__TxcForgetReq *b = (const Nines__TxcForgetReq *)m->body;
    struct txc_txn *x = txc_find(t, b->txn);
    if (!x || (x->st != TXC_HSC_WAITING && x->st != TXC_HSC_READY) || m->from != x->ctl) {
        t->st.stale++;
        return;
    }
    t->st.hsc_forgotten++;
    t->gone[x->id % TXC_GONE_SLOTS] = x->id;
    txc_forget(t, x);
    (void)rt;
}

void txc_hsc_on_timer(struct txc *t, struct txc_txn *x)
{
    switch (x->st) {
    case TXC_HSC_WAITING:
    case TXC_HSC_READY:
        if (x->hsc_started) {
            NLOG_WARN("txc", "hsc txn %" PRIx64 ": no TXC_FORGET_REQ from controller node %u "
                      "after %u ms (%s); dropping it (controller takeover is not built yet)",
                      x->id, x->ctl, TXC_HSC_HOLD_FACTOR * t->cfg.timeout_ms,
                      txc_state_name(x->st));
            t->st.hsc_dropped++;
        } else {
            t->st.stale++;
        }
        txc_forget(t, x);
        break;
    default:
        NLOG_ERROR("txc", "hsc txn %" PRIx64 ": timer in state %s", x->id,
                   txc_state_name(x->st));
        break;
    }
}
