/* Node supervisor (internal): the node's lifecycle, I-am-alive (sup_hb.c)
 * and the virtual node-set protocol (sup_ns.c).
 * ninesd_main.c creates the services of a node and wires them. See
 * supervisor/README.md. */
#ifndef NINES_SUP_H
#define NINES_SUP_H
#include "nines_net.pb-c.h"
#include "runtime/rt.h"
#include "sup_gcp.h"
#include "sup_hb.h"
#include "sup_ns.h"
#include "sup_tb.h"

#include <pthread.h>

struct ksvc;
struct sup;

/* Node lifecycle as seen by its own supervisor. */
enum sup_node_state {
    SUP_STARTING,   /* runtime up, waiting for the START message */
    SUP_RUNNING,    /* serving; heartbeats flowing */
    SUP_STOPPING,   /* shutdown requested; no new work */
};

struct sup_peer {
    uint64_t restarts;        /* RT_MSG_PEER_RESTARTED seen: it came back as a new process */
    uint64_t down_at_us;      /* its connection closed (NINES_ECLOSED) at this time, and no
                               * heartbeat since (0: none pending) */
    bool silent;              /* no heartbeat for heartbeat_misses intervals */
    uint64_t gone_at_us;      /* judged down (ns_down) then; heard again only by a
                               * heartbeat received after it (0: not down) */
};

/* Self-repair (sup_repair.c; README "Self-repair") and reintegration
 * (README "Reintegration"): per configured node. */
enum sup_rep_state {
    SUP_REP_PRESENT = 0,      /* a member of the installed set (or never seen away) */
    SUP_REP_AWAY,             /* outside the installed set since away_us */
    SUP_REP_ASKED,            /* REPAIR_NODE sent (ref): waiting for DSVC_MSG_CHANGE_DONE */
    SUP_REP_DONE,             /* it holds no replica any more: repaired */
    SUP_REP_BACK,             /* a member again after being away: replicas may move back to
                               * it once it is current (and not standby-only) */
    SUP_REP_REINT_ASKED,      /* REINTEGRATE_NODE sent (ref): waiting for CHANGE_DONE */
};
struct sup_rep_node {
    enum sup_rep_state st;
    uint64_t away_us;         /* first install without it (rt_now_us) */
    uint64_t next_us;         /* AWAY/DONE/BACK: the next attempt; *ASKED: give up waiting */
    uint64_t ref;             /* *ASKED: the request's */
    uint32_t attempts;        /* REPAIR_NODE sent while away; REINTEGRATE_NODE while back */
    uint32_t moved;           /* its replicas placed elsewhere while away; BACK: moved to it */
    uint32_t backoff_ms;      /* BACK: the wait after a refusal (doubling) */
    bool unready;             /* BACK: not current, or standby-only (next_us: a look) */
};
struct sup_repair {
    uint64_t after_us;        /* repair_after_ms (0: never) */
    struct sup_rep_node node[NINES_MAX_NODES + 1];
    uint64_t seq;
    int64_t timer;            /* SUP_TIMER_REPAIR (0: none) */
    uint64_t timer_at;
    struct {
        uint64_t asked, moved, refused;
        uint64_t reint_asked, reint_moved, reint_refused, reint_done;
        char reint_last[256]; /* the last reintegration answer ("" none) */
    } st;
};
#define SUP_TIMER_REPAIR 0x5250 /* rt timer cookie of sup_repair.c */
const char *sup_rep_state_name(enum sup_rep_state st);
void sup_repair_init(struct sup *s);
void sup_repair_on_nodeset(struct sup *s);         /* RT_MSG_NODESET */
void sup_repair_on_timer(struct sup *s);           /* SUP_TIMER_REPAIR */
void sup_repair_on_done(struct sup *s, const struct rt_msg *m); /* DSVC_MSG_CHANGE_DONE */

/* Commit epochs on this node (sup_gcp_node.c; README "Global checkpoints"):
 * the coordinator's rounds (sup_gcp.c) and the restorable file's writer. */
#define SUP_TIMER_GCP 0x4743   /* rt timer cookie of sup_gcp_node.c */
struct sup_gcpn {
    bool ready;               /* sup_gcp_init done (RT_MSG_START) */
    bool on;                  /* rounds may run here (disk log, interval, the txctl rows) */
    struct sup_gcp r;         /* the coordinator's rounds */
    int64_t timer;            /* SUP_TIMER_GCP (0: none) */
    uint64_t timer_at;
    /* the restorable file (none without a data folder) */
    char path[4200];
    uint64_t cluster;
    bool has_file;            /* a data folder: the file is written */
    bool busy;                /* a write is on the I/O thread */
    struct rt_io_req req;
    struct sup_gcp_file io;   /* ... the value it writes */
    char io_detail[256];
    struct sup_gcp_file want; /* the newest value to write (want.gci > persisted: due) */
    uint64_t seq;             /* writes of the file, the one read at start included */
    uint64_t notified;        /* the highest gci posted to txctl and kernel (RT_MSG_GCP_SAVED) */
    uint64_t persisted_wall_us; /* wall_us of persisted_gci (its epoch's end) */
    uint64_t writes, errors;
    uint32_t err_burst;
};

/* The node-set file (sup_nsfile.c; README "Whole-cluster restart"). */
#define SUP_NSF_BYTES 64u
struct sup_nsf_set {
    uint64_t epoch, members, current, standby_only;
};
struct sup_nsf {
    char path[1100];          /* <data>/nodeset.nns ("": none, no disk log) */
    uint64_t cluster;
    struct sup_nsf_set found; /* read at start (epoch 0: none) */
    struct sup_nsf_set want, writing, saved;
    bool busy, dirty;
    struct rt_io_req io;
    uint8_t img[SUP_NSF_BYTES];
    char why[256];
};
void sup_nsf_encode(const struct sup_nsf_set *v, uint32_t node, uint64_t cluster,
                    uint8_t out[SUP_NSF_BYTES]);
/* NINES_ETRUNC, NINES_ECORRUPT (magic, CRC, sizes, reserved, sets that do
 * not nest), NINES_EVERSION, NINES_EINVAL (another node's or cluster's). */
int sup_nsf_decode(const uint8_t *b, size_t len, uint32_t node, uint64_t cluster,
                   struct sup_nsf_set *out);
int sup_nsf_read(const char *path, uint32_t node, uint64_t cluster, struct sup_nsf_set *out);

/* The arbitrator question in flight (a thread of its own: arb_vote blocks). */
struct sup_arb {
    pthread_mutex_t mu;
    pthread_t th;
    bool running, done, granted;
    uint64_t seq;
    char why[256];
    uint64_t prev_members;
    struct ns_view proposal;
    struct sup *s;
};

struct sup {
    struct rt *rt;
    const struct nines_conf *conf;
    uint32_t self, site;
    enum sup_node_state state;
    uint64_t epoch;                  /* the installed node set's epoch */
    uint64_t incarnation;            /* this process (net_incarnation) */
    uint64_t sinks_received;
    struct sup_peer peers[NINES_MAX_NODES + 1];
    struct sup_hb *hb;               /* the I-am-alive thread (sup_hb.c) */
    struct ns ns;                    /* the node-set protocol (sup_ns.c) */
    uint64_t hb_us, lease_us;        /* heartbeat interval; lease window */
    uint64_t installed_us;           /* the protocol began, or the last new set was
                                      * installed (nclock_us) */
    int64_t ns_timer;                /* timer for ns_deadline (0: none) */
    uint64_t ns_timer_at;
    uint64_t tick_us;                /* the last sup_tick (nclock_us) */
    struct ns_lease_rule rule;       /* the lease rule last given to the I-am-alive thread */
    bool rule_set;
    uint64_t resumed_us;             /* the I-am-alive thread ran again after a gap:
                                      * silence counts from then */
    struct sup_arb arb;
    bool static_set;                 /* sup_init_static */
    struct sup_tb tb;                /* takeback coordination (sup_tb.c) */
    const struct ksvc *kern;         /* the kernel service, for STATUS (NULL: none) */
    const struct txc *txc;           /* the transaction controller, for STATUS (NULL: none) */
    struct sup_repair repair;        /* self-repair timer (sup_repair.c) */
    struct sup_nsf nsf;              /* the node-set file (sup_nsfile.c) */
    uint64_t restart_floor;          /* the restorable epoch persisted here when this process
                                      * started (gcp.ncg, read by sup_set_disk; 0: none) */
    uint64_t persisted_gci;          /* restorable gci in this node's gcp.ncg (read at start,
                                      * then written: sup_gcp_node.c; 0: none) */
    struct sup_gcpn gcp;             /* commit epochs (sup_gcp_node.c) */
};

void sup_nsf_init(struct sup *s);                                    /* at start */
void sup_nsf_installed(struct sup *s, const struct sup_nsf_set *v);  /* every install */
bool sup_nsf_on_io_done(struct sup *s, struct rt_io_req *req);

/* The node's message table, indexed by MsgType. */
extern const struct rt_msg_entry sup_msgtab[];
extern const uint32_t sup_msgtab_len;

int sup_init(struct sup *s, struct rt *rt);
/* In-process tests (no heartbeat thread, no node-set protocol): every
 * configured node is a current member at epoch 1, for ever; the test moves
 * the epoch with sup_set_epoch (same members). */
#define SUP_EPOCH_INITIAL 1
int sup_init_static(struct sup *s, struct rt *rt);
void sup_set_epoch(struct sup *s, uint64_t epoch);
const char *sup_state_name(enum sup_node_state st);
/* The node's kernel service, whose disk logging STATUS reports. */
void sup_set_kernel(struct sup *s, const struct ksvc *k);
struct txc;
void sup_set_txc(struct sup *s, const struct txc *t);
/* ksvc_config.ns_accepted (ctx: the struct sup): this node accepted a
 * proposal for an epoch after `epoch` that is not installed yet. */
bool sup_ns_accepted(void *ctx, uint64_t epoch);
/* The node's data folder (NULL or "": none) and cluster id (FNV-1a 64 of
 * the cluster name, as the disk log's): reads DIR/gcp.ncg (a damaged one
 * is logged, renamed .bad and taken as none). Before the executor runs. */
void sup_set_disk(struct sup *s, const char *data_dir, uint64_t cluster);
/* The restorable gci in this node's gcp.ncg (read at start, then written). */
uint64_t sup_gcp_persisted(const struct sup *s);
/* STATUS: the gcp_* fields (sup_gcp_node.c) */
void sup_gcp_status(const struct sup *s, struct rt_msg *r, Nines__StatusConf *b);
/* sup_gcp_node.c, from sup_on_event: START, the timer, an install, I/O */
void sup_gcp_start(struct sup *s);
void sup_gcp_kick(struct sup *s);
bool sup_gcp_io_done(struct sup *s, struct rt_io_req *req); /* false: not ours */
/* Request an orderly stop (from the executor thread). */
void sup_shutdown(struct sup *s);

/* handlers named in sup_msgtab (sup_handlers.c) */
void sup_on_event(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_ping_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_sink_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_status_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_i_am_alive(struct rt *rt, void *st, struct rt_msg *m);
/* node-set protocol messages (sup_node.c) */
void sup_on_ns_msg(struct rt *rt, void *st, struct rt_msg *m);
/* GCP_PREPARE_CONF, GCP_COMMIT_CONF/REF, GCP_SAVE_CONF/REF to the
 * coordinator; GCP_SAVED_ORD to every member (sup_gcp_node.c) */
void sup_on_gcp_ans(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_gcp_saved_ord(struct rt *rt, void *st, struct rt_msg *m);
/* TAKEBACK_CONF / TAKEBACK_REF from the kernel services (sup_node.c) */
void sup_on_takeback_ans(struct rt *rt, void *st, struct rt_msg *m);
#endif
