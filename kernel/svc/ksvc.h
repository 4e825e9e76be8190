/* Kernel service (API for supervisor/ and tests): the message face of this
 * node's database kernel — its fragment replicas (kernel/kern_frag.h),
 * created from the distribution dictionary, and its record lock manager
 * (kernel/kern_lock.h). Task RT_SVC_KERN. kernel/svc/README.md. */
#ifndef NINES_KSVC_H
#define NINES_KSVC_H
#include "dict/dict.h"
#include "runtime/rt.h"

#include <stddef.h>
#include <stdint.h>

struct upd;
struct ksvc;
struct kern_frag;

/* The dictionary the node serves now (the dictionary service's published
 * accessor, dict/svc/dsvc.h dsvc_current_fn); read afresh on every use. */
typedef const struct dict *(*ksvc_dict_fn)(void *ctx);

struct ksvc_config {
    struct upd *upd;        /* the node's update channel (updchan/upd.h) */
    ksvc_dict_fn dict;      /* required */
    void *dict_ctx;
    /* Disk logging (README "Disk logging"): the log folder (NULL or "": off),
     * the cluster identity written in its segment headers, the bound on
     * bytes buffered for the disk (0: KSVC_DLOG_BUF_MAX), the policy (the
     * cluster file's disk_log async|sync). */
    const char *dlog_dir;
    uint64_t dlog_cluster;
    size_t dlog_buf_max;
    bool gcp_on;            /* commit epochs run (supervisor/README.md "Global checkpoints"):
                             * a checkpoint completes only once the epochs it may hold are
                             * restorable (README "Whole-cluster restart") */
    bool dlog_sync;         /* sync: every prepare's readiness waits for the local fsync;
                             * async: only a PRIMARY ALONE fragment's */
    uint64_t dlog_seg_bytes; /* segment size (0: KERN_DLOG_SEG_DFLT; tests make it small) */
    /* Checkpoints (README "Checkpoints"; only with a disk log): the folder
     * (NULL or "": off) and the interval between the starts of two rounds
     * (0: only on demand, CKPT_REQ). */
    const char *ckpt_dir;
    uint32_t ckpt_interval_ms;
    /* Takeback (README "Takeback"): has this node's node-set protocol
     * accepted a proposal for an epoch after `epoch` that is not installed
     * yet? A drained fragment keeps refusing new transactions while it has
     * (the proposal may give the fragment to the standby-only node). NULL:
     * never (tests without the protocol). */
    bool (*ns_accepted)(void *ctx, uint64_t epoch);
    void *ns_ctx;
    /* Memory budget for table data (README "Memory budget"; the cluster
     * file's memory_budget_mb in bytes; 0: none): an INSERT or UPDATE at a
     * primary while the node's replicas hold this much is refused
     * NINES_EFULL; reads, deletes, ADDs and the hot standbys' redo go on. */
    uint64_t memory_budget;
};

#define KSVC_DLOG_BUF_MAX (64u << 20) /* bytes buffered for the disk log at most */
#define KSVC_DLOG_KICK (4u << 20)     /* buffered bytes that hand a flush over at once */
#define KSVC_DLOG_RETRY_MS 1000       /* a stopped disk log tries again this often */
#define KSVC_CKPT_GAP_RETRY_MS 1000   /* after a resume: another checkpoint round this soon
                                       * while some replica has none after the gap */

#define KSVC_LEAVE_MS 1000        /* a hot standby the dictionary moved elsewhere keeps
                                   * taking its primary's stream this long (README
                                   * "Self-repair: building replicas") */
#define KSVC_LOCK_TIMEOUT_MS 2000 /* a lock wait longer than this aborts */
#define KSVC_TICK_MS 50           /* lock timeout check while waits exist */
#define KSVC_SCAN_DEFAULT 1000    /* SCAN rows when limit is 0 */
#define KSVC_SCAN_MAX 10000       /* SCAN rows at most */
#define KSVC_SCAN_SKIP_MAX 4096   /* SCAN rows its filters may turn down in one request */
#define KSVC_OUTCOME_TIMEOUTS 3   /* a prepared transaction asks for its outcome after
                                   * this many txn_timeout_ms (cluster file) ... */
#define KSVC_OUTCOME_ASK_MS 6000  /* ... or this long without a cluster file; and asks
                                   * again that often while nobody can tell */
/* Digests (README "Digests"): rows are hashed in executor turns of at most
 * this many rows and bytes (keys + records) over all digest requests, so a
 * digest never holds the executor near the supervisor's watchdog limit. */
#define KSVC_DIGEST_STEP_ROWS 16384
#define KSVC_DIGEST_STEP_BYTES (4u << 20)
#define KSVC_DIGEST_JOBS_MAX 8    /* digest requests in progress at once; more: NINES_EAGAIN */
#define KSVC_FREE_STEP_ROWS 65536 /* a dropped replica's records freed per executor turn */

/* Create the service for rt's node and register its task. The supervisor
 * wires ksvc_dict_changed to the dictionary service's installs. */
int ksvc_init(struct ksvc **out, struct rt *rt, const struct ksvc_config *cfg);
/* After rt_destroy. */
void ksvc_fini(struct ksvc *k);

/* The dictionary now served is d: create the replicas placed on this node
 * that do not exist yet, drop those of tables no longer there. k may be
 * NULL (no kernel service on this node). */
/* live_commit: the change is a dictionary commit this node took part in
 * (new replicas are empty and correct); false at start (loaded file) and
 * after a catch-up from a peer (new replicas are marked lost). */
void ksvc_dict_changed(struct ksvc *k, const struct dict *d, bool live_commit);

/* Introspection (tests, status). */
size_t ksvc_nreplicas(const struct ksvc *k);
size_t ksvc_ntxns(const struct ksvc *k);
/* This node's replica of (table, frag), or NULL (tests: load rows, compare). */
struct kern_frag *ksvc_replica(const struct ksvc *k, uint32_t table, uint32_t frag);

/* ---- log copies (ksvc_copy.c; README "Log copy") ----
 * While a fragment of the other site is PRIMARY ALONE, this node may be its
 * log copy: it holds the primary's records and end marks in memory. */
#define KSVC_COPY_BUDGET (16u << 20) /* bytes held per fragment before the records of
                                      * ended transactions are dropped, oldest first */
struct ksvc_copy_info {
    uint32_t primary;       /* whose stream */
    bool kept;              /* the primary left (fragment DOWN): frozen, kept */
    uint64_t pinc, start_lsn, start_seq;
    uint64_t next_lsn;      /* every record below it arrived */
    uint64_t first_lsn;     /* oldest held (next_lsn when none) */
    uint64_t mark_seq;      /* last end mark processed */
    size_t nrecs, bytes, nmarks, open_txns;
    uint64_t dropped;       /* records of ended transactions dropped over the budget */
};
struct ksvc_copy_stats {
    uint64_t refused;       /* batches refused: not from the fragment's installed primary */
    uint64_t restarts;      /* copies started over (another incarnation or stint) */
    uint64_t dropped_recs;  /* records dropped over the budget */
    uint64_t copies_dropped; /* copies dropped (no longer this node's log copy) */
    uint64_t readies;       /* READY_IND sent for held end marks */
    uint64_t handed_over;   /* copies taken over by a rebuilt replica (README "Rebuild") */
};
/* NINES_ENOTFOUND when no copy of (table, frag) is held here. */
int ksvc_copy_info(const struct ksvc *k, uint32_t table, uint32_t frag,
                   struct ksvc_copy_info *out);
/* Records of txn held in the copy of (table, frag); whether its end mark is. */
size_t ksvc_copy_held(const struct ksvc *k, uint32_t table, uint32_t frag, uint64_t txn);
bool ksvc_copy_has_mark(const struct ksvc *k, uint32_t table, uint32_t frag, uint64_t txn);
/* Re-decode every held record (CRC, shape, LSN order, table and fragment)
 * and check the marks and counts: 0 or NINES_ECORRUPT with a detail. */
int ksvc_copy_check(const struct ksvc *k, uint32_t table, uint32_t frag);
/* Per-fragment byte budget (0: KSVC_COPY_BUDGET). */
void ksvc_copy_set_budget(struct ksvc *k, size_t bytes);
void ksvc_copy_stats(const struct ksvc *k, struct ksvc_copy_stats *out);
/* Counters of the node-set and takeover work (kernel/svc/README.md
 * "Roles from the node set", "Takeover"); `held` is a gauge. */
struct ksvc_stats {
    uint64_t redo_refused;     /* log batches dropped: not from the fragment's primary
                                * in the installed node set */
    uint64_t takeovers;        /* replicas promoted from hot standby to primary */
    uint64_t indoubt_aborted;  /* taken-over transactions without an end mark: aborted */
    uint64_t indoubt_asked;    /* taken-over transactions with an end mark: asked */
    uint64_t held;             /* now: prepared transactions neither controller could
                                * tell about (their locks held, their keys blocked) */
    uint64_t roles_lost;       /* replicas this node no longer has a role for */
    uint64_t marks_held;       /* now: end marks a hot standby keeps (transactions
                                * prepared at their primary, not yet ended there) */
    uint64_t end_deferred;     /* COMMIT/ABORT_REQ for an unknown transaction not
                                * answered because a takeover was under way here */
    uint64_t digest_steps;     /* executor turns that hashed rows for digests */
    uint64_t digests_done;     /* KERN_DIGEST_CONF answers with digests sent */
    uint64_t digests_refused;  /* ... refused: KSVC_DIGEST_JOBS_MAX in progress */
    uint64_t digests_dropped;  /* requests given up: their client connection closed */
    uint64_t digest_jobs;      /* now: digest requests in progress */
    uint64_t free_steps;       /* turns spent freeing dropped replicas (SK_TIMER_FREE) */
    uint64_t freeing;          /* now: dropped replicas not yet freed */
    uint64_t takebacks;        /* replicas promoted from hot standby to primary while the
                                * previous primary stays current (a takeback) */
    uint64_t refused_budget;   /* INSERT/UPDATE refused NINES_EFULL: memory_budget reached */
    uint64_t table_bytes;      /* now: the B+trees of every replica here (kern_bt_bytes) */
};
void ksvc_get_stats(const struct ksvc *k, struct ksvc_stats *out);

/* ---- disk logging (ksvc_dlog.c; README "Disk logging") ---- */
enum ksvc_dlog_state {
    KSVC_DLOG_OFF = 0,      /* not configured */
    KSVC_DLOG_OPENING,      /* the I/O thread opens the log; records are buffered */
    KSVC_DLOG_ON,           /* every published record goes to disk */
    KSVC_DLOG_STOPPED,      /* a flush (or the open) failed: buffered, retried */
    KSVC_DLOG_GAP,          /* records were dropped: none taken, the disk retried every
                             * KSVC_DLOG_RETRY_MS; a write that succeeds again resumes */
    KSVC_DLOG_RESUMED,      /* written again after a gap marker, as ON, but some replica has
                             * no checkpoint taken after the gap yet (not recoverable from
                             * this disk); ON once every replica has one */
};
struct ksvc_dlog_status {
    enum ksvc_dlog_state state;
    char reason[256];       /* STOPPED / GAP: why */
    uint64_t durable;       /* log position fsync'ed */
    uint64_t buffered;      /* bytes not yet durable (in flight included) */
    uint64_t records;       /* records taken from the fragments' logs */
    uint64_t flushes, fsyncs, bytes; /* of the log (kern_dlog_stats) */
    uint64_t submits;       /* flushes handed to the I/O thread */
    uint64_t flush_errors;  /* failed flushes (and opens) */
    uint64_t dropped;       /* records dropped (GAP) */
    /* Commits that wait for the disk (README "Commits that wait for the disk") */
    char policy[8];         /* "off" (no disk log), "async", "sync" */
    uint64_t waits;         /* prepares whose readiness waited for the local fsync */
    uint64_t released;      /* ... made ready by the fsync */
    uint64_t wait_sum_us, wait_max_us; /* ... how long they waited */
    uint64_t refused;       /* prepares refused: the disk log failed while they waited, or
                             * was stopped when they needed it */
    uint64_t waiting;       /* now: prepares waiting */
    /* the files (after the last I/O request; README "Checkpoints": removal) */
    uint64_t segments;      /* segment files on disk */
    uint64_t first;         /* first position still on disk */
    uint64_t disk_bytes;    /* bytes of the segment files (headers included) */
    uint64_t segs_removed;  /* segments removed after checkpoints */
    uint64_t trim_errors;   /* removals that failed (NINES_EIO; retried) */
    /* gaps (README "Gap and resume") */
    uint64_t gaps;          /* gaps declared (records dropped past the buffer bound) */
    uint64_t resumes;       /* gaps ended: a gap marker written, records written again */
    uint64_t dropped_bytes; /* entry bytes of the records dropped, all gaps */
    uint64_t gap_wall_us;   /* wall clock of the last gap's start (0: never) */
    uint64_t resume_wall_us; /* wall clock of the last resume (0: never) */
    uint64_t gap_pos;       /* log position of the last gap marker (valid once resumed) */
    uint32_t unrecoverable; /* RESUMED: replicas without a checkpoint after the gap yet */
};
const char *ksvc_dlog_state_name(enum ksvc_dlog_state s);
void ksvc_dlog_status(const struct ksvc *k, struct ksvc_dlog_status *out);
/* Tests: switch the policy of a node with a disk log (NINES_ESTATE without one). */
/* Tests: commit epochs on or off (as ksvc_config.gcp_on). */
int ksvc_set_gcp_on(struct ksvc *k, bool on);
int ksvc_dlog_set_sync(struct ksvc *k, bool sync);
/* Tests (fault injection, FAULTS builds; NINES_ESTATE otherwise): while
 * `hold` is true the disk log's I/O completion is kept unprocessed, as if
 * the flush (and its fsync) had not finished: returns 1 once one is kept
 * (the I/O thread finished it), else 0. false processes a kept one at once
 * from the caller's thread (the executor's, between rt_step calls) and
 * returns 1, or 0 when none was kept. */
int ksvc_dlog_fault_hold(struct ksvc *k, bool hold);

/* ---- rebuild of replicas (ksvc_rebuild.c; README "Rebuild") ---- */
#define KSVC_RB_CHUNK (256u * 1024u) /* copy bytes per KERN_COPY_CONF at most */
#define KSVC_RB_TICK_MS 100          /* the rebuild timer while anything is in progress */
#define KSVC_RB_RETRY_MS 500         /* a copy request unanswered this long is sent again */
#define KSVC_RB_IDLE_MS 10000        /* a copy nobody asked for this long ends (log unpinned) */
#define KSVC_RB_BUILT_RETRY_MS 1000  /* a built replica asks to be marked built this often */
/* Local message to RT_SVC_SUP: every replica placed on this node that can
 * be rebuilt is rebuilt and takes its primary's live stream, in node set
 * `cookie` (the epoch); the node-set protocol may make the node current. */
enum { KSVC_MSG_REBUILT = 0x30000 };
/* Whole-cluster restart (README "Whole-cluster restart"). From the
 * supervisor, local: recover every replica placed on this node from its own
 * disk (cookie: the restorable epoch this node persisted, the floor below
 * which every COMMIT is kept). Once, in a process that has no node set yet;
 * the answer is KSVC_MSG_RECOVERED to RT_SVC_SUP, cookie = enum
 * ksvc_recovery (details: ksvc_recovery). */
enum { KSVC_MSG_RECOVER = 0x30001, KSVC_MSG_RECOVERED = 0x30002 };
enum ksvc_recovery {
    KSVC_RC_UNKNOWN = 0,    /* not asked, or running */
    KSVC_RC_OK = 1,         /* every replica placed here recovered */
    KSVC_RC_FAILED = 2,     /* some could not be (the detail names the first) */
    KSVC_RC_NOTHING = 3,    /* nothing on this disk: no disk log, or no replica placed here */
};
struct ksvc_recovery_info {
    enum ksvc_recovery state;
    uint32_t replicas, recovered, failed;
    uint64_t rows, redone, late, undone; /* undone: at the restart set's install */
    uint64_t ms;                         /* the recovery's wall time */
    uint64_t restart_gci;                /* the epoch the restart kept (0: no restart set yet) */
    bool adopted;                        /* this node served them (current in the restart
                                          * set); false after it: dropped, rebuilt */
    char detail[512];
};
void ksvc_recovery(const struct ksvc *k, struct ksvc_recovery_info *out);
/* A replica's HA state (Solid-like names, README "Rebuild"). */
enum ksvc_ha {
    KSVC_HA_ACTIVE = 1,     /* primary with its hot standby, or that hot standby */
    KSVC_HA_ALONE,          /* primary without a hot standby (log copy, or none) */
    KSVC_HA_COPYING,        /* being rebuilt: the fuzzy copy is being fetched */
    KSVC_HA_CATCHING_UP,    /* copy loaded, redoing the primary's stream; not current yet */
    KSVC_HA_OFFLINE,        /* lost or out of service: refuses everything */
};
const char *ksvc_ha_name(enum ksvc_ha h);
struct ksvc_rep_info {
    enum ksvc_ha ha;
    int role;               /* enum kern_frag_role */
    uint64_t next_lsn, rows;
    uint32_t source;        /* COPYING/CATCHING_UP: the primary copied from */
    uint64_t copy_bytes;    /* COPYING/CATCHING_UP: bytes of the copy received */
    uint64_t copy_rows_done, copy_rows_total; /* the primary's scan progress */
    bool building;          /* the dictionary places it as a building replica (self-repair) */
    uint64_t elapsed_ms;    /* COPYING/CATCHING_UP: since the copy began */
    uint64_t eta_ms;        /* COPYING: time left at the copy's rows rate so far (before
                             * the first rows: the time spent so far); 0 once loaded */
};
int ksvc_rep_info(const struct ksvc *k, uint32_t table, uint32_t frag,
                  struct ksvc_rep_info *out);
struct ksvc_rebuild_stats {
    uint64_t rebuilds_started, rebuilds_done; /* replicas rebuilt here */
    uint64_t copy_bytes_recv, copy_records;   /* copies loaded here */
    uint64_t copy_reasks, copy_restarts, load_failed;
    uint64_t reports;                         /* KSVC_MSG_REBUILT sent */
    uint64_t stale_txns;                      /* transactions forgotten on becoming a member
                                               * that is not current */
    uint64_t built_asked;                     /* DICT_CHANGE_REQ(MARK_BUILT) sent */
    uint64_t copies_served, copy_chunks_sent, copy_bytes_sent, copy_refused; /* as primary */
    uint64_t copies_serving;                  /* now */
};
void ksvc_rebuild_stats(const struct ksvc *k, struct ksvc_rebuild_stats *out);
/* Tests: copy bytes per KERN_COPY_CONF at this node as primary (0: KSVC_RB_CHUNK). */
void ksvc_rb_set_chunk(struct ksvc *k, size_t bytes);

/* ---- checkpoints (ksvc_ckpt.c, ksvc_ckpt_mf.c; README "Checkpoints") ----
 * Every replica of the node, fuzzily, into <data>/ckpt/t<table>-f<frag>.nck
 * a bounded slice per executor turn, the bytes written on the I/O thread;
 * rounds on a schedule and on demand; a manifest names, per replica, the
 * newest complete checkpoint and where in the disk log its redo starts;
 * disk log segments no replica needs any more are removed. */
#define KSVC_CKPT_STEP_ROWS 16384      /* records scanned per executor turn at most ... */
#define KSVC_CKPT_STEP_BYTES (4u << 20) /* ... and bytes produced */
#define KSVC_CKPT_CHUNK (4u << 20)     /* pending bytes handed to the I/O thread at once */
#define KSVC_CKPT_BUF_MAX (16u << 20)  /* pending bytes at most: the scan waits for the disk */
#define KSVC_RC_BOUND_MS 100        /* the durable bound file is written at most this often */
#define KSVC_CKPT_GCI_WAIT_MS 10000  /* a checkpoint waits this long at most for its commit
                                       * epoch to be restorable, then is abandoned */
#define KSVC_CKPT_FLOOR_WAIT_MS 100    /* a replica's begin waits this long at most for the
                                        * transactions open at its anchor to end */
#define KSVC_CKPT_POLL_MS 1            /* re-check of a wait (floor, durability, open log) */
#define KSVC_CKPT_SAMPLES 8            /* (LSN, disk log position) samples kept per replica */
#define KSVC_CKPT_MF_NAME "manifest.ncm"

enum ksvc_ckpt_state {
    KSVC_CKPT_OFF = 0,      /* no disk log or no folder */
    KSVC_CKPT_LOADING,      /* the folder is prepared and the manifest read (I/O thread) */
    KSVC_CKPT_IDLE,         /* waiting for the schedule or a request */
    KSVC_CKPT_RUNNING,      /* a round is checkpointing the replicas */
};
struct ksvc_ckpt_status {
    enum ksvc_ckpt_state state;
    uint32_t interval_ms;
    uint64_t rounds;            /* rounds completed */
    uint64_t done, abandoned, skipped, failed; /* replica checkpoints, all rounds */
    uint64_t bytes;             /* file bytes of the completed ones */
    uint64_t last_age_ms;       /* since the last round ended (0: none yet) */
    uint64_t last_duration_ms, last_bytes, last_records;
    uint64_t oldest_age_ms;     /* oldest newest-checkpoint of a replica pinning the log */
    uint32_t missing;           /* replicas pinning the log without a checkpoint yet */
    uint64_t trim_pos;          /* disk log position segments wholly below may be removed */
    bool removal_held;          /* no segment is removed: the disk log holds records of an
                                 * earlier process (README "Checkpoints": the removal rule) */
    char error[256];            /* the last failure ("" none) */
};
const char *ksvc_ckpt_state_name(enum ksvc_ckpt_state s);
void ksvc_ckpt_status(const struct ksvc *k, struct ksvc_ckpt_status *out);

/* The checkpoint manifest (format: README "Checkpoints", "Manifest"). */
#define KSVC_CKPT_MF_VERSION 1
#define KSVC_CKPT_MF_HDR 64u
#define KSVC_CKPT_MF_ENT 64u
struct ksvc_ckpt_entry {
    uint32_t table, frag;
    uint64_t redo_start_lsn;    /* the checkpoint's (as in its header) */
    uint64_t begin_lsn;
    uint64_t dlog_pos;          /* scan the disk log from here: every record of this
                                 * replica with LSN >= redo_start_lsn lies at or after it */
    uint64_t created_us;        /* the checkpoint header's: identifies the file */
    uint64_t bytes;             /* file size */
    uint64_t records;
    uint32_t file_crc;          /* the file's trailer CRC: identifies the file */
    uint8_t role;               /* kern_frag_role when it began (PRIMARY, HOT_STANDBY) */
};
struct ksvc_ckpt_manifest {
    uint32_t node;
    uint64_t cluster;
    uint64_t seq;               /* writes of the manifest (each one more) */
    uint64_t written_us;        /* wall clock */
    uint64_t dlog_keep;         /* segments wholly below may be removed once this is durable */
    size_t n;
    struct ksvc_ckpt_entry *e;  /* n entries, strictly increasing (table, frag); malloc'd */
};
/* "t<table>-f<frag>.nck" into out[cap]. */
void ksvc_ckpt_file_name(uint32_t table, uint32_t frag, char *out, size_t cap);
/* The file's bytes (malloc'd into *buf): NINES_EINVAL for entries out of
 * order, NINES_ENOMEM. */
int ksvc_ckpt_manifest_encode(const struct ksvc_ckpt_manifest *m, uint8_t **buf, size_t *len);
/* Validate a whole manifest file and decode it (out->e malloc'd):
 * NINES_ETRUNC (shorter than its header or its entries), NINES_ECORRUPT
 * (magic, CRC, sizes, reserved bytes, entries out of order or
 * inconsistent), NINES_EVERSION, NINES_EINVAL (another node's or
 * cluster's), each with a detail naming the offset or entry; NINES_ENOMEM. */
int ksvc_ckpt_manifest_decode(const uint8_t *buf, size_t len, uint32_t node, uint64_t cluster,
                              struct ksvc_ckpt_manifest *out);
/* Read and decode <dir>/manifest.ncm: NINES_ENOTFOUND when there is none. */
int ksvc_ckpt_manifest_read(const char *dir, uint32_t node, uint64_t cluster,
                            struct ksvc_ckpt_manifest *out);
void ksvc_ckpt_manifest_free(struct ksvc_ckpt_manifest *m);

/* ---- recovery from the node's own disk (ksvc_recover.c; README
 * "Recovery from the node's disk"; not wired into the service yet) ---- */
struct kern_dlog_opts;
struct ksvc_recover_info {
    uint64_t redo_start;        /* the checkpoint's */
    uint64_t records_loaded;    /* rows the checkpoint held */
    uint64_t redo_applied;      /* disk log records redone after it */
    uint64_t redo_skipped;      /* ... found in the checkpoint already */
    uint64_t last_lsn;          /* the replica's log end after recovery */
    bool gap;                   /* the scan stopped at a gap: recovered only up to it */
    bool torn;                  /* the log ended in a torn tail (a crash mid-write) */
    bool newer;                 /* the checkpoint file was newer than its manifest entry (a
                                 * crash between the file's rename and the manifest's) */
};
/* Rebuild `f` — an empty HOT_STANDBY replica of e's table and fragment —
 * from the checkpoint `ckpt_dir`/t<T>-f<F>.nck that manifest entry `e`
 * names (size, file CRC, creation time, redo start and record count must
 * match the entry) and the records of (T, F) in the disk log `log_dir` from
 * e->dlog_pos on. Errors (f must then be discarded): NINES_ENOTFOUND (no
 * file), NINES_ECORRUPT (the file is not the entry's, or fails its CRC or
 * layout; a record missing in the log), NINES_ETRUNC, NINES_EIO, the disk
 * log scan's errors — a damaged file is never loaded in part (the replica
 * is rebuilt from its peer instead). */
int ksvc_recover_replica(const char *ckpt_dir, const char *log_dir,
                         const struct kern_dlog_opts *o, const struct ksvc_ckpt_entry *e,
                         struct kern_frag *f, struct ksvc_recover_info *info);

/* Whole-cluster restart (README "Whole-cluster restart"): every replica of
 * the node recovered at once, with one scan of the disk log. */
struct ksvc_rc_late {           /* a COMMIT record whose epoch may not be kept */
    uint64_t txn, last_lsn, gci; /* last_lsn: the record's prev_lsn */
};
struct ksvc_rc_rep {
    uint32_t table, frag;
    struct kern_frag *f;        /* the caller's empty HOT_STANDBY replica; filled */
    bool has_entry;             /* e: its manifest entry; else it is recovered from the
                                 * log alone, which must then hold it from LSN 1 */
    struct ksvc_ckpt_entry e;
    /* results */
    uint64_t start;             /* the log position its scan began at */
    bool seen;                  /* some record of it was redone */
    int rc;                     /* 0: recovered; else f must be discarded */
    char why[256];
    struct ksvc_recover_info info;
    struct ksvc_rc_late *late;  /* COMMIT records with an epoch above the floor */
    size_t nlate, caplate;
};
/* Recover reps[0..n) (sorted here by table, fragment): each one's
 * checkpoint, then one scan of the disk log from the lowest position any of
 * them needs, each record redone into its replica. Per replica failures
 * (rc, why: a damaged or mismatched checkpoint, a record missing, a gap after
 * its start, a rebuild base marker after it) leave the others recovering.
 * COMMIT records with an epoch above floor_gci are listed (late): only the
 * restart's agreed epoch decides them. Returns 0 (failures are per replica). */
int ksvc_recover_all(const char *ckpt_dir, const char *log_dir, const struct kern_dlog_opts *o,
                     struct ksvc_rc_rep *reps, size_t n, uint64_t floor_gci,
                     uint64_t must_reach);
/* The durable bound (<ckpt>/durable.nkd, README "Whole-cluster restart"):
 * 56 bytes, version 1. NINES_ENOTFOUND, NINES_ETRUNC, NINES_ECORRUPT,
 * NINES_EVERSION, NINES_EINVAL (another node's or cluster's). */
#define KSVC_RC_BOUND_BYTES 56u
struct ksvc_rc_bound {
    uint64_t gci, pos, written_us;
};
void ksvc_rc_bound_encode(const struct ksvc_rc_bound *b, uint32_t node, uint64_t cluster,
                          uint8_t out[KSVC_RC_BOUND_BYTES]);
int ksvc_rc_bound_decode(const uint8_t *buf, size_t len, uint32_t node, uint64_t cluster,
                         struct ksvc_rc_bound *out);
/* Make x's recovered replica f a PRIMARY holding exactly the transactions
 * the restart keeps: every transaction without an outcome, and every one
 * whose COMMIT epoch is above `restorable`, is undone (CLRs and an ABORT
 * record), newest first. *undone counts them. */
int ksvc_recover_finish(struct kern_frag *f, const struct ksvc_rc_rep *x, uint64_t restorable,
                        uint64_t *undone);
void ksvc_rc_rep_clear(struct ksvc_rc_rep *x);
/* ---- takeback (ksvc_takeback.c; README "Takeback") ----
 * A rebuilt standby-only node R takes the primaries of its dictionary-
 * primary fragments back: the node-set coordinator asks every current node
 * to drain the primaries it holds that move to R when R's standby-only bit
 * is cleared (TAKEBACK_REQ); new transactions there are refused with
 * NINES_EAGAIN (the controller retries), open ones finish; TAKEBACK_CONF
 * once nothing is open or unacknowledged there, TAKEBACK_REF when that
 * takes longer than drain_ms. The install that clears the bit demotes the
 * drained primaries cleanly (they continue as R's hot standbys). */
#define KSVC_TB_DRAIN_MS 200   /* drain bound when the request names none */
#define KSVC_TB_HOLD_MS 1000   /* drained: refuse new transactions until an install, at most
                                * this long (unless a proposal is accepted here) */
enum ksvc_tb_state {
    KSVC_TB_IDLE = 0,       /* no drain */
    KSVC_TB_DRAINING,       /* refusing new transactions, waiting for the open ones */
    KSVC_TB_DRAINED,        /* TAKEBACK_CONF sent; refusing until an install (or hold_ms) */
};
const char *ksvc_tb_state_name(enum ksvc_tb_state s);
struct ksvc_tb_status {
    enum ksvc_tb_state state;
    uint32_t node;          /* the standby-only node the drain is for (0: none) */
    uint32_t coordinator;
    uint64_t epoch, id;
    uint32_t draining;      /* fragments draining (or drained) now */
    uint64_t conf, ref;     /* drains answered TAKEBACK_CONF / TAKEBACK_REF */
    uint64_t ended;         /* drains ended by themselves (no install within hold_ms) */
    uint64_t cancelled;     /* drains called off by the coordinator (the attempt failed) */
    uint64_t refused;       /* KERN_OP_REQ refused: its fragment drained for a takeback */
    uint64_t demoted;       /* primaries that became hot standbys cleanly at an install */
    uint64_t demoted_unclean; /* ... with transactions open or records unacknowledged: taken
                               * out of service (README "Takeback", crash at each step) */
};
void ksvc_tb_status(const struct ksvc *k, struct ksvc_tb_status *out);

/* ---- commit epochs (ksvc_gcp.c; README "Commit epochs: SAVE") ---- */
/* The newest commit epoch this node's supervisor made durable as
 * restorable (RT_MSG_GCP_SAVED; 0: none yet). */
uint64_t ksvc_restorable(const struct ksvc *k);
struct ksvc_gcp_status {
    uint64_t restorable;    /* ksvc_restorable */
    uint32_t waiting;       /* GCP_SAVE_REQ waiting for the disk log now */
    uint64_t conf, ref;     /* saves answered GCP_SAVE_CONF / GCP_SAVE_REF */
};
void ksvc_gcp_status(const struct ksvc *k, struct ksvc_gcp_status *out);

/* Handlers named in sup_msgtab. */
void ksvc_on_event(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_op_req(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_prepare_req(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_commit_req(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_abort_req(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_digest_req(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_outcome_ref(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_ckpt_req(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_copy_req(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_copy_conf(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_copy_ref(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_takeback_req(struct rt *rt, void *st, struct rt_msg *m);
void ksvc_on_gcp_save_req(struct rt *rt, void *st, struct rt_msg *m);
#endif
