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
};

struct sup {
    struct rt *rt;
    const struct nines_conf *conf;
    uint32_t self, site;
    enum sup_node_state state;
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
/* Request an orderly stop (from the executor thread). */
void sup_shutdown(struct sup *s);

/* handlers named in sup_msgtab (sup_handlers.c) */
void sup_on_event(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_ping_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_sink_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_status_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_on_i_am_alive(struct rt *rt, void *st, struct rt_msg *m);
#endif
