/* Key and record codecs: the memcmp order of encoded keys equals the typed
 * order of the values (random and extreme ints, doubles incl. -0/inf/NaN/
 * subnormals, strings with embedded zeros, composite keys with NULLs);
 * round trips; every rejection is the right code with a useful detail. */
#include "kernel/kern_key.h"
#include "kernel/kern_rec.h"
#include "cu_test.h"
#include "nines/errors.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static uint64_t rng_s;
static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int sgn(int x)
{
    return (x > 0) - (x < 0);
}

static int cmp_dbl(double a, double b)
{
    bool an = a != a, bn = b != b;
    if (an || bn)
        return an && bn ? 0 : (an ? 1 : -1);
    return (a > b) - (a < b);
}

static int cmp_bytes(const struct kern_val *a, const struct kern_val *b)
{
    size_t m = a->len < b->len ? a->len : b->len;
    int c = m ? memcmp(a->u.p, b->u.p, m) : 0;
    if (c)
        return sgn(c);
    return (a->len > b->len) - (a->len < b->len);
}

/* The typed order the encoding must reproduce. */
static int cmp_vals(const struct kern_val *a, const struct kern_val *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int c;
        if (a[i].null || b[i].null)
            c = a[i].null && b[i].null ? 0 : (a[i].null ? -1 : 1);
        else switch (a[i].type) {
        case KERN_T_INT32:
            c = (a[i].u.i32 > b[i].u.i32) - (a[i].u.i32 < b[i].u.i32);
            break;
        case KERN_T_INT64:
        case KERN_T_TS:
            c = (a[i].u.i64 > b[i].u.i64) - (a[i].u.i64 < b[i].u.i64);
            break;
        case KERN_T_DOUBLE:
            c = cmp_dbl(a[i].u.d, b[i].u.d);
            break;
        default:
            c = cmp_bytes(&a[i], &b[i]);
            break;
        }
        if (c)
            return c;
    }
    return 0;
}

static bool same_val(const struct kern_val *a, const struct kern_val *b)
{
    if (a->null || b->null)
        return a->null == b->null;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case KERN_T_INT32:
        return a->u.i32 == b->u.i32;
    case KERN_T_INT64:
    case KERN_T_TS:
        return a->u.i64 == b->u.i64;
    case KERN_T_DOUBLE:
        return cmp_dbl(a->u.d, b->u.d) == 0 && signbit(b->u.d) == (a->u.d == 0 || a->u.d != a->u.d
                                                                     ? 0 : signbit(a->u.d));
    default:
        return a->len == b->len && (a->len == 0 || memcmp(a->u.p, b->u.p, a->len) == 0);
    }
}

/* Encode both value sets, check order agreement and both round trips. */
static unsigned n_checked;
static void check_pair(const struct kern_col *cols, unsigned n, const struct kern_val *a,
                       const struct kern_val *b)
{
    uint8_t ka[KERN_KEY_MAX], kb[KERN_KEY_MAX], buf[KERN_KEY_MAX];
    int la = kern_key_encode(cols, n, a, ka, sizeof ka);
    int lb = kern_key_encode(cols, n, b, kb, sizeof kb);
    CU_ASSERT_FATAL(la > 0 && lb > 0);
    int want = cmp_vals(a, b, n);
    int got = sgn(kern_key_cmp(ka, (size_t)la, kb, (size_t)lb));
    if (want != got) {
        fprintf(stderr, "order mismatch: typed %d encoded %d\n", want, got);
        CU_FAIL_FATAL("key order differs from value order");
    }
    struct kern_val d[8];
    CU_ASSERT_EQUAL_FATAL(kern_key_decode(cols, n, ka, (size_t)la, d, buf, sizeof buf), 0);
    for (unsigned i = 0; i < n; i++)
        CU_ASSERT_FATAL(same_val(&a[i], &d[i]));
    n_checked++;
}

static int64_t rnd_i64(void)
{
    static const int64_t edge[] = {INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX,
                                   INT32_MIN, INT32_MAX, 255, 256, -256};
    switch (rnd() % 4) {
    case 0:
        return edge[rnd() % (sizeof edge / sizeof edge[0])];
    case 1:
        return (int64_t)(rnd() % 2001) - 1000;
    default:
        return (int64_t)rnd();
    }
}

static void test_ints(void)
{
    rng_s = cu_seed(11);
    struct kern_col c32 = {KERN_T_INT32, 0, 0}, c64 = {KERN_T_INT64, 0, 0},
                    cts = {KERN_T_TS, 0, 0};
    for (int i = 0; i < 200000; i++) {
        struct kern_val a = kern_v_i32((int32_t)rnd_i64()), b = kern_v_i32((int32_t)rnd_i64());
        check_pair(&c32, 1, &a, &b);
        a = kern_v_i64(rnd_i64());
        b = kern_v_i64(rnd_i64());
        check_pair(&c64, 1, &a, &b);
        a = kern_v_ts(rnd_i64());
        b = kern_v_ts((int64_t)((uint64_t)a.u.i64 + rnd() % 3 - 1));
        if ((a.u.i64 > 0 && b.u.i64 < 0) || (a.u.i64 < 0 && b.u.i64 > 0))
            continue; /* wrapped around: not a neighbour */
        check_pair(&cts, 1, &a, &b);
    }
    /* exact bytes of a few encodings */
    uint8_t k[16];
    struct kern_val v = kern_v_i32(-1);
    CU_ASSERT_EQUAL(kern_key_encode(&c32, 1, &v, k, sizeof k), 5);
    CU_ASSERT_EQUAL(memcmp(k, "\x01\x7f\xff\xff\xff", 5), 0);
    v = kern_v_i64(0);
    CU_ASSERT_EQUAL(kern_key_encode(&c64, 1, &v, k, sizeof k), 9);
    CU_ASSERT_EQUAL(memcmp(k, "\x01\x80\0\0\0\0\0\0\0", 9), 0);
}

static double rnd_dbl(void)
{
    static const double edge[] = {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, DBL_MAX, -DBL_MAX,
                                  DBL_MIN, -DBL_MIN, DBL_TRUE_MIN, -DBL_TRUE_MIN,
                                  DBL_MIN / 3, -DBL_MIN / 3, 0.5, -0.5, 1e-300, -1e300};
    uint64_t bits;
    double d;
    switch (rnd() % 5) {
    case 0:
        return edge[rnd() % (sizeof edge / sizeof edge[0])];
    case 1: /* any NaN payload and sign */
        bits = 0x7ff0000000000001ull | (rnd() & 0x800fffffffffffffull);
        memcpy(&d, &bits, sizeof d);
        return d;
    case 2:
        return (double)((int)(rnd() % 21) - 10) / 4;
    default:
        bits = rnd();
        memcpy(&d, &bits, sizeof d);
        return d;
    }
}

static void test_doubles(void)
{
    rng_s = cu_seed(12);
    struct kern_col c = {KERN_T_DOUBLE, 0, 0};
    for (int i = 0; i < 300000; i++) {
        struct kern_val a = kern_v_dbl(rnd_dbl()), b = kern_v_dbl(rnd_dbl());
        check_pair(&c, 1, &a, &b);
    }
    /* -0.0 and +0.0 encode equal; all NaNs encode equal and above +inf */
    CU_ASSERT_EQUAL(kern_key_dbl_code(-0.0), kern_key_dbl_code(0.0));
    CU_ASSERT_EQUAL(kern_key_dbl_code(NAN), kern_key_dbl_code(-NAN));
    CU_ASSERT(kern_key_dbl_code(NAN) > kern_key_dbl_code(INFINITY));
    CU_ASSERT(kern_key_dbl_code(-INFINITY) < kern_key_dbl_code(-DBL_MAX));
    CU_ASSERT(kern_key_dbl_code(-DBL_TRUE_MIN) < kern_key_dbl_code(0.0));
    CU_ASSERT(kern_key_dbl_code(DBL_TRUE_MIN) > kern_key_dbl_code(0.0));
    CU_ASSERT(kern_key_dbl_code(DBL_MIN / 2) < kern_key_dbl_code(DBL_MIN));
}

static const uint8_t alpha[] = {0x00, 0x01, 0xff, 'a'};

static uint32_t rnd_str(uint8_t *s, uint32_t maxlen)
{
    uint32_t n = (uint32_t)(rnd() % (maxlen + 1));
    for (uint32_t i = 0; i < n; i++)
        s[i] = alpha[rnd() % 4];
    return n;
}

static void test_strings(void)
{
    rng_s = cu_seed(13);
    /* two variable columns: a prefix in column 0 must order before any
     * continuation whatever column 1 holds */
    struct kern_col c[2] = {{KERN_T_VSTR, 0, 0}, {KERN_T_VBYTES, 0, 8}};
    uint8_t s[4][8];
    for (int i = 0; i < 200000; i++) {
        struct kern_val a[2], b[2];
        a[0] = kern_v_bytes(KERN_T_VSTR, s[0], rnd_str(s[0], 6));
        a[1] = kern_v_bytes(KERN_T_VBYTES, s[1], rnd_str(s[1], 6));
        b[0] = kern_v_bytes(KERN_T_VSTR, s[2], rnd_str(s[2], 6));
        b[1] = kern_v_bytes(KERN_T_VBYTES, s[3], rnd_str(s[3], 6));
        check_pair(c, 2, a, b);
    }
    /* "a" < "a\0" < "a\0\0" < "a\1" < "b" inside a composite, whatever follows */
    static const struct { const char *s; uint32_t n; } ord[] = {
        {"", 0}, {"\0", 1}, {"a", 1}, {"a\0", 2}, {"a\0\0", 3}, {"a\0\1", 3}, {"a\1", 2},
        {"a\xff", 2}, {"b", 1}};
    for (unsigned i = 0; i + 1 < sizeof ord / sizeof ord[0]; i++) {
        struct kern_val a[2] = {kern_v_bytes(KERN_T_VSTR, ord[i].s, ord[i].n),
                                kern_v_bytes(KERN_T_VBYTES, "\xff\xff", 2)};
        struct kern_val b[2] = {kern_v_bytes(KERN_T_VSTR, ord[i + 1].s, ord[i + 1].n),
                                kern_v_bytes(KERN_T_VBYTES, "", 0)};
        uint8_t ka[32], kb[32];
        int la = kern_key_encode(c, 2, a, ka, sizeof ka);
        int lb = kern_key_encode(c, 2, b, kb, sizeof kb);
        CU_ASSERT_FATAL(la > 0 && lb > 0);
        CU_ASSERT(kern_key_cmp(ka, (size_t)la, kb, (size_t)lb) < 0);
    }
    /* the escape layout itself */
    struct kern_val v = kern_v_bytes(KERN_T_VSTR, "a\0b", 3);
    uint8_t k[16];
    CU_ASSERT_EQUAL(kern_key_encode(c, 1, &v, k, sizeof k), 7);
    CU_ASSERT_EQUAL(memcmp(k, "\x01" "a\x00\xff" "b\x00\x00", 7), 0);
}

static void test_composite(void)
{
    rng_s = cu_seed(14);
    struct kern_col c[5] = {{KERN_T_INT32, 1, 0}, {KERN_T_FSTR, 0, 3}, {KERN_T_VBYTES, 1, 0},
                            {KERN_T_DOUBLE, 1, 0}, {KERN_T_INT64, 0, 0}};
    uint8_t s[4][8];
    for (int i = 0; i < 200000; i++) {
        struct kern_val v[2][5];
        for (int j = 0; j < 2; j++) {
            /* few distinct values per column so later columns get compared */
            v[j][0] = rnd() % 4 ? kern_v_i32((int32_t)(rnd() % 3) - 1) : kern_v_null(KERN_T_INT32);
            s[j][0] = alpha[rnd() % 4];
            s[j][1] = alpha[rnd() % 4];
            s[j][2] = 'x';
            v[j][1] = kern_v_bytes(KERN_T_FSTR, s[j], 3);
            v[j][2] = rnd() % 4 ? kern_v_bytes(KERN_T_VBYTES, s[2 + j], rnd_str(s[2 + j], 3))
                                : kern_v_null(KERN_T_VBYTES);
            v[j][3] = rnd() % 4 ? kern_v_dbl(rnd() % 2 ? rnd_dbl() : 0.0)
                                : kern_v_null(KERN_T_DOUBLE);
            v[j][4] = kern_v_i64(rnd_i64() % 3);
        }
        check_pair(c, 5, v[0], v[1]);
    }
    CU_ASSERT(n_checked >= 200000);
}

static void test_key_errors(void)
{
    uint8_t k[KERN_KEY_MAX + 16], big[3000];
    memset(big, 'z', sizeof big);
    struct kern_col cv = {KERN_T_VBYTES, 0, 0};
    /* 2046 bytes + tag + terminator = 2049 > 2048 */
    struct kern_val v = kern_v_bytes(KERN_T_VBYTES, big, 2046);
    CU_ASSERT_EQUAL(kern_key_encode(&cv, 1, &v, k, sizeof k), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "2049 bytes"));
    v.len = 2045;
    CU_ASSERT_EQUAL(kern_key_encode(&cv, 1, &v, k, sizeof k), 2048);
    /* zeros double in size */
    memset(big, 0, 1100);
    v.len = 1100;
    CU_ASSERT_EQUAL(kern_key_encode(&cv, 1, &v, k, sizeof k), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "2203 bytes"));
    /* buffer too small */
    v.len = 10;
    CU_ASSERT_EQUAL(kern_key_encode(&cv, 1, &v, k, 5), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "buffer holds 5"));
    /* NULL in a NOT NULL column, type mismatch, fixed width, maximum */
    struct kern_col ci = {KERN_T_INT32, 0, 0};
    v = kern_v_null(KERN_T_INT32);
    CU_ASSERT_EQUAL(kern_key_encode(&ci, 1, &v, k, sizeof k), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "NOT NULL"));
    v = kern_v_i64(5);
    CU_ASSERT_EQUAL(kern_key_encode(&ci, 1, &v, k, sizeof k), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "int32 but the value is int64"));
    struct kern_col cf = {KERN_T_FSTR, 0, 4};
    v = kern_v_bytes(KERN_T_FSTR, "abc", 3);
    CU_ASSERT_EQUAL(kern_key_encode(&cf, 1, &v, k, sizeof k), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "width 4 got 3"));
    struct kern_col cm = {KERN_T_VSTR, 0, 2};
    v = kern_v_bytes(KERN_T_VSTR, "abc", 3);
    CU_ASSERT_EQUAL(kern_key_encode(&cm, 1, &v, k, sizeof k), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "maximum 2"));
    struct kern_col cu = {99, 0, 0};
    v.type = 99;
    CU_ASSERT_EQUAL(kern_key_encode(&cu, 1, &v, k, sizeof k), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_key_encode(&ci, 0, &v, k, sizeof k), NINES_EINVAL);

    /* malformed keys are rejected, never trusted */
    struct kern_val d[2];
    uint8_t buf[64];
    CU_ASSERT_EQUAL(kern_key_decode(&ci, 1, (const uint8_t *)"\x02\0\0\0\0", 5, d, buf, 64),
                    NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "bad tag byte 0x02"));
    CU_ASSERT_EQUAL(kern_key_decode(&ci, 1, (const uint8_t *)"\x01\0\0", 3, d, buf, 64),
                    NINES_ETRUNC);
    CU_ASSERT_EQUAL(kern_key_decode(&ci, 1, (const uint8_t *)"\x00", 1, d, buf, 64),
                    NINES_ECORRUPT); /* NULL tag in a NOT NULL column */
    CU_ASSERT_EQUAL(kern_key_decode(&ci, 1, (const uint8_t *)"\x01\0\0\0\0\0", 6, d, buf, 64),
                    NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "1 trailing bytes"));
    CU_ASSERT_EQUAL(kern_key_decode(&cv, 1, (const uint8_t *)"\x01" "ab\x00\x07", 5, d, buf, 64),
                    NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "bad escape"));
    CU_ASSERT_EQUAL(kern_key_decode(&cv, 1, (const uint8_t *)"\x01" "ab", 3, d, buf, 64),
                    NINES_ETRUNC);
    CU_ASSERT_EQUAL(kern_key_decode(&cv, 1, (const uint8_t *)"\x01" "ab\x00", 4, d, buf, 64),
                    NINES_ETRUNC);
    CU_ASSERT_EQUAL(kern_key_decode(&ci, 1, (const uint8_t *)"", 0, d, buf, 64), NINES_ETRUNC);
    CU_ASSERT_EQUAL(kern_key_decode(&cm, 1, (const uint8_t *)"\x01" "abc\0\0", 6, d, buf, 64),
                    NINES_ECORRUPT);
}

/* ---- records ---- */

static const struct kern_col rcols[] = {
    {KERN_T_INT32, 0, 0}, {KERN_T_INT64, 1, 0}, {KERN_T_DOUBLE, 0, 0}, {KERN_T_FSTR, 0, 4},
    {KERN_T_VSTR, 1, 300}, {KERN_T_FBYTES, 1, 2}, {KERN_T_VBYTES, 0, 0}, {KERN_T_TS, 0, 0},
    {KERN_T_INT32, 1, 0}};
#define NRC (sizeof rcols / sizeof rcols[0])

static void test_rec_roundtrip(void)
{
    rng_s = cu_seed(15);
    uint8_t s1[300], s2[1000];
    for (int i = 0; i < 20000; i++) {
        struct kern_val v[NRC];
        v[0] = kern_v_i32((int32_t)rnd());
        v[1] = rnd() % 3 ? kern_v_i64(rnd_i64()) : kern_v_null(KERN_T_INT64);
        v[2] = kern_v_dbl(rnd() % 2 ? -0.0 : rnd_dbl());
        v[3] = kern_v_bytes(KERN_T_FSTR, "abcd", 4);
        v[4] = rnd() % 3 ? kern_v_bytes(KERN_T_VSTR, s1, rnd_str(s1, 299)) : kern_v_null(KERN_T_VSTR);
        v[5] = rnd() % 2 ? kern_v_bytes(KERN_T_FBYTES, "\0\1", 2) : kern_v_null(KERN_T_FBYTES);
        uint32_t n2 = (uint32_t)(rnd() % 1000);
        for (uint32_t j = 0; j < n2; j++)
            s2[j] = (uint8_t)rnd();
        v[6] = kern_v_bytes(KERN_T_VBYTES, s2, n2);
        v[7] = kern_v_ts(rnd_i64());
        v[8] = kern_v_null(KERN_T_INT32);
        struct kern_rec *r;
        uint64_t sid = rnd();
        CU_ASSERT_EQUAL_FATAL(kern_rec_build(rcols, NRC, v, sid, &r), 0);
        CU_ASSERT_EQUAL(r->sid, sid);
        CU_ASSERT_EQUAL(r->version, KERN_REC_VERSION);
        CU_ASSERT_EQUAL(r->ncols, NRC);
        CU_ASSERT_EQUAL(kern_rec_check(r, kern_rec_bytes(r), rcols, NRC), 0);
        struct kern_val d[NRC];
        CU_ASSERT_EQUAL_FATAL(kern_rec_decode(r, rcols, NRC, d), 0);
        for (unsigned j = 0; j < NRC; j++) {
            if (j == 2) { /* records keep the exact bits, -0.0 and NaN payloads included */
                CU_ASSERT_EQUAL(memcmp(&d[2].u.d, &v[2].u.d, 8), 0);
                continue;
            }
            CU_ASSERT_FATAL(same_val(&v[j], &d[j]));
            struct kern_val one;
            CU_ASSERT_EQUAL_FATAL(kern_rec_col(r, rcols, NRC, j, &one), 0);
            CU_ASSERT_FATAL(same_val(&v[j], &one));
        }
        /* any truncation is detected */
        size_t cut = (size_t)(rnd() % kern_rec_bytes(r));
        CU_ASSERT(kern_rec_check(r, cut, rcols, NRC) < 0);
        struct kern_rec *c = kern_rec_dup(r);
        CU_ASSERT_FATAL(c != NULL);
        CU_ASSERT_EQUAL(memcmp(c, r, kern_rec_bytes(r)), 0);
        kern_rec_free(c);
        kern_rec_free(r);
    }
}

static void test_rec_errors(void)
{
    struct kern_val v[NRC];
    v[0] = kern_v_i32(1);
    v[1] = kern_v_null(KERN_T_INT64);
    v[2] = kern_v_dbl(1.5);
    v[3] = kern_v_bytes(KERN_T_FSTR, "abcd", 4);
    v[4] = kern_v_bytes(KERN_T_VSTR, "hello", 5);
    v[5] = kern_v_null(KERN_T_FBYTES);
    v[6] = kern_v_bytes(KERN_T_VBYTES, "", 0);
    v[7] = kern_v_ts(7);
    v[8] = kern_v_i32(9);
    struct kern_rec *r = NULL;
    /* exact layout of a small record */
    CU_ASSERT_EQUAL_FATAL(kern_rec_build(rcols, NRC, v, 42, &r), 0);
    /* bitmap 2 + i32 4 + f64 8 + fstr 4 + (1+5) + (1+0) + ts 8 + i32 4 */
    CU_ASSERT_EQUAL(r->len, 2 + 4 + 8 + 4 + 6 + 1 + 8 + 4);
    CU_ASSERT_EQUAL(r->body[0], (1u << 1) | (1u << 5));
    CU_ASSERT_EQUAL(r->body[1], 0);
    /* corruptions */
    struct kern_rec *c = kern_rec_dup(r);
    c->version = 2;
    CU_ASSERT_EQUAL(kern_rec_check(c, kern_rec_bytes(c), rcols, NRC), NINES_EVERSION);
    c->version = KERN_REC_VERSION;
    c->body[0] |= 1; /* NULL in NOT NULL column 0 */
    CU_ASSERT_EQUAL(kern_rec_check(c, kern_rec_bytes(c), rcols, NRC), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "column 0"));
    c->body[0] = r->body[0];
    c->body[2 + 4 + 8 + 4] = 200; /* VSTR length beyond the body */
    CU_ASSERT_EQUAL(kern_rec_check(c, kern_rec_bytes(c), rcols, NRC), NINES_ETRUNC);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "column 4"));
    c->body[2 + 4 + 8 + 4] = 4; /* shorter: leaves trailing bytes or misparses */
    CU_ASSERT(kern_rec_check(c, kern_rec_bytes(c), rcols, NRC) < 0);
    CU_ASSERT_EQUAL(kern_rec_check(r, 10, rcols, NRC), NINES_ETRUNC);
    CU_ASSERT_EQUAL(kern_rec_check(r, kern_rec_bytes(r), rcols, NRC - 1), NINES_ECORRUPT);
    kern_rec_free(c);
    CU_ASSERT_EQUAL(kern_rec_col(r, rcols, NRC, NRC, &v[0]), NINES_EINVAL);
    kern_rec_free(r);
    /* value errors name the column */
    v[3] = kern_v_bytes(KERN_T_FSTR, "ab", 2);
    r = NULL;
    CU_ASSERT_EQUAL(kern_rec_build(rcols, NRC, v, 1, &r), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "column 3"));
    CU_ASSERT_PTR_NULL(r);
    v[3] = kern_v_bytes(KERN_T_FSTR, "abcd", 4);
    static uint8_t huge[KERN_REC_MAX + 1];
    struct kern_col cb = {KERN_T_VBYTES, 0, 0};
    struct kern_val hv = kern_v_bytes(KERN_T_VBYTES, huge, sizeof huge);
    CU_ASSERT_EQUAL(kern_rec_build(&cb, 1, &hv, 1, &r), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "exceeds"));
}

void cu_register(void)
{
    static const struct cu_case key[] = {
        {"ints", test_ints},
        {"doubles", test_doubles},
        {"strings", test_strings},
        {"composite", test_composite},
        {"errors", test_key_errors},
        {NULL, NULL}};
    static const struct cu_case rec[] = {
        {"roundtrip", test_rec_roundtrip},
        {"errors", test_rec_errors},
        {NULL, NULL}};
    cu_add_suite("kern_key", NULL, NULL, key);
    cu_add_suite("kern_rec", NULL, NULL, rec);
}
