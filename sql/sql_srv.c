/* The SQL server of a node (sql_srv.h; sql/README.md "Server"): the
 * listener thread, one thread per connection, the registry of sessions
 * (BackendKeyData for CancelRequest), the connection limits, stop.
 *
 * Limits: sql_max_connections sessions (counted when their StartupMessage
 * is admitted, pgw_srv_admit: one more gets FATAL 53300 from its own
 * thread); the listener itself refuses, with the same FATAL, a connection
 * beyond sql_max_connections + PGW_STARTUP_SLACK threads, so a flood of
 * connections that never finish their startup cannot make threads without
 * bound while CancelRequests still get through at the session limit. */
#include "sql_srv.h"

#include "pgw.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void wake(struct sql_srv *srv)
{
    uint64_t one = 1;
    ssize_t w = write(srv->evfd, &one, sizeof one);
    (void)w; /* a full counter still wakes the listener */
}

int pgw_srv_admit(struct pgw_conn *c)
{
    struct sql_srv *srv = c->srv;
    pthread_mutex_lock(&srv->mu);
    int rc = -1;
    if (!srv->stopping && srv->nsessions < srv->conf.sql_max_connections) {
        srv->nsessions++;
        c->admitted = true;
        rc = 0;
    }
    pthread_mutex_unlock(&srv->mu);
    return rc;
}

int pgw_srv_register(struct pgw_conn *c, struct sqle_sess *es)
{
    struct sql_srv *srv = c->srv;
    pthread_mutex_lock(&srv->mu);
    int rc = srv->stopping ? -1 : 0;
    for (int tries = 0; rc == 0; tries++) {
        uint32_t rnd[2];
        if (RAND_bytes((unsigned char *)rnd, sizeof rnd) != 1 || tries > 100) {
            rc = -1;
            break;
        }
        int32_t pid = (int32_t)(rnd[0] & 0x7fffffffu);
        bool used = pid == 0;
        for (struct pgw_conn *o = srv->conns; o && !used; o = o->next)
            used = o != c && o->sess && o->pid == pid;
        if (used)
            continue;
        c->pid = pid;
        c->key = (int32_t)rnd[1];
        c->sess = es;
        break;
    }
    pthread_mutex_unlock(&srv->mu);
    return rc;
}

void pgw_srv_unregister(struct pgw_conn *c)
{
    pthread_mutex_lock(&c->srv->mu);
    c->sess = NULL;
    pthread_mutex_unlock(&c->srv->mu);
}

int pgw_srv_cancel(struct sql_srv *srv, int32_t pid, int32_t key)
{
    int hit = 0;
    pthread_mutex_lock(&srv->mu);
    for (struct pgw_conn *o = srv->conns; o; o = o->next) {
        if (o->sess && o->pid == pid && o->key == key) {
            sqle_sess_cancel(o->sess); /* any thread; it only flags the session */
            hit = 1;
            break;
        }
    }
    pthread_mutex_unlock(&srv->mu);
    return hit;
}

void pgw_srv_conn_done(struct pgw_conn *c)
{
    struct sql_srv *srv = c->srv;
    pthread_mutex_lock(&srv->mu);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->admitted)
        srv->nsessions--;
    c->admitted = false;
    c->done = true;
    pthread_mutex_unlock(&srv->mu);
    wake(srv);
}

/* Join and free the connections whose threads finished (listener only). */
static void reap(struct sql_srv *srv, bool all)
{
    for (;;) {
        struct pgw_conn *dead = NULL;
        pthread_mutex_lock(&srv->mu);
        for (struct pgw_conn **pp = &srv->conns; *pp; pp = &(*pp)->next) {
            if ((*pp)->done || all) {
                dead = *pp;
                *pp = dead->next;
                srv->nconns--;
                break;
            }
        }
        pthread_mutex_unlock(&srv->mu);
        if (!dead)
            return;
        pthread_join(dead->th, NULL);
        free(dead);
    }
}

/* Refused by the listener: one ErrorResponse, without waiting for the client. */
static void refuse(struct sql_srv *srv, int fd, const char *peer, uint32_t nconns)
{
    char msg[160];
    snprintf(msg, sizeof msg, "sorry, too many clients already (sql_max_connections %u)",
             srv->conf.sql_max_connections);
    struct pgw_out o = {0};
    pgw_out_begin(&o, 'E');
    static const char *const f[] = {"SFATAL", "VFATAL", "C53300"};
    for (size_t i = 0; i < 3; i++)
        pgw_out_str(&o, f[i]);
    pgw_out_u8(&o, 'M');
    pgw_out_str(&o, msg);
    pgw_out_u8(&o, 0);
    pgw_out_end(&o);
    if (!o.oom)
        (void)send(fd, o.p, o.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    pgw_out_free(&o);
    close(fd);
    NLOG_WARN("sql", "refused connection from %s: %s (%u connections in startup or open)", peer,
              msg, nconns);
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    snprintf(out, n, "%s:%u", host, port);
}

static void accept_one(struct sql_srv *srv, bool *paused)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(srv->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* wait for a session to end rather than spin on a readable socket */
            NLOG_WARN("sql", "accept: %s: new connections wait until a session ends",
                      strerror(errno));
            *paused = true;
        }
        return;
    }
    char peer[80];
    peer_name(&ss, peer, sizeof peer);
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&srv->mu);
    struct timeval snd = {(time_t)(srv->send_timeout_ms / 1000),
                          (suseconds_t)(srv->send_timeout_ms % 1000) * 1000};
    struct timeval rcv = {PGW_AUTH_TIMEOUT_S, 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
    if (srv->stopping || srv->nconns >= srv->conf.sql_max_connections + PGW_STARTUP_SLACK) {
        bool stopping = srv->stopping;
        uint32_t n = srv->nconns;
        if (!stopping)
            srv->refused++;
        pthread_mutex_unlock(&srv->mu);
        if (stopping)
            close(fd);
        else
            refuse(srv, fd, peer, n);
        return;
    }
    struct pgw_conn *c = calloc(1, sizeof *c);
    int err = c ? 0 : ENOMEM;
    if (c) {
        c->srv = srv;
        c->fd = fd;
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        err = pthread_create(&c->th, NULL, pgw_conn_main, c);
    }
    if (err) {
        pthread_mutex_unlock(&srv->mu);
        NLOG_WARN("sql", "closing connection from %s: no thread for it: %s", peer,
                  strerror(err));
        free(c);
        close(fd);
        return;
    }
    c->next = srv->conns;
    srv->conns = c;
    srv->nconns++;
    srv->accepted++;
    pthread_mutex_unlock(&srv->mu);
}

static void *listener_main(void *arg)
{
    struct sql_srv *srv = arg;
    nines_ctx_node = srv->self;
    bool paused = false;
    for (;;) {
        struct pollfd p[2] = {{srv->evfd, POLLIN, 0}, {paused ? -1 : srv->lfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) {
            NLOG_ERROR("sql", "listener poll: %s", strerror(errno));
            break;
        }
        if (p[0].revents) {
            uint64_t v;
            ssize_t r = read(srv->evfd, &v, sizeof v);
            (void)r;
            reap(srv, false);
            paused = false;
            pthread_mutex_lock(&srv->mu);
            bool stop = srv->stopping;
            pthread_mutex_unlock(&srv->mu);
            if (stop)
                break;
        }
        if (p[1].revents)
            accept_one(srv, &paused);
    }
    return NULL;
}

/* Bind and listen on host:port; the socket or -1 (detail set). */
static int listen_on(const char *host, uint16_t port, uint16_t *bound)
{
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE}, *ai = NULL;
    int gai = getaddrinfo(host, ps, &hints, &ai);
    if (gai)
        return nines_err(NINES_ESYS, "sql: cannot resolve %s: %s", host, gai_strerror(gai));
    int fd = -1, e = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return nines_err(NINES_ESYS, "sql: cannot listen on %s:%u: %s", host, port, strerror(e));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* The OpenSSL error queue as one line (emptied). */
void pgw_tls_errors(char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0 && k + 2 < n) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? "; " : "", one);
    }
    if (!buf[0])
        snprintf(buf, n, "no detail from OpenSSL");
}

/* sql_tls prefer|require: the context every TLS session is made from. */
static int tls_open(struct sql_srv *srv, const struct nines_conf *conf)
{
    char why[512];
    srv->tls = SSL_CTX_new(TLS_server_method());
    if (!srv->tls) {
        pgw_tls_errors(why, sizeof why);
        return nines_err(NINES_ESYS, "sql: no TLS context: %s", why);
    }
    SSL_CTX_set_min_proto_version(srv->tls, TLS1_2_VERSION);
    SSL_CTX_set_options(srv->tls, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(srv->tls, conf->tls_cert) != 1) {
        pgw_tls_errors(why, sizeof why);
        return nines_err(NINES_ECONFIG, "sql: tls_cert %s: %s", conf->tls_cert, why);
    }
    if (SSL_CTX_use_PrivateKey_file(srv->tls, conf->tls_key, SSL_FILETYPE_PEM) != 1) {
        pgw_tls_errors(why, sizeof why);
        return nines_err(NINES_ECONFIG, "sql: tls_key %s: %s", conf->tls_key, why);
    }
    if (SSL_CTX_check_private_key(srv->tls) != 1) {
        pgw_tls_errors(why, sizeof why);
        return nines_err(NINES_ECONFIG, "sql: tls_key %s does not match tls_cert %s: %s",
                         conf->tls_key, conf->tls_cert, why);
    }
    return 0;
}

int sql_srv_start(const struct nines_conf *conf, uint32_t self, const char *conf_path,
                  struct sql_srv **out)
{
    return sql_srv_start_as(conf, self, conf_path, NULL, NULL, out);
}

int sql_srv_set_users(struct sql_srv *srv, const struct sql_srv_user *u, size_t n)
{
    if (!srv)
        return 0;
    struct sql_srv_user *c = n ? malloc(n * sizeof *c) : NULL;
    if (n && !c)
        return nines_err(NINES_ENOMEM, "sql: no memory for %zu users", n);
    if (n)
        memcpy(c, u, n * sizeof *c);
    pthread_mutex_lock(&srv->mu);
    struct sql_srv_user *old = srv->users;
    size_t oldn = srv->nusers;
    srv->users = c;
    srv->nusers = n;
    pthread_mutex_unlock(&srv->mu);
    if (old)
        memset(old, 0, oldn * sizeof *old);
    free(old);
    return 0;
}

int sql_srv_user_find(struct sql_srv *srv, const char *name, struct sql_srv_user *out)
{
    int found = 0;
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; i < srv->nusers && !found; i++)
        if (!strcmp(srv->users[i].name, name)) {
            *out = srv->users[i];
            found = 1;
        }
    pthread_mutex_unlock(&srv->mu);
    return found;
}

int sql_srv_start_as(const struct nines_conf *conf, uint32_t self, const char *conf_path,
                     const char *user, const char *password, struct sql_srv **out)
{
    *out = NULL;
    const struct nines_node_conf *me = nines_conf_node(conf, self);
    if (!me)
        return nines_err(NINES_ECONFIG, "sql: node %u is not in %s", self, conf->path);
    if (!me->has_sql)
        return 0;
    for (uint32_t i = 0; i < conf->sql_nusers; i++) {
        struct scram_verifier v;
        if (scram_verifier_parse(conf->sql_users[i].verifier, &v))
            return nines_err(NINES_ECONFIG, "%s: sql_user %s: the verifier does not decode",
                             conf->path, conf->sql_users[i].name);
    }
    struct sql_srv *srv = calloc(1, sizeof *srv);
    if (!srv)
        return nines_err(NINES_ENOMEM, "sql: no memory for the server");
    srv->conf = *conf;
    srv->self = self;
    srv->lfd = srv->evfd = -1;
    srv->send_timeout_ms = PGW_SEND_TIMEOUT_S * 1000;
    pthread_mutex_init(&srv->mu, NULL);
    int rc = 0;
    if (RAND_bytes(srv->mock_key, sizeof srv->mock_key) != 1)
        rc = nines_err(NINES_ESYS, "sql: RAND_bytes failed");
    if (!rc && conf->sql_tls != NINES_TLS_OFF)
        rc = tls_open(srv, conf);
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    struct sqle_config ec = {.conf_path = conf_path, .self = self, .timeout_ms = 0,
                             .user = user, .password = password};
    if (!rc && sqle_create(&ec, &srv->eng, &err)) {
        srv->eng = NULL;
        rc = nines_err(NINES_EIO, "sql: the engine did not start: %s (%s)", err.message,
                       err.sqlstate);
    }
    if (!rc) {
        srv->lfd = listen_on(me->sql_host, me->sql_port, &srv->port);
        if (srv->lfd < 0)
            rc = srv->lfd;
    }
    if (!rc) {
        srv->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (srv->evfd < 0)
            rc = nines_err(NINES_ESYS, "sql: eventfd: %s", strerror(errno));
    }
    if (!rc) {
        int e = pthread_create(&srv->listener, NULL, listener_main, srv);
        if (e)
            rc = nines_err(NINES_ESYS, "sql: no listener thread: %s", strerror(e));
        srv->listener_started = e == 0;
    }
    if (rc) {
        sql_srv_stop(srv);
        return rc;
    }
    NLOG_INFO("sql", "node %u: PostgreSQL protocol on %s:%u (TLS %s, auth %s, %u users, at "
              "most %u sessions, messages up to %u bytes)", self, me->sql_host, srv->port,
              conf->sql_tls == NINES_TLS_REQUIRE  ? "required"
              : conf->sql_tls == NINES_TLS_PREFER ? "offered"
                                                  : "off",
              conf->sql_auth == NINES_SQL_AUTH_SCRAM ? "scram-sha-256" : "trust",
              conf->sql_nusers, conf->sql_max_connections, conf->sql_max_message_bytes);
    *out = srv;
    return 0;
}

uint16_t sql_srv_port(const struct sql_srv *srv)
{
    return srv ? srv->port : 0;
}

void sql_srv_stop(struct sql_srv *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    for (struct pgw_conn *c = srv->conns; c; c = c->next) {
        if (c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR); /* a blocked read or write returns */
        if (c->sess)
            sqle_sess_cancel(c->sess);  /* a running statement stops */
    }
    pthread_mutex_unlock(&srv->mu);
    if (srv->listener_started) {
        wake(srv);
        pthread_join(srv->listener, NULL);
    }
    if (srv->lfd >= 0)
        close(srv->lfd);
    reap(srv, true); /* the listener is gone: join the rest */
    NLOG_INFO("sql", "node %u: PostgreSQL protocol stopped (%llu connections served, %llu "
              "refused)", srv->self, (unsigned long long)srv->accepted,
              (unsigned long long)srv->refused);
    if (srv->eng)
        sqle_destroy(srv->eng);
    if (srv->evfd >= 0)
        close(srv->evfd);
    pthread_mutex_destroy(&srv->mu);
    explicit_bzero(srv->mock_key, sizeof srv->mock_key);
    SSL_CTX_free(srv->tls);
    if (srv->users)
        memset(srv->users, 0, srv->nusers * sizeof *srv->users);
    free(srv->users);
    free(srv);
}
