/* Update channel, hot-standby side: check and decode UPD_LOG_REQ, hand the
 * records and end marks to the kernel service (local message, the decoded
 * records pointing into the received message's arena), and acknowledge
 * what the kernel service reports APPLIED (UPD_LOG_CONF: batched on a
 * timer; a resend request at once, throttled). The channel keeps no LSN of
 * its own: the replica's log is the one truth (README "Positions"). */
#include "upd_int.h"

#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nlog.h"

#include <stdlib.h>

void upd_recv_fini(struct upd *u)
{
    while (u->ins) {
        struct upd_in *in = u->ins;
        u->ins = in->next;
        free(in);
    }
}

static struct upd_in *in_find(struct upd *u, uint32_t table, uint32_t frag)
{
    for (struct upd_in *in = u->ins; in; in = in->next)
        if (in->table == table && in->frag == frag)
            return in;
    return NULL;
}

void upd_recv_forget(struct upd *u, uint32_t table, uint32_t frag)
{
    for (struct upd_in **pp = &u->ins; *pp; pp = &(*pp)->next)
        if ((*pp)->table == table && (*pp)->frag == frag) {
            struct upd_in *in = *pp;
            *pp = in->next;
            free(in);
            return;
        }
}

static struct upd_in *in_get(struct upd *u, uint32_t table, uint32_t frag, uint32_t from)
{
    struct upd_in *in = in_find(u, table, frag);
    if (in) {
        if (in->from != from) {
            NLOG_INFO("upd", "table %u fragment %u: records now come from node %u (was %u)",
                      table, frag, from, in->from);
            in->from = from;
            in->acked_lsn = in->acked_seq = 0; /* tell the new sender where we are */
            in->resend_sent = false;
        }
        return in;
    }
    in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->table = table;
    in->frag = frag;
    in->from = from;
    in->next = u->ins;
    u->ins = in;
    return in;
}

static void send_ack(struct upd *u, struct upd_in *in, bool resend)
{
    struct rt_msg *r = rt_msg_new(u->rt, NINES__MSG_TYPE__UPD_LOG_CONF);
    Nines__UpdLogConf *c = r ? RT_BODY(r, Nines__UpdLogConf, nines__upd_log_conf__init) : NULL;
    if (!c) {
        if (r)
            rt_msg_free(u->rt, r);
        return;
    }
    c->table = in->table;
    c->frag = in->frag;
    c->lsn = in->applied_lsn;
    c->mark_seq = in->applied_seq;
    c->pinc = in->pinc;
    c->resend = resend;
    if (rt_send(u->rt, in->from, RT_SVC_UPD, r) == 0) {
        in->acked_lsn = in->applied_lsn;
        in->acked_seq = in->applied_seq;
        u->st.acks_out++;
        if (resend) {
            u->st.resend_reqs++;
            in->resend_due = false;
            in->resend_sent = true;
            in->resend_us = rt_now_us(u->rt);
        }
    }
}

static bool resend_allowed(const struct upd *u, const struct upd_in *in)
{
    return !in->resend_sent || rt_now_us(u->rt) - in->resend_us >= UPD_RETRY_MS * 1000u;
}

static void arm_ack(struct upd *u)
{
    if (!u->ack_armed && rt_timer_add(u->rt, RT_SVC_UPD, UPD_ACK_MS * 1000u, UPD_T_ACK) > 0)
        u->ack_armed = true;
}

void upd_recv_ack_all(struct upd *u)
{
    bool behind = false;
    for (struct upd_in *in = u->ins; in; in = in->next) {
        if (in->resend_due && resend_allowed(u, in))
            send_ack(u, in, true);
        else if (in->applied_lsn != in->acked_lsn || in->applied_seq != in->acked_seq)
            send_ack(u, in, false);
        behind |= in->resend_due || in->applied_lsn != in->acked_lsn ||
                  in->applied_seq != in->acked_seq;
    }
    if (behind)
        arm_ack(u);
}

void upd_recv_applied(struct upd *u, const struct upd_applied *a)
{
    struct upd_in *in = in_get(u, a->table, a->frag, a->from);
    if (!in) {
        NLOG_ERROR("upd", "no memory to acknowledge table %u fragment %u", a->table, a->frag);
        return;
    }
    in->pinc = a->pinc;
    in->applied_lsn = a->lsn;
    in->applied_seq = a->mark_seq;
    if (!a->resend) {
        in->resend_due = false;
    } else {
        u->st.gaps++;
        in->resend_due = true;
        if (resend_allowed(u, in)) {
            send_ack(u, in, true); /* at once: the primary rewinds */
            return;
        }
    }
    if (in->resend_due || in->applied_lsn != in->acked_lsn || in->applied_seq != in->acked_seq)
        arm_ack(u);
}

void upd_on_log_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct upd *u = st;
    const Nines__UpdLogReq *b = (const Nines__UpdLogReq *)m->body;
    u->st.msgs_in++;
    if (m->from == 0 || m->from > NINES_MAX_NODES) {
        u->st.bad_msgs++;
        NLOG_WARN("upd", "UPD_LOG_REQ from %llu, not a node: ignored",
                  (unsigned long long)m->from);
        return;
    }
    uint32_t from = (uint32_t)m->from;
    /* whom the fragment's acknowledgements go to is the kernel service's
     * decision (upd_recv_applied, only for records it takes: those of the
     * fragment's primary in the installed node set), not the last sender's */
    struct upd_redo *rd = rt_msg_alloc(m, sizeof *rd);
    struct kern_logrec *recs =
        b->n_records ? rt_msg_alloc(m, b->n_records * sizeof *recs) : NULL;
    if (!rd || (b->n_records && !recs)) {
        NLOG_ERROR("upd", "no memory for %zu records of table %u fragment %u from node %u: "
                   "dropped (the kernel sees a gap and asks for a resend)", b->n_records,
                   b->table, b->frag, from);
        return;
    }
    /* decode and check every record before anything is handed over */
    for (size_t i = 0; i < b->n_records; i++) {
        struct kern_logrec *r = &recs[i];
        int rc = kern_logrec_decode(b->records[i].data, b->records[i].len, r);
        if (rc >= 0 && (size_t)rc != b->records[i].len)
            rc = nines_err(NINES_ECORRUPT, "record %zu holds %zu bytes, its header says %d", i,
                           b->records[i].len, rc);
        if (rc >= 0 && (r->table != b->table || r->frag != b->frag))
            rc = nines_err(NINES_ECORRUPT, "record LSN %llu belongs to table %u fragment %u",
                           (unsigned long long)r->lsn, r->table, r->frag);
        if (rc >= 0 && i > 0 && r->lsn != recs[i - 1].lsn + 1)
            rc = nines_err(NINES_ECORRUPT, "record %zu has LSN %llu after LSN %llu", i,
                           (unsigned long long)r->lsn, (unsigned long long)recs[i - 1].lsn);
        if (rc < 0) {
            u->st.bad_msgs++;
            NLOG_ERROR("upd", "UPD_LOG_REQ of table %u fragment %u from node %u: record %zu "
                       "rejected (%s: %s); the whole message is dropped", b->table, b->frag,
                       from, i, nines_strerror(rc), nines_errdetail());
            return;
        }
    }
    if (b->n_records == 0 && b->n_prepared == 0)
        return;
    for (size_t i = 0; i < b->n_prepared; i++)
        if (!b->prepared[i]) {
            u->st.bad_msgs++;
            NLOG_ERROR("upd", "UPD_LOG_REQ of table %u fragment %u from node %u: end mark %zu "
                       "is empty; the whole message is dropped", b->table, b->frag, from, i);
            return;
        }
    rd->table = b->table;
    rd->frag = b->frag;
    rd->from = from;
    rd->pinc = b->pinc;
    rd->recs = recs;
    rd->nrecs = b->n_records;
    rd->marks = b->prepared;
    rd->nmarks = b->n_prepared;
    rd->start_lsn = b->start_lsn;
    rd->start_seq = b->start_seq;
    rd->raw = b->records;
    u->st.recs_in += b->n_records;
    m->type = UPD_MSG_REDO;
    m->cookie = (uint64_t)(uintptr_t)rd;
    rt_msg_keep(m); /* the kernel service's handler hands it back (kept = false) */
    rt_post_local(rt, RT_SVC_KERN, m);
}
