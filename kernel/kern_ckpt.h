/* Fuzzy checkpoints of a fragment replica (internal, kernel): the writer
 * scans the tree in small resumable steps between other work on the same
 * executor and produces the file's bytes; plain file functions (for an
 * I/O thread) write them as temp file + fsync + rename + directory fsync;
 * the loader validates a whole file into a fresh tree before handing it to
 * an empty replica. Algorithm, file format, crash behaviour:
 * kernel/README.md "Fuzzy checkpoints". */
#ifndef NINES_KERN_CKPT_H
#define NINES_KERN_CKPT_H

#include "kern_frag.h"

#include <stddef.h>
#include <stdint.h>

#define KERN_CKPT_VERSION 1
#define KERN_CKPT_HDR     64u /* file header bytes */
#define KERN_CKPT_BLKHDR  12u /* record block header bytes */
#define KERN_CKPT_ENTHDR  6u  /* per-record entry header bytes */
#define KERN_CKPT_TRAILER 32u /* trailer bytes */

struct kern_ckpt_info {
    uint32_t table, frag;
    uint32_t schema_hash;
    uint32_t ncols;
    uint64_t redo_start_lsn; /* replay the log from here after loading */
    uint64_t begin_lsn;      /* the log's next LSN when the checkpoint began */
    uint64_t created_us;     /* wall clock, microseconds since the Unix epoch */
    uint64_t records;        /* trailer (0 until the writer finished) */
    uint64_t next_sid;       /* replica's state-id counter at the end (trailer) */
};

struct kern_ckpt;

/* Start a checkpoint of `f` (any role): fixes the redo start and writes
 * the header into the pending output. The replica must outlive the
 * checkpoint and must not be loaded into meanwhile. */
int kern_ckpt_begin(struct kern_frag *f, struct kern_ckpt **out);

/* Write at most `max_records` records (>= 1), never crossing from one
 * B+tree leaf into the next within a step, into the pending output.
 * Returns 1 while records remain, 0 when the scan finished and the
 * trailer was written (further calls return 0). */
int kern_ckpt_step(struct kern_ckpt *ck, unsigned max_records);

/* Bytes produced and not yet taken. */
size_t kern_ckpt_pending(const struct kern_ckpt *ck);

/* Hand the pending bytes over (malloc'd; the taker frees them): *buf NULL
 * and *len 0 when nothing is pending. NINES_ENOMEM. */
int kern_ckpt_take(struct kern_ckpt *ck, uint8_t **buf, size_t *len);

void kern_ckpt_get_info(const struct kern_ckpt *ck, struct kern_ckpt_info *info);
void kern_ckpt_free(struct kern_ckpt *ck);

/* Validate the header of a checkpoint file (first `len` bytes). */
int kern_ckpt_header(const uint8_t *buf, size_t len, struct kern_ckpt_info *info);

/* Validate the complete file buf[0..len) and load it into `f`, which must
 * be an empty HOT_STANDBY replica of the same table, fragment and schema
 * with an empty log. The records go into a fresh tree that replaces f's
 * only when everything validated; then f's log restarts at the redo start
 * LSN and its state-id counter is the trailer's. Errors (f unchanged):
 * NINES_ETRUNC, NINES_ECORRUPT, NINES_EVERSION with a detail (offset),
 * NINES_EINVAL for another fragment/schema, NINES_ESTATE for a replica that
 * is not empty, NINES_ENOMEM. */
int kern_ckpt_load(struct kern_frag *f, const uint8_t *buf, size_t len,
                   struct kern_ckpt_info *info);

/* The same validation, incrementally: bytes fed in order, in pieces of any
 * size (a copy arriving in chunks: kernel/svc/README.md "Rebuild"), parsed
 * as whole blocks arrive into a fresh tree; `end` checks the trailer, the
 * whole-file CRC and the counts and only then gives the tree to `f` (an
 * empty HOT_STANDBY replica of the same table, fragment and schema, as
 * for kern_ckpt_load). Errors as kern_ckpt_load's, at the feed or the end
 * where they are found; after an error only free. Memory: the fresh tree
 * and at most one block's bytes. */
struct kern_ckpt_loader;
int kern_ckpt_loader_begin(struct kern_frag *f, struct kern_ckpt_loader **out);
int kern_ckpt_loader_feed(struct kern_ckpt_loader *l, const uint8_t *buf, size_t len);
int kern_ckpt_loader_end(struct kern_ckpt_loader *l, struct kern_ckpt_info *info);
uint64_t kern_ckpt_loader_records(const struct kern_ckpt_loader *l); /* loaded so far */
void kern_ckpt_loader_free(struct kern_ckpt_loader *l);

/* ---- file I/O: plain blocking functions for an I/O thread ----
 * A checkpoint is written to "<path>.tmp" and renamed to `path` only after
 * it is complete and fsync'ed. */

/* Create (truncate) "<path>.tmp" for writing. NINES_EIO / ESYS detail. */
int kern_ckpt_file_create(const char *path, int *fd);
/* Write all of buf (retrying short writes and EINTR). */
int kern_ckpt_file_write(int fd, const void *buf, size_t len);
/* fsync and close fd, rename "<path>.tmp" to `path`, fsync the directory. */
int kern_ckpt_file_finish(int fd, const char *path);
/* Close fd and remove "<path>.tmp" (an abandoned checkpoint). */
void kern_ckpt_file_discard(int fd, const char *path);
/* Read a whole file (malloc'd into *buf). */
int kern_ckpt_file_read(const char *path, uint8_t **buf, size_t *len);

#endif
