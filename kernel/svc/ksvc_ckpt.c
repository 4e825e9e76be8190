/* Kernel service: checkpoints (README "Checkpoints"). Rounds of fuzzy
 * checkpoints of every replica of the node — on a schedule
 * (checkpoint_interval_ms) and on demand (CKPT_REQ) — one replica after
 * the other, each scanned a bounded slice per executor turn
 * (kern_ckpt_step) while transactions go on, its bytes written, fsync'ed
 * and renamed on the I/O thread. A checkpoint is complete once the disk
 * log is durable past the scan's end and the manifest naming it is
 * durable; then disk log segments that no replica needs any more are
 * removed (the removal rule). A replica dropped or changing role
 * mid-checkpoint has its checkpoint abandoned (temp file removed); a
 * dropped one's file and manifest entry go too. */
#include "ksvc_int.h"

#include "kernel/kern_ckpt.h"
#include "nassert.h"
#include "nfile.h"
#include "nines/errors.h"
#include "nlog.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* The round's current replica (README "Checkpoints": a replica's steps). */
enum sk_ck_phase {
    SK_CK_NEXT = 1, /* none: take the round's next replica */
    SK_CK_FLOOR,    /* waiting (KSVC_CKPT_FLOOR_WAIT_MS at most) for the transactions
                     * open at its anchor sample to end */
    SK_CK_SCAN,     /* kern_ckpt_step a slice per turn; chunks go to the I/O thread */
    SK_CK_DURABLE,  /* scanned: waiting for the disk log to be durable past the scan */
    SK_CK_FINISH,   /* last bytes, fsync, rename, manifest: on the I/O thread */
    SK_CK_DISCARD,  /* abandoned: its temp file is closed and removed on the I/O thread */
};

struct sk_ck_item {
    uint32_t table, frag;
};

/* What the node knows of a replica between rounds: samples mapping its
 * LSNs to disk log stream offsets, and the pin of its newest complete
 * checkpoint. Keyed by (table, frag); valid for the kern_frag `f` only. */
struct sk_ck_samp {
    uint64_t lsn, stream; /* every record of f with LSN >= lsn is at stream offset >= stream */
};
struct sk_ck_rep {
    struct sk_node node; /* a = table, b = frag */
    const struct kern_frag *f;
    struct sk_ck_samp samp[KSVC_CKPT_SAMPLES]; /* oldest first */
    unsigned nsamp;
    bool have;           /* a complete checkpoint of f written by this process */
    uint64_t pin;        /* its stream offset: every record of f it needs is at or after it */
    uint64_t done_us;    /* when it completed (rt_now_us) */
};

struct sk_ck_waiter {
    struct sk_ck_waiter *next;
    net_addr from;
    uint64_t round;      /* answered when this round has ended */
};

/* One request on the I/O thread: the executor fills `in`, does not touch
 * the struct until RT_MSG_IO_DONE, then reads `out`. Steps in this order. */
struct sk_ck_io {
    /* in */
    bool load;                 /* create the folder, remove temp files, read the manifest */
    bool create;               /* create <path>.tmp */
    int fd;                    /* the temp file (-1: none) */
    uint8_t *buf;              /* append to it (owned; freed at IO_DONE) */
    size_t len;
    bool finish;               /* fsync, close, rename to <path>, folder fsync */
    bool discard;              /* close it, remove <path>.tmp */
    char path[PATH_MAX];
    uint8_t *mf;               /* write the manifest (owned), after the steps above */
    size_t mflen;
    struct sk_ck_item *rm;     /* then remove these replicas' files (owned) */
    size_t nrm;
    /* out */
    int rc;                    /* the first failure (0: none) */
    char detail[320];
    int fd_out;                /* the temp file now (-1: closed) */
    int mf_rc;                 /* load: 0, NINES_ENOTFOUND, or why it was set aside */
    char mf_detail[320];
    struct ksvc_ckpt_manifest mf_in;
};

struct sk_ckpt {
    struct ksvc *k;
    char dir[PATH_MAX - 64];
    uint64_t cluster;
    uint32_t interval_ms;
    enum ksvc_ckpt_state state;
    char error[256];           /* the last failure */
    /* schedule and requests */
    uint64_t next_due;         /* rt_now_us of the next scheduled round (0: none) */
    int64_t due_id;            /* SK_TIMER_CKPT_DUE armed (0: not) */
    bool step_armed;           /* SK_TIMER_CKPT */
    unsigned polls;            /* re-checks of the current replica's wait so far */
    bool want;                 /* a request waits for a round not started yet */
    struct sk_ck_waiter *waiters;
    /* the round */
    uint64_t seq;              /* rounds started */
    uint64_t round_start;
    struct sk_ck_item *items;
    size_t nitems, next;
    uint64_t r_done, r_abandoned, r_skipped, r_failed, r_records, r_bytes;
    int r_err;
    char r_error[256];
    /* the current replica */
    enum sk_ck_phase ph;
    uint32_t table, frag;
    const struct kern_frag *f;
    int role;
    struct kern_ckpt *ck;
    struct kern_ckpt_info info;
    uint64_t anchor_lsn, wait_since, cand_pin, end_stream, written;
    uint64_t cand_gci;          /* the replica's highest commit epoch at the begin: the image
                                 * may hold its effects, the log after the redo start may not */
    uint64_t gci_since;         /* DURABLE: the wait for that epoch to be restorable began */
    bool scanned;              /* kern_ckpt_step returned 0 */
    bool created;              /* the temp file was created (fd valid once not busy) */
    bool cur_dropped;          /* its replica was dropped: the purge follows */
    int fd;
    char path[PATH_MAX];
    /* the I/O thread */
    bool busy;
    struct rt_io_req req;
    struct sk_ck_io io;
    struct ksvc_ckpt_manifest mf;      /* as durable on disk (entries sorted) */
    struct ksvc_ckpt_entry *mf_next;   /* a request's new entries (in flight) */
    size_t mf_nnext;
    struct sk_ck_item *purge;  /* dropped replicas whose files and entries go */
    size_t npurge, cappurge;
    bool purge_hold;           /* a purge failed: the next one waits for the next round */
    struct sk_map reps;        /* struct sk_ck_rep */
    /* status */
    uint64_t rounds, done, abandoned, skipped, failed, bytes;
    uint64_t last_end, last_duration, last_bytes, last_records;
    uint64_t trim_pos;
    uint64_t gap_due;          /* after a disk log gap: a round due then (0: none) */
};

const char *ksvc_ckpt_state_name(enum ksvc_ckpt_state s)
{
    switch (s) {
    case KSVC_CKPT_OFF: return "off";
    case KSVC_CKPT_LOADING: return "loading";
    case KSVC_CKPT_IDLE: return "idle";
    case KSVC_CKPT_RUNNING: return "running";
    }
    return "?";
}

static uint64_t sk_ck_wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void sk_ck_path(const struct sk_ckpt *c, uint32_t table, uint32_t frag, char *out,
                       size_t cap)
{
    char name[64];
    ksvc_ckpt_file_name(table, frag, name, sizeof name);
    snprintf(out, cap, "%s/%s", c->dir, name);
}

/* ---- the I/O thread ----------------------------------------------------- */

static void sk_ck_io_fail(struct sk_ck_io *io, int rc)
{
    if (io->rc == 0) {
        io->rc = rc;
        snprintf(io->detail, sizeof io->detail, "%s", nines_errdetail());
    }
}

/* The first request: the folder exists, crash leftovers (*.tmp) are gone,
 * the manifest is read (a bad one is set aside as manifest.ncm.bad). */
static void sk_ck_io_load(struct sk_ckpt *c, struct sk_ck_io *io)
{
    if (mkdir(c->dir, 0755) == 0) {
        int rc = nfile_fsync_dir(c->dir); /* the new folder's entry in its parent */
        if (rc < 0)
            sk_ck_io_fail(io, rc);
    } else if (errno != EEXIST) {
        sk_ck_io_fail(io, nines_err(NINES_EIO, "create checkpoint folder %s: %s", c->dir,
                                    strerror(errno)));
    }
    if (io->rc)
        return;
    DIR *d = opendir(c->dir);
    if (!d) {
        sk_ck_io_fail(io, nines_err(NINES_EIO, "open checkpoint folder %s: %s", c->dir,
                                    strerror(errno)));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".tmp") && unlinkat(dirfd(d), e->d_name, 0) < 0)
            NLOG_WARN("kern", "leftover %s/%s not removed: %s", c->dir, e->d_name,
                      strerror(errno));
    }
    closedir(d);
    io->mf_rc = ksvc_ckpt_manifest_read(c->dir, c->k->self, c->cluster, &io->mf_in);
    if (io->mf_rc < 0)
        snprintf(io->mf_detail, sizeof io->mf_detail, "%s", nines_errdetail());
    if (io->mf_rc < 0 && io->mf_rc != NINES_ENOTFOUND) {
        char from[PATH_MAX], to[PATH_MAX + 8];
        snprintf(from, sizeof from, "%s/%s", c->dir, KSVC_CKPT_MF_NAME);
        snprintf(to, sizeof to, "%s.bad", from);
        if (rename(from, to) < 0)
            NLOG_WARN("kern", "rename %s to %s: %s", from, to, strerror(errno));
    }
}

static int sk_ck_io_run(void *arg)
{
    struct sk_ckpt *c = arg;
    struct sk_ck_io *io = &c->io;
    io->rc = 0;
    io->detail[0] = '\0';
    io->fd_out = io->fd;
    if (io->load)
        sk_ck_io_load(c, io);
    int rc = 0;
    if (io->create && (rc = kern_ckpt_file_create(io->path, &io->fd_out)) < 0)
        io->fd_out = -1;
    if (rc == 0 && io->len) {
        if (N_FAULT("ksvc.ckpt.write"))
            rc = nines_err(NINES_EFULL, "checkpoint write of %zu bytes to %s.tmp: injected "
                           "ENOSPC", io->len, io->path);
        else
            rc = kern_ckpt_file_write(io->fd_out, io->buf, io->len);
        /* a chunk is synced as it goes, so the finish's fsync is short: no
         * request holds the I/O thread (and the disk log's flushes queued
         * behind it) for long */
        if (rc == 0 && !io->finish && fdatasync(io->fd_out) < 0)
            rc = nines_err(errno == ENOSPC ? NINES_EFULL : NINES_EIO, "fdatasync %s.tmp: %s",
                           io->path, strerror(errno));
    }
    if (rc == 0 && io->finish) {
        int fd = io->fd_out;
        io->fd_out = -1; /* closed by the finish, whatever happens */
        rc = kern_ckpt_file_finish(fd, io->path);
    }
    if (rc < 0)
        sk_ck_io_fail(io, rc);
    if (io->discard || (rc < 0 && (io->create || io->fd >= 0 || io->finish))) {
        kern_ckpt_file_discard(io->fd_out, io->path); /* never a partial file: the temp goes */
        io->fd_out = -1;
    }
    if (io->rc == 0 && io->mf) {
        char mp[PATH_MAX];
        snprintf(mp, sizeof mp, "%s/%s", c->dir, KSVC_CKPT_MF_NAME);
        int fd = -1;
        rc = kern_ckpt_file_create(mp, &fd);
        if (rc == 0)
            rc = kern_ckpt_file_write(fd, io->mf, io->mflen);
        if (rc == 0) {
            rc = kern_ckpt_file_finish(fd, mp);
            fd = -1;
        }
        if (rc < 0) {
            sk_ck_io_fail(io, rc);
            kern_ckpt_file_discard(fd, mp);
        }
    }
    char p[PATH_MAX];
    for (size_t i = 0; io->rc == 0 && i < io->nrm; i++) {
        char t[PATH_MAX + 8];
        sk_ck_path(c, io->rm[i].table, io->rm[i].frag, p, sizeof p);
        snprintf(t, sizeof t, "%s.tmp", p);
        if ((unlink(p) < 0 && errno != ENOENT) || (unlink(t) < 0 && errno != ENOENT))
            sk_ck_io_fail(io, nines_err(NINES_EIO, "remove checkpoint %s: %s", p,
                                        strerror(errno)));
    }
    if (io->nrm && io->rc == 0 && (rc = nfile_fsync_dir(p)) < 0) /* the removals' folder */
        sk_ck_io_fail(io, rc);
    return io->rc;
}

/* ---- executor: helpers -------------------------------------------------- */

static void sk_ck_arm_step(struct sk_ckpt *c, uint64_t delay_us)
{
    if (c->step_armed)
        return;
    /* a timer, not a local message: it fires in the next loop turn */
    if (rt_timer_add(c->k->rt, RT_SVC_KERN, delay_us, SK_TIMER_CKPT) > 0)
        c->step_armed = true;
}

/* Re-check a wait (undo floor, durability, the disk log's open) soon: every
 * KSVC_CKPT_POLL_MS, every 100 ms after the first hundred (a disk log that
 * stopped: the retry is KSVC_DLOG_RETRY_MS). */
static void sk_ck_arm_poll(struct sk_ckpt *c)
{
    sk_ck_arm_step(c, (c->polls++ < 100 ? KSVC_CKPT_POLL_MS : 100u) * 1000u);
}

static void sk_ck_arm_due(struct sk_ckpt *c)
{
    if (c->due_id > 0 || !c->next_due)
        return;
    uint64_t now = rt_now_us(c->k->rt);
    int64_t id = rt_timer_add(c->k->rt, RT_SVC_KERN, c->next_due > now ? c->next_due - now : 0,
                              SK_TIMER_CKPT_DUE);
    if (id > 0)
        c->due_id = id;
}

static struct sk_ck_rep *sk_ck_rep_get(const struct sk_ckpt *c, uint32_t table, uint32_t frag)
{
    return (struct sk_ck_rep *)sk_map_get(&c->reps, table, frag, 0);
}

/* The state of r (made, or reset when r's kern_frag is another one). */
static struct sk_ck_rep *sk_ck_rep_of(struct sk_ckpt *c, const struct sk_rep *r)
{
    struct sk_ck_rep *s = sk_ck_rep_get(c, r->table, r->frag);
    if (s && s->f != r->f) {
        memset(&s->samp, 0, sizeof s->samp);
        s->nsamp = 0;
        s->have = false;
        s->f = r->f;
    }
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->node.a = r->table;
    s->node.b = r->frag;
    s->f = r->f;
    if (sk_map_put(&c->reps, &s->node) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Take a sample of r now: its next LSN and the disk log's next stream
 * offset (every record of r published from now on lies at or after it). */
static void sk_ck_sample(struct sk_ckpt *c, const struct sk_rep *r)
{
    struct sk_dlog_pos p;
    sk_dlog_pos(c->k, &p);
    struct sk_ck_rep *s = sk_ck_rep_of(c, r);
    if (!s || !p.usable)
        return;
    uint64_t lsn = kern_log_next_lsn(kern_frag_log(r->f));
    if (s->nsamp && s->samp[s->nsamp - 1].lsn > lsn) { /* its log was reset: start over */
        s->nsamp = 0;
        s->have = false;
    }
    if (s->nsamp && s->samp[s->nsamp - 1].lsn == lsn) { /* nothing published since */
        s->samp[s->nsamp - 1].stream = p.taken;
        return;
    }
    if (s->nsamp == KSVC_CKPT_SAMPLES) {
        memmove(s->samp, s->samp + 1, (KSVC_CKPT_SAMPLES - 1) * sizeof *s->samp);
        s->nsamp--;
    }
    s->samp[s->nsamp++] = (struct sk_ck_samp){lsn, p.taken};
}

/* The stream offset bounding the records a checkpoint with this redo start
 * needs: the newest sample at or below it, or the previous checkpoint's pin
 * (redo starts only grow), or 0 (everything this process logged). */
static uint64_t sk_ck_pin_for(const struct sk_ck_rep *s, uint64_t redo_start)
{
    uint64_t pin = s->have ? s->pin : 0;
    for (unsigned i = 0; i < s->nsamp; i++)
        if (s->samp[i].lsn <= redo_start && s->samp[i].stream > pin)
            pin = s->samp[i].stream;
    return pin;
}

/* May r be checkpointed: it holds trusted data in a steady role. */
static bool sk_ck_eligible(const struct sk_rep *r)
{
    if (r->lost || r->oos[0])
        return false;
    switch (kern_frag_role(r->f)) {
    case KERN_FRAG_PRIMARY:
    case KERN_FRAG_HOT_STANDBY:
        return true;
    case KERN_FRAG_PROMOTING:
        return false;
    default:
        return false;
    }
}

/* Can r be recovered from this process's checkpoint of it and the disk
 * log: it has one, and its pin is at or after the last gap's end (README
 * "Gap and resume"). */
static bool sk_ck_recoverable(const struct sk_ckpt *c, const struct sk_rep *r,
                              uint64_t gap_stream)
{
    const struct sk_ck_rep *s = sk_ck_rep_get(c, r->table, r->frag);
    return s && s->have && s->f == r->f && s->pin >= gap_stream;
}

/* Does r pin the disk log: its records there are needed to recover it
 * from its checkpoint. A lost replica holds no data this process can
 * vouch for, one out of service is not trusted (both are rebuilt from the
 * fragment's other replica, README "Roles from the node set"). */
static bool sk_ck_pins(const struct sk_rep *r)
{
    return !r->lost && !r->oos[0];
}

/* The disk log stream offset below which no replica needs a record, with
 * (table, frag)'s pin taken as `pin` when `over`; false: nothing may be
 * removed — some replica has no checkpoint yet (it pins everything), or
 * none taken after the last gap (its pin is before the gap: base does not
 * map it, and the segments before the gap stay until every replica has
 * one), or the log holds records of an earlier process (recovery's to
 * take over, not this process's to remove), or it is in a gap. */
static bool sk_ck_keep(const struct sk_ckpt *c, bool over, uint32_t table, uint32_t frag,
                       uint64_t pin, uint64_t *keep)
{
    struct sk_dlog_pos p;
    sk_dlog_pos(c->k, &p);
    if (!p.usable || !p.open || (p.inherited && !sk_rc_settled(c->k)))
        return false;
    uint64_t m = p.taken; /* no replica: nothing taken so far is needed */
    SK_MAP_FOREACH(&c->k->reps, i, nd, nx)
    {
        const struct sk_rep *r = (const struct sk_rep *)nd;
        if (!sk_ck_pins(r))
            continue;
        uint64_t q;
        if (over && r->table == table && r->frag == frag) {
            q = pin;
        } else {
            const struct sk_ck_rep *s = sk_ck_rep_get(c, r->table, r->frag);
            if (!s || !s->have || s->f != r->f)
                return false;
            q = s->pin;
        }
        if (q < p.gap_stream)
            return false;
        if (q < m)
            m = q;
    }
    *keep = m;
    return true;
}

/* After a gap (RESUMED): tell the disk log how many replicas are not
 * recoverable yet (0: it is ON again); with some left and no round
 * running, another round in KSVC_CKPT_GAP_RETRY_MS. */
static void sk_ck_gap_check(struct sk_ckpt *c)
{
    struct sk_dlog_pos p;
    sk_dlog_pos(c->k, &p);
    if (!p.usable || !p.unrecoverable)
        return;
    uint32_t n = 0;
    SK_MAP_FOREACH(&c->k->reps, i, nd, nx)
    {
        const struct sk_rep *r = (const struct sk_rep *)nd;
        if (sk_ck_pins(r) && !sk_ck_recoverable(c, r, p.gap_stream))
            n++;
    }
    sk_dlog_recoverable(c->k, n);
    if (n && c->state == KSVC_CKPT_IDLE && !c->gap_due) {
        c->gap_due = rt_now_us(c->k->rt) + KSVC_CKPT_GAP_RETRY_MS * 1000u;
        sk_ck_arm_step(c, KSVC_CKPT_GAP_RETRY_MS * 1000u);
    }
}

/* Ask the disk log to remove the segments no replica needs. */
static void sk_ck_trim(struct sk_ckpt *c)
{
    sk_ck_gap_check(c);
    uint64_t keep;
    if (!sk_ck_keep(c, false, 0, 0, 0, &keep))
        return;
    struct sk_dlog_pos p;
    sk_dlog_pos(c->k, &p);
    c->trim_pos = p.base + keep;
    sk_dlog_trim(c->k, keep);
}

static void sk_ck_note_error(struct sk_ckpt *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sk_ck_note_error(struct sk_ckpt *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    if (c->state == KSVC_CKPT_RUNNING && !c->r_err) {
        c->r_err = rc;
        snprintf(c->r_error, sizeof c->r_error, "%s", c->error);
    }
}

/* ---- answers ------------------------------------------------------------ */

/* CKPT_CONF to `to`: the error (0: none) and, with `figures`, the counts
 * of the round that just ended. */
static void sk_ck_send(struct sk_ckpt *c, net_addr to, int err, const char *detail,
                       bool figures)
{
    struct rt *rt = c->k->rt;
    struct rt_msg *m = rt_msg_new(rt, NINES__MSG_TYPE__CKPT_CONF);
    Nines__CkptConf *b = m ? RT_BODY(m, Nines__CkptConf, nines__ckpt_conf__init) : NULL;
    char *d = b && detail && detail[0] ? rt_msg_alloc(m, strlen(detail) + 1) : NULL;
    if (!b) {
        if (m)
            rt_msg_free(rt, m);
        NLOG_ERROR("kern", "checkpoint answer to %llu not sent: no memory",
                   (unsigned long long)to);
        return;
    }
    b->node = c->k->self;
    b->error = err;
    if (d) {
        memcpy(d, detail, strlen(detail) + 1);
        b->detail = d;
    }
    if (figures) {
        b->round = c->seq;
        b->replicas = (uint32_t)c->r_done;
        b->abandoned = (uint32_t)c->r_abandoned;
        b->skipped = (uint32_t)c->r_skipped;
        b->failed = (uint32_t)c->r_failed;
        b->records = c->r_records;
        b->bytes = c->r_bytes;
        b->duration_ms = c->last_duration / 1000u;
    }
    (void)rt_send(rt, to, RT_SVC_APP, m); /* a requester gone: nobody to tell */
}

/* Answer the waiters of rounds up to `upto` (UINT64_MAX: all of them). */
static void sk_ck_answer(struct sk_ckpt *c, uint64_t upto, int err, const char *detail,
                         bool figures)
{
    struct sk_ck_waiter **pp = &c->waiters;
    while (*pp) {
        struct sk_ck_waiter *w = *pp;
        if (w->round > upto) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        sk_ck_send(c, w->from, err, detail, figures);
        free(w);
    }
}

/* ---- rounds ------------------------------------------------------------- */

static int sk_ck_item_cmp(const void *a, const void *b)
{
    const struct sk_ck_item *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    return x->frag < y->frag ? -1 : x->frag > y->frag;
}

static void sk_ck_work(struct sk_ckpt *c);
static void sk_ck_pump(struct sk_ckpt *c);

/* Start a round now: the replicas held now (those that may be
 * checkpointed), a sample of each. */
static void sk_ck_round_start(struct sk_ckpt *c)
{
    struct ksvc *k = c->k;
    size_t n = 0;
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    n++;
    struct sk_ck_item *items = calloc(n ? n : 1, sizeof *items);
    if (!items) {
        sk_ck_note_error(c, NINES_ENOMEM, "no memory for a checkpoint round of %zu replicas", n);
        NLOG_ERROR("kern", "%s", c->error);
        sk_ck_answer(c, UINT64_MAX, NINES_ENOMEM, c->error, false);
        c->want = false;
        return;
    }
    c->seq++;
    c->state = KSVC_CKPT_RUNNING;
    c->round_start = rt_now_us(k->rt);
    c->items = items;
    c->nitems = c->next = 0;
    c->r_done = c->r_abandoned = c->r_skipped = c->r_failed = c->r_records = c->r_bytes = 0;
    c->r_err = 0;
    c->r_error[0] = '\0';
    c->purge_hold = false;
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    {
        struct sk_rep *r = (struct sk_rep *)nd;
        if (sk_ck_eligible(r)) {
            items[c->nitems++] = (struct sk_ck_item){r->table, r->frag};
            sk_ck_sample(c, r);
        } else if (!r->lost && !r->oos[0]) {
            c->r_skipped++; /* being promoted: the next round */
            c->skipped++;
        }
    }
    qsort(items, c->nitems, sizeof *items, sk_ck_item_cmp);
    c->want = false;
    if (c->interval_ms)
        c->next_due = c->round_start + (uint64_t)c->interval_ms * 1000u;
    if (c->due_id > 0) {
        rt_timer_cancel(k->rt, c->due_id);
        c->due_id = 0;
    }
    c->ph = SK_CK_NEXT;
    NLOG_DEBUG("kern", "checkpoint round %llu: %zu replicas", (unsigned long long)c->seq,
               c->nitems);
    sk_ck_arm_step(c, 0);
}

static void sk_ck_round_end(struct sk_ckpt *c)
{
    uint64_t now = rt_now_us(c->k->rt);
    c->state = KSVC_CKPT_IDLE;
    free(c->items);
    c->items = NULL;
    c->nitems = c->next = 0;
    c->rounds++;
    c->last_end = now;
    c->last_duration = now - c->round_start;
    c->last_bytes = c->r_bytes;
    c->last_records = c->r_records;
    if (c->r_failed || c->r_abandoned)
        NLOG_WARN("kern", "checkpoint round %llu: %llu replicas checkpointed, %llu abandoned, "
                  "%llu failed%s%s", (unsigned long long)c->seq, (unsigned long long)c->r_done,
                  (unsigned long long)c->r_abandoned, (unsigned long long)c->r_failed,
                  c->r_error[0] ? ": " : "", c->r_error);
    else
        NLOG_INFO("kern", "checkpoint round %llu: %llu replicas, %llu records, %llu bytes in "
                  "%llu ms", (unsigned long long)c->seq, (unsigned long long)c->r_done,
                  (unsigned long long)c->r_records, (unsigned long long)c->r_bytes,
                  (unsigned long long)(c->last_duration / 1000u));
    sk_ck_answer(c, c->seq, c->r_err, c->r_error, true);
    sk_ck_gap_check(c); /* after a gap: another round soon while some replica has none */
}

/* Start a round if one is due or asked for and none runs. */
static void sk_ck_kick(struct sk_ckpt *c)
{
    if (c->state != KSVC_CKPT_IDLE)
        return;
    uint64_t now = rt_now_us(c->k->rt);
    bool due = c->next_due && now >= c->next_due;
    bool gap_due = c->gap_due && now >= c->gap_due;
    if (!c->want && !due && !gap_due) {
        sk_ck_arm_due(c);
        if (c->gap_due) /* a round after a disk log gap, sooner than the schedule */
            sk_ck_arm_step(c, c->gap_due - now);
        return;
    }
    struct sk_dlog_pos p;
    sk_dlog_pos(c->k, &p);
    if (!p.usable) {
        char why[240];
        snprintf(why, sizeof why, "node %u: its disk log has a gap (records were dropped): no "
                 "checkpoint can be made complete until it resumes (retried every %u ms, a "
                 "round follows the resume)", c->k->self, KSVC_DLOG_RETRY_MS);
        c->gap_due = 0;
        sk_ck_answer(c, UINT64_MAX, NINES_ESTATE, why, false);
        c->want = false;
        if (due) {
            c->next_due = now + (uint64_t)c->interval_ms * 1000u;
            sk_ck_arm_due(c);
        }
        return;
    }
    if (!p.open) { /* the disk log is being opened: its positions are not known yet */
        struct ksvc_dlog_status ds;
        ksvc_dlog_status(c->k, &ds);
        if (ds.state == KSVC_DLOG_STOPPED) { /* its open failed: retried every second */
            char why[400];
            snprintf(why, sizeof why, "node %u: its disk log could not be opened (%.300s): "
                     "checkpoints wait for it", c->k->self, ds.reason);
            sk_ck_answer(c, UINT64_MAX, NINES_ESTATE, why, false);
            c->want = false;
        }
        sk_ck_arm_poll(c);
        return;
    }
    c->polls = 0;
    c->gap_due = 0;
    sk_ck_round_start(c);
}

/* ---- one replica -------------------------------------------------------- */

/* The current replica as it is now, or NULL with *why when it was dropped,
 * replaced, taken out of service or changed role. */
static struct sk_rep *sk_ck_cur_rep(struct sk_ckpt *c, char *why, size_t n)
{
    struct sk_rep *r = sk_rep_get(c->k, c->table, c->frag);
    if (!r)
        snprintf(why, n, "dropped");
    else if (r->f != c->f)
        snprintf(why, n, "replaced");
    else if (r->lost || r->oos[0])
        snprintf(why, n, "taken out of service");
    else if (kern_frag_role(r->f) != c->role)
        snprintf(why, n, "its role changed from %s to %s", kern_frag_role_name(c->role),
                 kern_frag_role_name(kern_frag_role(r->f)));
    else
        return r;
    return NULL;
}

/* Give the current checkpoint up — abandoned (dropped, role changed) or
 * failed — its temp file goes: never a partial file under the final name. */
static void sk_ck_abandon(struct sk_ckpt *c, const char *why, bool failed)
{
    if (failed) {
        NLOG_ERROR("kern", "checkpoint of table %u fragment %u failed: %s", c->table, c->frag,
                   why);
        c->r_failed++;
        c->failed++;
    } else {
        NLOG_INFO("kern", "checkpoint of table %u fragment %u abandoned: %s", c->table,
                  c->frag, why);
        c->r_abandoned++;
        c->abandoned++;
    }
    kern_ckpt_free(c->ck);
    c->ck = NULL;
    c->ph = SK_CK_DISCARD;
}

/* The replica is done with (complete, failed or abandoned). */
static void sk_ck_cur_clear(struct sk_ckpt *c)
{
    kern_ckpt_free(c->ck);
    c->ck = NULL;
    c->f = NULL;
    c->fd = -1;
    c->created = false;
    c->scanned = false;
    c->cur_dropped = false;
    c->ph = SK_CK_NEXT;
}

/* Take the round's next replica. false: the round is over. */
static bool sk_ck_next(struct sk_ckpt *c)
{
    while (c->next < c->nitems) {
        struct sk_ck_item it = c->items[c->next++];
        struct sk_rep *r = sk_rep_get(c->k, it.table, it.frag);
        if (!r || r->lost || r->oos[0]) {
            c->r_abandoned++; /* dropped or out of service since the round began */
            c->abandoned++;
            continue;
        }
        if (!sk_ck_eligible(r)) {
            c->r_skipped++;
            c->skipped++;
            continue;
        }
        struct sk_ck_rep *s = sk_ck_rep_of(c, r);
        if (!s) {
            c->r_failed++;
            c->failed++;
            sk_ck_note_error(c, NINES_ENOMEM, "no memory to checkpoint table %u fragment %u",
                             it.table, it.frag);
            continue;
        }
        c->table = it.table;
        c->frag = it.frag;
        c->f = r->f;
        c->role = kern_frag_role(r->f);
        c->anchor_lsn = s->nsamp ? s->samp[s->nsamp - 1].lsn : 0;
        c->wait_since = rt_now_us(c->k->rt);
        c->fd = -1;
        c->created = c->scanned = c->cur_dropped = false;
        c->written = 0;
        c->polls = 0;
        sk_ck_path(c, it.table, it.frag, c->path, sizeof c->path);
        c->ph = SK_CK_FLOOR;
        return true;
    }
    return false;
}

/* Begin the current replica's checkpoint: samples of it and of the
 * replicas still to come (their anchors), the redo start and its pin. */
static int sk_ck_begin(struct sk_ckpt *c, struct sk_rep *r)
{
    for (size_t i = c->next; i < c->nitems; i++) {
        const struct sk_rep *o = sk_rep_get(c->k, c->items[i].table, c->items[i].frag);
        if (o && sk_ck_eligible(o))
            sk_ck_sample(c, o);
    }
    sk_ck_sample(c, r); /* exact when no transaction is open here */
    int rc = kern_ckpt_begin(r->f, &c->ck);
    if (rc < 0)
        return rc;
    kern_ckpt_get_info(c->ck, &c->info);
    struct sk_ck_rep *s = sk_ck_rep_get(c, r->table, r->frag);
    c->cand_pin = s ? sk_ck_pin_for(s, c->info.redo_start_lsn) : 0;
    c->cand_gci = kern_frag_max_gci(r->f);
    c->gci_since = 0;
    c->ph = SK_CK_SCAN;
    c->polls = 0;
    return 0;
}

/* One slice of the scan within the turn's budget. */
static void sk_ck_scan(struct sk_ckpt *c, size_t *rows, size_t *bytes)
{
    while (!c->scanned && *rows && *bytes && kern_ckpt_pending(c->ck) < KSVC_CKPT_BUF_MAX) {
        size_t before = kern_ckpt_pending(c->ck);
        uint64_t recs = c->info.records;
        unsigned max = *rows > 4096 ? 4096u : (unsigned)*rows;
        int rc = kern_ckpt_step(c->ck, max);
        if (rc < 0) { /* no memory: this checkpoint fails, the next round tries again */
            sk_ck_note_error(c, rc, "checkpoint of table %u fragment %u: %s", c->table, c->frag,
                             nines_errdetail());
            sk_ck_abandon(c, c->error, true);
            return;
        }
        kern_ckpt_get_info(c->ck, &c->info);
        uint64_t did = c->info.records - recs;
        *rows = did >= *rows || (!did && rc == 1) ? 0 : *rows - did;
        size_t made = kern_ckpt_pending(c->ck) - before;
        *bytes = made >= *bytes ? 0 : *bytes - made;
        if (rc == 0) {
            struct sk_dlog_pos p;
            sk_dlog_pos(c->k, &p);
            c->scanned = true;
            c->end_stream = p.taken; /* every change the scan saw was published before */
        }
    }
}

/* The work of this turn for the round: replicas one after the other. */
static void sk_ck_work(struct sk_ckpt *c)
{
    size_t rows = KSVC_CKPT_STEP_ROWS, bytes = KSVC_CKPT_STEP_BYTES;
    char why[160];
    while (c->state == KSVC_CKPT_RUNNING) {
        switch (c->ph) {
        case SK_CK_NEXT:
            if (!sk_ck_next(c)) {
                sk_ck_round_end(c);
                sk_ck_kick(c); /* a request that came during the round */
                break;
            }
            continue;
        case SK_CK_FLOOR: {
            struct sk_rep *r = sk_ck_cur_rep(c, why, sizeof why);
            if (!r) {
                sk_ck_abandon(c, why, false);
                continue;
            }
            uint64_t now = rt_now_us(c->k->rt);
            if (kern_frag_undo_floor(r->f) < c->anchor_lsn &&
                now - c->wait_since < (uint64_t)KSVC_CKPT_FLOOR_WAIT_MS * 1000u) {
                sk_ck_arm_poll(c);
                return;
            }
            int rc = sk_ck_begin(c, r);
            if (rc < 0) {
                sk_ck_note_error(c, rc, "checkpoint of table %u fragment %u not begun: %s",
                                 c->table, c->frag, nines_errdetail());
                NLOG_ERROR("kern", "%s", c->error);
                c->r_failed++;
                c->failed++;
                sk_ck_cur_clear(c);
            }
            continue;
        }
        case SK_CK_SCAN: {
            if (!sk_ck_cur_rep(c, why, sizeof why)) {
                sk_ck_abandon(c, why, false);
                continue;
            }
            sk_ck_scan(c, &rows, &bytes);
            if (c->ph != SK_CK_SCAN)
                continue;
            sk_ck_pump(c);
            if (c->scanned && !c->busy) {
                c->ph = SK_CK_DURABLE; /* the rest goes with the finish */
                c->polls = 0;
                continue;
            }
            if (!c->scanned && (!rows || !bytes))
                sk_ck_arm_step(c, 0); /* the turn's share is spent */
            return;                   /* else: the I/O's completion resumes */
        }
        case SK_CK_DURABLE: {
            if (!sk_ck_cur_rep(c, why, sizeof why)) {
                sk_ck_abandon(c, why, false);
                continue;
            }
            struct sk_dlog_pos p;
            sk_dlog_pos(c->k, &p);
            if (!p.usable) {
                sk_ck_abandon(c, "the disk log has a gap: the records after the checkpoint "
                                 "are not all on disk", false);
                continue;
            }
            if (c->cand_pin < p.gap_stream) {
                snprintf(why, sizeof why, "its redo start (disk log stream %llu) lies before "
                         "the disk log's gap (ended at stream %llu)",
                         (unsigned long long)c->cand_pin, (unsigned long long)p.gap_stream);
                sk_ck_abandon(c, why, false);
                continue;
            }
            if (p.durable < c->end_stream) { /* the disk log catches up first */
                sk_ck_arm_poll(c);
                return;
            }
            if (c->k->gcp_on && c->k->restorable < c->cand_gci) {
                /* a whole-cluster restart keeps only restorable epochs: a
                 * checkpoint holding commits of a later one, whose records
                 * may lie before its redo start, could not be undone to it
                 * (README "Whole-cluster restart") */
                uint64_t now = rt_now_us(c->k->rt);
                if (!c->gci_since)
                    c->gci_since = now;
                if (now - c->gci_since >= (uint64_t)KSVC_CKPT_GCI_WAIT_MS * 1000u) {
                    snprintf(why, sizeof why, "its commit epoch %llu was not restorable within "
                             "%u ms (restorable: %llu)", (unsigned long long)c->cand_gci,
                             KSVC_CKPT_GCI_WAIT_MS, (unsigned long long)c->k->restorable);
                    sk_ck_abandon(c, why, false);
                    continue;
                }
                sk_ck_arm_poll(c);
                return;
            }
            sk_ck_pump(c); /* the finish */
            return;
        }
        case SK_CK_FINISH:
            return; /* its completion resumes */
        case SK_CK_DISCARD:
            sk_ck_pump(c);
            if (c->ph == SK_CK_DISCARD)
                return; /* its completion resumes */
            continue;
        default:
            NLOG_ERROR("kern", "checkpoint of table %u fragment %u in unknown phase %d",
                       c->table, c->frag, (int)c->ph);
            sk_ck_abandon(c, "unknown phase", true);
            continue;
        }
    }
    sk_ck_pump(c); /* between rounds: drops to remove */
}

/* ---- requests to the I/O thread ----------------------------------------- */

static int sk_ck_entry_find(const struct ksvc_ckpt_entry *e, size_t n, uint32_t table,
                            uint32_t frag, size_t *at)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (e[m].table < table || (e[m].table == table && e[m].frag < frag))
            lo = m + 1;
        else
            hi = m;
    }
    *at = lo;
    return lo < n && e[lo].table == table && e[lo].frag == frag;
}

/* The manifest after this request (`add` put in, the purged ones out)
 * encoded into the request; its entries kept in c->mf_next. */
static int sk_ck_mf_build(struct sk_ckpt *c, const struct ksvc_ckpt_entry *add, bool purge,
                          uint64_t add_pin)
{
    size_t n = c->mf.n;
    struct ksvc_ckpt_entry *e = malloc((n + 1) * sizeof *e);
    if (!e)
        return nines_err(NINES_ENOMEM, "no memory for a manifest of %zu entries", n + 1);
    if (n)
        memcpy(e, c->mf.e, n * sizeof *e);
    for (size_t i = 0; purge && i < c->npurge; i++) {
        size_t at;
        if (sk_ck_entry_find(e, n, c->purge[i].table, c->purge[i].frag, &at)) {
            memmove(e + at, e + at + 1, (n - at - 1) * sizeof *e);
            n--;
        }
    }
    if (add) {
        size_t at;
        if (!sk_ck_entry_find(e, n, add->table, add->frag, &at)) {
            memmove(e + at + 1, e + at, (n - at) * sizeof *e);
            n++;
        }
        e[at] = *add;
    }
    struct sk_dlog_pos p;
    sk_dlog_pos(c->k, &p);
    uint64_t keep = 0;
    struct ksvc_ckpt_manifest m = {
        .node = c->k->self,
        .cluster = c->cluster,
        .seq = c->mf.seq + 1,
        .written_us = sk_ck_wall_us(),
        .dlog_keep = add ? (sk_ck_keep(c, true, add->table, add->frag, add_pin, &keep)
                                ? p.base + keep : 0)
                         : (sk_ck_keep(c, false, 0, 0, 0, &keep) ? p.base + keep : 0),
        .n = n,
        .e = e,
    };
    int rc = ksvc_ckpt_manifest_encode(&m, &c->io.mf, &c->io.mflen);
    if (rc < 0) {
        free(e);
        return rc;
    }
    free(c->mf_next);
    c->mf_next = e;
    c->mf_nnext = n;
    return 0;
}

static void sk_ck_submit(struct sk_ckpt *c)
{
    c->req = (struct rt_io_req){.fn = sk_ck_io_run, .arg = c, .svc = RT_SVC_KERN};
    c->busy = true;
    int rc = rt_io_submit(c->k->rt, &c->req);
    if (rc < 0) { /* cannot happen while the runtime runs */
        c->busy = false;
        NLOG_ERROR("kern", "checkpoint I/O not handed to the I/O thread: %s",
                   nines_errdetail());
    }
}

static void sk_ck_io_reset(struct sk_ckpt *c)
{
    free(c->io.buf);
    free(c->io.mf);
    free(c->io.rm);
    ksvc_ckpt_manifest_free(&c->io.mf_in);
    c->io = (struct sk_ck_io){.fd = -1, .fd_out = -1};
}

/* Hand the I/O thread what is due, if it is free: a discard, a purge,
 * a chunk of the scan, or the finish. */
static void sk_ck_pump(struct sk_ckpt *c)
{
    if (c->busy || c->state == KSVC_CKPT_LOADING || c->state == KSVC_CKPT_OFF)
        return;
    sk_ck_io_reset(c);
    struct sk_ck_io *io = &c->io;
    snprintf(io->path, sizeof io->path, "%s", c->path);
    io->fd = c->fd;
    bool discard = c->state == KSVC_CKPT_RUNNING && c->ph == SK_CK_DISCARD;
    size_t npurge = c->purge_hold ? 0 : c->npurge;
    if (discard) {
        if (c->created) {
            io->discard = true;
        } else if (!npurge) {
            sk_ck_cur_clear(c); /* nothing on disk */
            return;
        }
    }
    if (discard || npurge) { /* the dropped replicas' files and entries */
        if (npurge) {
            int rc = 0;
            bool listed = false;
            for (size_t i = 0; i < c->npurge; i++) {
                size_t at;
                listed |= sk_ck_entry_find(c->mf.e, c->mf.n, c->purge[i].table,
                                           c->purge[i].frag, &at) != 0;
            }
            if (listed)
                rc = sk_ck_mf_build(c, NULL, true, 0);
            io->rm = malloc(c->npurge * sizeof *io->rm);
            if (rc < 0 || !io->rm) {
                NLOG_ERROR("kern", "dropped replicas' checkpoints not removed: no memory");
                free(io->rm);
                io->rm = NULL;
                free(io->mf);
                io->mf = NULL;
            } else {
                memcpy(io->rm, c->purge, c->npurge * sizeof *io->rm);
                io->nrm = c->npurge;
                c->npurge = 0;
            }
        }
        if (io->discard || io->nrm)
            sk_ck_submit(c);
        else if (discard)
            sk_ck_cur_clear(c);
        return;
    }
    if (c->state != KSVC_CKPT_RUNNING)
        return;
    if (c->ph == SK_CK_SCAN && !c->scanned && kern_ckpt_pending(c->ck) >= KSVC_CKPT_CHUNK) {
        if (kern_ckpt_take(c->ck, &io->buf, &io->len) < 0)
            return;
        io->create = !c->created;
        c->written += io->len;
        sk_ck_submit(c);
        return;
    }
    if (c->ph != SK_CK_DURABLE)
        return;
    struct sk_dlog_pos p;
    sk_dlog_pos(c->k, &p);
    if (!p.usable || p.durable < c->end_stream || c->cand_pin < p.gap_stream)
        return; /* the DURABLE phase waits or abandons */
    if (kern_ckpt_take(c->ck, &io->buf, &io->len) < 0 || io->len < KERN_CKPT_TRAILER) {
        sk_ck_note_error(c, NINES_ENOMEM, "checkpoint of table %u fragment %u: its last "
                         "bytes were not taken (%zu pending)", c->table, c->frag, io->len);
        sk_ck_abandon(c, c->error, true);
        return;
    }
    kern_ckpt_get_info(c->ck, &c->info);
    uint32_t crc;
    memcpy(&crc, io->buf + io->len - sizeof crc, sizeof crc); /* the trailer's file CRC */
    struct ksvc_ckpt_entry e = {
        .table = c->table,
        .frag = c->frag,
        .redo_start_lsn = c->info.redo_start_lsn,
        .begin_lsn = c->info.begin_lsn,
        .dlog_pos = p.base + c->cand_pin,
        .created_us = c->info.created_us,
        .bytes = c->written + io->len,
        .records = c->info.records,
        .file_crc = crc,
        .role = (uint8_t)c->role,
    };
    for (size_t i = 0; i < c->npurge;) { /* an older replica of it, dropped: superseded */
        if (c->purge[i].table == c->table && c->purge[i].frag == c->frag)
            c->purge[i] = c->purge[--c->npurge];
        else
            i++;
    }
    int rc = sk_ck_mf_build(c, &e, false, c->cand_pin);
    if (rc < 0) {
        sk_ck_note_error(c, rc, "checkpoint of table %u fragment %u: %s", c->table, c->frag,
                         nines_errdetail());
        sk_ck_abandon(c, c->error, true);
        return;
    }
    io->create = !c->created;
    io->finish = true;
    c->written += io->len;
    c->ph = SK_CK_FINISH;
    sk_ck_submit(c);
}

/* The finish is durable: the manifest on disk names the new checkpoint. */
static void sk_ck_complete(struct sk_ckpt *c)
{
    free(c->mf.e);
    c->mf.e = c->mf_next;
    c->mf.n = c->mf_nnext;
    c->mf.seq++;
    c->mf_next = NULL;
    c->r_done++;
    c->done++;
    c->r_records += c->info.records;
    c->r_bytes += c->written;
    c->bytes += c->written;
    struct sk_ck_rep *s = sk_ck_rep_get(c, c->table, c->frag);
    if (s && s->f == c->f && !c->cur_dropped) {
        if (!s->have || c->cand_pin > s->pin)
            s->pin = c->cand_pin;
        s->have = true;
        s->done_us = rt_now_us(c->k->rt);
    }
    NLOG_DEBUG("kern", "checkpoint of table %u fragment %u: %llu records, %llu bytes, redo "
               "from LSN %llu (disk log stream %llu)", c->table, c->frag,
               (unsigned long long)c->info.records, (unsigned long long)c->written,
               (unsigned long long)c->info.redo_start_lsn, (unsigned long long)c->cand_pin);
    sk_ck_trim(c);
}

/* The load finished: adopt the manifest, then schedule. */
static void sk_ck_loaded(struct sk_ckpt *c, int rc)
{
    struct sk_ck_io *io = &c->io;
    if (rc < 0) {
        sk_ck_note_error(c, rc, "checkpoints off: %s", io->detail);
        NLOG_ERROR("kern", "%s", c->error);
        c->state = KSVC_CKPT_OFF;
        sk_ck_io_reset(c);
        sk_ck_answer(c, UINT64_MAX, NINES_ESTATE, c->error, false);
        return;
    }
    if (io->mf_rc == 0) {
        c->mf = io->mf_in;
        io->mf_in = (struct ksvc_ckpt_manifest){0};
        NLOG_INFO("kern", "checkpoint manifest in %s: %zu entries (write %llu)", c->dir,
                  c->mf.n, (unsigned long long)c->mf.seq);
    } else if (io->mf_rc != NINES_ENOTFOUND) {
        NLOG_ERROR("kern", "checkpoint manifest set aside as %s.bad, a new one is started: %s",
                   KSVC_CKPT_MF_NAME, io->mf_detail);
    }
    sk_ck_io_reset(c);
    c->state = KSVC_CKPT_IDLE;
    if (c->interval_ms)
        c->next_due = rt_now_us(c->k->rt) + (uint64_t)c->interval_ms * 1000u;
    sk_ck_kick(c);
    sk_ck_pump(c); /* replicas dropped meanwhile */
}

/* Put replicas whose removal failed back on the purge list. */
static void sk_ck_repurge(struct sk_ckpt *c, const struct sk_ck_item *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c->npurge == c->cappurge) {
            size_t cap = c->cappurge ? 2 * c->cappurge : 8;
            struct sk_ck_item *p = realloc(c->purge, cap * sizeof *p);
            if (!p) {
                NLOG_ERROR("kern", "checkpoint of table %u fragment %u not removed: no memory",
                           v[i].table, v[i].frag);
                continue;
            }
            c->purge = p;
            c->cappurge = cap;
        }
        c->purge[c->npurge++] = v[i];
    }
}

bool sk_ck_on_io_done(struct ksvc *k, struct rt_io_req *req)
{
    struct sk_ckpt *c = k->ck;
    if (!c || req != &c->req)
        return false;
    c->busy = false;
    struct sk_ck_io *io = &c->io;
    int rc = req->result;
    if (io->load) {
        sk_ck_loaded(c, rc);
        return true;
    }
    bool file = io->create || io->len || io->finish || io->discard;
    bool purge = io->nrm > 0 || (io->mf && !io->finish);
    if (file) { /* the temp file as the I/O thread left it (closed and removed on failure) */
        c->fd = io->fd_out;
        c->created = c->fd >= 0;
    }
    if (rc < 0) {
        sk_ck_note_error(c, rc, "%s", io->detail);
        NLOG_ERROR("kern", "checkpoint I/O in %s failed: %s", c->dir, io->detail);
        if (io->nrm) { /* again with the next round (not in a loop of failures) */
            sk_ck_repurge(c, io->rm, io->nrm);
            c->purge_hold = true;
        }
    } else if (purge) {
        if (io->mf) {
            free(c->mf.e);
            c->mf.e = c->mf_next;
            c->mf.n = c->mf_nnext;
            c->mf.seq++;
            c->mf_next = NULL;
        }
    }
    if (c->state == KSVC_CKPT_RUNNING) {
        switch (c->ph) {
        case SK_CK_FINISH:
            if (rc == 0) {
                sk_ck_complete(c);
            } else {
                c->r_failed++;
                c->failed++;
            }
            sk_ck_cur_clear(c);
            break;
        case SK_CK_SCAN:
            if (rc < 0 && file) /* a chunk failed: the temp file is gone already */
                sk_ck_abandon(c, io->detail, true);
            break;
        case SK_CK_DISCARD:
            if (!c->created)
                sk_ck_cur_clear(c);
            break;
        case SK_CK_NEXT:
        case SK_CK_FLOOR:
        case SK_CK_DURABLE:
            break;
        default:
            NLOG_ERROR("kern", "checkpoint I/O done in unknown phase %d", (int)c->ph);
            break;
        }
    }
    sk_ck_io_reset(c);
    if (purge && rc == 0)
        sk_ck_trim(c); /* the dropped replicas pin nothing any more */
    if (c->state == KSVC_CKPT_RUNNING)
        sk_ck_work(c); /* resumes the round, hands the I/O thread what is next */
    else
        sk_ck_pump(c);
    return true;
}

/* ---- events ------------------------------------------------------------- */

void sk_ck_on_timer(struct ksvc *k, uint64_t cookie)
{
    struct sk_ckpt *c = k->ck;
    if (!c)
        return;
    if (cookie == SK_TIMER_CKPT_DUE) {
        c->due_id = 0;
        sk_ck_kick(c);
        return;
    }
    c->step_armed = false; /* SK_TIMER_CKPT */
    switch (c->state) {
    case KSVC_CKPT_RUNNING:
        sk_ck_work(c);
        break;
    case KSVC_CKPT_IDLE:
        sk_ck_kick(c); /* waited for the disk log to open */
        break;
    case KSVC_CKPT_OFF:
    case KSVC_CKPT_LOADING:
        break;
    default:
        NLOG_ERROR("kern", "checkpoints in unknown state %d", (int)c->state);
        break;
    }
}

void ksvc_on_ckpt_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    struct sk_ckpt *c = k->ck;
    k->cur = m;
    char why[300];
    if (m->from >= NET_CONN_BASE && rt_client_role(rt, m->from) < NET_ROLE_ADMIN) {
        struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__CKPT_CONF);
        Nines__CkptConf *b = r ? RT_BODY(r, Nines__CkptConf, nines__ckpt_conf__init) : NULL;
        if (b) {
            b->node = k->self;
            b->error = NINES_EPERM;
            b->detail = (char *)"permission denied: a checkpoint round needs the admin role";
            (void)rt_send(rt, m->from, RT_SVC_APP, r);
        } else if (r) {
            rt_msg_free(rt, r);
        }
        k->cur = NULL;
        return;
    }
    if (!c || c->state == KSVC_CKPT_OFF) {
        if (c)
            snprintf(why, sizeof why, "node %u takes no checkpoints: %s", k->self, c->error);
        else
            snprintf(why, sizeof why, "node %u has no disk log (disk_log off, or no data "
                     "folder): there is nowhere to checkpoint to", k->self);
        if (c) {
            sk_ck_send(c, m->from, NINES_ESTATE, why, false);
        } else { /* no checkpointer to answer through */
            struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__CKPT_CONF);
            Nines__CkptConf *b = r ? RT_BODY(r, Nines__CkptConf, nines__ckpt_conf__init) : NULL;
            char *d = b ? rt_msg_alloc(r, strlen(why) + 1) : NULL;
            if (d) {
                memcpy(d, why, strlen(why) + 1);
                b->node = k->self;
                b->error = NINES_ESTATE;
                b->detail = d;
                (void)rt_send(rt, m->from, RT_SVC_APP, r);
            } else if (r) {
                rt_msg_free(rt, r);
            }
        }
        sk_after(k);
        k->cur = NULL;
        return;
    }
    struct sk_ck_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(why, sizeof why, "node %u: no memory to take a checkpoint request", k->self);
        sk_ck_send(c, m->from, NINES_ENOMEM, why, false);
    } else {
        w->from = m->from;
        w->round = c->seq + 1; /* a round that begins after the request */
        w->next = c->waiters;
        c->waiters = w;
        c->want = true;
        sk_ck_kick(c);
    }
    sk_after(k);
    k->cur = NULL;
}

void sk_ck_client_closed(struct ksvc *k, net_addr conn)
{
    struct sk_ckpt *c = k->ck;
    if (!c)
        return;
    struct sk_ck_waiter **pp = &c->waiters;
    while (*pp) {
        struct sk_ck_waiter *w = *pp;
        if (w->from == conn) {
            *pp = w->next;
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

void sk_ck_rep_dropped(struct ksvc *k, const struct sk_rep *r)
{
    struct sk_ckpt *c = k->ck;
    if (!c || c->state == KSVC_CKPT_OFF)
        return;
    struct sk_ck_rep *s = sk_ck_rep_get(c, r->table, r->frag);
    if (s) {
        sk_map_del(&c->reps, &s->node);
        free(s);
    }
    bool cur = c->state == KSVC_CKPT_RUNNING && c->table == r->table && c->frag == r->frag;
    if (cur) {
        switch (c->ph) {
        case SK_CK_FLOOR:
        case SK_CK_SCAN:
        case SK_CK_DURABLE:
            sk_ck_abandon(c, "dropped", false);
            break;
        case SK_CK_FINISH:  /* it completes; the purge below follows it */
        case SK_CK_DISCARD:
            break;
        case SK_CK_NEXT:
            cur = false;
            break;
        default:
            break;
        }
        if (cur)
            c->cur_dropped = true;
    }
    if (c->npurge == c->cappurge) {
        size_t cap = c->cappurge ? 2 * c->cappurge : 8;
        struct sk_ck_item *v = realloc(c->purge, cap * sizeof *v);
        if (!v) {
            NLOG_ERROR("kern", "checkpoint of table %u fragment %u not removed: no memory",
                       r->table, r->frag);
            return;
        }
        c->purge = v;
        c->cappurge = cap;
    }
    c->purge[c->npurge++] = (struct sk_ck_item){r->table, r->frag};
    if (c->state == KSVC_CKPT_RUNNING)
        sk_ck_arm_step(c, 0); /* the abandon and the purge, next turn */
    else
        sk_ck_pump(c);
}

uint64_t sk_ck_age_ms(const struct ksvc *k, const struct sk_rep *r)
{
    const struct sk_ckpt *c = k->ck;
    if (!c)
        return 0;
    struct sk_dlog_pos p;
    sk_dlog_pos(k, &p);
    if (!sk_ck_recoverable(c, r, p.gap_stream))
        return 0; /* none, or only one from before the disk log's last gap */
    const struct sk_ck_rep *s = sk_ck_rep_get(c, r->table, r->frag);
    return (rt_now_us(k->rt) - s->done_us) / 1000u + 1;
}

void ksvc_ckpt_status(const struct ksvc *k, struct ksvc_ckpt_status *out)
{
    memset(out, 0, sizeof *out);
    const struct sk_ckpt *c = k ? k->ck : NULL;
    if (!c)
        return;
    uint64_t now = rt_now_us(k->rt);
    out->state = c->state;
    out->interval_ms = c->interval_ms;
    out->rounds = c->rounds;
    out->done = c->done;
    out->abandoned = c->abandoned;
    out->skipped = c->skipped;
    out->failed = c->failed;
    out->bytes = c->bytes;
    out->last_age_ms = c->rounds && now > c->last_end ? (now - c->last_end) / 1000u : 0;
    out->last_duration_ms = c->last_duration / 1000u;
    out->last_bytes = c->last_bytes;
    out->last_records = c->last_records;
    out->trim_pos = c->trim_pos;
    struct sk_dlog_pos p;
    sk_dlog_pos(k, &p);
    out->removal_held = p.inherited && !sk_rc_settled(k);
    snprintf(out->error, sizeof out->error, "%s", c->error);
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    {
        const struct sk_rep *r = (const struct sk_rep *)nd;
        if (!sk_ck_pins(r))
            continue;
        const struct sk_ck_rep *s = sk_ck_rep_get(c, r->table, r->frag);
        if (!s || !s->have || s->f != r->f || s->pin < p.gap_stream) {
            out->missing++; /* none, or only one from before the disk log's last gap */
            continue;
        }
        uint64_t age = now > s->done_us ? (now - s->done_us) / 1000u : 0;
        if (age > out->oldest_age_ms)
            out->oldest_age_ms = age;
    }
}

void sk_ck_dlog_resumed(struct ksvc *k)
{
    struct sk_ckpt *c = k->ck;
    if (!c || c->state == KSVC_CKPT_OFF)
        return;
    c->gap_due = rt_now_us(k->rt); /* a round now (not after a whole interval) */
    if (c->state == KSVC_CKPT_IDLE)
        sk_ck_kick(c);
    /* RUNNING: the round goes on (its replicas begun after the resume count);
     * its end checks and starts another; LOADING: the load's end kicks */
}

/* ---- lifecycle ---------------------------------------------------------- */

int sk_ck_init(struct ksvc *k, const struct ksvc_config *cfg)
{
    if (!k->dl || !cfg->ckpt_dir || !cfg->ckpt_dir[0])
        return 0; /* checkpoints need the disk log (README "Checkpoints") */
    struct sk_ckpt *c = calloc(1, sizeof *c);
    if (!c)
        return nines_err(NINES_ENOMEM, "no memory for checkpoints");
    if (strlen(cfg->ckpt_dir) >= sizeof c->dir) {
        free(c);
        return nines_err(NINES_EINVAL, "checkpoint folder path of %zu bytes is too long (at "
                         "most %zu)", strlen(cfg->ckpt_dir), sizeof c->dir - 1);
    }
    int rc = sk_map_init(&c->reps, 64);
    if (rc < 0) {
        free(c);
        return rc;
    }
    snprintf(c->dir, sizeof c->dir, "%s", cfg->ckpt_dir);
    c->k = k;
    c->cluster = cfg->dlog_cluster;
    c->interval_ms = cfg->ckpt_interval_ms;
    c->state = KSVC_CKPT_LOADING;
    c->ph = SK_CK_NEXT;
    c->fd = -1;
    c->io = (struct sk_ck_io){.fd = -1, .fd_out = -1};
    k->ck = c;
    return 0;
}

void sk_ck_start(struct ksvc *k)
{
    struct sk_ckpt *c = k->ck;
    if (!c || c->state != KSVC_CKPT_LOADING || c->busy)
        return;
    sk_ck_io_reset(c);
    c->io.load = true;
    sk_ck_submit(c);
}

void sk_ck_fini(struct ksvc *k)
{
    struct sk_ckpt *c = k->ck;
    if (!c)
        return;
    /* after rt_destroy: the I/O thread is gone; a temp file left here is
     * removed at the next start */
    if (c->fd >= 0)
        close(c->fd);
    if (c->io.fd_out >= 0 && c->io.fd_out != c->fd)
        close(c->io.fd_out);
    kern_ckpt_free(c->ck);
    sk_ck_io_reset(c);
    while (c->waiters) {
        struct sk_ck_waiter *w = c->waiters;
        c->waiters = w->next;
        free(w);
    }
    if (c->reps.bk)
        SK_MAP_FOREACH(&c->reps, i, nd, nx)
        free(nd);
    sk_map_free(&c->reps);
    free(c->items);
    free(c->purge);
    free(c->mf.e);
    free(c->mf_next);
    free(c);
    k->ck = NULL;
}
