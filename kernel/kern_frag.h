/* Fragment replicas (internal, kernel): one copy of one fragment of a
 * table on this node — its B+tree, its role (primary or hot standby), its
 * state-identifier counter, its in-memory log and the undo chains of the
 * transactions with records in it. Owned by one executor thread; nothing
 * here takes locks (record locks are the caller's business, through
 * kern_lock.h). kernel/README.md "Fragment replicas", "Log records and
 * CLRs", "Redo and state identifiers". */
#ifndef NINES_KERN_FRAG_H
#define NINES_KERN_FRAG_H

#include "kern_btree.h"
#include "kern_log.h"

#include <stddef.h>
#include <stdint.h>

/* Role of a replica. Transitions (kern_frag_set_role):
 *   HOT_STANDBY -> PROMOTING   takeover begins; redo of pending records continues
 *   PROMOTING   -> PRIMARY     pending redo done; operations allowed
 *   PROMOTING   -> HOT_STANDBY promotion called off
 *   PRIMARY     -> HOT_STANDBY takeback / demotion, only with no active transaction
 * Anything else is NINES_ESTATE. */
enum kern_frag_role {
    KERN_FRAG_PRIMARY = 1,
    KERN_FRAG_HOT_STANDBY = 2,
    KERN_FRAG_PROMOTING = 3,
};

const char *kern_frag_role_name(int role);

/* A fragment's definition. Records hold the non-key columns in column
 * order; the key is the encoding of the pk columns in pk order. */
struct kern_frag_def {
    uint32_t table;
    uint32_t frag;
    const struct kern_col *cols; /* every column of the table */
    unsigned ncols;
    const uint16_t *pk; /* primary-key column indexes, in key order */
    unsigned npk;
};

struct kern_frag_stats {
    uint64_t ops;          /* insert/update/delete/add executed (primary) */
    uint64_t clrs;         /* CLRs written (primary) */
    uint64_t redo_applied; /* redone records that changed the tree */
    uint64_t redo_nochange;/* redone records whose state the tree had already reached */
    uint64_t redo_dup;     /* records at or below the log's end: skipped whole */
};

struct kern_frag;

/* Create an empty replica (role PRIMARY or HOT_STANDBY; log from LSN 1).
 * NINES_EINVAL naming the column for a bad definition. */
int kern_frag_create(const struct kern_frag_def *d, int role, struct kern_frag **out);
void kern_frag_destroy(struct kern_frag *f);
/* The same a slice at a time (kern_bt_destroy_step: `budget` records per
 * call; the rest — log, escrow, tables — with the last call). 1 while more
 * remains, 0 when f is gone. Once started, f must not be used any more. */
int kern_frag_destroy_step(struct kern_frag *f, size_t budget);

int kern_frag_role(const struct kern_frag *f);
int kern_frag_set_role(struct kern_frag *f, int to);

uint32_t kern_frag_table(const struct kern_frag *f);
uint32_t kern_frag_id(const struct kern_frag *f);
/* CRC-32C of the column and key definitions (checkpoint files carry it). */
uint32_t kern_frag_schema_hash(const struct kern_frag *f);
unsigned kern_frag_ncols(const struct kern_frag *f);
const struct kern_col *kern_frag_rec_cols(const struct kern_frag *f, unsigned *n);
const struct kern_col *kern_frag_key_cols(const struct kern_frag *f, unsigned *n);
struct kern_bt *kern_frag_tree(const struct kern_frag *f);
struct kern_log *kern_frag_log(const struct kern_frag *f);
/* The state id the next change gets (every id below it has been used). */
uint64_t kern_frag_next_sid(const struct kern_frag *f);
void kern_frag_stats(const struct kern_frag *f, struct kern_frag_stats *s);

/* Split a full row (one value per column) into its encoded key (into
 * key[0..cap)) and a record of the non-key columns (malloc'd, sid 0). */
int kern_frag_row(const struct kern_frag *f, const struct kern_val *row, uint8_t *key,
                  size_t cap, size_t *klen, struct kern_rec **rec);

/* Record under `key` (owned by the replica) or NINES_ENOTFOUND. */
int kern_frag_get(const struct kern_frag *f, const void *key, size_t klen,
                  const struct kern_rec **rec);

/* ---- primary: record operations (each writes one log record) ----
 * The caller holds the record's exclusive lock for txn (strict 2PL). On
 * success the replica owns `rec` and has set rec->sid to the new state id;
 * *lsn (may be NULL) is the log record's LSN. On failure nothing changed
 * and the caller keeps `rec`. NINES_ENOTPRIMARY unless the role is
 * PRIMARY; NINES_EEXIST / NINES_ENOTFOUND for the key; key or record not
 * matching the layout: NINES_EINVAL / ECORRUPT / ETYPE with a detail. */
int kern_frag_insert(struct kern_frag *f, uint64_t txn, const void *key, size_t klen,
                     struct kern_rec *rec, uint64_t *lsn);
int kern_frag_update(struct kern_frag *f, uint64_t txn, const void *key, size_t klen,
                     struct kern_rec *rec, uint64_t *lsn);
int kern_frag_delete(struct kern_frag *f, uint64_t txn, const void *key, size_t klen,
                     uint64_t *lsn);
/* Increment: table column `column` (a non-key int32 or int64 column) of the
 * record under key += delta, logged as an ADD record (before and after
 * image, column, delta) and undone logically: the CLR subtracts delta from
 * the record as it is at undo time, so increments of other transactions
 * made meanwhile (under INC locks, README "Escrow bounds") survive. The
 * caller holds the record's INC or X lock. NINES_ENOTFOUND for an absent
 * key; NINES_EINVAL for a key column, a column out of range or a NULL
 * value; NINES_ETYPE for a non-integer column; NINES_ETOOBIG when the sum
 * overflows the column's type, or when undoing pending increments of other
 * transactions could (escrow bound); nothing changed on any error. The new
 * record is kern_frag_get's afterwards. */
int kern_frag_add(struct kern_frag *f, uint64_t txn, const void *key, size_t klen,
                  unsigned column, int64_t delta, uint64_t *lsn);

/* Commit: write a COMMIT record and forget txn's undo chain. *lsn = 0 and
 * nothing written when txn has no record here. */
int kern_frag_commit(struct kern_frag *f, uint64_t txn, uint64_t *lsn);
/* The same, the COMMIT record carrying the decision's commit epoch `gci`
 * (README "Log records and CLRs"; 0: none stamped, as kern_frag_commit). */
int kern_frag_commit_gci(struct kern_frag *f, uint64_t txn, uint64_t gci, uint64_t *lsn);
/* The highest commit epoch of a COMMIT record this replica wrote or redid
 * (0: none; a replica loaded from a checkpoint starts at 0). */
uint64_t kern_frag_max_gci(const struct kern_frag *f);
/* A replica loaded from a copy holds commits of epochs up to `gci`. */
void kern_frag_note_gci(struct kern_frag *f, uint64_t gci);

/* Undo txn's records with LSN > to_lsn, newest first, writing one CLR per
 * record not yet compensated (README "Undo walk"). to_lsn = 0: all of
 * them; a savepoint is the kern_frag_txn_last_lsn taken earlier. Returns
 * the CLRs written (0 when everything was already compensated). The chain
 * stays: the transaction goes on or is aborted. */
int kern_frag_rollback(struct kern_frag *f, uint64_t txn, uint64_t to_lsn);
/* Recovery (kernel/svc/README.md "Whole-cluster restart"): open again, on a
 * PRIMARY, a transaction that ended here with a COMMIT record at `last_lsn`
 * + 1 or later whose commit a restart does not keep, its undo chain headed
 * by `last_lsn` (the COMMIT record's prev_lsn), so kern_frag_abort undoes
 * it. NINES_EEXIST when it is open, NINES_EINVAL for an LSN outside the log. */
int kern_frag_reopen(struct kern_frag *f, uint64_t txn, uint64_t last_lsn);

/* Abort: roll back everything, write an ABORT record, forget txn.
 * *lsn (may be NULL) = the ABORT record's LSN, 0 when txn had no record. */
int kern_frag_abort(struct kern_frag *f, uint64_t txn, uint64_t *lsn);

/* Last LSN of txn's chain here (a savepoint for kern_frag_rollback), 0
 * when txn has no record in this replica. */
uint64_t kern_frag_txn_last_lsn(const struct kern_frag *f, uint64_t txn);
/* Transactions with records here and no COMMIT/ABORT yet. On a promoted
 * standby these are the in-doubt ones the controller must resolve.
 * Fills up to `cap` ids, returns the total. */
size_t kern_frag_txns(const struct kern_frag *f, uint64_t *txns, size_t cap);
/* Lowest LSN an active transaction's undo may need (next LSN when none). */
uint64_t kern_frag_undo_floor(const struct kern_frag *f);

/* Drop log records below `below` (whole segments). NINES_ESTATE (naming
 * the transaction) when that would cut an active transaction's chain. The
 * caller also ensures a checkpoint with redo start >= below exists and
 * every standby has the records. Returns the records freed. */
int64_t kern_frag_log_truncate(struct kern_frag *f, uint64_t below);
/* Drop the records nobody needs any more: below min(keep_below, the undo
 * floor of the open transactions). keep_below is what the caller still
 * needs (primary: the first record its hot standby has not acknowledged).
 * Whole segments only; returns the records freed (0 when none). */
int64_t kern_frag_log_trim(struct kern_frag *f, uint64_t keep_below);
/* Pin the log: kern_frag_log_trim keeps every record at or above `lsn`
 * from now on (0 removes the pin). A fuzzy copy being sent to a replica
 * being rebuilt pins its redo start (kernel/svc/README.md "Rebuild"). */
void kern_frag_log_pin(struct kern_frag *f, uint64_t lsn);
uint64_t kern_frag_log_pinned(const struct kern_frag *f);

/* ---- hot standby: redo (README "Redo and state identifiers") ----
 * Apply a record of this fragment's log, in the primary's log order, and
 * keep it in this replica's log. Returns 1 when the tree changed, 0 when
 * it did not (a duplicate or older LSN is skipped whole; a record whose
 * state the tree already has changes nothing). NINES_ESTATE for a primary
 * or for a gap (LSN beyond the next expected one: nothing applied);
 * NINES_EINVAL for another table/fragment; NINES_ECORRUPT when key or
 * image do not fit the layout; NINES_ENOMEM (nothing applied). */
int kern_frag_redo(struct kern_frag *f, const struct kern_logrec *r);
/* Decode buf[0..len) (one record) and redo it. */
int kern_frag_redo_bytes(struct kern_frag *f, const uint8_t *buf, size_t len);

#endif
