/* Node supervisor (internal): the node's lifecycle and the I-am-alive ring.
 * ninesd_main.c creates the services of a node and wires them. See
 * supervisor/README.md. */
#ifndef NINES_SUP_H
#define NINES_SUP_H
#include "runtime/rt.h"

/* Node lifecycle as seen by its own supervisor. */
enum sup_node_state {
    SUP_STARTING,   /* runtime up, waiting for the START message */
    SUP_RUNNING,    /* serving; heartbeats flowing */
    SUP_STOPPING,   /* shutdown requested; no new work */
};

struct sup_peer {
    uint64_t last_alive_us;   /* last I_AM_ALIVE from it (0 = never) */
    bool suspected;           /* silent for heartbeat_misses intervals */
    uint64_t restarts;        /* RT_MSG_PEER_RESTARTED seen: it came back as a new process */
};

/* The node's epoch before the node-set protocol (a later issue) installs
 * another. */
#define SUP_EPOCH_INITIAL 1

struct sup {
    struct rt *rt;
    const struct nines_conf *conf;
    uint32_t self, site;
    enum sup_node_state state;
    uint64_t epoch;                  /* the node's current epoch (sup_set_epoch) */
    uint32_t ring_prev, ring_next;   /* I-am-alive ring neighbours (0 = none) */
    uint64_t hb_seq;
    uint64_t sinks_received;
    struct sup_peer peers[NINES_MAX_NODES + 1];
};

/* The node's message table, indexed by MsgType. */
extern const struct rt_msg_entry sup_msgtab[];
extern const uint32_t sup_msgtab_len;

int sup_init(struct sup *s, struct rt *rt);
const char *sup_state_name(enum sup_node_state st);
/* Install the node's epoch: every message sent from now on carries it,
 * and peers' messages of another epoch are refused where the message
 * table says so (rt_set_epoch). The node-set protocol will call it. */
void sup_set_epoch(struct sup *s, uint64_t epoch);
/* Request an orderly stop (from the executor thread). */
void sup_shutdown(struct sup *s);

/* handlers named in sup_msgtab (sup_handlers.c) */
void sup_on_event(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_ping_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_sink_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_status_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_i_am_alive(struct rt *rt, void *st, struct rt_msg *m);
#endif
