/* SCAN filters (internal, kernel service): the comparisons of
 * RecordOp.filters checked against each row a scan examines, so that only
 * the rows that match travel (README "Scan filters"). Pure code: no
 * runtime, no allocation; values point into the request they came from. */
#ifndef NINES_KSVC_FILTER_H
#define NINES_KSVC_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dict/dict.h"
#include "kernel/kern_rec.h"
#include "kernel/kern_val.h"
#include "nines_txn.pb-c.h"

#define KSVC_FILTER_MAX 32 /* filters of one SCAN at most */

/* Where a table's columns are: what the filters read a row with. */
struct ksvc_layout {
    const char *table;
    const char (*names)[DICT_NAME_MAX + 1]; /* per column */
    unsigned ncols;
    const struct kern_col *cols;     /* per column */
    const int16_t *colkey;           /* per column: index in the key, or -1 */
    const int16_t *colrec;           /* per column: index in the record, or -1 */
    const struct kern_col *kcols;    /* key columns, key order */
    unsigned npk;
    const struct kern_col *rcols;    /* record columns */
    unsigned nrc;
};

/* One compiled filter. */
struct ksvc_filter {
    uint32_t col;
    uint8_t cmp;                     /* Nines__FilterCmp */
    struct kern_val v;               /* CMP_EQ .. CMP_GE */
};

/* Check and convert n filters into out[0 .. n): a column of the table, a
 * known comparison, a non-NULL value of the column's type for the six
 * comparisons (none for IS_NULL / IS_NOT_NULL). NINES_EINVAL (count,
 * column, comparison, NULL value) or NINES_ETYPE (value) naming the
 * filter, the table and the column. */
int ksvc_filter_compile(const struct ksvc_layout *l, Nines__ScanFilter *const *f, size_t n,
                        struct ksvc_filter *out);

/* Does the row (its encoded key and record) satisfy every filter? 0 with
 * *match set, or the decoding error of a damaged key or record. */
int ksvc_filter_match(const struct ksvc_layout *l, const struct ksvc_filter *f, size_t n,
                      const uint8_t *key, size_t klen, const struct kern_rec *rec, bool *match);

/* The order filters compare in: integers and timestamps numerically,
 * doubles in PostgreSQL's total order (NaN above every number and equal to
 * itself, -0 equal to 0), strings and byte strings bytewise then by
 * length. a and b must be of one kind (both integer, both double, both
 * bytes) and not NULL. */
int ksvc_val_cmp(const struct kern_val *a, const struct kern_val *b);

#endif
