/* SCAN filters (kernel/svc/ksvc_filter.c): compiling RecordOp.filters
 * against a table's layout (every refusal with its code and a detail
 * naming the filter), and matching rows — key and record columns, every
 * comparison, NULLs, doubles in PostgreSQL's order (NaN greatest, -0 = 0),
 * strings bytewise then by length, a fixed string against a shorter
 * value, several filters ANDed, a damaged key reported. */
#include "kernel/svc/ksvc_filter.h"

#include "cu_test.h"
#include "kernel/kern_key.h"
#include "kernel/kern_rec.h"
#include "nines/errors.h"

#include <math.h>
#include <string.h>

/* t(id int64 key, name varstring(20) null, score double null, n int32, code string(4)) */
enum { C_ID, C_NAME, C_SCORE, C_N, C_CODE, NCOLS };
static const char names[NCOLS][DICT_NAME_MAX + 1] = {"id", "name", "score", "n", "code"};
static const struct kern_col cols[NCOLS] = {
    {KERN_T_INT64, 0, 0}, {KERN_T_VSTR, 1, 20}, {KERN_T_DOUBLE, 1, 0}, {KERN_T_INT32, 0, 0},
    {KERN_T_FSTR, 0, 4}};
static const int16_t colkey[NCOLS] = {0, -1, -1, -1, -1};
static const int16_t colrec[NCOLS] = {-1, 0, 1, 2, 3};
static const struct kern_col kcols[1] = {{KERN_T_INT64, 0, 0}};
static const struct kern_col rcols[4] = {
    {KERN_T_VSTR, 1, 20}, {KERN_T_DOUBLE, 1, 0}, {KERN_T_INT32, 0, 0}, {KERN_T_FSTR, 0, 4}};
static const struct ksvc_layout lay = {
    .table = "t", .names = names, .ncols = NCOLS, .cols = cols, .colkey = colkey,
    .colrec = colrec, .kcols = kcols, .npk = 1, .rcols = rcols, .nrc = 4};

/* one row: its key and record */
struct row {
    uint8_t key[KERN_KEY_MAX];
    size_t klen;
    struct kern_rec *rec;
};

static void mkrow(struct row *r, int64_t id, const char *name, const double *score, int32_t n,
                  const char *code)
{
    struct kern_val k = kern_v_i64(id);
    int kl = kern_key_encode(kcols, 1, &k, r->key, sizeof r->key);
    CU_ASSERT_FATAL(kl > 0);
    r->klen = (size_t)kl;
    struct kern_val v[4] = {
        name ? kern_v_bytes(KERN_T_VSTR, name, (uint32_t)strlen(name)) : kern_v_null(KERN_T_VSTR),
        score ? kern_v_dbl(*score) : kern_v_null(KERN_T_DOUBLE), kern_v_i32(n),
        kern_v_bytes(KERN_T_FSTR, code, 4)};
    r->rec = NULL;
    CU_ASSERT_FATAL(kern_rec_build(rcols, 4, v, 1, &r->rec) == 0);
}

/* filter builders: the protobuf forms a client sends */
struct fbuf {
    Nines__ScanFilter f[8];
    Nines__Value v[8];
    Nines__ScanFilter *p[8];
    size_t n;
};

static Nines__Value *fput(struct fbuf *b, uint32_t col, Nines__FilterCmp cmp)
{
    size_t i = b->n++;
    nines__scan_filter__init(&b->f[i]);
    nines__value__init(&b->v[i]);
    b->f[i].column = col;
    b->f[i].cmp = cmp;
    b->p[i] = &b->f[i];
    if (cmp != NINES__FILTER_CMP__CMP_IS_NULL && cmp != NINES__FILTER_CMP__CMP_IS_NOT_NULL)
        b->f[i].value = &b->v[i];
    return &b->v[i];
}
static void fi64(struct fbuf *b, uint32_t col, Nines__FilterCmp cmp, int64_t x)
{
    Nines__Value *v = fput(b, col, cmp);
    v->v_case = NINES__VALUE__V_I64;
    v->i64 = x;
}
static void ff64(struct fbuf *b, uint32_t col, Nines__FilterCmp cmp, double x)
{
    Nines__Value *v = fput(b, col, cmp);
    v->v_case = NINES__VALUE__V_F64;
    v->f64 = x;
}
static void fstr(struct fbuf *b, uint32_t col, Nines__FilterCmp cmp, const char *s)
{
    Nines__Value *v = fput(b, col, cmp);
    v->v_case = NINES__VALUE__V_STR;
    v->str = (char *)s;
}

/* compile b, then: does row r match? (-1: compile failed) */
static int matches(struct fbuf *b, const struct row *r)
{
    struct ksvc_filter f[KSVC_FILTER_MAX];
    if (ksvc_filter_compile(&lay, b->p, b->n, f) != 0)
        return -1;
    bool m = false;
    int rc = ksvc_filter_match(&lay, f, b->n, r->key, r->klen, r->rec, &m);
    CU_ASSERT_EQUAL(rc, 0);
    return m ? 1 : 0;
}

static const Nines__FilterCmp EQ = NINES__FILTER_CMP__CMP_EQ, NE = NINES__FILTER_CMP__CMP_NE,
                              LT = NINES__FILTER_CMP__CMP_LT, LE = NINES__FILTER_CMP__CMP_LE,
                              GT = NINES__FILTER_CMP__CMP_GT, GE = NINES__FILTER_CMP__CMP_GE,
                              ISN = NINES__FILTER_CMP__CMP_IS_NULL,
                              NOTN = NINES__FILTER_CMP__CMP_IS_NOT_NULL;

static int one_i64(const struct row *r, uint32_t col, Nines__FilterCmp c, int64_t x)
{
    struct fbuf b = {0};
    fi64(&b, col, c, x);
    return matches(&b, r);
}
static int one_f64(const struct row *r, Nines__FilterCmp c, double x)
{
    struct fbuf b = {0};
    ff64(&b, C_SCORE, c, x);
    return matches(&b, r);
}
static int one_str(const struct row *r, uint32_t col, Nines__FilterCmp c, const char *s)
{
    struct fbuf b = {0};
    fstr(&b, col, c, s);
    return matches(&b, r);
}
static int one_null(const struct row *r, uint32_t col, Nines__FilterCmp c)
{
    struct fbuf b = {0};
    fput(&b, col, c);
    return matches(&b, r);
}

static void test_compile_errors(void)
{
    struct ksvc_filter f[KSVC_FILTER_MAX];
    struct fbuf b = {0};
    fi64(&b, 9, EQ, 1); /* no such column */
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "column 9"));

    b = (struct fbuf){0};
    fi64(&b, C_N, (Nines__FilterCmp)42, 1); /* unknown comparison */
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "comparison 42"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "column n"));

    b = (struct fbuf){0};
    fput(&b, C_N, EQ)->v_case = NINES__VALUE__V_IS_NULL; /* = NULL */
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "IS_NULL"));

    b = (struct fbuf){0};
    fput(&b, C_N, LT); /* a value of no kind */
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), NINES_EINVAL);

    b = (struct fbuf){0};
    fi64(&b, C_N, EQ, 1);
    b.f[0].value = NULL; /* no value at all */
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), NINES_EINVAL);

    b = (struct fbuf){0};
    b.p[0] = NULL; /* an empty filter in the list */
    b.n = 1;
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "filter 0"));

    b = (struct fbuf){0};
    fstr(&b, C_N, EQ, "7"); /* a string for an int32 column */
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "n"));

    b = (struct fbuf){0};
    fi64(&b, C_N, GT, 5000000000LL); /* beyond int32 */
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), NINES_ETYPE);

    b = (struct fbuf){0};
    fi64(&b, C_NAME, EQ, 3); /* an integer for a string column */
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), NINES_ETYPE);

    Nines__ScanFilter *many[KSVC_FILTER_MAX + 1];
    Nines__ScanFilter one;
    nines__scan_filter__init(&one);
    one.cmp = ISN;
    for (size_t i = 0; i <= KSVC_FILTER_MAX; i++)
        many[i] = &one;
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, many, KSVC_FILTER_MAX + 1, f), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "at most"));
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, many, KSVC_FILTER_MAX, f), 0);

    /* a string longer than the column is a value that simply never matches */
    b = (struct fbuf){0};
    fstr(&b, C_CODE, EQ, "abcdefgh");
    CU_ASSERT_EQUAL(ksvc_filter_compile(&lay, b.p, b.n, f), 0);
}

static void test_integers(void)
{
    struct row r;
    double sc = 1.5;
    mkrow(&r, -7, "bob", &sc, 40, "ab12");
    /* the key column */
    CU_ASSERT_EQUAL(one_i64(&r, C_ID, EQ, -7), 1);
    CU_ASSERT_EQUAL(one_i64(&r, C_ID, NE, -7), 0);
    CU_ASSERT_EQUAL(one_i64(&r, C_ID, LT, -6), 1);
    CU_ASSERT_EQUAL(one_i64(&r, C_ID, LT, -7), 0);
    CU_ASSERT_EQUAL(one_i64(&r, C_ID, LE, -7), 1);
    CU_ASSERT_EQUAL(one_i64(&r, C_ID, GT, -8), 1);
    CU_ASSERT_EQUAL(one_i64(&r, C_ID, GT, -7), 0);
    CU_ASSERT_EQUAL(one_i64(&r, C_ID, GE, -7), 1);
    CU_ASSERT_EQUAL(one_i64(&r, C_ID, GE, 0), 0);
    /* a record column */
    CU_ASSERT_EQUAL(one_i64(&r, C_N, EQ, 40), 1);
    CU_ASSERT_EQUAL(one_i64(&r, C_N, EQ, 41), 0);
    CU_ASSERT_EQUAL(one_i64(&r, C_N, NE, 41), 1);
    CU_ASSERT_EQUAL(one_i64(&r, C_N, LT, 41), 1);
    CU_ASSERT_EQUAL(one_i64(&r, C_N, LE, 39), 0);
    CU_ASSERT_EQUAL(one_i64(&r, C_N, GT, 39), 1);
    CU_ASSERT_EQUAL(one_i64(&r, C_N, GE, 41), 0);
    CU_ASSERT_EQUAL(one_i64(&r, C_N, GE, INT32_MIN), 1);
    kern_rec_free(r.rec);
}

static void test_doubles_and_nulls(void)
{
    struct row r, nan_row, nul, negz;
    double sc = 2.25, nanv = NAN, mz = -0.0;
    mkrow(&r, 1, "x", &sc, 0, "aaaa");
    mkrow(&nan_row, 2, "y", &nanv, 0, "aaaa");
    mkrow(&nul, 3, NULL, NULL, 0, "aaaa");
    mkrow(&negz, 4, "", &mz, 0, "aaaa");
    CU_ASSERT_EQUAL(one_f64(&r, EQ, 2.25), 1);
    CU_ASSERT_EQUAL(one_f64(&r, LT, 2.5), 1);
    CU_ASSERT_EQUAL(one_f64(&r, GT, 2.25), 0);
    /* NaN: above every number, equal to itself (PostgreSQL) */
    CU_ASSERT_EQUAL(one_f64(&nan_row, GT, INFINITY), 1);
    CU_ASSERT_EQUAL(one_f64(&nan_row, EQ, NAN), 1);
    CU_ASSERT_EQUAL(one_f64(&r, LT, NAN), 1);
    CU_ASSERT_EQUAL(one_f64(&r, EQ, NAN), 0);
    /* -0 equals 0 */
    CU_ASSERT_EQUAL(one_f64(&negz, EQ, 0.0), 1);
    CU_ASSERT_EQUAL(one_f64(&negz, LT, 0.0), 0);
    /* NULL satisfies no comparison, only IS NULL */
    CU_ASSERT_EQUAL(one_f64(&nul, LT, INFINITY), 0);
    CU_ASSERT_EQUAL(one_f64(&nul, NE, 1.0), 0);
    CU_ASSERT_EQUAL(one_null(&nul, C_SCORE, ISN), 1);
    CU_ASSERT_EQUAL(one_null(&nul, C_SCORE, NOTN), 0);
    CU_ASSERT_EQUAL(one_null(&r, C_SCORE, ISN), 0);
    CU_ASSERT_EQUAL(one_null(&r, C_SCORE, NOTN), 1);
    CU_ASSERT_EQUAL(one_null(&nul, C_NAME, ISN), 1);
    CU_ASSERT_EQUAL(one_str(&nul, C_NAME, NE, "q"), 0);
    CU_ASSERT_EQUAL(one_null(&r, C_ID, ISN), 0); /* a key column is never NULL here */
    kern_rec_free(r.rec);
    kern_rec_free(nan_row.rec);
    kern_rec_free(nul.rec);
    kern_rec_free(negz.rec);
}

static void test_strings(void)
{
    struct row r, e;
    mkrow(&r, 1, "abc", NULL, 0, "ab\0d");
    mkrow(&e, 2, "", NULL, 0, "zzzz");
    CU_ASSERT_EQUAL(one_str(&r, C_NAME, EQ, "abc"), 1);
    CU_ASSERT_EQUAL(one_str(&r, C_NAME, EQ, "ab"), 0);
    CU_ASSERT_EQUAL(one_str(&r, C_NAME, GT, "ab"), 1);   /* longer sorts after its prefix */
    CU_ASSERT_EQUAL(one_str(&r, C_NAME, LT, "abd"), 1);
    CU_ASSERT_EQUAL(one_str(&r, C_NAME, LT, "abc"), 0);
    CU_ASSERT_EQUAL(one_str(&r, C_NAME, GE, "abc"), 1);
    CU_ASSERT_EQUAL(one_str(&r, C_NAME, LE, "B"), 0);    /* bytewise: 'a' > 'B' */
    CU_ASSERT_EQUAL(one_str(&e, C_NAME, EQ, ""), 1);
    CU_ASSERT_EQUAL(one_str(&e, C_NAME, LT, "a"), 1);
    /* a fixed-width column against a shorter value: compared bytewise, unequal */
    CU_ASSERT_EQUAL(one_str(&e, C_CODE, EQ, "zz"), 0);
    CU_ASSERT_EQUAL(one_str(&e, C_CODE, GT, "zz"), 1);
    CU_ASSERT_EQUAL(one_str(&e, C_CODE, EQ, "zzzz"), 1);
    CU_ASSERT_EQUAL(one_str(&r, C_CODE, LT, "ab"), 0);   /* "ab\0d" > "ab" */
    kern_rec_free(r.rec);
    kern_rec_free(e.rec);
}

static void test_and_and_damage(void)
{
    struct row r;
    double sc = 10;
    mkrow(&r, 50, "carol", &sc, 7, "wxyz");
    struct fbuf b = {0};
    fi64(&b, C_ID, GE, 10);
    fi64(&b, C_ID, LT, 100);
    fstr(&b, C_NAME, NE, "dave");
    ff64(&b, C_SCORE, GT, 9.5);
    fput(&b, C_NAME, NOTN);
    CU_ASSERT_EQUAL(matches(&b, &r), 1);
    fi64(&b, C_N, EQ, 8); /* one more that fails: the row fails */
    CU_ASSERT_EQUAL(matches(&b, &r), 0);
    CU_ASSERT_EQUAL(matches(&(struct fbuf){0}, &r), 1); /* no filters: every row */

    /* a damaged key is an error, not a match */
    struct ksvc_filter f[1];
    b = (struct fbuf){0};
    fi64(&b, C_ID, EQ, 50);
    CU_ASSERT_EQUAL_FATAL(ksvc_filter_compile(&lay, b.p, b.n, f), 0);
    bool m = true;
    CU_ASSERT(ksvc_filter_match(&lay, f, 1, r.key, 3, r.rec, &m) < 0);
    CU_ASSERT_FALSE(m);
    kern_rec_free(r.rec);
}

static void test_val_cmp(void)
{
    struct kern_val a = kern_v_i32(-1), b = kern_v_i64(5);
    CU_ASSERT(ksvc_val_cmp(&a, &b) < 0);
    CU_ASSERT(ksvc_val_cmp(&b, &a) > 0);
    a = kern_v_ts(INT64_MIN);
    b = kern_v_ts(INT64_MAX);
    CU_ASSERT(ksvc_val_cmp(&a, &b) < 0);
    a = kern_v_dbl(NAN);
    b = kern_v_dbl(-INFINITY);
    CU_ASSERT(ksvc_val_cmp(&a, &b) > 0);
    CU_ASSERT(ksvc_val_cmp(&b, &a) < 0);
    CU_ASSERT_EQUAL(ksvc_val_cmp(&a, &a), 0);
    a = kern_v_bytes(KERN_T_VBYTES, "\xff", 1);
    b = kern_v_bytes(KERN_T_VBYTES, "\x01\x02", 2);
    CU_ASSERT(ksvc_val_cmp(&a, &b) > 0); /* unsigned bytes */
    a = kern_v_bytes(KERN_T_VBYTES, NULL, 0);
    CU_ASSERT(ksvc_val_cmp(&a, &b) < 0);
    CU_ASSERT_EQUAL(ksvc_val_cmp(&a, &a), 0);
}

void cu_register(void)
{
    static const struct cu_case c[] = {
        {"compile_errors", test_compile_errors},
        {"integers", test_integers},
        {"doubles_and_nulls", test_doubles_and_nulls},
        {"strings", test_strings},
        {"and_and_damage", test_and_and_damage},
        {"val_cmp", test_val_cmp},
        {NULL, NULL}};
    cu_add_suite("ksvc_filter", NULL, NULL, c);
}
