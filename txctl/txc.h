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
    uint32_t active;                                /* transactions held now */
};

/* Allocate the controller (one pool, no allocation per message afterwards)
 * and register its task on rt. *out is freed by txc_destroy, which must run
 * before rt_destroy (it returns kept messages to the runtime). */
int txc_create(struct txc **out, struct rt *rt, const struct txc_config *cfg);
void txc_destroy(struct txc *t);
void txc_get_stats(const struct txc *t, struct txc_stats *out);

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
#endif
