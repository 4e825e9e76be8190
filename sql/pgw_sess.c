/* A session's thread: the startup packet (SSL/GSS refusals, CancelRequest,
 * protocol version), authentication (trust or SCRAM-SHA-256), the engine
 * session, then the message loop that dispatches on the session's state
 * (sql/README.md "Startup", "Authentication", "Session states"). */
#include "pgw.h"

#include "nassert.h"
#include "nlog.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#define PGW_MAX_STARTUP_PARAMS 64

/* Startup parameters, pointing into a private copy of the packet. */
struct startup {
    char *pk;
    size_t n;
    const char *names[PGW_MAX_STARTUP_PARAMS + 1], *values[PGW_MAX_STARTUP_PARAMS + 1];
    const char *user, *database;
    size_t nunrec;               /* _pq_.* protocol options: NegotiateProtocolVersion */
    const char *unrec[PGW_MAX_STARTUP_PARAMS];
};

/* A FATAL from an engine error (its SQLSTATE kept). */
static void send_fatal(struct pgw_sess *s, const struct sqle_error *e)
{
    struct sqle_error f = *e;
    snprintf(f.severity, sizeof f.severity, "FATAL");
    pgw_send_error(s, &f);
}

static void send_auth(struct pgw_sess *s, int32_t code, const void *data, size_t n)
{
    pgw_out_begin(&s->out, 'R');
    pgw_out_i32(&s->out, code);
    pgw_out_bytes(&s->out, data, n);
    pgw_out_end(&s->out);
}

/* Read the next 'p' message of the SASL exchange: 1, or -1 (closing). */
static int read_sasl(struct pgw_sess *s)
{
    int rc = pgw_read_msg(s);
    if (rc == 0) { /* libpq without a password closes here: not an error */
        NLOG_DEBUG("sql", "session from %s (user %s) closed during authentication",
                   s->conn->peer, s->user);
        return -1;
    }
    if (rc < 0)
        return -1;
    if (s->mtype != 'p') {
        pgw_send_errorf(s, "FATAL", "08P01", "expected SASL response, got message type %d",
                        (int)(uint8_t)s->mtype);
        pgw_reason(s, "message type 0x%02x during authentication", (unsigned)(uint8_t)s->mtype);
        return -1;
    }
    return 1;
}

static int sasl_fail(struct pgw_sess *s, int rc, const char *why)
{
    switch (rc) {
    case SCRAM_EAUTH:
        pgw_send_errorf(s, "FATAL", "28P01", "password authentication failed for user \"%s\"",
                        s->user);
        pgw_reason(s, "password authentication failed for user \"%s\" (%s)", s->user, why);
        break;
    case SCRAM_EUNSUPPORTED:
        pgw_send_errorf(s, "FATAL", "0A000", "%s", why);
        pgw_reason(s, "SCRAM: %s", why);
        break;
    case SCRAM_ESYS:
        pgw_send_errorf(s, "FATAL", "XX000", "authentication failed: %s", why);
        pgw_reason(s, "SCRAM: %s", why);
        break;
    case SCRAM_EPROTO:
    default:
        pgw_send_errorf(s, "FATAL", "08P01", "%s", why);
        pgw_reason(s, "SCRAM: %s", why);
        break;
    }
    return -1;
}

/* SCRAM-SHA-256 (RFC 5802/7677 as PostgreSQL runs it): 0 authenticated. */
static int auth_scram(struct pgw_sess *s)
{
    /* the cluster file's sql_user lines (admins), then the dictionary's users */
    const struct nines_sql_user *u = nines_conf_sql_user(&s->srv->conf, s->user);
    struct scram_verifier v;
    bool known = u && scram_verifier_parse(u->verifier, &v) == 0;
    struct sql_srv_user du;
    if (!u && sql_srv_user_find(s->srv, s->user, &du)) {
        known = scram_verifier_parse(du.verifier, &v) == 0;
        s->role = du.role;
        explicit_bzero(&du, sizeof du);
    }
    s->scram = malloc(sizeof *s->scram);
    if (!s->scram) {
        pgw_send_errorf(s, "FATAL", "53200", "out of memory");
        pgw_reason(s, "out of memory for authentication");
        return -1;
    }
    int rc = scram_srv_init(s->scram, known ? &v : NULL, s->srv->mock_key, s->user, NULL);
    if (rc)
        return sasl_fail(s, rc, "cannot start the SCRAM exchange");
    static const char mechs[] = SCRAM_MECH "\0"; /* the list ends with an empty name */
    send_auth(s, 10, mechs, sizeof mechs);
    s->st = PGW_ST_SASL_INIT;
    char out[SCRAM_MSG_MAX + 256], why[160];
    for (;;) {
        if (pgw_flush(s) || read_sasl(s) < 0)
            return -1;
        struct pgw_rd r = {s->body, s->blen, 0, false};
        switch (s->st) {
        case PGW_ST_SASL_INIT: {
            const char *mech = pgw_rd_str(&r);
            int32_t n = pgw_rd_i32(&r);
            const uint8_t *data = n >= 0 ? pgw_rd_bytes(&r, (size_t)n) : NULL;
            if (!pgw_rd_end(&r) || n < 0)
                return pgw_malformed(s, "SASLInitialResponse");
            if (strcmp(mech, SCRAM_MECH) != 0)
                return sasl_fail(s, SCRAM_EPROTO, "client selected an invalid SASL "
                                 "authentication mechanism");
            rc = scram_srv_first(s->scram, (const char *)data, (size_t)n, out, sizeof out, why,
                                 sizeof why);
            if (rc)
                return sasl_fail(s, rc, why);
            send_auth(s, 11, out, strlen(out));
            s->st = PGW_ST_SASL_FINAL;
            break;
        }
        case PGW_ST_SASL_FINAL:
            rc = scram_srv_final(s->scram, (const char *)s->body, s->blen, out, sizeof out, why,
                                 sizeof why);
            if (rc)
                return sasl_fail(s, rc, why);
            send_auth(s, 12, out, strlen(out));
            send_auth(s, 0, NULL, 0);
            return 0;
        case PGW_ST_STARTUP:
        case PGW_ST_READY:
        case PGW_ST_COPY_IN:
        case PGW_ST_EXT_ERROR:
        case PGW_ST_CLOSED:
        default:
            pgw_reason(s, "authentication in state %d", (int)s->st);
            return -1;
        }
    }
}

static int authenticate(struct pgw_sess *s)
{
    /* the role: a dictionary user's own; a cluster-file sql_user, or any
     * name under trust that is no dictionary user, is an admin */
    struct sql_srv_user du;
    s->role = !nines_conf_sql_user(&s->srv->conf, s->user) &&
                      sql_srv_user_find(s->srv, s->user, &du)
                  ? du.role
                  : NINES_ROLE_ADMIN;
    explicit_bzero(&du, sizeof du);
    switch (s->srv->conf.sql_auth) {
    case NINES_SQL_AUTH_TRUST:
        send_auth(s, 0, NULL, 0);
        return 0;
    case NINES_SQL_AUTH_SCRAM:
        return auth_scram(s);
    default:
        pgw_send_errorf(s, "FATAL", "28000", "no authentication method configured");
        pgw_reason(s, "unknown sql_auth %d", (int)s->srv->conf.sql_auth);
        return -1;
    }
}

/* The StartupMessage's name/value pairs into st; 0 or -1 (FATAL sent). */
static int parse_startup(struct pgw_sess *s, struct pgw_rd *r, struct startup *st)
{
    st->n = r->n - r->off;
    st->pk = malloc(st->n ? st->n : 1);
    if (!st->pk) {
        pgw_reason(s, "out of memory for the startup packet");
        return -1;
    }
    memcpy(st->pk, r->p + r->off, st->n);
    struct pgw_rd pr = {(const uint8_t *)st->pk, st->n, 0, false};
    size_t np = 0;
    for (;;) {
        const char *name = pgw_rd_str(&pr);
        if (!name)
            break;
        if (!name[0]) {
            if (!pgw_rd_end(&pr))
                pr.bad = true;
            break;
        }
        const char *value = pgw_rd_str(&pr);
        if (!value)
            break;
        if (np + st->nunrec == PGW_MAX_STARTUP_PARAMS) {
            pgw_send_errorf(s, "FATAL", "08P01", "more than %d startup parameters",
                            PGW_MAX_STARTUP_PARAMS);
            pgw_reason(s, "more than %d startup parameters", PGW_MAX_STARTUP_PARAMS);
            return -1;
        }
        if (strcmp(name, "user") == 0)
            st->user = value;
        else if (strcmp(name, "database") == 0)
            st->database = value;
        else if (strncmp(name, "_pq_.", 5) == 0)
            st->unrec[st->nunrec++] = name;
        else {
            st->names[np] = name;
            st->values[np++] = value;
        }
    }
    if (pr.bad)
        return pgw_malformed(s, "invalid startup packet layout: expected terminator as last "
                             "byte");
    st->names[np] = NULL;
    return 0;
}

static void param_status(void *arg, const char *name, const char *value)
{
    pgw_send_param_status(arg, name, value);
}

/* After the startup packet: version, admission, authentication, the
 * engine session, its parameters, BackendKeyData, ReadyForQuery. */
static int startup(struct pgw_sess *s, struct pgw_rd *r, uint32_t minor)
{
    struct startup st = {0};
    int rc = parse_startup(s, r, &st);
    if (rc)
        goto out;
    rc = -1;
    if (minor > 0 || st.nunrec) { /* we speak 3.0 and no protocol options */
        pgw_out_begin(&s->out, 'v');
        pgw_out_i32(&s->out, 0);
        pgw_out_i32(&s->out, (int32_t)st.nunrec);
        for (size_t i = 0; i < st.nunrec; i++)
            pgw_out_str(&s->out, st.unrec[i]);
        pgw_out_end(&s->out);
    }
    if (!st.user || !st.user[0]) {
        pgw_send_errorf(s, "FATAL", "28000", "no PostgreSQL user name specified in startup "
                        "packet");
        pgw_reason(s, "no user name in the startup packet");
        goto out;
    }
    if (strlen(st.user) >= sizeof s->user) {
        pgw_send_errorf(s, "FATAL", "28000", "user name is longer than %zu bytes",
                        sizeof s->user - 1);
        pgw_reason(s, "user name of %zu bytes", strlen(st.user));
        goto out;
    }
    snprintf(s->user, sizeof s->user, "%s", st.user);
    const char *db = st.database && st.database[0] ? st.database : st.user;
    if (strlen(db) >= sizeof s->database) {
        pgw_send_errorf(s, "FATAL", "3D000", "database name is longer than %zu bytes",
                        sizeof s->database - 1);
        pgw_reason(s, "database name of %zu bytes", strlen(db));
        goto out;
    }
    snprintf(s->database, sizeof s->database, "%s", db);
    if (pgw_srv_admit(s->conn)) {
        pgw_send_errorf(s, "FATAL", "53300", "sorry, too many clients already "
                        "(sql_max_connections %u)", s->srv->conf.sql_max_connections);
        pgw_reason(s, "refused: sql_max_connections %u sessions are open",
                   s->srv->conf.sql_max_connections);
        goto out;
    }
    if (authenticate(s))
        goto out;
    struct sqle_error err;
    memset(&err, 0, sizeof err);
    if (sqle_sess_open(s->srv->eng, s->user, s->database, &s->es, &err)) {
        s->es = NULL;
        send_fatal(s, &err);
        pgw_reason(s, "the engine refused the session: %s %s", err.sqlstate, err.message);
        goto out;
    }
    sqle_sess_set_role(s->es, s->role);
    for (size_t i = 0; st.names[i]; i++) {
        if (sqle_sess_set(s->es, st.names[i], st.values[i], &err)) {
            send_fatal(s, &err);
            pgw_reason(s, "startup parameter %s: %s %s", st.names[i], err.sqlstate,
                       err.message);
            goto out;
        }
    }
    if (pgw_srv_register(s->conn, s->es)) {
        pgw_send_errorf(s, "FATAL", "57P01", "the server is shutting down");
        pgw_reason(s, "the server is stopping");
        goto out;
    }
    sqle_sess_params(s->es, param_status, s);
    pgw_out_begin(&s->out, 'K');
    pgw_out_i32(&s->out, s->conn->pid);
    pgw_out_i32(&s->out, s->conn->key);
    pgw_out_end(&s->out);
    s->st = PGW_ST_READY;
    pgw_send_rfq(s);
    rc = pgw_flush(s);
    struct timeval tv = {0, 0}; /* authenticated: no deadline for the next message */
    (void)setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    NLOG_DEBUG("sql", "session of %s (database %s) from %s opened, backend key %d", s->user,
               s->database, s->conn->peer, (int)s->conn->pid);
out:
    free(st.pk);
    return rc;
}

/* Startup packets until a StartupMessage (after refusing SSL and GSS
 * encryption once each) or a CancelRequest: 0 go on, -1 close. */
static int startup_phase(struct pgw_sess *s)
{
    for (;;) {
        int rc = pgw_read_startup(s);
        if (rc <= 0)
            return -1;
        struct pgw_rd r = {s->body, s->blen, 0, false};
        uint32_t code = (uint32_t)pgw_rd_i32(&r);
        if (code == PGW_SSL_REQUEST || code == PGW_GSSENC_REQUEST) {
            bool *asked = code == PGW_SSL_REQUEST ? &s->ssl_asked : &s->gss_asked;
            if (*asked || !pgw_rd_end(&r)) {
                pgw_send_errorf(s, "FATAL", "08P01", "unsupported frontend protocol: a second "
                                "or malformed encryption request");
                pgw_reason(s, "a second or malformed SSL/GSS request");
                return -1;
            }
            *asked = true;
            bool tls = code == PGW_SSL_REQUEST && s->srv->tls;
            if (tls && s->in_len != s->in_off) {
                /* bytes after the request were sent in clear: never read
                 * them as if they came over TLS */
                pgw_send_errorf(s, "FATAL", "08P01", "received unencrypted data after SSL "
                                "request");
                pgw_reason(s, "%zu bytes in clear after its SSLRequest", s->in_len - s->in_off);
                return -1;
            }
            pgw_out_u8(&s->out, tls ? 'S' : 'N'); /* 'N': the client goes on in clear */
            if (pgw_flush(s))
                return -1;
            if (tls && pgw_tls_accept(s))
                return -1;
            continue;
        }
        if (code == PGW_CANCEL_REQUEST) {
            int32_t pid = pgw_rd_i32(&r), key = pgw_rd_i32(&r);
            if (!pgw_rd_end(&r)) {
                pgw_reason(s, "malformed CancelRequest of %zu bytes", s->blen);
                return -1;
            }
            int hit = pgw_srv_cancel(s->srv, pid, key);
            NLOG_DEBUG("sql", "cancel request from %s for backend %d: %s", s->conn->peer,
                       (int)pid, hit ? "cancelled" : "no such session");
            return -1; /* never answered */
        }
        if (s->srv->conf.sql_tls == NINES_TLS_REQUIRE && !s->ssl) {
            pgw_send_errorf(s, "FATAL", "28000", "node %u takes SQL clients over TLS only "
                            "(sql_tls require): connect with sslmode=require", s->srv->self);
            pgw_reason(s, "refused: no TLS (sql_tls require)");
            return -1;
        }
        uint32_t major = code >> 16, minor = code & 0xffff;
        if (major != 3) {
            pgw_send_errorf(s, "FATAL", "0A000", "unsupported frontend protocol %u.%u: server "
                            "supports 3.0 to 3.0", major, minor);
            pgw_reason(s, "protocol version %u.%u", major, minor);
            return -1;
        }
        return startup(s, &r, minor);
    }
}

/* The message types a frontend may send (anything else is FATAL). */
static bool known_type(char t)
{
    return t && strchr("QPBDESHCXFdcfp", t) != NULL;
}

/* One message in PGW_ST_READY: 0 or -1. */
static int ready_msg(struct pgw_sess *s)
{
    switch (s->mtype) {
    case 'Q':
        return pgw_query(s);
    case 'P':
    case 'B':
    case 'D':
    case 'E':
    case 'C':
    case 'S':
    case 'H':
        return pgw_ext_msg(s);
    case 'F':
        pgw_send_errorf(s, "ERROR", "0A000", "the function call message is not supported "
                        "(use SELECT)");
        pgw_send_rfq(s);
        return pgw_flush(s);
    case 'd':
    case 'c':
    case 'f':
        return 0; /* the rest of a COPY that already failed: dropped */
    case 'p':
    default:
        pgw_send_errorf(s, "FATAL", "08P01", "unexpected message type '%c' after "
                        "authentication", s->mtype);
        pgw_reason(s, "message type 0x%02x after authentication", (unsigned)(uint8_t)s->mtype);
        return -1;
    }
}

static void run(struct pgw_sess *s)
{
    if (startup_phase(s))
        return;
    for (;;) {
        int rc = pgw_read_msg(s);
        if (rc == 0) {
            NLOG_DEBUG("sql", "session of %s from %s: the client closed without Terminate",
                       s->user, s->conn->peer);
            return;
        }
        if (rc < 0)
            return;
        if (!known_type(s->mtype)) {
            pgw_send_errorf(s, "FATAL", "08P01", "invalid frontend message type %d",
                            (int)(uint8_t)s->mtype);
            pgw_reason(s, "unknown message type 0x%02x", (unsigned)(uint8_t)s->mtype);
            return;
        }
        if (s->mtype == 'X')
            return;
        switch (s->st) {
        case PGW_ST_READY:
            rc = ready_msg(s);
            break;
        case PGW_ST_EXT_ERROR:
            rc = s->mtype == 'S' ? pgw_ext_msg(s) : 0; /* discard until Sync */
            break;
        case PGW_ST_COPY_IN:
            rc = pgw_copy_msg(s);
            break;
        case PGW_ST_STARTUP:
        case PGW_ST_SASL_INIT:
        case PGW_ST_SASL_FINAL:
        case PGW_ST_CLOSED:
        default:
            pgw_reason(s, "message in state %d", (int)s->st);
            rc = -1;
            break;
        }
        if (rc < 0 || s->st == PGW_ST_CLOSED)
            return;
    }
}

void *pgw_conn_main(void *arg)
{
    struct pgw_conn *c = arg;
    nines_ctx_node = c->srv->self; /* the node id in this thread's log lines */
    /* OpenSSL writes with write(2): a client gone makes it EPIPE in this
     * thread, not a SIGPIPE for the whole process (whatever the process's
     * disposition; a blocked, thread-directed SIGPIPE just stays pending) */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    struct pgw_sess *s = calloc(1, sizeof *s);
    if (s) {
        s->conn = c;
        s->srv = c->srv;
        s->fd = c->fd;
        s->st = PGW_ST_STARTUP;
        run(s);
        if (s->st == PGW_ST_COPY_IN && s->es) { /* the client went away in the middle */
            struct sqle_error e;
            sqle_copy_fail(s->es, "the client connection closed during COPY", &e);
        }
        s->st = PGW_ST_CLOSED;
        if (s->out.len && !s->write_failed)
            (void)pgw_flush(s); /* a FATAL, when the socket still takes it */
        pgw_tls_close(s);
        if (s->reason[0])
            NLOG_WARN("sql", "closing session%s%s from %s: %s", s->user[0] ? " of " : "",
                      s->user, c->peer, s->reason);
        pgw_query_reset(s);
        pgw_ext_free_all(s);
        if (s->es) {
            pgw_srv_unregister(c);
            sqle_sess_close(s->es);
        }
        if (s->scram)
            explicit_bzero(s->scram, sizeof *s->scram);
        free(s->scram);
        free(s->in);
        pgw_out_free(&s->out);
        free(s);
    } else {
        NLOG_WARN("sql", "closing connection from %s: out of memory for a session", c->peer);
    }
    pgw_srv_conn_done(c);
    return NULL;
}
