/* Kernel service: replica digests (KERN_DIGEST_REQ), computed a bounded
 * number of rows per executor turn so that a status request never holds
 * the executor long enough for the watchdog (README "Digests"). */
#include "ksvc_int.h"

#include "nines/errors.h"
#include "nlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SK_FNV_OFF 0xcbf29ce484222325ull
#define SK_FNV_PRIME 0x100000001b3ull

/* One replica of a digest job. */
struct sk_dg_rep {
    struct sk_rep *r;           /* NULL: dropped while the job ran, left out */
    uint32_t table, frag;
};

/* A digest request being answered: its replicas in a fixed order, the one
 * being digested now, and where that one stopped (the last key hashed).
 * Jobs are a FIFO (k->dg_head); each turn's work goes to the head, which
 * then moves to the tail, so concurrent requests share the turns. */
struct sk_digest {
    struct sk_digest *next;
    net_addr from;              /* the requester: the answer goes to its RT_SVC_APP */
    struct rt_msg *conf;        /* KERN_DIGEST_CONF under construction (ours until sent) */
    Nines__ReplicaDigest *ds;   /* conf's entries, parallel to reps */
    struct sk_dg_rep *reps;
    size_t n, cur;
    bool started;               /* reps[cur]: rows hashed, key[0..klen) the last of them */
    uint64_t h, rows;
    size_t klen;
    uint8_t key[KERN_KEY_MAX];
    struct kern_bt_cursor c;    /* re-initialized every turn: the tree may be gone */
};

static uint64_t sk_fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= SK_FNV_PRIME;
    }
    return h;
}

static void sk_dg_free(struct ksvc *k, struct sk_digest *j, bool rt_alive)
{
    if (j->conf) {
        if (rt_alive) {
            rt_msg_free(k->rt, j->conf);
        } else { /* after rt_destroy: release directly */
            arena_destroy(&j->conf->arena);
            free(j->conf);
        }
    }
    free(j->reps);
    free(j);
}

void sk_dg_arm(struct ksvc *k)
{
    if (k->dg_armed || !k->dg_head)
        return;
    /* a timer, not a local message: a fired timer is handled in the next
     * loop turn, a local message in this one (the turn would not end) */
    if (rt_timer_add(k->rt, RT_SVC_KERN, 0, SK_TIMER_DIGEST) > 0)
        k->dg_armed = true; /* else: again at the end of the next kernel handler */
}

/* Send j's answer: the replicas that still exist, in j's order. */
static void sk_dg_answer(struct ksvc *k, struct sk_digest *j)
{
    Nines__KernDigestConf *c = (Nines__KernDigestConf *)j->conf->body;
    size_t m = 0, dropped = 0;
    for (size_t i = 0; i < j->n; i++) {
        if (j->reps[i].r)
            c->replicas[m++] = &j->ds[i];
        else
            dropped++;
    }
    c->n_replicas = m;
    if (dropped)
        NLOG_INFO("kern", "digest for %llu: %zu of %zu replicas were dropped while it ran and "
                  "are left out", (unsigned long long)j->from, dropped, j->n);
    struct rt_msg *r = j->conf;
    j->conf = NULL;
    (void)rt_send(k->rt, j->from, RT_SVC_APP, r); /* a requester gone: nobody to tell */
    k->st.digests_done++;
}

/* reps[cur] is complete: its entry, then the next replica. */
static void sk_dg_rep_done(struct ksvc *k, struct sk_digest *j)
{
    const struct sk_rep *r = j->reps[j->cur].r;
    Nines__ReplicaDigest *d = &j->ds[j->cur];
    nines__replica_digest__init(d);
    d->table = r->table;
    d->frag = r->frag;
    /* a primary claim only where this replica is the fragment's primary in
     * the installed node set (not one left without a role), on a node that
     * may serve (a member, its lease holding) — as it is now, at the end */
    d->primary = kern_frag_role(r->f) == KERN_FRAG_PRIMARY && r->ro.primary == k->self &&
                 rt_serving(k->rt);
    d->epoch = rt_epoch(k->rt);
    d->rows = j->rows;
    d->digest = j->h;
    d->next_lsn = kern_log_next_lsn(kern_frag_log(r->f));
    struct ksvc_rep_info ri;
    if (ksvc_rep_info(k, r->table, r->frag, &ri) == 0) {
        d->ha = ri.ha;
        d->building = ri.building;
        d->source = ri.source;
        d->copy_bytes = ri.copy_bytes;
        d->copy_rows_done = ri.copy_rows_done;
        d->copy_rows_total = ri.copy_rows_total;
        d->elapsed_ms = ri.elapsed_ms;
        d->eta_ms = ri.eta_ms;
    }
    d->ckpt_age_ms = sk_ck_age_ms(k, r);
    if (r->ship && d->primary) {
        struct upd_ship_info si;
        upd_ship_info(r->ship, &si);
        uint64_t now = rt_now_us(k->rt);
        d->lag_ms = si.behind_since_us && now > si.behind_since_us
                        ? (now - si.behind_since_us) / 1000u
                        : 0;
    }
    j->cur++;
    j->started = false;
}

/* Hash rows of j until it is complete (true) or *budget rows / *bytes are
 * spent. Each replica's tree is entered afresh: first key, or the smallest
 * key above the last one hashed, so changes between turns are harmless
 * (the digest is then one of some interleaving of them). */
static bool sk_dg_run(struct ksvc *k, struct sk_digest *j, size_t *budget, size_t *bytes)
{
    while (j->cur < j->n) {
        struct sk_dg_rep *e = &j->reps[j->cur];
        if (!e->r) { /* dropped */
            j->cur++;
            j->started = false;
            continue;
        }
        if (*budget == 0 || *bytes == 0)
            return false;
        if (!j->started) {
            j->h = SK_FNV_OFF;
            j->rows = 0;
        }
        struct kern_bt_cursor *c = &j->c;
        kern_bt_cursor_init(c, kern_frag_tree(e->r->f));
        int rc = j->started ? kern_bt_seek_gt(c, j->key, j->klen) : kern_bt_first(c);
        j->started = true;
        for (; rc == 0; rc = kern_bt_next(c)) {
            uint32_t kl = (uint32_t)c->klen;
            size_t rb = kern_rec_bytes(c->rec); /* header incl. the state id */
            j->h = sk_fnv(j->h, &kl, sizeof kl);
            j->h = sk_fnv(j->h, c->key, c->klen);
            j->h = sk_fnv(j->h, c->rec, rb);
            j->rows++;
            (*budget)--;
            *bytes = *bytes > rb + kl ? *bytes - rb - kl : 0;
            if (*budget == 0 || *bytes == 0) { /* the turn's share is spent */
                memcpy(j->key, c->key, c->klen);
                j->klen = c->klen;
                return false;
            }
        }
        if (rc != NINES_ENOTFOUND) { /* not expected of a valid tree and key */
            NLOG_ERROR("kern", "digest of table %s fragment %u stopped: %s; left out",
                       e->r->tname, e->r->frag, nines_errdetail());
            e->r = NULL;
            j->cur++;
            j->started = false;
            continue;
        }
        sk_dg_rep_done(k, j);
    }
    return true;
}

void sk_dg_step(struct ksvc *k)
{
    size_t budget = KSVC_DIGEST_STEP_ROWS, bytes = KSVC_DIGEST_STEP_BYTES;
    if (k->dg_head)
        k->st.digest_steps++;
    while (k->dg_head && budget && bytes) {
        struct sk_digest *j = k->dg_head;
        k->dg_head = j->next;
        if (!k->dg_head)
            k->dg_tail = NULL;
        j->next = NULL;
        if (sk_dg_run(k, j, &budget, &bytes)) {
            sk_dg_answer(k, j);
            sk_dg_free(k, j, true);
            k->ndg--;
            continue;
        }
        if (k->dg_tail) /* not done: the others go first next turn */
            k->dg_tail->next = j;
        else
            k->dg_head = j;
        k->dg_tail = j;
    }
    sk_dg_arm(k);
}

static int sk_dg_rep_cmp(const void *a, const void *b)
{
    const struct sk_dg_rep *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    return x->frag < y->frag ? -1 : x->frag > y->frag;
}

/* A job for the replicas of `table` (0: all) held now, queued; answered at
 * once when there are none. */
static int sk_dg_start(struct ksvc *k, net_addr from, uint32_t table)
{
    if (k->ndg >= KSVC_DIGEST_JOBS_MAX) {
        k->st.digests_refused++;
        return nines_err(NINES_EAGAIN, "node %u is computing %u digests already, the most it "
                         "computes at once (KSVC_DIGEST_JOBS_MAX): ask again later", k->self,
                         k->ndg);
    }
    size_t n = 0;
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    n += !table || ((const struct sk_rep *)nd)->table == table;
    struct sk_digest *j = calloc(1, sizeof *j);
    Nines__KernDigestConf *c = NULL;
    if (j) {
        j->reps = calloc(n ? n : 1, sizeof *j->reps);
        j->conf = rt_msg_new(k->rt, NINES__MSG_TYPE__KERN_DIGEST_CONF);
    }
    if (j && j->conf)
        c = RT_BODY(j->conf, Nines__KernDigestConf, nines__kern_digest_conf__init);
    if (c && n) {
        c->replicas = rt_msg_alloc(j->conf, n * sizeof *c->replicas);
        j->ds = rt_msg_alloc(j->conf, n * sizeof *j->ds);
    }
    if (!c || !j->reps || (n && (!c->replicas || !j->ds))) {
        if (j)
            sk_dg_free(k, j, true);
        return nines_err(NINES_ENOMEM, "no memory for a digest of %zu replicas", n);
    }
    c->node = k->self;
    j->from = from;
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    {
        struct sk_rep *r = (struct sk_rep *)nd;
        if (!table || r->table == table)
            j->reps[j->n++] = (struct sk_dg_rep){r, r->table, r->frag};
    }
    qsort(j->reps, j->n, sizeof *j->reps, sk_dg_rep_cmp);
    if (j->n == 0) { /* nothing to hash */
        sk_dg_answer(k, j);
        sk_dg_free(k, j, true);
        return 0;
    }
    if (k->dg_tail)
        k->dg_tail->next = j;
    else
        k->dg_head = j;
    k->dg_tail = j;
    k->ndg++;
    sk_dg_arm(k); /* the work starts next turn */
    return 0;
}

/* The request cannot be taken: KERN_DIGEST_CONF with the error. */
static void sk_dg_refuse(struct ksvc *k, net_addr from, int err)
{
    const char *why = nines_errdetail();
    struct rt_msg *r = rt_msg_new(k->rt, NINES__MSG_TYPE__KERN_DIGEST_CONF);
    Nines__KernDigestConf *c =
        r ? RT_BODY(r, Nines__KernDigestConf, nines__kern_digest_conf__init) : NULL;
    char *d = c ? rt_msg_alloc(r, strlen(why) + 1) : NULL;
    if (!d) {
        if (r)
            rt_msg_free(k->rt, r);
        NLOG_ERROR("kern", "digest request from %llu refused (%s), and no memory to say so",
                   (unsigned long long)from, why);
        return;
    }
    memcpy(d, why, strlen(why) + 1);
    c->node = k->self;
    c->error = err;
    c->detail = d;
    (void)rt_send(k->rt, from, RT_SVC_APP, r);
}

void ksvc_on_digest_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    const Nines__KernDigestReq *q = (const Nines__KernDigestReq *)m->body;
    k->cur = m;
    int rc = m->from >= NET_CONN_BASE && rt_client_role(rt, m->from) < NET_ROLE_ADMIN
                 ? nines_err(NINES_EPERM, "permission denied: replica digests need the admin "
                             "role")
                 : sk_dg_start(k, m->from, q->table);
    if (rc < 0)
        sk_dg_refuse(k, m->from, rc);
    sk_after(k);
    k->cur = NULL;
}

void sk_dg_client_closed(struct ksvc *k, net_addr conn)
{
    struct sk_digest **pp = &k->dg_head;
    k->dg_tail = NULL;
    while (*pp) {
        struct sk_digest *j = *pp;
        if (j->from != conn) {
            k->dg_tail = j;
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        sk_dg_free(k, j, true);
        k->ndg--;
        k->st.digests_dropped++;
    }
}

void sk_dg_rep_dropped(struct ksvc *k, const struct sk_rep *r)
{
    for (struct sk_digest *j = k->dg_head; j; j = j->next)
        for (size_t i = 0; i < j->n; i++) /* digested already or not: left out */
            if (j->reps[i].r == r)
                j->reps[i].r = NULL;
}

void sk_dg_fini(struct ksvc *k)
{
    while (k->dg_head) {
        struct sk_digest *j = k->dg_head;
        k->dg_head = j->next;
        sk_dg_free(k, j, false);
    }
    k->dg_tail = NULL;
    k->ndg = 0;
}
