/* Transaction controller (internal API for supervisor/ and tests): client
 * sessions, request validation and routing, the TPC-B and two-update
 * procedures, the 2-safe commit as primary controller, and the hot-standby
 * controller role. One task (RT_SVC_TXC) per node. See txctl/README.md.
 *
 * Threading: everything runs on the node's executor thread. */
#ifndef NINES_TXC_H
#define NINES_TXC_H
#include "dict/dict.h"
#include "runtime/rt.h"

#define TXC_TIMEOUT_MS_DEFAULT 2000u   /* controller timeout per client request */
#define TXC_MAX_OPS_DEFAULT    1024u   /* ops in one TXN_REQ */
#define TXC_MAX_TXNS_DEFAULT   16384u  /* transactions held at once (both roles) */
#define TXC_SCAN_DEFAULT       1000u   /* SCAN rows when the op's limit is 0 */
#define TXC_SCAN_MAX           10000u  /* SCAN rows at most (a larger limit is capped) */
#define TXC_SCAN_FILTERS_MAX   32u     /* SCAN filters at most (the kernel's KSVC_FILTER_MAX) */
#define TXC_MAX_INFLIGHT_DEFAULT 256u  /* TXN_REQs in flight per client connection */
#define TXC_KEYS_MAX_DEFAULT   131072u /* request keys remembered (txctl/README.md "Request keys") */
#define TXC_KEYS_KEEP_MS_DEFAULT 60000u /* ... each for this long after it was entered or decided */

struct txc;

/* Delivery of TXN_CONF / TXN_REF to a client connection. NULL: rt_send.
 * Tests replace it (the test transport has no client connections). Takes
 * ownership of m. */
typedef int (*txc_client_send_fn)(void *ctx, struct rt *rt, net_addr conn, struct rt_msg *m);

struct txc_config {
    /* The node's served dictionary, through the dictionary service's
     * published accessor (ninesd: dict/svc dsvc_current_fn, dict_ctx = the
     * struct dsvc). Called afresh on every request; the result is not kept. */
    const struct dict *(*dict)(void *dict_ctx);
    void *dict_ctx;
    uint32_t timeout_ms;          /* 0: TXC_TIMEOUT_MS_DEFAULT */
    uint32_t max_ops;             /* 0: TXC_MAX_OPS_DEFAULT */
    uint32_t max_txns;            /* 0: TXC_MAX_TXNS_DEFAULT */
    txc_client_send_fn client_send;
    void *client_ctx;
    uint32_t keys_max;            /* 0: TXC_KEYS_MAX_DEFAULT (at least 2 x max_txns) */
    uint32_t keys_keep_ms;        /* 0: TXC_KEYS_KEEP_MS_DEFAULT */
    /* Commit epochs (README "Commit epochs"): every COMMIT decision is
     * stamped with the coordinator's current epoch, and waits while none is
     * known or stamping is stopped. Set by whoever creates the task: on when
     * the cluster file's disk_log is async|sync and the coordinator runs GCP
     * rounds (gcp_interval_ms > 0, supervisor/). Off: gci 0, nothing waits. */
    bool gcp_on;
    /* TXN_REQs a client connection may have in flight at this node (the
     * cluster file's max_requests_per_connection); one more is answered at
     * once with NINES_EAGAIN. 0: TXC_MAX_INFLIGHT_DEFAULT. */
    uint32_t max_inflight;
};

/* Commit epochs at this controller (tests, status). */
struct txc_gcp_stats {
    bool on, stopped;
    uint64_t gci, restorable;
    uint64_t prepares, commits;     /* GCP_PREPARE_REQ / GCP_COMMIT_REQ taken */
    uint64_t commit_confs, commit_refs;
    uint64_t holds_expired;         /* stops ended by their hold_ms (round void here) */
    uint64_t stamped;               /* COMMIT decisions stamped here */
    uint64_t waited;                /* ... that first waited for a stamp */
    uint32_t waiting;               /* queue length now (may include aborted ones) */
    uint32_t incomplete;            /* stamped here, not complete yet */
    /* disk_log sync: committed client answers held until their epoch is restorable */
    uint64_t held, released;
    uint64_t held_wait_us, held_wait_max_us; /* total and max wait of the released */
    uint32_t held_now;
};

/* Counters (tests, status). */
struct txc_stats {
    uint64_t started, committed, aborted, refused;  /* refused: bad requests */
    uint64_t hsc_started, hsc_ready, hsc_forgotten;
    uint64_t hsc_undecided;                         /* hsc: started entries still undecided
                                                     * after 4 timeouts (warned, kept) */
    uint64_t hsc_aborted;                           /* ABORT recorded by the hsc */
    uint64_t timeouts, stale;                       /* stale: answers for unknown txns */
    uint64_t resent;                                /* COMMIT/ABORT_REQ, TXC_ABORT_REQ re-sent */
    uint64_t in_doubt;                              /* clients told NINES_EINDOUBT */
    uint64_t refused_1safe;                         /* refused: a write's fragment DOWN or ALONE
                                                     * without log copy, or no hsc member */
    uint64_t not_member;                            /* requests refused NINES_ENOTMEMBER */
    uint64_t hsc_finished;                          /* hsc: ran the second phase itself for a
                                                     * ctl that left the node set */
    uint64_t hsc_moved;                             /* ctl: a new hsc picked after the old one
                                                     * left before deciding */
    uint64_t lost_decisions;                        /* ctl: in doubt after an hsc left (held,
                                                     * never guessed) */
    uint64_t op_retries;                            /* KERN_OP_REQs refused before anything
                                                     * ran (a fragment taken over or handed
                                                     * back) and sent again */
    uint64_t op_rerouted;                           /* ... to another node (its primary moved) */
    uint32_t active;                                /* transactions held now */
    uint64_t refused_inflight;                      /* TXN_REQs refused NINES_EAGAIN: their
                                                     * connection had max_inflight in flight */
};

/* Request keys and outcome questions (tests, status). */
struct txc_key_stats {
    uint64_t entered, deduped, refused, fenced, evicted;  /* the table */
    uint32_t held;                                        /* keys held now */
    uint64_t answered_stored;       /* a repeated key answered with the stored commit */
    uint64_t start_refused;         /* hsc: a START refused (ABORT) by its key's entry */
    uint64_t questions, question_timeouts, asked_by_peers;
    uint64_t said_committed, said_aborted, said_not_committed, said_in_progress, said_unknown;
    uint64_t orphans_aborted;       /* hsc: undecided entries aborted for a question */
};

/* Allocate the controller (one pool, no allocation per message afterwards)
 * and register its task on rt. *out is freed by txc_destroy, which must run
 * before rt_destroy (it returns kept messages to the runtime). */
int txc_create(struct txc **out, struct rt *rt, const struct txc_config *cfg);
void txc_destroy(struct txc *t);
void txc_get_stats(const struct txc *t, struct txc_stats *out);
void txc_get_key_stats(const struct txc *t, struct txc_key_stats *out);
void txc_get_gcp_stats(const struct txc *t, struct txc_gcp_stats *out);

/* Handlers named in the node's message table (supervisor/sup_msgtab.c). */
void txc_on_txn_req(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_kern_op_conf(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_kern_op_ref(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_prepare_conf(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_prepare_ref(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_ready_ind(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_commit_conf(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_abort_conf(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_start_req(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_ready_conf(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_forget_req(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_abort_req(struct rt *rt, void *st, struct rt_msg *m);    /* TXC_ABORT_REQ (hsc) */
void txc_on_abort_conf_hsc(struct rt *rt, void *st, struct rt_msg *m); /* TXC_ABORT_CONF (ctl) */
void txc_on_outcome_req(struct rt *rt, void *st, struct rt_msg *m);  /* TXC_OUTCOME_REQ */
/* Client failover (txc_outcome.c): a client's outcome question, and the
 * exchange between controllers that answers it. */
void txc_on_txn_outcome_req(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_txo_ask_req(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_txo_ask_conf(struct rt *rt, void *st, struct rt_msg *m);
/* Commit epochs (txc_gcp.c): the coordinator's supervisor stops stamping,
 * then switches the epoch. */
void txc_on_gcp_prepare_req(struct rt *rt, void *st, struct rt_msg *m);
void txc_on_gcp_commit_req(struct rt *rt, void *st, struct rt_msg *m);
#endif
