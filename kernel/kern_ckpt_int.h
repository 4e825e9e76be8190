/* Checkpoint file structures shared by the writer (kern_ckpt.c) and the
 * loader (kern_ckpt_load.c). Format: README "Fuzzy checkpoints". */
#ifndef NINES_KERN_CKPT_INT_H
#define NINES_KERN_CKPT_INT_H

#include "kern_ckpt.h"

#include <stddef.h>
#include <stdint.h>

#define BLK_KIND 0x314b4c42u /* "BLK1" little-endian */
#define END_KIND 0x31444e45u /* "END1" little-endian */
/* A block's entry bytes at most (the writer never crosses a B+tree leaf in
 * a block); a larger header is corrupt, not a reason to buffer it. */
#define KERN_CKPT_BLOCK_MAX (64u << 20)

/* File header (README table). */
struct ck_hdr {
    uint8_t magic[8];
    uint16_t version;
    uint16_t hdr_bytes;
    uint32_t table;
    uint32_t frag;
    uint32_t schema_hash;
    uint32_t ncols;
    uint32_t rsvd0;
    uint64_t redo_start_lsn;
    uint64_t begin_lsn;
    uint64_t created_us;
    uint32_t rsvd1;
    uint32_t hdr_crc; /* CRC-32C of bytes 0..60 */
};
_Static_assert(sizeof(struct ck_hdr) == KERN_CKPT_HDR, "checkpoint header is 64 bytes");
_Static_assert(offsetof(struct ck_hdr, redo_start_lsn) == 32, "redo start at 32");
_Static_assert(offsetof(struct ck_hdr, hdr_crc) == 60, "header CRC at 60");

struct ck_blk {
    uint32_t kind;  /* BLK_KIND */
    uint32_t nrec;  /* entries in the block, >= 1 */
    uint32_t bytes; /* entry bytes following */
};
_Static_assert(sizeof(struct ck_blk) == KERN_CKPT_BLKHDR, "block header is 12 bytes");

struct ck_end {
    uint32_t kind; /* END_KIND */
    uint32_t rsvd0;
    uint64_t records;
    uint64_t next_sid;
    uint32_t rsvd1;
    uint32_t crc; /* CRC-32C of every byte of the file before this field */
};
_Static_assert(sizeof(struct ck_end) == KERN_CKPT_TRAILER, "trailer is 32 bytes");
_Static_assert(offsetof(struct ck_end, crc) == KERN_CKPT_TRAILER - 4, "file CRC last");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint files are little-endian");

#endif
