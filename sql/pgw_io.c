/* A session's socket: whole messages in, batches of messages out (pgw.h;
 * sql/README.md "Framing and limits"). The session thread blocks on its
 * own socket; the send timeout (SO_SNDTIMEO, set by the server) bounds a
 * client that stops reading, the receive timeout during startup bounds one
 * that never finishes authenticating. */
#include "pgw.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PGW_IN_MIN (16u << 10)       /* the input buffer's first size */
#define PGW_IN_KEEP (1u << 20)       /* a larger idle input buffer is given back */

void pgw_reason(struct pgw_sess *s, const char *fmt, ...)
{
    if (s->reason[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof s->reason, fmt, ap);
    va_end(ap);
}

/* The socket or its TLS session: bytes moved, 0 at EOF, -1 with errno
 * (EAGAIN: the socket's time-out passed). */
static ssize_t sock_write(struct pgw_sess *s, const void *p, size_t n)
{
    if (!s->ssl)
        return send(s->fd, p, n, MSG_NOSIGNAL);
    ERR_clear_error();
    int w = SSL_write(s->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (w > 0)
        return w;
    switch (SSL_get_error(s->ssl, w)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (!errno)
            errno = EPIPE;
        return -1;
    default:
        errno = EPROTO;
        return -1;
    }
}

static ssize_t sock_read(struct pgw_sess *s, void *p, size_t n)
{
    if (!s->ssl)
        return read(s->fd, p, n);
    ERR_clear_error();
    int r = SSL_read(s->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (r > 0)
        return r;
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (!errno) /* the peer closed without a TLS close_notify */
            return 0;
        return -1;
    default:
        errno = EPROTO;
        return -1;
    }
}

int pgw_tls_accept(struct pgw_sess *s)
{
    s->ssl = SSL_new(s->srv->tls);
    if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1) {
        char why[512];
        pgw_tls_errors(why, sizeof why);
        pgw_reason(s, "cannot start TLS: %s", why);
        return -1;
    }
    ERR_clear_error();
    int rc = SSL_accept(s->ssl);
    if (rc != 1) {
        char why[512];
        int e = SSL_get_error(s->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            snprintf(why, sizeof why, "the client did not finish the TLS handshake within %d s",
                     PGW_AUTH_TIMEOUT_S);
        else
            pgw_tls_errors(why, sizeof why);
        pgw_reason(s, "TLS handshake failed: %s", why);
        return -1;
    }
    return 0;
}

void pgw_tls_close(struct pgw_sess *s)
{
    if (!s->ssl)
        return;
    if (!s->write_failed)
        (void)SSL_shutdown(s->ssl); /* our close_notify; the client's is not awaited */
    SSL_free(s->ssl);
    s->ssl = NULL;
}

int pgw_flush(struct pgw_sess *s)
{
    if (s->out.oom) {
        pgw_reason(s, "out of memory for the session's output");
        s->write_failed = true;
        return -1;
    }
    if (s->write_failed)
        return -1;
    size_t off = 0;
    while (off < s->out.len) {
        ssize_t w = sock_write(s, s->out.p + off, s->out.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pgw_reason(s, "the client read nothing for %u ms (send timeout; %zu bytes "
                       "unsent)", s->srv->send_timeout_ms, s->out.len - off);
            s->write_failed = true;
            return -1;
        }
        if (w <= 0) {
            pgw_reason(s, "write failed: %s", w < 0 ? strerror(errno) : "closed");
            s->write_failed = true;
            return -1;
        }
        off += (size_t)w;
    }
    s->out.len = 0;
    if (s->out.cap > PGW_IN_KEEP) { /* a large result passed: give the memory back */
        pgw_out_free(&s->out);
    }
    return 0;
}

int pgw_maybe_flush(struct pgw_sess *s)
{
    return s->out.len >= PGW_OUT_FLUSH_AT || s->out.oom ? pgw_flush(s) : 0;
}

/* Make need unread bytes available at in + in_off: 1, 0 EOF before any
 * byte of them, -1 error (reason set). */
static int fill(struct pgw_sess *s, size_t need)
{
    if (s->in_off == s->in_len) {
        s->in_off = s->in_len = 0;
        if (s->in_cap > PGW_IN_KEEP) {
            free(s->in);
            s->in = NULL;
            s->in_cap = 0;
        }
    }
    if (s->in_len - s->in_off >= need)
        return 1;
    if (s->in_off + need > s->in_cap && s->in_off > 0) { /* move the unread part down */
        memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
        s->in_len -= s->in_off;
        s->in_off = 0;
    }
    if (need > s->in_cap) {
        size_t cap = s->in_cap ? s->in_cap : PGW_IN_MIN;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(s->in, cap);
        if (!p) {
            pgw_reason(s, "out of memory for a message of %zu bytes", need);
            return -1;
        }
        s->in = p;
        s->in_cap = cap;
    }
    while (s->in_len - s->in_off < need) {
        ssize_t r = sock_read(s, s->in + s->in_len, s->in_cap - s->in_len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pgw_reason(s, "startup and authentication did not finish within %d s",
                       PGW_AUTH_TIMEOUT_S);
            return -1;
        }
        if (r < 0) {
            pgw_reason(s, "read failed: %s", strerror(errno));
            return -1;
        }
        if (r == 0) {
            if (s->in_len == s->in_off)
                return 0;
            pgw_reason(s, "the connection closed in the middle of a message (%zu of %zu "
                       "bytes)", s->in_len - s->in_off, need);
            return -1;
        }
        s->in_len += (size_t)r;
    }
    return 1;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int pgw_read_msg(struct pgw_sess *s)
{
    int rc = fill(s, 5);
    if (rc <= 0)
        return rc;
    const uint8_t *h = s->in + s->in_off;
    char type = (char)h[0];
    uint32_t len = be32(h + 1);
    if (len < 4) {
        pgw_send_errorf(s, "FATAL", "08P01", "invalid message length %u (type 0x%02x)", len,
                        (unsigned)(uint8_t)type);
        pgw_reason(s, "message type 0x%02x with length %u (below 4)", (unsigned)(uint8_t)type,
                   len);
        return -1;
    }
    if (len - 4 > s->srv->conf.sql_max_message_bytes) {
        pgw_send_errorf(s, "FATAL", "08P01",
                        "message of %u bytes is longer than sql_max_message_bytes %u", len - 4,
                        s->srv->conf.sql_max_message_bytes);
        pgw_reason(s, "message type 0x%02x of %u bytes is above sql_max_message_bytes %u",
                   (unsigned)(uint8_t)type, len - 4, s->srv->conf.sql_max_message_bytes);
        return -1;
    }
    rc = fill(s, 1 + (size_t)len);
    if (rc == 0) {
        pgw_reason(s, "the connection closed in the middle of a message");
        return -1;
    }
    if (rc < 0)
        return -1;
    s->mtype = type;
    s->body = s->in + s->in_off + 5;
    s->blen = len - 4;
    s->in_off += 1 + (size_t)len;
    return 1;
}

int pgw_read_startup(struct pgw_sess *s)
{
    int rc = fill(s, 4);
    if (rc <= 0)
        return rc;
    uint32_t len = be32(s->in + s->in_off);
    if (len < 8 || len > PGW_STARTUP_MAX) {
        pgw_send_errorf(s, "FATAL", "08P01", "invalid length of startup packet (%u)", len);
        pgw_reason(s, "startup packet length %u is not in 8..%u", len, PGW_STARTUP_MAX);
        return -1;
    }
    rc = fill(s, len);
    if (rc == 0) {
        pgw_reason(s, "the connection closed in the middle of the startup packet");
        return -1;
    }
    if (rc < 0)
        return -1;
    s->mtype = 0;
    s->body = s->in + s->in_off + 4;
    s->blen = len - 4;
    s->in_off += len;
    return 1;
}
