/* Transaction controller internals (txctl/ only). */
#ifndef NINES_TXC_INT_H
#define NINES_TXC_INT_H
#include "txc.h"

#include "kernel/kern_key.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

/* Node sets as bitmasks: bit (id - 1) for node id (1..64). */
typedef uint64_t txc_nodes;
#define TXC_NODE(id) ((txc_nodes)1 << ((id) - 1))
_Static_assert(DICT_MAX_NODES <= 64 && NINES_MAX_NODES <= 64, "node masks are 64 bits");

/* Transaction id: node id in the top 8 bits, then a 56-bit sequence that
 * starts at the wall clock in microseconds when the controller starts. */
#define TXC_ID_NODE(id) ((uint32_t)((id) >> 56))
#define TXC_SEQ_MASK    ((UINT64_C(1) << 56) - 1)

#define TXC_CGONE_SLOTS (1u << 16) /* about 2 s of finished transactions at 30k/s */
#define TXC_GONE_SLOTS 4096

enum txc_state {
    TXC_FREE = 0,       /* pool slot unused */
    /* primary controller */
    TXC_EXECUTING,      /* interactive: ops of a request at kernels (prepare=0) */
    TXC_OPEN,           /* interactive: idle, waiting for the client's next request */
    TXC_PREPARING,      /* TXC_START_REQ to the hsc, last ops / PREPARE_REQ to the kernels:
                         * collecting their answers and the hsc's decision */
    TXC_ASKING,         /* TXC_ABORT_REQ sent: the hsc answers ABORT_CONF or READY_CONF */
    TXC_RESOLVING,      /* the hsc left the node set before deciding: PREPARE_REQ with a new
                         * hsc to every prepared kernel, collecting what they say (still
                         * prepared, or ENDED committed / aborted, or not known) */
    TXC_COMMITTING,     /* COMMIT recorded at the hsc, client answered; COMMIT_REQ sent
                         * (re-sent until every COMMIT_CONF = done at primary and standby) */
    TXC_ABORTING,       /* ABORT_REQ sent (re-sent until every ABORT_CONF) */
    /* hot-standby controller (the commit point) */
    TXC_HSC_WAITING,    /* collecting standby READY_IND (maybe before TXC_START_REQ came) */
    TXC_HSC_COMMITTED,  /* COMMIT recorded, TXC_READY_CONF sent; kept until TXC_FORGET_REQ */
    TXC_HSC_ABORTED,    /* ABORT recorded (asked by the ctl or a kernel); until TXC_FORGET_REQ */
    TXC_HSC_COMMITTING, /* the ctl left the node set after COMMIT was recorded: COMMIT_REQ to
                         * the current primary of every participant fragment, until each
                         * confirmed; then forgotten */
    TXC_HSC_ABORTING,   /* the ctl left before COMMIT was recorded: ABORT recorded, ABORT_REQ
                         * the same way */
};
static inline bool txc_is_hsc_state(enum txc_state s)
{
    return s == TXC_HSC_WAITING || s == TXC_HSC_COMMITTED || s == TXC_HSC_ABORTED ||
           s == TXC_HSC_COMMITTING || s == TXC_HSC_ABORTING;
}

/* TxcStartReq.outcome / PrepareRef.outcome (proto/nines_txn.proto). */
enum txc_outcome { TXC_OUT_NONE = 0, TXC_OUT_COMMITTED = 1, TXC_OUT_ABORTED = 2, TXC_OUT_DOUBT = 3 };

/* What the kernels said while the ctl is RESOLVING (bits of txc_txn.res). */
#define TXC_RES_COMMITTED 1u  /* a kernel ENDED it committed */
#define TXC_RES_ABORTED   2u  /* a kernel ENDED it aborted, or never prepared (refused its ops) */
#define TXC_RES_LOST      4u  /* a kernel no longer knows it (ENOTFOUND) or cannot tell */
#define TXC_RES_GONE      8u  /* a kernel of it left the node set */
const char *txc_state_name(enum txc_state s);

enum txc_proc { TXC_PROC_NONE = 0, TXC_PROC_TPCB, TXC_PROC_TWO_UPD };

/* A fragment taking part (one per distinct (table, frag)). */
struct txc_part {
    uint32_t table, frag, primary, standby;   /* standby 0: the fragment has none */
    bool p_ready, s_ready;                    /* s_ready: no standby READY_IND needed (yet) */
    bool writes;                              /* an op of the txn writes here */
    uint64_t last_lsn;                        /* hsc: the txn's records here end at or below */
};

/* One op of the current request. A SCAN becomes one kernel op per
 * fragment it may cover (nkop >= 0); any other op exactly one. */
struct txc_op {
    const Nines__RecordOp *op;      /* a SCAN's copy carries the effective limit */
    uint32_t kop, nkop;             /* its kernel ops: x->kops[kop .. kop + nkop) */
};

/* One op as sent to a primary kernel (one fragment). */
struct txc_kop {
    uint32_t op;                    /* index of the request op */
    uint32_t part;                  /* index into txn->parts */
    uint32_t node;                  /* effective primary */
    ProtobufCBinaryData key;        /* encoded primary key (SCAN: low bound, may be empty) */
};

/* A SCAN of the current request: what the merge of its fragments' rows
 * needs (the table's key layout, copied: the dictionary may change). */
struct txc_scan {
    uint32_t op;                    /* request op index */
    uint32_t table;
    uint32_t limit;                 /* effective: 1..TXC_SCAN_MAX */
    bool reverse;
    /* what the merge checks the kernels' key bytes against (txc_scan.c) */
    const uint8_t *lo, *hi;         /* encoded bound prefixes (len 0: open) */
    uint32_t lolen, hilen;
    const uint8_t *after;           /* a later page: keys beyond this one only (NULL: first) */
    uint32_t afterlen;
    uint32_t method, nfrags, nsplits;
    const struct dict_key *splits;  /* RANGE: splits[split0 ..] around the scanned fragments */
    uint32_t split0, nsplit_copy;
};

/* Kernel ops of the current request bound for one primary node (one KERN_OP_REQ). */
struct txc_nreq {
    uint32_t node, nops;
    uint32_t *idx;                  /* kernel op index (into txn->kops) of each op sent */
};

struct txc_txn {
    uint64_t id;
    struct txc_txn *hnext;          /* hash chain */
    struct txc_txn *prev, *next;    /* active list (client close, teardown) */
    enum txc_state st;
    uint32_t ctl, hsc;              /* hsc 0: the cluster has no other site */
    int64_t timer;

    /* client */
    net_addr client;                /* 0: gone (or hsc role) */
    uint64_t req_id;
    bool answer_due;                /* a client request waits for its answer */

    /* participants (arrays in kept messages' arenas) */
    struct txc_part *parts;
    uint32_t nparts, capparts;
    bool hsc_started;               /* ctl: START sent; hsc: START received */
    bool hsc_ready;                 /* ctl: TXC_READY_CONF came (COMMIT recorded) */
    bool has_value;                 /* hsc: the value came in a primary's READY_IND */
    bool hsc_told;                  /* ctl: the hsc may hold an entry (START or ABORT_REQ sent) */
    uint32_t asks;                  /* ctl: TXC_ABORT_REQ / second-phase rounds sent */
    int abort_err;                  /* ctl in TXC_ASKING: the client's error if ABORT comes */
    uint32_t abort_op;              /*   ... the failed op */
    char *abort_detail;             /*   ... and its detail (in a kept message's arena) */
    bool doubt;                     /* ctl RESOLVING / hsc WAITING: the decision was lost with
                                     * the old hsc: never decided, questions get EINDOUBT */
    bool resolve_abort;             /* ctl RESOLVING: abort unless a kernel says committed */
    bool refused;                   /* a kernel refused its ops (KERN_OP_REF): it never
                                     * prepared, so no hsc can have recorded COMMIT */
    uint32_t res;                   /* ctl RESOLVING: TXC_RES_* seen so far */
    uint32_t res_node;              /*   ... the kernel (or departed node) it came from */
    txc_nodes confirmed;            /* hsc COMMITTING/ABORTING: nodes that confirmed */

    /* node sets */
    txc_nodes ran;                  /* got a KERN_OP_REQ in this txn */
    txc_nodes pending;              /* KERN_OP_REQ / PREPARE_REQ answer outstanding */
    txc_nodes waiting;              /* COMMIT_CONF / ABORT_CONF outstanding */
    txc_nodes ran_req;              /* nodes the current request reached first in this txn */
    txc_nodes again;                /* nodes whose KERN_OP_REQ of the current request is
                                     * sent again at the retry timer: refused before
                                     * anything ran (a takeover or takeback there) */
    uint32_t retries;               /* ... of the current request so far (backoff) */

    /* current request */
    enum txc_proc proc;
    bool last;                      /* this request ends the txn (commit) */
    uint32_t nops, nnreq, seq_base, seq;
    struct txc_op *ops;
    uint32_t nkops, nscans;
    uint32_t nreq_left;             /* KERN_OP_REQs of this request not answered yet */
    struct txc_kop *kops;
    struct txc_scan *scans;
    const Nines__OpResult **kres;   /* per kernel op of a SCAN: the fragment's rows */
    struct txc_nreq *nreq;
    const Nines__OpResult **results; /* per request op (a SCAN's: merged) */
    int64_t value;                  /* procedure result */
    uint32_t value_col;             /* procedure: result column of op 0 */

    struct rt_msg *kept;            /* messages whose arenas we still use */

    /* commit epoch (txc_gcp.c, README "Commit epochs") */
    uint64_t gci;                   /* the COMMIT decision's epoch (0: none: GCP off, not
                                     * decided, or ABORT); ctl: from TXC_READY_CONF or its
                                     * own stamp */
    bool gcp_wait;                  /* the COMMIT decision waits in the queue for a stamp */
    bool gcp_counted;               /* stamped here: counted incomplete until forgotten */
};

/* Commit epochs at this controller (txc_gcp.c). */
#define TXC_GCP_CNT_MAX 64
struct txc_gcp_cnt {
    uint64_t gci;                   /* decisions stamped with this epoch (or merged below) */
    uint32_t n;                     /* ... not complete yet */
};
struct txc_gcp_held {               /* disk_log sync: a committed client answer */
    struct rt_msg *m;               /* TXN_CONF; the transaction's kept messages chained
                                     * behind it (m->next: its results live there) */
    net_addr conn;
    uint64_t gci, since_us;
};
struct txc_gcp {
    bool on;                        /* txc_config.gcp_on */
    uint64_t gci;                   /* current epoch (0: no round seen yet) */
    uint64_t restorable;            /* newest epoch persisted restorable (RT_MSG_GCP_SAVED) */
    bool stopped;                   /* GCP_PREPARE_REQ: decisions wait until COMMIT_REQ or
                                     * the hold ends */
    uint32_t stop_coord;            /* the round that stopped us */
    uint64_t stop_round, stop_seq;  /* stop_seq: the hold timer's cookie */
    int64_t hold_timer;
    uint64_t *queue;                /* txn ids whose COMMIT waits for a stamp (max_txns) */
    uint32_t nq;
    struct txc_gcp_cnt cnt[TXC_GCP_CNT_MAX]; /* ascending by gci */
    uint32_t ncnt;
    bool conf_due;                  /* a GCP_COMMIT_CONF waits for older decisions */
    uint32_t conf_to;               /* ... to this node's supervisor */
    uint64_t conf_round, conf_gci;
    struct txc_gcp_held *held;      /* in arrival order */
    uint32_t nheld, capheld;
    struct txc_gcp_stats st;
};

/* Requests in flight per client connection (txc_inflight.c). */
struct txc_inflight {
    net_addr *keys;   /* 0 = empty */
    uint32_t *vals;
    size_t cap, n;
};

struct txc {
    struct rt *rt;
    struct txc_config cfg;
    uint32_t self, site;
    uint64_t next_seq;
    struct txc_txn *pool;
    struct txc_txn *free_list;
    struct txc_txn **hash;
    uint32_t hmask;
    struct txc_txn *active;         /* doubly linked */
    uint64_t hsc_pick;              /* spreads the hsc choice */
    uint64_t gone[TXC_GONE_SLOTS];  /* hsc: recently forgotten txn ids (direct-mapped) */
    /* ctl: recently finished own transactions and their outcome, so that a
     * kernel that took one over in doubt after every kernel this controller
     * knew of had confirmed is told the outcome, not "forgotten, so aborted" */
    uint64_t cgone[TXC_CGONE_SLOTS];
    uint8_t cgone_commit[TXC_CGONE_SLOTS];
    uint8_t gone_out[TXC_GONE_SLOTS]; /* ... and their outcome: 0 unknown, 1 committed,
                                       * 2 aborted (a kernel that took the transaction
                                       * over in doubt later is told it) */
    uint64_t first_seq;             /* txn ids of this incarnation have seq >= this */
    uint64_t epoch;                 /* the node set the controller last acted on */
    /* txc_successors cache: per node, the current primaries of the fragments it held */
    uint64_t succ_epoch, succ_dict;
    bool succ_valid;
    txc_nodes succ[65];
    struct txc_stats st;
    struct txc_keys *keys;          /* request keys, outcome questions (txc_outcome.c) */
    uint64_t cgone_gci[TXC_CGONE_SLOTS]; /* ... the commit epoch of each (0: none) */
    uint64_t gone_gci[TXC_GONE_SLOTS];   /* hsc: the same for recently forgotten entries */
    struct txc_gcp gcp;             /* commit epochs (txc_gcp.c) */
    struct txc_inflight inflight;   /* TXN_REQs in flight per client connection */
};

/* The node's served dictionary, read afresh (txc_config.dict). */
static inline const struct dict *txc_dict(const struct txc *t)
{
    return t->cfg.dict(t->cfg.dict_ctx);
}

/* txc_inflight.c: TXN_REQs in flight per client connection (README
 * "Requests in flight"). take counts one more for conn (*count = the new
 * count; NINES_ENOMEM); put gives one back (an answer went out); drop
 * forgets conn (it closed). */
int txc_inflight_take(struct txc *t, net_addr conn, uint32_t *count);
void txc_inflight_put(struct txc *t, net_addr conn);
void txc_inflight_drop(struct txc *t, net_addr conn);
uint32_t txc_inflight_count(const struct txc *t, net_addr conn);
void txc_inflight_fini(struct txc *t);

/* txc_task.c */
struct txc_txn *txc_find(struct txc *t, uint64_t id);
struct txc_txn *txc_alloc(struct txc *t, uint64_t id);
void txc_forget(struct txc *t, struct txc_txn *x);
/* Free the kept messages (request, kernel answers) and forget what lived in
 * their arenas: once the client is answered and COMMIT_REQ sent, the
 * second phase needs only the node masks. */
void txc_release_kept(struct txc *t, struct txc_txn *x);
void txc_keep(struct txc_txn *x, struct rt_msg *m);
void txc_arm(struct txc *t, struct txc_txn *x, uint32_t ms);
uint64_t txc_new_id(struct txc *t);
/* A primary kernel at `node` listed the fragments it touched: those with
 * no records (only read) or no standby need no standby READY_IND. */
void txc_part_frags(struct txc_txn *x, uint32_t node, Nines__FragRecords *const *f, size_t n);
/* The installed node set's members / current members (rt_nodeset): the
 * only liveness the controller knows. */
txc_nodes txc_members(const struct txc *t);
txc_nodes txc_current(const struct txc *t);
/* The cluster file turns the disk log on (disk_log async|sync): a fragment
 * ALONE with no node of the other site is written anyway, its primary's
 * disk log standing in for the missing site (README "Routing writes"). */
bool txc_disk_stands_in(const struct txc *t);
/* the installed node set as dict_frag_roles_live takes it */
struct dict_live txc_live(const struct txc *t);
/* Where the second phase of kernels `nodes` goes now: the current ones
 * stay; a node that left is replaced by the current primaries of every
 * fragment it held a replica of (those took over its fragments; a kernel
 * that never saw the transaction confirms at once). DOWN fragments have no
 * one to reach and are left out. */
txc_nodes txc_map_nodes(struct txc *t, txc_nodes nodes);
/* The current primary of (table, frag): 0 when DOWN or the table is gone. */
uint32_t txc_primary_now(struct txc *t, uint32_t table, uint32_t frag);
/* The outcome of x is final and x is about to be forgotten (ctl: every
 * kernel confirmed; hsc: FORGET, or it finished a departed ctl's
 * transaction). Hook for the exactly-once outcome store (request keys);
 * does nothing yet. */
void txc_outcome_final(struct txc *t, const struct txc_txn *x, bool committed);
/* The hot-standby controller for x: 0 with *hsc = 0 in a one-site cluster
 * or for a transaction that writes nothing, NINES_EUNREACHABLE when the
 * other site exists but none of its nodes is in the node set (never a
 * silent 1-safe commit). */
int txc_pick_hsc(struct txc *t, const struct txc_txn *x, uint32_t *hsc);
int txc_to_client(struct txc *t, net_addr conn, struct rt_msg *m);
/* rt_send with logging; node 0 or self = local. */
void txc_send(struct txc *t, uint32_t node, enum rt_svc svc, struct rt_msg *m);
/* Answer a client TXN_REF (no txn state involved). */
void txc_refuse(struct txc *t, net_addr conn, uint64_t req_id, uint64_t txn, int err,
                uint32_t failed_op, const char *detail);

/* txc_route.c: validate, build procedure ops, encode keys and route the
 * request's ops into x (ops, parts, nreq) using arena memory of `req`.
 * NINES_E* with nines_errdetail() and *failed_op on a bad request. */
int txc_route_request(struct txc *t, struct txc_txn *x, struct rt_msg *req, uint32_t *failed_op);
/* Merge each SCAN's per-fragment rows (x->kres) into x->results, in key
 * order, at most its limit; memory from `arena`'s arena. NINES_EPROTO
 * when a kernel's rows are out of order or do not encode. */
int txc_scan_merge(struct txc *t, struct txc_txn *x, struct rt_msg *arena, uint32_t *failed_op);
/* Name of an op for error messages ("op 3 (ADD on account)"). */
void txc_op_name(const struct txc_txn *x, uint32_t i, char *buf, size_t n);
/* TPC-B: the account's new balance out of the first op's result. */
int txc_proc_value(struct txc *t, struct txc_txn *x, int64_t *out);

/* Some participant wrote (a read-only transaction's outcome is immaterial:
 * the ctl may decide it alone, and a differing hsc record is no conflict). */
bool txc_wrote(const struct txc_txn *x);
/* A txn id this controller made in this incarnation (after a restart the
 * ids of the earlier one are below first_seq: the wall clock moved on). */
bool txc_own_incarnation(const struct txc *t, uint64_t id);
/* Retry interval of the second phase and of asking the hsc. */
uint32_t txc_retry_ms(const struct txc *t);
/* COMMIT_REQ / ABORT_REQ / PREPARE_REQ to one kernel node. */
int txc_send_kernel(struct txc *t, struct txc_txn *x, uint32_t type, uint32_t node);
/* A controller-to-controller message with only a txn id (TXC_ABORT_REQ,
 * TXC_ABORT_CONF; TXC_READY_CONF carries the value: txc_hsc.c). */
void txc_send_txc(struct txc *t, uint32_t node, uint32_t type, uint64_t txn);

/* txc_ctl.c */
/* A node set was installed: x's reaction (txctl/README.md "Node sets"). */
void txc_ctl_on_nodeset(struct txc *t, struct txc_txn *x);
/* This node left the node set: answer x's client, forget x. */
void txc_ctl_on_not_serving(struct txc *t, struct txc_txn *x);
void txc_ctl_abort(struct txc *t, struct txc_txn *x, int err, uint32_t failed_op,
                   const char *detail);
void txc_ctl_on_timer(struct txc *t, struct txc_txn *x);
/* The retry timer of a request refused before anything ran (cookie: the
 * txn id with bit 63 set; txc_ctl.c "the request again") */
void txc_ctl_on_retry_timer(struct txc *t, uint64_t cookie);
void txc_ctl_on_client_closed(struct txc *t, net_addr conn);
void txc_ctl_ready_ind(struct txc *t, struct txc_txn *x, const Nines__ReadyInd *b);
/* TXC_OUTCOME_REQ for a txn this node controls. */
void txc_ctl_outcome_req(struct txc *t, const Nines__TxcOutcomeReq *b, net_addr from);
/* TXC_OUTCOME_REF to a kernel that asked (to: node id, 0 = this node). */
void txc_outcome_ref(struct txc *t, net_addr to, uint64_t txn, int err, const char *detail);

/* txc_hsc.c */
void txc_hsc_ready_ind(struct txc *t, const Nines__ReadyInd *b, struct rt_msg *m);
void txc_hsc_on_timer(struct txc *t, struct txc_txn *x);
void txc_hsc_outcome_req(struct txc *t, const Nines__TxcOutcomeReq *b, net_addr from);
void txc_hsc_on_nodeset(struct txc *t, struct txc_txn *x);
/* COMMIT_CONF / ABORT_CONF for a transaction whose ctl left (the hsc runs
 * its second phase). */
void txc_hsc_end_conf(struct txc *t, uint64_t txn, uint32_t node, bool committed);

/* txc_outcome.c: request keys (txctl/README.md "Request keys") */
int txc_keys_create(struct txc *t);
void txc_keys_destroy(struct txc *t);
/* A fresh TXN_REQ, txn just made for it: 0 = run it; else it was answered
 * from the request-key table (stored commit, or refused) and the caller
 * forgets txn. */
int txc_key_request(struct txc *t, net_addr conn, const Nines__TxnReq *b, uint64_t txn);
/* TXC_START_REQ at the hsc: 0 = take it; else the key refuses it (ABORT). */
int txc_key_start(struct txc *t, const Nines__TxcStartReq *b, uint32_t ctl);
/* The ctl's START carries the key its transaction runs under (m: its arena). */
void txc_key_fill_start(struct txc *t, uint64_t txn, Nines__TxcStartReq *b, struct rt_msg *m);
/* The attempt running here as txn was decided (no-op for a txn without key). */
void txc_key_decided(struct txc *t, uint64_t txn, bool committed, int64_t value, int err);
/* txn is forgotten here: if still undecided (this node left the node set),
 * its key answers "no promise" from now on. */
void txc_key_forgotten(struct txc *t, uint64_t txn);
/* A timer whose cookie is not a txn id (top 8 bits 0): an outcome question's. */
void txc_outcome_on_timer(struct txc *t, uint64_t cookie);
/* txc_gcp.c: commit epochs (README "Commit epochs") */
int txc_gcp_init(struct txc *t);
void txc_gcp_fini(struct txc *t);
/* A COMMIT decision about to be taken for x (hsc recording COMMIT, or the
 * ctl deciding alone): true = stamped (x->gci; 0 with GCP off), take it
 * now; false = stamping is stopped or no epoch is known yet: x waits in
 * the queue and txc_hsc_gcp_decide / txc_ctl_gcp_decide take it later. */
bool txc_gcp_stamp(struct txc *t, struct txc_txn *x);
/* x is forgotten: a decision stamped here is complete (txc_forget). */
void txc_gcp_done(struct txc *t, struct txc_txn *x);
/* RT_MSG_TIMER: true when the cookie was the hold timer's. */
bool txc_gcp_on_timer(struct txc *t, uint64_t cookie);
void txc_gcp_on_nodeset(struct txc *t);
void txc_gcp_on_saved(struct txc *t, uint64_t gci);
/* May a commit stamped gci be reported to a client now (disk_log sync: only
 * once it is restorable)? */
bool txc_gcp_visible(const struct txc *t, uint64_t gci);
/* The committed answer m for x to client conn: true = held until x's epoch
 * is restorable (x's kept messages go with it); false = send it now. */
bool txc_gcp_hold_answer(struct txc *t, struct txc_txn *x, struct rt_msg *m, net_addr conn);
/* Take the queued COMMIT decision of x now (stamping goes on). */
void txc_hsc_gcp_decide(struct txc *t, struct txc_txn *x);
void txc_ctl_gcp_decide(struct txc *t, struct txc_txn *x);
/* The request key of txn committed in epoch gci (outcome answers wait for it
 * to be restorable under disk_log sync). */
void txc_key_stamp(struct txc *t, uint64_t txn, uint64_t gci);

/* txc_hsc.c: record ABORT for a started, undecided entry (a client's
 * outcome question found its ctl gone or past its timeout). */
void txc_hsc_abort_waiting(struct txc *t, struct txc_txn *x);
#endif
