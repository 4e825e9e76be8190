/* Update channel: task, primary side (log shipping with end marks). */
#include "upd_int.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nlog.h"

#include <stdlib.h>
#include <string.h>

static void upd_on_event(struct rt *rt, void *st, struct rt_msg *m);

int upd_init(struct upd **out, struct rt *rt)
{
    struct upd *u = calloc(1, sizeof *u);
    if (!u)
        return nines_err(NINES_ENOMEM, "no memory for the update channel");
    u->rt = rt;
    u->self = rt_self(rt);
    int rc = rt_task_add(rt, RT_SVC_UPD, "updchan", upd_on_event, u);
    if (rc) {
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

void upd_fini(struct upd *u)
{
    if (!u)
        return;
    while (u->ships) {
        struct upd_ship *sh = u->ships;
        u->ships = sh->next;
        free(sh->marks);
        free(sh);
    }
    upd_recv_fini(u);
    free(u);
}

void upd_get_stats(const struct upd *u, struct upd_stats *out) { *out = u->st; }

/* ---- primary side ------------------------------------------------------- */

int upd_ship_add(struct upd *u, struct kern_frag *f, uint32_t standby, struct upd_ship **out)
{
    struct upd_ship *sh = calloc(1, sizeof *sh);
    if (!sh)
        return nines_err(NINES_ENOMEM, "no memory to ship table %u fragment %u",
                         kern_frag_table(f), kern_frag_id(f));
    sh->f = f;
    sh->table = kern_frag_table(f);
    sh->frag = kern_frag_id(f);
    sh->standby = standby == u->self ? 0 : standby;
    sh->next_lsn = kern_log_first_lsn(kern_frag_log(f));
    sh->next = u->ships;
    u->ships = sh;
    *out = sh;
    return 0;
}

void upd_ship_remove(struct upd *u, struct upd_ship *sh)
{
    for (struct upd_ship **pp = &u->ships; *pp; pp = &(*pp)->next)
        if (*pp == sh) {
            *pp = sh->next;
            if (sh->nmarks)
                NLOG_WARN("upd", "table %u fragment %u removed with %u end marks not shipped",
                          sh->table, sh->frag, sh->nmarks);
            free(sh->marks);
            free(sh);
            return;
        }
    N_ASSERT(!"upd_ship_remove: unknown entry");
}

void upd_ship_set_standby(struct upd *u, struct upd_ship *sh, uint32_t standby)
{
    if (standby == u->self)
        standby = 0;
    if (sh->standby != standby) {
        NLOG_INFO("upd", "table %u fragment %u: hot standby node %u -> %u", sh->table, sh->frag,
                  sh->standby, standby);
        sh->standby = standby;
        upd_kick(u, sh);
    }
}

uint32_t upd_ship_standby(const struct upd_ship *sh) { return sh->standby; }

void upd_ship_info(const struct upd_ship *sh, struct upd_ship_info *out)
{
    out->shipped_lsn = sh->next_lsn;
    out->acked_lsn = sh->acked_lsn;
    out->marks_held = sh->nmarks;
}

int upd_ship_mark(struct upd *u, struct upd_ship *sh, uint64_t txn, uint32_t nrecords,
                  uint32_t ctl, uint32_t hsc)
{
    if (sh->nmarks == sh->capmarks) {
        uint32_t cap = sh->capmarks ? 2 * sh->capmarks : 8;
        Nines__TxnEndMark *nm = realloc(sh->marks, cap * sizeof *nm);
        if (!nm)
            return nines_err(NINES_ENOMEM, "no memory for the end mark of txn %llu",
                             (unsigned long long)txn);
        sh->marks = nm;
        sh->capmarks = cap;
    }
    Nines__TxnEndMark *mk = &sh->marks[sh->nmarks++];
    nines__txn_end_mark__init(mk);
    mk->txn = txn;
    mk->nrecords = nrecords;
    mk->ctl = ctl;
    mk->hsc = hsc;
    upd_kick(u, sh);
    return 0;
}

void upd_kick(struct upd *u, struct upd_ship *sh)
{
    if (sh)
        sh->dirty = true;
    if (u->ship_posted)
        return;
    struct rt_msg *m = rt_msg_new(u->rt, UPD_MSG_SHIP);
    if (!m)
        return; /* the retry timer ships it */
    u->ship_posted = true;
    rt_post_local(u->rt, RT_SVC_UPD, m);
}

static void arm_retry(struct upd *u)
{
    if (u->retry_armed)
        return;
    if (rt_timer_add(u->rt, RT_SVC_UPD, UPD_RETRY_MS * 1000u, UPD_T_RETRY) > 0)
        u->retry_armed = true;
}

/* Ship sh's pending records and marks; false when something stays held. */
static bool ship_one(struct upd *u, struct upd_ship *sh)
{
    const struct kern_log *log = kern_frag_log(sh->f);
    for (;;) {
        uint64_t end = kern_log_next_lsn(log);
        if (sh->next_lsn >= end && sh->nmarks == 0)
            return true;
        if (sh->standby == 0) {
            /* no hot standby: records stay in the log; nobody waits for marks */
            sh->next_lsn = end;
            sh->nmarks = 0;
            return true;
        }
        struct net_endpoint *ep = rt_net(u->rt);
        if (!ep || !net_peer_reachable(ep, sh->standby))
            return false; /* kept for the standby (catch-up: README "Not yet") */
        struct rt_msg *m = rt_msg_new(u->rt, NINES__MSG_TYPE__UPD_LOG_REQ);
        if (!m)
            return false;
        Nines__UpdLogReq *b = RT_BODY(m, Nines__UpdLogReq, nines__upd_log_req__init);
        uint64_t want = end - sh->next_lsn;
        ProtobufCBinaryData *recs = want ? rt_msg_alloc(m, want * sizeof *recs) : NULL;
        if (!b || (want && !recs)) {
            rt_msg_free(u->rt, m);
            return false;
        }
        b->table = sh->table;
        b->frag = sh->frag;
        struct kern_log_cursor c;
        kern_log_cursor_init(&c, log, sh->next_lsn);
        size_t n = 0, bytes = 0;
        while (n < want && bytes < UPD_MSG_BYTES) {
            const uint8_t *p;
            size_t len;
            int rc = kern_log_cursor_next(&c, &p, &len);
            if (rc == NINES_ENOTFOUND)
                break;
            if (rc) {
                NLOG_ERROR("upd", "table %u fragment %u: cannot read log record %llu for the "
                           "standby: %s", sh->table, sh->frag, (unsigned long long)c.lsn,
                           nines_errdetail());
                rt_msg_free(u->rt, m);
                return false;
            }
            recs[n].data = (uint8_t *)p; /* packed by rt_send before anything changes the log */
            recs[n].len = len;
            n++;
            bytes += len;
        }
        b->records = recs;
        b->n_records = n;
        bool all = sh->next_lsn + n == end;
        Nines__TxnEndMark **mp = NULL;
        if (all && sh->nmarks) {
            mp = rt_msg_alloc(m, sh->nmarks * sizeof *mp);
            if (!mp) {
                rt_msg_free(u->rt, m);
                return false;
            }
            for (uint32_t i = 0; i < sh->nmarks; i++)
                mp[i] = &sh->marks[i];
            b->prepared = mp;
            b->n_prepared = sh->nmarks;
        }
        int rc = rt_send(u->rt, sh->standby, RT_SVC_UPD, m);
        if (rc) {
            u->st.send_failures++;
            NLOG_DEBUG("upd", "table %u fragment %u: %zu records for node %u held: %s",
                       sh->table, sh->frag, n, sh->standby, nines_strerror(rc));
            return false;
        }
        u->st.msgs_out++;
        u->st.recs_out += n;
        sh->next_lsn += n;
        if (mp) {
            u->st.marks_out += sh->nmarks;
            sh->nmarks = 0;
        }
    }
}

static void ship_all(struct upd *u, bool everything)
{
    bool held = false;
    for (struct upd_ship *sh = u->ships; sh; sh = sh->next) {
        if (!sh->dirty && !everything)
            continue;
        sh->dirty = false;
        if (!ship_one(u, sh)) {
            sh->dirty = true;
            held = true;
        }
    }
    if (held)
        arm_retry(u);
}

void upd_on_log_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct upd *u = st;
    const Nines__UpdLogConf *b = (const Nines__UpdLogConf *)m->body;
    u->st.acks_in++;
    for (struct upd_ship *sh = u->ships; sh; sh = sh->next)
        if (sh->table == b->table && sh->frag == b->frag) {
            if (m->from != sh->standby) {
                NLOG_DEBUG("upd", "acknowledgement of table %u fragment %u from node %llu, "
                           "not its standby %u: ignored", b->table, b->frag,
                           (unsigned long long)m->from, sh->standby);
                return;
            }
            if (b->lsn >= sh->next_lsn) {
                NLOG_WARN("upd", "node %u acknowledges table %u fragment %u up to LSN %llu, "
                          "beyond what was shipped (%llu): ignored", sh->standby, b->table,
                          b->frag, (unsigned long long)b->lsn,
                          (unsigned long long)sh->next_lsn);
                return;
            }
            if (b->lsn > sh->acked_lsn) {
                sh->acked_lsn = b->lsn;
                /* the standby holds everything up to here: what no open
                 * transaction's undo needs can go (README "Log truncation") */
                int64_t freed = kern_frag_log_trim(sh->f, sh->acked_lsn + 1);
                if (freed > 0)
                    u->st.trimmed += (uint64_t)freed;
            }
            return;
        }
}

static void upd_on_event(struct rt *rt, void *st, struct rt_msg *m)
{
    struct upd *u = st;
    switch (m->type) {
    case RT_MSG_START:
        break;
    case UPD_MSG_SHIP:
        u->ship_posted = false;
        ship_all(u, false);
        break;
    case RT_MSG_TIMER:
        switch (m->cookie) {
        case UPD_T_RETRY:
            u->retry_armed = false;
            ship_all(u, false);
            break;
        case UPD_T_ACK:
            u->ack_armed = false;
            upd_recv_ack_all(u);
            break;
        default:
            NLOG_WARN("upd", "unknown timer %llu", (unsigned long long)m->cookie);
            break;
        }
        break;
    case RT_MSG_CLIENT_CLOSED:
        break;
    default:
        NLOG_WARN("upd", "update channel ignores message type %u", m->type);
        break;
    }
}
