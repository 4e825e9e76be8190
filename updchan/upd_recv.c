/* Update channel, hot-standby side: check and decode UPD_LOG_REQ, detect
 * LSN gaps, hand the records to the kernel service (local message, the
 * decoded records pointing into the received message's arena), and
 * acknowledge what was handed over (UPD_LOG_CONF, batched on a timer). */
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

static struct upd_in *in_get(struct upd *u, uint32_t table, uint32_t frag, uint32_t from)
{
    for (struct upd_in *in = u->ins; in; in = in->next)
        if (in->table == table && in->frag == frag) {
            if (in->from != from) {
                NLOG_INFO("upd", "table %u fragment %u: records now come from node %u "
                          "(was %u)", table, frag, from, in->from);
                in->from = from;
                in->acked_lsn = 0;
            }
            return in;
        }
    struct upd_in *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->table = table;
    in->frag = frag;
    in->from = from;
    in->next = u->ins;
    u->ins = in;
    return in;
}

static void send_ack(struct upd *u, struct upd_in *in)
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
    c->lsn = in->held_lsn;
    if (rt_send(u->rt, in->from, RT_SVC_UPD, r) == 0) {
        in->acked_lsn = in->held_lsn;
        u->st.acks_out++;
    }
}

void upd_recv_ack_all(struct upd *u)
{
    bool behind = false;
    for (struct upd_in *in = u->ins; in; in = in->next)
        if (in->held_lsn > in->acked_lsn) {
            send_ack(u, in);
            behind |= in->held_lsn > in->acked_lsn;
        }
    if (behind && !u->ack_armed && rt_timer_add(u->rt, RT_SVC_UPD, UPD_ACK_MS * 1000u, UPD_T_ACK) > 0)
        u->ack_armed = true;
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
    struct upd_in *in = in_get(u, b->table, b->frag, from);
    struct upd_redo *rd = rt_msg_alloc(m, sizeof *rd);
    struct kern_logrec *recs =
        b->n_records ? rt_msg_alloc(m, b->n_records * sizeof *recs) : NULL;
    if (!in || !rd || (b->n_records && !recs)) {
        NLOG_ERROR("upd", "no memory for %zu records of table %u fragment %u from node %u: "
                   "dropped (the gap shows at the next message)", b->n_records, b->table,
                   b->frag, from);
        return;
    }
    /* decode and check every record before anything is handed over */
    size_t n = 0;
    uint64_t expect = in->next_lsn;
    for (size_t i = 0; i < b->n_records; i++) {
        struct kern_logrec r;
        int rc = kern_logrec_decode(b->records[i].data, b->records[i].len, &r);
        if (rc >= 0 && (size_t)rc != b->records[i].len)
            rc = nines_err(NINES_ECORRUPT, "record %zu holds %zu bytes, its header says %d", i,
                           b->records[i].len, rc);
        if (rc >= 0 && (r.table != b->table || r.frag != b->frag))
            rc = nines_err(NINES_ECORRUPT, "record LSN %llu belongs to table %u fragment %u",
                           (unsigned long long)r.lsn, r.table, r.frag);
        if (rc < 0) {
            u->st.bad_msgs++;
            NLOG_ERROR("upd", "UPD_LOG_REQ of table %u fragment %u from node %u: record %zu "
                       "rejected (%s: %s); the whole message is dropped", b->table, b->frag,
                       from, i, nines_strerror(rc), nines_errdetail());
            return;
        }
        if (expect && r.lsn < expect) {
            u->st.dups_in++;
            continue; /* had it already */
        }
        if (expect && r.lsn > expect) {
            u->st.gaps++;
            NLOG_ERROR("upd", "table %u fragment %u from node %u: LSN gap, expected %llu, got "
                       "%llu; records from here on are not applied (resend needed)", b->table,
                       b->frag, from, (unsigned long long)expect, (unsigned long long)r.lsn);
            b = NULL;
            break;
        }
        recs[n++] = r;
        expect = r.lsn + 1;
    }
    rd->table = in->table;
    rd->frag = in->frag;
    rd->from = from;
    rd->recs = recs;
    rd->nrecs = n;
    /* end marks count records before them: held back after a gap */
    rd->marks = b ? b->prepared : NULL;
    rd->nmarks = b ? b->n_prepared : 0;
    if (n == 0 && rd->nmarks == 0)
        return;
    u->st.recs_in += n;
    if (n) {
        in->next_lsn = expect;
        in->held_lsn = expect - 1;
    }
    m->type = UPD_MSG_REDO;
    m->cookie = (uint64_t)(uintptr_t)rd;
    rt_msg_keep(m); /* the kernel service's handler hands it back (kept = false) */
    rt_post_local(rt, RT_SVC_KERN, m);
    if (in->held_lsn > in->acked_lsn && !u->ack_armed &&
        rt_timer_add(rt, RT_SVC_UPD, UPD_ACK_MS * 1000u, UPD_T_ACK) > 0)
        u->ack_armed = true;
}
