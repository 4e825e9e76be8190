/* Disk log internals shared by the writer (kern_dlog.c) and the scan
 * (kern_dlog_scan.c): the byte layout of segment headers and entries
 * (kernel/README.md "Disk log" tables), segment names and listing, and the
 * walk over one segment's entries. */
#ifndef NINES_KERN_DLOG_INT_H
#define NINES_KERN_DLOG_INT_H

#include "kern_dlog.h"

#include <stddef.h>
#include <stdint.h>

/* Segment header field offsets. */
enum {
    SH_MAGIC = 0,    /* 8: "NINESDLG" */
    SH_VERSION = 8,  /* 2: KERN_DLOG_VERSION */
    SH_HDRLEN = 10,  /* 2: KERN_DLOG_SEG_HDR */
    SH_NODE = 12,    /* 4 */
    SH_CLUSTER = 16, /* 8 */
    SH_FIRST = 24,   /* 8: position of the first entry */
    SH_CREATED = 32, /* 8: wall clock µs (informational) */
    SH_RSVD = 40,    /* 20: zero */
    SH_CRC = 60,     /* 4: CRC-32C of bytes 0..60 */
};
/* Entry header field offsets. */
enum {
    EH_LEN = 0,    /* 4: entry bytes, header included */
    EH_KIND = 4,   /* 1 */
    EH_RSVD = 5,   /* 3: zero */
    EH_TABLE = 8,  /* 4 */
    EH_FRAG = 12,  /* 4 */
    EH_LSN = 16,   /* 8 */
    EH_RSVD2 = 24, /* 4: zero */
    EH_CRC = 28,   /* 4: CRC-32C of bytes 0..28 and the payload */
};

#define DLOG_MAGIC    "NINESDLG"
#define DLOG_NAME_LEN 24 /* "log-" + 16 hex + ".ndl" */

/* A segment on disk. */
struct dlog_seg {
    uint64_t first; /* position of its first entry (from its name) */
    uint64_t size;  /* file bytes when listed */
};

/* "log-<16 hex>.ndl" of `first` into out[DLOG_NAME_LEN + 1]. */
void dlog_seg_name(uint64_t first, char *out);
/* Segment files of `dir` in position order (*segs malloc'd, the caller
 * frees; *n may be 0). Other files are ignored. NINES_EIO, ENOMEM. */
int dlog_list(const char *dir, struct dlog_seg **segs, unsigned *n);
/* Check the chain: each segment starts where the previous one ends and is
 * at least a header long. NINES_ECORRUPT naming the file, whose index goes
 * to *bad. */
int dlog_check_chain(const struct dlog_seg *s, unsigned n, unsigned *bad);

/* Build a segment header. */
void dlog_seg_header(uint8_t out[KERN_DLOG_SEG_HDR], const struct kern_dlog_opts *o,
                     uint64_t first, uint64_t created_us);
/* Check the header `h` of the segment named `name` (first position
 * `first`) against the log's identity. NINES_ECORRUPT, EVERSION, EINVAL. */
int dlog_seg_check(const uint8_t h[KERN_DLOG_SEG_HDR], const char *name, uint64_t first,
                   const struct kern_dlog_opts *o);

/* Frame an entry header over `payload` (len bytes) into out. */
void dlog_ent_header(uint8_t out[KERN_DLOG_ENT_HDR], uint8_t kind, uint32_t table, uint32_t frag,
                     uint64_t lsn, const uint8_t *payload, uint32_t len);

/* Walk the entries of one segment's bytes buf[0..len) (header included,
 * already checked). Entries whose position is >= `from` go to `cb` (may
 * be NULL). A bad entry in the last segment (`last`) with no valid entry
 * after it is a torn tail: info->torn, *valid is where it starts, 0 is
 * returned. Any other bad entry is NINES_ECORRUPT (info->file/off set).
 * *valid: file offset after the last valid entry. */
int dlog_walk(const uint8_t *buf, size_t len, const char *name, uint64_t first, int last,
              uint64_t from, kern_dlog_cb cb, void *arg, struct kern_dlog_scan_info *info,
              size_t *valid);

#endif
