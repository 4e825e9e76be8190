/* The node's disk log (internal, kernel): a folder of segment files
 * "log-<16 hex first position>.ndl", each a 64-byte header and then
 * entries, every entry one encoded kern_log record of one fragment (or a
 * checkpoint marker) framed with its table, fragment, LSN and a CRC-32C.
 * The writer buffers appended entries and writes them with one write()
 * and one fsync() per flush (group commit); the scan reads every segment
 * in position order and delivers verified entries. Plain blocking POSIX
 * I/O, meant for an I/O thread; a writer is owned by one thread, and a
 * scan runs before the writer opens (recovery). Format tables, crash behaviour:
 * kernel/README.md "Disk log". */
#ifndef NINES_KERN_DLOG_H
#define NINES_KERN_DLOG_H

#include <stddef.h>
#include <stdint.h>

#define KERN_DLOG_VERSION  1
#define KERN_DLOG_SEG_HDR  64u /* segment header bytes */
#define KERN_DLOG_ENT_HDR  32u /* entry header bytes; the payload follows */
#define KERN_DLOG_SEG_DFLT (64u << 20) /* default segment size limit */
#define KERN_DLOG_BUF_DFLT (64u << 20) /* default limit of unflushed bytes */

/* Entry kinds. */
enum kern_dlog_kind {
    KERN_DLOG_REC = 1,  /* payload: one encoded kern_log record of (table, frag, lsn) */
    KERN_DLOG_CKPT = 2, /* a complete checkpoint of (table, frag) whose redo starts at lsn;
                           no payload */
    KERN_DLOG_GAP = 3,  /* gap marker: entries before it were dropped (never written), so the
                           log does not continue across it; table 0, frag 0, lsn = records
                           dropped (>= 1, informational); no payload; always the first entry
                           of its segment (kernel/README.md "Disk log": gaps) */
    KERN_DLOG_KIND_MAX_
};

/* Identity and limits of a log. A segment of another node or cluster is
 * refused (NINES_EINVAL). */
struct kern_dlog_opts {
    uint32_t node;
    uint64_t cluster;    /* cluster identity (any nonzero value the caller keeps) */
    uint64_t seg_bytes;  /* start a new segment once one holds this many (0: default) */
    uint64_t buf_max;    /* unflushed bytes at most; append beyond: NINES_EFULL (0: default;
                            an empty buffer always takes one entry) */
};

/* One delivered entry. `rec` points into the scan's buffer, valid during
 * the callback only. Positions are byte offsets in the log's entry stream
 * (segment headers not counted); `pos` is where the entry starts. */
struct kern_dlog_entry {
    uint64_t pos;
    uint8_t kind; /* enum kern_dlog_kind */
    uint32_t table, frag;
    uint64_t lsn;
    const uint8_t *rec; /* KERN_DLOG_REC: the encoded record; else NULL */
    uint32_t len;
};

/* Counters of a writer (tests and status). */
struct kern_dlog_stats {
    uint64_t appends;       /* entries appended */
    uint64_t flushes;       /* flush calls that wrote something and succeeded */
    uint64_t writes;        /* write()/pwrite() calls for entries */
    uint64_t fsyncs;        /* fsync() calls for entries */
    uint64_t bytes;         /* entry bytes made durable */
    uint64_t flush_errors;  /* flushes that failed (the buffer was kept) */
    uint64_t segs_created;
    uint64_t segs_removed;
    uint64_t torn_bytes;    /* bytes of a torn tail cut off when the log was opened */
    uint64_t discarded;     /* buffered bytes dropped by kern_dlog_discard */
    uint64_t gap_marks;     /* gap markers appended (kern_dlog_mark_gap) */
};

/* Where a scan ended and why. `file` and `off` name the torn tail or the
 * corruption (empty / 0 otherwise). */
struct kern_dlog_scan_info {
    uint64_t end;       /* position after the last valid entry */
    uint64_t entries;   /* entries delivered */
    uint64_t segments;  /* segment files read */
    int torn;           /* 1: the last segment ended in a torn tail (not an error) */
    uint64_t torn_bytes;
    char file[256];     /* segment file name (no folder) */
    uint64_t off;       /* byte offset in that file */
    int gap;            /* 1: the scan stopped at a gap marker (not delivered) at gap_pos */
    uint64_t gap_pos;
};

struct kern_dlog;

/* Open the log in folder `dir` (created if missing) for appending. An
 * empty folder gets its first segment at position 0. An existing log is
 * checked: every segment's header (magic, version, CRC, node, cluster,
 * first position = name) and the chain (each segment starts where the one
 * before ends); the last segment's entries are walked, and a torn tail is
 * cut off (ftruncate + fsync; counted in stats.torn_bytes). Leftover
 * "*.tmp" files are removed. NINES_ECORRUPT / EVERSION / EINVAL (foreign)
 * with a detail naming the file and offset; NINES_EIO; NINES_ENOMEM. */
int kern_dlog_open(const char *dir, const struct kern_dlog_opts *o, struct kern_dlog **out);
/* Close (unflushed entries are dropped). */
void kern_dlog_close(struct kern_dlog *l);

/* Append one record entry to the buffer; *end (may be NULL) gets the
 * position after it (the entry is durable once kern_dlog_durable reaches
 * that). `rec` must be a record as kern_logrec_encode produced it for
 * (table, frag, lsn): its length, table, frag and LSN fields are checked
 * (NINES_EINVAL). NINES_EFULL when the buffer would exceed buf_max (the
 * disk is not keeping up or failing: the caller stops disk logging),
 * NINES_ENOMEM. Nothing is appended on any error. */
int kern_dlog_append(struct kern_dlog *l, uint32_t table, uint32_t frag, uint64_t lsn,
                     const uint8_t *rec, size_t len, uint64_t *end);
/* Append a checkpoint marker: a complete checkpoint of (table, frag) with
 * redo start `redo_lsn` is on disk. Errors as kern_dlog_append. */
int kern_dlog_append_ckpt(struct kern_dlog *l, uint32_t table, uint32_t frag, uint64_t redo_lsn,
                          uint64_t *end);

/* Write the buffer with one write() and one fsync() (a new segment is
 * started first when the current one reached seg_bytes). On success the
 * buffer is empty and kern_dlog_durable() = kern_dlog_end(). On failure
 * (NINES_EFULL for ENOSPC, NINES_EIO otherwise, detail naming the file,
 * offset and bytes) the segment is cut back to its durable length where
 * possible and the buffer is kept whole: a later flush writes it again at
 * the same offset, so nothing is lost or written twice. */
int kern_dlog_flush(struct kern_dlog *l);

/* Drop the unflushed buffer (the caller gave up on those entries: the log
 * now has a gap after kern_dlog_durable, which only a checkpoint can
 * bridge); the next append starts at the durable position. Returns the
 * bytes dropped. */
size_t kern_dlog_discard(struct kern_dlog *l);

/* The caller dropped entries (the disk stayed full or failing past its
 * buffer): discard the unflushed buffer (as kern_dlog_discard) and append a
 * gap marker (KERN_DLOG_GAP, lsn = max(1, dropped)); the next flush starts
 * a new segment with it when the current one holds entries, so a segment
 * never holds entries from both sides of a gap. Called again before that
 * flush succeeded (a retry), the marker is replaced, not doubled. *end
 * (may be NULL): the position after the marker, where the entries
 * appended next go. NINES_ENOMEM. */
int kern_dlog_mark_gap(struct kern_dlog *l, uint64_t dropped, uint64_t *end);

uint64_t kern_dlog_durable(const struct kern_dlog *l); /* position fsync'ed */
uint64_t kern_dlog_end(const struct kern_dlog *l);     /* position after the last append */
size_t kern_dlog_buffered(const struct kern_dlog *l);  /* bytes not yet durable */
uint64_t kern_dlog_first(const struct kern_dlog *l);   /* first position still on disk */
unsigned kern_dlog_segments(const struct kern_dlog *l);
void kern_dlog_get_stats(const struct kern_dlog *l, struct kern_dlog_stats *s);

/* Remove every segment whose entries all lie before `pos` (never the
 * current one), oldest first, then fsync the folder. Returns the number
 * removed or NINES_EIO. The caller decides `pos`: below every fragment's
 * newest checkpoint redo start and what every replica still needs. */
int kern_dlog_trim(struct kern_dlog *l, uint64_t pos);

/* Read the log in `dir` from position `from` on: every segment in
 * position order, headers and chain checked as by open, every entry's CRC
 * and framing checked, entries at or after `from` delivered to `cb` in
 * order. The scan never crosses a gap: a gap marker at or after `from`
 * ends it, not delivered: 0 with info->gap = 1 and info->gap_pos (=
 * info->end) its position — some entries `from` asks for were dropped.
 * The entries after it are read by a scan from gap_pos +
 * KERN_DLOG_ENT_HDR. Only with `from` = 0 (everything on disk) is a gap
 * marker that is the first entry on disk delivered (kind KERN_DLOG_GAP),
 * the scan going on after it. A nonzero return of `cb` stops the scan and is returned. A torn
 * tail of the last segment ends the scan cleanly (info->torn). Returns 0,
 * or NINES_ECORRUPT / EVERSION / EINVAL (foreign segment) / EIO with a
 * detail and info->file, info->off naming where; nothing at or after a
 * bad entry is delivered. `info` may be NULL. */
typedef int (*kern_dlog_cb)(void *arg, const struct kern_dlog_entry *e);
int kern_dlog_scan(const char *dir, const struct kern_dlog_opts *o, uint64_t from,
                   kern_dlog_cb cb, void *arg, struct kern_dlog_scan_info *info);

#endif
