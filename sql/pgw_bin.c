/* Binary formats of PostgreSQL's protocol for the types the engine knows
 * (sql/README.md "Binary formats"): a binary parameter becomes the text the
 * engine takes, and a text result value becomes the binary form a client
 * asked for. The formats are PostgreSQL's send/recv functions': integers
 * and floats big-endian, bool one byte, text and bytea their bytes,
 * timestamps int64 µs since 2000-01-01 UTC, numeric as base-10000 digits
 * with a weight, sign and display scale. */
#include "pgw.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PG_EPOCH_US INT64_C(946684800000000)   /* 2000-01-01 in µs since 1970 */

enum { B_BOOL = 16, B_BYTEA = 17, B_NAME = 19, B_INT8 = 20, B_INT2 = 21, B_INT4 = 23,
       B_TEXT = 25, B_OID = 26, B_FLOAT4 = 700, B_FLOAT8 = 701, B_UNKNOWN = 705,
       B_BPCHAR = 1042, B_VARCHAR = 1043, B_TS = 1114, B_TSTZ = 1184, B_NUMERIC = 1700 };

bool pgw_bin_supported(uint32_t oid)
{
    switch (oid) {
    case B_BOOL: case B_BYTEA: case B_NAME: case B_INT8: case B_INT2: case B_INT4:
    case B_TEXT: case B_OID: case B_FLOAT4: case B_FLOAT8: case B_UNKNOWN: case B_BPCHAR:
    case B_VARCHAR: case B_TS: case B_TSTZ: case B_NUMERIC:
        return true;
    default:
        return false;
    }
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* 0, or -1 for a year gmtime_r cannot give */
static int fmt_ts(int64_t us, char *buf, size_t n)
{
    int64_t sec = us / 1000000 - (us % 1000000 < 0); /* floor; no -us (INT64_MIN) */
    int64_t frac = us - sec * 1000000;
    time_t tt = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return -1;
    snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d.%06" PRId64, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return 0;
}

/* numeric (binary) → decimal text */
static int numeric_text(const uint8_t *p, int len, char *out, size_t cap)
{
    if (len < 8)
        return -1;
    int ndigits = (int16_t)be(p, 2), weight = (int16_t)be(p + 2, 2);
    unsigned sign = (unsigned)be(p + 4, 2);
    int dscale = (int16_t)be(p + 6, 2);
    if (ndigits < 0 || len != 8 + 2 * ndigits || dscale < 0 || dscale > 1000)
        return -1;
    if (sign == 0xC000) {
        snprintf(out, cap, "NaN");
        return 0;
    }
    if (sign != 0 && sign != 0x4000)
        return -1;
    size_t k = 0;
#define PUT(c) do { if (k + 1 >= cap) return -1; out[k++] = (c); } while (0)
    if (sign == 0x4000)
        PUT('-');
    /* integer part: digit groups 0..weight */
    if (weight < 0) {
        PUT('0');
    } else {
        for (int d = 0; d <= weight; d++) {
            int v = d < ndigits ? (int)be(p + 8 + 2 * d, 2) : 0;
            if (v > 9999)
                return -1;
            char g[16];
            snprintf(g, sizeof g, d == 0 ? "%d" : "%04d", v);
            for (char *q = g; *q; q++)
                PUT(*q);
        }
    }
    if (dscale > 0) {
        PUT('.');
        int written = 0;
        for (int d = weight + 1; written < dscale; d++) {
            int v = d >= 0 && d < ndigits ? (int)be(p + 8 + 2 * d, 2) : 0;
            if (v > 9999)
                return -1;
            char g[16];
            snprintf(g, sizeof g, "%04d", v);
            for (int i = 0; i < 4 && written < dscale; i++, written++)
                PUT(g[i]);
        }
    }
    out[k] = 0;
#undef PUT
    return 0;
}

int pgw_bin_param(uint32_t oid, const uint8_t *p, int len, char **text, int *tlen, char *err,
                  size_t errlen)
{
    char b[128];
    int n = -1;
    switch (oid) {
    case B_BOOL:
        if (len != 1)
            break;
        n = snprintf(b, sizeof b, "%s", p[0] ? "t" : "f");
        break;
    case B_INT2:
        if (len != 2)
            break;
        n = snprintf(b, sizeof b, "%d", (int16_t)be(p, 2));
        break;
    case B_INT4:
        if (len != 4)
            break;
        n = snprintf(b, sizeof b, "%" PRId32, (int32_t)be(p, 4));
        break;
    case B_OID:
        if (len != 4)
            break;
        n = snprintf(b, sizeof b, "%" PRIu32, (uint32_t)be(p, 4));
        break;
    case B_INT8:
        if (len != 8)
            break;
        n = snprintf(b, sizeof b, "%" PRId64, (int64_t)be(p, 8));
        break;
    case B_FLOAT4: {
        if (len != 4)
            break;
        uint32_t u = (uint32_t)be(p, 4);
        float f;
        memcpy(&f, &u, 4);
        n = snprintf(b, sizeof b, "%.9g", (double)f);
        break;
    }
    case B_FLOAT8: {
        if (len != 8)
            break;
        uint64_t u = be(p, 8);
        double d;
        memcpy(&d, &u, 8);
        n = snprintf(b, sizeof b, isnan(d) ? "NaN" : isinf(d) ? (d < 0 ? "-Infinity" : "Infinity")
                                                              : "%.17g", d);
        break;
    }
    case B_TS:
    case B_TSTZ: {
        if (len != 8)
            break;
        int64_t v = (int64_t)be(p, 8); /* µs since 2000; ±infinity (INT64_MAX/MIN) refused */
        if (v > INT64_MAX - PG_EPOCH_US || fmt_ts(v + PG_EPOCH_US, b, sizeof b))
            break;
        n = (int)strlen(b);
        break;
    }
    case B_NUMERIC:
        if (numeric_text(p, len, b, sizeof b) == 0)
            n = (int)strlen(b);
        break;
    case B_BYTEA: {
        char *h = malloc(2 + 2 * (size_t)len + 1);
        if (!h) {
            snprintf(err, errlen, "out of memory for a bytea parameter of %d bytes", len);
            return -1;
        }
        static const char hx[] = "0123456789abcdef";
        h[0] = '\\', h[1] = 'x';
        for (int i = 0; i < len; i++) {
            h[2 + 2 * i] = hx[p[i] >> 4];
            h[3 + 2 * i] = hx[p[i] & 15];
        }
        h[2 + 2 * len] = 0;
        *text = h;
        *tlen = 2 + 2 * len;
        return 0;
    }
    case B_TEXT:
    case B_VARCHAR:
    case B_BPCHAR:
    case B_NAME:
    case B_UNKNOWN: {
        char *t = malloc((size_t)len + 1);
        if (!t) {
            snprintf(err, errlen, "out of memory for a parameter of %d bytes", len);
            return -1;
        }
        memcpy(t, p, (size_t)len);
        t[len] = 0;
        *text = t;
        *tlen = len;
        return 0;
    }
    default:
        snprintf(err, errlen, "binary format of type oid %u is not supported", oid);
        return -1;
    }
    if (n < 0) {
        snprintf(err, errlen, "incorrect binary data format for type oid %u (%d bytes)", oid,
                 len);
        return -1;
    }
    char *t = malloc((size_t)n + 1);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(t, b, (size_t)n + 1);
    *text = t;
    *tlen = n;
    return 0;
}

static int parse_ts(const char *t, int len, int64_t *us)
{
    char b[64];
    if (len <= 0 || len >= (int)sizeof b)
        return -1;
    memcpy(b, t, (size_t)len);
    b[len] = 0;
    int y, mo, d, h, mi, s, used = 0;
    if (sscanf(b, "%d-%d-%d %d:%d:%d%n", &y, &mo, &d, &h, &mi, &s, &used) != 6)
        return -1;
    int64_t frac = 0;
    const char *q = b + used;
    if (*q == '.') {
        int digits = 0;
        for (q++; *q >= '0' && *q <= '9'; q++, digits++)
            if (digits < 6)
                frac = frac * 10 + (*q - '0');
        for (; digits < 6; digits++)
            frac *= 10;
    }
    if (y < -4713 || y > 294276) /* the engine's range (sqle_val.c) */
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi, .tm_sec = s};
    int64_t v;
    if (__builtin_mul_overflow((int64_t)timegm(&tm), (int64_t)1000000, &v) ||
        __builtin_add_overflow(v, frac - PG_EPOCH_US, &v))
        return -1;
    *us = v;
    return 0;
}

/* decimal text → numeric (binary) */
static int numeric_bin(const char *t, int len, struct pgw_out *o)
{
    int i = 0;
    bool neg = false;
    if (i < len && (t[i] == '-' || t[i] == '+'))
        neg = t[i++] == '-';
    char ip[64], fp[64];
    int ni = 0, nf = 0;
    for (; i < len && t[i] >= '0' && t[i] <= '9'; i++)
        if (ni || t[i] != '0') {
            if (ni >= (int)sizeof ip - 1)
                return -1;
            ip[ni++] = t[i];
        }
    if (i < len && t[i] == '.')
        for (i++; i < len && t[i] >= '0' && t[i] <= '9'; i++) {
            if (nf >= (int)sizeof fp - 1)
                return -1;
            fp[nf++] = t[i];
        }
    if (i != len)
        return -1;
    /* groups of 4 around the decimal point */
    int igroups = (ni + 3) / 4, fgroups = (nf + 3) / 4;
    int16_t digits[40];
    int nd = 0;
    for (int g = 0; g < igroups; g++) {
        int v = 0;
        for (int k = 0; k < 4; k++) {
            int pos = ni - (igroups - g) * 4 + k;
            v = v * 10 + (pos >= 0 ? ip[pos] - '0' : 0);
        }
        digits[nd++] = (int16_t)v;
    }
    for (int g = 0; g < fgroups; g++) {
        int v = 0;
        for (int k = 0; k < 4; k++) {
            int pos = g * 4 + k;
            v = v * 10 + (pos < nf ? fp[pos] - '0' : 0);
        }
        digits[nd++] = (int16_t)v;
    }
    int weight = igroups - 1;
    /* strip leading and trailing zero groups */
    int first = 0;
    while (first < nd && digits[first] == 0)
        first++, weight--;
    int last = nd;
    while (last > first && digits[last - 1] == 0)
        last--;
    int count = last - first;
    if (count == 0)
        weight = 0;
    pgw_out_i32(o, 8 + 2 * count);
    pgw_out_i16(o, (int16_t)count);
    pgw_out_i16(o, (int16_t)weight);
    pgw_out_i16(o, (int16_t)(neg && count ? 0x4000 : 0));
    pgw_out_i16(o, (int16_t)nf);
    for (int k = first; k < last; k++)
        pgw_out_i16(o, digits[k]);
    return 0;
}

int pgw_bin_value(uint32_t oid, const char *t, int len, struct pgw_out *o)
{
    char b[64];
    uint8_t v[8];
    if (len < 0)
        return -1;
    switch (oid) {
    case B_BOOL:
        v[0] = len > 0 && (t[0] == 't' || t[0] == '1');
        pgw_out_i32(o, 1);
        pgw_out_bytes(o, v, 1);
        return 0;
    case B_INT2:
    case B_INT4:
    case B_INT8:
    case B_OID: {
        if (len >= (int)sizeof b)
            return -1;
        memcpy(b, t, (size_t)len);
        b[len] = 0;
        char *end;
        long long x = strtoll(b, &end, 10);
        if (*end)
            return -1;
        int n = oid == B_INT2 ? 2 : oid == B_INT8 ? 8 : 4;
        put_be(v, (uint64_t)x, n);
        pgw_out_i32(o, n);
        pgw_out_bytes(o, v, (size_t)n);
        return 0;
    }
    case B_FLOAT4:
    case B_FLOAT8: {
        if (len >= (int)sizeof b)
            return -1;
        memcpy(b, t, (size_t)len);
        b[len] = 0;
        char *end;
        double d = strtod(b, &end);
        if (*end)
            return -1;
        if (oid == B_FLOAT4) {
            float f = (float)d;
            uint32_t u;
            memcpy(&u, &f, 4);
            put_be(v, u, 4);
            pgw_out_i32(o, 4);
            pgw_out_bytes(o, v, 4);
        } else {
            uint64_t u;
            memcpy(&u, &d, 8);
            put_be(v, u, 8);
            pgw_out_i32(o, 8);
            pgw_out_bytes(o, v, 8);
        }
        return 0;
    }
    case B_TS:
    case B_TSTZ: {
        int64_t us;
        int l = len;
        if (oid == B_TSTZ && l > 3 && !memcmp(t + l - 3, "+00", 3))
            l -= 3;
        if (parse_ts(t, l, &us))
            return -1;
        put_be(v, (uint64_t)us, 8);
        pgw_out_i32(o, 8);
        pgw_out_bytes(o, v, 8);
        return 0;
    }
    case B_NUMERIC:
        return numeric_bin(t, len, o);
    case B_BYTEA: {
        if (len < 2 || t[0] != '\\' || t[1] != 'x' || (len - 2) % 2)
            return -1;
        int n = (len - 2) / 2;
        pgw_out_i32(o, n);
        for (int i = 0; i < n; i++) {
            int hi = t[2 + 2 * i], lo = t[3 + 2 * i];
            hi = hi <= '9' ? hi - '0' : (hi | 32) - 'a' + 10;
            lo = lo <= '9' ? lo - '0' : (lo | 32) - 'a' + 10;
            pgw_out_u8(o, (uint8_t)(hi << 4 | lo));
        }
        return 0;
    }
    default: /* text-like */
        pgw_out_i32(o, len);
        pgw_out_bytes(o, t, (size_t)len);
        return 0;
    }
}
