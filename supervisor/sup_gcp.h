/* Commit epochs — global checkpoints (internal, supervisor):
 * supervisor/README.md "Global checkpoints".
 *
 * sup_gcp.c: the node-set coordinator's rounds, a pure state machine like
 * sup_tb.c (no sockets, no clock; outputs through struct sup_gcp_ops): stop
 * stamping everywhere (GCP_PREPARE), switch every txctl to a new epoch g
 * (GCP_COMMIT), make every member's disk log durable (GCP_SAVE), declare
 * g - 1 restorable (GCP_SAVED_ORD).
 *
 * sup_gcp_file.c: the restorable file DIR/gcp.ncg (format table below and
 * in the README), and its writer on the I/O thread. */
#ifndef NINES_SUP_GCP_H
#define NINES_SUP_GCP_H
#include "nines_txn.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUP_GCP_JUMP ((uint64_t)1 << 20) /* the first epoch after a whole-cluster restart
                                          * is this far above every one persisted */
#define SUP_GCP_HOLD_MIN_MS 50           /* PREPARE's hold_ms at least (10 x heartbeat) */
#define SUP_GCP_COMMIT_EXTRA_MS 1000     /* COMMIT_CONF bound: txn_timeout_ms + this */
#define SUP_GCP_SYNC_MIN_US 1000         /* sync, back to back: rounds start at most this
                                          * often (a one-member set's rounds are all local
                                          * and would otherwise spin) */

/* ---- the round (sup_gcp.c) ---------------------------------------------- */

struct sup_gcp_config {
    uint32_t self;
    bool on;                /* disk_log async|sync and gcp_interval_ms > 0 */
    bool sync;              /* disk_log sync: rounds back to back */
    uint64_t interval_us;   /* gcp_interval_ms: from the end of a round to the next */
    uint32_t hold_ms;       /* sent in GCP_PREPARE_REQ: a txctl stops stamping at most this */
    uint64_t answer_us;     /* PREPARE_CONF / SAVE_CONF from every member within this */
    uint64_t commit_us;     /* COMMIT_CONF from every member within this */
    uint64_t persisted;     /* this process read a persisted restorable gci at start (0: none) */
};

/* What the coordinator needs of the installed node set. */
struct sup_gcp_view {
    uint64_t epoch;         /* 0: none installed */
    uint64_t members;       /* bit (id - 1) */
    uint32_t coordinator;
    bool serving;           /* this node serves (its lease holds) */
    uint64_t restart_gci;   /* NodeSet.restart_gci of the installed set (0: not a restart set) */
};

struct sup_gcp_ops {
    /* to node `to`'s txctl (GCP_PREPARE_REQ, GCP_COMMIT_REQ), kernel service
     * (GCP_SAVE_REQ) or supervisor (GCP_SAVED_ORD); this node: locally */
    void (*prepare)(void *ctx, uint32_t to, const Nines__GcpPrepareReq *q);
    void (*commit)(void *ctx, uint32_t to, const Nines__GcpCommitReq *q);
    void (*save)(void *ctx, uint32_t to, const Nines__GcpSaveReq *q);
    void (*saved)(void *ctx, uint32_t to, const Nines__GcpSavedOrd *o);
    uint64_t (*wall_us)(void *ctx); /* the wall clock (GcpSavedOrd.wall_us) */
};

/* The round, an explicit state machine. */
enum sup_gcp_phase {
    SUP_GCP_IDLE = 0,       /* no round (waiting for the interval, or not the coordinator) */
    SUP_GCP_PREPARING,      /* GCP_PREPARE_REQ sent: collecting every member's PREPARE_CONF */
    SUP_GCP_COMMITTING,     /* GCP_COMMIT_REQ(g) sent: collecting COMMIT_CONF */
    SUP_GCP_SAVING,         /* GCP_SAVE_REQ(g - 1) sent: collecting SAVE_CONF */
};
const char *sup_gcp_phase_name(enum sup_gcp_phase p);

struct sup_gcp_stats {
    uint64_t rounds;        /* rounds started */
    uint64_t done;          /* rounds that ended with GCP_SAVED_ORD (or switched epoch 1) */
    uint64_t failed;        /* rounds that failed or were aborted */
    uint64_t last_us;       /* the last successful round's duration */
    uint64_t restorable;    /* the last restorable gci this coordinator declared */
    uint64_t restorable_wall_us; /* ... and its wall_us */
    char last_why[256];     /* the last failure ("" none) */
};

struct sup_gcp {
    struct sup_gcp_config cfg;
    const struct sup_gcp_ops *ops;
    void *ctx;
    enum sup_gcp_phase phase;
    uint64_t round;         /* counts up, one per round started */
    uint64_t epoch;         /* the node set of the round */
    uint64_t asked, answered; /* members asked in this phase; those that answered */
    uint64_t gmax;          /* PREPARING: max gci answered (and known) */
    uint64_t g;             /* COMMITTING / SAVING: the new epoch */
    uint64_t wall_us;       /* SAVING: wall clock when the last COMMIT_CONF came */
    uint64_t started_us, deadline_us;
    uint64_t next_us;       /* IDLE: no round before this */
    uint64_t known;         /* the highest gci seen (answers, SAVED_ORD, sent) */
    uint64_t restart_seen;  /* the restart_gci already taken into `known` */
    bool base_done;         /* the persisted gci was taken into `known` */
    uint64_t last_epoch;    /* the epoch sup_gcp_step saw last */
    uint32_t prev_coord;    /* the coordinator of the set seen before (0: none yet) */
    bool take_over;         /* this node took coordination over from another: the next
                             * round's epoch jumps by SUP_GCP_JUMP */
    uint32_t burst;         /* failures in a row (logged once per burst) */
    struct sup_gcp_stats stats;
};

void sup_gcp_init(struct sup_gcp *g, const struct sup_gcp_config *cfg,
                  const struct sup_gcp_ops *ops, void *ctx);
/* Time passes or the node set changed (call after every input). */
void sup_gcp_step(struct sup_gcp *g, const struct sup_gcp_view *v, uint64_t now);
void sup_gcp_on_prepare_conf(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                             const Nines__GcpPrepareConf *c, uint64_t now);
void sup_gcp_on_commit_conf(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                            const Nines__GcpCommitConf *c, uint64_t now);
void sup_gcp_on_commit_ref(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                           const Nines__GcpCommitRef *r, uint64_t now);
void sup_gcp_on_save_conf(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                          const Nines__GcpSaveConf *c, uint64_t now);
void sup_gcp_on_save_ref(struct sup_gcp *g, const struct sup_gcp_view *v, uint32_t from,
                         const Nines__GcpSaveRef *r, uint64_t now);
/* A GCP_SAVED_ORD seen by this node (another coordinator's): known = max. */
void sup_gcp_saw(struct sup_gcp *g, uint64_t gci);
/* The earliest time sup_gcp_step has something to do (0: nothing pending). */
uint64_t sup_gcp_deadline(const struct sup_gcp *g, const struct sup_gcp_view *v);

/* ---- the restorable file (sup_gcp_file.c) ---------------------------------
 * DIR/gcp.ncg, version 1, little-endian, 64 bytes:
 *   off size field
 *    0   8   magic "NINESGCP"
 *    8   2   version 1
 *   10   2   bytes 64
 *   12   4   node
 *   16   8   cluster id (FNV-1a 64 of the cluster name, as the disk log)
 *   24   8   restorable gci
 *   32   8   wall_us of that epoch (GcpSavedOrd.wall_us)
 *   40   8   written_us (wall clock of the write)
 *   48   8   seq (counts the writes of this file)
 *   56   4   reserved 0
 *   60   4   CRC-32C of bytes 0..60 */
#define SUP_GCP_FILE_NAME "gcp.ncg"
#define SUP_GCP_FILE_MAGIC "NINESGCP"
#define SUP_GCP_FILE_VERSION 1
#define SUP_GCP_FILE_BYTES 64     /* one record */
#define SUP_GCP_SLOT_BYTES 512    /* the file: two slots, each a record at its start (a
                                   * write touches one sector only) */
#define SUP_GCP_SLOTS_FILE (2 * SUP_GCP_SLOT_BYTES)
enum {
    SUP_GCP_OFF_MAGIC = 0,
    SUP_GCP_OFF_VERSION = 8,
    SUP_GCP_OFF_BYTES = 10,
    SUP_GCP_OFF_NODE = 12,
    SUP_GCP_OFF_CLUSTER = 16,
    SUP_GCP_OFF_GCI = 24,
    SUP_GCP_OFF_WALL = 32,
    SUP_GCP_OFF_WRITTEN = 40,
    SUP_GCP_OFF_SEQ = 48,
    SUP_GCP_OFF_RESERVED = 56,
    SUP_GCP_OFF_CRC = 60,
};

struct sup_gcp_file {
    uint64_t gci, wall_us, written_us, seq;
};
int sup_gcp_file_encode(const struct sup_gcp_file *f, uint32_t node, uint64_t cluster,
                        uint8_t out[SUP_GCP_FILE_BYTES]);
/* 0, or NINES_ETRUNC (short), NINES_ECORRUPT (magic, size, CRC, reserved),
 * NINES_EVERSION, NINES_EINVAL (another node's or cluster's), with detail. */
int sup_gcp_file_decode(const uint8_t *buf, size_t len, uint32_t node, uint64_t cluster,
                        struct sup_gcp_file *out);
/* The file is two 512-byte slots (1024 bytes), each holding a record at
 * its start; the newest valid one (highest seq) is the file's value, so a
 * write torn in one slot leaves the other. A 64-byte file (one record, the
 * first format) is read too. NINES_ENOTFOUND: none; NINES_ETRUNC (another
 * size), the decode errors when no slot is valid, NINES_EIO; with detail. */
int sup_gcp_file_read(const char *path, uint32_t node, uint64_t cluster,
                      struct sup_gcp_file *out);
/* Write f to `path` now: its record into slot seq % 2 and one fdatasync
 * (the file is made once by temp, fsync, rename, folder fsync): the I/O
 * thread's work, exposed for tests. 0 or NINES_EIO / NINES_EFULL /
 * NINES_EINVAL. */
int sup_gcp_file_write(const char *path, const struct sup_gcp_file *f, uint32_t node,
                       uint64_t cluster);
#endif
