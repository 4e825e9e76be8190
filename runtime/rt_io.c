/* Cross-thread posting and the I/O thread for disk work. */
#include "rt_internal.h"

#include "nines/errors.h"
#include "nlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void rt_wake(struct rt *rt)
{
    if (rt->ep) {
        net_wake(rt->ep);
    } else if (rt->wake_fd >= 0) {
        uint64_t one = 1;
        if (write(rt->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            NLOG_WARN("rt", "wake eventfd write: %s", strerror(errno));
    }
}

int rt_post_from_thread(struct rt *rt, enum rt_svc svc, uint64_t cookie)
{
    if (svc <= RT_SVC_NONE || svc >= RT_SVC_MAX)
        return nines_err(NINES_EINVAL, "post to unknown service %d", (int)svc);
    struct rt_xmsg *x = malloc(sizeof *x);
    if (!x)
        return nines_err(NINES_ENOMEM, "no memory for a cross-thread post");
    x->svc = svc;
    x->cookie = cookie;
    pthread_mutex_lock(&rt->inbox_mu);
    x->next = rt->inbox;
    rt->inbox = x;
    atomic_store_explicit(&rt->inbox_nonempty, true, memory_order_release);
    pthread_mutex_unlock(&rt->inbox_mu);
    rt_wake(rt);
    return 0;
}

/* Reverse a LIFO list pulled off the inbox so posts keep their order. */
#define RT_REVERSE(type, head)                                                                     \
    do {                                                                                           \
        type *prev_ = NULL;                                                                        \
        while (head) {                                                                             \
            type *next_ = (head)->next;                                                            \
            (head)->next = prev_;                                                                  \
            prev_ = (head);                                                                        \
            (head) = next_;                                                                        \
        }                                                                                          \
        (head) = prev_;                                                                            \
    } while (0)

void rt_inbox_drain(struct rt *rt)
{
    pthread_mutex_lock(&rt->inbox_mu);
    struct rt_xmsg *x = rt->inbox;
    struct rt_io_req *done = rt->io_done;
    rt->inbox = NULL;
    rt->io_done = NULL;
    atomic_store_explicit(&rt->inbox_nonempty, false, memory_order_release);
    pthread_mutex_unlock(&rt->inbox_mu);
    RT_REVERSE(struct rt_xmsg, x);
    RT_REVERSE(struct rt_io_req, done);
    while (x) {
        struct rt_xmsg *next = x->next;
        struct rt_msg *m = rt_msg_new(rt, RT_MSG_USER);
        if (m) {
            m->cookie = x->cookie;
            rt_post_local(rt, x->svc, m);
        } else {
            NLOG_ERROR("rt", "out of memory: cross-thread post to service %d lost", (int)x->svc);
        }
        free(x);
        x = next;
    }
    while (done) {
        struct rt_io_req *next = done->next;
        struct rt_msg *m = rt_msg_new(rt, RT_MSG_IO_DONE);
        if (m) {
            m->cookie = (uint64_t)(uintptr_t)done;
            rt->stats.io_done++;
            rt_post_local(rt, done->svc, m);
        } else {
            NLOG_ERROR("rt", "out of memory: I/O completion for service %d lost", (int)done->svc);
        }
        done = next;
    }
}

static void *rt_io_main(void *arg)
{
    struct rt *rt = arg;
    pthread_mutex_lock(&rt->io_mu);
    for (;;) {
        while (!rt->io_head && !rt->io_stop)
            pthread_cond_wait(&rt->io_cv, &rt->io_mu);
        if (!rt->io_head && rt->io_stop)
            break;
        struct rt_io_req *req = rt->io_head;
        rt->io_head = req->next;
        if (!rt->io_head)
            rt->io_tail = NULL;
        pthread_mutex_unlock(&rt->io_mu);

        req->result = req->fn(req->arg);

        pthread_mutex_lock(&rt->inbox_mu);
        req->next = rt->io_done;
        rt->io_done = req;
        atomic_store_explicit(&rt->inbox_nonempty, true, memory_order_release);
        pthread_mutex_unlock(&rt->inbox_mu);
        rt_wake(rt);
        pthread_mutex_lock(&rt->io_mu);
    }
    pthread_mutex_unlock(&rt->io_mu);
    return NULL;
}

int rt_io_submit(struct rt *rt, struct rt_io_req *req)
{
    if (!req || !req->fn || req->svc <= RT_SVC_NONE || req->svc >= RT_SVC_MAX)
        return nines_err(NINES_EINVAL, "bad I/O request");
    if (!rt->io_started) {
        int rc = pthread_create(&rt->io_thread, NULL, rt_io_main, rt);
        if (rc)
            return nines_err(NINES_ESYS, "cannot start the I/O thread: %s", strerror(rc));
        rt->io_started = true;
    }
    req->next = NULL;
    pthread_mutex_lock(&rt->io_mu);
    if (rt->io_tail)
        rt->io_tail->next = req;
    else
        rt->io_head = req;
    rt->io_tail = req;
    pthread_cond_signal(&rt->io_cv);
    pthread_mutex_unlock(&rt->io_mu);
    return 0;
}

void rt_io_stop(struct rt *rt)
{
    if (!rt->io_started)
        return;
    pthread_mutex_lock(&rt->io_mu);
    rt->io_stop = true;
    pthread_cond_signal(&rt->io_cv);
    pthread_mutex_unlock(&rt->io_mu);
    pthread_join(rt->io_thread, NULL);
    rt->io_started = false;
}
