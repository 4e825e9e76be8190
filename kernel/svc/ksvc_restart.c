/* Kernel service: a whole-cluster restart (README "Whole-cluster restart").
 * Asked by the supervisor (KSVC_MSG_RECOVER) while the node-set protocol
 * bootstraps after every node stopped, the service recovers every replica
 * the dictionary places on this node from its own checkpoints and disk log
 * on the I/O thread (ksvc_recover_all), and reports (KSVC_MSG_RECOVERED).
 * At the install of the restart set (rt_nodeset.restart) a current node
 * adopts them as primaries, undoing every transaction whose commit the
 * restart does not keep (ksvc_recover_finish); a node that is not current
 * drops them (it is rebuilt from the current ones). */
#include "ksvc_int.h"

#include "common/crc32c.h"
#include "common/nfile.h"
#include "common/nle.h"
#include "kernel/kern_dlog.h"
#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum sk_rc_state {
    SK_RC_IDLE = 0,   /* not asked */
    SK_RC_RUNNING,    /* the recovery request is on the I/O thread */
    SK_RC_DONE,       /* recovered (or not): waiting for the restart set */
    SK_RC_OVER,       /* adopted or dropped: nothing held any more */
};

struct sk_rc {
    struct ksvc *k;
    enum sk_rc_state st;
    char ckpt_dir[1024];
    char log_dir[1024];
    struct kern_dlog_opts o;
    uint64_t cluster;
    uint64_t floor;
    struct rt_io_req req;
    struct ksvc_rc_rep *reps;   /* per replica placed here (sorted on the I/O thread) */
    struct sk_rep **sreps;      /* ... its sk_rep, matched by (table, frag) after */
    size_t n;
    uint64_t began_wall_us;
    struct ksvc_recovery_info info;
    /* the durable bound file (<ckpt>/durable.nkd): one write in flight */
    struct rt_io_req bio;
    bool bbusy;
    uint64_t blast_us;          /* the last write began (executor clock) */
    struct ksvc_rc_bound bwant; /* the newest bound to write */
    uint8_t bimg[KSVC_RC_BOUND_BYTES];
    int brc;
    char bwhy[1200];
    uint64_t bound_pos;         /* read at recovery (0: none) */
};

/* ---- the durable bound file ----
 *   0  8  magic "NINESDUR"        24  8  gci (the restorable epoch)
 *   8  2  version 1               32  8  pos (a disk log position durable then)
 *  10  2  bytes 56                40  8  written_us (wall clock, informational)
 *  12  4  node                    48  4  reserved, 0
 *  16  8  cluster identity        52  4  CRC-32C of bytes 0..52 */
enum { BD_MAGIC = 0, BD_VERSION = 8, BD_BYTES = 10, BD_NODE = 12, BD_CLUSTER = 16, BD_GCI = 24,
       BD_POS = 32, BD_WRITTEN = 40, BD_RSVD = 48, BD_CRC = 52 };
_Static_assert(BD_CRC + 4 == KSVC_RC_BOUND_BYTES, "the bound file is 56 bytes");

void ksvc_rc_bound_encode(const struct ksvc_rc_bound *b, uint32_t node, uint64_t cluster,
                          uint8_t out[KSVC_RC_BOUND_BYTES])
{
    memset(out, 0, KSVC_RC_BOUND_BYTES);
    memcpy(out + BD_MAGIC, "NINESDUR", 8);
    nle_put16(out + BD_VERSION, 1);
    nle_put16(out + BD_BYTES, KSVC_RC_BOUND_BYTES);
    nle_put32(out + BD_NODE, node);
    nle_put64(out + BD_CLUSTER, cluster);
    nle_put64(out + BD_GCI, b->gci);
    nle_put64(out + BD_POS, b->pos);
    nle_put64(out + BD_WRITTEN, b->written_us);
    nle_put32(out + BD_CRC, crc32c(0, out, BD_CRC));
}

int ksvc_rc_bound_decode(const uint8_t *b, size_t len, uint32_t node, uint64_t cluster,
                         struct ksvc_rc_bound *out)
{
    memset(out, 0, sizeof *out);
    if (len < KSVC_RC_BOUND_BYTES)
        return nines_err(NINES_ETRUNC, "durable bound file of %zu bytes, %u expected", len,
                         KSVC_RC_BOUND_BYTES);
    if (memcmp(b + BD_MAGIC, "NINESDUR", 8) != 0)
        return nines_err(NINES_ECORRUPT, "durable bound file: bad magic");
    uint32_t want = nle_get32(b + BD_CRC), got = crc32c(0, b, BD_CRC);
    if (want != got)
        return nines_err(NINES_ECORRUPT, "durable bound file: CRC-32C 0x%08x, stored 0x%08x",
                         got, want);
    if (nle_get16(b + BD_VERSION) != 1)
        return nines_err(NINES_EVERSION, "durable bound file version %u, this build reads 1",
                         nle_get16(b + BD_VERSION));
    if (len != KSVC_RC_BOUND_BYTES || nle_get16(b + BD_BYTES) != KSVC_RC_BOUND_BYTES ||
        nle_get32(b + BD_RSVD))
        return nines_err(NINES_ECORRUPT, "durable bound file: %zu bytes, header says %u, "
                         "reserved 0x%08x", len, nle_get16(b + BD_BYTES),
                         nle_get32(b + BD_RSVD));
    if (nle_get32(b + BD_NODE) != node || nle_get64(b + BD_CLUSTER) != cluster)
        return nines_err(NINES_EINVAL, "durable bound file of node %u, cluster %016llx; this "
                         "is node %u of cluster %016llx", nle_get32(b + BD_NODE),
                         (unsigned long long)nle_get64(b + BD_CLUSTER), node,
                         (unsigned long long)cluster);
    out->gci = nle_get64(b + BD_GCI);
    out->pos = nle_get64(b + BD_POS);
    out->written_us = nle_get64(b + BD_WRITTEN);
    return 0;
}

static int rc_bound_io(void *arg)
{
    struct sk_rc *c = arg;
    char path[sizeof c->ckpt_dir + 32];
    snprintf(path, sizeof path, "%s/durable.nkd", c->ckpt_dir);
    int rc = nfile_replace(path, c->bimg, sizeof c->bimg, 0600);
    if (rc < 0)
        snprintf(c->bwhy, sizeof c->bwhy, "%s", nines_errdetail());
    return rc;
}

static void rc_bound_submit(struct ksvc *k)
{
    struct sk_rc *c = k->rc;
    ksvc_rc_bound_encode(&c->bwant, k->self, c->cluster, c->bimg);
    c->bio = (struct rt_io_req){.fn = rc_bound_io, .arg = c, .svc = RT_SVC_KERN};
    c->blast_us = rt_now_us(k->rt);
    if (rt_io_submit(k->rt, &c->bio) == 0)
        c->bbusy = true;
}

void sk_rc_saved(struct ksvc *k, uint64_t gci)
{
    struct sk_rc *c = k->rc;
    if (!c)
        return;
    struct sk_dlog_pos p;
    sk_dlog_pos(k, &p);
    if (!p.usable || !p.open || p.durable < p.gap_stream)
        return; /* no position to name (a gap) */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* durable now: the epoch's records (the SAVE waited for them) and more */
    c->bwant = (struct ksvc_rc_bound){gci, p.base + p.durable,
                                      (uint64_t)ts.tv_sec * 1000000u +
                                          (uint64_t)ts.tv_nsec / 1000u};
    if (c->bbusy || rt_now_us(k->rt) - c->blast_us < (uint64_t)KSVC_RC_BOUND_MS * 1000u)
        return; /* the next epoch writes a newer one */
    rc_bound_submit(k);
}

static uint64_t rc_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int sk_rc_init(struct ksvc *k, const struct ksvc_config *cfg)
{
    if (!cfg->dlog_dir || !cfg->dlog_dir[0] || !cfg->ckpt_dir || !cfg->ckpt_dir[0])
        return 0;
    struct sk_rc *c = calloc(1, sizeof *c);
    if (!c)
        return nines_err(NINES_ENOMEM, "no memory for restart recovery");
    if (strlen(cfg->ckpt_dir) >= sizeof c->ckpt_dir) {
        free(c);
        return nines_err(NINES_EINVAL, "checkpoint folder path of %zu bytes is too long",
                         strlen(cfg->ckpt_dir));
    }
    c->k = k;
    c->cluster = cfg->dlog_cluster;
    snprintf(c->ckpt_dir, sizeof c->ckpt_dir, "%s", cfg->ckpt_dir);
    k->rc = c;
    return 0;
}

static void rc_free_reps(struct sk_rc *c)
{
    for (size_t i = 0; i < c->n; i++) {
        ksvc_rc_rep_clear(&c->reps[i]);
        if (c->sreps && c->sreps[i])
            sk_rep_free(c->sreps[i]);
    }
    free(c->reps);
    free(c->sreps);
    c->reps = NULL;
    c->sreps = NULL;
    c->n = 0;
}

void sk_rc_fini(struct ksvc *k)
{
    if (!k->rc)
        return;
    /* RUNNING here: the runtime was destroyed first, its I/O thread joined,
     * the completion never handled; the request's memory is ours again */
    rc_free_reps(k->rc);
    free(k->rc);
    k->rc = NULL;
}

static void rc_report(struct sk_rc *c)
{
    struct rt_msg *m = rt_msg_new(c->k->rt, KSVC_MSG_RECOVERED);
    if (!m) {
        NLOG_ERROR("kern", "cannot tell the supervisor the recovery's outcome: no memory");
        return;
    }
    m->cookie = (uint64_t)c->info.state;
    rt_post_local(c->k->rt, RT_SVC_SUP, m);
}

/* On the I/O thread: the manifest, then every replica. */
static int rc_io(void *arg)
{
    struct sk_rc *c = arg;
    struct ksvc_ckpt_manifest mf;
    memset(&mf, 0, sizeof mf);
    int rc = ksvc_ckpt_manifest_read(c->ckpt_dir, c->k->self, c->cluster, &mf);
    if (rc < 0 && rc != NINES_ENOTFOUND) {
        /* a damaged manifest names nothing: every replica from the log alone
         * (which then must hold it from LSN 1) */
        NLOG_ERROR("kern", "restart recovery: the checkpoint manifest in %s is not usable: %s",
                   c->ckpt_dir, nines_errdetail());
    }
    for (size_t i = 0; i < c->n; i++) {
        struct ksvc_rc_rep *x = &c->reps[i];
        for (uint32_t j = 0; rc == 0 && j < mf.n; j++)
            if (mf.e[j].table == x->table && mf.e[j].frag == x->frag) {
                x->has_entry = true;
                x->e = mf.e[j];
            }
    }
    ksvc_ckpt_manifest_free(&mf);
    char path[sizeof c->ckpt_dir + 32];
    snprintf(path, sizeof path, "%s/durable.nkd", c->ckpt_dir);
    uint8_t *buf = NULL;
    size_t len = 0;
    struct ksvc_rc_bound b = {0};
    rc = nfile_read_all(path, 4096, &buf, &len);
    if (rc == 0) {
        rc = ksvc_rc_bound_decode(buf, len, c->k->self, c->cluster, &b);
        free(buf);
        if (rc < 0) {
            /* a damaged bound cannot vouch for the log: every replica fails
             * (the other site's disks are used) */
            char why[sizeof c->reps[0].why];
            snprintf(why, sizeof why, "durable.nkd: %s", nines_errdetail());
            for (size_t i = 0; i < c->n; i++)
                if (!c->reps[i].rc) {
                    c->reps[i].rc = NINES_ECORRUPT;
                    snprintf(c->reps[i].why, sizeof c->reps[i].why, "%s", why);
                }
            return 0;
        }
    }
    c->bound_pos = b.pos;
    return ksvc_recover_all(c->ckpt_dir, c->log_dir, &c->o, c->reps, c->n, c->floor, b.pos);
}

void sk_rc_start(struct ksvc *k, uint64_t floor_gci)
{
    struct sk_rc *c = k->rc;
    const char *dir = c ? sk_dlog_dir(k, &c->o) : NULL;
    if (!c || !dir) {
        /* no disk log: nothing of this node survived its process */
        struct ksvc_recovery_info none = {.state = KSVC_RC_NOTHING};
        snprintf(none.detail, sizeof none.detail, "node %u has no disk log", k->self);
        struct rt_msg *m = rt_msg_new(k->rt, KSVC_MSG_RECOVERED);
        if (m) {
            m->cookie = KSVC_RC_NOTHING;
            rt_post_local(k->rt, RT_SVC_SUP, m);
        }
        return;
    }
    switch (c->st) {
    case SK_RC_IDLE:
        break;
    case SK_RC_RUNNING:
        return; /* the answer comes */
    case SK_RC_DONE:
    case SK_RC_OVER:
        rc_report(c); /* asked again: the same answer */
        return;
    default:
        N_ASSERT(!"bad restart recovery state");
        return;
    }
    snprintf(c->log_dir, sizeof c->log_dir, "%s", dir);
    c->floor = floor_gci;
    const struct dict *d = k->dict(k->dict_ctx);
    size_t n = 0;
    for (uint32_t ti = 0; d && ti < d->ntables; ti++)
        for (uint32_t f = 0; f < d->tables[ti]->nfrags; f++) {
            const struct dict_frag *p = &d->tables[ti]->frags[f];
            if (p->primary == k->self || p->standby == k->self)
                n++;
        }
    memset(&c->info, 0, sizeof c->info);
    c->info.replicas = (uint32_t)n;
    c->began_wall_us = rc_wall_us();
    c->reps = calloc(n ? n : 1, sizeof *c->reps);
    c->sreps = calloc(n ? n : 1, sizeof *c->sreps);
    if (!c->reps || !c->sreps) {
        rc_free_reps(c);
        c->info.state = KSVC_RC_FAILED;
        snprintf(c->info.detail, sizeof c->info.detail, "no memory for %zu replicas", n);
        c->st = SK_RC_DONE;
        rc_report(c);
        return;
    }
    size_t i = 0;
    for (uint32_t ti = 0; d && ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++) {
            const struct dict_frag *p = &t->frags[f];
            if (p->primary != k->self && p->standby != k->self)
                continue;
            struct ksvc_rc_rep *x = &c->reps[i];
            x->table = t->id;
            x->frag = f;
            struct sk_rep *r = NULL;
            int rc = sk_rep_new(t, f, KERN_FRAG_HOT_STANDBY, &r);
            if (rc < 0) {
                x->rc = rc;
                snprintf(x->why, sizeof x->why, "%s", nines_errdetail());
            } else if (p->standby == k->self && p->standby_state == DICT_REP_BUILDING) {
                /* it was being built: the other replica is the fragment's */
                x->rc = NINES_ESTATE;
                snprintf(x->why, sizeof x->why, "table %s fragment %u was still being built "
                         "here", t->def.name, f);
            }
            c->sreps[i] = r;
            x->f = r ? r->f : NULL;
            i++;
        }
    }
    c->n = i;
    if (c->n == 0) {
        rc_free_reps(c);
        c->info.state = KSVC_RC_NOTHING;
        snprintf(c->info.detail, sizeof c->info.detail, "no replica is placed on node %u",
                 k->self);
        c->st = SK_RC_DONE;
        rc_report(c);
        return;
    }
    /* the I/O thread sorts reps: keep sk_rep pointers matched by table and
     * fragment afterwards (rc_match) */
    c->req = (struct rt_io_req){.fn = rc_io, .arg = c, .svc = RT_SVC_KERN};
    c->st = SK_RC_RUNNING;
    NLOG_INFO("kern", "node %u: whole-cluster restart: recovering %zu replicas from %s and %s",
              k->self, c->n, c->ckpt_dir, c->log_dir);
    int rc = rt_io_submit(k->rt, &c->req);
    if (rc < 0) {
        c->st = SK_RC_DONE;
        c->info.state = KSVC_RC_FAILED;
        snprintf(c->info.detail, sizeof c->info.detail, "cannot start the recovery: %s",
                 nines_errdetail());
        rc_free_reps(c);
        rc_report(c);
    }
}

/* After the sort: sreps[i] is the sk_rep whose frag is reps[i].f. */
static void rc_match(struct sk_rc *c)
{
    struct sk_rep **m = calloc(c->n, sizeof *m);
    if (!m)
        return; /* the rc_free path tolerates the old order: it frees each once */
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->n; j++)
            if (c->sreps[j] && c->sreps[j]->f == c->reps[i].f) {
                m[i] = c->sreps[j];
                break;
            }
    free(c->sreps);
    c->sreps = m;
}

bool sk_rc_on_io_done(struct ksvc *k, struct rt_io_req *req)
{
    struct sk_rc *c = k->rc;
    if (c && req == &c->bio) {
        c->bbusy = false;
        if (req->result < 0)
            NLOG_ERROR("kern", "node %u: the durable bound file in %s was not written: %s",
                       k->self, c->ckpt_dir, c->bwhy);
        return true;
    }
    if (!c || req != &c->req)
        return false;
    N_ASSERT(c->st == SK_RC_RUNNING);
    c->st = SK_RC_DONE;
    rc_match(c);
    c->info.ms = (rc_wall_us() - c->began_wall_us) / 1000u;
    for (size_t i = 0; i < c->n; i++) {
        struct ksvc_rc_rep *x = &c->reps[i];
        if (x->rc) {
            if (!c->info.failed)
                snprintf(c->info.detail, sizeof c->info.detail, "%s", x->why);
            c->info.failed++;
            NLOG_ERROR("kern", "node %u: whole-cluster restart: table %u fragment %u not "
                       "recovered: %s", k->self, x->table, x->frag, x->why);
            continue;
        }
        c->info.recovered++;
        c->info.rows += x->info.records_loaded;
        c->info.redone += x->info.redo_applied;
        c->info.late += x->nlate;
    }
    c->info.state = c->info.failed ? KSVC_RC_FAILED : KSVC_RC_OK;
    NLOG_INFO("kern", "node %u: whole-cluster restart: %u of %u replicas recovered (%llu rows "
              "from checkpoints, %llu records redone, %llu commits of epochs above %llu to "
              "decide) in %llu ms%s%s", k->self, c->info.recovered, c->info.replicas,
              (unsigned long long)c->info.rows, (unsigned long long)c->info.redone,
              (unsigned long long)c->info.late, (unsigned long long)c->floor,
              (unsigned long long)c->info.ms, c->info.failed ? "; first failure: " : "",
              c->info.failed ? c->info.detail : "");
    rc_report(c);
    return true;
}

/* The restart set is installed: adopt (current) or drop (not current). */
void sk_rc_nodeset(struct ksvc *k, const struct dict *d)
{
    struct sk_rc *c = k->rc;
    const struct rt_nodeset *ns = rt_nodeset(k->rt);
    if (!c || c->st != SK_RC_DONE)
        return;
    if (!ns->restart) {
        /* a set that is not the restart's (this node joined a running
         * cluster after all): what was recovered is not needed */
        rc_free_reps(c);
        c->st = SK_RC_OVER;
        return;
    }
    bool current = (ns->current & ((uint64_t)1 << (k->self - 1))) != 0;
    c->info.restart_gci = ns->restart_gci;
    if (!current) {
        NLOG_INFO("kern", "node %u: whole-cluster restart at epoch %llu: this node is not "
                  "current; its %zu recovered replicas are dropped (rebuilt from the current "
                  "ones)", k->self, (unsigned long long)ns->epoch, c->n);
        rc_free_reps(c);
        c->st = SK_RC_OVER;
        return;
    }
    struct dict_live live = sk_live(k);
    uint32_t adopted = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct ksvc_rc_rep *x = &c->reps[i];
        struct sk_rep *r = c->sreps ? c->sreps[i] : NULL;
        if (!r || x->rc || sk_rep_get(k, x->table, x->frag))
            continue;
        const struct dict_table *t = dict_table_by_id(d, x->table);
        struct dict_roles ro;
        if (!t || x->frag >= t->nfrags || dict_frag_roles_live(d, t, x->frag, &live, &ro) ||
            ro.primary != k->self)
            continue; /* not this node's to serve: sk_reconcile decides */
        uint64_t undone = 0;
        sk_dlog_attach(k, r); /* the undo's records, and all after, go to the disk log */
        int rc = ksvc_recover_finish(r->f, x, ns->restart_gci, &undone);
        if (rc == 0) {
            r->ro = ro;
            r->ro_epoch = ns->epoch;
            r->role = KERN_FRAG_PRIMARY;
            rc = kern_lock_set_role(k->locks, x->table, x->frag, KERN_LOCK_PRIMARY);
        }
        if (rc < 0) {
            NLOG_ERROR("kern", "node %u: whole-cluster restart: table %u fragment %u cannot be "
                       "served from its recovered state: %s", k->self, x->table, x->frag,
                       nines_errdetail());
            continue; /* sk_reconcile makes it lost */
        }
        c->info.undone += undone;
        r->seen = true;
        r->lost = false;
        sk_map_put(&k->reps, &r->node);
        c->sreps[i] = NULL; /* the service owns it now */
        adopted++;
    }
    c->info.adopted = true;
    NLOG_INFO("kern", "node %u: whole-cluster restart at epoch %llu keeps the commits of epochs "
              "up to %llu: %u replicas serve as primaries, %llu transactions undone", k->self,
              (unsigned long long)ns->epoch, (unsigned long long)ns->restart_gci, adopted,
              (unsigned long long)c->info.undone);
    rc_free_reps(c);
    c->st = SK_RC_OVER;
}

void ksvc_recovery(const struct ksvc *k, struct ksvc_recovery_info *out)
{
    if (!k || !k->rc) {
        memset(out, 0, sizeof *out);
        out->state = KSVC_RC_NOTHING;
        return;
    }
    *out = k->rc->info;
}

bool sk_rc_settled(const struct ksvc *k)
{
    if (rt_nodeset(k->rt)->epoch == 0)
        return false;
    return !k->rc || (k->rc->st != SK_RC_RUNNING && k->rc->st != SK_RC_DONE);
}
