/* Logical log records of a fragment and the fragment's in-memory log
 * (internal, kernel). A log record names its record by primary key and
 * carries before/after images and the new state identifier; undo writes
 * compensation log records (CLRs). Wire/disk format, undo walk and CLR
 * rule: kernel/README.md "Log records and CLRs". */
#ifndef NINES_KERN_LOG_H
#define NINES_KERN_LOG_H

#include <stddef.h>
#include <stdint.h>

#define KERN_LOG_VERSION 1
#define KERN_LOG_HDR     80u /* fixed header bytes; key and images follow */
/* Largest encoded record: header, longest key, two largest records. */
#define KERN_LOG_MAX (KERN_LOG_HDR + 2048u + 2u * (16u + (1u << 20)))

/* Operation of a log record. The CLR_* kinds are what the CLR redoes. */
enum kern_log_op {
    KERN_LOG_INSERT = 1,     /* after image */
    KERN_LOG_UPDATE = 2,     /* before and after image */
    KERN_LOG_DELETE = 3,     /* before image */
    KERN_LOG_CLR_INSERT = 4, /* undo of a delete: re-insert (after image) */
    KERN_LOG_CLR_UPDATE = 5, /* undo of an update: restore (after image) */
    KERN_LOG_CLR_DELETE = 6, /* undo of an insert: remove (no image) */
    KERN_LOG_COMMIT = 7,     /* transaction committed in this fragment */
    KERN_LOG_ABORT = 8,      /* transaction fully rolled back in this fragment */
    KERN_LOG_ADD = 9,        /* column += delta: before and after image, column, delta;
                                undone logically (a CLR_UPDATE of the record as it is
                                then, with column -= delta) */
    KERN_LOG_OP_MAX_
};

/* A decoded log record. Key and images point into the bytes decoded (or
 * the caller's memory when encoding). An image is a whole record as
 * kern_rec.h lays it out (16-byte header incl. its sid, then the body);
 * it may be unaligned, so copy it before using it as a struct kern_rec. */
struct kern_logrec {
    uint64_t lsn;           /* position in the fragment's log stream, from 1 */
    uint64_t txn;           /* transaction id (nonzero) */
    uint64_t sid;           /* state id the record gets (0 for COMMIT/ABORT) */
    uint64_t prev_lsn;      /* txn's previous record in this fragment (0: none) */
    uint64_t undo_next_lsn; /* CLR: the next record of the txn to undo (0: none) */
    uint64_t comp_lsn;      /* CLR: the record it compensates; else 0 */
    uint32_t table;
    uint32_t frag;
    uint8_t op; /* enum kern_log_op */
    const uint8_t *key;
    uint32_t klen;
    const uint8_t *before; /* previous record (UPDATE, DELETE, ADD) */
    uint32_t blen;
    const uint8_t *after; /* new record (INSERT, UPDATE, ADD, CLR_INSERT, CLR_UPDATE) */
    uint32_t alen;
    uint32_t column; /* ADD: the table column incremented; else 0 */
    int64_t delta;   /* ADD: the increment; else 0 */
    uint64_t gci;    /* COMMIT: the decision's commit epoch (0: none stamped); else 0 */
};

static inline int kern_log_op_is_clr(unsigned op)
{
    return op == KERN_LOG_CLR_INSERT || op == KERN_LOG_CLR_UPDATE || op == KERN_LOG_CLR_DELETE;
}

const char *kern_log_op_name(unsigned op);

/* Encoded size of `r` (KERN_LOG_HDR + klen + blen + alen). */
size_t kern_logrec_size(const struct kern_logrec *r);

/* Structural rules of `r` (README): the fields its op requires and no
 * others, LSN order of its links, image headers. 0 or NINES_EINVAL /
 * NINES_ETOOBIG with a detail. */
int kern_logrec_check(const struct kern_logrec *r);

/* Encode `r` into out[0..cap). Returns the size, or NINES_EINVAL /
 * NINES_ETOOBIG (detail) when `r` is not a well-formed record of its kind
 * or does not fit. Encoding is deterministic: decode + encode gives the
 * same bytes. */
int kern_logrec_encode(const struct kern_logrec *r, uint8_t *out, size_t cap);

/* Decode and validate the record at buf[0..avail): length, CRC-32C,
 * version, the fields its op requires, image headers. Returns the bytes
 * consumed (the record's length) or NINES_ETRUNC (fewer bytes than the
 * record needs), NINES_ECORRUPT, NINES_EVERSION, each with a detail. Never
 * reads outside buf[0..avail). `out` points into buf. Images are checked
 * against the record header layout only; the fragment checks them against
 * its columns. */
int kern_logrec_decode(const uint8_t *buf, size_t avail, struct kern_logrec *out);

/* ---- the in-memory log of one fragment replica ----
 *
 * Encoded records in LSN order, kept in segments (KERN_LOG_SEG bytes, or
 * one record's size when larger). Appending is a two-step reserve/publish
 * so that a fragment can reserve the space before it changes its tree and
 * publish after, with nothing left to fail in between. Owned by the
 * fragment's executor thread, like the tree. */

#define KERN_LOG_SEG (256u * 1024u)

struct kern_log;

int kern_log_create(uint64_t first_lsn, struct kern_log **out);
void kern_log_destroy(struct kern_log *l);

/* LSN the next published record gets. */
uint64_t kern_log_next_lsn(const struct kern_log *l);
/* Oldest LSN still readable (== next when the log is empty). */
uint64_t kern_log_first_lsn(const struct kern_log *l);
/* Records and encoded bytes held. */
uint64_t kern_log_count(const struct kern_log *l);
size_t kern_log_bytes(const struct kern_log *l);

/* Restart an empty log at `next_lsn` (after a checkpoint load).
 * NINES_ESTATE when records are present. */
int kern_log_reset(struct kern_log *l, uint64_t next_lsn);

/* Space for one record of `len` bytes at the end of the log; the pointer
 * stays valid until the next reserve or publish. NINES_ENOMEM / ETOOBIG.
 * An unpublished reservation costs nothing and is simply reused. */
int kern_log_reserve(struct kern_log *l, size_t len, uint8_t **p);
/* Publish the reserved record (its encoded LSN must be kern_log_next_lsn;
 * `len` at most the reserved size). Cannot fail. */
void kern_log_publish(struct kern_log *l, size_t len);

/* A sink sees every record as it is published (after it is in the log),
 * in LSN order: its encoded bytes, valid during the call only. It cannot
 * fail the publish; it runs on the log's executor thread. The node's disk
 * log is fed this way (kernel/svc/README.md "Disk logging"). fn NULL: none. */
typedef void (*kern_log_sink_fn)(void *ctx, const uint8_t *rec, size_t len);
void kern_log_set_sink(struct kern_log *l, kern_log_sink_fn fn, void *ctx);

/* Encode and append `r` (whose lsn must be kern_log_next_lsn). */
int kern_log_append(struct kern_log *l, const struct kern_logrec *r);

/* Encoded bytes of record `lsn`. NINES_ENOTFOUND beyond the end,
 * NINES_ESTALE below the first kept LSN (truncated). The bytes stay valid
 * until that record is truncated. */
int kern_log_get(const struct kern_log *l, uint64_t lsn, const uint8_t **p, size_t *len);

/* Decoded record `lsn` (kern_log_get + kern_logrec_decode). */
int kern_log_read(const struct kern_log *l, uint64_t lsn, struct kern_logrec *r);

/* Free every whole segment whose records all lie below `below`; returns
 * the records freed. Truncation is by segment, so kern_log_first_lsn may
 * stay below `below`. The last segment is always kept. */
uint64_t kern_log_truncate(struct kern_log *l, uint64_t below);

/* Read records from an LSN onward (the update channel ships them from
 * here). Not sticky at the end: records published later are returned by
 * later calls. */
struct kern_log_cursor {
    const struct kern_log *log;
    uint64_t lsn; /* next record to return */
};

void kern_log_cursor_init(struct kern_log_cursor *c, const struct kern_log *l, uint64_t from_lsn);
/* Next record's bytes: 0, NINES_ENOTFOUND at the end, NINES_ESTALE when
 * the cursor's LSN was truncated away. */
int kern_log_cursor_next(struct kern_log_cursor *c, const uint8_t **p, size_t *len);

#endif
