/* Wire value -> kernel value: the one conversion of a `nines.Value`
 * (proto/nines_txn.proto) into a typed value of a table column, and of
 * key values into an encoded key. Used by the transaction controller, the
 * kernel service and the client library (conv/README.md has the rules).
 * Pure code: no runtime, no allocation, no threads. */
#ifndef NINES_CONV_H
#define NINES_CONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/kern_key.h"
#include "nines_txn.pb-c.h"

struct dict_table;

/* One column as the conversion sees it: the names the detail uses and the
 * kernel column (type, nullable, size). */
struct conv_col {
    const char *table;
    const char *name;
    struct kern_col kc;
};

/* Column ci of a dictionary table (kern_type_from_dict). NINES_ETYPE
 * naming table and column for a type code without a kernel type. */
int conv_col_of(const struct dict_table *tb, uint32_t ci, struct conv_col *out);

/* Value v for column c -> *out (strings and bytes point into v). 0, or
 * NINES_ETYPE with a detail naming table, column, column type and the
 * value given. */
int conv_value(const struct conv_col *c, const Nines__Value *v, struct kern_val *out);

/* A full row: row->n_values must equal ncols (NINES_ETYPE naming both
 * counts), then conv_value per column into out[0 .. ncols). */
int conv_row(const struct conv_col *cols, uint32_t ncols, const Nines__Row *row,
             struct kern_val *out);

/* Key values -> encoded key in buf (cap bytes; KERN_KEY_MAX is always
 * enough): `what` names them in details ("key", "SCAN low key"). prefix
 * false: exactly npk values; true: 0..npk values of the leading key
 * columns (0: returns 0, no bound). The count is checked before any value
 * is read (NINES_ETYPE naming table, counts and a column). Returns the
 * length, or NINES_ETYPE (a value), NINES_ETOOBIG (longer than
 * KERN_KEY_MAX or cap). */
int conv_key(const struct conv_col *kcols, uint32_t npk, Nines__Value *const *v, size_t n,
             bool prefix, const char *what, uint8_t *buf, size_t cap);

/* "integer 7", "string 'abc' (3 bytes)", "NULL", "no value" ... */
void conv_value_text(const Nines__Value *v, char *buf, size_t n);

/* The column type as the schema writes it: "int32", "string(88)" ... */
void conv_type_text(const struct kern_col *kc, char *buf, size_t n);

#endif
