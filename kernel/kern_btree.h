/* Main-memory B+tree of one fragment replica (internal, kernel).
 *
 * Maps encoded primary keys (kern_key.h, 1..KERN_KEY_MAX bytes, compared by
 * kern_key_cmp) to records (kern_rec.h). The tree owns the records and keys
 * it stores. One executor thread owns a tree: no latches (README "B+tree").
 * Algorithm, node layout, invariants and the cursor stability rule:
 * kernel/README.md. */
#ifndef NINES_KERN_BTREE_H
#define NINES_KERN_BTREE_H

#include "kern_key.h"
#include "kern_rec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kern_bt;

/* Memory of one tree, in allocator bytes (malloc_usable_size). */
struct kern_bt_mem {
    uint64_t rows;
    uint64_t nodes;     /* B+tree nodes in use (leaves included) */
    uint64_t leaves;
    int height;         /* levels; 1 = the root is a leaf */
    size_t node_bytes;  /* nodes in use */
    size_t key_bytes;   /* out-of-line keys (longer than the inline limit) */
    size_t rec_bytes;   /* records owned by the tree */
    size_t other_bytes; /* tree header and reserved spare nodes/key */
    size_t total;
    double bytes_per_row;       /* total / rows (0 when empty) */
    double index_bytes_per_row; /* (node_bytes + key_bytes) / rows */
};

int kern_bt_create(struct kern_bt **out);
/* Free the tree, its keys and every record it holds. */
void kern_bt_destroy(struct kern_bt *t);
/* Free the tree a slice at a time: at most about `budget` entries and
 * nodes per call (a handler must not free millions of records in one
 * executor turn). Returns 1 while more remains, 0 when the tree is gone
 * (t freed). Once started, the tree must not be used any more. */
int kern_bt_destroy_step(struct kern_bt *t, size_t budget);

/* Record stored under `key`, or NINES_ENOTFOUND. Bad key length:
 * NINES_EINVAL (empty) / NINES_ETOOBIG (over KERN_KEY_MAX). */
int kern_bt_get(const struct kern_bt *t, const void *key, size_t klen, struct kern_rec **rec);

/* Store `rec` under `key`; on success the tree owns `rec`. Duplicate key:
 * NINES_EEXIST (the caller keeps `rec`). NINES_ENOMEM leaves the tree as
 * it was. */
int kern_bt_insert(struct kern_bt *t, const void *key, size_t klen, struct kern_rec *rec);

/* Replace the record under `key` by `rec` (the tree owns it); the previous
 * record goes to *old (the caller frees it) or is freed when old is NULL.
 * NINES_ENOTFOUND when the key is absent. */
int kern_bt_update(struct kern_bt *t, const void *key, size_t klen, struct kern_rec *rec,
                   struct kern_rec **old);

/* Remove `key`; its record goes to *old or is freed when old is NULL.
 * NINES_ENOTFOUND when absent; NINES_ENOMEM (tree unchanged) when the
 * reserve for rebalancing cannot be allocated. */
int kern_bt_delete(struct kern_bt *t, const void *key, size_t klen, struct kern_rec **old);

uint64_t kern_bt_count(const struct kern_bt *t);
size_t kern_bt_bytes(const struct kern_bt *t);
int kern_bt_height(const struct kern_bt *t);
void kern_bt_mem(const struct kern_bt *t, struct kern_bt_mem *m);

/* Full structural check (O(n)): 0 or NINES_ECORRUPT with a detail. */
int kern_bt_check(const struct kern_bt *t);

/* Cursor for range scans in both directions. Stable across modifications
 * of the tree between steps (README "Cursor stability"): next() returns
 * the smallest key present now that is greater than the cursor's key,
 * prev() the largest smaller one. After a successful step, key/klen/rec
 * are the current entry (read-only; rec stays valid until that key is
 * updated or deleted). Steps return 0 or NINES_ENOTFOUND at either end. */
struct kern_bt_cursor {
    struct kern_bt *t;
    int state;        /* internal: where the cursor stands relative to key */
    uint64_t mod;     /* tree modification count the cache below belongs to */
    void *leaf;       /* cache: leaf and index of the first entry >= key */
    unsigned idx;
    bool eq;          /* cache: that entry equals key */
    struct kern_rec *rec;
    size_t klen;
    uint8_t key[KERN_KEY_MAX + 1];
};

void kern_bt_cursor_init(struct kern_bt_cursor *c, struct kern_bt *t);
int kern_bt_first(struct kern_bt_cursor *c);
int kern_bt_last(struct kern_bt_cursor *c);
/* Smallest key >= `key` / largest key <= `key`. */
int kern_bt_seek_ge(struct kern_bt_cursor *c, const void *key, size_t klen);
int kern_bt_seek_le(struct kern_bt_cursor *c, const void *key, size_t klen);
/* Smallest key > `key` / largest key < `key` (`key` need not be present):
 * resuming a scan, on a fresh cursor, past the last key it returned. */
int kern_bt_seek_gt(struct kern_bt_cursor *c, const void *key, size_t klen);
int kern_bt_seek_lt(struct kern_bt_cursor *c, const void *key, size_t klen);
/* On an unpositioned cursor next() is first() and prev() is last(). */
int kern_bt_next(struct kern_bt_cursor *c);
int kern_bt_prev(struct kern_bt_cursor *c);

#endif
