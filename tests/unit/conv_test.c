/* The one wire value -> kernel value conversion (conv/): the case table of
 * conv_cases.h straight through conv_value / conv_row / conv_key (the
 * same table runs through txctl, the kernel service and the client in
 * txc_test.c, ksvc_test.c and route_test.c), the values it produces,
 * key counts and prefixes, and the encoded key against kern_key_encode. */
#include "cu_test.h"

#include <stdio.h>
#include <string.h>

#include "conv/conv.h"
#include "conv_cases.h"
#include "dict/dict.h"
#include "nines/errors.h"

static struct dict D;
static const struct dict_table *TV, *TK;

static int setup(void)
{
    static const struct dict_node nodes[] = {{1, 0}, {2, 1}};
    static const uint16_t pk0[1] = {0};
    if (dict_init(&D, nodes, 2))
        return 1;
    struct dict_table_def v = {.name = "cv", .ncols = CV_NCOLS, .cols = cv_cols, .npk = 1,
                               .pk = pk0, .method = DICT_FRAG_HASH, .nfrags = 3};
    struct dict_table_def k = {.name = "cvk", .ncols = CVK_NPK + 1, .cols = cvk_cols,
                               .npk = CVK_NPK, .pk = cvk_pk, .method = DICT_FRAG_HASH,
                               .nfrags = 3};
    if (dict_create_table(&D, &v, NULL) || dict_create_table(&D, &k, NULL))
        return 1;
    TV = dict_table_by_name(&D, "cv");
    TK = dict_table_by_name(&D, "cvk");
    return TV && TK ? 0 : 1;
}

static int teardown(void)
{
    dict_free(&D);
    return 0;
}

static void cols(const struct dict_table *t, uint32_t n, const uint16_t *idx, struct conv_col *c)
{
    for (uint32_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL_FATAL(conv_col_of(t, idx ? idx[i] : i, &c[i]), 0);
}

static void check(const struct cv_case *c, int got, const char *table, const char *path)
{
    const char *miss = NULL;
    if (got != c->want)
        printf("\n  conv %s '%s': want %d got %d (%s)", path, c->what, c->want, got,
               got ? nines_errdetail() : "");
    else if (got && !cv_detail_ok(c, table, nines_errdetail(), &miss))
        printf("\n  conv %s '%s': detail lacks \"%s\": %s", path, c->what, miss,
               nines_errdetail());
    CU_ASSERT_EQUAL(got, c->want);
    CU_ASSERT_PTR_NULL(miss);
}

/* Every case as a value, as a row column, as a key value. */
static void test_cases(void)
{
    struct conv_col cc[CV_NCOLS], kc[CVK_NPK];
    cols(TV, CV_NCOLS, NULL, cc);
    cols(TK, CVK_NPK, cvk_pk, kc);
    for (size_t i = 0; i < CV_NCASES; i++) {
        const struct cv_case *c = &cv_cases[i];
        Nines__Value v, rowv[CV_NCOLS];
        Nines__Value *rp[CV_NCOLS];
        struct kern_val kv, rv[CV_NCOLS];
        cv_pb(c, &v);
        int rc = conv_value(&cc[c->col], &v, &kv);
        check(c, rc, "cv", "value");
        if (rc == 0) { /* the value as the kernel column holds it */
            CU_ASSERT_EQUAL(kv.type, cc[c->col].kc.type);
            CU_ASSERT_EQUAL(kern_val_check(&cc[c->col].kc, 0, &kv), 0);
            if (c->kind == CV_NULL)
                CU_ASSERT_TRUE(kv.null);
            if (c->kind == CV_I64)
                CU_ASSERT_EQUAL(kv.type == KERN_T_INT32 ? kv.u.i32 : kv.u.i64, c->i64);
            if (c->kind == CV_STR || c->kind == CV_RAW) {
                CU_ASSERT_EQUAL(kv.len, c->len);
                CU_ASSERT(c->len == 0 || !memcmp(kv.u.p, c->s, c->len));
            }
        }
        for (int j = 0; j < CV_NCOLS; j++) {
            if (j == c->col)
                cv_pb(c, &rowv[j]);
            else
                cv_good(j, 1, &rowv[j]);
            rp[j] = &rowv[j];
        }
        Nines__Row row = NINES__ROW__INIT;
        row.n_values = CV_NCOLS;
        row.values = rp;
        check(c, conv_row(cc, CV_NCOLS, &row, rv), "cv", "row");
        if (!cv_is_key(c))
            continue;
        for (int j = 0; j < CVK_NPK; j++) {
            if (j + 1 == c->col)
                cv_pb(c, &rowv[j]);
            else
                cv_good(j + 1, 0, &rowv[j]);
        }
        uint8_t buf[KERN_KEY_MAX];
        int len = conv_key(kc, CVK_NPK, rp, CVK_NPK, false, "key", buf, sizeof buf);
        check(c, len < 0 ? len : 0, "cvk", "key");
        if (len > 0) { /* the bytes kern_key_encode gives for the converted values */
            struct kern_col k[CVK_NPK];
            struct kern_val vals[CVK_NPK];
            for (int j = 0; j < CVK_NPK; j++) {
                k[j] = kc[j].kc;
                CU_ASSERT_EQUAL_FATAL(conv_value(&kc[j], rp[j], &vals[j]), 0);
            }
            uint8_t b2[KERN_KEY_MAX];
            int l2 = kern_key_encode(k, CVK_NPK, vals, b2, sizeof b2);
            CU_ASSERT_EQUAL(l2, len);
            CU_ASSERT(l2 == len && !memcmp(buf, b2, (size_t)len));
        }
    }
}

/* Counts, prefixes, rows, limits. */
static void test_keys_rows(void)
{
    struct conv_col kc[CVK_NPK], cc[CV_NCOLS];
    cols(TK, CVK_NPK, cvk_pk, kc);
    cols(TV, CV_NCOLS, NULL, cc);
    Nines__Value v[CVK_NPK + 1];
    Nines__Value *vp[CVK_NPK + 1];
    for (int j = 0; j <= CVK_NPK; j++) {
        cv_good(j < CVK_NPK ? j + 1 : 2, 0, &v[j]);
        vp[j] = &v[j];
    }
    uint8_t buf[KERN_KEY_MAX], full[KERN_KEY_MAX];
    int lf = conv_key(kc, CVK_NPK, vp, CVK_NPK, false, "key", full, sizeof full);
    CU_ASSERT_FATAL(lf > 0);
    /* too few / too many: named by the first column without a value / the last */
    CU_ASSERT_EQUAL(conv_key(kc, CVK_NPK, vp, 3, false, "key", buf, sizeof buf), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "column ts has no value"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "3 key values were given"));
    CU_ASSERT_EQUAL(conv_key(kc, CVK_NPK, vp, CVK_NPK + 1, true, "low key", buf, sizeof buf),
                    NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "9 low key values"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "column vb is the last key column"));
    /* the count is checked before a value is read */
    CU_ASSERT_EQUAL(conv_key(kc, CVK_NPK, NULL, 2, false, "key", buf, sizeof buf), NINES_ETYPE);
    /* prefixes: 0 values = no bound; k values = a prefix of the full key */
    CU_ASSERT_EQUAL(conv_key(kc, CVK_NPK, NULL, 0, true, "low key", buf, sizeof buf), 0);
    for (size_t n = 1; n <= CVK_NPK; n++) {
        int l = conv_key(kc, CVK_NPK, vp, n, true, "low key", buf, sizeof buf);
        CU_ASSERT_FATAL(l > 0 && l <= lf);
        CU_ASSERT_EQUAL(memcmp(buf, full, (size_t)l), 0);
    }
    /* a key longer than the buffer */
    CU_ASSERT_EQUAL(conv_key(kc, CVK_NPK, vp, CVK_NPK, false, "key", buf, 10), NINES_ETOOBIG);
    /* rows: count, missing row */
    Nines__Value rv[CV_NCOLS];
    Nines__Value *rp[CV_NCOLS];
    struct kern_val out[CV_NCOLS];
    for (int j = 0; j < CV_NCOLS; j++) {
        cv_good(j, 4, &rv[j]);
        rp[j] = &rv[j];
    }
    Nines__Row row = NINES__ROW__INIT;
    row.values = rp;
    row.n_values = CV_NCOLS;
    CU_ASSERT_EQUAL(conv_row(cc, CV_NCOLS, &row, out), 0);
    CU_ASSERT_EQUAL(out[0].u.i64, 4);
    row.n_values = CV_NCOLS - 1;
    CU_ASSERT_EQUAL(conv_row(cc, CV_NCOLS, &row, out), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "11 columns but the row has 10 values"));
    CU_ASSERT_EQUAL(conv_row(cc, CV_NCOLS, NULL, out), NINES_EINVAL);
    /* a NULL value pointer is "no value"; a NULL string pointer is "" */
    struct kern_val kv;
    CU_ASSERT_EQUAL(conv_value(&cc[CNI], NULL, &kv), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "no value"));
    Nines__Value s = NINES__VALUE__INIT;
    s.v_case = NINES__VALUE__V_STR;
    s.str = NULL;
    CU_ASSERT_EQUAL(conv_value(&cc[CVS], &s, &kv), 0);
    CU_ASSERT_EQUAL(kv.len, 0);
    CU_ASSERT_EQUAL(conv_value(&cc[CFS], &s, &kv), NINES_ETYPE);
    /* type texts */
    char t[32];
    for (int j = 0; j < CV_NCOLS; j++) {
        conv_type_text(&cc[j].kc, t, sizeof t);
        CU_ASSERT_STRING_EQUAL(t, cv_type_text[j]);
    }
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"the case table: values, rows, keys", test_cases},
        {"key counts, prefixes, rows, limits", test_keys_rows},
        {NULL, NULL},
    };
    cu_add_suite("conv", setup, teardown, cases);
}
