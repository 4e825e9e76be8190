/* Fragment replica internals shared by kern_frag.c (definition, roles,
 * primary operations, transaction table), kern_undo.c, kern_redo.c and
 * kern_ckpt.c. Private to those files. */
#ifndef NINES_KERN_FRAG_INT_H
#define NINES_KERN_FRAG_INT_H

#include "kern_frag.h"

/* One transaction with records in the replica (open-addressing slot;
 * txn 0 marks an empty slot). */
struct frag_txn {
    uint64_t txn;
    uint64_t first_lsn; /* its oldest record here */
    uint64_t last_lsn;  /* head of its undo chain */
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
    struct frag_txn *tx; /* txcap slots, a power of two */
    size_t txcap, ntx;
    struct kern_frag_stats st;
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

/* Encode `r` into the space reserved for it and publish it. */
void frag_log_put(struct kern_frag *f, uint8_t *space, size_t n, const struct kern_logrec *r);

/* Write the COMMIT or ABORT record closing txn's chain and forget txn
 * (nothing when txn has no record here; *lsn = 0 then). */
int frag_end(struct kern_frag *f, uint64_t txn, unsigned op, uint64_t *lsn);

#endif
