/* pgw — the PostgreSQL v3 wire protocol, one session per thread (internal
 * to sql/; sql/README.md "Protocol"). The files:
 *
 *   pgw_buf.c    output message builder, input message reader (bounds-checked)
 *   pgw_io.c     socket reads and writes: framing, limits, the send timeout
 *   pgw_msg.c    backend messages built from engine data (errors, rows, ...)
 *   pgw_sess.c   a session's thread: startup, authentication, the dispatch
 *   pgw_query.c  Simple Query and COPY FROM STDIN
 *   pgw_ext.c    the extended protocol: statements, portals, Parse ... Sync
 *   sql_srv.c    the listener, the session registry, cancel, limits
 *
 * Nothing here is used outside sql/ but through sql_srv.h. */
#ifndef NINES_SQL_PGW_H
#define NINES_SQL_PGW_H
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "conf.h"
#include "scram.h"
#include "sqle.h"
#include "sql_srv.h"
#include "nines/nines.h"

#define PGW_PROTO_3_0 196608u           /* 3 << 16 */
#define PGW_SSL_REQUEST 80877103u
#define PGW_GSSENC_REQUEST 80877104u
#define PGW_CANCEL_REQUEST 80877102u
#define PGW_STARTUP_MAX 10000u          /* the startup packet, as PostgreSQL */
#define PGW_OUT_FLUSH_AT (64u << 10)    /* write the output once it holds this much */
#define PGW_SEND_TIMEOUT_S 30           /* a client that does not read this long is closed */
#define PGW_AUTH_TIMEOUT_S 60           /* startup and authentication must finish by then */
#define PGW_STARTUP_SLACK 8             /* connections beyond sql_max_connections that may be
                                         * in their startup (cancel requests, refusals) */

/* ---- pgw_buf.c ---- */

/* A growing output buffer of whole backend messages. */
struct pgw_out {
    uint8_t *p;
    size_t len, cap;
    size_t msg_at;      /* start of the message being built */
    bool oom;           /* an allocation failed: the session closes */
};
void pgw_out_begin(struct pgw_out *o, char type);
void pgw_out_u8(struct pgw_out *o, uint8_t v);
void pgw_out_i16(struct pgw_out *o, int16_t v);
void pgw_out_i32(struct pgw_out *o, int32_t v);
void pgw_out_bytes(struct pgw_out *o, const void *p, size_t n);
void pgw_out_str(struct pgw_out *o, const char *s); /* with its NUL */
void pgw_out_end(struct pgw_out *o);                /* fills in the length */
void pgw_out_free(struct pgw_out *o);

/* A message body being read; any read past the end sets bad. */
struct pgw_rd {
    const uint8_t *p;
    size_t n, off;
    bool bad;
};
uint8_t pgw_rd_u8(struct pgw_rd *r);
int16_t pgw_rd_i16(struct pgw_rd *r);
int32_t pgw_rd_i32(struct pgw_rd *r);
const char *pgw_rd_str(struct pgw_rd *r);          /* NUL-terminated inside the body */
const uint8_t *pgw_rd_bytes(struct pgw_rd *r, size_t n);
bool pgw_rd_end(const struct pgw_rd *r);           /* read exactly the whole body */

/* ---- the server (sql_srv.c) as sessions see it ---- */

/* One accepted connection and its thread (owned by the server). */
struct pgw_conn {
    struct sql_srv *srv;
    int fd;
    char peer[80];              /* "127.0.0.1:51000" for the log */
    pthread_t th;
    bool done;                  /* the thread has finished (under srv->mu) */
    bool admitted;              /* counted as a session */
    struct sqle_sess *sess;     /* for cancel, while open (under srv->mu) */
    int32_t pid, key;           /* BackendKeyData */
    struct pgw_conn *next;
};

struct sql_srv {
    struct nines_conf conf;     /* a copy: users, limits, auth */
    uint32_t self;
    struct sqle *eng;
    int lfd;                    /* listening socket */
    int evfd;                   /* eventfd: stop, and a session thread finished */
    uint16_t port;              /* bound port */
    pthread_t listener;
    bool listener_started;
    pthread_mutex_t mu;
    struct pgw_conn *conns;     /* every connection whose thread is not joined */
    uint32_t nconns, nsessions;
    bool stopping;
    uint8_t mock_key[SCRAM_KEY_LEN]; /* made-up salts for unknown users */
    uint64_t accepted, refused; /* counters for the log */
    uint32_t send_timeout_ms;   /* SO_SNDTIMEO of new sessions (PGW_SEND_TIMEOUT_S; tests
                                 * lower it before connecting) */
    SSL_CTX *tls;               /* sql_tls prefer|require: the node's certificate and key */
    struct sql_srv_user *users; /* the dictionary's users (sql_srv_set_users), under mu */
    size_t nusers;
};
/* A dictionary user by name into *out (under mu): 1 found, 0 not. */
int sql_srv_user_find(struct sql_srv *srv, const char *name, struct sql_srv_user *out);

/* Admit a startup as a session (sql_max_connections); 0 or -1. */
int pgw_srv_admit(struct pgw_conn *c);
/* Publish the open engine session for CancelRequest, choosing its
 * BackendKeyData (random, pid unique among live sessions). */
int pgw_srv_register(struct pgw_conn *c, struct sqle_sess *es);
/* Withdraw it (before sqle_sess_close). */
void pgw_srv_unregister(struct pgw_conn *c);
/* CancelRequest: 1 when a session matched (and was cancelled), else 0. */
int pgw_srv_cancel(struct sql_srv *srv, int32_t pid, int32_t key);
/* The session thread's last act: closes the socket, frees its session
 * slot and wakes the listener to join it. */
void pgw_srv_conn_done(struct pgw_conn *c);
/* The session thread (pgw_sess.c). */
void *pgw_conn_main(void *arg);

/* ---- a session ---- */

/* The session's state (sql/README.md "Session states"). */
enum pgw_state {
    PGW_ST_STARTUP = 1,     /* reading the startup packet (after SSL/GSS 'N' too) */
    PGW_ST_SASL_INIT,       /* AuthenticationSASL sent, waiting for SASLInitialResponse */
    PGW_ST_SASL_FINAL,      /* AuthenticationSASLContinue sent, waiting for SASLResponse */
    PGW_ST_READY,           /* normal: Query, extended messages */
    PGW_ST_COPY_IN,         /* COPY FROM STDIN: CopyData, CopyDone, CopyFail */
    PGW_ST_EXT_ERROR,       /* an extended-protocol error: discard until Sync */
    PGW_ST_CLOSED,          /* Terminate, EOF or a fatal error: the thread ends */
};

/* A prepared statement (Parse); shared with its portals by reference. */
struct pgw_stmt {
    char *name;             /* "" unnamed */
    struct sqle_stmt *st;   /* NULL: an empty query */
    size_t nparams;
    int refs;
    struct pgw_stmt *next;
};

/* A portal (Bind): its statement, text parameters, and once executed the
 * materialized result with a cursor for Execute with a row limit. */
struct pgw_portal {
    char *name;
    struct pgw_stmt *stmt;
    size_t nparams;
    char **params;          /* NUL-terminated copies; NULL = SQL NULL */
    int *lens;
    struct sqle_result *res;
    int16_t *res_fmts;      /* per result column: 0 text, 1 binary (NULL: all text) */
    size_t nres_fmts;
    size_t next_row;
    bool done;              /* CommandComplete sent */
    struct pgw_portal *next;
};

/* Where a COPY FROM STDIN came from: what happens after it. */
enum pgw_copy_from {
    PGW_COPY_SIMPLE = 1,    /* resume the rest of the Query's statements */
    PGW_COPY_EXTENDED,      /* an Execute: back to extended messages */
};

struct pgw_sess {
    struct pgw_conn *conn;
    struct sql_srv *srv;
    int fd;
    enum pgw_state st;
    struct pgw_out out;
    /* input: whole messages are read into in[] */
    uint8_t *in;
    size_t in_len, in_cap, in_off;
    char mtype;             /* the current message's type and body */
    const uint8_t *body;
    size_t blen;
    char reason[256];       /* why the session closes, for the log */
    bool write_failed;      /* the socket takes no more output */
    /* startup */
    char user[NINES_NAME_MAX];
    char database[NINES_NAME_MAX];
    bool ssl_asked, gss_asked;
    SSL *ssl;                   /* the session runs over TLS (NULL: in clear) */
    uint32_t role;              /* enum nines_role of the logged-in user */
    struct scram_srv *scram;
    struct sqle_sess *es;
    /* Simple Query in progress (a COPY in its middle resumes it) */
    struct sqle_stmt **q_stmts;
    size_t q_n, q_i;
    bool q_failed;
    enum pgw_copy_from copy_from;
    struct pgw_portal *copy_portal;
    /* extended protocol */
    struct pgw_stmt *stmts;
    struct pgw_portal *portals;
};

/* ---- pgw_io.c ---- */
/* The OpenSSL error queue as one line into buf (the queue emptied). */
void pgw_tls_errors(char *buf, size_t n);
/* Switch the session to TLS after answering SSLRequest 'S': 0, or -1
 * (reason set). */
int pgw_tls_accept(struct pgw_sess *s);
/* End TLS (best effort) and free it. */
void pgw_tls_close(struct pgw_sess *s);
/* Write the output buffer; 0, or -1 with s->reason (the session closes). */
int pgw_flush(struct pgw_sess *s);
/* Flush when the buffer passed PGW_OUT_FLUSH_AT. */
int pgw_maybe_flush(struct pgw_sess *s);
/* Read the next regular message into s->mtype/body/blen: 1 read, 0 EOF
 * between messages, -1 error (s->reason; a FATAL was queued when it makes
 * sense). */
int pgw_read_msg(struct pgw_sess *s);
/* Read a startup-phase packet (length-prefixed, no type byte): 1, 0 EOF, -1. */
int pgw_read_startup(struct pgw_sess *s);
/* Set the reason the session closes (first one wins). */
void pgw_reason(struct pgw_sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- pgw_msg.c ---- */
void pgw_send_error(struct pgw_sess *s, const struct sqle_error *e);
void pgw_send_notice(struct pgw_sess *s, const struct sqle_error *e);
void pgw_send_errorf(struct pgw_sess *s, const char *severity, const char *sqlstate,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Fill an sqle_error. */
void pgw_err_set(struct sqle_error *e, const char *severity, const char *sqlstate,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void pgw_send_rfq(struct pgw_sess *s);
void pgw_send_cc(struct pgw_sess *s, const char *tag);
void pgw_send_simple(struct pgw_sess *s, char type); /* a message without a body */
void pgw_send_param_status(struct pgw_sess *s, const char *name, const char *value);
/* RowDescription of cols (result format text); for n == 0 NoData when
 * nodata, else a RowDescription without fields (a SELECT of no columns). */
void pgw_send_rowdesc(struct pgw_sess *s, const struct sqle_col *cols, size_t n, bool nodata,
                      const int16_t *fmts);
/* DataRows [from, to) of a ROWS result, column i in format fmts[i] (fmts
 * NULL: all text); 0 or -1 (output failed). */
int pgw_send_rows(struct pgw_sess *s, const struct sqle_result *r, size_t from, size_t to,
                  const int16_t *fmts);

/* ---- pgw_bin.c: binary formats (sql/README.md "Binary formats") ---- */
bool pgw_bin_supported(uint32_t oid);
/* A binary parameter of type oid as text (malloc'd, NUL-terminated); -1
 * with err set when the bytes are not that type's binary form. */
int pgw_bin_param(uint32_t oid, const uint8_t *p, int len, char **text, int *tlen, char *err,
                  size_t errlen);
/* A text value (the engine's output) of type oid, written as length +
 * binary form; -1 (nothing written) when it does not convert. */
int pgw_bin_value(uint32_t oid, const char *t, int len, struct pgw_out *o);
/* Notices, then after CommandComplete the parameters a result changed. */
void pgw_send_notices(struct pgw_sess *s, const struct sqle_result *r);
void pgw_send_result_params(struct pgw_sess *s, const struct sqle_result *r);
void pgw_send_copy_in(struct pgw_sess *s, const struct sqle_result *r);

/* A body that does not parse: FATAL 08P01 naming the message, the reason
 * set; returns -1 (the session closes). */
int pgw_malformed(struct pgw_sess *s, const char *what);

/* ---- pgw_query.c ---- */
/* 'Q': 0, or -1 when the session must close. */
int pgw_query(struct pgw_sess *s);
/* A message in PGW_ST_COPY_IN: 0 or -1. */
int pgw_copy_msg(struct pgw_sess *s);
/* Free the Query's statements. */
void pgw_query_reset(struct pgw_sess *s);

/* ---- pgw_ext.c ---- */
/* 'P', 'B', 'D', 'E', 'C', 'S', 'H': 0, or -1 when the session must close. */
int pgw_ext_msg(struct pgw_sess *s);
/* After a COPY started by Execute ended (ok: its CommandComplete was sent). */
void pgw_ext_copy_ended(struct pgw_sess *s, bool ok);
/* Drop the unnamed statement and portal (a Simple Query does). */
void pgw_ext_drop_unnamed(struct pgw_sess *s);
/* Free every statement and portal. */
void pgw_ext_free_all(struct pgw_sess *s);
#endif
