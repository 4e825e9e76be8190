/* Fragment replica internals shared by kern_frag.c (definition, roles,
 * primary operations, transaction table), kern_undo.c, kern_redo.c and
 * kern_ckpt.c. Private to those files. */
#ifndef NINES_KERN_FRAG_INT_H
#define NINES_KERN_FRAG_INT_H

#include "kern_frag.h"

struct frag_esc_op;

/* One transaction with records in the replica (open-addressing slot;
 * txn 0 marks an empty slot). */
struct frag_txn {
    uint64_t txn;
    uint64_t first_lsn; /* its oldest record here */
    uint64_t last_lsn;  /* head of its undo chain */
    struct frag_esc_op *esc; /* its ADD records not yet ended or undone */
};

/* Escrow bookkeeping (kern_escrow.c, README "Escrow bounds"): per key with
 * pending (uncommitted, not undone) ADD records, the sums of their positive
 * deltas and of the magnitudes of their negative ones, so that an ADD is
 * refused when some set of pending ADDs being undone would take the column
 * out of its type's range — which makes logical undo unable to overflow. */
struct frag_esc {
    struct frag_esc *next; /* hash chain */
    uint64_t hash;
    uint64_t pos, neg; /* sum of positive deltas; sum of |negative deltas| */
    uint32_t refs;     /* pending ADD records on this key */
    uint16_t column;   /* first column seen (diagnostics) */
    uint16_t klen;
    uint8_t key[];
};

/* One pending ADD record of a transaction. */
struct frag_esc_op {
    struct frag_esc_op *next;
    struct frag_esc *e;
    uint64_t lsn;
    int64_t delta;
};

struct kern_frag {
    uint32_t table, id;
    int role; /* enum kern_frag_role */
    struct kern_col *cols;
    unsigned ncols;
    uint16_t *pk;
    unsigned npk;
    struct kern_col *kcols; /* key layout: cols[pk[i]] */
    struct kern_col *rcols; /* record layout: the non-key columns in order */
    uint16_t *rmap;         /* rcols[i] is cols[rmap[i]] */
    unsigned nrcols;
    uint32_t schema_hash;
    struct kern_bt *bt;
    struct kern_log *log;
    uint64_t next_sid;
    uint64_t max_gci; /* the highest commit epoch of a COMMIT record in its log (0: none) */
    uint64_t log_pin; /* kern_frag_log_pin: trimming keeps records from here (0: none) */
    struct frag_txn *tx; /* txcap slots, a power of two */
    size_t txcap, ntx;
    struct kern_frag_stats st;
    struct frag_esc **esc; /* nbesc chains (power of two), nesc entries */
    size_t nbesc, nesc;
    struct kern_val *scratch; /* ncols values for key checks and kern_frag_row */
    uint8_t kbuf[KERN_KEY_MAX];
};

/* Key fits the key layout (decoded into scratch): 0 or NINES_E* detail. */
int frag_key_check(struct kern_frag *f, const void *key, size_t klen);
/* Record (`avail` bytes at r) fits the record layout. */
int frag_rec_check(const struct kern_frag *f, const struct kern_rec *r, size_t avail);

struct frag_txn *frag_txn_find(const struct kern_frag *f, uint64_t txn);
/* Find or add txn (*added set when new; first/last LSN 0). NINES_ENOMEM. */
int frag_txn_get(struct kern_frag *f, uint64_t txn, struct frag_txn **out, int *added);
void frag_txn_remove(struct kern_frag *f, uint64_t txn);

/* ---- escrow (kern_escrow.c) ----
 * Note a pending ADD of `delta` at `lsn` on key for t. With `check`, refuse
 * (NINES_ETOOBIG, nothing changed) when `after` (the column's value with the
 * delta applied) minus every pending positive delta, or plus every pending
 * negative one, leaves [lo, hi]. NINES_ENOMEM. */
int frag_esc_hold(struct kern_frag *f, struct frag_txn *t, const void *key, size_t klen,
                  unsigned column, int64_t after, int64_t delta, int64_t lo, int64_t hi,
                  uint64_t lsn, int check);
/* Forget t's pending ADD at `lsn` (undone); nothing when there is none. */
void frag_esc_drop(struct kern_frag *f, struct frag_txn *t, uint64_t lsn);
/* Forget all of t's pending ADDs (commit, abort). */
void frag_esc_release(struct kern_frag *f, struct frag_txn *t);
void frag_esc_destroy(struct kern_frag *f);

/* ---- ADD helpers (kern_frag_add.c) ----
 * Table column `column` as an incrementable record column: its index in the
 * record layout and its value range. NINES_EINVAL / NINES_ETYPE. */
int frag_add_column(const struct kern_frag *f, unsigned column, unsigned *rcol, int64_t *lo,
                    int64_t *hi);
/* A malloc'd copy of `cur` (flags kept, sid 0) with record column `rcol`
 * += delta (sub = 0) or -= delta (sub = 1); *val = the new value.
 * NINES_ETOOBIG when the result leaves [lo, hi], NINES_EINVAL for NULL. */
int frag_add_image(struct kern_frag *f, const struct kern_rec *cur, unsigned rcol, int64_t delta,
                   int sub, int64_t lo, int64_t hi, struct kern_rec **out, int64_t *val);

/* Role PRIMARY, txn != 0, key (when given) fits the key layout. */
int frag_op_begin(struct kern_frag *f, const char *what, uint64_t txn, const void *key,
                   size_t klen);
/* Log record of a primary operation with the next LSN and state id. */
struct kern_logrec frag_op_rec(struct kern_frag *f, const struct frag_txn *t, unsigned op,
                               const void *key, size_t klen);
/* After the record is published: the chain and the counters move on. */
void frag_op_done(struct kern_frag *f, struct frag_txn *t, uint64_t lsn, uint64_t *out);

/* Encode `r` into the space reserved for it and publish it. */
void frag_log_put(struct kern_frag *f, uint8_t *space, size_t n, const struct kern_logrec *r);

/* Write the COMMIT or ABORT record closing txn's chain and forget txn
 * (nothing when txn has no record here; *lsn = 0 then). */
int frag_end(struct kern_frag *f, uint64_t txn, unsigned op, uint64_t gci, uint64_t *lsn);

#endif
