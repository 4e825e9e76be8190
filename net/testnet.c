/* In-process test transport with a virtual clock and fault injection.
 * Test-only code: it allocates one event per frame (production transports
 * do not). Semantics: net/testnet.h and net/README.md "Test transport". */
#include "testnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

enum tn_ev_kind {
    TN_EV_CONNECT,  /* to the acceptor: a dialled link arrives */
    TN_EV_FRAME,    /* one frame for side `side` of the link */
    TN_EV_CLOSE,    /* the other side is gone */
};

struct tn_link;

struct tn_ev {
    struct tn_ev *next;       /* in a pending queue */
    uint64_t due_us, seq;
    enum tn_ev_kind kind;
    struct tn_link *link;
    int side;                 /* receiving side */
    int err;
    size_t len;
    uint8_t data[];
};

struct tn_pending {
    struct tn_ev *head, *tail;
    size_t bytes;             /* frames + 4-byte prefixes, as TCP counts */
};

struct tn;

struct tn_end {
    struct tn *t;
    struct tn_link *link;
    int side;                 /* 0 dialler, 1 acceptor */
    net_addr addr;            /* node id (outbound / bound) or conn_addr */
    net_addr conn_addr;
    uint32_t node;            /* 0 while unbound */
    struct tn_pending q;      /* own queue while unbound */
    struct tn_end *next;      /* t->ends */
};

struct tn_link {
    uint32_t node[2];         /* [0] dialler, [1] acceptor */
    struct tn_end *end[2];    /* NULL once that side closed */
    bool cut;                 /* torn down abruptly: in-flight frames lost */
    uint64_t last_due[2];     /* latest due time sent by side s (FIFO) */
};

struct tn_peer {
    bool configured, dial;
    struct tn_end *end;
    struct tn_pending q;
    uint64_t next_dial_us;
    uint32_t backoff_ms;
};

struct tn {
    struct net_transport base;
    struct net_testnet *hub;
    uint32_t self;
    bool started, crashed;
    struct tn_peer peers[NINES_MAX_NODES + 1];
    struct tn_end *ends;
    struct tn_ev **heap;      /* inbox, min-heap on (due_us, seq) */
    size_t nheap, capheap;
    struct tn_ev *res;        /* reserve() -> commit() */
    struct tn_pending *res_q;
    uint32_t staging_node;    /* on_connect(outbound) in progress */
    struct tn_pending stage;
};

struct net_testnet {
    struct nines_conf cfg;
    uint64_t now_us, seq, rng, conn_seq;
    double drop;
    uint64_t dmin_us, dmax_us;
    bool reorder;
    bool cut[NINES_MAX_NODES + 1][NINES_MAX_NODES + 1];
    struct tn *nodes[NINES_MAX_NODES + 1];
    struct tn_link **links;   /* every link ever made; freed with the hub */
    size_t nlinks, caplinks;
    struct net_testnet_stats st;
};

static const struct net_transport_ops tn_ops;

/* ---- PRNG (splitmix64) ---- */

static uint64_t rng_next(struct net_testnet *h)
{
    uint64_t z = (h->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(struct net_testnet *h)
{
    return (double)(rng_next(h) >> 11) / 9007199254740992.0; /* [0,1) */
}

/* ---- inbox heap ---- */

static bool ev_before(const struct tn_ev *a, const struct tn_ev *b)
{
    return a->due_us < b->due_us || (a->due_us == b->due_us && a->seq < b->seq);
}

static int heap_push(struct tn *t, struct tn_ev *e)
{
    if (t->nheap == t->capheap) {
        size_t cap = t->capheap ? t->capheap * 2 : 64;
        struct tn_ev **h = realloc(t->heap, cap * sizeof *h);
        if (!h)
            return nines_err(NINES_ENOMEM, "testnet: inbox of %zu", cap);
        t->heap = h;
        t->capheap = cap;
    }
    size_t i = t->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_before(e, t->heap[p]))
            break;
        t->heap[i] = t->heap[p];
        i = p;
    }
    t->heap[i] = e;
    return 0;
}

static struct tn_ev *heap_pop(struct tn *t)
{
    struct tn_ev *top = t->heap[0], *last = t->heap[--t->nheap];
    size_t i = 0, n = t->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ev_before(t->heap[c + 1], t->heap[c]))
            c++;
        if (!ev_before(t->heap[c], last))
            break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n)
        t->heap[i] = last;
    return top;
}

static struct tn_ev *ev_new(struct net_testnet *h, enum tn_ev_kind k, struct tn_link *l, int side,
                            size_t len)
{
    struct tn_ev *e = malloc(sizeof *e + len);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->kind = k;
    e->link = l;
    e->side = side;
    e->len = len;
    e->due_us = h->now_us;
    e->seq = ++h->seq;
    return e;
}

/* Hand a control event (CONNECT / CLOSE) to the node on `side` of l. */
static void post(struct net_testnet *h, struct tn_link *l, int side, enum tn_ev_kind k,
                 uint64_t due, int err)
{
    struct tn *dst = h->nodes[l->node[side]];
    if (!dst || dst->crashed)
        return;
    struct tn_ev *e = ev_new(h, k, l, side, 0);
    N_ASSERT(e != NULL);
    e->due_us = due;
    e->err = err;
    if (heap_push(dst, e))
        free(e);
}

/* ---- pending queues ---- */

static void pend_push(struct tn_pending *q, struct tn_ev *e)
{
    e->next = NULL;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    q->bytes += 4 + e->len;
}

static void pend_prepend(struct tn_pending *dst, struct tn_pending *src)
{
    if (!src->head)
        return;
    src->tail->next = dst->head;
    if (!dst->head)
        dst->tail = src->tail;
    dst->head = src->head;
    dst->bytes += src->bytes;
    memset(src, 0, sizeof *src);
}

static void pend_clear(struct tn_pending *q)
{
    while (q->head) {
        struct tn_ev *e = q->head;
        q->head = e->next;
        free(e);
    }
    memset(q, 0, sizeof *q);
}

static struct tn_pending *end_q(struct tn_end *e)
{
    return e->node ? &e->t->peers[e->node].q : &e->q;
}

/* Put every pending frame of end e on the wire. */
static void transmit(struct tn_end *en)
{
    struct tn *t = en->t;
    struct net_testnet *h = t->hub;
    struct tn_pending *q = end_q(en);
    struct tn_link *l = en->link;
    int r = 1 - en->side;
    while (q->head) {
        struct tn_ev *e = q->head;
        q->head = e->next;
        h->st.frames_sent++;
        t->base.writes++;
        struct tn *dst = h->nodes[l->node[r]];
        if (l->cut || !dst || dst->crashed || (h->drop > 0 && rng_unit(h) < h->drop)) {
            h->st.frames_dropped++;
            free(e);
            continue;
        }
        uint64_t d = h->dmin_us;
        if (h->dmax_us > h->dmin_us)
            d += rng_next(h) % (h->dmax_us - h->dmin_us + 1);
        uint64_t due = h->now_us + d;
        if (!h->reorder && due < l->last_due[en->side])
            due = l->last_due[en->side];
        if (due > l->last_due[en->side])
            l->last_due[en->side] = due;
        e->due_us = due;
        e->seq = ++h->seq;
        e->side = r;
        e->link = l;
        if (heap_push(dst, e)) {
            h->st.frames_dropped++;
            free(e);
        }
    }
    q->tail = NULL;
    q->bytes = 0;
}

/* ---- ends ---- */

static struct tn_end *end_new(struct tn *t, struct tn_link *l, int side)
{
    struct tn_end *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->t = t;
    e->link = l;
    e->side = side;
    e->conn_addr = NET_CONN_BASE + ++t->hub->conn_seq;
    e->addr = e->conn_addr;
    e->next = t->ends;
    t->ends = e;
    l->end[side] = e;
    return e;
}

static struct tn_end *end_by_conn(struct tn *t, net_addr a)
{
    for (struct tn_end *e = t->ends; e; e = e->next)
        if (e->conn_addr == a)
            return e;
    return NULL;
}

static void schedule_redial(struct tn *t, uint32_t node)
{
    struct tn_peer *p = &t->peers[node];
    if (!p->dial)
        return;
    p->next_dial_us = t->hub->now_us + (uint64_t)p->backoff_ms * 1000u;
    uint64_t b = (uint64_t)p->backoff_ms * 2;
    uint32_t max = t->hub->cfg.reconnect_max_ms;
    p->backoff_ms = b > max ? max : (uint32_t)b;
}

/* Remove end e from its transport. Graceful: its pending frames go out
 * and the other side gets CLOSE after them. Upcall on_close if `upcall`. */
static void end_close(struct tn_end *en, int err, bool graceful, bool upcall)
{
    struct tn *t = en->t;
    struct net_testnet *h = t->hub;
    struct tn_link *l = en->link;
    int s = en->side;
    if (graceful && !l->cut)
        transmit(en);
    if (!l->cut) {
        uint64_t due = graceful && l->last_due[s] > h->now_us ? l->last_due[s] : h->now_us;
        post(h, l, 1 - s, TN_EV_CLOSE, due, NINES_ECLOSED);
    }
    l->end[s] = NULL;
    for (struct tn_end **pp = &t->ends; *pp; pp = &(*pp)->next)
        if (*pp == en) {
            *pp = en->next;
            break;
        }
    net_addr addr = en->addr;
    if (en->node) {
        struct tn_peer *p = &t->peers[en->node];
        if (p->end == en)
            p->end = NULL;
        pend_clear(&p->q);
        if (s == 0)
            schedule_redial(t, en->node);
    }
    pend_clear(&en->q);
    free(en);
    if (upcall && t->base.cb.on_close)
        t->base.cb.on_close(t->base.cb.ctx, addr, err);
}

/* ---- dial / deliver ---- */

static bool can_reach(struct net_testnet *h, uint32_t a, uint32_t b)
{
    struct tn *d = h->nodes[b];
    return d && d->started && !d->crashed && !h->cut[a][b];
}

static void dial(struct tn *t, uint32_t node)
{
    struct net_testnet *h = t->hub;
    struct tn_peer *p = &t->peers[node];
    if (!can_reach(h, t->self, node)) {
        h->st.dial_failures++;
        schedule_redial(t, node);
        return;
    }
    if (h->nlinks == h->caplinks) {
        size_t cap = h->caplinks ? h->caplinks * 2 : 64;
        struct tn_link **v = realloc(h->links, cap * sizeof *v);
        N_ASSERT(v != NULL);
        h->links = v;
        h->caplinks = cap;
    }
    struct tn_link *l = calloc(1, sizeof *l);
    N_ASSERT(l != NULL);
    h->links[h->nlinks++] = l;
    l->node[0] = t->self;
    l->node[1] = node;
    struct tn_end *en = end_new(t, l, 0);
    N_ASSERT(en != NULL);
    en->node = node;
    en->addr = node;
    p->end = en;
    h->st.connects++;
    post(h, l, 1, TN_EV_CONNECT, h->now_us, 0);
    t->staging_node = node;
    if (t->base.cb.on_connect)
        t->base.cb.on_connect(t->base.cb.ctx, node, 1);
    t->staging_node = 0;
    if (l->end[0] == en)
        pend_prepend(&p->q, &t->stage);
    else
        pend_clear(&t->stage);
}

static int deliver(struct tn *t, struct tn_ev *e)
{
    struct net_testnet *h = t->hub;
    struct tn_link *l = e->link;
    int r = e->side;
    int n = 0;
    switch (e->kind) {
    case TN_EV_CONNECT: {
        if (l->cut || l->end[r])
            break;
        struct tn_end *en = end_new(t, l, r);
        N_ASSERT(en != NULL);
        n = 1;
        if (t->base.cb.on_connect)
            t->base.cb.on_connect(t->base.cb.ctx, en->addr, 0);
        break;
    }
    case TN_EV_FRAME: {
        struct tn_end *en = l->end[r];
        if (l->cut || !en) {
            h->st.frames_dropped++;
            break;
        }
        h->st.frames_delivered++;
        n = 1;
        if (r == 0)
            t->peers[en->node].backoff_ms = h->cfg.reconnect_min_ms;
        int rc = t->base.cb.on_frame(t->base.cb.ctx, en->addr, e->data, e->len);
        if (rc < 0 && l->end[r] == en)
            end_close(en, rc, true, true);
        break;
    }
    case TN_EV_CLOSE: {
        struct tn_end *en = l->end[r];
        if (!en)
            break;
        n = 1;
        end_close(en, e->err ? e->err : NINES_ECLOSED, false, true);
        break;
    }
    default:
        N_ASSERT(!"testnet: bad event kind");
    }
    free(e);
    return n;
}

/* ---- ops ---- */

static struct tn *tn_of(struct net_transport *b) { return (struct tn *)b; }

static int tn_start(struct net_transport *b)
{
    struct tn *t = tn_of(b);
    if (t->started)
        return nines_err(NINES_ESTATE, "testnet: node %u already started", t->self);
    t->started = true;
    for (uint32_t n = 1; n <= NINES_MAX_NODES; n++)
        if (t->peers[n].dial)
            t->peers[n].next_dial_us = t->hub->now_us;
    return 0;
}

static struct tn_pending *tn_dest(struct tn *t, net_addr to, bool *connected, int *err)
{
    *connected = false;
    if (to >= 1 && to <= NINES_MAX_NODES) {
        struct tn_peer *p = &t->peers[to];
        if (!p->configured) {
            *err = nines_err(NINES_EINVAL, "testnet: node %llu is not a peer",
                             (unsigned long long)to);
            return NULL;
        }
        if (t->staging_node == to)
            return &t->stage;
        *connected = p->end != NULL;
        return &p->q;
    }
    struct tn_end *en = end_by_conn(t, to);
    if (!en || en->node) {
        *err = nines_err(NINES_EUNREACHABLE, "testnet: connection %llu is closed",
                         (unsigned long long)to);
        return NULL;
    }
    *connected = true;
    return &en->q;
}

static void *tn_reserve(struct net_transport *b, net_addr to, size_t len, int *err)
{
    struct tn *t = tn_of(b);
    struct net_testnet *h = t->hub;
    if (len == 0 || len > h->cfg.max_frame_bytes || len + 4 > h->cfg.send_queue_bytes) {
        *err = nines_err(NINES_ETOOBIG, "testnet: frame of %zu bytes (max_frame_bytes %u)", len,
                         h->cfg.max_frame_bytes);
        return NULL;
    }
    if (t->crashed) {
        *err = nines_err(NINES_EUNREACHABLE, "testnet: node %u crashed", t->self);
        return NULL;
    }
    bool connected;
    struct tn_pending *q = tn_dest(t, to, &connected, err);
    if (!q)
        return NULL;
    if (q != &t->stage && q->bytes + 4 + len > h->cfg.send_queue_bytes) {
        *err = connected ? nines_err(NINES_EAGAIN, "testnet: send queue to %llu full",
                                     (unsigned long long)to)
                         : nines_err(NINES_EUNREACHABLE,
                                     "testnet: node %llu not connected and its queue is full",
                                     (unsigned long long)to);
        return NULL;
    }
    struct tn_ev *e = ev_new(h, TN_EV_FRAME, NULL, 0, len);
    if (!e) {
        *err = nines_err(NINES_ENOMEM, "testnet: frame of %zu", len);
        return NULL;
    }
    t->res = e;
    t->res_q = q;
    return e->data;
}

static void tn_commit(struct net_transport *b, net_addr to, size_t len)
{
    struct tn *t = tn_of(b);
    (void)to;
    N_ASSERT(t->res != NULL && t->res->len == len);
    pend_push(t->res_q, t->res);
    t->res = NULL;
    t->res_q = NULL;
}

static int tn_flush(struct net_transport *b)
{
    struct tn *t = tn_of(b);
    if (t->crashed)
        return 0;
    for (struct tn_end *en = t->ends; en; en = en->next)
        if (end_q(en)->head)
            transmit(en);
    return 0;
}

static int tn_poll(struct net_transport *b, int timeout_ms)
{
    struct tn *t = tn_of(b);
    struct net_testnet *h = t->hub;
    (void)timeout_ms; /* virtual time: never waits */
    if (!t->started)
        return nines_err(NINES_ESTATE, "testnet: poll before start");
    if (t->crashed)
        return 0;
    int n = 0;
    for (uint32_t p = 1; p <= NINES_MAX_NODES; p++)
        if (t->peers[p].dial && !t->peers[p].end && t->peers[p].next_dial_us <= h->now_us &&
            !t->crashed)
            dial(t, p);
    while (t->nheap > 0 && t->heap[0]->due_us <= h->now_us && !t->crashed)
        n += deliver(t, heap_pop(t));
    tn_flush(b);
    return n;
}

static void tn_wake(struct net_transport *b) { (void)b; }

static int tn_bind(struct net_transport *b, net_addr conn, uint32_t node)
{
    struct tn *t = tn_of(b);
    struct tn_end *en = end_by_conn(t, conn);
    if (!en)
        return nines_err(NINES_EUNREACHABLE, "testnet: bind: connection %llu is closed",
                         (unsigned long long)conn);
    if (en->node)
        return nines_err(NINES_ESTATE, "testnet: connection %llu is already bound",
                         (unsigned long long)conn);
    if (node < 1 || node > NINES_MAX_NODES || !t->peers[node].configured)
        return nines_err(NINES_EINVAL, "testnet: bind to unknown node %u", node);
    struct tn_peer *p = &t->peers[node];
    if (p->end)
        end_close(p->end, NINES_ECLOSED, true, true);
    en->node = node;
    en->addr = node;
    p->end = en;
    pend_prepend(&p->q, &en->q);
    return 0;
}

static void tn_close(struct net_transport *b, net_addr addr, int err, const char *reason)
{
    struct tn *t = tn_of(b);
    (void)reason;
    struct tn_end *en;
    if (addr >= 1 && addr <= NINES_MAX_NODES) {
        en = t->peers[addr].end;
        if (!en) {
            pend_clear(&t->peers[addr].q);
            return;
        }
    } else {
        en = end_by_conn(t, addr);
    }
    if (en)
        end_close(en, err, true, true);
}

/* Take t off the network: abrupt for a crash, graceful for destroy. */
static void tn_detach(struct tn *t, bool abrupt)
{
    while (t->ends) {
        struct tn_end *en = t->ends;
        if (abrupt && !en->link->cut) {
            /* the other side learns at once; in-flight frames are lost */
            post(t->hub, en->link, 1 - en->side, TN_EV_CLOSE, t->hub->now_us, NINES_ECLOSED);
            en->link->cut = true;
        }
        end_close(en, NINES_ECLOSED, !abrupt, false);
    }
    for (uint32_t n = 1; n <= NINES_MAX_NODES; n++)
        pend_clear(&t->peers[n].q);
    while (t->nheap)
        free(heap_pop(t));
    free(t->res);
    t->res = NULL;
}

static void tn_destroy(struct net_transport *b)
{
    struct tn *t = tn_of(b);
    if (!t)
        return;
    tn_detach(t, false);
    pend_clear(&t->stage);
    if (t->hub->nodes[t->self] == t)
        t->hub->nodes[t->self] = NULL;
    free(t->heap);
    free(t);
}

/* No sockets here: the remote end is named by its node ("test node 2"). */
static int tn_peer_name(struct net_transport *b, net_addr addr, char *buf, size_t n)
{
    struct tn *t = tn_of(b);
    struct tn_end *en =
        addr >= 1 && addr <= NINES_MAX_NODES ? t->peers[addr].end : end_by_conn(t, addr);
    if (!en)
        return nines_err(NINES_ENOTFOUND, "testnet: no connection %llu", (unsigned long long)addr);
    snprintf(buf, n, "test node %u", en->link->node[1 - en->side]);
    return 0;
}

static const struct net_transport_ops tn_ops = {
    .name = "test",
    .start = tn_start,
    .reserve = tn_reserve,
    .commit = tn_commit,
    .flush = tn_flush,
    .poll = tn_poll,
    .wake = tn_wake,
    .bind = tn_bind,
    .close = tn_close,
    .destroy = tn_destroy,
    .peer_name = tn_peer_name,
};

/* ---- hub ---- */

int net_testnet_new(struct net_testnet **out, const struct nines_conf *cfg, uint64_t seed)
{
    struct net_testnet *h = calloc(1, sizeof *h);
    if (!h)
        return nines_err(NINES_ENOMEM, "testnet hub");
    h->cfg = *cfg;
    if (!h->cfg.reconnect_min_ms)
        h->cfg.reconnect_min_ms = 1;
    if (h->cfg.reconnect_max_ms < h->cfg.reconnect_min_ms)
        h->cfg.reconnect_max_ms = h->cfg.reconnect_min_ms;
    h->rng = seed;
    *out = h;
    return 0;
}

void net_testnet_free(struct net_testnet *h)
{
    if (!h)
        return;
    for (uint32_t n = 1; n <= NINES_MAX_NODES; n++)
        N_ASSERT(h->nodes[n] == NULL);
    for (size_t i = 0; i < h->nlinks; i++)
        free(h->links[i]);
    free(h->links);
    free(h);
}

int net_testnet_transport(struct net_testnet *h, uint32_t node, struct net_transport **out)
{
    *out = NULL;
    if (!nines_conf_node(&h->cfg, node))
        return nines_err(NINES_ECONFIG, "testnet: node %u is not in the configuration", node);
    if (h->nodes[node])
        return nines_err(NINES_EEXIST, "testnet: node %u already has a transport", node);
    struct tn *t = calloc(1, sizeof *t);
    if (!t)
        return nines_err(NINES_ENOMEM, "testnet: transport");
    t->base.ops = &tn_ops;
    t->hub = h;
    t->self = node;
    for (uint32_t i = 0; i < h->cfg.nnodes && i < NINES_MAX_NODES; i++) {
        uint32_t id = h->cfg.nodes[i].id;
        if (id < 1 || id > NINES_MAX_NODES || id == node)
            continue;
        t->peers[id].configured = true;
        t->peers[id].dial = id > node;
        t->peers[id].backoff_ms = h->cfg.reconnect_min_ms;
        t->peers[id].next_dial_us = UINT64_MAX;
    }
    h->nodes[node] = t;
    *out = &t->base;
    return 0;
}

void net_testnet_advance(struct net_testnet *h, uint64_t us) { h->now_us += us; }
uint64_t net_testnet_now_us(const struct net_testnet *h) { return h->now_us; }
void net_testnet_set_drop(struct net_testnet *h, double p) { h->drop = p; }

void net_testnet_set_delay(struct net_testnet *h, uint64_t min_us, uint64_t max_us)
{
    h->dmin_us = min_us;
    h->dmax_us = max_us < min_us ? min_us : max_us;
}

void net_testnet_set_reorder(struct net_testnet *h, bool on) { h->reorder = on; }

void net_testnet_partition(struct net_testnet *h, uint32_t a, uint32_t b, bool cut)
{
    if (a < 1 || a > NINES_MAX_NODES || b < 1 || b > NINES_MAX_NODES || a == b)
        return;
    h->cut[a][b] = h->cut[b][a] = cut;
    if (!cut)
        return;
    struct tn *ta = h->nodes[a];
    if (!ta)
        return;
    for (struct tn_end *en = ta->ends; en; en = en->next) {
        struct tn_link *l = en->link;
        if (l->cut || l->node[1 - en->side] != b)
            continue;
        /* both sides learn at their next poll; in-flight frames are lost */
        post(h, l, 0, TN_EV_CLOSE, h->now_us, NINES_EUNREACHABLE);
        post(h, l, 1, TN_EV_CLOSE, h->now_us, NINES_EUNREACHABLE);
        l->cut = true;
    }
}

void net_testnet_crash(struct net_testnet *h, uint32_t node)
{
    if (node < 1 || node > NINES_MAX_NODES || !h->nodes[node])
        return;
    struct tn *t = h->nodes[node];
    if (t->crashed)
        return;
    tn_detach(t, true);
    t->crashed = true;
}

void net_testnet_get_stats(const struct net_testnet *h, struct net_testnet_stats *out)
{
    *out = h->st;
}
