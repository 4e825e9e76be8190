/* Routing shared by nodes and clients, the pure part: the one dictionary
 * type -> kernel type mapping (kern_type_from_dict, checked against the
 * codes of dict.h, since the kernel may not include dict/), and the
 * client library's key encoder (cli_key_encode, what nines_key_fragment
 * routes) producing exactly the bytes kern_key_encode gives for the same
 * typed values, on random composite keys of every column type (strings
 * and byte strings with NUL bytes, empty variable ones, doubles with NaN
 * and -0.0 included);
 * its errors name the column. The node side (txctl) is checked against
 * real nodes in tests/cluster/route_cluster_test.c. */
#include "cu_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli_int.h"
#include "conv_cases.h"
#include "dict/dict.h"
#include "kernel/kern_key.h"
#include "nines/errors.h"

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_type_map(void)
{
    static const struct { uint32_t d; int k; } map[] = {
        {DICT_T_INT32, KERN_T_INT32},   {DICT_T_INT64, KERN_T_INT64},
        {DICT_T_DOUBLE, KERN_T_DOUBLE}, {DICT_T_STRING, KERN_T_FSTR},
        {DICT_T_VARSTRING, KERN_T_VSTR}, {DICT_T_BYTES, KERN_T_FBYTES},
        {DICT_T_VARBYTES, KERN_T_VBYTES}, {DICT_T_TIMESTAMP, KERN_T_TS},
    };
    _Static_assert(sizeof map / sizeof map[0] == DICT_T_LAST - DICT_T_FIRST + 1,
                   "every dictionary type is mapped");
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        CU_ASSERT_EQUAL(kern_type_from_dict(map[i].d), map[i].k);
    CU_ASSERT_EQUAL(kern_type_from_dict(0), -1);
    CU_ASSERT_EQUAL(kern_type_from_dict(DICT_T_LAST + 1), -1);
}

/* Every column type in the key (key columns are NOT NULL). */
static const struct dict_column kcols[] = {
    {.name = "a", .type = DICT_T_INT32},
    {.name = "b", .type = DICT_T_INT64},
    {.name = "c", .type = DICT_T_DOUBLE},
    {.name = "d", .type = DICT_T_STRING, .size = 4},
    {.name = "e", .type = DICT_T_VARSTRING, .size = 40},
    {.name = "f", .type = DICT_T_BYTES, .size = 3},
    {.name = "g", .type = DICT_T_VARBYTES, .size = 20},
    {.name = "h", .type = DICT_T_TIMESTAMP},
    {.name = "v", .type = DICT_T_INT64},
};
#define NK 8

static struct dict D;
static const struct dict_table *TH, *TR, *TK;

static int setup(void)
{
    rng = cu_seed(20240611) | 1;
    static const struct dict_node nodes[] = {{1, 0}, {2, 1}, {3, 0}, {4, 1}};
    static const uint16_t pk[NK] = {0, 1, 2, 3, 4, 5, 6, 7};
    if (dict_init(&D, nodes, 4))
        return 1;
    struct dict_table_def h = {.name = "h", .ncols = NK + 1, .cols = kcols, .npk = NK, .pk = pk,
                               .method = DICT_FRAG_HASH, .nfrags = 13};
    /* range on the int32 column: splits -100, 0, 100 */
    uint8_t sb[3][8];
    struct dict_key sk[3];
    struct kern_col c0 = {.type = KERN_T_INT32};
    int32_t sv[3] = {-100, 0, 100};
    for (int i = 0; i < 3; i++) {
        struct kern_val v = kern_v_i32(sv[i]);
        int n = kern_key_encode(&c0, 1, &v, sb[i], sizeof sb[i]);
        if (n <= 0)
            return 1;
        sk[i] = (struct dict_key){sb[i], (uint32_t)n};
    }
    struct dict_table_def r = h;
    snprintf(r.name, sizeof r.name, "r");
    r.method = DICT_FRAG_RANGE;
    r.nfrags = 0;
    r.nsplits = 3;
    r.splits = sk;
    if (dict_create_table(&D, &h, NULL) || dict_create_table(&D, &r, NULL)) {
        printf("\n  setup: %s\n", nines_errdetail());
        return 1;
    }
    struct dict_table_def k = {.name = "cvk", .ncols = CVK_NPK + 1, .cols = cvk_cols,
                               .npk = CVK_NPK, .pk = cvk_pk, .method = DICT_FRAG_HASH,
                               .nfrags = 5};
    if (dict_create_table(&D, &k, NULL)) {
        printf("\n  setup: %s\n", nines_errdetail());
        return 1;
    }
    TH = dict_table_by_name(&D, "h");
    TR = dict_table_by_name(&D, "r");
    TK = dict_table_by_name(&D, "cvk");
    return TH && TR && TK ? 0 : 1;
}

static int teardown(void)
{
    dict_free(&D);
    return 0;
}

static double rnd_double(void)
{
    switch (rnd() % 8) {
    case 0:
        return NAN;
    case 1:
        return -0.0;
    case 2:
        return INFINITY * (rnd() % 2 ? 1 : -1);
    case 3: {
        uint64_t b = rnd();
        double d;
        memcpy(&d, &b, sizeof d);
        return d;
    }
    default:
        return ((double)(int64_t)rnd()) / (double)(1 + rnd() % 1000);
    }
}

static void rnd_bytes(uint8_t *p, size_t n, bool nul_ok)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)rnd();
        if (!nul_ok && p[i] == 0)
            p[i] = 'x';
        else if (nul_ok && rnd() % 4 == 0)
            p[i] = 0;
    }
}

/* Random keys: client encoder bytes == kern_key_encode bytes, and both
 * tables route the client's bytes where they route the direct ones. */
static void test_encode_agreement(void)
{
    uint8_t sd[4], se[40], sf[3], sg[20];
    int nroute[2][16] = {{0}};
    for (int it = 0; it < 5000; it++) {
        struct nines_value nv[NK];
        struct kern_val kv[NK];
        struct kern_col kc[NK];
        int64_t a = (int32_t)rnd();
        if (it % 3 == 0)
            a = (int64_t)(rnd() % 401) - 200; /* around the range splits */
        nv[0] = nines_v_int64(a);
        kv[0] = kern_v_i32((int32_t)a);
        int64_t b = (int64_t)rnd();
        nv[1] = nines_v_int64(b);
        kv[1] = kern_v_i64(b);
        double c = rnd_double();
        nv[2] = nines_v_double(c);
        kv[2] = kern_v_dbl(c);
        rnd_bytes(sd, sizeof sd, false);
        nv[3] = nines_v_string((const char *)sd, sizeof sd);
        kv[3] = kern_v_bytes(KERN_T_FSTR, sd, sizeof sd);
        size_t el = rnd() % (sizeof se + 1);
        rnd_bytes(se, el, false);
        nv[4] = nines_v_string((const char *)se, el);
        kv[4] = kern_v_bytes(KERN_T_VSTR, se, (uint32_t)el);
        rnd_bytes(sf, sizeof sf, true);
        nv[5] = nines_v_bytes(sf, sizeof sf);
        kv[5] = kern_v_bytes(KERN_T_FBYTES, sf, sizeof sf);
        size_t gl = rnd() % (sizeof sg + 1);
        rnd_bytes(sg, gl, true);
        nv[6] = nines_v_bytes(sg, gl);
        kv[6] = kern_v_bytes(KERN_T_VBYTES, sg, (uint32_t)gl);
        int64_t h = (int64_t)rnd();
        nv[7] = nines_v_int64(h);
        kv[7] = kern_v_ts(h);
        /* the columns as the kernel service declares them, written out */
        static const struct kern_col want[NK] = {
            {KERN_T_INT32, 0, 0},  {KERN_T_INT64, 0, 0},  {KERN_T_DOUBLE, 0, 0},
            {KERN_T_FSTR, 0, 4},   {KERN_T_VSTR, 0, 40},  {KERN_T_FBYTES, 0, 3},
            {KERN_T_VBYTES, 0, 20}, {KERN_T_TS, 0, 0},
        };
        memcpy(kc, want, sizeof kc);
        uint8_t k1[KERN_KEY_MAX], k2[KERN_KEY_MAX];
        int l1 = cli_key_encode(TH, nv, NK, k1, sizeof k1);
        int l2 = kern_key_encode(kc, NK, kv, k2, sizeof k2);
        CU_ASSERT_TRUE_FATAL(l1 > 0);
        CU_ASSERT_EQUAL_FATAL(l1, l2);
        CU_ASSERT_EQUAL_FATAL(memcmp(k1, k2, (size_t)l1), 0);
        for (int t = 0; t < 2; t++) {
            const struct dict_table *tb = t ? TR : TH;
            int f1 = dict_route(tb, k1, (size_t)l1);
            CU_ASSERT_EQUAL(f1, dict_route(tb, k2, (size_t)l2));
            CU_ASSERT_TRUE_FATAL(f1 >= 0 && f1 < (int)tb->nfrags);
            nroute[t][f1]++;
            if (t == 1) /* range on the first column: splits -100, 0, 100 */
                CU_ASSERT_EQUAL(f1, a < -100 ? 0 : a < 0 ? 1 : a < 100 ? 2 : 3);
        }
    }
    for (uint32_t f = 0; f < TH->nfrags; f++)
        CU_ASSERT_TRUE(nroute[0][f] > 0); /* 5000 keys reach every hash fragment */
    for (uint32_t f = 0; f < TR->nfrags; f++)
        CU_ASSERT_TRUE(nroute[1][f] > 0);
}

static struct nines_value V[NK];
static uint8_t s4[4] = {'a', 'b', 'c', 'd'}, b3[3] = {0, 1, 2};

static void good_key(void)
{
    V[0] = nines_v_int64(1);
    V[1] = nines_v_int64(2);
    V[2] = nines_v_double(3.5);
    V[3] = nines_v_string((const char *)s4, 4);
    V[4] = nines_v_string("", 0);
    V[5] = nines_v_bytes(b3, 3);
    V[6] = nines_v_bytes(b3, 1);
    V[7] = nines_v_int64(7);
}

/* Encoder error: code and a detail naming `col`. */
static void expect(size_t n, int code, const char *col)
{
    uint8_t k[KERN_KEY_MAX];
    int rc = cli_key_encode(TH, V, n, k, sizeof k);
    CU_ASSERT_EQUAL(rc, code);
    char want[32];
    snprintf(want, sizeof want, "column %s", col);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), want));
    if (rc != code || !strstr(nines_errdetail(), want))
        printf("\n  got %d: %s\n", rc, nines_errdetail());
    good_key();
}

static void test_errors(void)
{
    uint8_t k[KERN_KEY_MAX];
    good_key();
    CU_ASSERT_TRUE(cli_key_encode(TH, V, NK, k, sizeof k) > 0);
    expect(NK - 1, NINES_ETYPE, "h");      /* too few: the first without a value */
    expect(0, NINES_ETYPE, "a");
    expect(NK + 1, NINES_ETYPE, "h");      /* too many */
    V[0] = nines_v_int64((int64_t)INT32_MAX + 1);
    expect(NK, NINES_ETYPE, "a");          /* int32 out of range */
    V[1] = nines_v_double(2.0);
    expect(NK, NINES_ETYPE, "b");          /* double for int64 */
    V[2] = nines_v_int64(3);
    expect(NK, NINES_ETYPE, "c");          /* int64 for double */
    V[3] = nines_v_string("abc", 3);
    expect(NK, NINES_ETYPE, "d");          /* fixed string of the wrong length */
    V[3] = nines_v_bytes(s4, 4);
    expect(NK, NINES_ETYPE, "d");          /* bytes for a string */
    V[4] = nines_v_string("a\0b", 3);
    expect(NK, NINES_EINVAL, "e");         /* NUL inside a string */
    V[4] = nines_v_string("0123456789012345678901234567890123456789x", 41);
    expect(NK, NINES_ETYPE, "e");          /* longer than varstring(40) */
    V[5] = nines_v_null();
    expect(NK, NINES_ETYPE, "f");          /* NULL in a NOT NULL column */
    V[6] = nines_v_string("x", 1);
    expect(NK, NINES_ETYPE, "g");          /* string for bytes */
    V[7] = nines_v_null();
    expect(NK, NINES_ETYPE, "h");
    V[7].type = (enum nines_vtype)42;
    expect(NK, NINES_ETYPE, "h");          /* unknown value tag */
}

/* ---- the conversion cases (conv_cases.h) ---- */

/* Case c as the application gives it (no "not set" here: every
 * nines_value has a type). */
static struct nines_value cv_nv(const struct cv_case *c)
{
    switch (c->kind) {
    case CV_I64:
        return nines_v_int64(c->i64);
    case CV_F64:
        return nines_v_double(c->f64);
    case CV_STR:
        return nines_v_string(c->s, c->len);
    case CV_RAW:
        return nines_v_bytes(c->s, c->len);
    default:
        return nines_v_null();
    }
}

/* Every key case (NOT NULL column) as a key value of table cvk. */
static void test_conversion(void)
{
    struct nines_value good[CVK_NPK];
    for (int j = 0; j < CVK_NPK; j++) {
        Nines__Value pv;
        cv_good(j + 1, 0, &pv);
        switch (pv.v_case) {
        case NINES__VALUE__V_I64:
            good[j] = nines_v_int64(pv.i64);
            break;
        case NINES__VALUE__V_F64:
            good[j] = nines_v_double(pv.f64);
            break;
        case NINES__VALUE__V_STR:
            good[j] = nines_v_string(pv.str, strlen(pv.str));
            break;
        default:
            good[j] = nines_v_bytes(pv.raw.data, pv.raw.len);
            break;
        }
    }
    for (size_t i = 0; i < CV_NCASES; i++) {
        const struct cv_case *c = &cv_cases[i];
        if (!cv_is_key(c) || c->kind == CV_UNSET)
            continue;
        struct nines_value v[CVK_NPK];
        memcpy(v, good, sizeof v);
        v[c->col - 1] = cv_nv(c);
        uint8_t k[KERN_KEY_MAX];
        int rc = cli_key_encode(TK, v, CVK_NPK, k, sizeof k);
        int got = rc < 0 ? rc : 0;
        const char *miss = NULL;
        if (got != c->want)
            printf("\n  client cvk '%s': CODE want %d got %d (%s)", c->what, c->want, got,
                   rc < 0 ? nines_errdetail() : "");
        else if (got && !cv_detail_ok(c, "cvk", nines_errdetail(), &miss))
            printf("\n  client cvk '%s': DETAIL lacks \"%s\": %s", c->what, miss,
                   nines_errdetail());
        CU_ASSERT_EQUAL(got, c->want);
        CU_ASSERT_PTR_NULL(miss);
    }
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"dictionary type -> kernel type, one mapping", test_type_map},
        {"client key encoder == kern_key_encode on random keys", test_encode_agreement},
        {"client key encoder errors name the column", test_errors},
        {"conversion cases through the client's key encoder", test_conversion},
        {NULL, NULL},
    };
    cu_add_suite("route", setup, teardown, cases);
}
