/* Distribution dictionary service (internal, supervisor): the node's copy
 * of the dictionary, its file, the two-phase dictionary transaction
 * (coordinator and participant), catch-up from peers and the admin
 * requests. Hosted by the supervisor task for now; see supervisor/README.md
 * "Distribution dictionary service". */
#ifndef NINES_SUP_DICT_H
#define NINES_SUP_DICT_H
#include "dict/dict.h"
#include "runtime/rt.h"

#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"

struct sup;

/* Timing (milliseconds). */
#define SUP_DICT_SYNC_MS      500   /* version exchange with every reachable peer */
#define SUP_DICT_PREPARE_MS   1000  /* coordinator: wait for PREPARE answers */
#define SUP_DICT_COMMIT_MS    1000  /* coordinator: wait for COMMIT answers */
#define SUP_DICT_PREPARED_MS  3000  /* participant: prepared without a decision */
#define SUP_DICT_FETCH_MS     2000  /* catch-up: wait for FETCH_CONF */
#define SUP_DICT_FORWARD_MS   5000  /* forwarding node: wait for the coordinator */
#define SUP_DICT_REQUEST_MS   4000  /* coordinator: a queued change's whole budget */
#define SUP_DICT_QUEUE_MAX    64    /* changes waiting at the coordinator */
#define SUP_DICT_FWD_MAX      64    /* forwarded changes waiting at one node */
#define SUP_DICT_WAITERS_MAX  16    /* COMMIT_CONFs waiting for the file save */
#define SUP_DICT_FILE         "dict.ndd"

/* Timer cookies: tag in the top byte, a generation below (stale timers of
 * finished phases are recognized and ignored). */
#define SUP_DICT_TIMER_TAG    0x44ull
#define SUP_DICT_COOKIE(kind, gen) \
    ((SUP_DICT_TIMER_TAG << 56) | ((uint64_t)(kind) << 48) | ((gen) & 0xffffffffffffull))
#define SUP_DICT_IS_COOKIE(c) (((c) >> 56) == SUP_DICT_TIMER_TAG)
enum sup_dict_timer {
    SUP_DT_SYNC = 1,      /* periodic version exchange */
    SUP_DT_PHASE,         /* coordinator: prepare/commit deadline, retry delay */
    SUP_DT_PREPARED,      /* participant: prepared too long */
    SUP_DT_FETCH,         /* catch-up deadline */
    SUP_DT_FORWARD,       /* forwarded change deadline (gen = forward ref) */
};

/* Coordinator transaction (one at a time; the queue waits behind it). */
enum sup_dtx_state {
    SUP_DTX_IDLE,         /* no transaction */
    SUP_DTX_PREPARING,    /* PREPARE sent, collecting answers */
    SUP_DTX_COMMITTING,   /* decided: COMMIT sent, collecting answers */
    SUP_DTX_SAVING,       /* applied locally, own file being saved */
    SUP_DTX_RETRY_WAIT,   /* aborted by a behind/ahead/busy node; retry after a delay */
};

/* Participant. */
enum sup_dpt_state {
    SUP_DPT_IDLE,
    SUP_DPT_PREPARED,     /* voted yes for (pt_coord, pt_txn); new dictionary held */
};

/* Catch-up. */
enum sup_dfetch_state {
    SUP_DFETCH_IDLE,
    SUP_DFETCH_WAIT,      /* FETCH_REQ sent to fetch_from */
};

/* The file writer (one save on the I/O thread at a time). */
enum sup_dsave_state {
    SUP_DSAVE_IDLE,
    SUP_DSAVE_RUNNING,
};

/* A change queued at the coordinator. */
struct sup_dict_req {
    struct sup_dict_req *next;
    struct rt_msg *m;            /* the kept DICT_CHANGE_REQ (change in its arena) */
    net_addr reply_to;           /* client connection, forwarding node, or 0 = gone */
    uint64_t ref;                /* forwarded: the origin's handle */
    uint32_t attempts;
    uint64_t deadline_us;
    char last_why[256];          /* last reason for a retry */
};

/* A change this node forwarded to the coordinator for one of its clients. */
struct sup_dict_fwd {
    bool used;
    uint64_t ref;
    net_addr client;
    uint32_t coord;
    int64_t timer;
};

/* A COMMIT_CONF (participant) waiting for the file that holds `version`. */
struct sup_dict_waiter {
    uint32_t coord;
    uint64_t txn, version;
};

struct sup_dict {
    struct sup *s;
    struct dict cur;              /* the dictionary this node serves; its address never
                                   * changes (installs replace the content in place) */
    uint32_t digest;              /* CRC-32C of cur's image */
    char path[300];               /* "" = memory only (no data folder) */

    /* file writer */
    enum sup_dsave_state save;
    struct rt_io_req io;
    uint8_t *img;                 /* image being written (owned by the I/O thread) */
    size_t img_len;
    uint64_t img_version;
    int img_rc;
    char img_why[256];
    uint64_t saved_version;       /* newest version known to be in the file */
    bool saved_any;
    struct sup_dict_waiter waiters[SUP_DICT_WAITERS_MAX];
    uint32_t nwaiters;

    /* coordinator */
    enum sup_dtx_state tx;
    struct sup_dict_req *q_head, *q_tail;
    uint32_t qlen;
    struct sup_dict_req *req;     /* the change being committed */
    uint64_t txn, gen;            /* txn number; timer generation */
    struct dict next;             /* the dictionary after the change */
    bool have_next;
    uint32_t next_digest, new_table_id;
    uint64_t base_version;
    dict_liveset part;            /* participants still expected in this phase */
    dict_liveset acked;           /* answered yes in this phase */
    dict_liveset confirmed;       /* COMMIT_CONF received */
    dict_liveset missing;         /* left out: no answer, down, refused commit */
    char note[512];               /* reasons collected for the client */

    /* participant */
    enum sup_dpt_state pt;
    uint32_t pt_coord;
    uint64_t pt_txn, pt_gen;
    struct dict pt_next;
    uint32_t pt_next_digest;

    /* catch-up */
    enum sup_dfetch_state fetch;
    uint32_t fetch_from;
    uint64_t fetch_gen;

    /* forwarded changes */
    struct sup_dict_fwd fwd[SUP_DICT_FWD_MAX];
    uint64_t fwd_seq;
};

/* Lifecycle and runtime events (called by the supervisor task). */
int sup_dict_init(struct sup_dict *d, struct sup *s);
void sup_dict_start(struct sup_dict *d);   /* load the file, start the sync timer */
void sup_dict_fini(struct sup_dict *d);     /* after rt_destroy */
void sup_dict_on_timer(struct sup_dict *d, uint64_t cookie);
bool sup_dict_on_io_done(struct sup_dict *d, struct rt_io_req *req);
void sup_dict_on_peer_up(struct sup_dict *d, uint32_t node);
void sup_dict_on_peer_down(struct sup_dict *d, uint32_t node);
void sup_dict_on_client_closed(struct sup_dict *d, net_addr conn);

/* The dictionary coordinator in this node's view: the lowest id among this
 * node and the peers it reaches now. */
uint32_t sup_dict_coordinator(const struct sup_dict *d);
/* This node plus the peers it reaches now. */
dict_liveset sup_dict_live(const struct sup_dict *d);

/* ---- internal to sup_dict*.c ---- */
/* Replace the served dictionary (takes ownership of *nd) and save it. */
void sup_dict_install(struct sup_dict *d, struct dict *nd, const char *why, bool live_commit);
/* Save the served dictionary if the file is behind it. */
void sup_dict_request_save(struct sup_dict *d);
/* CRC-32C of a dictionary's image (0 on encode failure). */
uint32_t sup_dict_digest(const struct dict *x);
/* Start fetching the whole dictionary from `node` unless busy. */
void sup_dict_fetch_from(struct sup_dict *d, uint32_t node, const char *why);
/* Something that held the queue back ended: run the next change. */
void sup_dict_kick(struct sup_dict *d);
void sup_dict_tx_on_timer(struct sup_dict *d, enum sup_dict_timer kind, uint64_t gen);
void sup_dict_tx_on_peer_down(struct sup_dict *d, uint32_t node);
void sup_dict_tx_on_saved(struct sup_dict *d);
void sup_dict_tx_on_client_closed(struct sup_dict *d, net_addr conn);
void sup_dict_send_version(struct sup_dict *d, uint32_t node);

/* Wire <-> dict (sup_dict_wire.c). */
struct sup_dict_def {
    struct dict_table_def def;
    struct dict_column *cols;
    uint16_t *pk;
    struct dict_key *splits;
};
int sup_dict_def_from_pb(const Nines__DictTableDef *pb, struct sup_dict_def *out);
void sup_dict_def_free(struct sup_dict_def *x);
/* next := base with `change` applied (validated); *table_id for a create. */
int sup_dict_apply(const struct dict *base, const Nines__DictChange *change, struct dict *next,
                   uint32_t *table_id);
const char *sup_dict_change_name(const Nines__DictChange *c, char *buf, size_t n);

/* Handlers named in sup_msgtab. */
void sup_on_dict_change_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_change_ans(struct rt *rt, void *st, struct rt_msg *m); /* CONF and REF */
void sup_on_dict_prepare_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_prepare_conf(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_prepare_ref(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_commit_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_commit_conf(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_commit_ref(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_abort_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_version_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_version_conf(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_fetch_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_fetch_conf(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_fetch_ref(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_dict_get_req(struct rt *rt, void *st, struct rt_msg *m);
#endif
