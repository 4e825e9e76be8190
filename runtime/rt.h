/* runtime — the node's executor: cooperative service tasks with mailboxes,
 * a non-preemptive scheduler, timers, cross-thread posting and an I/O
 * thread for disk work (internal API for supervisor/, txctl/, updchan/,
 * bench/ and tests). See runtime/README.md.
 *
 * One executor = one thread running rt_run(). Everything it owns (tasks,
 * their state, the net endpoint, fragment replicas later) is touched by that
 * thread only; other threads talk to it with rt_post_from_thread().
 *
 * Messages: a struct rt_msg owns an arena in which its protobuf-c body
 * lives. Build one with rt_msg_new(), fill the body allocated by RT_BODY(),
 * hand it to rt_send(): to a task on this node it is queued as is (no
 * serialization); to another node or a client it is packed into the net
 * send buffer and recycled. Received messages arrive unpacked in a fresh
 * rt_msg. The handler borrows the message; the runtime recycles it after
 * the handler returns unless the handler called rt_msg_keep().
 */
#ifndef NINES_RT_H
#define NINES_RT_H
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "conf.h"
#include "net/net.h"

/* The services of a node (ClustRa section 3.1) plus bench/test tasks. */
enum rt_svc {
    RT_SVC_NONE = 0,
    RT_SVC_SUP,      /* node supervisor */
    RT_SVC_TXC,      /* transaction controller */
    RT_SVC_KERN,     /* database kernel */
    RT_SVC_UPD,      /* update channel */
    RT_SVC_DICT,     /* distribution dictionary service */
    RT_SVC_APP,      /* a benchmark or test task */
    RT_SVC_MAX
};

/* Runtime-internal message types (never on the wire; above MsgType range). */
enum {
    RT_MSG_TIMER = 0x10000,   /* a timer fired; rt_msg.cookie = timer cookie */
    RT_MSG_IO_DONE,           /* an rt_io request finished; cookie = the request */
    RT_MSG_PEER_UP,           /* cookie = node id; to subscribers (rt_subscribe_peers) */
    RT_MSG_PEER_DOWN,         /* cookie = node id; to subscribers (rt_subscribe_peers) */
    RT_MSG_PEER_RESTARTED,    /* cookie = node id: it came back as a new process
                                 (another incarnation, net_peer_incarnation);
                                 posted just before its RT_MSG_PEER_UP */
    RT_MSG_CLIENT_CLOSED,     /* from = the connection */
    RT_MSG_START,             /* first message every task gets */
    RT_MSG_USER,              /* rt_post_from_thread() payloads; cookie = caller's */
    RT_MSG_NODESET,           /* a node set was installed (rt_install_nodeset): read it
                                 with rt_nodeset(); delivered at once, synchronously, to
                                 every subscriber (rt_subscribe_nodeset) */
    RT_MSG_GCP_SAVED,         /* the node's supervisor persisted a restorable commit
                                 epoch: cookie = that gci (supervisor/README.md "Global
                                 checkpoints"); posted locally to txctl and the kernel
                                 service (rt_post_local) */
};

struct rt;
struct rt_msg {
    struct rt_msg *next;
    uint32_t type;               /* nines MsgType or RT_MSG_* */
    net_addr from;               /* sender node id, client conn, or 0 = this node */
    uint64_t epoch;              /* sender's epoch (remote: its Envelope.epoch, 0 from a
                                    client; local: this node's epoch at rt_send) */
    uint64_t cookie;             /* RT_MSG_* payload */
    const ProtobufCMessage *body;/* unpacked body (lives in arena) or NULL */
    enum rt_svc dst;             /* destination task on the target node */
    int32_t err;                 /* RT_MSG_PEER_DOWN: why the connection ended (NINES_E*;
                                    NINES_ECLOSED: the peer's host closed or reset it) */
    bool kept;                   /* handler took ownership (rt_msg_keep) */
    struct arena arena;
};

typedef void (*rt_handler)(struct rt *rt, void *task_state, struct rt_msg *m);

/* Sender classes: who may send a message type (struct rt_msg_entry.from).
 * The class of a received message follows from its address, never from
 * anything the sender says: a connection that said HELLO as a client stays
 * a client (net/README.md "Handshake"). */
enum rt_from {
    RT_FROM_CLIENT = 1u << 0,   /* a client connection (from >= NET_CONN_BASE) */
    RT_FROM_PEER = 1u << 1,     /* another node of the cluster (from = its node id) */
    RT_FROM_LOCAL = 1u << 2,    /* a task of this node (rt_send to 0 or to self) */
};
#define RT_FROM_NODE (RT_FROM_PEER | RT_FROM_LOCAL)   /* node-internal service traffic */
#define RT_FROM_ANY (RT_FROM_CLIENT | RT_FROM_PEER | RT_FROM_LOCAL)

/* Is a message from a peer of another epoch refused? (rt_msg_entry.epoch)
 * Only peers' messages are checked: a client has no epoch, a local task
 * runs in this node's. */
enum rt_epoch_rule {
    RT_EPOCH_SAME = 0,          /* refused (dropped) unless Envelope.epoch == rt_epoch() */
    RT_EPOCH_ANY = 1,           /* accepted in any epoch */
};

/* One row of the node's message table (the one table mapping each message
 * type to its handler): which service handles a wire message type, the
 * descriptor used to unpack its body, the handler, called with that
 * service's task state, the sender classes allowed to send it and whether
 * a peer's message of another epoch is refused (runtime/README.md
 * "Dispatch checks"). Indexed by MsgType; rows with svc == RT_SVC_NONE are
 * unknown types. Runtime events (RT_MSG_*) and rows without fn go to the
 * task's own handler. A row with from == 0 accepts nobody. */
struct rt_msg_entry {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    enum rt_svc svc;
    rt_handler fn;
    uint32_t from;               /* RT_FROM_* bits */
    enum rt_epoch_rule epoch;
};

struct rt_config {
    uint32_t self;                         /* node id (0: no network) */
    const struct nines_conf *conf;         /* NULL: no network */
    struct net_transport *transport;       /* NULL: by conf->transport */
    const struct rt_msg_entry *msgtab;     /* indexed by MsgType */
    uint32_t msgtab_len;
    uint32_t poll_us;                      /* busy-poll before sleeping */
};

int rt_create(struct rt **out, const struct rt_config *cfg);
void rt_destroy(struct rt *rt);

/* Register the task for a service before rt_run/rt_step. */
int rt_task_add(struct rt *rt, enum rt_svc svc, const char *name, rt_handler h, void *state);

/* Membership events: deliver RT_MSG_PEER_UP / RT_MSG_PEER_DOWN (cookie and
 * from = the node id) to svc's task, one message per subscriber, in the
 * order of enum rt_svc. A task hears of a peer only after it subscribed;
 * subscribing twice is the same as once. Any task may subscribe (the
 * supervisor, the dictionary service; txctl when it wants them). */
int rt_subscribe_peers(struct rt *rt, enum rt_svc svc);
/* The node's epoch: written into every message this node sends (the
 * endpoint's net_set_epoch) and compared with a peer's message whose row
 * says RT_EPOCH_SAME. 0 until set; the supervisor owns the value
 * (sup_set_epoch). */
void rt_set_epoch(struct rt *rt, uint64_t epoch);
uint64_t rt_epoch(const struct rt *rt);

/* The installed node set (supervisor/README.md "Node set"). Services learn
 * liveness only from it: a node is alive for them when its bit is in
 * `members`, and may hold a fragment role only when it is in `current`. */
struct rt_nodeset {
    uint64_t epoch;           /* 0: none installed yet (the node is joining) */
    uint64_t members;         /* bit (id - 1): node id is in the node set */
    uint64_t current;         /* members whose replicas are current (a subset of members):
                               * roles are computed over these (dict_frag_roles_live) */
    uint64_t standby_only;    /* current nodes that came back and hold no primary until
                               * takeback (a subset of current) */
    uint64_t since[65];       /* by node id: the epoch a standby-only node became current
                               * (dict_live.since) */
    uint32_t coordinator;     /* first member in the line of succession */
    bool restart;             /* the first set after a whole-cluster restart: its current
                               * nodes recover their replicas from disk, keeping the
                               * commits of epochs up to restart_gci */
    uint64_t restart_gci;
    bool member;              /* this process is a member of the set (it may still not
                               * serve: isolated, its lease lapsed) */
    bool serving;             /* this node is a member and may serve */
    char reason[160];         /* !serving: why (clients are told this) */
};
/* Install ns (the supervisor only, after the node-set protocol decided it):
 * sets the epoch (rt_set_epoch), then hands RT_MSG_NODESET to every
 * subscriber's handler before this call returns, in the order of enum
 * rt_svc, so no message of the new epoch is handled by a service that has
 * not yet seen the node set. */
void rt_install_nodeset(struct rt *rt, const struct rt_nodeset *ns);
/* The node set installed last (epoch 0 before any). */
const struct rt_nodeset *rt_nodeset(const struct rt *rt);
/* Deliver RT_MSG_NODESET to svc (subscribing twice = once). */
int rt_subscribe_nodeset(struct rt *rt, enum rt_svc svc);
/* The node's lease (supervisor/README.md "Fencing"): for `remaining_us`
 * from now a quorum of the installed set confirmed this node (0: the lease
 * ran out; UINT64_MAX: for ever). */
void rt_set_lease(struct rt *rt, uint64_t remaining_us);
/* Or: the lease's end (nclock_us) is kept by another thread (the
 * supervisor's I-am-alive thread) in `until_us`, read at each rt_serving. */
void rt_set_lease_source(struct rt *rt, const _Atomic uint64_t *until_us);
/* May this node serve now: a member of the installed set (serving) and
 * its lease holds at this very moment — the clock is read, not the loop
 * turn's cached time, so a handler late in a long turn does not serve on a
 * lease that ran out during the turn (no lease set: membership alone, for
 * in-process tests without a supervisor). A node that was stopped (a hang,
 * SIGSTOP) finds its lease run out when it resumes, before it handles
 * anything queued meanwhile. */
bool rt_serving(const struct rt *rt);
/* Any thread: when the executor's current turn began, 0 while it waits for
 * work (a turn that runs long is a stuck executor: supervisor's watchdog). */
uint64_t rt_busy_since_us(const struct rt *rt);
#define RT_NODE_BIT(id) ((uint64_t)1 << ((id) - 1))

/* Run until rt_stop(). */
int rt_run(struct rt *rt);
/* One loop turn: deliver input, fire timers, run tasks, flush output,
 * waiting at most max_wait_ms (0 = never, -1 = until something happens).
 * Returns number of messages handled. For tests and benchmarks. */
int rt_step(struct rt *rt, int max_wait_ms);
void rt_stop(struct rt *rt);                 /* any thread */

/* Messages. */
struct rt_msg *rt_msg_new(struct rt *rt, uint32_t type);
void *rt_msg_alloc(struct rt_msg *m, size_t n);   /* body memory in m's arena */
#define RT_BODY(m, T, init) \
    ({ T *b_ = rt_msg_alloc((m), sizeof(T)); if (b_) { init(b_); (m)->body = &b_->base; } b_; })
void rt_msg_keep(struct rt_msg *m);
void rt_msg_free(struct rt *rt, struct rt_msg *m);
/* Deliver m to service `svc` at node/client `to` (0 or self = this node).
 * Takes ownership of m in all cases. Remote: 0 or the net_send error. */
int rt_send(struct rt *rt, net_addr to, enum rt_svc svc, struct rt_msg *m);
/* rt_send without the fault-injection filter (tests re-inject held messages). */
int rt_send_nofault(struct rt *rt, net_addr to, enum rt_svc svc, struct rt_msg *m);
/* Queue to a local task now (no serialization, and no sender-class check:
 * for runtime-internal messages; services send with rt_send). */
void rt_post_local(struct rt *rt, enum rt_svc svc, struct rt_msg *m);
/* From any thread: deliver an RT_MSG_USER with `cookie` to svc. */
int rt_post_from_thread(struct rt *rt, enum rt_svc svc, uint64_t cookie);

/* Timers: deliver RT_MSG_TIMER(cookie) to svc after delay_us. Returns an
 * id > 0 for rt_timer_cancel, or negative. */
int64_t rt_timer_add(struct rt *rt, enum rt_svc svc, uint64_t delay_us, uint64_t cookie);
bool rt_timer_cancel(struct rt *rt, int64_t id);

/* Disk work on the I/O thread: fn(arg) runs there, then RT_MSG_IO_DONE with
 * cookie = (uintptr_t)req reaches svc. req must live until then. */
struct rt_io_req {
    struct rt_io_req *next;
    int (*fn)(void *arg);
    void *arg;
    int result;                 /* fn's return value */
    enum rt_svc svc;
};
int rt_io_submit(struct rt *rt, struct rt_io_req *req);

/* ---- fault injection (tests; effective only in NINES_FAULTS builds) ----
 * A filter sees every message given to rt_send (local and remote) and
 * decides its fate: pass it on, drop it (lost in transit: the sender sees
 * success), fail the send (the sender sees NINES_EAGAIN, as with a full
 * queue), or take it (the filter now owns m: hold it and re-inject it later
 * with rt_send_nofault — a delayed message). */
enum rt_fault_verdict { RT_FAULT_PASS = 0, RT_FAULT_DROP, RT_FAULT_FAIL, RT_FAULT_TAKE };
typedef enum rt_fault_verdict (*rt_fault_fn)(void *ctx, struct rt *rt, net_addr to,
                                             enum rt_svc svc, struct rt_msg *m);
/* Install (fn NULL: remove) the filter. NINES_ESTATE without NINES_FAULTS. */
int rt_fault_set_filter(struct rt *rt, rt_fault_fn fn, void *ctx);
/* Move this executor's clock forward by us (timers fire by it at the next
 * rt_step): deterministic timeouts without waiting. NINES_ESTATE without
 * NINES_FAULTS. */
int rt_fault_advance_clock(struct rt *rt, uint64_t us);

/* Accessors. */
uint32_t rt_self(const struct rt *rt);
struct net_endpoint *rt_net(struct rt *rt);
/* The role a client connection acts with (net_conn_role: enum net_role;
 * NET_ROLE_ADMIN for every client of a node without users, i.e. client_auth
 * trust); 0 for a node, a local task or an unknown connection. */
uint32_t rt_client_role(struct rt *rt, net_addr from);
uint64_t rt_now_us(const struct rt *rt);      /* monotonic, cached per loop turn */
uint64_t rt_start_us(const struct rt *rt);
const struct nines_conf *rt_conf(const struct rt *rt);
/* The message table's row for `type` when a task of this node handles it
 * (NULL: no row, or its service has no task here). */
const struct rt_msg_entry *rt_msg_row(const struct rt *rt, uint32_t type);
struct rt_stats {
    uint64_t msgs_handled, msgs_local, msgs_remote_out, msgs_remote_in, timers_fired, io_done;
    uint64_t loop_turns, unpack_errors;
    uint64_t refused_sender;    /* sender class not in the row: dropped (remote: conn closed) */
    uint64_t refused_epoch;     /* a peer's message of an older epoch (or held too long,
                                 * or beyond the holding bound): dropped */
    uint64_t held_epoch;        /* a peer's message of a newer epoch: held until this
                                 * node installs that epoch (then handled) */
};
void rt_get_stats(const struct rt *rt, struct rt_stats *out);
#endif
