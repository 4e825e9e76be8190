/* Client connection: dial + HELLO, the request table (req_id -> callback),
 * a write buffer of queued frames written in one send(), a read buffer
 * parsed into frames (net/README.md "Frame format") and Envelopes
 * (net_env_parse), timeouts, and failover to the next address. */
#include "cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "nassert.h"
#include "scram.h"
#include "nclock.h"
#include "nhash.h"
#include "net/net.h"
#include "nines_net.pb-c.h"

#define CLI_HDR 4u
#define CLI_READ_CHUNK (64u * 1024u)
#define CLI_SCAN_EVERY_MS 10u   /* how often pending requests are checked for timeouts */

uint64_t cli_now_ms(void) { return nclock_ms(); }

int cli_fail(struct nines_conn *c, int rc, const char *fmt, ...)
{
    char buf[CLI_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (c)
        snprintf(c->detail, sizeof c->detail, "%s", buf);
    return nines_err(rc, "%s", buf);
}

static void cli_put_len(uint8_t *p, uint32_t n)
{
    p[0] = (uint8_t)n;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 24);
}

static uint32_t cli_get_len(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- buffers ---------------------------------------------------------- */

static int cli_grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    size_t n = *cap ? *cap : 16384;
    while (n < need)
        n *= 2;
    uint8_t *b = realloc(*buf, n);
    if (!b)
        return nines_err(NINES_ENOMEM, "client: buffer of %zu bytes", n);
    *buf = b;
    *cap = n;
    return 0;
}

/* ---- request slots ---------------------------------------------------- */

static int cli_slot_alloc(struct nines_conn *c, uint32_t *out)
{
    if (c->free_head == UINT32_MAX) {
        uint32_t n = c->nslots ? c->nslots * 2 : 64;
        if (n > CLI_SLOT_MAX)
            n = CLI_SLOT_MAX;
        if (n <= c->nslots)
            return cli_fail(c, NINES_EFULL, "client: %u requests in flight on one connection "
                            "(the limit)", c->nslots);
        struct cli_slot *s = realloc(c->slots, n * sizeof *s);
        if (!s)
            return cli_fail(c, NINES_ENOMEM, "client: request table of %u slots", n);
        memset(s + c->nslots, 0, (n - c->nslots) * sizeof *s);
        for (uint32_t i = n; i-- > c->nslots;) {
            s[i].next_free = c->free_head;
            c->free_head = i;
        }
        c->slots = s;
        c->nslots = n;
    }
    uint32_t i = c->free_head;
    c->free_head = c->slots[i].next_free;
    *out = i;
    return 0;
}

static void cli_slot_release(struct nines_conn *c, uint32_t i)
{
    c->slots[i].st = CLI_SLOT_FREE;
    c->slots[i].next_free = c->free_head;
    c->free_head = i;
}

/* Free the slot, then call its callback (which may submit again). */
void cli_complete(struct nines_conn *c, uint32_t i, int rc, const Nines__TxnConf *conf,
                  const char *detail)
{
    struct cli_slot s = c->slots[i];
    N_ASSERT(s.st != CLI_SLOT_FREE);
    bool via = s.st != CLI_SLOT_PENDING || s.attempt > 1;
    cli_slot_release(c, i);
    c->inflight--;
    c->ncallbacks++;
    c->ans_info = (struct nines_answer_info){.txn = conf ? conf->txn : 0,
                                             .key_client = c->client_id,
                                             .key_seq = s.key_seq,
                                             .attempts = s.attempt,
                                             .via_failover = via};
    bool was = c->in_dispatch;
    c->in_dispatch = true;
    s.fn(c, &s, rc, conf, detail);
    c->in_dispatch = was;
}

/* ---- connection loss -------------------------------------------------- */

/* Close the socket and fail every request of this connection with rc
 * (with failover: keep those whose outcome can be asked, README "Failover"). */
void cli_lost(struct nines_conn *c, int rc, const char *why)
{
    if (c->st == CLI_DOWN)
        return;
    uint64_t gen = c->gen;
    char msg[CLI_DETAIL_MAX];
    snprintf(msg, sizeof msg, "connection to node %u (%s) lost: %s; the outcome of requests "
             "in flight is unknown", c->node_id, c->addrs[c->cur], why);
    close(c->fd);
    c->fd = -1;
    c->st = CLI_DOWN;
    c->lost_node = c->node_id;
    c->node_id = 0;
    c->wlen = c->woff = 0;
    c->rlen = c->roff = 0;
    snprintf(c->detail, sizeof c->detail, "%s", msg);
    uint64_t now = cli_now_ms();
    for (uint32_t i = 0; i < c->nslots; i++) {
        struct cli_slot *s = &c->slots[i];
        if ((s->st != CLI_SLOT_PENDING && s->st != CLI_SLOT_ASKING) || s->gen != gen)
            continue;
        if (!cli_fo_keep(c, i, gen, now) && s->st == CLI_SLOT_PENDING)
            cli_complete(c, i, rc, NULL, msg);
    }
    cli_dict_on_lost(c, gen, rc);
    cli_schema_on_lost(c, gen, rc);
    nines_err(rc, "%s", msg);
}

/* ---- dial and handshake ----------------------------------------------- */

static int cli_wait_fd(struct nines_conn *c, int fd, short ev, uint64_t deadline, const char *what)
{
    for (;;) {
        uint64_t now = cli_now_ms();
        if (now >= deadline)
            return cli_fail(c, NINES_ETIMEDOUT, "%s: %s timed out after %d ms",
                            c->addrs[c->cur], what, c->timeout_ms);
        struct pollfd p = {.fd = fd, .events = ev};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return cli_fail(c, NINES_ESYS, "%s: poll: %s", c->addrs[c->cur], strerror(errno));
    }
}

static int cli_split_addr(struct nines_conn *c, const char *addr, char *host, size_t hn,
                          char *port, size_t pn)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= hn ||
        strlen(colon + 1) >= pn)
        return cli_fail(c, NINES_EINVAL, "address '%s' is not host:port", addr);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    strcpy(port, colon + 1);
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return cli_fail(c, NINES_EINVAL, "address '%s': port '%s' is not 1..65535", addr, port);
    return 0;
}

static int cli_dial(struct nines_conn *c, const char *addr, uint64_t deadline, int *out)
{
    char host[CLI_ADDR_MAX], port[16];
    int rc = cli_split_addr(c, addr, host, sizeof host, port, sizeof port);
    if (rc)
        return rc;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g || !ai)
        return cli_fail(c, NINES_EUNREACHABLE, "%s: cannot resolve host '%s': %s", addr, host,
                        gai_strerror(g));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return cli_fail(c, NINES_ESYS, "%s: socket: %s", addr, strerror(errno));
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (r < 0 && errno != EINPROGRESS) {
        rc = cli_fail(c, NINES_EUNREACHABLE, "%s: connect: %s", addr, strerror(errno));
        close(fd);
        return rc;
    }
    if (r < 0) {
        rc = cli_wait_fd(c, fd, POLLOUT, deadline, "connect");
        int err = 0;
        socklen_t len = sizeof err;
        if (!rc && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (!rc && err)
            rc = cli_fail(c, NINES_EUNREACHABLE, "%s: connect: %s", addr, strerror(err));
        if (rc) {
            close(fd);
            return rc;
        }
    }
    *out = fd;
    return 0;
}

/* Blocking write of [p, p+n) on the non-blocking socket until the deadline. */
static int cli_write_all(struct nines_conn *c, int fd, const uint8_t *p, size_t n,
                         uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = cli_wait_fd(c, fd, POLLOUT, deadline, "write");
            if (rc)
                return rc;
        } else if (w < 0 && errno != EINTR) {
            return cli_fail(c, NINES_ECLOSED, "%s: send: %s", c->addrs[c->cur], strerror(errno));
        }
    }
    return 0;
}

/* One frame of the handshake, blocking until the deadline: *body (malloc'd)
 * and *len. */
static int cli_read_frame(struct nines_conn *c, int fd, uint64_t deadline, uint8_t **out,
                          uint32_t *outlen)
{
    uint8_t hdr[CLI_HDR];
    size_t have = 0, need = CLI_HDR;
    uint8_t *body = NULL;
    uint32_t len = 0;
    int rc = 0;
    while (have < need) {
        uint8_t *dst = body ? body + have : hdr + have;
        ssize_t r = recv(fd, dst, need - have, 0);
        if (r > 0) {
            have += (size_t)r;
            if (!body && have == CLI_HDR) {
                len = cli_get_len(hdr);
                if (len == 0 || len > c->max_frame) {
                    rc = cli_fail(c, NINES_EPROTO, "%s: bad frame length %u in the handshake",
                                  c->addrs[c->cur], len);
                    break;
                }
                body = malloc(len);
                if (!body) {
                    rc = cli_fail(c, NINES_ENOMEM, "client: handshake frame of %u bytes", len);
                    break;
                }
                have = 0;
                need = len;
            }
        } else if (r == 0) {
            rc = cli_fail(c, NINES_ECLOSED, "%s: closed the connection during the handshake",
                          c->addrs[c->cur]);
            break;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = cli_wait_fd(c, fd, POLLIN, deadline, "handshake");
            if (rc)
                break;
        } else if (errno != EINTR) {
            rc = cli_fail(c, NINES_ECLOSED, "%s: recv: %s", c->addrs[c->cur], strerror(errno));
            break;
        }
    }
    if (rc) {
        free(body);
        return rc;
    }
    *out = body;
    *outlen = len;
    return 0;
}

/* Pack and write one handshake message. */
static int cli_hello_send(struct nines_conn *c, int fd, uint32_t type, const ProtobufCMessage *m,
                          uint64_t deadline)
{
    size_t blen = protobuf_c_message_get_packed_size(m);
    size_t elen = net_env_size(0, 0, type, blen);
    uint8_t out[CLI_HDR + 2048];
    if (CLI_HDR + elen > sizeof out)
        return cli_fail(c, NINES_EINVAL, "handshake message of %zu bytes (cluster or user name "
                        "too long)", elen);
    cli_put_len(out, (uint32_t)elen);
    net_env_pack(out + CLI_HDR, 0, 0, type, m, blen);
    return cli_write_all(c, fd, out, CLI_HDR + elen, deadline);
}

/* Send one handshake message and read the node's answer: *body (malloc'd,
 * also on a parse failure when 0 is not returned: NULL then) and *m. */
static int cli_hello_exchange(struct nines_conn *c, int fd, uint32_t type,
                              const ProtobufCMessage *msg, uint64_t deadline, const char *what,
                              uint8_t **body, struct net_msg_in *m)
{
    *body = NULL;
    int rc = cli_hello_send(c, fd, type, msg, deadline);
    uint32_t len;
    if (rc || (rc = cli_read_frame(c, fd, deadline, body, &len)) != 0)
        return rc;
    if ((rc = net_env_parse(*body, len, m)) != 0) {
        rc = cli_fail(c, rc, "%s: %s: %s", c->addrs[c->cur], what, nines_errdetail());
        free(*body);
        *body = NULL;
    }
    return rc;
}

/* A HELLO_REF: the node's reason as the error (EFULL and EAUTH kept). */
static int cli_hello_refused(struct nines_conn *c, const struct net_msg_in *m)
{
    Nines__HelloRef *hr =
        nines__hello_ref__unpack(arena_pb_allocator(&c->ans), m->body_len, m->body);
    int code = hr && (hr->error == NINES_EFULL || hr->error == NINES_EAUTH) ? hr->error
                                                                              : NINES_ECLOSED;
    return cli_fail(c, code, "%s refused the connection: %s", c->addrs[c->cur],
                    hr ? hr->reason : "(undecodable HELLO_REF)");
}

/* The login's second half (net/README.md "Users"): our proof for the
 * node's server-first-message, then its signature and our role. */
static int cli_login(struct nines_conn *c, int fd, struct scram_cli *sc, const char *sfirst,
                     size_t sflen, uint64_t deadline)
{
    char fin[SCRAM_MSG_MAX + 256], why[256];
    if (scram_cli_final(sc, c->password, strlen(c->password), sfirst, sflen, fin, sizeof fin,
                        why, sizeof why))
        return cli_fail(c, NINES_EAUTH, "%s: login of user \"%s\": %s", c->addrs[c->cur],
                        c->user, why);
    Nines__HelloAuth au = NINES__HELLO_AUTH__INIT;
    au.scram.data = (uint8_t *)fin;
    au.scram.len = strlen(fin);
    uint8_t *body;
    struct net_msg_in m;
    int rc = cli_hello_exchange(c, fd, NINES__MSG_TYPE__HELLO_AUTH, &au.base, deadline,
                                "login answer", &body, &m);
    explicit_bzero(fin, sizeof fin);
    if (rc)
        return rc;
    if (m.type == NINES__MSG_TYPE__HELLO_AUTH) {
        Nines__HelloAuth *ok =
            nines__hello_auth__unpack(arena_pb_allocator(&c->ans), m.body_len, m.body);
        if (!ok)
            rc = cli_fail(c, NINES_EPROTO, "%s: HELLO_AUTH does not decode", c->addrs[c->cur]);
        else if (scram_cli_verify(sc, (const char *)ok->scram.data, ok->scram.len, why,
                                  sizeof why))
            rc = cli_fail(c, NINES_EAUTH, "%s: login of user \"%s\": %s", c->addrs[c->cur],
                          c->user, why);
        else
            c->role = ok->role;
    } else if (m.type == NINES__MSG_TYPE__HELLO_REF) {
        rc = cli_hello_refused(c, &m);
    } else {
        rc = cli_fail(c, NINES_EPROTO, "%s: message type %u before the login's answer",
                      c->addrs[c->cur], m.type);
    }
    arena_reset(&c->ans);
    free(body);
    return rc;
}

/* HELLO_REQ(role CLIENT) -> HELLO_CONF | HELLO_REF, blocking; with a user,
 * the SCRAM login rides on it (HELLO_CONF{scram}, HELLO_AUTH both ways). */
static int cli_hello(struct nines_conn *c, int fd, uint64_t deadline)
{
    Nines__HelloReq req = NINES__HELLO_REQ__INIT;
    req.cluster = c->cluster;
    req.role = NINES__ROLE__ROLE_CLIENT;
    struct scram_cli sc;
    char first[SCRAM_MSG_MAX];
    if (c->user[0]) {
        if (scram_cli_first(&sc, c->user, NULL, first, sizeof first))
            return cli_fail(c, NINES_EINVAL, "user name \"%s\" cannot be sent", c->user);
        req.user = c->user;
        req.scram.data = (uint8_t *)first;
        req.scram.len = strlen(first);
    }
    /* exactly one frame back; nothing else is sent before our first request */
    uint8_t *body;
    struct net_msg_in m;
    int rc = cli_hello_exchange(c, fd, NINES__MSG_TYPE__HELLO_REQ, &req.base, deadline,
                                "handshake answer", &body, &m);
    if (rc)
        return rc;
    if (m.type == NINES__MSG_TYPE__HELLO_CONF) {
        Nines__HelloConf *hc = nines__hello_conf__unpack(arena_pb_allocator(&c->ans),
                                                         m.body_len, m.body);
        if (!hc) {
            rc = cli_fail(c, NINES_EPROTO, "%s: HELLO_CONF does not decode", c->addrs[c->cur]);
        } else {
            c->node_id = hc->node_id;
            c->role = NINES_ROLE_ADMIN; /* a client_auth trust node: no users */
            if (hc->scram.len && !c->user[0])
                rc = cli_fail(c, NINES_EPROTO, "%s: a login challenge we did not ask for",
                              c->addrs[c->cur]);
            else if (hc->scram.len)
                rc = cli_login(c, fd, &sc, (const char *)hc->scram.data, hc->scram.len,
                               deadline);
        }
    } else if (m.type == NINES__MSG_TYPE__HELLO_REF) {
        rc = cli_hello_refused(c, &m);
    } else {
        rc = cli_fail(c, NINES_EPROTO, "%s: message type %u before HELLO_CONF", c->addrs[c->cur],
                      m.type);
    }
    arena_reset(&c->ans);
    free(body);
    return rc;
}

/* Connect if down: the addresses in order, starting after the one that
 * was lost (or at c->start on the first connect: README "Spreading"). */
int cli_ensure_up(struct nines_conn *c)
{
    if (c->st == CLI_UP)
        return 0;
    size_t start = c->gen ? (c->cur + 1) % c->naddrs : c->start;
    size_t lost = c->cur;
    /* failover: the others from a random one on, the lost node last */
    bool shuffle = c->failover && c->gen && c->naddrs > 1;
    size_t r = shuffle ? (size_t)rand_r(&c->rnd) % (c->naddrs - 1) : 0;
    int rc = NINES_EUNREACHABLE;
    char why[CLI_DETAIL_MAX] = "";
    bool all_full = true; /* every node refused: at max_client_connections */
    for (size_t k = 0; k < c->naddrs; k++) {
        if (!shuffle)
            c->cur = (start + k) % c->naddrs;
        else if (k + 1 < c->naddrs) /* the n - 1 others, from the r-th on */
            c->cur = (lost + 1 + (r + k) % (c->naddrs - 1)) % c->naddrs;
        else
            c->cur = lost;
        uint64_t deadline = cli_now_ms() + (uint64_t)c->timeout_ms;
        int fd = -1;
        rc = cli_dial(c, c->addrs[c->cur], deadline, &fd);
        if (!rc) {
            rc = cli_hello(c, fd, deadline);
            if (rc)
                close(fd);
        }
        if (!rc) {
            c->fd = fd;
            c->st = CLI_UP;
            c->gen++;
            return 0;
        }
        if (rc == NINES_EAUTH) /* every node has the same users: a refused login is final */
            return rc;
        all_full &= rc == NINES_EFULL;
        size_t off = strlen(why);
        if (off + 8 < sizeof why)
            snprintf(why + off, sizeof why - off, "%s%.*s", off ? "; " : "",
                     (int)(sizeof why - off - 4), c->detail);
    }
    if (all_full)
        return cli_fail(c, NINES_EFULL, "every node is at its client connection limit (%zu "
                        "address%s tried): %s", c->naddrs, c->naddrs == 1 ? "" : "es", why);
    return cli_fail(c, NINES_EUNREACHABLE, "no node answers (%zu address%s tried): %s",
                    c->naddrs, c->naddrs == 1 ? "" : "es", why);
}

/* ---- send ------------------------------------------------------------- */

int cli_queue(struct nines_conn *c, uint32_t type, const ProtobufCMessage *msg)
{
    size_t blen = protobuf_c_message_get_packed_size(msg);
    size_t elen = net_env_size(0, 0, type, blen);
    if (elen > c->max_frame)
        return cli_fail(c, NINES_ETOOBIG, "message of %zu bytes exceeds max_frame_bytes %u "
                        "(not sent)", elen, c->max_frame);
    int rc = cli_grow(&c->wbuf, &c->wcap, c->wlen + CLI_HDR + elen);
    if (rc)
        return cli_fail(c, rc, "%s", nines_errdetail());
    uint8_t *p = c->wbuf + c->wlen;
    cli_put_len(p, (uint32_t)elen);
    net_env_pack(p + CLI_HDR, 0, 0, type, msg, blen);
    c->wlen += CLI_HDR + elen;
    return 0;
}

uint64_t cli_new_seq(struct nines_conn *c) { return ++c->key_seq; }

uint64_t cli_call_deadline(const struct nines_conn *c)
{
    uint64_t ms = (uint64_t)c->timeout_ms + 1000;
    if (c->failover) /* a lost request: reconnect, ask, maybe send again */
        ms += (uint64_t)c->failover_ms + 2 * (uint64_t)c->timeout_ms;
    return cli_now_ms() + ms;
}

int cli_pack_req(struct nines_conn *c, Nines__TxnReq *req, uint64_t req_id)
{
    req->req_id = req_id;
    size_t blen = nines__txn_req__get_packed_size(req);
    size_t elen = net_env_size(0, 0, NINES__MSG_TYPE__TXN_REQ, blen);
    if (elen > c->max_frame)
        return cli_fail(c, NINES_ETOOBIG, "request of %zu bytes exceeds max_frame_bytes %u "
                        "(not sent)", elen, c->max_frame);
    int rc = cli_grow(&c->wbuf, &c->wcap, c->wlen + CLI_HDR + elen);
    if (rc)
        return cli_fail(c, rc, "%s", nines_errdetail());
    uint8_t *p = c->wbuf + c->wlen;
    cli_put_len(p, (uint32_t)elen);
    net_env_pack(p + CLI_HDR, 0, 0, NINES__MSG_TYPE__TXN_REQ, &req->base, blen);
    c->wlen += CLI_HDR + elen;
    return 0;
}

int cli_submit(struct nines_conn *c, Nines__TxnReq *req, cli_answer_fn fn, void *arg,
               nines_done_fn user_fn, void *user_arg)
{
    int rc = cli_ensure_up(c);
    if (rc)
        return rc;
    uint32_t i = 0;
    rc = cli_slot_alloc(c, &i);
    if (rc)
        return rc;
    /* every request carries a key (README "Failover"); a transaction's
     * requests carry the one of its first */
    Nines__ReqKey key = NINES__REQ_KEY__INIT;
    if (!req->key) {
        key.client = c->client_id;
        key.seq = cli_new_seq(c);
        key.attempt = 1;
        req->key = &key;
    }
    c->counter++;
    uint64_t req_id = c->counter << CLI_SLOT_BITS | i;
    rc = cli_pack_req(c, req, req_id);
    uint64_t seq = req->key->seq;
    if (req->key == &key)
        req->key = NULL;
    if (rc) {
        cli_slot_release(c, i);
        return rc;
    }
    struct cli_slot *s = &c->slots[i];
    uint64_t now = cli_now_ms();
    s->st = CLI_SLOT_PENDING;
    s->req_id = req_id;
    s->gen = c->gen;
    s->deadline_ms = now + (uint64_t)c->timeout_ms;
    s->fn = fn;
    s->arg = arg;
    s->user_fn = user_fn;
    s->user_arg = user_arg;
    s->key_seq = seq;
    s->attempt = 1;
    s->sent_to = c->node_id >= 1 && c->node_id <= 64 ? (uint64_t)1 << (c->node_id - 1) : 0;
    s->first_ms = now;
    s->give_up_ms = s->retry_ms = 0;
    s->proc = req->proc_case;
    s->kind = CLI_REQ_PLAIN;
    if (req->proc_case == NINES__TXN_REQ__PROC_TPCB && req->tpcb) {
        s->kind = CLI_REQ_PROC;
        s->p[0] = req->tpcb->aid, s->p[1] = req->tpcb->tid;
        s->p[2] = req->tpcb->bid, s->p[3] = req->tpcb->delta;
    } else if (req->proc_case == NINES__TXN_REQ__PROC_TWO_UPD && req->two_upd) {
        s->kind = CLI_REQ_PROC;
        s->p[0] = req->two_upd->key1, s->p[1] = req->two_upd->key2;
        s->p[2] = req->two_upd->delta, s->p[3] = 0;
    } else if (req->end == NINES__TXN_END__TXN_END_COMMIT) {
        s->kind = CLI_REQ_COMMIT;
    }
    c->inflight++;
    return 0;
}

/* Write as much of the queue as the socket takes now. */
static void cli_flush(struct nines_conn *c)
{
    while (c->st == CLI_UP && c->woff < c->wlen) {
        ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (w > 0) {
            c->woff += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else if (w < 0 && errno != EINTR) {
            char why[128];
            snprintf(why, sizeof why, "send: %s", strerror(errno));
            cli_lost(c, NINES_ECLOSED, why);
            return;
        }
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
}

/* ---- receive ---------------------------------------------------------- */

static int cli_check_err(int e) { return e < 0 && e >= NINES_ERR_MIN_; }

/* One frame from the server. Negative: the connection must be dropped. */
static int cli_on_frame(struct nines_conn *c, const uint8_t *f, size_t len)
{
    struct net_msg_in m;
    int rc = net_env_parse(f, len, &m);
    if (rc)
        return cli_fail(c, rc, "malformed envelope from the server: %s", nines_errdetail());
    if (m.sender != c->node_id && m.sender != 0)
        return cli_fail(c, NINES_EPROTO, "frame from node %u on the connection to node %u",
                        m.sender, c->node_id);
    arena_reset(&c->ans);
    ProtobufCAllocator *al = arena_pb_allocator(&c->ans);
    uint64_t req_id;
    int err = 0;
    const char *detail = NULL;
    Nines__TxnConf *conf = NULL;
    char msg[CLI_DETAIL_MAX];
    switch (m.type) {
    case NINES__MSG_TYPE__TXN_CONF:
        conf = nines__txn_conf__unpack(al, m.body_len, m.body);
        if (!conf)
            return cli_fail(c, NINES_EPROTO, "TXN_CONF of %zu bytes does not decode", m.body_len);
        req_id = conf->req_id;
        break;
    case NINES__MSG_TYPE__TXN_REF: {
        Nines__TxnRef *ref = nines__txn_ref__unpack(al, m.body_len, m.body);
        if (!ref)
            return cli_fail(c, NINES_EPROTO, "TXN_REF of %zu bytes does not decode", m.body_len);
        req_id = ref->req_id;
        if (cli_check_err(ref->error)) {
            err = ref->error;
            snprintf(msg, sizeof msg, "%s", ref->detail && ref->detail[0]
                     ? ref->detail : nines_strerror(err));
        } else {
            err = NINES_EPROTO;
            snprintf(msg, sizeof msg, "server refused with invalid error code %d: %s", ref->error,
                     ref->detail ? ref->detail : "");
        }
        if (ref->failed_op) {
            size_t off = strlen(msg);
            snprintf(msg + off, sizeof msg - off, " (op %u)", ref->failed_op);
        }
        detail = msg;
        break;
    }
    case NINES__MSG_TYPE__DICT_GET_CONF:
    case NINES__MSG_TYPE__DICT_GET_REF:
        return cli_dict_on_answer(c, m.type, m.body, m.body_len);
    case NINES__MSG_TYPE__DICT_CHANGE_CONF:
    case NINES__MSG_TYPE__DICT_CHANGE_REF:
        return cli_schema_on_answer(c, m.type, m.body, m.body_len);
    case NINES__MSG_TYPE__TXN_OUTCOME_CONF:
    case NINES__MSG_TYPE__TXN_OUTCOME_REF:
        return cli_fo_on_answer(c, m.type, m.body, m.body_len);
    default:
        return cli_fail(c, NINES_EPROTO, "unexpected message type %u from the server", m.type);
    }
    uint32_t i = (uint32_t)(req_id & (CLI_SLOT_MAX - 1));
    if (i >= c->nslots || c->slots[i].st != CLI_SLOT_PENDING || c->slots[i].req_id != req_id) {
        c->stale++; /* answer to a request that timed out, or unknown */
        return 0;
    }
    if (err == NINES_ENOTMEMBER && c->failover && c->slots[i].kind != CLI_REQ_PLAIN)
        /* this node stopped serving: the request did not run here; drop the
         * connection, and it is resolved through another node with the rest */
        return cli_fail(c, NINES_ENOTMEMBER, "%s", detail);
    if (err)
        snprintf(c->detail, sizeof c->detail, "%s", detail);
    cli_complete(c, i, err, conf, detail);
    return 0;
}

/* Parse every complete frame in the read buffer. */
static void cli_parse(struct nines_conn *c)
{
    uint64_t gen = c->gen;
    while (c->st == CLI_UP && c->gen == gen && c->rlen - c->roff >= CLI_HDR) {
        uint32_t len = cli_get_len(c->rbuf + c->roff);
        if (len == 0 || len > c->max_frame) {
            char why[128];
            snprintf(why, sizeof why, "bad frame length %u from the server (max_frame_bytes %u)",
                     len, c->max_frame);
            cli_lost(c, len == 0 ? NINES_EPROTO : NINES_ETOOBIG, why);
            return;
        }
        if (c->rlen - c->roff - CLI_HDR < len)
            break;
        const uint8_t *f = c->rbuf + c->roff + CLI_HDR;
        c->roff += CLI_HDR + len;
        int rc = cli_on_frame(c, f, len);
        if (rc < 0) {
            char why[CLI_DETAIL_MAX];
            snprintf(why, sizeof why, "%s", c->detail);
            cli_lost(c, rc, why);
            return;
        }
    }
    if (c->st != CLI_UP || c->gen != gen)
        return;
    if (c->roff == c->rlen) {
        c->roff = c->rlen = 0;
    } else if (c->roff > 0 && c->roff >= c->rlen / 2) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
}

/* Read what the socket has (non-blocking) and dispatch it. */
static void cli_read(struct nines_conn *c)
{
    for (int turn = 0; turn < 16 && c->st == CLI_UP; turn++) {
        if (cli_grow(&c->rbuf, &c->rcap, c->rlen + CLI_READ_CHUNK)) {
            cli_lost(c, NINES_ENOMEM, "no memory for the read buffer");
            return;
        }
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (r > 0) {
            c->rlen += (size_t)r;
            cli_parse(c);
            if ((size_t)r < CLI_READ_CHUNK)
                return;
        } else if (r == 0) {
            cli_lost(c, NINES_ECLOSED, c->rlen > c->roff ? "server closed inside a frame"
                                                          : "server closed the connection");
            return;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else if (errno != EINTR) {
            char why[128];
            snprintf(why, sizeof why, "recv: %s", strerror(errno));
            cli_lost(c, NINES_ECLOSED, why);
            return;
        }
    }
}

/* Fail requests whose deadline passed (at most every CLI_SCAN_EVERY_MS). */
static void cli_expire(struct nines_conn *c, uint64_t now, bool force)
{
    if (!force && now < c->next_scan_ms)
        return;
    c->next_scan_ms = now + CLI_SCAN_EVERY_MS;
    for (uint32_t i = 0; i < c->nslots; i++) {
        struct cli_slot *s = &c->slots[i];
        if (s->st != CLI_SLOT_PENDING || s->deadline_ms > now)
            continue;
        if (c->failover && s->kind != CLI_REQ_PLAIN && c->st == CLI_UP && s->gen == c->gen) {
            /* a node that does not answer is treated as lost: its requests
             * are resolved through another one */
            char why[160];
            snprintf(why, sizeof why, "no answer within %d ms (request %llu)", c->timeout_ms,
                     (unsigned long long)s->req_id);
            cli_lost(c, NINES_ETIMEDOUT, why);
            continue;
        }
        char msg[CLI_DETAIL_MAX];
        snprintf(msg, sizeof msg, "no answer from node %u (%s) within %d ms (request %llu); "
                 "its outcome is unknown", c->node_id, c->addrs[c->cur], c->timeout_ms,
                 (unsigned long long)s->req_id);
        snprintf(c->detail, sizeof c->detail, "%s", msg);
        cli_complete(c, i, NINES_ETIMEDOUT, NULL, msg);
    }
}

/* One loop turn: failover work, flush, wait up to wait_ms for input,
 * read, expire. */
static void cli_turn(struct nines_conn *c, int wait_ms)
{
    if (c->failover)
        cli_fo_turn(c, cli_now_ms());
    cli_flush(c);
    if (c->st != CLI_UP && c->failover && wait_ms > 0) {
        /* down with requests to resolve: the next turn dials again */
        poll(NULL, 0, wait_ms > 20 ? 20 : wait_ms);
    } else if (c->st == CLI_UP) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (c->woff < c->wlen)
            p.events |= POLLOUT;
        int n = poll(&p, 1, wait_ms);
        if (n > 0) {
            if (p.revents & (POLLIN | POLLHUP | POLLERR))
                cli_read(c);
            if (c->st == CLI_UP && (p.revents & POLLOUT))
                cli_flush(c);
        }
    }
    cli_expire(c, cli_now_ms(), false);
}

static int cli_wait_ms(const struct nines_conn *c, uint64_t deadline)
{
    uint64_t now = cli_now_ms();
    uint64_t until = deadline;
    if (c->inflight && c->next_scan_ms < until)
        until = c->next_scan_ms;
    if (until <= now)
        return 0;
    uint64_t d = until - now;
    return d > 1000 ? 1000 : (int)d;
}

int cli_wait(struct nines_conn *c, const bool *done, uint64_t deadline_ms)
{
    while (!*done) {
        uint64_t now = cli_now_ms();
        if (now >= deadline_ms) {
            cli_expire(c, now, true);
            if (*done)
                break;
            return cli_fail(c, NINES_ETIMEDOUT, "no answer within %d ms", c->timeout_ms);
        }
        cli_turn(c, cli_wait_ms(c, deadline_ms));
    }
    return 0;
}

/* ---- public ----------------------------------------------------------- */

int nines_poll(nines_conn *c, int timeout_ms)
{
    if (!c)
        return nines_err(NINES_EINVAL, "nines_poll: NULL connection");
    if (c->in_dispatch)
        return cli_fail(c, NINES_ESTATE, "nines_poll called from a callback");
    uint64_t before = c->ncallbacks;
    uint64_t deadline = cli_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    cli_turn(c, 0);
    while (c->ncallbacks == before && c->inflight > 0 && (c->st == CLI_UP || c->failover)) {
        uint64_t now = cli_now_ms();
        if (now >= deadline)
            break;
        cli_turn(c, cli_wait_ms(c, deadline));
    }
    return (int)(c->ncallbacks - before);
}

/* Spread connects made by this process (README "Spreading"). */
static atomic_uint_fast64_t cli_spread_count;

size_t nines_spread_start(uint64_t seed, uint64_t k, size_t naddrs)
{
    if (naddrs == 0)
        return 0;
    uint64_t base = nhash_fmix64(seed ? seed : (uint64_t)getpid());
    return (size_t)((base % naddrs + k % naddrs) % naddrs);
}

/* The login a connect uses: opts, else the environment's, else the cluster
 * file's (cf; NULL: none; nines_conf_login). */
static int cli_credentials(struct nines_conn *c, const struct nines_connect_opts *o,
                           const struct nines_conf *cf)
{
    if (!(o && o->user))
        return nines_conf_login(cf, c->user, sizeof c->user, c->password, sizeof c->password);
    if (!o->user[0])
        return 0;
    if (strlen(o->user) >= sizeof c->user)
        return nines_err(NINES_EINVAL, "user name of %zu bytes (at most %zu)",
                         strlen(o->user), sizeof c->user - 1);
    if (!o->password || !o->password[0])
        return nines_err(NINES_EINVAL, "user \"%s\" has no password in the connect options",
                         o->user);
    if (strlen(o->password) >= sizeof c->password)
        return nines_err(NINES_EINVAL, "password of %zu bytes (at most %zu)",
                         strlen(o->password), sizeof c->password - 1);
    snprintf(c->user, sizeof c->user, "%s", o->user);
    snprintf(c->password, sizeof c->password, "%s", o->password);
    return 0;
}

static int connect_with(nines_conn **out, const char *const *addrs, size_t naddrs,
                        const char *cluster, int timeout_ms, const struct nines_connect_opts *o,
                        const struct nines_conf *cf);

int nines_connect(nines_conn **out, const char *const *addrs, size_t naddrs, const char *cluster,
                  int timeout_ms)
{
    return nines_connect_with(out, addrs, naddrs, cluster, timeout_ms, NULL);
}

int nines_connect_with(nines_conn **out, const char *const *addrs, size_t naddrs,
                       const char *cluster, int timeout_ms, const struct nines_connect_opts *o)
{
    return connect_with(out, addrs, naddrs, cluster, timeout_ms, o, NULL);
}

static int connect_with(nines_conn **out, const char *const *addrs, size_t naddrs,
                        const char *cluster, int timeout_ms, const struct nines_connect_opts *o,
                        const struct nines_conf *cf)
{
    if (!out)
        return nines_err(NINES_EINVAL, "nines_connect: NULL out");
    *out = NULL;
    if (!addrs || naddrs == 0 || !cluster)
        return nines_err(NINES_EINVAL, "nines_connect: need at least one address and a cluster");
    if (timeout_ms <= 0)
        return nines_err(NINES_EINVAL, "nines_connect: timeout_ms %d must be positive",
                         timeout_ms);
    if (strlen(cluster) >= sizeof((struct nines_conn *)0)->cluster)
        return nines_err(NINES_EINVAL, "nines_connect: cluster name '%.40s...' is too long",
                         cluster);
    struct nines_conn *c = calloc(1, sizeof *c);
    if (!c)
        return nines_err(NINES_ENOMEM, "nines_connect");
    c->addrs = calloc(naddrs, sizeof *c->addrs);
    if (!c->addrs) {
        free(c);
        return nines_err(NINES_ENOMEM, "nines_connect");
    }
    for (size_t i = 0; i < naddrs; i++) {
        if (!addrs[i] || strlen(addrs[i]) >= CLI_ADDR_MAX) {
            free(c->addrs);
            free(c);
            return nines_err(NINES_EINVAL, "nines_connect: address %zu is missing or too long",
                             i);
        }
        strcpy(c->addrs[i], addrs[i]);
    }
    c->naddrs = naddrs;
    if (!(o && (o->flags & NINES_CONNECT_FIRST_NODE)))
        c->start = nines_spread_start(o ? o->seed : 0, atomic_fetch_add(&cli_spread_count, 1),
                                      naddrs);
    strcpy(c->cluster, cluster);
    c->timeout_ms = timeout_ms;
    c->max_frame = CLI_DEFAULT_MAX_FRAME;
    c->fd = -1;
    c->free_head = UINT32_MAX;
    if (getrandom(&c->client_id, sizeof c->client_id, 0) != (ssize_t)sizeof c->client_id)
        c->client_id = nclock_ns() ^ ((uint64_t)getpid() << 32); /* getrandom unavailable */
    if (!c->client_id)
        c->client_id = 1;
    c->rnd = (unsigned)(c->client_id ^ (c->client_id >> 32));
    /* seqs start at the wall clock in µs: keys of different clients are of
     * comparable age, which keeps a node's per-bucket "may have dropped"
     * mark from touching younger clients (txctl/README.md "Request keys") */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->key_seq = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    c->failover_ms = 4 * timeout_ms;
    arena_init(&c->ans, 16384);
    arena_init(&c->req, 16384);
    int rc = cli_credentials(c, o, cf);
    if (rc) {
        char why[CLI_DETAIL_MAX];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        nines_close(c);
        return nines_err(rc, "%s", why);
    }
    rc = cli_ensure_up(c);
    if (rc) {
        char why[CLI_DETAIL_MAX];
        snprintf(why, sizeof why, "%s", c->detail);
        nines_close(c);
        return nines_err(rc, "%s", why);
    }
    *out = c;
    return 0;
}

int nines_connect_config(nines_conn **out, const char *path)
{
    return nines_connect_config_with(out, path, NULL);
}

int nines_connect_config_with(nines_conn **out, const char *path,
                              const struct nines_connect_opts *o)
{
    if (!out)
        return nines_err(NINES_EINVAL, "nines_connect_config: NULL out");
    *out = NULL;
    struct nines_conf *cf = malloc(sizeof *cf);
    if (!cf)
        return nines_err(NINES_ENOMEM, "nines_connect_config");
    int rc = nines_conf_load(path, cf);
    if (rc) {
        free(cf);
        return rc;
    }
    char (*a)[CLI_ADDR_MAX] = calloc(cf->nnodes ? cf->nnodes : 1, sizeof *a);
    const char **pa = calloc(cf->nnodes ? cf->nnodes : 1, sizeof *pa);
    if (!a || !pa) {
        free(a);
        free(pa);
        free(cf);
        return nines_err(NINES_ENOMEM, "nines_connect_config");
    }
    for (uint32_t i = 0; i < cf->nnodes; i++) {
        snprintf(a[i], CLI_ADDR_MAX, "%s:%u", cf->nodes[i].host, (unsigned)cf->nodes[i].port);
        pa[i] = a[i];
    }
    rc = connect_with(out, pa, cf->nnodes, cf->cluster, 2000, o, cf);
    if (!rc)
        (*out)->max_frame = cf->max_frame_bytes;
    free(a);
    free(pa);
    free(cf);
    return rc;
}

void nines_close(nines_conn *c)
{
    if (!c)
        return;
    c->failover = false; /* nothing is resolved any more: everything fails now */
    if (c->st == CLI_UP)
        cli_lost(c, NINES_ECLOSED, "closed by nines_close");
    for (uint32_t i = 0; i < c->nslots; i++)
        if (c->slots[i].st != CLI_SLOT_FREE)
            cli_complete(c, i, NINES_ECLOSED, NULL, "connection closed by nines_close while "
                         "the request's outcome was being asked; it is unknown");
    free(c->addrs);
    free(c->wbuf);
    free(c->rbuf);
    free(c->slots);
    free(c->ask.slots);
    cli_dict_free(c);
    free(c->users);
    arena_destroy(&c->ans);
    arena_destroy(&c->req);
    explicit_bzero(c->password, sizeof c->password);
    free(c);
}

uint32_t nines_conn_role(const nines_conn *c) { return c && c->st == CLI_UP ? c->role : 0; }

const char *nines_conn_errdetail(const nines_conn *c) { return c ? c->detail : ""; }
uint32_t nines_conn_node(const nines_conn *c) { return c && c->st == CLI_UP ? c->node_id : 0; }
const char *nines_conn_addr(const nines_conn *c) { return c ? c->addrs[c->cur] : ""; }
size_t nines_conn_inflight(const nines_conn *c) { return c ? c->inflight : 0; }

int nines_conn_set_failover(nines_conn *c, int on, int window_ms)
{
    if (!c)
        return nines_err(NINES_EINVAL, "nines_conn_set_failover: NULL connection");
    if (window_ms < 0)
        return cli_fail(c, NINES_EINVAL, "failover window %d ms must be >= 0", window_ms);
    if (c->in_dispatch)
        return cli_fail(c, NINES_ESTATE, "nines_conn_set_failover called from a callback");
    if (!on && cli_fo_busy(c))
        return cli_fail(c, NINES_ESTATE, "failover cannot be turned off while lost requests "
                        "are being resolved");
    c->failover = on != 0;
    c->failover_ms = window_ms ? window_ms : 4 * c->timeout_ms;
    return 0;
}

void nines_conn_failover_stats(const nines_conn *c, struct nines_failover_stats *out)
{
    if (c && out)
        *out = c->fst;
    else if (out)
        memset(out, 0, sizeof *out);
}

int nines_conn_answer_info(const nines_conn *c, struct nines_answer_info *out)
{
    if (!c || !out)
        return nines_err(NINES_EINVAL, "nines_conn_answer_info: NULL argument");
    *out = c->ans_info;
    return 0;
}
