/* runtime internals shared by rt_*.c (not for other modules). */
#ifndef NINES_RT_INTERNAL_H
#define NINES_RT_INTERNAL_H
#include "rt.h"
#include "nclock.h"

#include <pthread.h>
#include <stdatomic.h>

struct rt_task {
    enum rt_svc svc;
    const char *name;
    rt_handler handler;
    void *state;
    struct rt_msg *head, *tail;    /* mailbox, FIFO */
    uint32_t depth;                /* messages in the mailbox */
    bool queued;                   /* on the run queue */
    struct rt_task *run_next;
    uint64_t handled;
};

struct rt_timer {
    uint64_t deadline_us;
    int64_t id;
    enum rt_svc svc;
    uint64_t cookie;
};

struct rt_xmsg {                   /* cross-thread post */
    struct rt_xmsg *next;
    enum rt_svc svc;
    uint64_t cookie;
};

struct rt {
    struct rt_config cfg;
    struct net_endpoint *ep;
    int wake_fd;                   /* eventfd when there is no endpoint */
    struct rt_task tasks[RT_SVC_MAX];
    bool peer_subs[RT_SVC_MAX];    /* rt_subscribe_peers */
    bool ns_subs[RT_SVC_MAX];      /* rt_subscribe_nodeset */
    struct rt_nodeset ns;          /* rt_install_nodeset */
    uint64_t lease_until;          /* rt_set_lease */
    bool lease_set;                /* rt_set_lease was called */
    const _Atomic uint64_t *lease_src; /* rt_set_lease_source (NULL: none) */
    _Atomic uint64_t busy_since;   /* rt_busy_since_us */
    struct rt_task *run_head, *run_tail;
    struct rt_msg *free_msgs;
    uint32_t nfree;
    /* timers: binary min-heap on deadline */
    struct rt_timer *heap;
    uint32_t nheap, heap_cap;
    int64_t next_timer_id;
    /* cross-thread inbox */
    pthread_mutex_t inbox_mu;
    struct rt_xmsg *inbox;
    struct rt_io_req *io_done;
    atomic_bool inbox_nonempty;
    /* I/O thread */
    pthread_t io_thread;
    bool io_started;
    pthread_mutex_t io_mu;
    pthread_cond_t io_cv;
    struct rt_io_req *io_head, *io_tail;
    bool io_stop;
    atomic_bool stop;
    uint64_t now_us, start_us;
    uint64_t epoch;                /* rt_set_epoch */
    uint64_t epoch_log_us;         /* last "dropping ... epoch" line (rate limit) */
    uint64_t epoch_log_quiet;      /* epoch refusals not logged since that line */
    struct rt_msg *held_head, *held_tail; /* newer-epoch messages (cookie: received at,
                                           * nclock_us), in arrival order */
    uint32_t nheld;
    struct rt_stats stats;
    /* fault injection (rt_fault.c; active in NINES_FAULTS builds only) */
    rt_fault_fn fault_fn;
    void *fault_ctx;
    uint64_t clock_skew_us;        /* added to the clock: tests move time */
};

/* The executor's clock: monotonic, plus the tests' skew. */
uint64_t rt_clock_us(const struct rt *rt);

/* rt_timer.c */
void rt_timers_fire(struct rt *rt);
int rt_timers_wait_ms(const struct rt *rt, int max_wait_ms);
void rt_timers_destroy(struct rt *rt);
/* rt_io.c */
void rt_io_stop(struct rt *rt);
void rt_wake(struct rt *rt);
void rt_inbox_drain(struct rt *rt);
/* rt_fault.c */
#ifdef NINES_FAULTS
bool rt_fault_filter(struct rt *rt, net_addr to, enum rt_svc svc, struct rt_msg *m, int *rc);
#endif
#endif
