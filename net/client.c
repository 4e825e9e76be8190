/* Blocking client connection: one plain socket, the same framing and
 * Envelope as the nodes, every wait bounded with poll(). For tools,
 * benchmarks and the client library; not used inside a node. */
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arena.h"
#include "auth.h"
#include "envelope.h"
#include "frame.h"
#include "nclock.h"
#include "nines/errors.h"
#include "scram.h"

#define CLIENT_MAX_FRAME (64u << 20)   /* the largest max_frame_bytes a node accepts */
#define CLIENT_SEND_TIMEOUT_MS 30000  /* a server that stops reading fails the send */

struct net_client {
    int fd;
    uint8_t *rbuf;          /* received bytes [roff, rlen) */
    size_t roff, rlen, rcap;
    uint8_t *wbuf;
    size_t wcap;
    uint64_t conn_id;
    uint32_t node_id;
    uint32_t role;          /* enum net_role the node gave us */
};

static int wait_fd(int fd, short ev, uint64_t deadline_ms, const char *what)
{
    for (;;) {
        int tmo = -1;
        if (deadline_ms != UINT64_MAX) {
            uint64_t now = nclock_ms();
            if (now >= deadline_ms)
                return nines_err(NINES_ETIMEDOUT, "client: timed out waiting to %s", what);
            tmo = (int)(deadline_ms - now);
        }
        struct pollfd p = {.fd = fd, .events = ev};
        int n = poll(&p, 1, tmo);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return nines_err(NINES_ESYS, "client: poll: %s", strerror(errno));
    }
}

static uint64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? UINT64_MAX : nclock_ms() + (uint64_t)timeout_ms;
}

static int write_all(struct net_client *c, const uint8_t *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c->fd, POLLOUT, deadline, "send");
            if (rc)
                return rc;
            continue;
        }
        return nines_err(NINES_ECLOSED, "client: send: %s", strerror(w < 0 ? errno : EPIPE));
    }
    return 0;
}

static int client_send(struct net_client *c, uint32_t type, const ProtobufCMessage *body,
                       uint64_t deadline)
{
    size_t body_len = body ? protobuf_c_message_get_packed_size(body) : 0;
    size_t len = net_env_size(0, 0, type, body_len);
    if (len > CLIENT_MAX_FRAME)
        return nines_err(NINES_ETOOBIG, "client: message of %zu bytes", len);
    if (c->wcap < len + NET_FRAME_HDR) {
        size_t cap = c->wcap ? c->wcap : 4096;
        while (cap < len + NET_FRAME_HDR)
            cap *= 2;
        uint8_t *b = realloc(c->wbuf, cap);
        if (!b)
            return nines_err(NINES_ENOMEM, "client: send buffer of %zu", cap);
        c->wbuf = b;
        c->wcap = cap;
    }
    net_frame_put_len(c->wbuf, (uint32_t)len);
    net_env_pack(c->wbuf + NET_FRAME_HDR, 0, 0, type, body, body_len);
    return write_all(c, c->wbuf, len + NET_FRAME_HDR, deadline);
}

/* Read more bytes into rbuf (at least one) before the deadline. */
static int read_more(struct net_client *c, size_t want_total, uint64_t deadline)
{
    if (c->roff > 0 && c->roff == c->rlen)
        c->roff = c->rlen = 0;
    if (c->rbuf && c->rcap - c->roff < want_total) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    if (c->rcap < want_total) {
        size_t cap = c->rcap ? c->rcap : 65536;
        while (cap < want_total)
            cap *= 2;
        uint8_t *b = realloc(c->rbuf, cap);
        if (!b)
            return nines_err(NINES_ENOMEM, "client: receive buffer of %zu", cap);
        c->rbuf = b;
        c->rcap = cap;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
        if (n > 0) {
            c->rlen += (size_t)n;
            return 0;
        }
        if (n == 0)
            return nines_err(c->rlen > c->roff ? NINES_ETRUNC : NINES_ECLOSED,
                             "client: server closed the connection%s",
                             c->rlen > c->roff ? " inside a frame" : "");
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return nines_err(NINES_ECLOSED, "client: recv: %s", strerror(errno));
        int rc = wait_fd(c->fd, POLLIN, deadline, "receive");
        if (rc)
            return rc;
    }
}

static int client_recv(struct net_client *c, struct net_msg_in *m, uint64_t deadline)
{
    while (c->rlen - c->roff < NET_FRAME_HDR) {
        int rc = read_more(c, NET_FRAME_HDR, deadline);
        if (rc)
            return rc;
    }
    uint32_t n = net_frame_get_len(c->rbuf + c->roff);
    if (n == 0)
        return nines_err(NINES_EPROTO, "client: zero-length frame");
    if (n > CLIENT_MAX_FRAME)
        return nines_err(NINES_ETOOBIG, "client: frame length %u exceeds %u", n,
                         CLIENT_MAX_FRAME);
    while (c->rlen - c->roff < NET_FRAME_HDR + (size_t)n) {
        int rc = read_more(c, NET_FRAME_HDR + (size_t)n, deadline);
        if (rc)
            return rc;
    }
    const uint8_t *f = c->rbuf + c->roff + NET_FRAME_HDR;
    c->roff += NET_FRAME_HDR + (size_t)n;
    int rc = net_env_parse(f, n, m);
    if (rc)
        return rc;
    m->from = m->sender;
    return 0;
}

static int client_dial(const char *host, uint16_t port, uint64_t deadline, int *out)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g || !res)
        return nines_err(NINES_EINVAL, "client: cannot resolve '%s:%u': %s", host,
                         (unsigned)port, g ? gai_strerror(g) : "no address");
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return nines_err(NINES_ESYS, "client: socket: %s", strerror(errno));
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc < 0 && errno != EINPROGRESS && errno != EINTR) {
        int e = errno;
        close(fd);
        return nines_err(NINES_EUNREACHABLE, "client: connect to %s:%u: %s", host,
                         (unsigned)port, strerror(e));
    }
    if (rc < 0) {
        rc = wait_fd(fd, POLLOUT, deadline, "connect");
        if (rc) {
            close(fd);
            return rc;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            close(fd);
            return nines_err(NINES_EUNREACHABLE, "client: connect to %s:%u: %s", host,
                             (unsigned)port, strerror(err));
        }
    }
    *out = fd;
    return 0;
}

int net_client_connect(struct net_client **out, const char *host, uint16_t port,
                       const char *cluster, int timeout_ms)
{
    return net_client_connect_key(out, host, port, cluster, NULL, timeout_ms);
}

/* Check the node's proof in conf and send ours (HELLO_AUTH). */
static int client_prove(struct net_client *c, const char *host, uint16_t port,
                        const char *cluster, const uint8_t *key, const uint8_t *nc,
                        const Nines__HelloConf *conf, uint64_t deadline)
{
    uint8_t want[NET_PROOF_BYTES];
    if (conf->nonce.len != NET_NONCE_BYTES)
        return nines_err(NINES_EAUTH, "client: %s:%u answered without a key challenge: it has "
                         "no cluster key", host, (unsigned)port);
    int rc = net_auth_proof(key, NET_AUTH_ACCEPTOR, cluster, NINES__ROLE__ROLE_CLIENT, 0,
                            conf->node_id, nc, conf->nonce.data, want);
    if (rc)
        return rc;
    if (!net_auth_check(want, conf->proof.data, conf->proof.len)) {
        Nines__HelloRef ref = NINES__HELLO_REF__INIT;
        ref.error = NINES_EAUTH;
        ref.reason = "the node's proof of the cluster key does not match the client's key";
        (void)client_send(c, NINES__MSG_TYPE__HELLO_REF, &ref.base, deadline);
        return nines_err(NINES_EAUTH, "client: %s:%u does not prove our cluster key: it has "
                         "another cluster's key", host, (unsigned)port);
    }
    uint8_t proof[NET_PROOF_BYTES];
    rc = net_auth_proof(key, NET_AUTH_CONNECTOR, cluster, NINES__ROLE__ROLE_CLIENT, 0,
                        conf->node_id, nc, conf->nonce.data, proof);
    if (rc)
        return rc;
    Nines__HelloAuth au = NINES__HELLO_AUTH__INIT;
    au.proof.data = proof;
    au.proof.len = NET_PROOF_BYTES;
    return client_send(c, NINES__MSG_TYPE__HELLO_AUTH, &au.base, deadline);
}

/* The login's second half: our proof for the node's server-first, then
 * its HELLO_AUTH (signature checked) or HELLO_REF. */
static int client_login(struct net_client *c, const char *host, uint16_t port,
                        struct scram_cli *sc, const char *user, const char *password,
                        const Nines__HelloConf *conf, uint64_t deadline)
{
    char fin[SCRAM_MSG_MAX + 256], why[256];
    if (scram_cli_final(sc, password, strlen(password), (const char *)conf->scram.data,
                        conf->scram.len, fin, sizeof fin, why, sizeof why))
        return nines_err(NINES_EAUTH, "client: %s:%u: login of user \"%s\": %s", host,
                         (unsigned)port, user, why);
    Nines__HelloAuth au = NINES__HELLO_AUTH__INIT;
    au.scram.data = (uint8_t *)fin;
    au.scram.len = strlen(fin);
    int rc = client_send(c, NINES__MSG_TYPE__HELLO_AUTH, &au.base, deadline);
    explicit_bzero(fin, sizeof fin);
    struct net_msg_in m;
    if (!rc)
        rc = client_recv(c, &m, deadline);
    if (rc)
        return rc;
    struct arena a;
    arena_init(&a, 1024);
    if (m.type == NINES__MSG_TYPE__HELLO_AUTH) {
        Nines__HelloAuth *ok = nines__hello_auth__unpack(arena_pb_allocator(&a), m.body_len,
                                                         m.body);
        if (!ok)
            rc = nines_err(NINES_EPROTO, "client: HELLO_AUTH does not decode");
        else if (scram_cli_verify(sc, (const char *)ok->scram.data, ok->scram.len, why,
                                  sizeof why))
            rc = nines_err(NINES_EAUTH, "client: %s:%u: login of user \"%s\": %s", host,
                           (unsigned)port, user, why);
        else
            c->role = ok->role;
    } else if (m.type == NINES__MSG_TYPE__HELLO_REF) {
        Nines__HelloRef *ref =
            nines__hello_ref__unpack(arena_pb_allocator(&a), m.body_len, m.body);
        rc = nines_err(ref && ref->error == NINES_EFULL ? NINES_EFULL : NINES_EAUTH,
                       "client: %s:%u refused the login: %s", host, (unsigned)port,
                       ref ? ref->reason : "(undecodable HELLO_REF)");
    } else {
        rc = nines_err(NINES_EPROTO, "client: message type %u before the login's answer",
                       m.type);
    }
    arena_destroy(&a);
    return rc;
}

int net_client_connect_key(struct net_client **out, const char *host, uint16_t port,
                           const char *cluster, const uint8_t *key, int timeout_ms)
{
    return net_client_connect_as(out, host, port, cluster, key, NULL, NULL, timeout_ms);
}

int net_client_connect_as(struct net_client **out, const char *host, uint16_t port,
                          const char *cluster, const uint8_t *key, const char *user,
                          const char *password, int timeout_ms)
{
    *out = NULL;
    if (user && user[0] && (!password || key))
        return nines_err(NINES_EINVAL, "client: a login (user \"%s\") needs a password and "
                         "no cluster key", user);
    uint64_t deadline = deadline_of(timeout_ms);
    struct net_client *c = calloc(1, sizeof *c);
    if (!c)
        return nines_err(NINES_ENOMEM, "client");
    int rc = client_dial(host, port, deadline, &c->fd);
    if (rc) {
        free(c);
        return rc;
    }
    Nines__HelloReq req = NINES__HELLO_REQ__INIT;
    req.cluster = (char *)cluster;
    req.role = NINES__ROLE__ROLE_CLIENT;
    uint8_t nc[NET_NONCE_BYTES];
    if (key) {
        rc = net_auth_nonce(nc);
        if (rc) {
            net_client_close(c);
            return rc;
        }
        req.nonce.data = nc;
        req.nonce.len = NET_NONCE_BYTES;
    }
    struct scram_cli sc;
    char first[SCRAM_MSG_MAX];
    bool login = user && user[0];
    if (login) {
        if (scram_cli_first(&sc, user, NULL, first, sizeof first)) {
            net_client_close(c);
            return nines_err(NINES_EINVAL, "client: user name \"%s\" cannot be sent", user);
        }
        req.user = (char *)user;
        req.scram.data = (uint8_t *)first;
        req.scram.len = strlen(first);
    }
    rc = client_send(c, NINES__MSG_TYPE__HELLO_REQ, &req.base, deadline);
    struct net_msg_in m;
    if (!rc)
        rc = client_recv(c, &m, deadline);
    if (!rc) {
        struct arena a;
        arena_init(&a, 1024);
        if (m.type == NINES__MSG_TYPE__HELLO_CONF) {
            Nines__HelloConf *conf =
                nines__hello_conf__unpack(arena_pb_allocator(&a), m.body_len, m.body);
            if (conf) {
                c->node_id = conf->node_id;
                c->conn_id = conf->conn_id;
                c->role = NET_ROLE_ADMIN; /* keyed, or a node without users */
                if (key)
                    rc = client_prove(c, host, port, cluster, key, nc, conf, deadline);
                else if (conf->scram.len && !login)
                    rc = nines_err(NINES_EPROTO, "client: a login challenge we did not ask for");
                else if (conf->scram.len)
                    rc = client_login(c, host, port, &sc, user, password, conf, deadline);
            } else {
                rc = nines_err(NINES_EPROTO, "client: HELLO_CONF does not decode");
            }
        } else if (m.type == NINES__MSG_TYPE__HELLO_REF) {
            Nines__HelloRef *ref =
                nines__hello_ref__unpack(arena_pb_allocator(&a), m.body_len, m.body);
            rc = nines_err(ref && (ref->error == NINES_EAUTH || ref->error == NINES_EFULL)
                               ? ref->error : NINES_ECLOSED,
                           "client: %s:%u refused the connection: %s", host,
                           (unsigned)port, ref ? ref->reason : "(undecodable HELLO_REF)");
        } else {
            rc = nines_err(NINES_EPROTO, "client: message type %u before HELLO_CONF", m.type);
        }
        arena_destroy(&a);
    }
    if (rc) {
        net_client_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

int net_client_send(struct net_client *c, uint32_t type, const ProtobufCMessage *body)
{
    return client_send(c, type, body, deadline_of(CLIENT_SEND_TIMEOUT_MS));
}

int net_client_recv(struct net_client *c, struct net_msg_in *m, int timeout_ms)
{
    return client_recv(c, m, deadline_of(timeout_ms));
}

uint32_t net_client_role(const struct net_client *c) { return c ? c->role : 0; }

int net_client_connect_conf(struct net_client **out, const struct nines_conf *cf,
                            const struct nines_node_conf *nc, int timeout_ms)
{
    if (cf->has_key)
        return net_client_connect_key(out, nc->host, nc->port, cf->cluster, cf->key, timeout_ms);
    char user[64], pw[1025];
    *out = NULL;
    int rc = nines_conf_login(cf, user, sizeof user, pw, sizeof pw);
    if (rc)
        return rc;
    rc = net_client_connect_as(out, nc->host, nc->port, cf->cluster, NULL, user, pw,
                               timeout_ms);
    explicit_bzero(pw, sizeof pw);
    return rc;
}

void net_client_close(struct net_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}
