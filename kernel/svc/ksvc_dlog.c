/* Disk logging (README "Disk logging"): every record a replica's log
 * publishes is copied, in publication order, into the executor's buffer;
 * once per executor turn (or when the buffer passes KSVC_DLOG_KICK) the
 * buffer is handed to the I/O thread, which appends it to the node's
 * kern_dlog and flushes (one write, one fsync). At most one flush is in
 * flight; while it is, the I/O thread owns the kern_dlog and the buffer it
 * was handed, and the executor fills a second buffer. No executor thread
 * waits for the disk. A failed flush stops disk logging (service goes on)
 * and is retried every KSVC_DLOG_RETRY_MS; past the buffer bound the
 * records are dropped and the log has a gap (resuming needs a checkpoint,
 * not yet). Checkpoints (ksvc_ckpt.c) read stream offsets here and ask for
 * segments to be removed; the removal runs after a flush on the I/O
 * thread (README "Checkpoints"). */
#include "ksvc_int.h"

#include "kernel/kern_dlog.h"
#include "kernel/kern_log.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sk_buf {
    uint8_t *p;
    size_t len, cap;  /* encoded records back to back */
    size_t ent;       /* their size as disk log entries (len + header each) */
    uint64_t nrecs;
};

struct sk_dlog {
    struct ksvc *k;
    char dir[4096];
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
    /* ---- executor ---- */
    size_t kept;              /* io_kept as of the last IO_DONE */
    struct kern_dlog_stats st; /* io_st as of the last IO_DONE */
    uint64_t durable, records, submits, errors, dropped, quiet_errors;
    /* positions for checkpoints (README "Checkpoints") */
    uint64_t taken;           /* entry bytes taken since start: the stream offset */
    bool open;                /* base known */
    bool inherited;           /* the log held entries of an earlier process when opened */
    uint64_t base;            /* position of stream offset 0 */
    uint64_t trim_want;       /* stream offset segments below may go (0: none) */
    uint64_t trim_sent;       /* trim_want as handed to the I/O thread last */
    uint64_t first, segments, trim_errors;
};

const char *ksvc_dlog_state_name(enum ksvc_dlog_state s)
{
    switch (s) {
    case KSVC_DLOG_OFF: return "off";
    case KSVC_DLOG_OPENING: return "opening";
    case KSVC_DLOG_ON: return "on";
    case KSVC_DLOG_STOPPED: return "stopped";
    case KSVC_DLOG_GAP: return "stopped (gap)";
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
    for (size_t off = 0; rc == 0 && off < d->fly.len;) {
        const uint8_t *p = d->fly.p + off;
        uint32_t len, table, frag;
        uint64_t lsn;
        memcpy(&len, p, 4);
        memcpy(&table, p + 12, 4);
        memcpy(&frag, p + 16, 4);
        memcpy(&lsn, p + 32, 8);
        if ((rc = kern_dlog_append(d->log, table, frag, lsn, p, len, NULL)) < 0)
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
    d->io_trim = d->open && d->trim_want ? d->base + d->trim_want : 0;
    if (d->open)
        d->trim_sent = d->trim_want;
    d->req = (struct rt_io_req){.fn = sk_dlog_io, .arg = d, .svc = RT_SVC_KERN};
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

/* Records were (or are about to be) dropped: the log has a gap. */
static void sk_dlog_gap(struct sk_dlog *d, const char *why)
{
    d->dropped += d->stage.nrecs;
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
                   "longer written to disk (service goes on; resuming needs a checkpoint)",
                   d->dir, (unsigned long long)d->durable, why);
    snprintf(d->reason, sizeof d->reason, "gap after position %llu: %.200s",
             (unsigned long long)d->durable, why);
    d->state = KSVC_DLOG_GAP;
}

static void sk_dlog_sink(void *ctx, const uint8_t *rec, size_t len)
{
    struct sk_dlog *d = ctx;
    d->records++;
    switch (d->state) {
    case KSVC_DLOG_OFF:
        return;
    case KSVC_DLOG_GAP:
        d->dropped++;
        return;
    default:
        break;
    }
    size_t ent = KERN_DLOG_ENT_HDR + len;
    if (d->kept + d->fly.ent + d->stage.ent + ent > d->buf_max) {
        char why[256];
        snprintf(why, sizeof why, "%zu bytes waited for the disk, the limit is %zu (%.100s)",
                 d->kept + d->fly.ent + d->stage.ent, d->buf_max,
                 d->state == KSVC_DLOG_STOPPED ? d->reason : "the disk is not keeping up");
        sk_dlog_gap(d, why);
        d->dropped++;
        return;
    }
    if (d->stage.len + len > d->stage.cap) {
        size_t nc = d->stage.cap ? d->stage.cap : 256u * 1024u;
        while (nc < d->stage.len + len)
            nc *= 2;
        uint8_t *np = realloc(d->stage.p, nc);
        if (!np) {
            sk_dlog_gap(d, "no memory to buffer records for the disk");
            d->dropped++;
            return;
        }
        d->stage.p = np, d->stage.cap = nc;
    }
    memcpy(d->stage.p + d->stage.len, rec, len);
    d->stage.len += len;
    d->stage.ent += ent;
    d->taken += ent;
    d->stage.nrecs++;
    if (d->state != KSVC_DLOG_ON)
        return; /* opening: the open's completion hands it over; stopped: the retry */
    if (d->stage.ent >= KSVC_DLOG_KICK)
        sk_dlog_submit(d);
    else
        sk_dlog_arm_kick(d);
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
        if (d->state == KSVC_DLOG_ON && d->stage.len && !d->busy)
            sk_dlog_submit(d);
        return;
    }
    d->retry_armed = false; /* SK_TIMER_DLOG_RETRY */
    if (d->state == KSVC_DLOG_STOPPED && !d->busy)
        sk_dlog_submit(d);
}

bool sk_dlog_on_io_done(struct ksvc *k, struct rt_io_req *req)
{
    struct sk_dlog *d = k->dl;
    if (!d || req != &d->req)
        return false;
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
        if (d->log && d->kept)
            kern_dlog_discard(d->log);
        d->kept = 0;
    }
    int rc = req->result;
    if (rc < 0)
        d->errors++;
    if (d->state == KSVC_DLOG_GAP)
        return true;
    if (rc < 0 && d->io_lost) {
        sk_dlog_gap(d, d->io_detail);
        return true;
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
        sk_dlog_arm_retry(d);
        return true;
    }
    if (d->state == KSVC_DLOG_STOPPED)
        NLOG_INFO("kern", "disk log resumed at position %llu after %llu more failed retries",
                  (unsigned long long)d->durable, (unsigned long long)d->quiet_errors);
    else if (d->state == KSVC_DLOG_OPENING)
        NLOG_INFO("kern", "disk log on in %s at position %llu", d->dir,
                  (unsigned long long)d->durable);
    d->state = KSVC_DLOG_ON;
    d->reason[0] = '\0';
    if (d->stage.len || d->trim_want > d->trim_sent)
        sk_dlog_submit(d); /* what came meanwhile (or a removal asked for): the next flush */
    return true;
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
        out->usable = true; /* every record taken is (or will be) at base + its offset */
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
    out->taken = d->taken;
    out->durable = d->open && d->durable > d->base ? d->durable - d->base : 0;
}

void sk_dlog_trim(struct ksvc *k, uint64_t stream)
{
    struct sk_dlog *d = k->dl;
    if (!d || stream <= d->trim_want)
        return;
    d->trim_want = stream;
    if (d->state == KSVC_DLOG_ON && !d->busy && d->open)
        sk_dlog_submit(d); /* a flush of nothing, then the removal */
}

void ksvc_dlog_status(const struct ksvc *k, struct ksvc_dlog_status *out)
{
    memset(out, 0, sizeof *out);
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
    out->segments = d->segments;
    out->first = d->first;
    out->disk_bytes = d->durable - d->first + d->segments * KERN_DLOG_SEG_HDR;
    out->segs_removed = d->st.segs_removed;
    out->trim_errors = d->trim_errors;
}

void sk_dlog_fini(struct ksvc *k)
{
    struct sk_dlog *d = k->dl;
    if (!d)
        return;
    kern_dlog_close(d->log); /* after rt_destroy: the I/O thread is gone */
    free(d->stage.p);
    free(d->fly.p);
    free(d);
    k->dl = NULL;
}
