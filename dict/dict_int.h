/* Helpers shared by the dict_*.c files (private to dict/). */
#ifndef NINES_DICT_INT_H
#define NINES_DICT_INT_H

#include "dict.h"

/* NINES_EINVAL unless `name` (at most `cap` bytes) is 1..DICT_NAME_MAX
 * bytes of letters, digits and '_', not starting with a digit. */
int dict_name_check(const char *what, const char *name, size_t cap);

/* Hex of b[0..len) for error details, shortened with "..." past 16 bytes. */
void dict_hex(char *out, size_t cap, const uint8_t *b, size_t len);

/* Copy `nodes` into out[] sorted by (site, id); returns the count per site
 * in nsite[]. The list must have passed dict_nodes_validate. */
void dict_nodes_sorted(const struct dict_node *nodes, uint32_t n, struct dict_node *out,
                       uint32_t nsite[DICT_NSITES]);

/* Return `rc` with the thread's current error detail prefixed by the
 * formatted text and ": " (nines_err must not read its own buffer). */
int dict_err_prefix(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Deep copy of a (validated) definition into a new table with defaults
 * filled in and room for its fragments; NULL when out of memory. */
struct dict_table *dict_table_copy(const struct dict_table_def *def);
void dict_table_free(struct dict_table *t);
/* Add `t` (id and name unique) to `d`, keeping d->tables sorted by id.
 * Does not change the version. */
int dict_insert_table(struct dict *d, struct dict_table *t);

#endif
