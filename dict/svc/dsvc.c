/* Distribution dictionary service, node side: the served dictionary and
 * its file (load at start, saves on the I/O thread), version exchange and
 * catch-up from peers, admin reads (DICT_GET) and the entry point of
 * changes (forwarding to the coordinator). The transaction itself is in
 * dsvc_tx.c. dict/svc/README.md. */
#include "dsvc_int.h"

#include "crc32c.h"
#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- helpers ------------------------------------------------------------ */

dict_liveset dsvc_live(const struct dsvc *d)
{
    const struct nines_conf *c = d->conf;
    dict_liveset live = DICT_LIVE(d->self);
    struct net_endpoint *ep = rt_net(d->rt);
    for (uint32_t i = 0; c && ep && i < c->nnodes; i++) {
        uint32_t id = c->nodes[i].id;
        if (id != d->self && id <= DICT_MAX_NODES && net_peer_reachable(ep, id))
            live |= DICT_LIVE(id);
    }
    return live;
}

uint32_t dsvc_coordinator(const struct dsvc *d)
{
    dict_liveset live = dsvc_live(d);
    for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
        if (live & DICT_LIVE(id))
            return id;
    return d->self;
}

uint32_t dsvc_digest(const struct dict *x)
{
    uint8_t *buf;
    size_t len;
    if (dict_encode(x, &buf, &len) < 0)
        return 0;
    uint32_t c = crc32c(0, buf, len);
    free(buf);
    return c;
}

/* Copy a malloc'd image into the message arena (the body must outlive the
 * call for a local destination). `pub`: without the users (what clients
 * get: verifiers never leave the nodes; dict/README.md "Users"). */
static bool img_to_msg(struct rt_msg *m, const struct dict *x, bool pub,
                       ProtobufCBinaryData *out)
{
    uint8_t *buf;
    size_t len;
    if ((pub ? dict_encode_public(x, &buf, &len) : dict_encode(x, &buf, &len)) < 0)
        return false;
    uint8_t *p = rt_msg_alloc(m, len);
    if (p)
        memcpy(p, buf, len);
    free(buf);
    if (!p)
        return false;
    out->data = p;
    out->len = len;
    return true;
}

/* ---- the published accessor and the install subscription ---------------- */

const struct dict *dsvc_current(const struct dsvc *d) { return &d->cur; }

const struct dict *dsvc_current_fn(void *ctx) { return dsvc_current(ctx); }

int dsvc_subscribe_install(struct dsvc *d, dsvc_install_fn fn, void *ctx)
{
    if (!fn)
        return nines_err(NINES_EINVAL, "dictionary install subscription without a function");
    if (d->nsubs >= DSVC_SUBS_MAX)
        return nines_err(NINES_EFULL, "more than %d dictionary install subscribers",
                         DSVC_SUBS_MAX);
    d->subs[d->nsubs++] = (struct dsvc_sub){fn, ctx};
    return 0;
}

static void notify_install(struct dsvc *d, bool live_commit)
{
    for (uint32_t i = 0; i < d->nsubs; i++)
        d->subs[i].fn(d->subs[i].ctx, &d->cur, live_commit);
}

/* ---- lifecycle ---------------------------------------------------------- */

static int dsvc_init(struct dsvc *d, struct rt *rt)
{
    memset(d, 0, sizeof *d);
    d->rt = rt;
    d->conf = rt_conf(rt);
    d->self = rt_self(rt);
    const struct nines_node_conf *self_conf = d->conf ? nines_conf_node(d->conf, d->self) : NULL;
    if (d->conf && !self_conf)
        return nines_err(NINES_ECONFIG, "node %u is not in %s", d->self, d->conf->path);
    d->site = self_conf ? self_conf->site : 0;
    d->tx = DSVC_DTX_IDLE;
    d->pt = DSVC_DPT_IDLE;
    d->fetch = DSVC_DFETCH_IDLE;
    d->save = DSVC_DSAVE_IDLE;
    const struct nines_conf *c = d->conf;
    struct dict_node nodes[DICT_MAX_NODES];
    uint32_t n = 0;
    for (uint32_t i = 0; c && i < c->nnodes && n < DICT_MAX_NODES; i++) {
        nodes[n].id = c->nodes[i].id;
        nodes[n].site = c->nodes[i].site;
        n++;
    }
    if (n == 0) {
        nodes[0].id = d->self ? d->self : 1;
        nodes[0].site = d->site;
        n = 1;
    }
    int rc = dict_init(&d->cur, nodes, n);
    if (rc)
        return rc;
    d->digest = dsvc_digest(&d->cur);
    const struct nines_node_conf *me = c ? nines_conf_node(c, d->self) : NULL;
    if (me && me->data_dir[0]) {
        if ((size_t)snprintf(d->path, sizeof d->path, "%s/%s", me->data_dir, DSVC_FILE) >=
            sizeof d->path)
            return nines_err(NINES_ECONFIG, "data folder '%s' of node %u is too long",
                             me->data_dir, d->self);
    }
    return 0;
}

/* After rt_destroy (the I/O thread has finished every queued save): frees
 * kept messages directly, the runtime is gone. */
static void msg_release(struct rt_msg *m)
{
    arena_destroy(&m->arena);
    free(m);
}

static void dsvc_fini(struct dsvc *d)
{
    dict_free(&d->cur);
    if (d->have_next)
        dict_free(&d->next);
    if (d->pt == DSVC_DPT_PREPARED)
        dict_free(&d->pt_next);
    free(d->img);
    d->img = NULL;
    while (d->q_head) {
        struct dsvc_req *r = d->q_head;
        d->q_head = r->next;
        msg_release(r->m);
        free(r);
    }
    if (d->req) {
        msg_release(d->req->m);
        free(d->req);
        d->req = NULL;
    }
}

/* Same node list as the cluster file? (A dictionary from another layout is
 * still served: only logged, see README.) */
static void check_nodes(struct dsvc *d, const struct dict *x, const char *src)
{
    const struct nines_conf *c = d->conf;
    if (!c)
        return;
    bool same = x->nnodes == c->nnodes;
    for (uint32_t i = 0; same && i < c->nnodes; i++) {
        bool found = false;
        for (uint32_t j = 0; j < x->nnodes; j++)
            if (x->nodes[j].id == c->nodes[i].id && x->nodes[j].site == c->nodes[i].site)
                found = true;
        same = found;
    }
    if (!same)
        NLOG_WARN("dict", "the dictionary from %s lists %u nodes that differ from the %u nodes "
                  "of %s; placements follow the dictionary", src, x->nnodes, c->nnodes, c->path);
}

static void dsvc_start(struct dsvc *d)
{
    if (!d->path[0]) {
        NLOG_INFO("dict", "node %u has no data folder: the dictionary is kept in memory only "
                  "(it is fetched from a peer after a restart)", d->self);
        d->saved_any = true;
    } else {
        struct stat st;
        const char *slash = strrchr(d->path, '/');
        char folder[300];
        snprintf(folder, sizeof folder, "%.*s", (int)(slash - d->path), d->path);
        if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode))
            NLOG_ERROR("dict", "data folder %s of node %u is missing: saving the dictionary "
                       "will fail until it exists", folder, d->self);
        struct dict x;
        int rc = dict_load(d->path, &x);
        if (rc == 0) {
            check_nodes(d, &x, d->path);
            NLOG_INFO("dict", "loaded dictionary version %llu (%u tables) from %s",
                      (unsigned long long)x.version, x.ntables, d->path);
            dict_free(&d->cur);
            d->cur = x;
            d->digest = dsvc_digest(&d->cur);
            d->saved_version = d->cur.version;
            d->saved_any = true;
        } else if (rc == NINES_ENOTFOUND) {
            NLOG_INFO("dict", "no dictionary file %s: starting empty at version 0", d->path);
        } else {
            char aside[320];
            snprintf(aside, sizeof aside, "%s.corrupt", d->path);
            NLOG_ERROR("dict", "dictionary file %s is corrupt and NOT used: %s (%s); starting "
                       "empty at version 0 and catching up from a peer; the bad file is kept "
                       "as %s", d->path, nines_strerror(rc), nines_errdetail(), aside);
            if (rename(d->path, aside) != 0)
                NLOG_WARN("dict", "cannot rename %s to %s: %s", d->path, aside, strerror(errno));
        }
    }
    notify_install(d, false); /* e.g. the kernel's replicas of the loaded dictionary */
    rt_timer_add(d->rt, RT_SVC_DICT, DSVC_SYNC_MS * 1000u,
                 DSVC_COOKIE(DSVC_DT_SYNC, 0));
}

/* ---- the file ----------------------------------------------------------- */

/* Runs on the I/O thread: owns img/img_len/img_rc/img_why until IO_DONE. */
static int save_on_io_thread(void *arg)
{
    struct dsvc *d = arg;
    int rc = dict_save_image(d->img, d->img_len, d->path);
    d->img_rc = rc;
    if (rc)
        snprintf(d->img_why, sizeof d->img_why, "%s", nines_errdetail());
    return rc;
}

static void send_commit_answer(struct dsvc *d, const struct dsvc_waiter *w, int rc,
                               const char *why)
{
    struct rt *rt = d->rt;
    if (rc == 0) {
        struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_COMMIT_CONF);
        Nines__DictCommitConf *b =
            r ? RT_BODY(r, Nines__DictCommitConf, nines__dict_commit_conf__init) : NULL;
        if (!b) {
            if (r)
                rt_msg_free(rt, r);
            return;
        }
        b->txn = w->txn;
        b->version = w->version;
        rt_send(rt, w->coord, RT_SVC_DICT, r);
    } else {
        struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_COMMIT_REF);
        Nines__DictCommitRef *b =
            r ? RT_BODY(r, Nines__DictCommitRef, nines__dict_commit_ref__init) : NULL;
        if (!b) {
            if (r)
                rt_msg_free(rt, r);
            return;
        }
        b->txn = w->txn;
        b->error = rc;
        b->reason = (char *)why;
        rt_send(rt, w->coord, RT_SVC_DICT, r);
    }
}

/* Answer the waiters whose version the last save settled. */
static void settle_waiters(struct dsvc *d, uint64_t upto, int rc, const char *why)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < d->nwaiters; i++) {
        if (d->waiters[i].version <= upto)
            send_commit_answer(d, &d->waiters[i], rc, why);
        else
            d->waiters[k++] = d->waiters[i];
    }
    d->nwaiters = k;
}

void dsvc_request_save(struct dsvc *d)
{
    if (!d->path[0]) {
        d->saved_version = d->cur.version;
        settle_waiters(d, d->saved_version, 0, NULL);
        dsvc_tx_on_saved(d);
        return;
    }
    switch (d->save) {
    case DSVC_DSAVE_RUNNING:
        return; /* IO_DONE sees the file behind and saves again */
    case DSVC_DSAVE_IDLE:
        break;
    default:
        N_ASSERT(!"bad save state");
        return;
    }
    int rc = dict_encode(&d->cur, &d->img, &d->img_len);
    if (rc) {
        NLOG_ERROR("dict", "cannot encode dictionary version %llu: %s",
                   (unsigned long long)d->cur.version, nines_errdetail());
        return;
    }
    d->img_version = d->cur.version;
    d->img_rc = 0;
    d->img_why[0] = '\0';
    d->io.fn = save_on_io_thread;
    d->io.arg = d;
    d->io.svc = RT_SVC_DICT;
    d->save = DSVC_DSAVE_RUNNING;
    rc = rt_io_submit(d->rt, &d->io);
    if (rc) {
        d->save = DSVC_DSAVE_IDLE;
        free(d->img);
        d->img = NULL;
        NLOG_ERROR("dict", "cannot submit the save of %s: %s", d->path, nines_errdetail());
        settle_waiters(d, d->cur.version, rc, "could not start saving the dictionary file");
    }
}

static bool dsvc_on_io_done(struct dsvc *d, struct rt_io_req *req)
{
    if (req != &d->io)
        return false;
    N_ASSERT(d->save == DSVC_DSAVE_RUNNING);
    d->save = DSVC_DSAVE_IDLE;
    free(d->img);
    d->img = NULL;
    if (d->img_rc == 0) {
        d->saved_version = d->img_version;
        d->saved_any = true;
        NLOG_DEBUG("dict", "saved dictionary version %llu to %s",
                   (unsigned long long)d->img_version, d->path);
        settle_waiters(d, d->img_version, 0, NULL);
    } else {
        char why[300];
        snprintf(why, sizeof why, "node %u could not save its dictionary file: %s", d->self,
                 d->img_why);
        NLOG_ERROR("dict", "saving dictionary version %llu failed: %s",
                   (unsigned long long)d->img_version, d->img_why);
        settle_waiters(d, d->img_version, d->img_rc, why);
    }
    if (d->cur.version != d->img_version && d->img_rc == 0)
        dsvc_request_save(d); /* changed while writing */
    else
        dsvc_tx_on_saved(d);
    return true;
}

void dsvc_install(struct dsvc *d, struct dict *nd, const char *why, bool live_commit)
{
    uint64_t old = d->cur.version;
    dict_free(&d->cur);
    d->cur = *nd;
    memset(nd, 0, sizeof *nd);
    d->digest = dsvc_digest(&d->cur);
    NLOG_INFO("dict", "dictionary version %llu -> %llu (%u tables): %s",
              (unsigned long long)old, (unsigned long long)d->cur.version, d->cur.ntables, why);
    notify_install(d, live_commit); /* e.g. the kernel creates/drops this node's replicas */
    dsvc_request_save(d);
}

/* ---- version exchange and catch-up ------------------------------------- */

void dsvc_send_version(struct dsvc *d, uint32_t node)
{
    struct rt_msg *m = rt_msg_new(d->rt, NINES__MSG_TYPE__DICT_VERSION_REQ);
    Nines__DictVersionReq *b =
        m ? RT_BODY(m, Nines__DictVersionReq, nines__dict_version_req__init) : NULL;
    if (!b) {
        if (m)
            rt_msg_free(d->rt, m);
        return;
    }
    b->version = d->cur.version;
    b->digest = d->digest;
    (void)rt_send(d->rt, node, RT_SVC_DICT, m); /* unreachable: the next round retries */
}

/* A peer told us its version: fetch when it is ahead, or when it is the
 * coordinator and holds a different dictionary under the same version. */
static void consider_peer(struct dsvc *d, uint32_t node, uint64_t version, uint32_t digest)
{
    if (version > d->cur.version) {
        char why[96];
        snprintf(why, sizeof why, "node %u has version %llu, this node %llu", node,
                 (unsigned long long)version, (unsigned long long)d->cur.version);
        dsvc_fetch_from(d, node, why);
    } else if (version == d->cur.version && digest != d->digest &&
               node == dsvc_coordinator(d)) {
        NLOG_WARN("dict", "dictionary version %llu differs from coordinator %u's (digest %08x, "
                  "ours %08x): taking the coordinator's", (unsigned long long)version, node,
                  digest, d->digest);
        dsvc_fetch_from(d, node, "diverged from the coordinator");
    }
}

static void sync_round(struct dsvc *d)
{
    const struct nines_conf *c = d->conf;
    struct net_endpoint *ep = rt_net(d->rt);
    for (uint32_t i = 0; c && ep && i < c->nnodes; i++) {
        uint32_t id = c->nodes[i].id;
        if (id != d->self && net_peer_reachable(ep, id))
            dsvc_send_version(d, id);
    }
}

void dsvc_fetch_from(struct dsvc *d, uint32_t node, const char *why)
{
    switch (d->fetch) {
    case DSVC_DFETCH_WAIT:
        return;
    case DSVC_DFETCH_IDLE:
        break;
    default:
        N_ASSERT(!"bad fetch state");
        return;
    }
    /* never replace the dictionary under a running transaction */
    if ((d->tx != DSVC_DTX_IDLE && d->tx != DSVC_DTX_RETRY_WAIT) || d->pt != DSVC_DPT_IDLE)
        return;
    struct rt_msg *m = rt_msg_new(d->rt, NINES__MSG_TYPE__DICT_FETCH_REQ);
    Nines__DictFetchReq *b = m ? RT_BODY(m, Nines__DictFetchReq, nines__dict_fetch_req__init)
                               : NULL;
    if (!b) {
        if (m)
            rt_msg_free(d->rt, m);
        return;
    }
    if (rt_send(d->rt, node, RT_SVC_DICT, m) != 0)
        return;
    NLOG_INFO("dict", "catching up: fetching the dictionary from node %u (%s)", node, why);
    d->fetch = DSVC_DFETCH_WAIT;
    d->fetch_from = node;
    d->fetch_gen++;
    rt_timer_add(d->rt, RT_SVC_DICT, DSVC_FETCH_MS * 1000u,
                 DSVC_COOKIE(DSVC_DT_FETCH, d->fetch_gen));
}

static void fetch_done(struct dsvc *d)
{
    d->fetch = DSVC_DFETCH_IDLE;
    d->fetch_from = 0;
    d->fetch_gen++;
    dsvc_kick(d);
}

void dsvc_on_fetch_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictFetchConf *b = (const Nines__DictFetchConf *)m->body;
    if (d->fetch != DSVC_DFETCH_WAIT || m->from != d->fetch_from)
        return; /* late answer to a fetch given up */
    struct dict x;
    int rc = dict_decode(b->image.data, b->image.len, &x);
    if (rc) {
        NLOG_ERROR("dict", "node %u sent a dictionary that does not decode: %s (%s); not used",
                   (unsigned)m->from, nines_strerror(rc), nines_errdetail());
        fetch_done(d);
        return;
    }
    uint32_t dg = dsvc_digest(&x);
    bool newer = x.version > d->cur.version;
    bool replace = x.version == d->cur.version && dg != d->digest &&
                   m->from == dsvc_coordinator(d);
    if (newer || replace) {
        char why[80];
        check_nodes(d, &x, "a peer");
        snprintf(why, sizeof why, "caught up from node %u", (unsigned)m->from);
        dsvc_install(d, &x, why, false); /* caught up: tables may hold data elsewhere */
    } else {
        dict_free(&x);
    }
    fetch_done(d);
}

void dsvc_on_fetch_ref(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictFetchRef *b = (const Nines__DictFetchRef *)m->body;
    if (d->fetch != DSVC_DFETCH_WAIT || m->from != d->fetch_from)
        return;
    NLOG_WARN("dict", "node %u refused the dictionary fetch: %s", (unsigned)m->from,
              b->reason ? b->reason : "");
    fetch_done(d);
}

void dsvc_on_fetch_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_FETCH_CONF);
    Nines__DictFetchConf *b = r ? RT_BODY(r, Nines__DictFetchConf, nines__dict_fetch_conf__init)
                                : NULL;
    if (b && img_to_msg(r, &d->cur, false, &b->image)) { /* node to node: with users */
        b->version = d->cur.version;
        rt_send(rt, m->from, RT_SVC_DICT, r);
        return;
    }
    if (r)
        rt_msg_free(rt, r);
    r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_FETCH_REF);
    Nines__DictFetchRef *f = r ? RT_BODY(r, Nines__DictFetchRef, nines__dict_fetch_ref__init)
                               : NULL;
    if (!f) {
        if (r)
            rt_msg_free(rt, r);
        return;
    }
    f->error = NINES_ENOMEM;
    f->reason = "no memory to encode the dictionary";
    rt_send(rt, m->from, RT_SVC_DICT, r);
}

void dsvc_on_version_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictVersionReq *b = (const Nines__DictVersionReq *)m->body;
    if (m->from == 0 || m->from >= NET_CONN_BASE)
        return; /* node-to-node only */
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_VERSION_CONF);
    Nines__DictVersionConf *c =
        r ? RT_BODY(r, Nines__DictVersionConf, nines__dict_version_conf__init) : NULL;
    if (c) {
        c->version = d->cur.version;
        c->digest = d->digest;
        rt_send(rt, m->from, RT_SVC_DICT, r);
    } else if (r) {
        rt_msg_free(rt, r);
    }
    consider_peer(d, (uint32_t)m->from, b->version, b->digest);
}

void dsvc_on_version_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    const Nines__DictVersionConf *b = (const Nines__DictVersionConf *)m->body;
    if (m->from == 0 || m->from >= NET_CONN_BASE)
        return;
    consider_peer(d, (uint32_t)m->from, b->version, b->digest);
}

/* ---- runtime events ----------------------------------------------------- */

static void dsvc_on_timer(struct dsvc *d, uint64_t cookie)
{
    enum dsvc_timer kind = (enum dsvc_timer)((cookie >> 48) & 0xff);
    uint64_t gen = cookie & 0xffffffffffffull;
    switch (kind) {
    case DSVC_DT_SYNC:
        if (d->running) {
            sync_round(d);
            rt_timer_add(d->rt, RT_SVC_DICT, DSVC_SYNC_MS * 1000u,
                         DSVC_COOKIE(DSVC_DT_SYNC, 0));
        }
        break;
    case DSVC_DT_FETCH:
        if (d->fetch == DSVC_DFETCH_WAIT && gen == (d->fetch_gen & 0xffffffffffffull)) {
            NLOG_WARN("dict", "node %u did not send the dictionary within %u ms", d->fetch_from,
                      DSVC_FETCH_MS);
            fetch_done(d);
        }
        break;
    case DSVC_DT_PHASE:
    case DSVC_DT_PREPARED:
    case DSVC_DT_FORWARD:
        dsvc_tx_on_timer(d, kind, gen);
        break;
    default:
        NLOG_WARN("dict", "unknown dictionary timer %llx", (unsigned long long)cookie);
        break;
    }
}

static void dsvc_on_peer_up(struct dsvc *d, uint32_t node)
{
    dsvc_send_version(d, node);
}

static void dsvc_on_peer_down(struct dsvc *d, uint32_t node)
{
    if (d->fetch == DSVC_DFETCH_WAIT && d->fetch_from == node) {
        NLOG_INFO("dict", "node %u went down during the dictionary fetch", node);
        fetch_done(d);
    }
    dsvc_tx_on_peer_down(d, node);
}

static void dsvc_on_client_closed(struct dsvc *d, net_addr conn)
{
    dsvc_tx_on_client_closed(d, conn);
}

/* ---- admin read --------------------------------------------------------- */

/* DictGetConf.users: every user's name and role (never the verifier), in
 * the message's arena. False when out of memory. */
static bool get_users(struct rt_msg *r, const struct dict *x, Nines__DictGetConf *b)
{
    if (!r || !b)
        return false;
    if (x->nusers == 0)
        return true;
    Nines__DictUserInfo **pp = rt_msg_alloc(r, x->nusers * sizeof *pp);
    Nines__DictUserInfo *v = rt_msg_alloc(r, x->nusers * sizeof *v);
    if (!pp || !v)
        return false;
    for (uint32_t i = 0; i < x->nusers; i++) {
        nines__dict_user_info__init(&v[i]);
        size_t n = strlen(x->users[i].name) + 1;
        char *name = rt_msg_alloc(r, n);
        if (!name)
            return false;
        memcpy(name, x->users[i].name, n);
        v[i].name = name;
        v[i].role = x->users[i].role;
        pp[i] = &v[i];
    }
    b->users = pp;
    b->n_users = x->nusers;
    return true;
}

void dsvc_on_get_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = (struct dsvc *)st;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_GET_CONF);
    Nines__DictGetConf *b = r ? RT_BODY(r, Nines__DictGetConf, nines__dict_get_conf__init)
                              : NULL;
    uint32_t *live = r ? rt_msg_alloc(r, DICT_MAX_NODES * sizeof *live) : NULL;
    const Nines__DictGetReq *q = (const Nines__DictGetReq *)m->body;
    if (q && q->users && m->from >= NET_CONN_BASE &&
        rt_client_role(rt, m->from) < NET_ROLE_ADMIN) {
        if (r)
            rt_msg_free(rt, r);
        r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_GET_REF);
        Nines__DictGetRef *f = r ? RT_BODY(r, Nines__DictGetRef, nines__dict_get_ref__init)
                                 : NULL;
        if (f) {
            f->error = NINES_EPERM;
            f->reason = "permission denied: the user list needs the admin role";
            rt_send(rt, m->from, RT_SVC_NONE, r);
        } else if (r) {
            rt_msg_free(rt, r);
        }
        return;
    }
    bool users_ok = !(q && q->users) || get_users(r, &d->cur, b);
    /* to clients: the public image, no users, no verifiers */
    if (b && live && users_ok && img_to_msg(r, &d->cur, true, &b->image)) {
        dict_liveset ls = dsvc_live(d);
        size_t n = 0;
        for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
            if (ls & DICT_LIVE(id))
                live[n++] = id;
        b->node_id = d->self;
        b->version = d->cur.version;
        b->live = live;
        b->n_live = n;
        b->coordinator = dsvc_coordinator(d);
        rt_send(rt, m->from, RT_SVC_NONE, r);
        return;
    }
    if (r)
        rt_msg_free(rt, r);
    r = rt_msg_new(rt, NINES__MSG_TYPE__DICT_GET_REF);
    Nines__DictGetRef *f = r ? RT_BODY(r, Nines__DictGetRef, nines__dict_get_ref__init) : NULL;
    if (!f) {
        if (r)
            rt_msg_free(rt, r);
        return;
    }
    f->error = NINES_ENOMEM;
    f->reason = "no memory to encode the dictionary";
    rt_send(rt, m->from, RT_SVC_NONE, r);
}

/* ---- the task ----------------------------------------------------------- */

/* Runtime events: start, timers, file saves, peer connectivity (subscribed
 * with rt_subscribe_peers), closed client connections. */
static void dsvc_on_event(struct rt *rt, void *st, struct rt_msg *m)
{
    struct dsvc *d = st;
    switch (m->type) {
    case RT_MSG_START:
        d->running = true;
        dsvc_start(d);
        break;
    case RT_MSG_TIMER:
        if (DSVC_IS_COOKIE(m->cookie))
            dsvc_on_timer(d, m->cookie);
        else
            NLOG_WARN("dict", "unknown timer %llx", (unsigned long long)m->cookie);
        break;
    case RT_MSG_IO_DONE:
        if (!dsvc_on_io_done(d, (struct rt_io_req *)(uintptr_t)m->cookie))
            NLOG_WARN("dict", "I/O completion for an unknown request");
        break;
    case RT_MSG_PEER_UP:
        if (m->cookie >= 1 && m->cookie <= NINES_MAX_NODES)
            dsvc_on_peer_up(d, (uint32_t)m->cookie);
        break;
    case RT_MSG_PEER_DOWN:
        if (m->cookie >= 1 && m->cookie <= NINES_MAX_NODES)
            dsvc_on_peer_down(d, (uint32_t)m->cookie);
        break;
    case RT_MSG_CLIENT_CLOSED:
        dsvc_on_client_closed(d, m->from);
        break;
    default:
        NLOG_WARN("dict", "dictionary service ignores unexpected message type %u", m->type);
        break;
    }
}

int dsvc_create(struct dsvc **out, struct rt *rt)
{
    struct dsvc *d = calloc(1, sizeof *d);
    if (!d)
        return nines_err(NINES_ENOMEM, "no memory for the dictionary service");
    int rc = dsvc_init(d, rt);
    if (rc == 0)
        rc = rt_subscribe_peers(rt, RT_SVC_DICT);
    if (rc == 0)
        rc = rt_task_add(rt, RT_SVC_DICT, "dict", dsvc_on_event, d);
    if (rc) {
        dsvc_destroy(d);
        return rc;
    }
    *out = d;
    return 0;
}

void dsvc_destroy(struct dsvc *d)
{
    if (!d)
        return;
    dsvc_fini(d);
    free(d);
}
