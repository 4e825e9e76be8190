/* Takeback coordination (internal, supervisor): on the node-set
 * coordinator, moves a rebuilt standby-only node's dictionary-primary
 * fragments back to it without aborting transactions — drain at their
 * interim primaries (TAKEBACK_REQ to every current node's kernel service),
 * then a node-set round that clears the node's standby-only bit
 * (ns_takeback). Pure like sup_ns.c: no sockets, no clock; outputs go
 * through struct sup_tb_ops. supervisor/README.md "Takeback". */
#ifndef NINES_SUP_TB_H
#define NINES_SUP_TB_H
#include "sup_ns.h"

#include "nines_txn.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

#define SUP_TB_DRAIN_MS 200     /* a kernel answers REF when not drained within this */
#define SUP_TB_HOLD_MS 1000     /* a drained kernel refuses new transactions at most this long
                                 * without a new node set (unless it accepted a proposal) */
#define SUP_TB_ANSWER_MS 500    /* every answer within this, else the attempt fails */
#define SUP_TB_SWITCH_MS 1000   /* the install that clears the bit within this */
#define SUP_TB_BACKOFF_MS 100   /* after a failed attempt: wait this, doubling ... */
#define SUP_TB_BACKOFF_MAX_MS 5000 /* ... up to this */

struct sup_tb_config {
    uint32_t self;
    bool on;                /* the cluster file's takeback_ms is not off */
    uint64_t settle_us;     /* takeback_ms: a node is taken back this long after this
                             * coordinator first saw it standby-only */
    uint32_t drain_ms, hold_ms; /* sent in TAKEBACK_REQ */
    uint64_t answer_us, switch_us, backoff_us, backoff_max_us;
};

struct sup_tb_ops {
    /* TAKEBACK_REQ to node `to`'s kernel service (this node: locally) */
    void (*send)(void *ctx, uint32_t to, const Nines__TakebackReq *req);
    /* ask the node-set protocol for the round (ns_takeback); 0 or NINES_E* */
    int (*takeback)(void *ctx, uint32_t node, uint64_t epoch);
};

/* The coordinator's takeback, an explicit state machine. */
enum sup_tb_state {
    SUP_TB_IDLE = 0,        /* no attempt (waiting for a standby-only node, the settle
                             * time, or the backoff after a failure) */
    SUP_TB_DRAINING,        /* TAKEBACK_REQ sent: collecting every current node's CONF */
    SUP_TB_SWITCHING,       /* all drained: the round that clears the bit asked for;
                             * waiting for its install */
};
const char *sup_tb_state_name(enum sup_tb_state s);

struct sup_tb_stats {
    uint64_t attempts;      /* drains started */
    uint64_t done;          /* installs that took a node back after an attempt here */
    uint64_t failed;        /* attempts that failed (REF, no answer, no install): retried */
    uint64_t last_us;       /* the last takeback: drain start to install */
    uint32_t last_node, last_frags;
    char last_why[256];     /* the last failure */
};

struct sup_tb {
    struct sup_tb_config cfg;
    const struct sup_tb_ops *ops;
    void *ctx;
    enum sup_tb_state state;
    uint32_t node;          /* the standby-only node of the attempt */
    uint64_t epoch, id;     /* the node set drained; the attempt (counts up) */
    uint64_t asked, answered; /* nodes asked to drain; nodes that answered CONF */
    uint32_t frags;         /* fragments the CONFs say were drained */
    uint64_t started_us, deadline_us;
    uint64_t retry_at_us;   /* IDLE: no attempt before this (backoff) */
    uint32_t fails;         /* consecutive failed attempts (the backoff doubles) */
    uint64_t last_epoch;    /* the installed epoch sup_tb_step saw last */
    uint64_t seen_us[NS_MAX_NODES + 1];    /* a standby-only node first seen then ... */
    uint64_t seen_since[NS_MAX_NODES + 1]; /* ... current since this epoch */
    struct sup_tb_stats stats;
};

void sup_tb_init(struct sup_tb *tb, const struct sup_tb_config *cfg, const struct sup_tb_ops *ops,
                 void *ctx);
/* Time passes or the node set changed (call after every protocol input). */
void sup_tb_step(struct sup_tb *tb, const struct ns *ns, uint64_t now);
void sup_tb_on_conf(struct sup_tb *tb, const struct ns *ns, uint32_t from,
                    const Nines__TakebackConf *c, uint64_t now);
void sup_tb_on_ref(struct sup_tb *tb, const struct ns *ns, uint32_t from,
                   const Nines__TakebackRef *r, uint64_t now);
/* The earliest time sup_tb_step has something to do (0: nothing pending). */
uint64_t sup_tb_deadline(const struct sup_tb *tb, const struct ns *ns);
#endif
