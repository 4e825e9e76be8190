/* Kernel service internals shared by ksvc*.c. */
#ifndef NINES_KSVC_INT_H
#define NINES_KSVC_INT_H
#include "ksvc.h"

#include "kernel/kern_frag.h"
#include "kernel/kern_lock.h"
#include "updchan/upd.h"

#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- a small chained hash map keyed by (a, b, c) (ksvc_map.c) ---- */
struct sk_node {
    struct sk_node *next;
    uint64_t a;
    uint32_t b, c;
};
struct sk_map {
    struct sk_node **bk;
    size_t cap, n;
};
int sk_map_init(struct sk_map *mp, size_t cap);
void sk_map_free(struct sk_map *mp); /* the buckets only */
struct sk_node *sk_map_get(const struct sk_map *mp, uint64_t a, uint32_t b, uint32_t c);
int sk_map_put(struct sk_map *mp, struct sk_node *nd); /* key must be absent */
void sk_map_del(struct sk_map *mp, struct sk_node *nd);
#define SK_MAP_FOREACH(mp, i, nd, nx)                                                  \
    for (size_t i = 0; i < (mp)->cap; i++)                                             \
        for (struct sk_node *nd = (mp)->bk[i], *nx = nd ? nd->next : NULL; nd;         \
             nd = nx, nx = nd ? nd->next : NULL)

/* ---- replicas ---- */
struct sk_pend {
    uint64_t txn, lsn;          /* txn's COMMIT/ABORT record in this fragment */
};

struct sk_rep {
    struct sk_node node;        /* a = table, b = frag */
    uint32_t table, frag;
    int role;                   /* enum kern_frag_role at creation/last change */
    uint32_t standby;           /* PRIMARY: the node its log is shipped to: the standby
                                 * (BOTH), the log-copy node (ALONE), 0 (none) */
    struct dict_roles ro;       /* the fragment's roles in the installed node set
                                 * (README "Roles from the node set") */
    uint64_t ro_epoch;          /* ... of this node-set epoch */
    /* PROMOTING (README "Takeover"): the primary whose records it redid, and
     * the epoch the takeover began in: records of that node received before
     * it are still redone until UPD_MSG_BARRIER_DONE(promote_epoch) */
    uint32_t prev_primary;
    uint64_t promote_epoch;
    struct kern_frag *f;
    struct upd_ship *ship;      /* PRIMARY: its shipping entry */
    bool seen;                  /* reconciliation mark */
    /* HOT_STANDBY: the primary incarnation whose records the log holds (0:
     * none yet) and the last end mark processed (updchan README "Positions") */
    uint64_t pinc, mark_seq;
    bool gap_logged;            /* a gap was logged, not filled since */
    char oos[256];              /* non-empty: out of service, and why (a failed commit
                                 * or abort here, records of another primary
                                 * incarnation): refuses everything until rebuilt */
    /* PRIMARY with a standby: COMMIT/ABORT records not yet applied there, in
     * LSN order (a ring): the transaction's confirmation waits for them */
    struct sk_pend *pend;
    uint32_t phead, pn, pcap;
    struct sk_rb *rb;           /* being rebuilt here (ksvc_rebuild.c), else NULL */
    bool adopt_pinc;            /* rebuilt with no stream held: takes the incarnation and
                                 * the stint's mark position of the first batch */
    uint64_t leave_at_us;       /* a hot standby the dictionary moved to another node
                                 * (reintegration): kept, still taking its primary's
                                 * stream, until then (README "Self-repair: building
                                 * replicas", "Reintegration"); 0: placed here */
    bool lost;                  /* created empty for a table that already held data
                                 * (node restart, or created while this node was
                                 * down): refuses operations until rebuilt */
    bool tb_drain;              /* PRIMARY drained for a takeback (ksvc_takeback.c): new
                                 * transactions are refused until the drain ends */
    unsigned ncols, npk;
    struct kern_col *cols;      /* every column */
    struct kern_col *kcols;     /* key columns, key order */
    uint16_t *pk;               /* key position -> column */
    int16_t *colkey;            /* per column: index in the key, or -1 */
    int16_t *colrec;            /* per column: index in the record, or -1 */
    char (*names)[DICT_NAME_MAX + 1];
    char tname[DICT_NAME_MAX + 1];
};

/* ---- transactions at this kernel as primary ----
 * Forgotten (removed) once their COMMIT_CONF/ABORT_CONF went: ended here
 * and the COMMIT/ABORT record applied by every standby. */
enum sk_txn_state {
    SK_TX_ACTIVE = 1,       /* executing requests; holds locks */
    SK_TX_WAITING_LOCK,     /* a KERN_OP_REQ is parked behind a lock */
    SK_TX_PREPARED,         /* end marks queued; waits for the decision (asks for it
                             * when that takes too long) */
    SK_TX_ENDED,            /* committed/aborted here, locks released; waits for the
                             * standbys to apply the COMMIT/ABORT records (npending) */
    SK_TX_END_FAILED,       /* the commit/abort failed in a replica (now out of
                             * service): locks kept, never confirmed (takeover) */
};

/* Whom a PREPARED transaction asks for its outcome next. */
enum sk_ask {
    SK_ASK_NONE = 0,        /* not asked yet this round */
    SK_ASK_CTL,             /* TXC_OUTCOME_REQ went to the controller */
    SK_ASK_HSC,             /* ... to the hot-standby controller */
};
const char *sk_txn_state_name(enum sk_txn_state st);

/* A PREPARED transaction's readiness and the disk log (ksvc_dlog.c; README
 * "Disk logging", "Commits that wait for the disk"). */
enum sk_dwait {
    SK_DW_NONE = 0,         /* readiness not held (no wait needed, or the fsync came) */
    SK_DW_WAITING,          /* READY_IND / KERN_OP_CONF / PREPARE_CONF held until the
                             * disk log's fsync covers its records */
    SK_DW_REFUSED,          /* the disk log failed while it waited: refused, never ready */
};

struct sk_touch {
    uint32_t table, frag, nrecords;
};

struct sk_txn {
    struct sk_node node;    /* a = txn */
    struct sk_txn *free_next;
    uint64_t txn;
    enum sk_txn_state st;
    uint32_t ctl, hsc;
    uint64_t ctl_inc, hsc_inc; /* their incarnations when it prepared (0: unknown) */
    bool has_value;         /* the procedure's value (KernOpReq.value_op), for READY_IND */
    int64_t value;
    bool commit;            /* ENDED / END_FAILED: the outcome */
    uint64_t gci;           /* ENDED committed: the decision's commit epoch (CommitReq.gci,
                             * 0: none), carried by its COMMIT records */
    uint32_t npending;      /* ENDED: COMMIT/ABORT records not applied by a standby */
    enum sk_dwait dw;       /* PREPARED: its readiness and the disk log */
    uint64_t dl_gen;        /* the disk log's gap generation when it began (sk_dlog_gen):
                             * another at its prepare: some of its records may be lost */
    int dw_rc;              /* SK_DW_REFUSED: the error */
    net_addr end_from;      /* ENDED: who gets the CONF (the last COMMIT/ABORT_REQ's sender) */
    /* PREPARED: the list of prepared transactions by the time they are due
     * to ask (k->prep_head), and the asking round */
    struct sk_txn *pprev, *pnext;
    bool plinked, hold_logged;
    bool held;              /* neither controller could tell at the last round
                             * (counted in k->st.held) */
    bool takeover;          /* in doubt at a taken-over replica: asks the hsc first */
    enum sk_ask ask;
    uint64_t ask_base_us;   /* prepared, or last asked */
    struct sk_touch *touch;
    uint32_t ntouch, captouch;
    /* continuation of a parked KERN_OP_REQ */
    struct rt_msg *req;     /* kept request */
    struct rt_msg *conf;    /* KERN_OP_CONF under construction */
    net_addr req_from;
    uint32_t next_op;
    bool scan_resume;       /* the op at next_op is a scan stopped at scan_key */
    uint32_t scan_skipped;  /* rows the scan's filters turned down so far (scan_key:
                             * the last of them, unless scan_resume) */
    size_t scan_klen;
    uint8_t scan_key[KERN_KEY_MAX];
};

struct ksvc {
    ksvc_dict_fn dict;      /* the served dictionary, read afresh */
    void *dict_ctx;
    struct rt *rt;
    struct upd *u;
    uint32_t self;
    struct kern_lock_mgr *locks;
    struct sk_map reps, txns;
    struct sk_txn *free_txns;
    uint32_t nwaiting;      /* txns in SK_TX_WAITING_LOCK */
    bool tick_armed;
    struct sk_txn *prep_head, *prep_tail; /* PREPARED, oldest ask_base_us first */
    uint64_t ask_us;        /* a prepared transaction asks for its outcome after this */
    bool ask_armed;
    bool tk_armed;          /* SK_TIMER_TAKEOVER_ASK */
    struct rt_msg *deferred[1024]; /* SK_DEFER_MAX; sk_defer: requests held during a takeover */
    uint32_t ndeferred;
    uint64_t tk_delay_us;
    struct rt_msg *cur;     /* the message whose handler runs now */
    struct sk_copies *copies; /* log copies held here (ksvc_copy.c; NULL until one) */
    struct ksvc_stats st;
    /* HOT_STANDBY: the end marks processed, per (txn, table, frag), until the
     * transaction's COMMIT/ABORT record is redone (README "Takeover") */
    struct sk_map marks;
    struct sk_mark *free_marks;
    uint64_t refuse_log_us, refuse_quiet; /* rate limit of "records refused" lines */
    bool nodeset_logged;    /* "no node set yet" said */
    /* digests being computed (ksvc_digest.c), a FIFO sharing the turns */
    struct sk_digest *dg_head, *dg_tail;
    uint32_t ndg;
    bool dg_armed;          /* SK_TIMER_DIGEST */
    /* dropped replicas still being freed, a slice per turn (sk_grave_step) */
    struct kern_frag **grave;
    size_t ngrave, capgrave;
    bool grave_armed;       /* SK_TIMER_FREE */
    bool leave_armed;       /* SK_TIMER_LEAVE */
    struct sk_dlog *dl;     /* disk logging (ksvc_dlog.c; NULL: off) */
    struct sk_rbs *rbs;     /* rebuilds and copies served (ksvc_rebuild.c; NULL until one) */
    struct sk_ckpt *ck;     /* checkpoints (ksvc_ckpt.c; NULL: off) */
    struct sk_tb *tb;       /* the takeback drain (ksvc_takeback.c; NULL until one) */
    struct sk_rc *rc;       /* whole-cluster restart (ksvc_restart.c; NULL: no disk log) */
    struct sk_gcp *gcp;     /* GCP_SAVE_REQ waiting for the disk (ksvc_gcp.c; NULL until one) */
    uint64_t restorable;    /* the newest restorable commit epoch (RT_MSG_GCP_SAVED) */
    bool gcp_on;            /* ksvc_config.gcp_on */
    uint64_t budget;        /* ksvc_config.memory_budget (0: none) */
    bool (*ns_accepted)(void *ctx, uint64_t epoch); /* ksvc_config */
    void *ns_ctx;
};

/* An end mark a hot standby processed (its transaction still open here). */
struct sk_mark {
    struct sk_node node;    /* a = txn, b = table, c = frag */
    struct sk_mark *free_next;
    uint32_t ctl, hsc, nrecords;
};

/* ksvc.c */
enum {
    SK_TIMER_TICK = 1,
    SK_TIMER_ASK = 2,
    SK_TIMER_TAKEOVER_ASK = 3,
    SK_TIMER_DIGEST = 4,
    SK_TIMER_FREE = 5,
    SK_TIMER_DLOG = 6,       /* hand the turn's records to the I/O thread */
    SK_TIMER_DLOG_RETRY = 7, /* a stopped disk log tries again */
    SK_TIMER_REBUILD = 8,    /* rebuilds: re-asks, releases; copies served: expiry */
    SK_TIMER_CKPT = 16,      /* checkpoints: the next slice or re-check (ksvc_ckpt.c) */
    SK_TIMER_CKPT_DUE = 17,  /* checkpoints: the next scheduled round */
    SK_TIMER_TAKEBACK = 9,   /* a takeback drain's bound (REF) or hold (ends by itself) */
    SK_TIMER_LEAVE = 10,     /* hot standbys moved away by the dictionary: dropped now */
};
struct sk_rep *sk_rep_get(const struct ksvc *k, uint32_t table, uint32_t frag);
/* Bytes of table data here: kern_bt_bytes of every replica's B+tree (README
 * "Memory budget"); O(replicas). */
uint64_t sk_table_bytes(const struct ksvc *k);
int sk_rep_new(const struct dict_table *t, uint32_t frag, int role, struct sk_rep **out);
void sk_rep_free(struct sk_rep *r);
void sk_grave_add(struct ksvc *k, struct kern_frag *f); /* free f a slice per turn */
void sk_grave_step(struct ksvc *k);              /* SK_TIMER_FREE: one turn's work */
void sk_rep_drop(struct ksvc *k, struct sk_rep *r);
void sk_leave_due(struct ksvc *k); /* SK_TIMER_LEAVE (ksvc_roles.c) */
void sk_after(struct ksvc *k);   /* end of every handler: lock events */
void sk_arm_tick(struct ksvc *k);
bool sk_member(const struct ksvc *k, uint32_t node); /* in the installed node set */
/* the installed node set as dict_frag_roles_live takes it */
struct dict_live sk_live(const struct ksvc *k);

/* ksvc_dlog.c: disk logging (README "Disk logging") */
struct sk_dlog;
int sk_dlog_init(struct ksvc *k, const struct ksvc_config *cfg);
void sk_dlog_start(struct ksvc *k);                  /* RT_MSG_START: open the log */
void sk_dlog_attach(struct ksvc *k, struct sk_rep *r); /* r's log feeds the disk log */
/* A new base for (table, frag) that is not in the disk log (a replica
 * rebuilt from a copy): a kind-2 marker goes into the log in stream order,
 * so recovery never bridges it with records from before (README "Whole-
 * cluster restart": recovery). Nothing without a disk log. */
void sk_dlog_base(struct ksvc *k, uint32_t table, uint32_t frag, uint64_t lsn);
/* The disk log's folder and options (NULL: no disk log). */
const char *sk_dlog_dir(const struct ksvc *k, struct kern_dlog_opts *o);

/* ksvc_restart.c: a whole-cluster restart (README "Whole-cluster restart") */
int sk_rc_init(struct ksvc *k, const struct ksvc_config *cfg);
void sk_rc_fini(struct ksvc *k);
void sk_rc_start(struct ksvc *k, uint64_t floor_gci);      /* KSVC_MSG_RECOVER */
bool sk_rc_on_io_done(struct ksvc *k, struct rt_io_req *req);
void sk_rc_nodeset(struct ksvc *k, const struct dict *d);   /* before sk_reconcile */
/* A node set is installed and no recovery from this disk is running or
 * held: the records of an earlier process are no longer this process's to
 * keep (every replica held now pins what it needs, "The removal rule"). */
bool sk_rc_settled(const struct ksvc *k);
/* An epoch became restorable: note the disk log's durable position in the
 * bound file (at most every KSVC_RC_BOUND_MS), which a recovery requires
 * its log to reach (README "Whole-cluster restart": truncation). */
void sk_rc_saved(struct ksvc *k, uint64_t gci);
void sk_dlog_on_timer(struct ksvc *k, uint64_t cookie);
bool sk_dlog_on_io_done(struct ksvc *k, struct rt_io_req *req); /* false: not ours */
void sk_dlog_fini(struct ksvc *k);                   /* after rt_destroy */
/* Last step of a prepare: must t's readiness wait for the local fsync (the
 * sync policy, or a PRIMARY ALONE fragment it wrote)? Sets t->dw; a wait
 * the disk log cannot serve (stopped) is refused (< 0, detail). */
int sk_dlog_prepare(struct ksvc *k, struct sk_txn *t);
/* A readiness message of t (READY_IND, KERN_OP_CONF, PREPARE_CONF) for
 * `to`: true when taken — held until the fsync (SK_DW_WAITING) or turned
 * into a refusal (SK_DW_REFUSED) — false: the caller sends it now. */
bool sk_dlog_hold(struct ksvc *k, const struct sk_txn *t, struct rt_msg *m, net_addr to);
/* SK_DW_REFUSED: the error it was refused with (detail set); else 0. */
int sk_dlog_refused(const struct ksvc *k, const struct sk_txn *t);
/* May a PRIMARY ALONE fragment without a log-copy node take writes because
 * this node's disk log stands in (configured, not stopped)? If not, `why`
 * says why not. */
bool sk_dlog_sole_ok(const struct ksvc *k, char *why, size_t n);
/* Positions for checkpoints (README "Checkpoints"). The stream offset of a
 * record is the bytes of disk log entries taken before it since this
 * process started; its disk log position is base + stream offset. */
struct sk_dlog_pos {
    bool usable;        /* not in a gap: stream offsets from gap_stream on are positions */
    bool open;          /* opened: base is known */
    bool inherited;     /* it held entries of an earlier process when opened (below base) */
    uint64_t base;      /* position of stream offset 0 (the log's end at open) */
    uint64_t taken;     /* stream offset of the next record taken */
    uint64_t durable;   /* stream offset everything below is fsync'ed (open only) */
    uint64_t gap_stream; /* after a resume: stream offset of the first record written after
                          * the last gap marker (base + it = the marker's end); records
                          * below it may be lost, a pin below it recovers nothing (0: no
                          * gap ever) */
    bool unrecoverable; /* RESUMED: some replica has no checkpoint pinned at or after
                         * gap_stream yet */
};
void sk_dlog_pos(const struct ksvc *k, struct sk_dlog_pos *out);
/* Segments wholly below stream offset `stream` may be removed (with the
 * next flush; one is started when none is in flight). */
void sk_dlog_trim(struct ksvc *k, uint64_t stream);
/* The gap generation: changes when a gap begins and when it ends. */
uint64_t sk_dlog_gen(const struct ksvc *k);
/* GCP_SAVE_REQ (ksvc_gcp.c): the stream offsets taken and durable, the
 * durable log position and the gap generation; 0 while records are written
 * durably (ON, OPENING: a flush is kicked when records wait and none is in
 * flight), else NINES_ESTATE (none, off, a gap, resumed and not recoverable
 * yet) or NINES_EFULL / NINES_EIO (stopped), with detail. */
int sk_dlog_save_pos(struct ksvc *k, uint64_t *taken, uint64_t *durable, uint64_t *pos,
                     uint64_t *gen);
/* Checkpoints: every replica that pins the log has a checkpoint pinned at
 * or after gap_stream (RESUMED becomes ON), or `n` still have none (status). */
void sk_dlog_recoverable(struct ksvc *k, uint32_t n);

/* ksvc_gcp.c: commit epochs, the kernel's part (README "Commit epochs: SAVE") */
struct sk_gcp;
void sk_gcp_dlog_done(struct ksvc *k);  /* a disk log flush finished: answer the saves */
void sk_gcp_saved(struct ksvc *k, uint64_t gci); /* RT_MSG_GCP_SAVED */
void sk_gcp_fini(struct ksvc *k);

/* ksvc_ckpt.c: checkpoints (README "Checkpoints") */
struct sk_ckpt;
int sk_ck_init(struct ksvc *k, const struct ksvc_config *cfg);
void sk_ck_start(struct ksvc *k);                    /* RT_MSG_START: prepare the folder */
void sk_ck_on_timer(struct ksvc *k, uint64_t cookie);
bool sk_ck_on_io_done(struct ksvc *k, struct rt_io_req *req); /* false: not ours */
void sk_ck_client_closed(struct ksvc *k, net_addr conn); /* its requests are dropped */
/* r is dropped (sk_rep_drop): a checkpoint of it in progress is
 * abandoned, its file and manifest entry removed. (A replica whose
 * kern_frag is replaced or reloaded is noticed by its pointer and LSNs.) */
void sk_ck_rep_dropped(struct ksvc *k, const struct sk_rep *r);
/* ms since r's newest complete checkpoint was written + 1 (0: none yet, or
 * only one from before the disk log's last gap: README "Gap and resume") */
uint64_t sk_ck_age_ms(const struct ksvc *k, const struct sk_rep *r);
/* The disk log resumed after a gap: a round soon (README "Gap and resume"). */
void sk_ck_dlog_resumed(struct ksvc *k);
void sk_ck_fini(struct ksvc *k);                     /* after rt_destroy */

/* ksvc_roles.c: replicas and their roles from (dictionary, node set) */
void sk_reconcile(struct ksvc *k, const struct dict *d, bool live_commit);
/* ALONE without a log-copy node: NINES_EUNREACHABLE (writes are refused) */
int sk_write_allowed(const struct ksvc *k, const struct sk_rep *r);

/* ksvc_takeover.c: promotion of a hot standby, the standby's end marks */
void sk_promote_begin(struct ksvc *k, struct sk_rep *r, uint32_t prev_primary);
void sk_promote_call_off(struct ksvc *k, struct sk_rep *r);
void sk_on_barrier_done(struct ksvc *k, uint64_t epoch);
void sk_mark_keep(struct ksvc *k, const struct sk_rep *r, const Nines__TxnEndMark *mk);
/* keep mk although its records are not redone yet (a rebuilt replica's
 * held marks whose records come again: README "Rebuild") */
void sk_mark_keep_ahead(struct ksvc *k, const struct sk_rep *r, const Nines__TxnEndMark *mk);
void sk_mark_forget(struct ksvc *k, uint32_t table, uint32_t frag, uint64_t txn);
void sk_marks_drop(struct ksvc *k, const struct sk_rep *r); /* every mark of r */
void sk_marks_free(struct ksvc *k);

/* ksvc_ops.c */
struct sk_txn *sk_txn_get(const struct ksvc *k, uint64_t txn);
struct sk_txn *sk_txn_new(struct ksvc *k, uint64_t txn, uint32_t ctl, uint32_t hsc);
int sk_txn_touch(struct sk_txn *t, uint32_t table, uint32_t frag, uint32_t add);
void sk_txn_forget(struct ksvc *k, struct sk_txn *t);
void sk_drop_continuation(struct ksvc *k, struct sk_txn *t);
void sk_on_grant(void *ctx, uint64_t txn, const struct kern_lock_event *ev);
void sk_on_fail(void *ctx, uint64_t txn, const struct kern_lock_event *ev);
int sk_row_out(struct rt_msg *out, const struct sk_rep *r, const uint8_t *key, size_t klen,
               const struct kern_rec *rec, Nines__Row **row);

/* ksvc_txn.c */
int sk_prepare(struct ksvc *k, struct sk_txn *t, struct rt_msg *reply,
               Nines__FragRecords ***frags, size_t *nfrags);
void sk_on_redo(struct ksvc *k, struct rt_msg *m);
void sk_on_acked(struct ksvc *k, const struct upd_acked *a);
void sk_pend_flush(struct ksvc *k, struct sk_rep *r); /* the standby is gone: confirm */
void sk_remark_prepared(struct ksvc *k, struct sk_rep *r); /* a new log target */
void sk_prepared_unlink(struct ksvc *k, struct sk_txn *t);
void sk_ask_due(struct ksvc *k);   /* SK_TIMER_ASK */
/* ksvc_takeover.c: a replica of this node is being promoted */
bool sk_promoting(const struct ksvc *k);
#define SK_DEFER_MAX 1024
bool sk_defer(struct ksvc *k, struct rt_msg *m);
void sk_replay_deferred(struct ksvc *k);
/* SK_TIMER_TAKEOVER_ASK: taken-over in-doubt transactions ask again soon
 * (a question sent while the new epoch was still being installed elsewhere
 * is dropped by the epoch check): 50 ms, doubling, up to ask_us */
void sk_takeover_ask_due(struct ksvc *k);
void sk_takeover_ask_arm(struct ksvc *k);
/* t, in doubt at a taken-over replica, is PREPARED here now: ask at once */
void sk_takeover_prepared(struct ksvc *k, struct sk_txn *t);
void sk_rep_out_of_service(struct ksvc *k, struct sk_rep *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- digests (ksvc_digest.c; README "Digests") ------------------------ */
struct sk_digest;
void sk_dg_step(struct ksvc *k);                 /* SK_TIMER_DIGEST: one turn's work */
void sk_dg_arm(struct ksvc *k);                  /* jobs waiting: the timer for the next turn */
void sk_dg_client_closed(struct ksvc *k, net_addr conn); /* its jobs are freed, unanswered */
void sk_dg_rep_dropped(struct ksvc *k, const struct sk_rep *r); /* left out of every answer */
void sk_dg_fini(struct ksvc *k);                 /* after rt_destroy */

/* ---- log copies (ksvc_copy.c; README "Log copy") ----------------------
 * This node as the log copy of PRIMARY ALONE fragments of the other site:
 * records and end marks held in memory, not applied. */
struct sk_copies;
/* UPD_MSG_REDO for a fragment with no replica here: true when it was a
 * log-copy stream (taken, or refused: not from the fragment's primary in
 * the installed node set), false for the hot-standby path to answer. */
bool sk_copy_on_redo(struct ksvc *k, const struct upd_redo *rd);
/* A new node set or dictionary: drop the copies this node is no longer the
 * log copy of (kept, frozen, while their fragment is DOWN). */
void sk_copy_reconcile(struct ksvc *k, const struct dict *d);
/* Prepare: NINES_EUNREACHABLE when (table, frag) is PRIMARY ALONE with no
 * node of the other site to copy its log to. */
int sk_copy_write_check(struct ksvc *k, uint32_t table, uint32_t frag);
void sk_copy_fini(struct ksvc *k);
/* Rebuild: r's fuzzy copy was just loaded (its log starts at the redo
 * start): apply the held stream of its fragment that continues r's log,
 * keep the held end marks of transactions not ended, take over the
 * stream's positions (pinc, mark seq) and drop the copy. *held_to: the
 * last LSN the copy held (and acknowledged), 0 when none was held. */
void sk_copy_hand_over(struct ksvc *k, struct sk_rep *r, uint32_t source, uint64_t *held_to);

/* ---- rebuild (ksvc_rebuild.c; README "Rebuild") ---- */
struct sk_rb;
struct sk_rbs;
/* after the roles: rebuild what this node (a member, not current) is the
 * log copy of; tell the supervisor when all is in the stream */
void sk_rb_reconcile(struct ksvc *k, const struct dict *d);
/* r is being rebuilt: follow the new roles (true: handled, keep r; false:
 * r must be dropped — its rebuild cannot go on) */
bool sk_rb_reconcile_rep(struct ksvc *k, struct sk_rep *r, const struct dict_roles *ro,
                         uint64_t epoch);
bool sk_rb_holding(const struct sk_rep *r); /* COPYING: the stream goes to the log copy */
void sk_rb_free(struct sk_rep *r);
void sk_rb_rep_gone(struct ksvc *k, const struct sk_rep *r); /* copies served from r end */
void sk_rb_tick(struct ksvc *k);                                  /* SK_TIMER_REBUILD */
enum ksvc_ha sk_rep_ha(const struct ksvc *k, const struct sk_rep *r);
void sk_rb_fini(struct ksvc *k);

/* ---- takeback (ksvc_takeback.c; README "Takeback") ---- */
struct sk_tb;
/* KERN_OP_REQ admission, before anything of the request runs: NINES_EAGAIN
 * (nothing done: the controller retries) when an op names a fragment being
 * taken over (PROMOTING) or drained for a takeback that txn t (NULL: new
 * here) has not touched yet. */
int sk_tb_admit(struct ksvc *k, const Nines__KernOpReq *q, const struct sk_txn *t);
void sk_tb_after(struct ksvc *k);    /* end of a handler: is the drain done? */
void sk_tb_nodeset(struct ksvc *k);  /* RT_MSG_NODESET after the roles: a new epoch ends it */
void sk_tb_timer(struct ksvc *k);    /* SK_TIMER_TAKEBACK */
/* The installed node set makes primary replica r a hot standby (a takeback,
 * or a dictionary switchover): with nothing open or unacknowledged it
 * becomes the new primary's hot standby, continuing its log; else it is
 * taken out of service. */
void sk_tb_demote(struct ksvc *k, struct sk_rep *r);
void sk_tb_fini(struct ksvc *k);
#endif
