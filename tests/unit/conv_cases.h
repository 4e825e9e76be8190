/* The one table of wire-value -> column cases (conv/README.md "Rules"),
 * run through every path that converts values: the conversion itself
 * (conv_test.c), the transaction controller (txc_test.c "conversion"),
 * the kernel service (ksvc_test.c "conversion") and the client
 * library's key encoder (route_test.c "conversion"). Each path checks the
 * code and that the detail names the table, the column, the column type
 * and the value given.
 *
 * Tables: "cv" (k int64 key, then one column per case column below) for
 * row cases; "cvk" (the eight NOT NULL columns, all in the key, then
 * v int64) for key cases — a case is also a key case when its column is
 * NOT NULL (key columns cannot be nullable). */
#ifndef NINES_CONV_CASES_H
#define NINES_CONV_CASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dict/dict.h"
#include "nines/errors.h"
#include "nines_txn.pb-c.h"

/* Columns of "cv"; 1..8 are also the key columns of "cvk" (in this order). */
static const struct dict_column cv_cols[] = {
    {.name = "k", .type = DICT_T_INT64, .size = 0, .nullable = false},
    {.name = "i32", .type = DICT_T_INT32, .size = 0, .nullable = false},
    {.name = "i64", .type = DICT_T_INT64, .size = 0, .nullable = false},
    {.name = "dbl", .type = DICT_T_DOUBLE, .size = 0, .nullable = false},
    {.name = "ts", .type = DICT_T_TIMESTAMP, .size = 0, .nullable = false},
    {.name = "fs", .type = DICT_T_STRING, .size = 4, .nullable = false},
    {.name = "vs", .type = DICT_T_VARSTRING, .size = 8, .nullable = false},
    {.name = "fb", .type = DICT_T_BYTES, .size = 3, .nullable = false},
    {.name = "vb", .type = DICT_T_VARBYTES, .size = 4, .nullable = false},
    {.name = "ni", .type = DICT_T_INT64, .size = 0, .nullable = true},
    {.name = "nfs", .type = DICT_T_STRING, .size = 4, .nullable = true},
};
#define CV_NCOLS 11
#define CVK_NPK 8 /* "cvk": cv_cols[1..8] as key, then v int64 */
static const struct dict_column cvk_cols[] = {
    {.name = "i32", .type = DICT_T_INT32, .size = 0, .nullable = false},
    {.name = "i64", .type = DICT_T_INT64, .size = 0, .nullable = false},
    {.name = "dbl", .type = DICT_T_DOUBLE, .size = 0, .nullable = false},
    {.name = "ts", .type = DICT_T_TIMESTAMP, .size = 0, .nullable = false},
    {.name = "fs", .type = DICT_T_STRING, .size = 4, .nullable = false},
    {.name = "vs", .type = DICT_T_VARSTRING, .size = 8, .nullable = false},
    {.name = "fb", .type = DICT_T_BYTES, .size = 3, .nullable = false},
    {.name = "vb", .type = DICT_T_VARBYTES, .size = 4, .nullable = false},
    {.name = "v", .type = DICT_T_INT64, .size = 0, .nullable = false},
};
static const uint16_t cvk_pk[CVK_NPK] = {0, 1, 2, 3, 4, 5, 6, 7};
/* how the detail names each column's type */
static const char *const cv_type_text[CV_NCOLS] = {
    "int64", "int32", "int64", "double", "timestamp", "string(4)",
    "varstring(8)", "bytes(3)", "varbytes(4)", "int64", "string(4)",
};

enum cv_kind { CV_UNSET, CV_NULL, CV_I64, CV_F64, CV_STR, CV_RAW };

struct cv_case {
    const char *what;
    int col;            /* index in cv_cols */
    enum cv_kind kind;
    int64_t i64;
    double f64;
    const char *s;      /* CV_STR: the string; CV_RAW: the bytes (len of them) */
    size_t len;
    int want;           /* 0 or the NINES_E* code */
    const char *vtext;  /* how the detail shows the value */
};

#define CV_I(c, x, w, t) {#c " int " #x, c, CV_I64, x, 0, NULL, 0, w, t}
#define CV_D(c, x, w, t) {#c " double " #x, c, CV_F64, 0, x, NULL, 0, w, t}
#define CV_S(c, x, w, t) {#c " str " #x, c, CV_STR, 0, 0, x, sizeof x - 1, w, t}
#define CV_R(c, x, n, w, t) {#c " raw " #n, c, CV_RAW, 0, 0, x, n, w, t}
#define CV_N(c, w) {#c " NULL", c, CV_NULL, 0, 0, NULL, 0, w, "NULL"}
#define CV_U(c, w) {#c " unset", c, CV_UNSET, 0, 0, NULL, 0, w, "no value"}
enum { CI32 = 1, CI64, CDBL, CTS, CFS, CVS, CFB, CVB, CNI, CNFS };

static const struct cv_case cv_cases[] = {
    CV_I(CI32, 0, 0, "0"),
    CV_I(CI32, INT32_MAX, 0, "2147483647"),
    CV_I(CI32, INT32_MIN, 0, "-2147483648"),
    CV_I(CI32, (int64_t)INT32_MAX + 1, NINES_ETYPE, "2147483648"),
    CV_I(CI32, (int64_t)INT32_MIN - 1, NINES_ETYPE, "-2147483649"),
    CV_I(CI32, INT64_MAX, NINES_ETYPE, "9223372036854775807"),
    CV_D(CI32, 1.0, NINES_ETYPE, "double 1"),
    CV_I(CI64, INT64_MIN, 0, ""),
    CV_I(CI64, INT64_MAX, 0, ""),
    CV_D(CI64, 2.5, NINES_ETYPE, "double 2.5"),
    CV_S(CI64, "12", NINES_ETYPE, "'12'"),
    CV_D(CDBL, -0.5, 0, ""),
    CV_I(CDBL, 3, NINES_ETYPE, "integer 3"),
    CV_I(CTS, 1700000000000000, 0, ""),
    CV_D(CTS, 1.0, NINES_ETYPE, "double 1"),
    CV_S(CFS, "abcd", 0, ""),
    CV_S(CFS, "abc", NINES_ETYPE, "'abc'"),     /* shorter: not padded */
    CV_S(CFS, "abcde", NINES_ETYPE, "'abcde'"), /* longer */
    CV_S(CFS, "", NINES_ETYPE, "''"),
    CV_R(CFS, "abcd", 4, NINES_ETYPE, "4 bytes"), /* bytes for a string */
    CV_S(CVS, "", 0, ""),
    CV_S(CVS, "12345678", 0, ""),
    CV_S(CVS, "123456789", NINES_ETYPE, "'123456789'"), /* above the maximum */
    CV_R(CVS, "ab", 2, NINES_ETYPE, "2 bytes"),
    CV_R(CFB, "\0\1\2", 3, 0, ""),
    CV_R(CFB, "\0\1", 2, NINES_ETYPE, "2 bytes"),
    CV_R(CFB, "\0\1\2\3", 4, NINES_ETYPE, "4 bytes"),
    CV_S(CFB, "abc", NINES_ETYPE, "'abc'"), /* a string for bytes */
    CV_R(CVB, "", 0, 0, ""),
    CV_R(CVB, "\0\0\0\0", 4, 0, ""),
    CV_R(CVB, "\1\2\3\4\5", 5, NINES_ETYPE, "5 bytes"),
    CV_I(CVB, 1, NINES_ETYPE, "integer 1"),
    CV_N(CNI, 0),
    CV_I(CNI, 5, 0, ""),
    CV_N(CNFS, 0),
    CV_S(CNFS, "ab", NINES_ETYPE, "'ab'"), /* nullable does not relax the width */
    CV_N(CI64, NINES_ETYPE),
    CV_N(CFS, NINES_ETYPE),
    CV_N(CI32, NINES_ETYPE),
    CV_U(CI64, NINES_ETYPE),                /* not set is not NULL */
    CV_U(CNI, NINES_ETYPE),
};
#define CV_NCASES (sizeof cv_cases / sizeof cv_cases[0])

/* Is case c a key case ("cvk": its column is a key column)? */
static inline bool cv_is_key(const struct cv_case *c) { return !cv_cols[c->col].nullable; }

/* The wire value of case c (strings point into the case table; raw bytes too). */
static inline void cv_pb(const struct cv_case *c, Nines__Value *v)
{
    nines__value__init(v);
    switch (c->kind) {
    case CV_UNSET:
        break;
    case CV_NULL:
        v->v_case = NINES__VALUE__V_IS_NULL;
        v->is_null = 1;
        break;
    case CV_I64:
        v->v_case = NINES__VALUE__V_I64;
        v->i64 = c->i64;
        break;
    case CV_F64:
        v->v_case = NINES__VALUE__V_F64;
        v->f64 = c->f64;
        break;
    case CV_STR:
        v->v_case = NINES__VALUE__V_STR;
        v->str = (char *)c->s;
        break;
    case CV_RAW:
        v->v_case = NINES__VALUE__V_RAW;
        v->raw.data = (uint8_t *)c->s;
        v->raw.len = c->len;
        break;
    }
}

/* A good wire value for column col of "cv" (k: key). */
static inline void cv_good(int col, int64_t k, Nines__Value *v)
{
    static const struct cv_case good[CV_NCOLS] = {
        CV_I(0, 0, 0, ""),       CV_I(CI32, 7, 0, ""),     CV_I(CI64, 7, 0, ""),
        CV_D(CDBL, 1.5, 0, ""),  CV_I(CTS, 1000, 0, ""),   CV_S(CFS, "abcd", 0, ""),
        CV_S(CVS, "v", 0, ""),   CV_R(CFB, "xyz", 3, 0, ""), CV_R(CVB, "q", 1, 0, ""),
        CV_I(CNI, 5, 0, ""),     CV_S(CNFS, "wxyz", 0, ""),
    };
    cv_pb(&good[col], v);
    if (col == 0)
        v->i64 = k;
}

/* Does `detail` name what the rules require for case c on `table`? Sets
 * *missing to the first piece it lacks. */
static inline bool cv_detail_ok(const struct cv_case *c, const char *table, const char *detail,
                                const char **missing)
{
    static char t[80], col[80];
    snprintf(t, sizeof t, "table %s", table);
    snprintf(col, sizeof col, "column %s", cv_cols[c->col].name);
    const char *need[] = {t, col, cv_type_text[c->col], c->vtext};
    for (size_t i = 0; i < 4; i++)
        if (!strstr(detail ? detail : "", need[i])) {
            *missing = need[i];
            return false;
        }
    return true;
}

#endif
