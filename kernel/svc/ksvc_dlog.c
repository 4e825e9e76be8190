/* Disk logging (README "Disk logging"): every record a replica's log
 * publishes is copied, in publication order, into the executor's buffer;
 * once per executor turn (or when the buffer passes KSVC_DLOG_KICK) the
 * buffer is handed to the I/O thread, which appends it to the node's
 * kern_dlog and flushes (one write, one fsync). At most one flush is in
 * flight; while it is, the I/O thread owns the kern_dlog and the buffer it
 * was handed, and the executor fills a second buffer. No executor thread
 * waits for the disk. A failed flush stops disk logging (service goes on)
 * and is retried every KSVC_DLOG_RETRY_MS; past the buffer bound the
 * records are dropped and the log has a gap (GAP). A gap is retried the
 * same way: each retry asks the I/O thread to write a gap marker at the
 * start of a new segment; once one is durable the log is written again
 * (RESUMED) with the stream offsets rebased past the marker, checkpoints
 * are asked for, and once every replica has one taken after the gap the
 * log is ON (README "Gap and resume").
 *
 * Commits that wait for the disk (README "Commits that wait for the
 * disk"): with the sync policy every prepare, with async a prepare that
 * wrote a PRIMARY ALONE fragment, holds its readiness (READY_IND,
 * KERN_OP_CONF.ready, PREPARE_CONF) in a FIFO of waiters until a completed
 * flush covers the records published up to the prepare; a flush that
 * fails, or a gap, refuses the waiters instead. Positions here are the
 * sink's running count of entry bytes taken (`acc`): a record taken is
 * durable once a flush handed over after it succeeded (`dacc`).
 *
 * Checkpoints (ksvc_ckpt.c) read these positions (`acc` is a record's
 * stream offset, at disk log position base + offset) and ask for segments
 * to be removed; the removal runs after a flush on the I/O thread (README
 * "Checkpoints"). */
#include "ksvc_int.h"

#include "kernel/kern_dlog.h"
#include "kernel/kern_log.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sk_buf {
    uint8_t *p;
    size_t len, cap;  /* encoded records back to back */
    size_t ent;       /* their size as disk log entries (len + header each) */
    uint64_t nrecs;
};

/* A prepare whose readiness waits for the disk: the messages it holds. */
#define SK_DW_HELD 4
struct sk_wait {
    struct sk_wait *next;
    uint64_t txn;
    uint64_t pos;             /* acc when it prepared: its records end at or before */
    uint64_t since_us;
    char why[112];            /* what made it wait (the policy, or the ALONE fragment) */
    unsigned n;
    struct rt_msg *m[SK_DW_HELD];
    net_addr to[SK_DW_HELD];
};

struct sk_dlog {
    struct ksvc *k;
    char dir[4096];
    bool sync;                /* policy sync: every prepare waits */
    struct kern_dlog_opts o;
    size_t buf_max;
    enum ksvc_dlog_state state;
    char reason[256];
    struct sk_buf stage;      /* executor: records since the last hand-over */
    struct sk_buf fly;        /* I/O thread while busy: the records it appends */
    bool busy;                /* a request is on the I/O thread */
    bool kick_armed, retry_armed;
    bool drop_kept;           /* at IO_DONE: discard what the kern_dlog kept */
    struct rt_io_req req;
    /* ---- owned by the I/O thread while busy, by the executor after ---- */
    struct kern_dlog *log;
    int io_rc;
    bool io_lost;             /* an append failed: records of fly are not in the log */
    char io_detail[256];
    uint64_t io_durable;
    size_t io_kept;           /* bytes the kern_dlog still buffers (a failed flush) */
    struct kern_dlog_stats io_st;
    uint64_t io_base;         /* the log's end when it was opened */
    bool io_inherited;        /* ... and it held entries of an earlier process then */
    uint64_t io_trim;         /* remove segments wholly below (0: none) */
    int io_trim_rc;
    uint64_t io_first, io_segments;
    bool io_probe;            /* in: GAP: write a gap marker (kern_dlog_mark_gap) first */
    uint64_t io_dropped;      /* ... the records the gap dropped (the marker's lsn) */
    /* ---- executor ---- */
    size_t kept;              /* io_kept as of the last IO_DONE */
    struct kern_dlog_stats st; /* io_st as of the last IO_DONE */
    uint64_t durable, records, submits, errors, dropped, quiet_errors;
    int last_rc;              /* STOPPED / GAP: the failure's error */
    /* positions in the sink's count of entry bytes taken */
    uint64_t acc;             /* taken so far */
    uint64_t fly_upto;        /* acc when the request in flight was handed over */
    uint64_t dacc;            /* durable: acc of the last successful flush's hand-over */
    /* prepares waiting for the disk, in pos order */
    struct sk_wait *wq_head, *wq_tail, *wq_free;
    uint64_t waits, released, wait_sum_us, wait_max_us, wrefused, nwait;
    bool hold_io;             /* ksvc_dlog_fault_hold: completions are kept */
    struct rt_io_req *held_io; /* ... this one */
    /* positions for checkpoints (README "Checkpoints"; acc is the stream offset) */
    bool open;                /* base known */
    bool inherited;           /* the log held entries of an earlier process when opened */
    uint64_t base;            /* position of stream offset 0 */
    uint64_t trim_want;       /* stream offset segments below may go (0: none) */
    uint64_t trim_sent;       /* trim_want as handed to the I/O thread last */
    uint64_t first, segments, trim_errors;
    /* gaps (README "Gap and resume") */
    uint64_t gen;             /* gap generation: +1 when a gap begins, +1 when it ends */
    uint64_t gaps, resumes, dropped_bytes, gap_records;
    uint64_t bases;           /* base markers staged (sk_dlog_base) */
    uint64_t gap_wall_us, resume_wall_us;
    uint64_t gap_pos;         /* position of the last gap marker */
    uint64_t gap_stream;      /* stream offset of the first record after it (0: no gap) */
    int gap_rc;               /* the failure that made the last gap */
    bool unrecov;             /* resumed, some replica has no checkpoint after the gap */
    uint32_t n_unrecov;       /* ... how many (as checkpoints last told) */
};

static uint64_t sk_dlog_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Records are written to disk as they come (ON, or RESUMED after a gap). */
static bool sk_dlog_writing(const struct sk_dlog *d)
{
    return d->state == KSVC_DLOG_ON || d->state == KSVC_DLOG_RESUMED;
}

const char *ksvc_dlog_state_name(enum ksvc_dlog_state s)
{
    switch (s) {
    case KSVC_DLOG_OFF: return "off";
    case KSVC_DLOG_OPENING: return "opening";
    case KSVC_DLOG_ON: return "on";
    case KSVC_DLOG_STOPPED: return "stopped";
    case KSVC_DLOG_GAP: return "stopped (gap)";
    case KSVC_DLOG_RESUMED: return "resumed, not yet recoverable";
    }
    return "?";
}

/* ---- the I/O thread ---- */

static int sk_dlog_io(void *arg)
{
    struct sk_dlog *d = arg;
    int rc = 0;
    d->io_lost = false;
    d->io_detail[0] = '\0';
    if (!d->log && (rc = kern_dlog_open(d->dir, &d->o, &d->log)) == 0) {
        d->io_base = kern_dlog_end(d->log); /* stream offset 0: what this process appends */
        d->io_inherited = d->io_base > kern_dlog_first(d->log);
    } else if (rc < 0 && d->fly.len)
        d->io_lost = true; /* not opened: the records handed over are not in the log */
    if (rc == 0 && d->io_probe) /* replaces the marker a failed probe left buffered */
        rc = kern_dlog_mark_gap(d->log, d->io_dropped, NULL);
    for (size_t off = 0; rc == 0 && off < d->fly.len;) {
        const uint8_t *p = d->fly.p + off;
        uint32_t len, table, frag;
        uint64_t lsn;
        memcpy(&len, p, 4);
        memcpy(&table, p + 12, 4);
        memcpy(&frag, p + 16, 4);
        memcpy(&lsn, p + 32, 8);
        if (p[8] == 0) /* a base marker staged by sk_dlog_base (version byte 0) */
            rc = kern_dlog_append_ckpt(d->log, table, frag, lsn, NULL);
        else
            rc = kern_dlog_append(d->log, table, frag, lsn, p, len, NULL);
        if (rc < 0)
            d->io_lost = true;
        off += len;
    }
    if (rc == 0 && d->log)
        rc = kern_dlog_flush(d->log);
    if (rc < 0)
        snprintf(d->io_detail, sizeof d->io_detail, "%s", nines_errdetail());
    d->io_trim_rc = 0;
    if (rc == 0 && d->log && d->io_trim > kern_dlog_first(d->log)) {
        int n = kern_dlog_trim(d->log, d->io_trim); /* what checkpoints made unnecessary */
        if (n < 0) {
            d->io_trim_rc = n;
            NLOG_WARN("kern", "disk log segments below position %llu not removed: %s",
                      (unsigned long long)d->io_trim, nines_errdetail());
        }
    }
    if (d->log) {
        d->io_durable = kern_dlog_durable(d->log);
        d->io_kept = kern_dlog_buffered(d->log);
        d->io_first = kern_dlog_first(d->log);
        d->io_segments = kern_dlog_segments(d->log);
        kern_dlog_get_stats(d->log, &d->io_st);
    }
    return rc;
}

/* ---- the executor ---- */

static void sk_dlog_submit(struct sk_dlog *d)
{
    if (d->busy)
        return;
    struct sk_buf t = d->fly; /* empty: its memory is reused */
    d->fly = d->stage;
    d->stage = t;
    d->stage.len = d->stage.ent = 0;
    d->stage.nrecs = 0;
    /* a removal point below the last gap's end is a pin of before the gap:
     * base no longer maps it (README "Gap and resume": positions) */
    bool trim = d->open && d->trim_want && d->trim_want >= d->gap_stream &&
                d->state != KSVC_DLOG_GAP;
    d->io_trim = trim ? d->base + d->trim_want : 0;
    if (d->open) /* sent, or obsolete (a pin of before a gap): not asked for again */
        d->trim_sent = d->trim_want;
    d->io_probe = d->state == KSVC_DLOG_GAP; /* every request in a gap writes the marker */
    d->io_dropped = d->gap_records;
    d->req = (struct rt_io_req){.fn = sk_dlog_io, .arg = d, .svc = RT_SVC_KERN};
    d->fly_upto = d->acc; /* every record taken so far is in fly or kept by the log */
    d->busy = true;
    d->submits++;
    int rc = rt_io_submit(d->k->rt, &d->req);
    if (rc < 0) { /* cannot happen while the runtime runs; keep the records */
        d->busy = false;
        t = d->stage;
        d->stage = d->fly;
        d->fly = t;
        NLOG_WARN("kern", "disk log flush not handed to the I/O thread: %s",
                  nines_strerror(rc));
    }
}

static void sk_dlog_arm_kick(struct sk_dlog *d)
{
    if (d->kick_armed || d->busy)
        return;
    /* a timer fires in the next loop turn: the records of this whole turn
     * go in one flush */
    if (rt_timer_add(d->k->rt, RT_SVC_KERN, 0, SK_TIMER_DLOG) > 0)
        d->kick_armed = true;
}

static void sk_dlog_arm_retry(struct sk_dlog *d)
{
    if (d->retry_armed)
        return;
    if (rt_timer_add(d->k->rt, RT_SVC_KERN, KSVC_DLOG_RETRY_MS * 1000u, SK_TIMER_DLOG_RETRY) > 0)
        d->retry_armed = true;
}

/* ---- prepares waiting for the disk ---- */

static void sk_msg_drop(struct ksvc *k, struct rt_msg *m) { rt_msg_free(k->rt, m); }

/* The refusal that stands for a held readiness message of txn: KERN_OP_REF
 * for KERN_OP_CONF, PREPARE_REF for PREPARE_CONF; a READY_IND is dropped. */
static void sk_refuse_msg(struct ksvc *k, uint64_t txn, struct rt_msg *m, net_addr to, int rc,
                          const char *detail)
{
    uint32_t type = m->type;
    uint32_t seq = 0, nres = 0;
    if (type == NINES__MSG_TYPE__KERN_OP_CONF && m->body) {
        const Nines__KernOpConf *c = (const Nines__KernOpConf *)m->body;
        seq = c->seq;
        nres = (uint32_t)c->n_results;
    }
    sk_msg_drop(k, m);
    struct rt_msg *r = NULL;
    size_t dl = strlen(detail);
    switch (type) {
    case NINES__MSG_TYPE__KERN_OP_CONF: {
        r = rt_msg_new(k->rt, NINES__MSG_TYPE__KERN_OP_REF);
        Nines__KernOpRef *b = r ? RT_BODY(r, Nines__KernOpRef, nines__kern_op_ref__init) : NULL;
        char *dd = b ? rt_msg_alloc(r, dl + 1) : NULL;
        if (!dd)
            break;
        memcpy(dd, detail, dl + 1);
        b->txn = txn;
        b->seq = seq;
        b->error = rc;
        b->detail = dd;
        b->failed_op = nres;
        (void)rt_send(k->rt, to, RT_SVC_TXC, r); /* lost: the controller times out */
        return;
    }
    case NINES__MSG_TYPE__PREPARE_CONF: {
        r = rt_msg_new(k->rt, NINES__MSG_TYPE__PREPARE_REF);
        Nines__PrepareRef *b = r ? RT_BODY(r, Nines__PrepareRef, nines__prepare_ref__init) : NULL;
        char *dd = b ? rt_msg_alloc(r, dl + 1) : NULL;
        if (!dd)
            break;
        memcpy(dd, detail, dl + 1);
        b->txn = txn;
        b->node = k->self;
        b->error = rc;
        b->detail = dd;
        (void)rt_send(k->rt, to, RT_SVC_TXC, r);
        return;
    }
    case NINES__MSG_TYPE__READY_IND:
        return; /* never ready: the hsc cannot record COMMIT */
    default:
        NLOG_ERROR("kern", "txn %llu: a held message of type %u dropped",
                   (unsigned long long)txn, type);
        return;
    }
    if (r)
        rt_msg_free(k->rt, r);
    NLOG_ERROR("kern", "no memory to refuse txn %llu (%s)", (unsigned long long)txn, detail);
}

static void sk_wait_recycle(struct sk_dlog *d, struct sk_wait *w)
{
    w->n = 0;
    w->next = d->wq_free;
    d->wq_free = w;
    d->nwait--;
}

/* The fsync covers w's records: its held messages go out, unless its
 * transaction ended meanwhile (then they never do). */
static void sk_wait_release(struct sk_dlog *d, struct sk_wait *w)
{
    struct ksvc *k = d->k;
    struct sk_txn *t = sk_txn_get(k, w->txn);
    bool live = t && t->st == SK_TX_PREPARED && t->dw == SK_DW_WAITING;
    if (t && t->dw == SK_DW_WAITING)
        t->dw = SK_DW_NONE;
    if (live) {
        uint64_t us = rt_now_us(k->rt) - w->since_us;
        d->released++;
        d->wait_sum_us += us;
        if (us > d->wait_max_us)
            d->wait_max_us = us;
    }
    for (unsigned i = 0; i < w->n; i++) {
        if (live)
            (void)rt_send(k->rt, w->to[i], RT_SVC_TXC, w->m[i]);
        else
            sk_msg_drop(k, w->m[i]);
    }
    sk_wait_recycle(d, w);
}

/* The disk log failed (or dropped records) while w waited: its
 * transaction is refused, never ready here. True when it was still
 * waiting (not ended meanwhile). */
static bool sk_wait_refuse(struct sk_dlog *d, struct sk_wait *w, int rc, const char *cause)
{
    struct ksvc *k = d->k;
    struct sk_txn *t = sk_txn_get(k, w->txn);
    bool live = t && t->st == SK_TX_PREPARED && t->dw == SK_DW_WAITING;
    if (t && t->dw == SK_DW_WAITING)
        t->dw = SK_DW_NONE;
    char detail[512];
    snprintf(detail, sizeof detail, "not committed: txn %llu waited at node %u for the local "
             "fsync of its records (%s) and the disk log failed: %.250s; it was never ready "
             "here", (unsigned long long)w->txn, k->self, w->why, cause);
    if (live) {
        t->dw = SK_DW_REFUSED;
        t->dw_rc = rc;
        d->wrefused++;
        NLOG_DEBUG("kern", "%s", detail);
    }
    for (unsigned i = 0; i < w->n; i++) {
        if (live)
            sk_refuse_msg(k, w->txn, w->m[i], w->to[i], rc, detail);
        else
            sk_msg_drop(k, w->m[i]);
    }
    sk_wait_recycle(d, w);
    return live;
}

/* A flush succeeded: every waiter its hand-over covered is ready. */
static void sk_waits_release(struct sk_dlog *d)
{
    while (d->wq_head && d->wq_head->pos <= d->dacc) {
        struct sk_wait *w = d->wq_head;
        d->wq_head = w->next;
        if (!d->wq_head)
            d->wq_tail = NULL;
        sk_wait_release(d, w);
    }
}

/* Refuse every waiter whose records lie after `above` (pos order: a tail
 * of the queue). */
static void sk_waits_refuse(struct sk_dlog *d, uint64_t above, int rc, const char *cause)
{
    struct sk_wait **pp = &d->wq_head, *last = NULL;
    while (*pp && (*pp)->pos <= above) {
        last = *pp;
        pp = &(*pp)->next;
    }
    struct sk_wait *w = *pp;
    *pp = NULL;
    d->wq_tail = last;
    uint64_t n = 0;
    while (w) {
        struct sk_wait *nx = w->next;
        n += sk_wait_refuse(d, w, rc, cause);
        w = nx;
    }
    if (n) /* one line for all: a failed flush may catch many */
        NLOG_WARN("kern", "%llu prepared transactions waiting at node %u for the local fsync of "
                  "their records are refused (not committed, never ready here): the disk log "
                  "failed: %s", (unsigned long long)n, d->k->self, cause);
}

static struct sk_wait *sk_wait_find(const struct sk_dlog *d, uint64_t txn)
{
    if (d->wq_tail && d->wq_tail->txn == txn)
        return d->wq_tail; /* the prepare just registered (the common case) */
    for (struct sk_wait *w = d->wq_head; w; w = w->next)
        if (w->txn == txn)
            return w;
    return NULL;
}

bool sk_dlog_sole_ok(const struct ksvc *k, char *why, size_t n)
{
    const struct sk_dlog *d = k->dl;
    if (!d) {
        snprintf(why, n, "node %u has no disk log (disk_log off, or no data folder)", k->self);
        return false;
    }
    switch (d->state) {
    case KSVC_DLOG_OPENING:
    case KSVC_DLOG_ON:
    case KSVC_DLOG_RESUMED:
        return true;
    case KSVC_DLOG_STOPPED:
    case KSVC_DLOG_GAP:
        snprintf(why, n, "node %u's disk log is %s (%.150s)", k->self,
                 ksvc_dlog_state_name(d->state), d->reason);
        return false;
    case KSVC_DLOG_OFF:
        snprintf(why, n, "node %u's disk log is off", k->self);
        return false;
    default:
        snprintf(why, n, "node %u's disk log is in bad state %d", k->self, (int)d->state);
        return false;
    }
}

int sk_dlog_prepare(struct ksvc *k, struct sk_txn *t)
{
    struct sk_dlog *d = k->dl;
    t->dw = SK_DW_NONE;
    t->dw_rc = 0;
    if (!d)
        return 0; /* no disk log: nothing waits (ALONE without a copy was refused) */
    const struct sk_rep *alone = NULL;
    bool wrote = false, nocopy = false;
    for (uint32_t i = 0; i < t->ntouch; i++) {
        if (t->touch[i].nrecords == 0)
            continue;
        const struct sk_rep *r = sk_rep_get(k, t->touch[i].table, t->touch[i].frag);
        if (!r)
            continue;
        wrote = true;
        if (r->ro.state == DICT_FRAG_ALONE && (!alone || (!nocopy && r->ro.logcopy == 0))) {
            alone = r;
            nocopy = r->ro.logcopy == 0;
        }
    }
    if (!wrote || (!d->sync && !alone))
        return 0; /* asynchronous: off the commit path */
    char why[112];
    if (d->sync)
        snprintf(why, sizeof why, "disk_log sync");
    else
        snprintf(why, sizeof why, "table %.40s fragment %u is primary-alone%s", alone->tname,
                 alone->frag, nocopy ? " without a log copy" : "");
    switch (d->state) {
    case KSVC_DLOG_OPENING:
    case KSVC_DLOG_ON:
    case KSVC_DLOG_RESUMED:
        if (t->dl_gen == d->gen)
            break;
        /* it began before a gap ended: records it published may have been
         * dropped, no fsync can make them durable */
        if (!d->sync && !nocopy)
            return 0; /* ALONE with a log copy: 2-safe in memory */
        d->wrefused++;
        return nines_err(nocopy ? NINES_EUNREACHABLE : (d->gap_rc ? d->gap_rc : NINES_EIO),
                         "not committed: txn %llu at node %u needs the local fsync of its "
                         "records (%s), and it began before the disk log's gap at position "
                         "%llu ended (gap generation %llu, now %llu): some of its records "
                         "may have been dropped", (unsigned long long)t->txn, k->self, why,
                         (unsigned long long)d->gap_pos, (unsigned long long)t->dl_gen,
                         (unsigned long long)d->gen);
    case KSVC_DLOG_STOPPED:
    case KSVC_DLOG_GAP:
    case KSVC_DLOG_OFF:
        if (!d->sync && !nocopy)
            return 0; /* ALONE with a log copy: 2-safe in memory while the disk is out */
        d->wrefused++;
        return nines_err(nocopy ? NINES_EUNREACHABLE : (d->last_rc ? d->last_rc : NINES_EIO),
                         "not committed: txn %llu at node %u needs the local fsync of its "
                         "records (%s) and the disk log is %s (%.200s)",
                         (unsigned long long)t->txn, k->self, why,
                         ksvc_dlog_state_name(d->state), d->reason);
    default:
        return nines_err(NINES_ESTATE, "disk log of node %u in bad state %d", k->self,
                         (int)d->state);
    }
    if (d->acc <= d->dacc)
        return 0; /* its records are durable already */
    if (d->sync && k->gcp_on && !alone)
        return 0; /* sync with commit epochs: the client's answer waits until the
                   * transaction's epoch is restorable, which needs every member's
                   * disk log durable past all of its records (GCP_SAVE): a fsync of
                   * its own here would only add its time. A stopped disk log still
                   * refuses it above. */
    struct sk_wait *w = d->wq_free;
    if (w)
        d->wq_free = w->next;
    else if (!(w = calloc(1, sizeof *w)))
        return nines_err(NINES_ENOMEM, "no memory to hold txn %llu for the disk log",
                         (unsigned long long)t->txn);
    w->next = NULL;
    w->txn = t->txn;
    w->pos = d->acc;
    w->since_us = rt_now_us(k->rt);
    w->n = 0;
    snprintf(w->why, sizeof w->why, "%s", why);
    if (d->wq_tail)
        d->wq_tail->next = w;
    else
        d->wq_head = w;
    d->wq_tail = w;
    d->nwait++;
    d->waits++;
    t->dw = SK_DW_WAITING;
    return 0;
}

bool sk_dlog_hold(struct ksvc *k, const struct sk_txn *t, struct rt_msg *m, net_addr to)
{
    struct sk_dlog *d = k->dl;
    switch (t->dw) {
    case SK_DW_NONE:
        return false;
    case SK_DW_WAITING: {
        struct sk_wait *w = d ? sk_wait_find(d, t->txn) : NULL;
        if (!w) {
            NLOG_ERROR("kern", "txn %llu waits for the disk log but is not queued: sent",
                       (unsigned long long)t->txn);
            return false;
        }
        if (w->n == SK_DW_HELD) { /* a repeated request's answer: asked again later */
            sk_msg_drop(k, m);
            return true;
        }
        w->m[w->n] = m;
        w->to[w->n] = to;
        w->n++;
        return true;
    }
    case SK_DW_REFUSED: {
        char detail[400];
        (void)sk_dlog_refused(k, t);
        snprintf(detail, sizeof detail, "%s", nines_errdetail());
        sk_refuse_msg(k, t->txn, m, to, t->dw_rc, detail);
        return true;
    }
    default:
        NLOG_ERROR("kern", "txn %llu in bad disk-wait state %d: message dropped",
                   (unsigned long long)t->txn, (int)t->dw);
        sk_msg_drop(k, m);
        return true;
    }
}

int sk_dlog_refused(const struct ksvc *k, const struct sk_txn *t)
{
    if (t->dw != SK_DW_REFUSED)
        return 0;
    const struct sk_dlog *d = k->dl;
    return nines_err(t->dw_rc, "not committed: txn %llu was refused at node %u: the disk log "
                     "failed while its readiness waited for the local fsync (%.200s); it was "
                     "never ready here", (unsigned long long)t->txn, k->self,
                     d ? d->reason : "");
}

/* Records were (or are about to be) dropped: the log has a gap. */
static void sk_dlog_gap(struct sk_dlog *d, int rc, const char *why)
{
    if (d->state != KSVC_DLOG_GAP) {
        d->gaps++;
        d->gen++;
        d->gap_records = 0;
        d->gap_wall_us = sk_dlog_wall_us();
        d->gap_rc = rc;
    }
    d->dropped += d->stage.nrecs;
    d->gap_records += d->stage.nrecs;
    d->dropped_bytes += d->stage.ent + (d->busy ? 0 : d->kept);
    d->stage.len = d->stage.ent = 0;
    d->stage.nrecs = 0;
    if (d->busy)
        d->drop_kept = true; /* the kern_dlog's buffer goes at IO_DONE */
    else if (d->log && d->kept) {
        kern_dlog_discard(d->log);
        d->kept = 0;
    }
    if (d->state != KSVC_DLOG_GAP)
        NLOG_ERROR("kern", "disk log of %s has a gap after position %llu: %s; records are no "
                   "longer written to disk (service goes on; retried every %u ms, it resumes "
                   "after a gap marker when the disk takes writes again)",
                   d->dir, (unsigned long long)d->durable, why, KSVC_DLOG_RETRY_MS);
    snprintf(d->reason, sizeof d->reason, "gap after position %llu: %.200s",
             (unsigned long long)d->durable, why);
    if (d->state != KSVC_DLOG_GAP)
        d->last_rc = rc;
    d->state = KSVC_DLOG_GAP;
    /* waiters whose records were in the dropped buffer: refused; those
     * covered by the flush in flight learn its outcome at IO_DONE */
    sk_waits_refuse(d, d->busy ? d->fly_upto : d->dacc, d->last_rc, d->reason);
    if (!d->busy)
        sk_dlog_arm_retry(d); /* else the completion arms it */
}

/* Stage `len` bytes at `rec` that become one disk log entry of `ent` bytes. */
static void sk_dlog_stage(struct sk_dlog *d, const uint8_t *rec, size_t len, size_t ent);

static void sk_dlog_sink(void *ctx, const uint8_t *rec, size_t len)
{
    struct sk_dlog *d = ctx;
    d->records++;
    sk_dlog_stage(d, rec, len, KERN_DLOG_ENT_HDR + len);
}

void sk_dlog_base(struct ksvc *k, uint32_t table, uint32_t frag, uint64_t lsn)
{
    if (!k->dl || k->dl->state == KSVC_DLOG_OFF)
        return;
    /* staged like a record but with version byte 0: the I/O thread appends
     * a kind-2 marker (no payload) for it */
    uint8_t m[KERN_LOG_HDR];
    memset(m, 0, sizeof m);
    uint32_t len = KERN_LOG_HDR;
    memcpy(m, &len, 4);
    memcpy(m + 12, &table, 4);
    memcpy(m + 16, &frag, 4);
    memcpy(m + 32, &lsn, 8);
    k->dl->bases++;
    sk_dlog_stage(k->dl, m, sizeof m, KERN_DLOG_ENT_HDR);
}

static void sk_dlog_stage(struct sk_dlog *d, const uint8_t *rec, size_t len, size_t ent)
{
    switch (d->state) {
    case KSVC_DLOG_OFF:
        return;
    case KSVC_DLOG_GAP:
        d->dropped++;
        d->gap_records++;
        d->dropped_bytes += ent;
        return;
    default:
        break;
    }
    if (d->kept + d->fly.ent + d->stage.ent + ent > d->buf_max) {
        char why[256];
        snprintf(why, sizeof why, "%zu bytes waited for the disk, the limit is %zu (%.100s)",
                 d->kept + d->fly.ent + d->stage.ent, d->buf_max,
                 d->state == KSVC_DLOG_STOPPED ? d->reason : "the disk is not keeping up");
        sk_dlog_gap(d, d->state == KSVC_DLOG_STOPPED && d->last_rc ? d->last_rc : NINES_EFULL,
                    why);
        d->dropped++;
        d->gap_records++;
        d->dropped_bytes += ent;
        return;
    }
    if (d->stage.len + len > d->stage.cap) {
        size_t nc = d->stage.cap ? d->stage.cap : 256u * 1024u;
        while (nc < d->stage.len + len)
            nc *= 2;
        uint8_t *np = realloc(d->stage.p, nc);
        if (!np) {
            sk_dlog_gap(d, NINES_ENOMEM, "no memory to buffer records for the disk");
            d->dropped++;
            d->gap_records++;
            d->dropped_bytes += ent;
            return;
        }
        d->stage.p = np, d->stage.cap = nc;
    }
    memcpy(d->stage.p + d->stage.len, rec, len);
    d->stage.len += len;
    d->stage.ent += ent;
    d->stage.nrecs++;
    d->acc += ent;
    if (!sk_dlog_writing(d))
        return; /* opening: the open's completion hands it over; stopped: the retry */
    if (d->stage.ent >= KSVC_DLOG_KICK)
        sk_dlog_submit(d);
    else
        sk_dlog_arm_kick(d);
}

const char *sk_dlog_dir(const struct ksvc *k, struct kern_dlog_opts *o)
{
    if (!k->dl || k->dl->state == KSVC_DLOG_OFF)
        return NULL;
    *o = k->dl->o;
    return k->dl->dir;
}

void sk_dlog_attach(struct ksvc *k, struct sk_rep *r)
{
    if (k->dl && k->dl->state != KSVC_DLOG_OFF)
        kern_log_set_sink(kern_frag_log(r->f), sk_dlog_sink, k->dl);
}

int sk_dlog_init(struct ksvc *k, const struct ksvc_config *cfg)
{
    if (!cfg->dlog_dir || !cfg->dlog_dir[0])
        return 0;
    struct sk_dlog *d = calloc(1, sizeof *d);
    if (!d)
        return nines_err(NINES_ENOMEM, "no memory for disk logging");
    if (strlen(cfg->dlog_dir) >= sizeof d->dir) {
        free(d);
        return nines_err(NINES_EINVAL, "disk log folder path of %zu bytes is too long",
                         strlen(cfg->dlog_dir));
    }
    d->k = k;
    snprintf(d->dir, sizeof d->dir, "%s", cfg->dlog_dir);
    d->buf_max = cfg->dlog_buf_max ? cfg->dlog_buf_max : KSVC_DLOG_BUF_MAX;
    d->o = (struct kern_dlog_opts){.node = k->self, .cluster = cfg->dlog_cluster,
                                   .buf_max = d->buf_max, .seg_bytes = cfg->dlog_seg_bytes};
    d->sync = cfg->dlog_sync;
    d->state = KSVC_DLOG_OPENING;
    k->dl = d;
    return 0;
}

void sk_dlog_start(struct ksvc *k)
{
    struct sk_dlog *d = k->dl;
    if (d && d->state == KSVC_DLOG_OPENING && !d->log && !d->busy)
        sk_dlog_submit(d); /* the open, and whatever was published before START */
}

void sk_dlog_on_timer(struct ksvc *k, uint64_t cookie)
{
    struct sk_dlog *d = k->dl;
    if (!d)
        return;
    if (cookie == SK_TIMER_DLOG) {
        d->kick_armed = false;
        if (sk_dlog_writing(d) && d->stage.len && !d->busy)
            sk_dlog_submit(d);
        return;
    }
    d->retry_armed = false; /* SK_TIMER_DLOG_RETRY */
    if ((d->state == KSVC_DLOG_STOPPED || d->state == KSVC_DLOG_GAP) && !d->busy)
        sk_dlog_submit(d); /* a gap: the probe (a gap marker) */
}

static void sk_dlog_resumed_reason(struct sk_dlog *d)
{
    snprintf(d->reason, sizeof d->reason, "resumed at position %llu after a gap (%llu records "
             "dropped); %u replicas without a checkpoint taken after it yet", 
             (unsigned long long)d->gap_pos, (unsigned long long)d->gap_records, d->n_unrecov);
}

/* A gap marker is durable (README "Gap and resume"): records are written
 * again after it. Stream offsets go on from acc; base is rebased so that
 * base + acc is the marker's end (positions of offsets below gap_stream
 * mean nothing any more). Checkpoints are asked for: until every replica
 * has one after the gap the log is RESUMED. */
static void sk_dlog_resume(struct sk_dlog *d)
{
    d->gap_pos = d->durable - KERN_DLOG_ENT_HDR; /* the marker opens the segment */
    d->gap_stream = d->acc;                      /* nothing taken since the gap began */
    d->base = d->durable - d->acc;               /* modulo 2^64: acc counts dropped bytes */
    d->dacc = d->acc;
    d->resumes++;
    d->gen++;
    d->resume_wall_us = sk_dlog_wall_us();
    d->last_rc = 0;
    uint64_t secs = (d->resume_wall_us - d->gap_wall_us) / 1000000u;
    if (!d->k->ck) { /* no checkpoints: nothing recovers from this log, before or after */
        d->state = KSVC_DLOG_ON;
        d->unrecov = false;
        d->reason[0] = '\0';
        NLOG_WARN("kern", "disk log of %s resumed at position %llu after a gap of %llu s "
                  "(%llu records dropped, %llu failed retries)", d->dir,
                  (unsigned long long)d->gap_pos, (unsigned long long)secs,
                  (unsigned long long)d->gap_records, (unsigned long long)d->quiet_errors);
        return;
    }
    d->state = KSVC_DLOG_RESUMED;
    d->unrecov = true;
    d->n_unrecov = 0;
    SK_MAP_FOREACH(&d->k->reps, i, nd, nx)
    d->n_unrecov++;
    sk_dlog_resumed_reason(d);
    NLOG_WARN("kern", "disk log of %s resumed at position %llu (a gap marker, new segment) "
              "after a gap of %llu s (%llu records dropped, %llu failed retries); not yet "
              "recoverable: a checkpoint of every replica after the gap is asked for",
              d->dir, (unsigned long long)d->gap_pos, (unsigned long long)secs,
              (unsigned long long)d->gap_records, (unsigned long long)d->quiet_errors);
    d->quiet_errors = 0;
    sk_ck_dlog_resumed(d->k);
}

void sk_dlog_recoverable(struct ksvc *k, uint32_t n)
{
    struct sk_dlog *d = k->dl;
    if (!d || !d->unrecov)
        return;
    d->n_unrecov = n;
    if (n) {
        if (d->state == KSVC_DLOG_RESUMED)
            sk_dlog_resumed_reason(d);
        return;
    }
    d->unrecov = false;
    NLOG_INFO("kern", "disk log of %s recoverable again: every replica has a checkpoint taken "
              "after the gap at position %llu", d->dir, (unsigned long long)d->gap_pos);
    if (d->state == KSVC_DLOG_RESUMED) {
        d->state = KSVC_DLOG_ON;
        d->reason[0] = '\0';
    }
}

uint64_t sk_dlog_gen(const struct ksvc *k) { return k->dl ? k->dl->gen : 0; }

int sk_dlog_save_pos(struct ksvc *k, uint64_t *taken, uint64_t *durable, uint64_t *pos,
                     uint64_t *gen)
{
    struct sk_dlog *d = k->dl;
    if (!d)
        return nines_err(NINES_ESTATE, "node %u has no disk log", k->self);
    *taken = d->acc;
    *durable = d->dacc;
    *pos = d->open ? d->base + d->dacc : 0;
    *gen = d->gen;
    switch (d->state) {
    case KSVC_DLOG_OPENING: /* the open's completion makes what came meanwhile durable */
    case KSVC_DLOG_ON:
        if (d->acc > d->dacc && !d->busy)
            sk_dlog_arm_kick(d); /* a flush now, not at the next record */
        return 0;
    case KSVC_DLOG_RESUMED:
        return nines_err(NINES_ESTATE, "node %u's disk log resumed after a gap and %u "
                         "replicas have no checkpoint taken after it yet: not recoverable from "
                         "this disk (%.200s)", k->self, d->n_unrecov, d->reason);
    case KSVC_DLOG_GAP:
        return nines_err(NINES_ESTATE, "node %u's disk log has a gap (%.200s)", k->self,
                         d->reason);
    case KSVC_DLOG_STOPPED:
        return nines_err(d->last_rc == NINES_EFULL ? NINES_EFULL : NINES_EIO,
                         "node %u's disk log is stopped (%.200s)", k->self, d->reason);
    case KSVC_DLOG_OFF:
        return nines_err(NINES_ESTATE, "node %u's disk log is off", k->self);
    default:
        return nines_err(NINES_ESTATE, "node %u's disk log is in bad state %d", k->self,
                         (int)d->state);
    }
}

/* A flush (or the open) finished: take the log's position and counters;
 * release the waiters it made durable, or refuse them if it failed. */
static void sk_dlog_io_done(struct sk_dlog *d, struct rt_io_req *req)
{
    d->busy = false;
    d->fly.len = d->fly.ent = 0;
    d->fly.nrecs = 0;
    d->durable = d->io_durable;
    d->kept = d->io_kept;
    d->st = d->io_st;
    if (d->log && !d->open) {
        d->open = true;
        d->base = d->io_base;
        d->inherited = d->io_inherited;
    }
    d->first = d->io_first;
    d->segments = d->io_segments;
    if (d->io_trim_rc < 0)
        d->trim_errors++;
    if (d->drop_kept) { /* a gap was declared meanwhile */
        d->drop_kept = false;
        d->dropped_bytes += d->kept;
        if (d->log && d->kept)
            kern_dlog_discard(d->log);
        d->kept = 0;
    }
    int rc = req->result;
    if (rc < 0) {
        d->errors++;
    } else {
        d->dacc = d->fly_upto; /* everything taken before the hand-over is on disk */
        sk_waits_release(d);
    }
    if (d->state == KSVC_DLOG_GAP) {
        if (rc == 0 && d->io_probe) {
            sk_dlog_resume(d);
            return;
        }
        if (rc < 0) { /* what the flush in flight was to make durable is not */
            sk_waits_refuse(d, d->dacc, rc, d->io_detail);
            if (d->io_probe)
                d->quiet_errors++;
        }
        if (d->io_probe) /* still failing: kept in the reason */
            snprintf(d->reason, sizeof d->reason, "gap after position %llu, %llu records "
                     "dropped; retrying: %s: %.150s", (unsigned long long)d->durable,
                     (unsigned long long)d->gap_records, nines_strerror(rc), d->io_detail);
        sk_dlog_arm_retry(d);
        return;
    }
    if (rc < 0 && d->io_lost) {
        sk_dlog_gap(d, rc, d->io_detail);
        return;
    }
    if (rc < 0) {
        if (d->state != KSVC_DLOG_STOPPED) {
            NLOG_ERROR("kern", "disk log stopped: %s (%s); service goes on, buffering up to "
                       "%zu bytes and retrying every %u ms", d->io_detail, nines_strerror(rc),
                       d->buf_max, KSVC_DLOG_RETRY_MS);
            d->quiet_errors = 0;
        } else {
            d->quiet_errors++;
        }
        snprintf(d->reason, sizeof d->reason, "%s: %.200s", nines_strerror(rc), d->io_detail);
        d->state = KSVC_DLOG_STOPPED;
        d->last_rc = rc;
        sk_waits_refuse(d, d->dacc, rc, d->reason); /* never acknowledged as durable */
        sk_dlog_arm_retry(d);
        return;
    }
    if (d->state == KSVC_DLOG_STOPPED)
        NLOG_INFO("kern", "disk log resumed at position %llu after %llu more failed retries",
                  (unsigned long long)d->durable, (unsigned long long)d->quiet_errors);
    else if (d->state == KSVC_DLOG_OPENING)
        NLOG_INFO("kern", "disk log on in %s at position %llu (policy %s)", d->dir,
                  (unsigned long long)d->durable, d->sync ? "sync" : "async");
    d->last_rc = 0;
    if (d->unrecov) { /* stopped again before every replica had a checkpoint after a gap */
        d->state = KSVC_DLOG_RESUMED;
        sk_dlog_resumed_reason(d);
    } else if (d->state != KSVC_DLOG_RESUMED) {
        d->state = KSVC_DLOG_ON;
        d->reason[0] = '\0';
    }
    if (d->stage.len || d->trim_want > d->trim_sent)
        sk_dlog_submit(d); /* what came meanwhile, or a removal asked for: the next flush
                            * (waiters behind it) */
}

bool sk_dlog_on_io_done(struct ksvc *k, struct rt_io_req *req)
{
    struct sk_dlog *d = k->dl;
    if (!d || req != &d->req)
        return false;
    if (d->hold_io) { /* ksvc_dlog_fault_hold: as if the flush had not finished */
        d->held_io = req;
        return true;
    }
    sk_dlog_io_done(d, req);
    sk_gcp_dlog_done(k); /* GCP_SAVE_REQ waiting for this flush (ksvc_gcp.c) */
    return true;
}

int ksvc_dlog_fault_hold(struct ksvc *k, bool hold)
{
#ifdef NINES_FAULTS
    struct sk_dlog *d = k ? k->dl : NULL;
    if (!d)
        return nines_err(NINES_ESTATE, "no disk log to hold");
    d->hold_io = hold;
    if (hold)
        return d->held_io ? 1 : 0;
    if (!d->held_io)
        return 0;
    struct rt_io_req *req = d->held_io;
    d->held_io = NULL;
    sk_dlog_io_done(d, req);
    sk_gcp_dlog_done(k);
    return 1;
#else
    (void)k;
    (void)hold;
    return nines_err(NINES_ESTATE, "fault injection is not compiled in (FAULTS=0)");
#endif
}

int ksvc_set_gcp_on(struct ksvc *k, bool on)
{
    if (!k)
        return nines_err(NINES_EINVAL, "no kernel service");
    k->gcp_on = on;
    return 0;
}

int ksvc_dlog_set_sync(struct ksvc *k, bool sync)
{
    if (!k || !k->dl)
        return nines_err(NINES_ESTATE, "no disk log: no policy to set");
    k->dl->sync = sync;
    return 0;
}

void sk_dlog_pos(const struct ksvc *k, struct sk_dlog_pos *out)
{
    const struct sk_dlog *d = k->dl;
    memset(out, 0, sizeof *out);
    if (!d)
        return;
    switch (d->state) {
    case KSVC_DLOG_OPENING:
    case KSVC_DLOG_ON:
    case KSVC_DLOG_STOPPED:
    case KSVC_DLOG_RESUMED:
        out->usable = true; /* every record taken since gap_stream is (or will be) at base +
                             * its offset */
        break;
    case KSVC_DLOG_OFF:
    case KSVC_DLOG_GAP:
        break;
    default:
        return;
    }
    out->open = d->open;
    out->inherited = d->inherited;
    out->base = d->base;
    out->taken = d->acc;
    out->durable = d->dacc; /* every record taken below it is on disk */
    out->gap_stream = d->gap_stream;
    out->unrecoverable = d->unrecov;
}

void sk_dlog_trim(struct ksvc *k, uint64_t stream)
{
    struct sk_dlog *d = k->dl;
    if (!d || stream <= d->trim_want || stream < d->gap_stream)
        return;
    d->trim_want = stream;
    if (sk_dlog_writing(d) && !d->busy && d->open)
        sk_dlog_submit(d); /* a flush of nothing, then the removal */
}

void ksvc_dlog_status(const struct ksvc *k, struct ksvc_dlog_status *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->policy, sizeof out->policy, "off");
    const struct sk_dlog *d = k ? k->dl : NULL;
    if (!d)
        return;
    out->state = d->state;
    snprintf(out->reason, sizeof out->reason, "%s", d->reason);
    out->durable = d->durable;
    out->buffered = d->kept + d->fly.ent + d->stage.ent;
    out->records = d->records;
    out->flushes = d->st.flushes;
    out->fsyncs = d->st.fsyncs;
    out->bytes = d->st.bytes;
    out->submits = d->submits;
    out->flush_errors = d->errors;
    out->dropped = d->dropped;
    snprintf(out->policy, sizeof out->policy, "%s", d->sync ? "sync" : "async");
    out->waits = d->waits;
    out->released = d->released;
    out->wait_sum_us = d->wait_sum_us;
    out->wait_max_us = d->wait_max_us;
    out->refused = d->wrefused;
    out->waiting = d->nwait;
    out->segments = d->segments;
    out->first = d->first;
    out->disk_bytes = d->durable - d->first + d->segments * KERN_DLOG_SEG_HDR;
    out->segs_removed = d->st.segs_removed;
    out->trim_errors = d->trim_errors;
    out->gaps = d->gaps;
    out->resumes = d->resumes;
    out->dropped_bytes = d->dropped_bytes;
    out->gap_wall_us = d->gap_wall_us;
    out->resume_wall_us = d->resume_wall_us;
    out->gap_pos = d->gap_pos;
    out->unrecoverable = d->unrecov ? d->n_unrecov : 0;
}

void sk_dlog_fini(struct ksvc *k)
{
    struct sk_dlog *d = k->dl;
    if (!d)
        return;
    kern_dlog_close(d->log); /* after rt_destroy: the I/O thread is gone */
    for (struct sk_wait *w = d->wq_head, *nx; w; w = nx) {
        nx = w->next;
        for (unsigned i = 0; i < w->n; i++) { /* the runtime is gone: release directly */
            arena_destroy(&w->m[i]->arena);
            free(w->m[i]);
        }
        free(w);
    }
    for (struct sk_wait *w = d->wq_free, *nx; w; w = nx) {
        nx = w->next;
        free(w);
    }
    free(d->stage.p);
    free(d->fly.p);
    free(d);
    k->dl = NULL;
}
