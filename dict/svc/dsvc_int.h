/* Distribution dictionary service internals shared by dsvc*.c: the node's
 * copy of the dictionary, its file, the two-phase dictionary transaction
 * (coordinator and participant), catch-up from peers and the admin
 * requests. Its own task, RT_SVC_DICT; dict/svc/README.md. */
#ifndef NINES_DSVC_INT_H
#define NINES_DSVC_INT_H
#include "dsvc.h"

#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"

/* Timing (milliseconds). */
#define DSVC_SYNC_MS      500   /* version exchange with every reachable peer */
#define DSVC_PREPARE_MS   1000  /* coordinator: wait for PREPARE answers */
#define DSVC_COMMIT_MS    1000  /* coordinator: wait for COMMIT answers */
#define DSVC_PREPARED_MS  3000  /* participant: prepared without a decision */
#define DSVC_FETCH_MS     2000  /* catch-up: wait for FETCH_CONF */
#define DSVC_FORWARD_MS   5000  /* forwarding node: wait for the coordinator */
#define DSVC_REQUEST_MS   4000  /* coordinator: a queued change's whole budget */
#define DSVC_QUEUE_MAX    64    /* changes waiting at the coordinator */
#define DSVC_FWD_MAX      64    /* forwarded changes waiting at one node */
#define DSVC_WAITERS_MAX  16    /* COMMIT_CONFs waiting for the file save */
#define DSVC_FILE         "dict.ndd"

/* Timer cookies: tag in the top byte, a generation below (stale timers of
 * finished phases are recognized and ignored). */
#define DSVC_TIMER_TAG    0x44ull
#define DSVC_COOKIE(kind, gen) \
    ((DSVC_TIMER_TAG << 56) | ((uint64_t)(kind) << 48) | ((gen) & 0xffffffffffffull))
#define DSVC_IS_COOKIE(c) (((c) >> 56) == DSVC_TIMER_TAG)
enum dsvc_timer {
    DSVC_DT_SYNC = 1,      /* periodic version exchange */
    DSVC_DT_PHASE,         /* coordinator: prepare/commit deadline, retry delay */
    DSVC_DT_PREPARED,      /* participant: prepared too long */
    DSVC_DT_FETCH,         /* catch-up deadline */
    DSVC_DT_FORWARD,       /* forwarded change deadline (gen = forward ref) */
};

/* Coordinator transaction (one at a time; the queue waits behind it). */
enum dsvc_dtx_state {
    DSVC_DTX_IDLE,         /* no transaction */
    DSVC_DTX_PREPARING,    /* PREPARE sent, collecting answers */
    DSVC_DTX_COMMITTING,   /* decided: COMMIT sent, collecting answers */
    DSVC_DTX_SAVING,       /* applied locally, own file being saved */
    DSVC_DTX_RETRY_WAIT,   /* aborted by a behind/ahead/busy node; retry after a delay */
};

/* Participant. */
enum dsvc_dpt_state {
    DSVC_DPT_IDLE,
    DSVC_DPT_PREPARED,     /* voted yes for (pt_coord, pt_txn); new dictionary held */
};

/* Catch-up. */
enum dsvc_dfetch_state {
    DSVC_DFETCH_IDLE,
    DSVC_DFETCH_WAIT,      /* FETCH_REQ sent to fetch_from */
};

/* The file writer (one save on the I/O thread at a time). */
enum dsvc_dsave_state {
    DSVC_DSAVE_IDLE,
    DSVC_DSAVE_RUNNING,
};

/* A change queued at the coordinator. */
struct dsvc_req {
    struct dsvc_req *next;
    struct rt_msg *m;            /* the kept DICT_CHANGE_REQ (change in its arena) */
    net_addr reply_to;           /* client connection, forwarding node, or 0 = gone (or a
                                  * task of this node) */
    uint32_t local_svc;          /* a task of this node to answer (DSVC_MSG_CHANGE_DONE), 0:
                                  * none */
    uint64_t ref;                /* forwarded: the origin's handle; local: the task's */
    uint32_t attempts;
    uint64_t deadline_us;
    char last_why[256];          /* last reason for a retry */
};

/* A change this node forwarded to the coordinator for one of its clients. */
struct dsvc_fwd {
    bool used;
    uint64_t ref;
    net_addr client;              /* 0: a task of this node */
    uint32_t local_svc;           /* that task (0: it wants no answer) */
    uint64_t local_ref;           /* its handle */
    uint32_t coord;
    int64_t timer;
};

/* A COMMIT_CONF (participant) waiting for the file that holds `version`. */
struct dsvc_waiter {
    uint32_t coord;
    uint64_t txn, version;
};

/* A subscriber to installs (dsvc_subscribe_install). */
struct dsvc_sub {
    dsvc_install_fn fn;
    void *ctx;
};

struct dsvc {
    struct rt *rt;
    const struct nines_conf *conf; /* NULL: no network (tests) */
    uint32_t self, site;
    bool running;                 /* START handled */
    struct dsvc_sub subs[DSVC_SUBS_MAX];
    uint32_t nsubs;
    struct dict cur;              /* the dictionary this node serves (dsvc_current);
                                   * installs replace the content in place */
    uint32_t digest;              /* CRC-32C of cur's image */
    char path[300];               /* "" = memory only (no data folder) */

    /* file writer */
    enum dsvc_dsave_state save;
    struct rt_io_req io;
    uint8_t *img;                 /* image being written (owned by the I/O thread) */
    size_t img_len;
    uint64_t img_version;
    int img_rc;
    char img_why[256];
    uint64_t saved_version;       /* newest version known to be in the file */
    bool saved_any;
    struct dsvc_waiter waiters[DSVC_WAITERS_MAX];
    uint32_t nwaiters;

    /* coordinator */
    enum dsvc_dtx_state tx;
    struct dsvc_req *q_head, *q_tail;
    uint32_t qlen;
    struct dsvc_req *req;     /* the change being committed */
    uint64_t txn, gen;            /* txn number; timer generation */
    struct dict next;             /* the dictionary after the change */
    bool have_next;
    uint32_t next_digest, new_table_id;
    uint32_t result_moved;        /* REPAIR_NODE: replicas moved by the change */
    uint64_t base_version;
    dict_liveset part;            /* participants still expected in this phase */
    dict_liveset acked;           /* answered yes in this phase */
    dict_liveset confirmed;       /* COMMIT_CONF received */
    dict_liveset missing;         /* left out: no answer, down, refused commit */
    char note[512];               /* reasons collected for the client */

    /* participant */
    enum dsvc_dpt_state pt;
    uint32_t pt_coord;
    uint64_t pt_txn, pt_gen;
    struct dict pt_next;
    uint32_t pt_next_digest;

    /* catch-up */
    enum dsvc_dfetch_state fetch;
    uint32_t fetch_from;
    uint64_t fetch_gen;

    /* forwarded changes */
    struct dsvc_fwd fwd[DSVC_FWD_MAX];
    uint64_t fwd_seq;
};

/* ---- internal to dsvc*.c ---- */
/* Replace the served dictionary (takes ownership of *nd) and save it. */
void dsvc_install(struct dsvc *d, struct dict *nd, const char *why, bool live_commit);
/* Save the served dictionary if the file is behind it. */
void dsvc_request_save(struct dsvc *d);
/* CRC-32C of a dictionary's image (0 on encode failure). */
uint32_t dsvc_digest(const struct dict *x);
/* Start fetching the whole dictionary from `node` unless busy. */
void dsvc_fetch_from(struct dsvc *d, uint32_t node, const char *why);
/* Something that held the queue back ended: run the next change. */
void dsvc_kick(struct dsvc *d);
void dsvc_tx_on_timer(struct dsvc *d, enum dsvc_timer kind, uint64_t gen);
void dsvc_tx_on_peer_down(struct dsvc *d, uint32_t node);
void dsvc_tx_on_saved(struct dsvc *d);
void dsvc_tx_on_client_closed(struct dsvc *d, net_addr conn);
void dsvc_send_version(struct dsvc *d, uint32_t node);

/* Wire <-> dict (dsvc_wire.c). */
struct dsvc_def {
    struct dict_table_def def;
    struct dict_column *cols;
    uint16_t *pk;
    struct dict_key *splits;
};
int dsvc_def_from_pb(const Nines__DictTableDef *pb, struct dsvc_def *out);
void dsvc_def_free(struct dsvc_def *x);
/* next := base with `change` applied (validated); *table_id for a create,
 * *moved for a repair (may be NULL). */
int dsvc_apply(const struct dict *base, const Nines__DictChange *change, struct dict *next,
               uint32_t *table_id, uint32_t *moved);
const char *dsvc_change_name(const Nines__DictChange *c, char *buf, size_t n);

#endif
