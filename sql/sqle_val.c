/* sqle values: SQL types, their stored form, text input and output,
 * coercion to a column, and errors (sql/README.md "Types"). */
#include "sqle_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- errors ---------------------------------------------------------- */

int sq_err(struct sqle_error *e, const char *state, int pos, const char *fmt, ...)
{
    if (!e)
        return -1;
    memset(e, 0, sizeof *e);
    snprintf(e->sqlstate, sizeof e->sqlstate, "%s", state);
    snprintf(e->severity, sizeof e->severity, "ERROR");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->position = pos > 0 ? pos : 0;
    return -1;
}

int sq_err_detail(struct sqle_error *e, const char *detail)
{
    if (e)
        snprintf(e->detail, sizeof e->detail, "%s", detail ? detail : "");
    return -1;
}

const char *sq_state_of(int rc)
{
    switch (rc) {
    case NINES_EEXIST: return "23505";          /* unique_violation */
    case NINES_ENOTFOUND: return "42P01";       /* undefined_table (callers refine) */
    case NINES_EDEADLOCK: return "40P01";       /* deadlock_detected */
    case NINES_ELOCKTIMEOUT: return "55P03";    /* lock_not_available */
    case NINES_ETYPE: return "22P02";           /* invalid_text_representation */
    case NINES_ETOOBIG: return "54000";         /* program_limit_exceeded */
    case NINES_EINDOUBT: return "08007";        /* transaction_resolution_unknown */
    case NINES_EUNREACHABLE:
    case NINES_ENOTMEMBER:
    case NINES_ECLOSED:
    case NINES_ETIMEDOUT: return "08006";       /* connection_failure */
    case NINES_EAGAIN: return "53300";          /* too_many_connections (a limit) */
    case NINES_EFULL: return "53100";           /* disk_full / memory budget */
    case NINES_ENOMEM: return "53200";          /* out_of_memory */
    case NINES_ESTATE: return "25006";          /* read_only_sql_transaction (read-only table) */
    case NINES_EABORTED: return "40001";        /* serialization_failure: retry */
    case NINES_EAUTH: return "28000";
    case NINES_EPERM: return "42501";          /* insufficient_privilege */
    case NINES_EINVAL: return "22023";          /* invalid_parameter_value */
    default: return "XX000";                    /* internal_error */
    }
}

int sq_err_nines(struct sqle_error *e, int rc, const char *what, const char *detail)
{
    sq_err(e, sq_state_of(rc), 0, "%s: %s", what, nines_strerror(rc));
    return sq_err_detail(e, detail);
}

/* ---- types ----------------------------------------------------------- */

const char *sq_type_name(uint32_t oid)
{
    switch (oid) {
    case OID_BOOL: return "boolean";
    case OID_BYTEA: return "bytea";
    case OID_NAME: return "name";
    case OID_INT8: return "bigint";
    case OID_INT2: return "smallint";
    case OID_INT4: return "integer";
    case OID_TEXT: return "text";
    case OID_OID: return "oid";
    case OID_FLOAT4: return "real";
    case OID_FLOAT8: return "double precision";
    case OID_BPCHAR: return "character";
    case OID_VARCHAR: return "character varying";
    case OID_TIMESTAMP: return "timestamp without time zone";
    case OID_TIMESTAMPTZ: return "timestamp with time zone";
    case OID_NUMERIC: return "numeric";
    case OID_UNKNOWN: return "unknown";
    default: return "unknown";
    }
}

int16_t sq_typlen(uint32_t oid)
{
    switch (oid) {
    case OID_BOOL: return 1;
    case OID_INT2: return 2;
    case OID_INT4:
    case OID_OID:
    case OID_FLOAT4: return 4;
    case OID_INT8:
    case OID_FLOAT8:
    case OID_TIMESTAMP:
    case OID_TIMESTAMPTZ: return 8;
    case OID_NAME: return 64;
    default: return -1;
    }
}

#define SQ_TEXT_MAX 65535u   /* text / bytea / varchar without n: stored up to this */

int sq_type_from_name(const char *name, int32_t mod, uint32_t *oid, int32_t *typmod,
                      uint32_t *type, uint32_t *size, struct sqle_error *e, int pos)
{
    *typmod = -1;
    *size = 0;
    if (!strcmp(name, "int4") || !strcmp(name, "integer") || !strcmp(name, "int")) {
        *oid = OID_INT4, *type = NINES_T_INT32;
    } else if (!strcmp(name, "int2") || !strcmp(name, "smallint")) {
        *oid = OID_INT2, *type = NINES_T_INT32;
    } else if (!strcmp(name, "int8") || !strcmp(name, "bigint")) {
        *oid = OID_INT8, *type = NINES_T_INT64;
    } else if (!strcmp(name, "float8") || !strcmp(name, "float4") || !strcmp(name, "real")) {
        *oid = OID_FLOAT8, *type = NINES_T_DOUBLE;   /* real is stored and shown as double */
    } else if (!strcmp(name, "numeric") || !strcmp(name, "decimal")) {
        /* numeric(p, 0) only, stored as a 64-bit integer */
        if (mod < 0)
            return sq_err(e, "0A000", pos, "numeric without precision is not supported: give "
                          "numeric(p, 0) with p <= 18 (stored as a 64-bit integer)");
        int p = (mod - 4) >> 16, sc = (mod - 4) & 0xffff;
        if (sc != 0 || p > 18)
            return sq_err(e, "0A000", pos, "numeric(%d, %d) is not supported: only numeric(p, "
                          "0) with p <= 18 (stored as a 64-bit integer)", p, sc);
        *oid = OID_NUMERIC, *type = NINES_T_INT64, *typmod = mod;
    } else if (!strcmp(name, "bpchar") || !strcmp(name, "char") || !strcmp(name, "character")) {
        int n = mod >= 4 ? mod - 4 : 1;
        *oid = OID_BPCHAR, *type = NINES_T_STRING, *size = (uint32_t)n, *typmod = n + 4;
    } else if (!strcmp(name, "varchar")) {
        uint32_t n = mod >= 4 ? (uint32_t)(mod - 4) : SQ_TEXT_MAX;
        *oid = OID_VARCHAR, *type = NINES_T_VARSTRING, *size = n, *typmod = mod >= 4 ? mod : -1;
    } else if (!strcmp(name, "text")) {
        *oid = OID_TEXT, *type = NINES_T_VARSTRING, *size = SQ_TEXT_MAX;
    } else if (!strcmp(name, "bytea")) {
        *oid = OID_BYTEA, *type = NINES_T_VARBYTES, *size = SQ_TEXT_MAX;
    } else if (!strcmp(name, "timestamp")) {
        *oid = OID_TIMESTAMP, *type = NINES_T_TIMESTAMP;
    } else if (!strcmp(name, "timestamptz")) {
        *oid = OID_TIMESTAMPTZ, *type = NINES_T_TIMESTAMP;
    } else if (!strcmp(name, "bool") || !strcmp(name, "boolean")) {
        *oid = OID_BOOL, *type = NINES_T_INT32;
    } else {
        return sq_err(e, "0A000", pos, "type \"%s\" is not supported (supported: smallint, "
                      "integer, bigint, real, double precision, numeric(p,0), char(n), "
                      "varchar(n), text, bytea, timestamp, timestamptz, boolean)", name);
    }
    if (*size > SQ_TEXT_MAX)
        return sq_err(e, "54000", pos, "%s(%u) is longer than the %u bytes a column holds",
                      name, *size, SQ_TEXT_MAX);
    if (*oid == OID_BPCHAR && *size == 0)
        return sq_err(e, "22023", pos, "length for type char must be at least 1");
    return 0;
}

uint32_t sq_oid_of_sv(const struct sv *v)
{
    switch (v->t) {
    case SV_INT: return OID_INT8;
    case SV_FLOAT: return OID_FLOAT8;
    case SV_TEXT: return OID_TEXT;
    case SV_BYTES: return OID_BYTEA;
    case SV_BOOL: return OID_BOOL;
    case SV_TS: return OID_TIMESTAMP;
    default: return OID_TEXT;
    }
}

/* ---- timestamps ------------------------------------------------------ */

void sq_fmt_ts(int64_t us, char *buf, size_t n)
{
    int64_t sec = us / 1000000 - (us % 1000000 < 0); /* floor; no -us (INT64_MIN) */
    int64_t frac = us - sec * 1000000;
    time_t tt = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) { /* a year beyond int: not from SQL text (parse_ts bounds it) */
        snprintf(buf, n, "%s", us < 0 ? "-infinity" : "infinity");
        return;
    }
    int k = snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (frac && k > 0 && (size_t)k < n) {
        char f[8];
        snprintf(f, sizeof f, "%06" PRId64, frac);
        for (int i = 5; i > 0 && f[i] == '0'; i--)
            f[i] = 0;
        snprintf(buf + k, n - (size_t)k, ".%s", f);
    }
}

static int parse_ts(const char *p, size_t len, int64_t *out)
{
    char b[64];
    if (len >= sizeof b)
        return -1;
    memcpy(b, p, len);
    b[len] = 0;
    if (!strcasecmp(b, "now")) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *out = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        return 0;
    }
    if (!strcasecmp(b, "epoch")) {
        *out = 0;
        return 0;
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, s = 0, used = 0;
    if (sscanf(b, "%d-%d-%d%n", &y, &mo, &d, &used) != 3)
        return -1;
    const char *q = b + used;
    int64_t frac = 0;
    if (*q == ' ' || *q == 'T') {
        int u2 = 0;
        if (sscanf(q + 1, "%d:%d:%d%n", &h, &mi, &s, &u2) != 3)
            return -1;
        q += 1 + u2;
        if (*q == '.') {
            q++;
            int digits = 0;
            while (isdigit((unsigned char)*q)) {
                if (digits < 6)
                    frac = frac * 10 + (*q - '0');
                digits++;
                q++;
            }
            for (; digits < 6; digits++)
                frac *= 10;
        }
    }
    int64_t off = 0;
    if (*q == '+' || *q == '-') {
        int oh = 0, om = 0;
        int sign = *q == '-' ? -1 : 1;
        if (sscanf(q + 1, "%d:%d", &oh, &om) < 1)
            return -1;
        if (oh < 0 || oh > 15 || om < 0 || om > 59) /* PostgreSQL's limit: 15:59 */
            return -1;
        off = sign * ((int64_t)oh * 3600 + om * 60);
        q += strlen(q);
    } else if (*q == 'Z') {
        q++;
    }
    while (*q == ' ')
        q++;
    if (*q)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        s < 0 || s > 60)
        return -1;
    if (y < -4713 || y > 294276) /* PostgreSQL's range; µs since 1970 fit in 64 bits */
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t t = timegm(&tm);
    int64_t us;
    if (__builtin_mul_overflow((int64_t)t - off, (int64_t)1000000, &us) ||
        __builtin_add_overflow(us, frac, &us))
        return -1;
    *out = us;
    return 0;
}

/* ---- text in ---------------------------------------------------------- */

static int parse_int(const char *p, size_t len, int64_t *out)
{
    char b[32];
    while (len && isspace((unsigned char)*p))
        p++, len--;
    while (len && isspace((unsigned char)p[len - 1]))
        len--;
    if (len == 0 || len >= sizeof b)
        return len == 0 ? -1 : -2;
    memcpy(b, p, len);
    b[len] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(b, &end, 10);
    if (*end)
        return -1;
    if (errno == ERANGE)
        return -2;
    *out = v;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sq_from_text(struct arena *a, uint32_t oid, int32_t typmod, const char *p, size_t len,
                 struct sv *out, struct sqle_error *e, const char *what)
{
    memset(out, 0, sizeof *out);
    int64_t i;
    int rc;
    switch (oid) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
    case OID_NUMERIC:
        rc = parse_int(p, len, &i);
        if (rc == -1)
            return sq_err(e, "22P02", 0, "invalid input syntax for type %s: \"%.*s\"%s%s",
                          sq_type_name(oid), (int)(len > 64 ? 64 : len), p, what ? " in " : "",
                          what ? what : "");
        if (rc == -2 || (oid == OID_INT4 && (i < INT32_MIN || i > INT32_MAX)) ||
            (oid == OID_INT2 && (i < INT16_MIN || i > INT16_MAX)))
            return sq_err(e, "22003", 0, "value \"%.*s\" is out of range for type %s%s%s",
                          (int)(len > 64 ? 64 : len), p, sq_type_name(oid), what ? " in " : "",
                          what ? what : "");
        out->t = SV_INT;
        out->i = i;
        return 0;
    case OID_FLOAT4:
    case OID_FLOAT8: {
        char b[64];
        if (len == 0 || len >= sizeof b)
            return sq_err(e, "22P02", 0, "invalid input syntax for type double precision: "
                          "\"%.*s\"", (int)(len > 64 ? 64 : len), p);
        memcpy(b, p, len);
        b[len] = 0;
        char *end;
        double d = strtod(b, &end);
        while (*end == ' ')
            end++;
        if (*end)
            return sq_err(e, "22P02", 0, "invalid input syntax for type double precision: "
                          "\"%s\"%s%s", b, what ? " in " : "", what ? what : "");
        out->t = SV_FLOAT;
        out->f = d;
        return 0;
    }
    case OID_BOOL: {
        char b[8];
        size_t n = len < sizeof b - 1 ? len : sizeof b - 1;
        for (size_t k = 0; k < n; k++)
            b[k] = (char)tolower((unsigned char)p[k]);
        b[n] = 0;
        if (len < sizeof b && (!strcmp(b, "t") || !strcmp(b, "true") || !strcmp(b, "yes") ||
                               !strcmp(b, "on") || !strcmp(b, "1") || !strcmp(b, "y")))
            out->i = 1;
        else if (len < sizeof b && (!strcmp(b, "f") || !strcmp(b, "false") || !strcmp(b, "no") ||
                                    !strcmp(b, "off") || !strcmp(b, "0") || !strcmp(b, "n")))
            out->i = 0;
        else
            return sq_err(e, "22P02", 0, "invalid input syntax for type boolean: \"%.*s\"",
                          (int)(len > 64 ? 64 : len), p);
        out->t = SV_BOOL;
        return 0;
    }
    case OID_TIMESTAMP:
    case OID_TIMESTAMPTZ:
        if (parse_ts(p, len, &i))
            return sq_err(e, "22007", 0, "invalid input syntax for type timestamp: \"%.*s\"%s%s",
                          (int)(len > 64 ? 64 : len), p, what ? " in " : "", what ? what : "");
        out->t = SV_TS;
        out->i = i;
        return 0;
    case OID_BYTEA: {
        if (len >= 2 && p[0] == '\\' && p[1] == 'x') {
            size_t n = (len - 2) / 2;
            if ((len - 2) % 2)
                return sq_err(e, "22P02", 0, "invalid hexadecimal data: odd number of digits");
            char *b = arena_alloc(a, n + 1);
            if (!b)
                return sq_err(e, "53200", 0, "out of memory for a bytea of %zu bytes", n);
            for (size_t k = 0; k < n; k++) {
                int hi = hexval((unsigned char)p[2 + 2 * k]), lo = hexval((unsigned char)p[3 + 2 * k]);
                if (hi < 0 || lo < 0)
                    return sq_err(e, "22P02", 0, "invalid hexadecimal digit in bytea input");
                b[k] = (char)(hi << 4 | lo);
            }
            out->t = SV_BYTES;
            out->s = b;
            out->len = n;
            return 0;
        }
        out->t = SV_BYTES;
        out->s = p;
        out->len = len;
        return 0;
    }
    default: /* text, varchar, bpchar, name, unknown */
        (void)typmod;
        out->t = SV_TEXT;
        out->s = p;
        out->len = len;
        return 0;
    }
}

/* ---- text out --------------------------------------------------------- */

int sq_to_text(struct arena *a, uint32_t oid, const struct sv *v, const char **outp,
               size_t *outlen)
{
    char b[64];
    int n = 0;
    switch (v->t) {
    case SV_NULL:
        *outp = NULL;
        *outlen = 0;
        return 0;
    case SV_INT:
        if (oid == OID_BOOL)
            n = snprintf(b, sizeof b, "%s", v->i ? "t" : "f");
        else if (oid == OID_TIMESTAMP || oid == OID_TIMESTAMPTZ) {
            sq_fmt_ts(v->i, b, sizeof b);
            n = (int)strlen(b);
        } else
            n = snprintf(b, sizeof b, "%" PRId64, v->i);
        break;
    case SV_BOOL:
        n = snprintf(b, sizeof b, "%s", v->i ? "t" : "f");
        break;
    case SV_TS:
        sq_fmt_ts(v->i, b, sizeof b);
        if (oid == OID_TIMESTAMPTZ)
            strcat(b, "+00");
        n = (int)strlen(b);
        break;
    case SV_FLOAT:
        if (isnan(v->f))
            n = snprintf(b, sizeof b, "NaN");
        else if (isinf(v->f))
            n = snprintf(b, sizeof b, "%sInfinity", v->f < 0 ? "-" : "");
        else /* the shortest form that reads back as the same double, as PostgreSQL 12+ */
            for (int prec = 15; prec <= 17; prec++) {
                n = snprintf(b, sizeof b, "%.*g", prec, v->f);
                if (strtod(b, NULL) == v->f)
                    break;
            }
        break;
    case SV_TEXT:
        *outp = v->s;
        *outlen = v->len;
        return 0;
    case SV_BYTES: {
        char *h = arena_alloc(a, 2 + v->len * 2 + 1);
        if (!h)
            return -1;
        static const char hx[] = "0123456789abcdef";
        h[0] = '\\', h[1] = 'x';
        for (size_t k = 0; k < v->len; k++) {
            h[2 + 2 * k] = hx[(unsigned char)v->s[k] >> 4];
            h[3 + 2 * k] = hx[(unsigned char)v->s[k] & 15];
        }
        *outp = h;
        *outlen = 2 + v->len * 2;
        return 0;
    }
    default:
        return -1;
    }
    char *o = arena_alloc(a, (size_t)n + 1);
    if (!o)
        return -1;
    memcpy(o, b, (size_t)n + 1);
    *outp = o;
    *outlen = (size_t)n;
    return 0;
}

/* ---- coercion ---------------------------------------------------------- */

int sq_coerce(struct arena *a, const struct sq_col *c, const char *table, struct sv *v,
              struct sqle_error *e, int pos)
{
    if (v->t == SV_NULL) {
        if (!c->nullable)
            return sq_err(e, "23502", pos, "null value in column \"%s\" of relation \"%s\" "
                          "violates not-null constraint", c->name, table);
        return 0;
    }
    /* untyped text (a literal or a text parameter) converts by the column's type */
    if (v->t == SV_TEXT && c->oid != OID_TEXT && c->oid != OID_VARCHAR && c->oid != OID_BPCHAR) {
        char what[160];
        snprintf(what, sizeof what, "column \"%s\"", c->name);
        struct sv w;
        if (sq_from_text(a, c->oid, c->typmod, v->s, v->len, &w, e, what))
            return -1;
        e->position = pos;
        *v = w;
    }
    switch (c->oid) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_NUMERIC:
        if (v->t == SV_FLOAT) {
            double r = nearbyint(v->f);
            if (!(r >= -9.2e18 && r <= 9.2e18))
                return sq_err(e, "22003", pos, "value out of range for column \"%s\"", c->name);
            v->t = SV_INT;
            v->i = (int64_t)r;
        }
        if (v->t == SV_BOOL)
            return sq_err(e, "42804", pos, "column \"%s\" is of type %s but expression is of "
                          "type boolean", c->name, sq_type_name(c->oid));
        if (v->t != SV_INT)
            return sq_err(e, "42804", pos, "column \"%s\" is of type %s but the value is not a "
                          "number", c->name, sq_type_name(c->oid));
        if ((c->oid == OID_INT4 && (v->i < INT32_MIN || v->i > INT32_MAX)) ||
            (c->oid == OID_INT2 && (v->i < INT16_MIN || v->i > INT16_MAX)))
            return sq_err(e, "22003", pos, "%s out of range for column \"%s\": %" PRId64,
                          sq_type_name(c->oid), c->name, v->i);
        return 0;
    case OID_FLOAT8:
    case OID_FLOAT4:
        if (v->t == SV_INT) {
            v->t = SV_FLOAT;
            v->f = (double)v->i;
        }
        if (v->t != SV_FLOAT)
            return sq_err(e, "42804", pos, "column \"%s\" is of type double precision but the "
                          "value is not a number", c->name);
        return 0;
    case OID_BOOL:
        if (v->t == SV_INT && (v->i == 0 || v->i == 1))
            v->t = SV_BOOL;
        if (v->t != SV_BOOL)
            return sq_err(e, "42804", pos, "column \"%s\" is of type boolean", c->name);
        return 0;
    case OID_TIMESTAMP:
    case OID_TIMESTAMPTZ:
        if (v->t != SV_TS)
            return sq_err(e, "42804", pos, "column \"%s\" is of type %s", c->name,
                          sq_type_name(c->oid));
        return 0;
    case OID_BYTEA:
        if (v->t == SV_TEXT)
            v->t = SV_BYTES;
        if (v->t != SV_BYTES)
            return sq_err(e, "42804", pos, "column \"%s\" is of type bytea", c->name);
        if (v->len > c->size)
            return sq_err(e, "22001", pos, "value too long for column \"%s\" (%zu bytes, at "
                          "most %u)", c->name, v->len, c->size);
        return 0;
    default: { /* text, varchar(n), char(n) */
        if (v->t != SV_TEXT) {
            const char *p;
            size_t n;
            if (sq_to_text(a, sq_oid_of_sv(v), v, &p, &n))
                return sq_err(e, "53200", pos, "out of memory");
            v->t = SV_TEXT;
            v->s = p;
            v->len = n;
        }
        size_t len = v->len;
        if (len > c->size) {
            /* PostgreSQL: trailing blanks beyond the length are dropped silently */
            size_t k = len;
            while (k > c->size && v->s[k - 1] == ' ')
                k--;
            if (k > c->size)
                return sq_err(e, "22001", pos, "value too long for type %s(%u) in column "
                              "\"%s\"", c->oid == OID_BPCHAR ? "character" : "character varying",
                              c->size, c->name);
            len = k;
            v->len = len;
        }
        if (memchr(v->s, 0, v->len))
            return sq_err(e, "22021", pos, "invalid byte sequence: a zero byte in column \"%s\"",
                          c->name);
        if (c->oid == OID_BPCHAR && v->len < c->size) {
            char *p = arena_alloc(a, c->size);
            if (!p)
                return sq_err(e, "53200", pos, "out of memory");
            memcpy(p, v->s, v->len);
            memset(p + v->len, ' ', c->size - v->len);
            v->s = p;
            v->len = c->size;
        }
        return 0;
    }
    }
}

struct nines_value sq_to_nines(const struct sq_col *c, const struct sv *v)
{
    switch (v->t) {
    case SV_NULL: return nines_v_null();
    case SV_INT:
    case SV_BOOL:
    case SV_TS: return nines_v_int64(v->i);
    case SV_FLOAT: return nines_v_double(v->f);
    case SV_TEXT: return c && (c->type == NINES_T_BYTES || c->type == NINES_T_VARBYTES)
                             ? nines_v_bytes(v->s, v->len) : nines_v_string(v->s, v->len);
    case SV_BYTES: return nines_v_bytes(v->s, v->len);
    default: return nines_v_null();
    }
}

struct sv sq_from_nines(const struct sq_col *c, struct nines_value v)
{
    struct sv o = {0};
    switch (v.type) {
    case NINES_V_NULL: break;
    case NINES_V_INT64:
        o.i = v.u.i64;
        o.t = c->oid == OID_BOOL ? SV_BOOL
              : (c->oid == OID_TIMESTAMP || c->oid == OID_TIMESTAMPTZ) ? SV_TS : SV_INT;
        break;
    case NINES_V_DOUBLE: o.t = SV_FLOAT, o.f = v.u.f64; break;
    case NINES_V_STRING: o.t = SV_TEXT, o.s = v.u.s.p, o.len = v.u.s.len; break;
    case NINES_V_BYTES: o.t = SV_BYTES, o.s = v.u.s.p, o.len = v.u.s.len; break;
    }
    return o;
}

int sq_cmp(const struct sv *a, const struct sv *b)
{
    if (a->t == SV_NULL || b->t == SV_NULL)
        return (a->t != SV_NULL) - (b->t != SV_NULL);
    if (a->t == SV_FLOAT || b->t == SV_FLOAT) {
        double x = a->t == SV_FLOAT ? a->f : (double)a->i;
        double y = b->t == SV_FLOAT ? b->f : (double)b->i;
        if (isnan(x) || isnan(y)) /* PostgreSQL: NaN above every number, equal to itself */
            return isnan(x) - isnan(y);
        return (x > y) - (x < y);
    }
    if ((a->t == SV_TEXT || a->t == SV_BYTES) && (b->t == SV_TEXT || b->t == SV_BYTES)) {
        size_t n = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->s, b->s, n);
        if (c)
            return c < 0 ? -1 : 1;
        return (a->len > b->len) - (a->len < b->len);
    }
    return (a->i > b->i) - (a->i < b->i);
}
