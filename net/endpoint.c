/* Messaging endpoint: transport choice, HELLO handshake, per-frame
 * validation, dispatch to the owner's handlers, send path, statistics.
 * Message sequence and bad-input table: net/README.md. */
#include "net.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "auth.h"
#include "dual.h"
#include "envelope.h"
#include "nassert.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nlog.h"
#include "rdma.h"
#include "scram.h"
#include "tcp.h"

enum ep_peer_state {
    EP_DOWN,        /* no connection, or one without a handshake yet */
    EP_HELLO_SENT,  /* we dialled and sent HELLO_REQ; waiting HELLO_CONF */
    EP_UP,          /* handshake done */
};

enum ep_conn_state {
    EC_NONE,        /* not in the map */
    EC_NEW,         /* accepted, waiting for HELLO_REQ */
    EC_CLIENT,      /* a client after its handshake */
    EC_AUTH,        /* keyed HELLO answered; waiting for the connector's HELLO_AUTH */
    EC_CLIENT_AUTH, /* a client that proved the cluster key (ninesctl, a node at the
                     * arbitrator) */
    EC_SCRAM,       /* a user's HELLO answered (server-first); waiting for its proof */
    EC_USER_READER, /* a user logged in with SCRAM, by role (net/README.md "Users") */
    EC_USER_WRITER,
    EC_USER_ADMIN,
};

/* A client connection after its handshake (requests go to the services). */
static bool ec_client(enum ep_conn_state cs)
{
    switch (cs) {
    case EC_CLIENT:
    case EC_CLIENT_AUTH:
    case EC_USER_READER:
    case EC_USER_WRITER:
    case EC_USER_ADMIN:
        return true;
    case EC_NONE:
    case EC_NEW:
    case EC_AUTH:
    case EC_SCRAM:
    default:
        return false;
    }
}

/* Counted against max_client_connections (keyed admin links are not). */
static bool ec_counted(enum ep_conn_state cs)
{
    return cs == EC_CLIENT || cs == EC_USER_READER || cs == EC_USER_WRITER || cs == EC_USER_ADMIN;
}

/* Pre-auth connections can hold at most this many buffered bytes each, and
 * at most EP_AUTH_MAX of them wait at a time (net/README.md "Handshake"). */
#define EP_AUTH_MAX 1024
#define EP_AUTH_BUF_MAX (4u << 20)
/* Slow clients noted per dispatch round (more: found again at their next
 * send). */
#define EP_SLOW_MAX 64

/* A connection between our keyed HELLO_CONF and its HELLO_AUTH. */
struct ep_pend {
    net_addr a;
    uint32_t role;            /* NINES__ROLE__ROLE_NODE or _CLIENT */
    uint32_t node;            /* ROLE_NODE: the id it claims */
    uint64_t inc;             /* its HELLO's incarnation */
    uint8_t nc[NET_NONCE_BYTES], na[NET_NONCE_BYTES];
    uint8_t *buf;             /* frames that followed its HELLO_REQ: u32 length, bytes */
    size_t len, cap;
    char who[160];            /* "conn A (address)", for the log after it closed */
    struct scram_srv *scram;  /* EC_SCRAM: the exchange (malloc'd), else NULL */
    uint32_t urole;           /* EC_SCRAM: the user's role (0: no such user) */
    char user[NET_USER_NAME_MAX + 1];
};

/* Unbound connections by address: open addressing, linear probing,
 * backward-shift deletion. Grows on accept only. */
struct ep_cmap {
    net_addr *keys;   /* 0 = empty */
    uint8_t *vals;
    size_t cap, n;
};

struct ep_peer {
    enum ep_peer_state st;
    uint64_t last_heard_ms;
    uint64_t incarnation;     /* from its last HELLO (kept while down); 0 unknown */
    uint8_t nc[NET_NONCE_BYTES]; /* our challenge in the HELLO_REQ we sent it (keyed) */
};

struct net_endpoint {
    struct nines_conf cfg;
    uint32_t self;
    uint64_t epoch;
    uint64_t incarnation;     /* this process's, sent in node HELLOs */
    struct net_transport *t;
    struct net_handlers h;
    struct ep_peer peers[NINES_MAX_NODES + 1];
    struct ep_cmap conns;
    struct net_stats st;
    struct arena arena;       /* handshake bodies */
    net_addr closing;         /* address we are closing ourselves (0 none) */
    bool client_auth;         /* keyed: plain (unkeyed) client HELLOs are refused too */
    uint32_t max_clients;     /* plain client connections at once (max_client_connections) */
    net_addr slow[EP_SLOW_MAX]; /* clients found at their queue bound, closed after dispatch */
    size_t nslow;
    struct ep_pend *pend;     /* EC_AUTH and EC_SCRAM connections */
    size_t npend, cappend;
    /* connections without a finished handshake: when each opened (swept
     * by net_poll; net/README.md "Limits": handshake_ms) */
    struct ep_young { net_addr a; uint64_t at_ms; } *young;
    size_t nyoung, capyoung;
    uint64_t next_sweep_ms;
    struct net_user *users;   /* who may log in (net_set_users), sorted by name */
    size_t nusers;
    uint8_t mock_key[SCRAM_KEY_LEN]; /* made-up salts for unknown users */
};

/* ---- connection map ---- */

static size_t cmap_hash(net_addr a, size_t cap)
{
    uint64_t x = a * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 32) & (cap - 1);
}

static enum ep_conn_state cmap_get(const struct ep_cmap *m, net_addr a)
{
    if (!m->cap)
        return EC_NONE;
    for (size_t i = cmap_hash(a, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == a)
            return (enum ep_conn_state)m->vals[i];
        if (m->keys[i] == 0)
            return EC_NONE;
    }
}

static int cmap_put(struct ep_cmap *m, net_addr a, enum ep_conn_state v);

static int cmap_grow(struct ep_cmap *m)
{
    struct ep_cmap old = *m;
    size_t cap = old.cap ? old.cap * 2 : 64;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    if (!m->keys || !m->vals) {
        free(m->keys);
        free(m->vals);
        *m = old;
        return nines_err(NINES_ENOMEM, "connection map of %zu", cap);
    }
    m->cap = cap;
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i])
            (void)cmap_put(m, old.keys[i], (enum ep_conn_state)old.vals[i]);
    free(old.keys);
    free(old.vals);
    return 0;
}

static int cmap_put(struct ep_cmap *m, net_addr a, enum ep_conn_state v)
{
    if ((m->n + 1) * 2 > m->cap) {
        int rc = cmap_grow(m);
        if (rc)
            return rc;
    }
    for (size_t i = cmap_hash(a, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == a || m->keys[i] == 0) {
            if (m->keys[i] == 0)
                m->n++;
            m->keys[i] = a;
            m->vals[i] = (uint8_t)v;
            return 0;
        }
    }
}

static void cmap_del(struct ep_cmap *m, net_addr a)
{
    if (!m->cap)
        return;
    size_t mask = m->cap - 1, i = cmap_hash(a, m->cap);
    while (m->keys[i] != a) {
        if (m->keys[i] == 0)
            return;
        i = (i + 1) & mask;
    }
    /* backward shift: move later members of the probe run into the hole */
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = cmap_hash(m->keys[j], m->cap);
        bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->vals[i] = 0;
    m->n--;
}

/* ---- helpers ---- */

static bool is_node_addr(net_addr a) { return a >= 1 && a <= NINES_MAX_NODES; }

static const char *addr_str(net_addr a, char *buf, size_t n)
{
    if (is_node_addr(a))
        snprintf(buf, n, "node %llu", (unsigned long long)a);
    else
        snprintf(buf, n, "conn %llu", (unsigned long long)a);
    return buf;
}

/* "conn A (10.0.0.7:41234)" or "node N (...)": the remote address when the
 * transport can tell, for log lines about refused peers. */
static const char *who_str(struct net_endpoint *ep, net_addr a, char *buf, size_t n)
{
    char name[96];
    if (!ep->t->ops->peer_name || ep->t->ops->peer_name(ep->t, a, name, sizeof name) != 0)
        snprintf(name, sizeof name, "unknown address");
    snprintf(buf, n, "%s %llu (%s)", is_node_addr(a) ? "node" : "conn", (unsigned long long)a,
             name);
    return buf;
}

static struct ep_pend *pend_find(struct net_endpoint *ep, net_addr a)
{
    for (size_t i = 0; i < ep->npend; i++)
        if (ep->pend[i].a == a)
            return &ep->pend[i];
    return NULL;
}

static void pend_drop(struct net_endpoint *ep, net_addr a)
{
    struct ep_pend *p = pend_find(ep, a);
    if (!p)
        return;
    free(p->buf);
    free(p->scram);
    *p = ep->pend[--ep->npend];
}

/* Close addr ourselves (the on_close upcall it triggers is not re-logged). */
static void ep_close(struct net_endpoint *ep, net_addr a, int err, const char *reason)
{
    net_addr prev = ep->closing;
    ep->closing = a;
    ep->t->ops->close(ep->t, a, err, reason);
    ep->closing = prev;
}

/* Bad input from addr: log, count, close that connection. Returns err. */
static int ep_bad(struct net_endpoint *ep, net_addr a, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ep_bad(struct net_endpoint *ep, net_addr a, int err, const char *fmt, ...)
{
    char reason[384], who[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (is_node_addr(a))
        addr_str(a, who, sizeof who);
    else
        who_str(ep, a, who, sizeof who);
    NLOG_WARN("net", "ep %u: closing %s: %s", ep->self, who, reason);
    ep->st.conns_closed_bad++;
    ep_close(ep, a, err, reason);
    return nines_err(err, "%s", reason);
}

/* Pack and queue one frame without destination checks. */
static int ep_queue(struct net_endpoint *ep, net_addr to, uint32_t type,
                    const ProtobufCMessage *body)
{
    size_t body_len = body ? protobuf_c_message_get_packed_size(body) : 0;
    size_t len = net_env_size(ep->self, ep->epoch, type, body_len);
    if (len > ep->cfg.max_frame_bytes)
        return nines_err(NINES_ETOOBIG, "message type %u of %zu bytes exceeds max_frame_bytes %u",
                         type, len, ep->cfg.max_frame_bytes);
    int err = 0;
    uint8_t *p = ep->t->ops->reserve(ep->t, to, len, &err);
    if (!p)
        return err ? err : nines_err(NINES_EIO, "transport gave no buffer");
    size_t n = net_env_pack(p, ep->self, ep->epoch, type, body, body_len);
    N_ASSERT(n == len);
    ep->t->ops->commit(ep->t, to, len);
    ep->st.msgs_out++;
    ep->st.bytes_out += len;
    return 0;
}

/* Refuse a handshake: HELLO_REF with the reason, then close. */
static int ep_refuse(struct net_endpoint *ep, net_addr a, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ep_refuse(struct net_endpoint *ep, net_addr a, int err, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    Nines__HelloRef ref = NINES__HELLO_REF__INIT;
    ref.error = err;
    ref.reason = reason;
    (void)ep_queue(ep, a, NINES__MSG_TYPE__HELLO_REF, &ref.base);
    return ep_bad(ep, a, err, "HELLO refused: %s", reason);
}

/* Handshake with node done; inc = the incarnation its HELLO carried. */
static void peer_up(struct net_endpoint *ep, uint32_t node, uint64_t inc)
{
    struct ep_peer *p = &ep->peers[node];
    bool restarted = p->incarnation != 0 && inc != 0 && inc != p->incarnation;
    if (restarted && inc < p->incarnation)
        NLOG_WARN("net",
                  "ep %u: node %u came back with incarnation %llu, lower than its previous "
                  "%llu: its clock went back, or two processes claim node %u",
                  ep->self, node, (unsigned long long)inc, (unsigned long long)p->incarnation,
                  node);
    else if (restarted)
        NLOG_INFO("net", "ep %u: node %u restarted (incarnation %llu, was %llu)", ep->self, node,
                  (unsigned long long)inc, (unsigned long long)p->incarnation);
    p->st = EP_UP;
    p->last_heard_ms = nclock_ms();
    p->incarnation = inc;
    NLOG_DEBUG("net", "ep %u: node %u up", ep->self, node);
    if (ep->h.on_peer_up)
        ep->h.on_peer_up(ep->h.ctx, node, restarted);
}

/* A process-wide increasing number from the wall clock (µs): endpoints of one
 * process never share one, and a restarted process gets a larger one as long
 * as the clock did not go back by more than the restart took. */
static uint64_t next_incarnation(void)
{
    static _Atomic uint64_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    uint64_t prev = atomic_load(&last), want;
    do {
        want = now > prev ? now : prev + 1;
    } while (!atomic_compare_exchange_weak(&last, &prev, want));
    return want;
}

/* ---- handshake ---- */

/* Is a's handshake still unfinished (no HELLO yet, or no proof yet)? */
static bool young_waits(const struct net_endpoint *ep, net_addr a)
{
    enum ep_conn_state cs = cmap_get(&ep->conns, a);
    return cs == EC_NEW || cs == EC_AUTH || cs == EC_SCRAM;
}

static int young_add(struct net_endpoint *ep, net_addr a)
{
    if (ep->nyoung == ep->capyoung) {
        /* drop the ones that finished (or closed) before growing */
        size_t k = 0;
        for (size_t i = 0; i < ep->nyoung; i++)
            if (young_waits(ep, ep->young[i].a))
                ep->young[k++] = ep->young[i];
        ep->nyoung = k;
    }
    if (ep->nyoung == ep->capyoung) {
        size_t cap = ep->capyoung ? ep->capyoung * 2 : 64;
        struct ep_young *y = realloc(ep->young, cap * sizeof *y);
        if (!y)
            return NINES_ENOMEM;
        ep->young = y;
        ep->capyoung = cap;
    }
    ep->young[ep->nyoung++] = (struct ep_young){a, nclock_ms()};
    return 0;
}

/* Close connections whose handshake did not finish within handshake_ms: a
 * peer that connects and says nothing holds no resource for long. */
static void young_sweep(struct net_endpoint *ep)
{
    uint64_t now = nclock_ms();
    if (now < ep->next_sweep_ms || !ep->nyoung)
        return;
    ep->next_sweep_ms = now + 100;
    uint32_t limit = ep->cfg.handshake_ms ? ep->cfg.handshake_ms : 10000;
    size_t k = 0;
    for (size_t i = 0; i < ep->nyoung; i++) {
        struct ep_young y = ep->young[i];
        if (!young_waits(ep, y.a))
            continue;
        if (now - y.at_ms < limit) {
            ep->young[k++] = y;
            continue;
        }
        char who[160], reason[160];
        snprintf(reason, sizeof reason, "its handshake did not finish within %u ms "
                 "(handshake_ms)", limit);
        if (ep->st.handshakes_timed_out++ % 100 == 0)
            NLOG_WARN("net", "ep %u: closing %s: %s (%llu so far)", ep->self,
                      who_str(ep, y.a, who, sizeof who), reason,
                      (unsigned long long)ep->st.handshakes_timed_out);
        ep_close(ep, y.a, NINES_ETIMEDOUT, reason);
    }
    ep->nyoung = k;
}

static int refuse_full(struct net_endpoint *ep, net_addr a);
static void users_free(struct net_endpoint *ep);

/* Room for one more connection waiting for its proof (key or password). */
static int pend_room(struct net_endpoint *ep, net_addr a)
{
    if (ep->npend >= EP_AUTH_MAX)
        return ep_refuse(ep, a, NINES_EAGAIN,
                         "%d connections already wait for their key or password proof",
                         EP_AUTH_MAX);
    if (ep->npend == ep->cappend) {
        size_t cap = ep->cappend ? ep->cappend * 2 : 8;
        struct ep_pend *np = realloc(ep->pend, cap * sizeof *np);
        if (!np)
            return ep_bad(ep, a, NINES_ENOMEM, "no memory for handshake state");
        ep->pend = np;
        ep->cappend = cap;
    }
    return 0;
}

static const struct net_user *user_find(const struct net_endpoint *ep, const char *name)
{
    size_t lo = 0, hi = ep->nusers;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(ep->users[mid].name, name);
        if (c == 0)
            return &ep->users[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A user's HELLO (client_auth scram-sha-256): answer the client-first-
 * message with the server-first in HELLO_CONF and wait for its proof in
 * HELLO_AUTH. An unknown user gets the same exchange with a made-up salt
 * and fails at the proof, as a wrong password does (no user probing). */
static int scram_begin(struct net_endpoint *ep, net_addr a, const Nines__HelloReq *req,
                       Nines__HelloConf *conf)
{
    int rc = pend_room(ep, a);
    if (rc)
        return rc;
    if (strlen(req->user) > NET_USER_NAME_MAX)
        return ep_refuse(ep, a, NINES_EAUTH, "user name of %zu bytes (at most %d)",
                         strlen(req->user), NET_USER_NAME_MAX);
    struct ep_pend p = {.a = a, .role = (uint32_t)req->role};
    who_str(ep, a, p.who, sizeof p.who);
    snprintf(p.user, sizeof p.user, "%s", req->user);
    const struct net_user *u = user_find(ep, req->user);
    p.urole = u ? u->role : 0;
    if (!(p.scram = malloc(sizeof *p.scram)))
        return ep_bad(ep, a, NINES_ENOMEM, "no memory for a login");
    char first[SCRAM_MSG_MAX + 128], why[160];
    if (scram_srv_init(p.scram, u ? &u->v : NULL, ep->mock_key, req->user, NULL) ||
        scram_srv_first(p.scram, (const char *)req->scram.data, req->scram.len, first,
                        sizeof first, why, sizeof why)) {
        free(p.scram);
        return ep_refuse(ep, a, NINES_EAUTH, "user \"%s\": %s", p.user,
                         p.scram ? why : "SCRAM failed");
    }
    conf->scram.data = (uint8_t *)first;
    conf->scram.len = strlen(first);
    rc = ep_queue(ep, a, NINES__MSG_TYPE__HELLO_CONF, &conf->base);
    if (rc == 0)
        rc = cmap_put(&ep->conns, a, EC_SCRAM);
    if (rc) {
        free(p.scram);
        return ep_bad(ep, a, rc, "cannot answer a login: %s", nines_errdetail());
    }
    ep->pend[ep->npend++] = p;
    return 0;
}

/* Keyed HELLO_REQ passed every other check: answer HELLO_CONF with our
 * challenge and proof, and wait for the connector's HELLO_AUTH before
 * binding or delivering anything (node = 0 for a client). */
static int auth_begin(struct net_endpoint *ep, net_addr a, const Nines__HelloReq *req,
                      uint32_t node, Nines__HelloConf *conf)
{
    int rc = pend_room(ep, a);
    if (rc)
        return rc;
    struct ep_pend p = {.a = a, .role = (uint32_t)req->role, .node = node,
                        .inc = req->incarnation};
    memcpy(p.nc, req->nonce.data, NET_NONCE_BYTES);
    who_str(ep, a, p.who, sizeof p.who);
    uint8_t proof[NET_PROOF_BYTES];
    if (net_auth_nonce(p.na) ||
        net_auth_proof(ep->cfg.key, NET_AUTH_ACCEPTOR, ep->cfg.cluster, p.role, node, ep->self,
                       p.nc, p.na, proof))
        return ep_bad(ep, a, NINES_ESYS, "cannot answer the key challenge: %s",
                      nines_errdetail());
    conf->nonce.data = p.na;
    conf->nonce.len = NET_NONCE_BYTES;
    conf->proof.data = proof;
    conf->proof.len = NET_PROOF_BYTES;
    rc = ep_queue(ep, a, NINES__MSG_TYPE__HELLO_CONF, &conf->base);
    if (rc)
        return ep_bad(ep, a, rc, "cannot queue HELLO_CONF: %s", nines_errdetail());
    rc = cmap_put(&ep->conns, a, EC_AUTH);
    if (rc)
        return ep_bad(ep, a, rc, "no memory for handshake state");
    ep->pend[ep->npend++] = p;
    return 0;
}

static int deliver(struct net_endpoint *ep, net_addr a, struct net_msg_in *m, uint32_t ver,
                   uint32_t want_sender, size_t frame_len);

/* A frame on a connection waiting for its HELLO_AUTH: the proof, a refusal
 * of our own proof, or a frame the connector queued before it had our
 * challenge (buffered within a bound, delivered only once the proof holds). */
static int auth_frame(struct net_endpoint *ep, net_addr a, const struct net_msg_in *m,
                      uint32_t ver, const uint8_t *buf, size_t len)
{
    struct ep_pend *p = pend_find(ep, a);
    char who[160];
    if (!p)
        return ep_bad(ep, a, NINES_ESTATE, "connection waits for a proof it never asked for");
    if (m->type == NINES__MSG_TYPE__HELLO_REF) {
        arena_reset(&ep->arena);
        Nines__HelloRef *ref =
            nines__hello_ref__unpack(arena_pb_allocator(&ep->arena), m->body_len, m->body);
        if (!ref)
            return ep_bad(ep, a, NINES_EPROTO, "HELLO_REF body does not decode");
        char reason[256];
        snprintf(reason, sizeof reason, "%s", ref->reason);
        return ep_bad(ep, a, NINES_EAUTH, "%s%u refused our key proof: %s",
                      p->role == NINES__ROLE__ROLE_NODE ? "node " : "client ", p->node, reason);
    }
    if (m->type != NINES__MSG_TYPE__HELLO_AUTH) {
        if (m->type >= NINES__MSG_TYPE__HELLO_REQ && m->type <= NINES__MSG_TYPE__HELLO_REF)
            return ep_bad(ep, a, NINES_EPROTO, "HELLO message type %u before HELLO_AUTH",
                          m->type);
        size_t bound = ep->cfg.send_queue_bytes < EP_AUTH_BUF_MAX ? ep->cfg.send_queue_bytes
                                                                 : EP_AUTH_BUF_MAX;
        if (p->len + 4 + len > bound)
            return ep_bad(ep, a, NINES_EPROTO,
                          "more than %zu bytes before its key proof (HELLO_AUTH)", bound);
        if (p->len + 4 + len > p->cap) {
            size_t cap = p->cap ? p->cap : 4096;
            while (cap < p->len + 4 + len)
                cap *= 2;
            uint8_t *nb = realloc(p->buf, cap);
            if (!nb)
                return ep_bad(ep, a, NINES_ENOMEM, "no memory for frames before the key proof");
            p->buf = nb;
            p->cap = cap;
        }
        uint32_t l32 = (uint32_t)len;
        memcpy(p->buf + p->len, &l32, 4);
        memcpy(p->buf + p->len + 4, buf, len);
        p->len += 4 + len;
        return 0;
    }
    if (ver != NINES__PROTO_VERSION__PROTO_VERSION_CURRENT)
        return ep_bad(ep, a, NINES_EVERSION, "protocol version %u, expected %u", ver,
                      (unsigned)NINES__PROTO_VERSION__PROTO_VERSION_CURRENT);
    arena_reset(&ep->arena);
    Nines__HelloAuth *au =
        nines__hello_auth__unpack(arena_pb_allocator(&ep->arena), m->body_len, m->body);
    if (!au)
        return ep_bad(ep, a, NINES_EPROTO, "HELLO_AUTH body (%zu bytes) does not decode",
                      m->body_len);
    if (m->sender != p->node)
        return ep_refuse(ep, a, NINES_EPROTO, "HELLO_AUTH with Envelope.sender %u (want %u)",
                         m->sender, p->node);
    enum ep_conn_state client_state = EC_CLIENT_AUTH;
    if (p->scram) {
        char fin[256], why[160];
        int src = scram_srv_final(p->scram, (const char *)au->scram.data, au->scram.len, fin,
                                  sizeof fin, why, sizeof why);
        if (src == SCRAM_EAUTH) {
            /* the same answer for a wrong password and an unknown user */
            NLOG_WARN("net", "ep %u: %s: login of user \"%s\" refused: %s", ep->self, p->who,
                      p->user, p->urole ? "wrong password" : "no such user");
            ep->st.logins_refused++;
            return ep_refuse(ep, a, NINES_EAUTH, "password authentication failed for user "
                             "\"%s\"", p->user);
        }
        if (src)
            return ep_refuse(ep, a, NINES_EAUTH, "login of user \"%s\": %s", p->user, why);
        if (ep->st.clients >= ep->max_clients)
            return refuse_full(ep, a);
        Nines__HelloAuth ok = NINES__HELLO_AUTH__INIT;
        ok.scram.data = (uint8_t *)fin;
        ok.scram.len = strlen(fin);
        ok.role = p->urole;
        int qrc = ep_queue(ep, a, NINES__MSG_TYPE__HELLO_AUTH, &ok.base);
        if (qrc)
            return ep_bad(ep, a, qrc, "cannot queue HELLO_AUTH: %s", nines_errdetail());
        client_state = p->urole == NET_ROLE_ADMIN    ? EC_USER_ADMIN
                       : p->urole == NET_ROLE_WRITER ? EC_USER_WRITER
                                                     : EC_USER_READER;
        NLOG_INFO("net", "ep %u: %s logged in as user \"%s\" (role %u)", ep->self, p->who,
                  p->user, p->urole);
        goto proven;
    }
    uint8_t want[NET_PROOF_BYTES];
    if (net_auth_proof(ep->cfg.key, NET_AUTH_CONNECTOR, ep->cfg.cluster, p->role, p->node,
                       ep->self, p->nc, p->na, want))
        return ep_bad(ep, a, NINES_ESYS, "cannot check the key proof: %s", nines_errdetail());
    if (!net_auth_check(want, au->proof.data, au->proof.len)) {
        if (p->role == NINES__ROLE__ROLE_NODE)
            return ep_refuse(ep, a, NINES_EAUTH,
                             "the proof of the cluster key from node %u does not match: it has "
                             "another cluster's key", p->node);
        return ep_refuse(ep, a, NINES_EAUTH,
                         "the client's proof of the cluster key does not match: it has another "
                         "cluster's key");
    }
proven:;
    /* Proven: take the state out of the table before any upcall. */
    struct ep_pend done = *p;
    *p = ep->pend[--ep->npend];
    free(done.scram);
    done.scram = NULL;
    cmap_del(&ep->conns, a);
    net_addr to = a;
    if (done.role == NINES__ROLE__ROLE_NODE) {
        int rc = ep->t->ops->bind(ep->t, a, done.node);
        if (rc) {
            char why[256];
            snprintf(why, sizeof why, "%s", nines_errdetail());
            free(done.buf);
            ep_close(ep, a, rc, why);
            return nines_err(rc, "bind to node %u: %s", done.node, why);
        }
        NLOG_DEBUG("net", "ep %u: node %u proved the cluster key", ep->self, done.node);
        peer_up(ep, done.node, done.inc);
        to = done.node;
    } else {
        int rc = cmap_put(&ep->conns, a, client_state);
        if (rc) {
            free(done.buf);
            return ep_bad(ep, a, rc, "no memory for client state");
        }
        if (ec_counted(client_state))
            ep->st.clients++;
        else
            NLOG_DEBUG("net", "ep %u: %s proved the cluster key", ep->self,
                       who_str(ep, a, who, sizeof who));
    }
    /* Deliver what it sent before its proof, in order, while it stays up. */
    int rc = 0;
    for (size_t off = 0; off < done.len;) {
        if (done.role == NINES__ROLE__ROLE_NODE ? ep->peers[done.node].st != EP_UP
                                                : cmap_get(&ep->conns, a) != client_state)
            break;
        uint32_t fl;
        memcpy(&fl, done.buf + off, 4);
        const uint8_t *f = done.buf + off + 4;
        off += 4 + fl;
        struct net_msg_in fm;
        uint32_t fver;
        rc = net_env_parse_ver(f, fl, &fm, &fver);
        if (rc) {
            char why[256];
            snprintf(why, sizeof why, "%s", nines_errdetail());
            rc = ep_bad(ep, to, rc, "malformed envelope: %s", why);
            break;
        }
        if (done.role == NINES__ROLE__ROLE_NODE)
            ep->peers[done.node].last_heard_ms = nclock_ms();
        rc = deliver(ep, to, &fm, fver, done.node, fl);
        if (rc < 0)
            break;
    }
    free(done.buf);
    return rc < 0 ? rc : 0;
}

/* A plain client beyond max_client_connections (net/README.md "Limits"):
 * HELLO_REF NINES_EFULL naming the limit, close. Not bad input: counted in
 * clients_refused, logged at WARN for the first refusal and then every
 * 1000th (a flood does not flood the log). */
static int refuse_full(struct net_endpoint *ep, net_addr a)
{
    char reason[256], who[160];
    snprintf(reason, sizeof reason,
             "node %u holds its maximum of %u client connections (max_client_connections); "
             "retry later or connect to another node", ep->self, ep->max_clients);
    Nines__HelloRef ref = NINES__HELLO_REF__INIT;
    ref.error = NINES_EFULL;
    ref.reason = reason;
    (void)ep_queue(ep, a, NINES__MSG_TYPE__HELLO_REF, &ref.base);
    if (ep->st.clients_refused++ % 1000 == 0)
        NLOG_WARN("net", "ep %u: refusing %s: %s (%llu refused so far)", ep->self,
                  who_str(ep, a, who, sizeof who), reason,
                  (unsigned long long)ep->st.clients_refused);
    ep_close(ep, a, NINES_EFULL, reason);
    return nines_err(NINES_EFULL, "%s", reason);
}

static int hello_accept(struct net_endpoint *ep, net_addr a, const struct net_msg_in *m,
                        uint32_t ver)
{
    if (m->type != NINES__MSG_TYPE__HELLO_REQ)
        return ep_bad(ep, a, NINES_EPROTO, "first frame is message type %u, not HELLO_REQ",
                      m->type);
    if (ver != NINES__PROTO_VERSION__PROTO_VERSION_CURRENT)
        return ep_refuse(ep, a, NINES_EVERSION, "protocol version %u, expected %u", ver,
                         (unsigned)NINES__PROTO_VERSION__PROTO_VERSION_CURRENT);
    arena_reset(&ep->arena);
    Nines__HelloReq *req =
        nines__hello_req__unpack(arena_pb_allocator(&ep->arena), m->body_len, m->body);
    if (!req)
        return ep_bad(ep, a, NINES_EPROTO, "HELLO_REQ body (%zu bytes) does not decode",
                      m->body_len);
    if (strcmp(req->cluster, ep->cfg.cluster) != 0)
        return ep_refuse(ep, a, NINES_ECONFIG, "cluster '%.64s', expected '%s'", req->cluster,
                         ep->cfg.cluster);
    /* Cluster key policy (net/README.md "Handshake"): with a key, a node
     * (and, at the arbitrator, every peer) must take the challenge; a node
     * without a key refuses a keyed peer. Plain clients stay unkeyed. */
    bool keyed = req->nonce.len > 0;
    if (keyed && req->nonce.len != NET_NONCE_BYTES)
        return ep_refuse(ep, a, NINES_EPROTO, "HELLO_REQ nonce of %zu bytes (want %d)",
                         req->nonce.len, NET_NONCE_BYTES);
    if (ep->cfg.has_key && !keyed &&
        (req->role == NINES__ROLE__ROLE_NODE || ep->client_auth))
        return ep_refuse(ep, a, NINES_EAUTH,
                         "%s HELLO without the cluster key: cluster '%s' requires its key "
                         "(cluster_key) on every %s link",
                         req->role == NINES__ROLE__ROLE_NODE ? "node" : "client", ep->cfg.cluster,
                         req->role == NINES__ROLE__ROLE_NODE ? "node" : "admin and arbitrator");
    if (!ep->cfg.has_key && keyed)
        return ep_refuse(ep, a, NINES_EAUTH,
                         "the peer proves a cluster key but node %u has none (no cluster_key "
                         "in its cluster file)", ep->self);
    Nines__HelloConf conf = NINES__HELLO_CONF__INIT;
    conf.node_id = ep->self;
    conf.conn_id = a;
    conf.incarnation = ep->incarnation;
    switch (req->role) {
    case NINES__ROLE__ROLE_NODE: {
        uint32_t id = req->node_id;
        if (!nines_conf_node(&ep->cfg, id))
            return ep_refuse(ep, a, NINES_ECONFIG, "node id %u is not in the configuration", id);
        if (id == ep->self)
            return ep_refuse(ep, a, NINES_EINVAL, "node id %u is this node", id);
        if (m->sender != id)
            return ep_refuse(ep, a, NINES_EPROTO, "Envelope.sender %u differs from node_id %u",
                             m->sender, id);
        if (id > ep->self)
            return ep_refuse(ep, a, NINES_EINVAL,
                             "node %u dialled node %u; the lower id dials the higher", id,
                             ep->self);
        int rc = ep->t->ops->may_bind ? ep->t->ops->may_bind(ep->t, a, id) : 0;
        if (rc) {
            char why[256];
            snprintf(why, sizeof why, "%s", nines_errdetail());
            return ep_refuse(ep, a, rc, "%s", why);
        }
        if (keyed)
            return auth_begin(ep, a, req, id, &conf);
        rc = ep_queue(ep, a, NINES__MSG_TYPE__HELLO_CONF, &conf.base);
        if (rc)
            return ep_bad(ep, a, rc, "cannot queue HELLO_CONF: %s", nines_errdetail());
        cmap_del(&ep->conns, a);
        rc = ep->t->ops->bind(ep->t, a, id);
        if (rc) {
            char why[256];
            snprintf(why, sizeof why, "%s", nines_errdetail());
            ep_close(ep, a, rc, why);
            return nines_err(rc, "bind to node %u: %s", id, why);
        }
        peer_up(ep, id, req->incarnation);
        return 0;
    }
    case NINES__ROLE__ROLE_CLIENT: {
        /* A client stays a client for the life of the connection: a later
         * HELLO is refused (deliver), and its Envelope.sender must stay 0,
         * so it never reaches a node's sender class. Nothing stops a
         * program from saying ROLE_NODE with a configured lower id in its
         * first HELLO unless the cluster has a key (then it must prove it;
         * net/README.md "Handshake"). A keyed client is an admin tool or a
         * node at the arbitrator: it proves the key the same way. */
        if (m->sender != 0)
            return ep_refuse(ep, a, NINES_EPROTO, "client HELLO with Envelope.sender %u (want 0)",
                             m->sender);
        if (keyed)
            return auth_begin(ep, a, req, 0, &conf);
        if (ep->st.clients >= ep->max_clients)
            return refuse_full(ep, a);
        if (ep->cfg.client_auth == NINES_CLIENT_AUTH_SCRAM) {
            if (!req->user[0] || !req->scram.len)
                return ep_refuse(ep, a, NINES_EAUTH, "node %u takes logins only (client_auth "
                                 "scram-sha-256): connect with a user and password", ep->self);
            return scram_begin(ep, a, req, &conf);
        }
        int rc = ep_queue(ep, a, NINES__MSG_TYPE__HELLO_CONF, &conf.base);
        if (rc)
            return ep_bad(ep, a, rc, "cannot queue HELLO_CONF: %s", nines_errdetail());
        rc = cmap_put(&ep->conns, a, EC_CLIENT);
        if (rc)
            return ep_bad(ep, a, rc, "no memory for client state");
        ep->st.clients++;
        NLOG_DEBUG("net", "ep %u: client conn %llu connected", ep->self, (unsigned long long)a);
        return 0;
    }
    default:
        return ep_refuse(ep, a, NINES_EPROTO, "role %d", (int)req->role);
    }
}

static int hello_reply(struct net_endpoint *ep, uint32_t node, const struct net_msg_in *m,
                       uint32_t ver)
{
    arena_reset(&ep->arena);
    if (m->type == NINES__MSG_TYPE__HELLO_REF) {
        Nines__HelloRef *ref =
            nines__hello_ref__unpack(arena_pb_allocator(&ep->arena), m->body_len, m->body);
        if (!ref)
            return ep_bad(ep, node, NINES_EPROTO, "HELLO_REF body does not decode");
        NLOG_WARN("net", "ep %u: node %u refused our HELLO: %s (%s)", ep->self, node,
                  ref->reason, nines_strerror(ref->error));
        ep_close(ep, node, NINES_ECLOSED, "HELLO refused");
        return nines_err(NINES_ECLOSED, "node %u refused our HELLO", node);
    }
    if (m->type != NINES__MSG_TYPE__HELLO_CONF)
        return ep_bad(ep, node, NINES_EPROTO, "message type %u before HELLO_CONF", m->type);
    if (ver != NINES__PROTO_VERSION__PROTO_VERSION_CURRENT)
        return ep_bad(ep, node, NINES_EVERSION, "protocol version %u, expected %u", ver,
                      (unsigned)NINES__PROTO_VERSION__PROTO_VERSION_CURRENT);
    Nines__HelloConf *conf =
        nines__hello_conf__unpack(arena_pb_allocator(&ep->arena), m->body_len, m->body);
    if (!conf)
        return ep_bad(ep, node, NINES_EPROTO, "HELLO_CONF body does not decode");
    if (conf->node_id != node || m->sender != node)
        return ep_bad(ep, node, NINES_EPROTO, "HELLO_CONF from node %u (sender %u), dialled %u",
                      conf->node_id, m->sender, node);
    if (ep->cfg.has_key) {
        char who[160];
        who_str(ep, node, who, sizeof who);
        uint8_t want[NET_PROOF_BYTES];
        if (conf->nonce.len != NET_NONCE_BYTES)
            return ep_bad(ep, node, NINES_EAUTH,
                          "%s answered without a key challenge: it has no cluster key", who);
        if (net_auth_proof(ep->cfg.key, NET_AUTH_ACCEPTOR, ep->cfg.cluster,
                           NINES__ROLE__ROLE_NODE, ep->self, node, ep->peers[node].nc,
                           conf->nonce.data, want))
            return ep_bad(ep, node, NINES_ESYS, "cannot check the key proof: %s",
                          nines_errdetail());
        if (!net_auth_check(want, conf->proof.data, conf->proof.len)) {
            Nines__HelloRef ref = NINES__HELLO_REF__INIT;
            ref.error = NINES_EAUTH;
            ref.reason = "the acceptor's proof of the cluster key does not match the "
                         "connector's key: the two have different cluster keys";
            (void)ep_queue(ep, node, NINES__MSG_TYPE__HELLO_REF, &ref.base);
            (void)ep->t->ops->flush(ep->t);
            return ep_bad(ep, node, NINES_EAUTH,
                          "%s: its proof of the cluster key does not match: it has another "
                          "cluster's key", who);
        }
        Nines__HelloAuth au = NINES__HELLO_AUTH__INIT;
        uint8_t proof[NET_PROOF_BYTES];
        if (net_auth_proof(ep->cfg.key, NET_AUTH_CONNECTOR, ep->cfg.cluster,
                           NINES__ROLE__ROLE_NODE, ep->self, node, ep->peers[node].nc,
                           conf->nonce.data, proof))
            return ep_bad(ep, node, NINES_ESYS, "cannot prove the cluster key: %s",
                          nines_errdetail());
        au.proof.data = proof;
        au.proof.len = NET_PROOF_BYTES;
        int rc = ep_queue(ep, node, NINES__MSG_TYPE__HELLO_AUTH, &au.base);
        if (rc)
            return ep_bad(ep, node, rc, "cannot queue HELLO_AUTH: %s", nines_errdetail());
    }
    peer_up(ep, node, conf->incarnation);
    return 0;
}

/* ---- after the handshake ---- */

static int deliver(struct net_endpoint *ep, net_addr a, struct net_msg_in *m, uint32_t ver,
                   uint32_t want_sender, size_t frame_len)
{
    if (ver != NINES__PROTO_VERSION__PROTO_VERSION_CURRENT)
        return ep_bad(ep, a, NINES_EVERSION, "protocol version %u, expected %u", ver,
                      (unsigned)NINES__PROTO_VERSION__PROTO_VERSION_CURRENT);
    if (m->sender != want_sender)
        return ep_bad(ep, a, NINES_EPROTO, "Envelope.sender %u on a connection of %s %u",
                      m->sender, want_sender ? "node" : "client", want_sender);
    if ((m->type >= NINES__MSG_TYPE__HELLO_REQ && m->type <= NINES__MSG_TYPE__HELLO_REF) ||
        m->type == NINES__MSG_TYPE__HELLO_AUTH)
        return ep_bad(ep, a, NINES_EPROTO, "HELLO message type %u after the handshake", m->type);
    if (m->type == 0 || (ep->h.known_type && !ep->h.known_type(ep->h.ctx, m->type)))
        return ep_bad(ep, a, NINES_EUNKNOWN_MSG, "unknown message type %u", m->type);
    ep->st.msgs_in++;
    ep->st.bytes_in += frame_len;
    m->from = a;
    int rc = ep->h.on_msg ? ep->h.on_msg(ep->h.ctx, m) : 0;
    if (rc < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        return ep_bad(ep, a, rc, "handler refused message type %u: %s", m->type, why);
    }
    return 0;
}

/* ---- transport upcalls ---- */

static void ep_on_connect(void *ctx, net_addr a, int outbound)
{
    struct net_endpoint *ep = ctx;
    if (outbound) {
        N_ASSERT(is_node_addr(a));
        uint32_t node = (uint32_t)a;
        Nines__HelloReq req = NINES__HELLO_REQ__INIT;
        req.cluster = ep->cfg.cluster;
        req.role = NINES__ROLE__ROLE_NODE;
        req.node_id = ep->self;
        req.incarnation = ep->incarnation;
        if (ep->cfg.has_key) {
            if (net_auth_nonce(ep->peers[node].nc)) {
                NLOG_WARN("net", "ep %u: no challenge for node %u: %s", ep->self, node,
                          nines_errdetail());
                ep_close(ep, a, NINES_ESYS, "no random challenge");
                return;
            }
            req.nonce.data = ep->peers[node].nc;
            req.nonce.len = NET_NONCE_BYTES;
        }
        int rc = ep_queue(ep, a, NINES__MSG_TYPE__HELLO_REQ, &req.base);
        if (rc) {
            NLOG_WARN("net", "ep %u: cannot send HELLO_REQ to node %u: %s", ep->self, node,
                      nines_errdetail());
            ep_close(ep, a, rc, "cannot send HELLO_REQ");
            return;
        }
        ep->peers[node].st = EP_HELLO_SENT;
        return;
    }
    /* at most max_client_connections wait for their handshake at a time */
    size_t waiting = 0;
    for (size_t i = 0; i < ep->nyoung; i++)
        waiting += young_waits(ep, ep->young[i].a);
    if (waiting >= ep->max_clients) {
        if (ep->st.handshakes_refused++ % 1000 == 0)
            NLOG_WARN("net", "ep %u: refusing conn %llu: %zu connections already wait for "
                      "their handshake (max_client_connections %u; %llu refused so far)",
                      ep->self, (unsigned long long)a, waiting, ep->max_clients,
                      (unsigned long long)ep->st.handshakes_refused);
        ep_close(ep, a, NINES_EFULL, "too many connections waiting for their handshake");
        return;
    }
    if (cmap_put(&ep->conns, a, EC_NEW) || young_add(ep, a)) {
        NLOG_WARN("net", "ep %u: no memory for conn %llu", ep->self, (unsigned long long)a);
        ep_close(ep, a, NINES_ENOMEM, "no memory");
    }
}

static int ep_on_frame(void *ctx, net_addr a, const uint8_t *buf, size_t len)
{
    struct net_endpoint *ep = ctx;
    struct net_msg_in m;
    uint32_t ver;
    int rc = net_env_parse_ver(buf, len, &m, &ver);
    if (rc) {
        char why[256];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        return ep_bad(ep, a, rc, "malformed envelope: %s", why);
    }
    m.from = a;
    if (is_node_addr(a)) {
        uint32_t node = (uint32_t)a;
        struct ep_peer *p = &ep->peers[node];
        switch (p->st) {
        case EP_HELLO_SENT:
            p->last_heard_ms = nclock_ms();
            return hello_reply(ep, node, &m, ver);
        case EP_UP:
            p->last_heard_ms = nclock_ms();
            return deliver(ep, a, &m, ver, node, len);
        case EP_DOWN:
            return ep_bad(ep, a, NINES_EPROTO, "frame type %u from node %u without a handshake",
                          m.type, node);
        default:
            return ep_bad(ep, a, NINES_ESTATE, "peer %u in bad state %d", node, (int)p->st);
        }
    }
    enum ep_conn_state cs = cmap_get(&ep->conns, a);
    switch (cs) {
    case EC_NEW:
        return hello_accept(ep, a, &m, ver);
    case EC_CLIENT:
    case EC_CLIENT_AUTH:
    case EC_USER_READER:
    case EC_USER_WRITER:
    case EC_USER_ADMIN:
        return deliver(ep, a, &m, ver, 0, len);
    case EC_AUTH:
    case EC_SCRAM:
        return auth_frame(ep, a, &m, ver, buf, len);
    case EC_NONE:
        return ep_bad(ep, a, NINES_EPROTO, "frame on a connection never announced");
    default:
        return ep_bad(ep, a, NINES_ESTATE, "connection in bad state %d", (int)cs);
    }
}

static bool is_input_error(int err)
{
    return err == NINES_EPROTO || err == NINES_ETOOBIG || err == NINES_ETRUNC ||
           err == NINES_EVERSION || err == NINES_EUNKNOWN_MSG;
}

static void ep_on_close(void *ctx, net_addr a, int err)
{
    struct net_endpoint *ep = ctx;
    if (ep->closing != a && is_input_error(err)) {
        char who[48];
        NLOG_WARN("net", "ep %u: closing %s: %s", ep->self, addr_str(a, who, sizeof who),
                  nines_errdetail());
        ep->st.conns_closed_bad++;
    }
    if (is_node_addr(a)) {
        uint32_t node = (uint32_t)a;
        enum ep_peer_state was = ep->peers[node].st;
        ep->peers[node].st = EP_DOWN;
        if (was == EP_UP) {
            NLOG_DEBUG("net", "ep %u: node %u down (%s)", ep->self, node, nines_strerror(err));
            if (ep->h.on_peer_down)
                ep->h.on_peer_down(ep->h.ctx, node, err);
        }
        return;
    }
    enum ep_conn_state cs = cmap_get(&ep->conns, a);
    cmap_del(&ep->conns, a);
    if (ec_counted(cs) && ep->st.clients > 0)
        ep->st.clients--;
    if (cs == EC_SCRAM)
        pend_drop(ep, a);
    if (cs == EC_AUTH) {
        struct ep_pend *p = pend_find(ep, a);
        if (p && ep->closing != a) {
            NLOG_WARN("net", "ep %u: %s claiming %s %u closed before its key proof (%s)",
                      ep->self, p->who,
                      p->role == NINES__ROLE__ROLE_NODE ? "node" : "client", p->node,
                      nines_strerror(err));
            ep->st.conns_closed_bad++;
        }
        pend_drop(ep, a);
    }
    if (ec_client(cs) && ep->h.on_client_close)
        ep->h.on_client_close(ep->h.ctx, a);
}

/* ---- public API ---- */

int net_endpoint_open_on(struct net_endpoint **out, const struct nines_conf *cfg, uint32_t self,
                         struct net_transport *t, const struct net_handlers *h)
{
    *out = NULL;
    int rc;
    if (!nines_conf_node(cfg, self)) {
        rc = nines_err(NINES_ECONFIG, "node %u is not in the cluster configuration", self);
        t->ops->destroy(t);
        return rc;
    }
    struct net_endpoint *ep = calloc(1, sizeof *ep);
    if (!ep) {
        t->ops->destroy(t);
        return nines_err(NINES_ENOMEM, "endpoint");
    }
    ep->cfg = *cfg;
    ep->self = self;
    ep->incarnation = next_incarnation();
    _Static_assert(SCRAM_KEY_LEN == NET_NONCE_BYTES, "mock key from one nonce");
    if (net_auth_nonce(ep->mock_key)) {
        rc = nines_err(NINES_ESYS, "no random bytes for the login secret: %s", nines_errdetail());
        t->ops->destroy(t);
        free(ep);
        return rc;
    }
    ep->t = t;
    ep->h = *h;
    ep->max_clients = cfg->max_client_connections ? cfg->max_client_connections : 1024;
    arena_init(&ep->arena, 4096);
    t->cb.ctx = ep;
    t->cb.on_connect = ep_on_connect;
    t->cb.on_frame = ep_on_frame;
    t->cb.on_close = ep_on_close;
    rc = t->ops->start(t);
    if (rc) {
        char why[256];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        net_endpoint_close(ep);
        return nines_err(rc, "%s", why);
    }
    *out = ep;
    return 0;
}

int net_endpoint_open(struct net_endpoint **out, const struct nines_conf *cfg, uint32_t self,
                      const struct net_handlers *h)
{
    *out = NULL;
    struct net_transport *t = NULL;
    int rc;
    if (strcmp(cfg->transport, "rdma") == 0) {
        rc = net_rdma_create(&t, cfg, self);
        if (rc == NINES_ENODEV) {
            NLOG_WARN("net", "rdma: no usable RDMA device (%s); falling back to TCP",
                      nines_errdetail());
            t = NULL;
        } else if (rc) {
            return rc;
        } else {
            /* nodes over RDMA, clients on the TCP port */
            struct net_transport *rd = t;
            rc = net_dual_create(&t, cfg, self, rd);
            if (rc)
                return rc;
        }
    } else if (strcmp(cfg->transport, "tcp") != 0) {
        return nines_err(NINES_ECONFIG, "unknown transport '%s' (want tcp or rdma)",
                         cfg->transport);
    }
    if (!t) {
        rc = net_tcp_create(&t, cfg, self);
        if (rc)
            return rc;
    }
    return net_endpoint_open_on(out, cfg, self, t, h);
}

void net_endpoint_close(struct net_endpoint *ep)
{
    if (!ep)
        return;
    ep->t->ops->destroy(ep->t);
    free(ep->conns.keys);
    free(ep->conns.vals);
    for (size_t i = 0; i < ep->npend; i++) {
        free(ep->pend[i].buf);
        free(ep->pend[i].scram);
    }
    free(ep->pend);
    free(ep->young);
    users_free(ep);
    arena_destroy(&ep->arena);
    free(ep);
}

int net_send(struct net_endpoint *ep, net_addr to, uint32_t type, const ProtobufCMessage *body)
{
    if (is_node_addr(to)) {
        if (to == ep->self || !nines_conf_node(&ep->cfg, (uint32_t)to))
            return nines_err(NINES_EINVAL, "send to node %llu: not a peer of node %u",
                             (unsigned long long)to, ep->self);
    } else if (!ec_client(cmap_get(&ep->conns, to))) {
        return nines_err(NINES_EINVAL, "send to %llu: no such client connection",
                         (unsigned long long)to);
    }
    int rc = ep_queue(ep, to, type, body);
    if (rc == NINES_EAGAIN && !is_node_addr(to)) {
        /* A client whose queue is at send_queue_bytes has stopped reading
         * (net/README.md "Limits"): it is closed at the end of this call's
         * dispatch, not here (we may be inside its own on_msg). */
        if (ep->nslow < EP_SLOW_MAX) {
            bool dup = false;
            for (size_t i = 0; i < ep->nslow; i++)
                dup |= ep->slow[i] == to;
            if (!dup)
                ep->slow[ep->nslow++] = to;
        }
        rc = nines_err(NINES_EAGAIN, "client connection %llu stopped reading: its send queue is "
                       "at send_queue_bytes %u; it is being closed", (unsigned long long)to,
                       ep->cfg.send_queue_bytes);
    }
    return rc;
}

/* Close the clients net_send found at their queue bound. */
static void close_slow(struct net_endpoint *ep)
{
    while (ep->nslow) {
        net_addr a = ep->slow[--ep->nslow];
        enum ep_conn_state cs = cmap_get(&ep->conns, a);
        if (!ec_client(cs))
            continue; /* closed meanwhile */
        char who[160], reason[200];
        snprintf(reason, sizeof reason, "it stopped reading: its send queue reached "
                 "send_queue_bytes %u", ep->cfg.send_queue_bytes);
        NLOG_WARN("net", "ep %u: closing %s: %s", ep->self, who_str(ep, a, who, sizeof who),
                  reason);
        ep->st.slow_closed++;
        ep_close(ep, a, NINES_EFULL, reason);
    }
}

int net_flush(struct net_endpoint *ep) { return ep->t->ops->flush(ep->t); }

int net_poll(struct net_endpoint *ep, int timeout_ms)
{
    young_sweep(ep);
    close_slow(ep);
    int rc = ep->t->ops->flush(ep->t);
    if (rc < 0)
        return rc;
    rc = ep->t->ops->poll(ep->t, timeout_ms);
    close_slow(ep);
    return rc;
}

void net_wake(struct net_endpoint *ep) { ep->t->ops->wake(ep->t); }

void net_set_epoch(struct net_endpoint *ep, uint64_t epoch) { ep->epoch = epoch; }

void net_require_client_key(struct net_endpoint *ep, bool on) { ep->client_auth = on; }

static void users_free(struct net_endpoint *ep)
{
    if (ep->users)
        memset(ep->users, 0, ep->nusers * sizeof *ep->users); /* the verifiers' keys */
    free(ep->users);
    ep->users = NULL;
    ep->nusers = 0;
}

int net_set_users(struct net_endpoint *ep, const struct net_user *users, size_t n)
{
    struct net_user *c = n ? malloc(n * sizeof *c) : NULL;
    if (n && !c)
        return nines_err(NINES_ENOMEM, "no memory for %zu users", n);
    if (n)
        memcpy(c, users, n * sizeof *c);
    for (size_t i = 1; i < n; i++)
        if (strcmp(c[i - 1].name, c[i].name) >= 0) {
            free(c);
            return nines_err(NINES_EINVAL, "users not sorted by name at %zu ('%s')", i,
                             users[i].name);
        }
    users_free(ep);
    ep->users = c;
    ep->nusers = n;
    return 0;
}

uint32_t net_conn_role(const struct net_endpoint *ep, net_addr addr)
{
    if (is_node_addr(addr))
        return 0;
    if (ep->cfg.client_auth == NINES_CLIENT_AUTH_TRUST)
        return NET_ROLE_ADMIN; /* no users: every client may do everything */
    switch (cmap_get(&ep->conns, addr)) {
    case EC_CLIENT:         /* client_auth trust: no users, every client is an admin */
    case EC_CLIENT_AUTH:    /* proved the cluster key: an admin tool */
    case EC_USER_ADMIN:
        return NET_ROLE_ADMIN;
    case EC_USER_WRITER:
        return NET_ROLE_WRITER;
    case EC_USER_READER:
        return NET_ROLE_READER;
    case EC_NONE:
    case EC_NEW:
    case EC_AUTH:
    case EC_SCRAM:
    default:
        return 0;
    }
}

bool net_conn_keyed(const struct net_endpoint *ep, net_addr addr)
{
    if (is_node_addr(addr))
        return ep->cfg.has_key && ep->peers[addr].st == EP_UP;
    return cmap_get(&ep->conns, addr) == EC_CLIENT_AUTH;
}

uint64_t net_epoch(const struct net_endpoint *ep) { return ep->epoch; }

uint64_t net_incarnation(const struct net_endpoint *ep) { return ep->incarnation; }

uint64_t net_peer_incarnation(const struct net_endpoint *ep, uint32_t node)
{
    return node >= 1 && node <= NINES_MAX_NODES ? ep->peers[node].incarnation : 0;
}

const char *net_peer_name(struct net_endpoint *ep, net_addr addr, char *buf, size_t n)
{
    if (!ep->t->ops->peer_name || ep->t->ops->peer_name(ep->t, addr, buf, n) != 0)
        snprintf(buf, n, "unknown address");
    return buf;
}

const char *net_transport_name(const struct net_endpoint *ep) { return ep->t->ops->name; }

bool net_peer_reachable(const struct net_endpoint *ep, uint32_t node)
{
    return node >= 1 && node <= NINES_MAX_NODES && ep->peers[node].st == EP_UP;
}

uint64_t net_peer_last_heard_ms(const struct net_endpoint *ep, uint32_t node)
{
    return node >= 1 && node <= NINES_MAX_NODES ? ep->peers[node].last_heard_ms : 0;
}

void net_close_conn(struct net_endpoint *ep, net_addr addr, int err, const char *reason)
{
    char who[48];
    NLOG_INFO("net", "ep %u: closing %s: %s", ep->self, addr_str(addr, who, sizeof who),
              reason ? reason : nines_strerror(err));
    ep_close(ep, addr, err, reason);
}

void net_get_stats(const struct net_endpoint *ep, struct net_stats *out)
{
    *out = ep->st;
    out->writes = ep->t->writes;
}
