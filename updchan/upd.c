/* Update channel: task, primary side (log shipping with end marks, kept
 * until the standby acknowledges it applied them, resent on request or
 * when acknowledgements stop making progress). */
#include "upd_int.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nlog.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void upd_on_event(struct rt *rt, void *st, struct rt_msg *m);

int upd_init(struct upd **out, struct rt *rt)
{
    struct upd *u = calloc(1, sizeof *u);
    if (!u)
        return nines_err(NINES_ENOMEM, "no memory for the update channel");
    u->rt = rt;
    u->self = rt_self(rt);
    int rc = rt_task_add(rt, RT_SVC_UPD, "updchan", upd_on_event, u);
    if (rc == 0)
        rc = rt_subscribe_peers(rt, RT_SVC_UPD); /* standbys coming back: resend */
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

/* A new primary incarnation: the wall clock in µs, strictly above every
 * one handed out before in this process. Assumption (README "Positions"):
 * a restarted process's wall clock is past the previous process's last
 * incarnation (fewer replicas were created per µs than µs pass, and the
 * clock is not stepped back across a restart). */
static uint64_t upd_new_pinc(void)
{
    static _Atomic uint64_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    uint64_t prev = atomic_load(&last), want;
    do
        want = now > prev ? now : prev + 1;
    while (!atomic_compare_exchange_weak(&last, &prev, want));
    return want;
}

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
    sh->st = UPD_SH_LIVE;
    sh->pinc = upd_new_pinc();
    sh->next_lsn = kern_log_first_lsn(kern_frag_log(f));
    sh->acked_lsn = sh->next_lsn - 1;
    sh->start_lsn = sh->next_lsn;
    sh->next_seq = 1;
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
                NLOG_WARN("upd", "table %u fragment %u removed with %u end marks not "
                          "acknowledged", sh->table, sh->frag, sh->nmarks);
            free(sh->marks);
            free(sh);
            return;
        }
    N_ASSERT(!"upd_ship_remove: unknown entry");
}

static bool ship_one(struct upd *u, struct upd_ship *sh);

void upd_ship_set_standby(struct upd *u, struct upd_ship *sh, uint32_t standby)
{
    if (standby == u->self)
        standby = 0;
    if (sh->standby != standby) {
        uint32_t old = sh->standby;
        /* what is logged but not yet shipped goes to the old target first:
         * transactions that prepared in this turn named it in their
         * READY_IND, and a live old target (a hot standby the dictionary
         * moved to another node keeps taking the stream a while, kernel/svc
         * README "Reintegration") then holds their records and answers
         * for them; an unreachable one gets nothing (ship_one) */
        if (old && sh->st == UPD_SH_LIVE)
            (void)ship_one(u, sh);
        sh->standby = standby;
        upd_ship_retarget(u, sh, old);
        /* a standby that needs more than the new stint names it (resend);
         * what is no longer held makes the entry BROKEN again */
        sh->st = UPD_SH_LIVE;
        upd_kick(u, sh);
    }
}

struct upd_ship *upd_ship_find(struct upd *u, uint32_t table, uint32_t frag)
{
    for (struct upd_ship *sh = u->ships; sh; sh = sh->next)
        if (sh->table == table && sh->frag == frag)
            return sh;
    return NULL;
}

uint32_t upd_ship_standby(const struct upd_ship *sh) { return sh->standby; }
uint64_t upd_ship_pinc(const struct upd_ship *sh) { return sh->pinc; }

/* README "Lag": a sample (the log's last LSN, now) while records are not
 * acknowledged; samples at or below the acknowledged LSN leave. */
static void lag_sample(struct upd *u, struct upd_ship *sh)
{
    uint64_t last = kern_log_next_lsn(kern_frag_log(sh->f)) - 1;
    if (!sh->standby || last <= sh->acked_lsn || sh->lag_n == UPD_LAG_SAMPLES)
        return;
    if (sh->lag_n) {
        uint32_t newest = (sh->lag_head + sh->lag_n - 1) % UPD_LAG_SAMPLES;
        if (sh->lag[newest].lsn >= last)
            return;
    }
    uint32_t at = (sh->lag_head + sh->lag_n) % UPD_LAG_SAMPLES;
    sh->lag[at].lsn = last;
    sh->lag[at].us = rt_now_us(u->rt);
    sh->lag_n++;
}

static void lag_acked(struct upd_ship *sh)
{
    while (sh->lag_n && sh->lag[sh->lag_head].lsn <= sh->acked_lsn) {
        sh->lag_head = (sh->lag_head + 1) % UPD_LAG_SAMPLES;
        sh->lag_n--;
    }
}

void upd_lag_reset(struct upd *u, struct upd_ship *sh)
{
    sh->lag_head = sh->lag_n = 0;
    lag_sample(u, sh);
}

void upd_ship_info(const struct upd_ship *sh, struct upd_ship_info *out)
{
    out->behind_since_us = sh->lag_n ? sh->lag[sh->lag_head].us : 0;
    out->shipped_lsn = sh->next_lsn;
    out->acked_lsn = sh->acked_lsn;
    out->mark_seq = sh->next_seq - 1;
    out->shipped_seq = sh->shipped_seq;
    out->acked_seq = sh->acked_seq;
    out->marks_held = sh->nmarks;
    out->start_lsn = sh->start_lsn;
    out->start_seq = sh->start_seq;
    out->state = sh->st;
}

int upd_ship_mark(struct upd *u, struct upd_ship *sh, uint64_t txn, uint32_t nrecords,
                  uint32_t ctl, uint32_t hsc)
{
    if (sh->standby == 0)
        return 0; /* nobody waits for it (FragRecords.standby = 0) */
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
    mk->seq = sh->next_seq++;
    mk->lsn = kern_log_next_lsn(kern_frag_log(sh->f)) - 1;
    upd_kick(u, sh);
    return 0;
}

bool upd_ship_has_mark(const struct upd_ship *sh, uint64_t txn)
{
    for (uint32_t i = 0; i < sh->nmarks; i++)
        if (sh->marks[i].txn == txn)
            return true;
    return false;
}

void upd_kick(struct upd *u, struct upd_ship *sh)
{
    if (sh) {
        sh->dirty = true;
        lag_sample(u, sh);
    }
    if (u->ship_posted)
        return;
    struct rt_msg *m = rt_msg_new(u->rt, UPD_MSG_SHIP);
    if (!m)
        return; /* the retry timer ships it */
    u->ship_posted = true;
    rt_post_local(u->rt, RT_SVC_UPD, m);
}

void upd_barrier(struct upd *u, uint64_t cookie)
{
    struct rt_msg *m = rt_msg_new(u->rt, UPD_MSG_BARRIER);
    N_ASSERT(m != NULL); /* as for UPD_MSG_BARRIER_DONE */
    m->cookie = cookie;
    rt_post_local(u->rt, RT_SVC_UPD, m);
}

static void arm_retry(struct upd *u)
{
    if (u->retry_armed)
        return;
    if (rt_timer_add(u->rt, RT_SVC_UPD, UPD_RETRY_MS * 1000u, UPD_T_RETRY) > 0)
        u->retry_armed = true;
}

static bool outstanding(const struct upd_ship *sh)
{
    return sh->next_lsn > sh->acked_lsn + 1 || sh->shipped_seq > sh->acked_seq;
}

/* The standby needs what is gone: stop shipping to it (README "Resend"). */
static void ship_broken(struct upd *u, struct upd_ship *sh, uint64_t lsn, uint64_t seq,
                        const char *why)
{
    if (sh->st == UPD_SH_BROKEN)
        return;
    sh->st = UPD_SH_BROKEN;
    NLOG_ERROR("upd", "table %u fragment %u: hot standby node %u needs records from LSN %llu "
               "and end marks after seq %llu, but the log starts at LSN %llu and the marks "
               "held start after seq %llu (%s): the standby needs a rebuild; nothing more is "
               "shipped to it", sh->table, sh->frag, sh->standby, (unsigned long long)(lsn + 1),
               (unsigned long long)seq, (unsigned long long)kern_log_first_lsn(kern_frag_log(sh->f)),
               (unsigned long long)sh->acked_seq, why);
}

/* Ship again from record lsn + 1 and the marks after seq. */
static void ship_rewind(struct upd *u, struct upd_ship *sh, uint64_t lsn, uint64_t seq,
                        const char *why)
{
    if (sh->st != UPD_SH_LIVE)
        return;
    if (lsn + 1 < kern_log_first_lsn(kern_frag_log(sh->f)) || seq < sh->acked_seq) {
        ship_broken(u, sh, lsn, seq, why);
        return;
    }
    if (lsn + 1 >= sh->next_lsn && seq >= sh->shipped_seq)
        return; /* nothing shipped beyond that */
    NLOG_INFO("upd", "table %u fragment %u: resending to node %u from LSN %llu (was at %llu) "
              "and the marks after seq %llu (%s)", sh->table, sh->frag, sh->standby,
              (unsigned long long)(lsn + 1), (unsigned long long)sh->next_lsn,
              (unsigned long long)seq, why);
    u->st.rewinds++;
    if (lsn + 1 < sh->next_lsn)
        sh->next_lsn = lsn + 1;
    if (seq < sh->shipped_seq)
        sh->shipped_seq = seq;
    sh->progress_us = rt_now_us(u->rt);
    upd_kick(u, sh);
}

/* Ship sh's pending records and marks; false when something stays held. */
static bool ship_one(struct upd *u, struct upd_ship *sh)
{
    const struct kern_log *log = kern_frag_log(sh->f);
    for (;;) {
        uint64_t end = kern_log_next_lsn(log);
        uint32_t mfirst = (uint32_t)(sh->shipped_seq - sh->acked_seq); /* first unshipped */
        if (sh->next_lsn >= end && mfirst >= sh->nmarks)
            return true;
        if (sh->standby == 0) {
            /* no hot standby: records stay in the log; nobody waits for marks */
            sh->next_lsn = end;
            sh->nmarks = 0;
            sh->shipped_seq = sh->acked_seq = sh->next_seq - 1;
            return true;
        }
        switch (sh->st) {
        case UPD_SH_LIVE:
            break;
        case UPD_SH_BROKEN:
            return true; /* held for a rebuild (later issue) */
        default:
            N_ASSERT(!"bad shipping state");
            return true;
        }
        if (sh->next_lsn < kern_log_first_lsn(log)) {
            ship_broken(u, sh, sh->next_lsn - 1, sh->shipped_seq, "records trimmed");
            return true;
        }
        struct net_endpoint *ep = rt_net(u->rt);
        if (!ep || !net_peer_reachable(ep, sh->standby))
            return false; /* kept for the standby; resent from its position when back */
        struct rt_msg *m = rt_msg_new(u->rt, NINES__MSG_TYPE__UPD_LOG_REQ);
        if (!m)
            return false;
        Nines__UpdLogReq *b = RT_BODY(m, Nines__UpdLogReq, nines__upd_log_req__init);
        uint64_t want = end - sh->next_lsn;
        /* one message carries at most UPD_MSG_BYTES of records: never more
         * slots than that many of the smallest records (a standby far
         * behind must not make each message allocate for the backlog) */
        if (want > UPD_MSG_MAX_RECS)
            want = UPD_MSG_MAX_RECS;
        ProtobufCBinaryData *recs = want ? rt_msg_alloc(m, want * sizeof *recs) : NULL;
        if (!b || (want && !recs)) {
            rt_msg_free(u->rt, m);
            return false;
        }
        b->table = sh->table;
        b->frag = sh->frag;
        b->pinc = sh->pinc;
        b->start_lsn = sh->start_lsn;
        b->start_seq = sh->start_seq;
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
                if (rc == NINES_ESTALE)
                    ship_broken(u, sh, sh->next_lsn - 1, sh->shipped_seq, "records trimmed");
                return rc == NINES_ESTALE;
            }
            recs[n].data = (uint8_t *)p; /* packed by rt_send before anything changes the log */
            recs[n].len = len;
            n++;
            bytes += len;
        }
        b->records = recs;
        b->n_records = n;
        /* the unshipped marks whose records have all left, in seq order */
        uint64_t last = sh->next_lsn + n - 1;
        uint32_t nm = 0;
        while (mfirst + nm < sh->nmarks && sh->marks[mfirst + nm].lsn <= last)
            nm++;
        Nines__TxnEndMark **mp = NULL;
        if (nm) {
            mp = rt_msg_alloc(m, nm * sizeof *mp);
            if (!mp) {
                rt_msg_free(u->rt, m);
                return false;
            }
            for (uint32_t i = 0; i < nm; i++)
                mp[i] = &sh->marks[mfirst + i];
            b->prepared = mp;
            b->n_prepared = nm;
        }
        if (n == 0 && nm == 0) {
            rt_msg_free(u->rt, m);
            return true; /* cannot happen: a mark's records precede it */
        }
        bool idle = !outstanding(sh);
        int rc = rt_send(u->rt, sh->standby, RT_SVC_UPD, m);
        if (rc) {
            u->st.send_failures++;
            NLOG_DEBUG("upd", "table %u fragment %u: %zu records for node %u held: %s",
                       sh->table, sh->frag, n, sh->standby, nines_strerror(rc));
            return false;
        }
        u->st.msgs_out++;
        u->st.recs_out += n;
        u->st.marks_out += nm;
        sh->next_lsn += n;
        sh->shipped_seq += nm;
        if (idle)
            sh->progress_us = rt_now_us(u->rt); /* the resend clock starts now */
    }
}

static void ship_all(struct upd *u, bool everything)
{
    bool arm = false;
    for (struct upd_ship *sh = u->ships; sh; sh = sh->next) {
        if (sh->dirty || everything) {
            sh->dirty = false;
            if (!ship_one(u, sh)) {
                sh->dirty = true;
                arm = true;
            }
        }
        arm |= sh->st == UPD_SH_LIVE && sh->standby && outstanding(sh);
    }
    if (arm)
        arm_retry(u);
}

/* Retry timer: ship what was held, and rewind entries whose standby made
 * no acknowledgement progress for UPD_RESEND_MS although something is
 * outstanding (a lost message, a reset connection, a lost resend request). */
static void retry_all(struct upd *u)
{
    uint64_t now = rt_now_us(u->rt);
    for (struct upd_ship *sh = u->ships; sh; sh = sh->next)
        if (sh->st == UPD_SH_LIVE && sh->standby && outstanding(sh) &&
            now - sh->progress_us >= UPD_RESEND_MS * 1000u)
            ship_rewind(u, sh, sh->acked_lsn, sh->acked_seq, "no acknowledgement progress");
    ship_all(u, false);
}

/* The connection to `node` is (again) up: whatever was shipped to it and
 * not acknowledged may have died with the old connection. */
static void peer_up(struct upd *u, uint32_t node, bool restarted)
{
    for (struct upd_ship *sh = u->ships; sh; sh = sh->next)
        if (sh->standby == node && sh->st == UPD_SH_LIVE) {
            if (outstanding(sh))
                ship_rewind(u, sh, sh->acked_lsn, sh->acked_seq,
                            restarted ? "the standby's node restarted" : "the standby reconnected");
            upd_kick(u, sh); /* held while it was unreachable */
        }
}

static void post_acked(struct upd *u, const struct upd_ship *sh)
{
    struct rt_msg *m = rt_msg_new(u->rt, UPD_MSG_ACKED);
    struct upd_acked *a = m ? rt_msg_alloc(m, sizeof *a) : NULL;
    if (!a) {
        if (m)
            rt_msg_free(u->rt, m);
        NLOG_ERROR("upd", "no memory to tell the kernel service that table %u fragment %u is "
                   "acknowledged up to LSN %llu (the next acknowledgement tells it)", sh->table,
                   sh->frag, (unsigned long long)sh->acked_lsn);
        return;
    }
    a->table = sh->table;
    a->frag = sh->frag;
    a->lsn = sh->acked_lsn;
    m->cookie = (uint64_t)(uintptr_t)a;
    rt_post_local(u->rt, RT_SVC_KERN, m);
}

void upd_on_log_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct upd *u = st;
    const Nines__UpdLogConf *b = (const Nines__UpdLogConf *)m->body;
    u->st.acks_in++;
    struct upd_ship *sh = u->ships;
    while (sh && (sh->table != b->table || sh->frag != b->frag))
        sh = sh->next;
    if (!sh) {
        NLOG_DEBUG("upd", "acknowledgement of table %u fragment %u, not a primary here: ignored",
                   b->table, b->frag);
        return;
    }
    if (m->from != sh->standby) {
        NLOG_DEBUG("upd", "acknowledgement of table %u fragment %u from node %llu, not its "
                   "standby %u: ignored", b->table, b->frag, (unsigned long long)m->from,
                   sh->standby);
        return;
    }
    if (b->pinc != sh->pinc) {
        u->st.acks_stale++;
        NLOG_DEBUG("upd", "acknowledgement of table %u fragment %u names primary incarnation "
                   "%llu, this one is %llu: ignored", b->table, b->frag,
                   (unsigned long long)b->pinc, (unsigned long long)sh->pinc);
        return;
    }
    uint64_t end = kern_log_next_lsn(kern_frag_log(sh->f));
    if (b->lsn >= end || b->mark_seq >= sh->next_seq) {
        NLOG_WARN("upd", "node %u acknowledges table %u fragment %u up to LSN %llu and mark "
                  "%llu, beyond what this primary wrote (LSN %llu, mark %llu): ignored",
                  sh->standby, b->table, b->frag, (unsigned long long)b->lsn,
                  (unsigned long long)b->mark_seq, (unsigned long long)(end - 1),
                  (unsigned long long)(sh->next_seq - 1));
        return;
    }
    bool lsn_up = b->lsn > sh->acked_lsn;
    if (lsn_up || b->mark_seq > sh->acked_seq) {
        sh->progress_us = rt_now_us(rt);
        if (b->mark_seq > sh->acked_seq) {
            uint32_t drop = (uint32_t)(b->mark_seq - sh->acked_seq);
            memmove(sh->marks, sh->marks + drop, (sh->nmarks - drop) * sizeof *sh->marks);
            sh->nmarks -= drop;
            sh->acked_seq = b->mark_seq;
        }
        if (lsn_up) {
            sh->acked_lsn = b->lsn;
            lag_acked(sh);
            /* the standby applied everything up to here: what no open
             * transaction's undo needs can go (README "Log truncation") */
            int64_t freed = kern_frag_log_trim(sh->f, sh->acked_lsn + 1);
            if (freed > 0)
                u->st.trimmed += (uint64_t)freed;
            post_acked(u, sh);
        }
        /* the standby holds it already: no need to ship it (again) */
        if (sh->next_lsn <= sh->acked_lsn)
            sh->next_lsn = sh->acked_lsn + 1;
        if (sh->shipped_seq < sh->acked_seq)
            sh->shipped_seq = sh->acked_seq;
    }
    if (b->resend)
        ship_rewind(u, sh, b->lsn, b->mark_seq, "the standby asked");
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
            retry_all(u);
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
    case RT_MSG_PEER_RESTARTED: /* a new process: its RT_MSG_PEER_UP follows */
        if (m->cookie && m->cookie <= NINES_MAX_NODES)
            peer_up(u, (uint32_t)m->cookie, true);
        break;
    case RT_MSG_PEER_UP:
        if (m->cookie && m->cookie <= NINES_MAX_NODES)
            peer_up(u, (uint32_t)m->cookie, false);
        break;
    case UPD_MSG_BARRIER: {
        struct rt_msg *d = rt_msg_new(rt, UPD_MSG_BARRIER_DONE);
        /* no memory for a 100-byte message: the takeover waiting for it
         * would never finish, so the node stops (fail-stop; peers take over) */
        N_ASSERT(d != NULL);
        d->cookie = m->cookie;
        rt_post_local(rt, RT_SVC_KERN, d);
        break;
    }
    case RT_MSG_PEER_DOWN:
        break; /* shipping holds while it is unreachable */
    case RT_MSG_CLIENT_CLOSED:
        break;
    default:
        NLOG_WARN("upd", "update channel ignores message type %u", m->type);
        break;
    }
}
