/* Variable-length records (internal, kernel): a 16-byte header carrying the
 * record's state identifier, then the encoded column values. Layout table:
 * kernel/README.md "Records". Records are allocated with malloc (jemalloc
 * in the node process) by kern_rec_build/kern_rec_dup and released with
 * kern_rec_free; a B+tree takes ownership of the records it stores. */
#ifndef NINES_KERN_REC_H
#define NINES_KERN_REC_H

#include "kern_val.h"

#include <stddef.h>
#include <stdint.h>

#define KERN_REC_VERSION 1
#define KERN_REC_MAX (1u << 20) /* largest body, bytes */

struct kern_rec {
    uint64_t sid;    /* state identifier: per-record sequence number from the primary */
    uint32_t len;    /* body bytes following the header */
    uint8_t version; /* KERN_REC_VERSION */
    uint8_t flags;   /* caller-defined bits, carried verbatim */
    uint16_t ncols;  /* columns encoded in the body */
    uint8_t body[];
};

/* Total bytes of a record (header + body). */
static inline size_t kern_rec_bytes(const struct kern_rec *r)
{
    return sizeof *r + r->len;
}

/* Body length `vals` would encode to; NINES_E* for a value that does not
 * fit its column or a body over KERN_REC_MAX. */
int kern_rec_body_size(const struct kern_col *cols, unsigned ncols, const struct kern_val *vals,
                       size_t *body_len);

/* Build a record of `vals` with state id `sid` (malloc'd into *out). */
int kern_rec_build(const struct kern_col *cols, unsigned ncols, const struct kern_val *vals,
                   uint64_t sid, struct kern_rec **out);

/* Validate `r` (`avail` bytes readable at r) against the layout: version,
 * column count, every value's length, no trailing bytes. Use on bytes from
 * disk or the network before trusting them. NINES_ECORRUPT / NINES_ETRUNC /
 * NINES_EVERSION with a detail. */
int kern_rec_check(const struct kern_rec *r, size_t avail, const struct kern_col *cols,
                   unsigned ncols);

/* Decode all columns; strings point into the record. Validates as
 * kern_rec_check does (with avail = kern_rec_bytes(r)). */
int kern_rec_decode(const struct kern_rec *r, const struct kern_col *cols, unsigned ncols,
                    struct kern_val *vals);

/* Decode column `idx` only. */
int kern_rec_col(const struct kern_rec *r, const struct kern_col *cols, unsigned ncols,
                 unsigned idx, struct kern_val *v);

/* A malloc'd copy of `r` (NULL when out of memory). */
struct kern_rec *kern_rec_dup(const struct kern_rec *r);

void kern_rec_free(struct kern_rec *r);

#endif
