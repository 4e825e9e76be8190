/* Backend messages made from engine data (pgw.h; sql/README.md
 * "Backend messages"). Everything goes to the session's output buffer;
 * pgw_io.c writes it. */
#include "pgw.h"

#include <stdio.h>
#include <string.h>

void pgw_err_set(struct sqle_error *e, const char *severity, const char *sqlstate,
                 const char *fmt, ...)
{
    memset(e, 0, sizeof *e);
    snprintf(e->severity, sizeof e->severity, "%s", severity);
    snprintf(e->sqlstate, sizeof e->sqlstate, "%s", sqlstate);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* ErrorResponse ('E') or NoticeResponse ('N'): S, V, C, M, then D, H, P
 * when present. Fields are cut at their first NUL by construction; an
 * engine error without a SQLSTATE gets XX000. */
static void send_fields(struct pgw_sess *s, char type, const struct sqle_error *e,
                        const char *dflt_sev)
{
    char sev[sizeof e->severity + 1], code[sizeof e->sqlstate + 1];
    snprintf(sev, sizeof sev, "%.*s", (int)sizeof e->severity, e->severity[0] ? e->severity
                                                                                 : dflt_sev);
    snprintf(code, sizeof code, "%.*s", (int)sizeof e->sqlstate - 1,
             e->sqlstate[0] ? e->sqlstate : "XX000");
    char buf[sizeof e->message + 1];
    pgw_out_begin(&s->out, type);
    pgw_out_u8(&s->out, 'S');
    pgw_out_str(&s->out, sev);
    pgw_out_u8(&s->out, 'V');
    pgw_out_str(&s->out, sev);
    pgw_out_u8(&s->out, 'C');
    pgw_out_str(&s->out, code);
    pgw_out_u8(&s->out, 'M');
    snprintf(buf, sizeof buf, "%.*s", (int)sizeof e->message, e->message);
    pgw_out_str(&s->out, buf);
    if (e->detail[0]) {
        pgw_out_u8(&s->out, 'D');
        snprintf(buf, sizeof buf, "%.*s", (int)sizeof e->detail, e->detail);
        pgw_out_str(&s->out, buf);
    }
    if (e->hint[0]) {
        pgw_out_u8(&s->out, 'H');
        snprintf(buf, sizeof buf, "%.*s", (int)sizeof e->hint, e->hint);
        pgw_out_str(&s->out, buf);
    }
    if (e->position > 0) {
        pgw_out_u8(&s->out, 'P');
        snprintf(buf, sizeof buf, "%d", e->position);
        pgw_out_str(&s->out, buf);
    }
    pgw_out_u8(&s->out, 0);
    pgw_out_end(&s->out);
}

void pgw_send_error(struct pgw_sess *s, const struct sqle_error *e)
{
    send_fields(s, 'E', e, "ERROR");
}

void pgw_send_notice(struct pgw_sess *s, const struct sqle_error *e)
{
    send_fields(s, 'N', e, "NOTICE");
}

void pgw_send_errorf(struct pgw_sess *s, const char *severity, const char *sqlstate,
                     const char *fmt, ...)
{
    struct sqle_error e;
    memset(&e, 0, sizeof e);
    snprintf(e.severity, sizeof e.severity, "%s", severity);
    snprintf(e.sqlstate, sizeof e.sqlstate, "%s", sqlstate);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    pgw_send_error(s, &e);
}

int pgw_malformed(struct pgw_sess *s, const char *what)
{
    unsigned t = (unsigned)(uint8_t)s->mtype;
    pgw_send_errorf(s, "FATAL", "08P01", "invalid message format: %s (message type '%c', %zu "
                    "bytes)", what, t >= 0x20 && t < 0x7f ? (char)t : '?', s->blen);
    pgw_reason(s, "malformed message type 0x%02x of %zu bytes: %s", t, s->blen, what);
    return -1;
}

void pgw_send_rfq(struct pgw_sess *s)
{
    char st = s->es ? sqle_sess_status(s->es) : 'I';
    if (st != 'I' && st != 'T' && st != 'E')
        st = 'I';
    pgw_out_begin(&s->out, 'Z');
    pgw_out_u8(&s->out, (uint8_t)st);
    pgw_out_end(&s->out);
}

void pgw_send_cc(struct pgw_sess *s, const char *tag)
{
    pgw_out_begin(&s->out, 'C');
    pgw_out_str(&s->out, tag ? tag : "");
    pgw_out_end(&s->out);
}

void pgw_send_simple(struct pgw_sess *s, char type)
{
    pgw_out_begin(&s->out, type);
    pgw_out_end(&s->out);
}

void pgw_send_param_status(struct pgw_sess *s, const char *name, const char *value)
{
    pgw_out_begin(&s->out, 'S');
    pgw_out_str(&s->out, name ? name : "");
    pgw_out_str(&s->out, value ? value : "");
    pgw_out_end(&s->out);
}

void pgw_send_rowdesc(struct pgw_sess *s, const struct sqle_col *cols, size_t n, bool nodata,
                      const int16_t *fmts)
{
    if (n == 0 || !cols || n > INT16_MAX) {
        if (nodata) {
            pgw_send_simple(s, 'n'); /* NoData */
            return;
        }
        n = 0;
    }
    pgw_out_begin(&s->out, 'T');
    pgw_out_i16(&s->out, (int16_t)n);
    for (size_t i = 0; i < n; i++) {
        char name[sizeof cols[i].name + 1];
        snprintf(name, sizeof name, "%.*s", (int)sizeof cols[i].name, cols[i].name);
        pgw_out_str(&s->out, name);
        pgw_out_i32(&s->out, (int32_t)cols[i].table_oid);
        pgw_out_i16(&s->out, cols[i].attnum);
        pgw_out_i32(&s->out, (int32_t)cols[i].type_oid);
        pgw_out_i16(&s->out, cols[i].typlen);
        pgw_out_i32(&s->out, cols[i].typmod);
        pgw_out_i16(&s->out, fmts ? fmts[i] : 0); /* 0 text, 1 binary */
    }
    pgw_out_end(&s->out);
}

int pgw_send_rows(struct pgw_sess *s, const struct sqle_result *r, size_t from, size_t to,
                  const int16_t *fmts)
{
    const struct sqle_col *cols = NULL;
    size_t ncols = sqle_result_ncols(r, &cols);
    if (ncols > INT16_MAX) {
        pgw_reason(s, "a result with %zu columns", ncols);
        return -1;
    }
    for (size_t row = from; row < to; row++) {
        pgw_out_begin(&s->out, 'D');
        pgw_out_i16(&s->out, (int16_t)ncols);
        for (size_t c = 0; c < ncols; c++) {
            int len = 0;
            const char *v = sqle_result_value(r, row, c, &len);
            if (!v || len < 0) {
                pgw_out_i32(&s->out, -1);
                continue;
            }
            if (fmts && fmts[c] == 1 && cols) {
                if (pgw_bin_value(cols[c].type_oid, v, len, &s->out) == 0)
                    continue;
                /* the DataRow begun is dropped: the client gets whole messages only */
                s->out.len = s->out.msg_at;
                pgw_send_errorf(s, "FATAL", "XX000", "result column %zu (type oid %u) has no "
                                "binary form for its value", c + 1, cols[c].type_oid);
                pgw_reason(s, "result column %zu (type oid %u) has no binary form for '%.*s'",
                           c + 1, cols[c].type_oid, len > 40 ? 40 : len, v);
                return -1;
            }
            pgw_out_i32(&s->out, len);
            pgw_out_bytes(&s->out, v, (size_t)len);
        }
        pgw_out_end(&s->out);
        if (pgw_maybe_flush(s))
            return -1;
    }
    return 0;
}

void pgw_send_notices(struct pgw_sess *s, const struct sqle_result *r)
{
    size_t n = sqle_result_nnotices(r);
    for (size_t i = 0; i < n; i++) {
        const struct sqle_error *e = sqle_result_notice(r, i);
        if (e)
            pgw_send_notice(s, e);
    }
}

void pgw_send_result_params(struct pgw_sess *s, const struct sqle_result *r)
{
    size_t n = sqle_result_nparams(r);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL, *value = NULL;
        sqle_result_param(r, i, &name, &value);
        if (name)
            pgw_send_param_status(s, name, value);
    }
}

void pgw_send_copy_in(struct pgw_sess *s, const struct sqle_result *r)
{
    size_t ncols = sqle_result_ncols(r, NULL);
    if (ncols > INT16_MAX)
        ncols = 0;
    pgw_out_begin(&s->out, 'G');
    pgw_out_u8(&s->out, 0); /* text */
    pgw_out_i16(&s->out, (int16_t)ncols);
    for (size_t i = 0; i < ncols; i++)
        pgw_out_i16(&s->out, 0);
    pgw_out_end(&s->out);
}
