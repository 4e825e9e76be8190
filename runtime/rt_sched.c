/* Executor: the scheduler loop, mailboxes and message recycling. */
#include "rt_internal.h"

#include "nassert.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nlog.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define RT_BATCH 64              /* messages a task handles before yielding */
#define RT_TURN_BUDGET 4096      /* messages handled per loop turn before input is read again */
#define RT_FREE_MAX 4096         /* recycled messages kept */
#define RT_ARENA_CHUNK 1024      /* first arena chunk of a message */
#define RT_EPOCH_LOG_US 1000000u /* at most one epoch-refusal line a second */

/* ---- messages ---- */

struct rt_msg *rt_msg_new(struct rt *rt, uint32_t type)
{
    struct rt_msg *m = rt->free_msgs;
    if (m) {
        rt->free_msgs = m->next;
        rt->nfree--;
    } else {
        m = malloc(sizeof *m);
        if (!m)
            return NULL;
        arena_init(&m->arena, RT_ARENA_CHUNK);
    }
    m->next = NULL;
    m->type = type;
    m->from = 0;
    m->epoch = 0;
    m->cookie = 0;
    m->err = 0;
    m->body = NULL;
    m->dst = RT_SVC_NONE;
    m->kept = false;
    return m;
}

void *rt_msg_alloc(struct rt_msg *m, size_t n) { return arena_alloc(&m->arena, n); }

void rt_msg_keep(struct rt_msg *m) { m->kept = true; }

void rt_msg_free(struct rt *rt, struct rt_msg *m)
{
    if (rt->nfree >= RT_FREE_MAX) {
        arena_destroy(&m->arena);
        free(m);
        return;
    }
    arena_reset(&m->arena);
    m->next = rt->free_msgs;
    rt->free_msgs = m;
    rt->nfree++;
}

/* ---- mailboxes and run queue ---- */

void rt_post_local(struct rt *rt, enum rt_svc svc, struct rt_msg *m)
{
    N_ASSERT(svc > RT_SVC_NONE && svc < RT_SVC_MAX);
    struct rt_task *t = &rt->tasks[svc];
    if (!t->handler) {
        NLOG_WARN("rt", "dropping message type %u for service %d: no such task on this node",
                  m->type, (int)svc);
        rt_msg_free(rt, m);
        return;
    }
    m->dst = svc;
    m->next = NULL;
    if (t->tail)
        t->tail->next = m;
    else
        t->head = m;
    t->tail = m;
    t->depth++;
    if (!t->queued) {
        t->queued = true;
        t->run_next = NULL;
        if (rt->run_tail)
            rt->run_tail->run_next = t;
        else
            rt->run_head = t;
        rt->run_tail = t;
    }
}

/* Run ready tasks once around the queue; each handles up to RT_BATCH. */
static int rt_run_round(struct rt *rt)
{
    int handled = 0;
    struct rt_task *stop_after = rt->run_tail;
    while (rt->run_head) {
        struct rt_task *t = rt->run_head;
        rt->run_head = t->run_next;
        if (!rt->run_head)
            rt->run_tail = NULL;
        t->queued = false;
        for (int i = 0; i < RT_BATCH && t->head; i++) {
            struct rt_msg *m = t->head;
            t->head = m->next;
            if (!t->head)
                t->tail = NULL;
            t->depth--;
            m->next = NULL;
            const struct rt_msg_entry *e =
                m->type < rt->cfg.msgtab_len ? &rt->cfg.msgtab[m->type] : NULL;
            if (e && e->fn)
                e->fn(rt, t->state, m);
            else
                t->handler(rt, t->state, m);
            t->handled++;
            handled++;
            if (!m->kept)
                rt_msg_free(rt, m);
        }
        if (t->head && !t->queued) {
            t->queued = true;
            t->run_next = NULL;
            if (rt->run_tail)
                rt->run_tail->run_next = t;
            else
                rt->run_head = t;
            rt->run_tail = t;
        }
        if (t == stop_after)
            break;
    }
    rt->stats.msgs_handled += (uint64_t)handled;
    return handled;
}

/* Rounds until the mailboxes are empty or the turn's budget is spent. Not
 * reading new input while a backlog exists is the executor's flow control:
 * the sender's socket (and then its bounded send queue) fills instead of
 * our mailboxes growing without bound. */
static int rt_run_tasks(struct rt *rt)
{
    int handled = 0;
    while (rt->run_head && handled < RT_TURN_BUDGET)
        handled += rt_run_round(rt);
    return handled;
}

/* ---- network upcalls ---- */

static const struct rt_msg_entry *rt_entry(const struct rt *rt, uint32_t type)
{
    if (type >= rt->cfg.msgtab_len)
        return NULL;
    const struct rt_msg_entry *e = &rt->cfg.msgtab[type];
    if (e->svc == RT_SVC_NONE || !e->desc || !rt->tasks[e->svc].handler)
        return NULL;
    return e;
}

static bool rt_known_type(void *ctx, uint32_t type) { return rt_entry(ctx, type) != NULL; }

/* "client, peer, local": the classes in `from` (RT_FROM_* bits). */
static const char *rt_from_str(uint32_t from, char *buf, size_t n)
{
    static const struct { uint32_t bit; const char *name; } names[] = {
        {RT_FROM_CLIENT, "client"}, {RT_FROM_PEER, "peer"}, {RT_FROM_LOCAL, "local"}};
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((from & names[i].bit) && off < n)
            off += (size_t)snprintf(buf + off, n - off, "%s%s", off ? ", " : "", names[i].name);
    if (!off)
        snprintf(buf, n, "nobody");
    return buf;
}

/* A received message whose row does not allow its sender's class: counted,
 * and the negative return makes the endpoint log the detail (type name,
 * sender, its address) and close that connection (net/README.md "Bad
 * input"). */
static int rt_refuse_sender(struct rt *rt, const struct rt_msg_entry *e, uint32_t type,
                            net_addr from, uint32_t cls)
{
    char where[96], allowed[40];
    rt->stats.refused_sender++;
    net_peer_name(rt->ep, from, where, sizeof where);
    rt_from_str(e->from, allowed, sizeof allowed);
    switch (cls) {
    case RT_FROM_CLIENT:
        return nines_err(NINES_EPROTO,
                         "%s (type %u) refused from client conn %llu (%s): allowed from %s",
                         e->name, type, (unsigned long long)from, where, allowed);
    case RT_FROM_PEER:
        return nines_err(NINES_EPROTO, "%s (type %u) refused from node %llu (%s): allowed from %s",
                         e->name, type, (unsigned long long)from, where, allowed);
    default:
        return nines_err(NINES_EINVAL, "%s (type %u) from %llu: bad sender class %u", e->name,
                         type, (unsigned long long)from, cls);
    }
}

/* A peer's message of another epoch whose row says RT_EPOCH_SAME: dropped,
 * counted, logged at most once a second (a node-set change makes many). */
static void rt_refuse_epoch(struct rt *rt, const struct rt_msg_entry *e,
                            const struct net_msg_in *in)
{
    rt->stats.refused_epoch++;
    uint64_t now = nclock_us();
    if (rt->epoch_log_us && now - rt->epoch_log_us < RT_EPOCH_LOG_US) {
        rt->epoch_log_quiet++;
        return;
    }
    NLOG_WARN("rt",
              "dropping %s from node %llu: its epoch %llu, this node's %llu (%llu more dropped "
              "for their epoch since the last such line)",
              e->name, (unsigned long long)in->from, (unsigned long long)in->epoch,
              (unsigned long long)rt->epoch, (unsigned long long)rt->epoch_log_quiet);
    rt->epoch_log_us = now;
    rt->epoch_log_quiet = 0;
}

/* Messages of a newer epoch than this node's: the sender installed a set
 * this node has not yet (its install is on the way). Held, in arrival
 * order, and handed to their tasks when this node installs that epoch —
 * dropping them would cost the sender a re-send timeout. Bounded in count
 * and age; a message of an epoch this node skipped is dropped then. */
#define RT_HELD_MAX 4096
#define RT_HELD_MAX_US 2000000u

static void rt_drop_held_head(struct rt *rt)
{
    struct rt_msg *m = rt->held_head;
    rt->held_head = m->next;
    if (!rt->held_head)
        rt->held_tail = NULL;
    rt->nheld--;
    rt->stats.refused_epoch++;
    rt_msg_free(rt, m);
}

static void rt_hold(struct rt *rt, struct rt_msg *m, enum rt_svc svc)
{
    uint64_t now = nclock_us();
    while (rt->held_head && (rt->nheld >= RT_HELD_MAX ||
                             now - rt->held_head->cookie > RT_HELD_MAX_US))
        rt_drop_held_head(rt);
    m->dst = svc;
    m->cookie = now;
    m->next = NULL;
    if (rt->held_tail)
        rt->held_tail->next = m;
    else
        rt->held_head = m;
    rt->held_tail = m;
    rt->nheld++;
    rt->stats.held_epoch++;
}

/* The node's epoch moved: hand over what was held for it, drop what was
 * held for an epoch it passed, keep what is newer still. */
static void rt_release_held(struct rt *rt)
{
    struct rt_msg *m = rt->held_head, *keep_head = NULL, *keep_tail = NULL;
    uint32_t kept = 0;
    rt->held_head = rt->held_tail = NULL;
    while (m) {
        struct rt_msg *next = m->next;
        m->next = NULL;
        if (m->epoch == rt->epoch) {
            rt->stats.msgs_remote_in++;
            rt_post_local(rt, m->dst, m);
        } else if (m->epoch < rt->epoch) {
            rt->stats.refused_epoch++;
            rt_msg_free(rt, m);
        } else {
            if (keep_tail)
                keep_tail->next = m;
            else
                keep_head = m;
            keep_tail = m;
            kept++;
        }
        m = next;
    }
    rt->held_head = keep_head;
    rt->held_tail = keep_tail;
    rt->nheld = kept;
}

static int rt_on_msg(void *ctx, const struct net_msg_in *in)
{
    struct rt *rt = ctx;
    const struct rt_msg_entry *e = rt_entry(rt, in->type);
    if (!e)
        return nines_err(NINES_EUNKNOWN_MSG, "unknown message type %u", in->type);
    /* the class comes from the address the endpoint delivers on: node ids
     * only after a node HELLO, client connections stay >= NET_CONN_BASE */
    uint32_t cls = in->from >= NET_CONN_BASE ? RT_FROM_CLIENT : RT_FROM_PEER;
    if (!(e->from & cls))
        return rt_refuse_sender(rt, e, in->type, in->from, cls);
    bool hold = false;
    if (cls == RT_FROM_PEER && e->epoch != RT_EPOCH_ANY && in->epoch != rt->epoch) {
        if (in->epoch < rt->epoch) {
            rt_refuse_epoch(rt, e, in);
            return 0;
        }
        hold = true; /* newer: this node's install is on the way */
    }
    struct rt_msg *m = rt_msg_new(rt, in->type);
    if (!m)
        return nines_err(NINES_ENOMEM, "no memory for a %s message", e->name);
    m->from = in->from;
    m->epoch = in->epoch;
    m->body = protobuf_c_message_unpack(e->desc, arena_pb_allocator(&m->arena), in->body_len,
                                        in->body);
    if (!m->body) {
        rt_msg_free(rt, m);
        rt->stats.unpack_errors++;
        return nines_err(NINES_EPROTO, "cannot unpack the %zu-byte body of a %s message",
                         in->body_len, e->name);
    }
    if (hold) {
        rt_hold(rt, m, e->svc);
        return 0;
    }
    rt->stats.msgs_remote_in++;
    rt_post_local(rt, e->svc, m);
    return 0;
}

/* A membership event to every subscribed task (rt_subscribe_peers). */
static void rt_post_event(struct rt *rt, uint32_t type, net_addr from, uint64_t cookie,
                          int err)
{
    for (int s = RT_SVC_NONE + 1; s < RT_SVC_MAX; s++) {
        if (!rt->peer_subs[s] || !rt->tasks[s].handler)
            continue;
        struct rt_msg *m = rt_msg_new(rt, type);
        if (!m)
            return;
        m->from = from;
        m->cookie = cookie;
        m->err = err;
        rt_post_local(rt, (enum rt_svc)s, m);
    }
}

int rt_subscribe_peers(struct rt *rt, enum rt_svc svc)
{
    if (svc <= RT_SVC_NONE || svc >= RT_SVC_MAX)
        return nines_err(NINES_EINVAL, "bad service %d for peer events", (int)svc);
    rt->peer_subs[svc] = true;
    return 0;
}

static void rt_on_peer_up(void *ctx, uint32_t node, bool restarted)
{
    if (restarted)
        rt_post_event(ctx, RT_MSG_PEER_RESTARTED, node, node, 0);
    rt_post_event(ctx, RT_MSG_PEER_UP, node, node, 0);
}

static void rt_on_peer_down(void *ctx, uint32_t node, int err)
{
    rt_post_event(ctx, RT_MSG_PEER_DOWN, node, node, err);
}

static void rt_on_client_close(void *ctx, net_addr conn)
{
    struct rt *rt = ctx;
    /* every service that keeps client state hears of it */
    for (int s = RT_SVC_SUP; s < RT_SVC_MAX; s++) {
        if (!rt->tasks[s].handler)
            continue;
        struct rt_msg *m = rt_msg_new(rt, RT_MSG_CLIENT_CLOSED);
        if (!m)
            return;
        m->from = conn;
        rt_post_local(rt, (enum rt_svc)s, m);
    }
}

/* ---- sending ---- */

int rt_send(struct rt *rt, net_addr to, enum rt_svc svc, struct rt_msg *m)
{
#ifdef NINES_FAULTS
    if (rt->fault_fn) {
        int rc;
        if (rt_fault_filter(rt, to, svc, m, &rc))
            return rc;
    }
#endif
    return rt_send_nofault(rt, to, svc, m);
}

int rt_send_nofault(struct rt *rt, net_addr to, enum rt_svc svc, struct rt_msg *m)
{
    if (to == 0 || to == rt->cfg.self) {
        const struct rt_msg_entry *e =
            m->type < rt->cfg.msgtab_len ? &rt->cfg.msgtab[m->type] : NULL;
        if (e && e->svc != RT_SVC_NONE && !(e->from & RT_FROM_LOCAL)) {
            char allowed[40];
            rt->stats.refused_sender++;
            rt_from_str(e->from, allowed, sizeof allowed);
            NLOG_WARN("rt", "dropping %s (type %u) sent by a task of this node: allowed from %s",
                      e->name, m->type, allowed);
            rt_msg_free(rt, m);
            return nines_err(NINES_EPROTO, "%s (type %u) may not be sent locally", e->name,
                             m->type);
        }
        rt->stats.msgs_local++;
        m->from = 0;
        m->epoch = rt->epoch;
        rt_post_local(rt, svc, m);
        return 0;
    }
    int rc;
    if (!rt->ep)
        rc = nines_err(NINES_EUNREACHABLE, "node has no network endpoint");
    else if (!m->body)
        rc = nines_err(NINES_EINVAL, "remote message type %u has no body", m->type);
    else
        rc = net_send(rt->ep, to, m->type, m->body);
    if (rc == 0)
        rt->stats.msgs_remote_out++;
    rt_msg_free(rt, m);
    return rc;
}

/* ---- lifecycle ---- */

int rt_create(struct rt **out, const struct rt_config *cfg)
{
    struct rt *rt = calloc(1, sizeof *rt);
    if (!rt)
        return nines_err(NINES_ENOMEM, "no memory for the runtime");
    rt->cfg = *cfg;
    rt->wake_fd = -1;
    rt->next_timer_id = 1;
    pthread_mutex_init(&rt->inbox_mu, NULL);
    pthread_mutex_init(&rt->io_mu, NULL);
    pthread_cond_init(&rt->io_cv, NULL);
    rt->now_us = rt->start_us = rt_clock_us(rt);
    for (int s = 0; s < RT_SVC_MAX; s++)
        rt->tasks[s].svc = (enum rt_svc)s;
    nines_ctx_node = cfg->self;
    int rc = 0;
    if (cfg->conf) {
        struct net_handlers h = {
            .ctx = rt,
            .on_msg = rt_on_msg,
            .known_type = rt_known_type,
            .on_peer_up = rt_on_peer_up,
            .on_peer_down = rt_on_peer_down,
            .on_client_close = rt_on_client_close,
        };
        rc = cfg->transport ? net_endpoint_open_on(&rt->ep, cfg->conf, cfg->self, cfg->transport, &h)
                            : net_endpoint_open(&rt->ep, cfg->conf, cfg->self, &h);
    } else {
        rt->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (rt->wake_fd < 0)
            rc = nines_err(NINES_ESYS, "eventfd: %s", strerror(errno));
    }
    if (rc) {
        rt_destroy(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

void rt_destroy(struct rt *rt)
{
    if (!rt)
        return;
    rt_io_stop(rt);
    rt_inbox_drain(rt);
    while (rt->held_head)
        rt_drop_held_head(rt);
    for (int s = 0; s < RT_SVC_MAX; s++) {
        struct rt_msg *m = rt->tasks[s].head;
        while (m) {
            struct rt_msg *next = m->next;
            arena_destroy(&m->arena);
            free(m);
            m = next;
        }
    }
    while (rt->free_msgs) {
        struct rt_msg *m = rt->free_msgs;
        rt->free_msgs = m->next;
        arena_destroy(&m->arena);
        free(m);
    }
    rt_timers_destroy(rt);
    if (rt->ep)
        net_endpoint_close(rt->ep);
    if (rt->wake_fd >= 0)
        close(rt->wake_fd);
    pthread_mutex_destroy(&rt->inbox_mu);
    pthread_mutex_destroy(&rt->io_mu);
    pthread_cond_destroy(&rt->io_cv);
    free(rt);
}

int rt_task_add(struct rt *rt, enum rt_svc svc, const char *name, rt_handler h, void *state)
{
    if (svc <= RT_SVC_NONE || svc >= RT_SVC_MAX || !h)
        return nines_err(NINES_EINVAL, "bad task %s for service %d", name, (int)svc);
    if (rt->tasks[svc].handler)
        return nines_err(NINES_EEXIST, "service %d already has task %s", (int)svc,
                         rt->tasks[svc].name);
    rt->tasks[svc].name = name;
    rt->tasks[svc].handler = h;
    rt->tasks[svc].state = state;
    struct rt_msg *m = rt_msg_new(rt, RT_MSG_START);
    if (!m)
        return nines_err(NINES_ENOMEM, "no memory to start task %s", name);
    rt_post_local(rt, svc, m);
    return 0;
}

/* Wait for input: network (or the wake eventfd) for at most timeout_ms. */
static int rt_wait(struct rt *rt, int timeout_ms)
{
    if (rt->ep)
        return net_poll(rt->ep, timeout_ms);
    struct pollfd p = {.fd = rt->wake_fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    if (n > 0) {
        uint64_t v;
        if (read(rt->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
            NLOG_WARN("rt", "wake eventfd read: %s", strerror(errno));
    }
    return 0;
}

int rt_step(struct rt *rt, int max_wait_ms)
{
    rt->stats.loop_turns++;
    rt->now_us = rt_clock_us(rt);
    atomic_store_explicit(&rt->busy_since, nclock_us(), memory_order_relaxed);
    if (atomic_load_explicit(&rt->inbox_nonempty, memory_order_acquire))
        rt_inbox_drain(rt);
    rt_timers_fire(rt);
    int handled = rt_run_tasks(rt);

    int timeout = 0;
    if (!rt->run_head && !atomic_load(&rt->inbox_nonempty) && !atomic_load(&rt->stop))
        timeout = rt_timers_wait_ms(rt, max_wait_ms);
    if (timeout != 0 && rt->cfg.poll_us && rt->ep) {
        /* brief adaptive polling: a reply often arrives within microseconds */
        uint64_t until = nclock_us() + rt->cfg.poll_us;
        while (nclock_us() < until && !atomic_load(&rt->inbox_nonempty)) {
            if (net_poll(rt->ep, 0) > 0) {
                timeout = 0;
                break;
            }
        }
    }
    if (timeout != 0)
        atomic_store_explicit(&rt->busy_since, 0, memory_order_relaxed);
    rt_wait(rt, timeout);
    rt->now_us = rt_clock_us(rt);
    atomic_store_explicit(&rt->busy_since, nclock_us(), memory_order_relaxed);
    handled += rt_run_tasks(rt);
    if (rt->ep)
        net_flush(rt->ep);
    return handled;
}

int rt_run(struct rt *rt)
{
    while (!atomic_load(&rt->stop))
        rt_step(rt, -1);
    return 0;
}

void rt_stop(struct rt *rt)
{
    atomic_store(&rt->stop, true);
    rt_wake(rt);
}

void rt_set_epoch(struct rt *rt, uint64_t epoch)
{
    rt->epoch = epoch;
    if (rt->ep)
        net_set_epoch(rt->ep, epoch);
}

uint64_t rt_epoch(const struct rt *rt) { return rt->epoch; }

int rt_subscribe_nodeset(struct rt *rt, enum rt_svc svc)
{
    if (svc <= RT_SVC_NONE || svc >= RT_SVC_MAX)
        return nines_err(NINES_EINVAL, "bad service %d for node-set events", (int)svc);
    rt->ns_subs[svc] = true;
    return 0;
}

const struct rt_nodeset *rt_nodeset(const struct rt *rt) { return &rt->ns; }

void rt_set_lease(struct rt *rt, uint64_t remaining_us)
{
    rt->lease_src = NULL;
    uint64_t now = rt_clock_us(rt);
    rt->lease_until = remaining_us == UINT64_MAX ? UINT64_MAX
                      : remaining_us        ? now + remaining_us
                                            : 0;
    rt->lease_set = true;
}

void rt_set_lease_source(struct rt *rt, const _Atomic uint64_t *until_us)
{
    rt->lease_src = until_us;
    rt->lease_set = until_us != NULL;
}

bool rt_serving(const struct rt *rt)
{
    if (!rt->ns.serving)
        return false;
    if (rt->lease_src)
        return nclock_us() < atomic_load(rt->lease_src);
    /* without a supervisor's lease (in-process tests), membership alone */
    return !rt->lease_set || rt_clock_us(rt) < rt->lease_until;
}

uint64_t rt_busy_since_us(const struct rt *rt)
{
    return atomic_load_explicit(&((struct rt *)rt)->busy_since, memory_order_relaxed);
}

void rt_install_nodeset(struct rt *rt, const struct rt_nodeset *ns)
{
    N_ASSERT((ns->current & ~ns->members) == 0);
    rt->ns = *ns;
    rt_set_epoch(rt, ns->epoch);
    for (int s = RT_SVC_NONE + 1; s < RT_SVC_MAX; s++) {
        struct rt_task *t = &rt->tasks[s];
        if (!rt->ns_subs[s] || !t->handler)
            continue;
        struct rt_msg *m = rt_msg_new(rt, RT_MSG_NODESET);
        /* no memory for a 100-byte message: a service that missed a node set
         * would serve the wrong roles, so the node stops (fail-stop; its
         * peers take over) */
        N_ASSERT(m != NULL);
        m->cookie = ns->epoch;
        m->epoch = ns->epoch;
        t->handler(rt, t->state, m);
        t->handled++;
        if (!m->kept)
            rt_msg_free(rt, m);
    }
    /* every service has seen the set: what peers sent in its epoch */
    if (rt->held_head)
        rt_release_held(rt);
}

uint32_t rt_self(const struct rt *rt) { return rt->cfg.self; }
struct net_endpoint *rt_net(struct rt *rt) { return rt->ep; }
uint32_t rt_client_role(struct rt *rt, net_addr from)
{
    if (from < NET_CONN_BASE)
        return 0;
    return rt->ep ? net_conn_role(rt->ep, from) : NET_ROLE_ADMIN;
}
uint64_t rt_now_us(const struct rt *rt) { return rt->now_us; }
uint64_t rt_start_us(const struct rt *rt) { return rt->start_us; }
const struct nines_conf *rt_conf(const struct rt *rt) { return rt->cfg.conf; }
const struct rt_msg_entry *rt_msg_row(const struct rt *rt, uint32_t type)
{
    return rt_entry(rt, type);
}
void rt_get_stats(const struct rt *rt, struct rt_stats *out) { *out = rt->stats; }
