/* Timers: a binary min-heap of deadlines on the executor thread. A fired
 * timer becomes an RT_MSG_TIMER message in its task's mailbox. */
#include "rt_internal.h"

#include "nines/errors.h"

#include <stdlib.h>

static void heap_swap(struct rt_timer *h, uint32_t a, uint32_t b)
{
    struct rt_timer t = h[a];
    h[a] = h[b];
    h[b] = t;
}

static void heap_up(struct rt_timer *h, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h[p].deadline_us <= h[i].deadline_us)
            break;
        heap_swap(h, p, i);
        i = p;
    }
}

static void heap_down(struct rt_timer *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].deadline_us < h[m].deadline_us)
            m = l;
        if (r < n && h[r].deadline_us < h[m].deadline_us)
            m = r;
        if (m == i)
            return;
        heap_swap(h, m, i);
        i = m;
    }
}

static void heap_remove(struct rt *rt, uint32_t i)
{
    rt->nheap--;
    if (i == rt->nheap)
        return;
    rt->heap[i] = rt->heap[rt->nheap];
    heap_down(rt->heap, rt->nheap, i);
    heap_up(rt->heap, i);
}

int64_t rt_timer_add(struct rt *rt, enum rt_svc svc, uint64_t delay_us, uint64_t cookie)
{
    if (svc <= RT_SVC_NONE || svc >= RT_SVC_MAX)
        return nines_err(NINES_EINVAL, "timer for unknown service %d", (int)svc);
    if (rt->nheap == rt->heap_cap) {
        uint32_t cap = rt->heap_cap ? rt->heap_cap * 2 : 64;
        struct rt_timer *h = realloc(rt->heap, cap * sizeof *h);
        if (!h)
            return nines_err(NINES_ENOMEM, "no memory for %u timers", cap);
        rt->heap = h;
        rt->heap_cap = cap;
    }
    int64_t id = rt->next_timer_id++;
    rt->heap[rt->nheap] = (struct rt_timer){
        .deadline_us = rt->now_us + delay_us, .id = id, .svc = svc, .cookie = cookie};
    heap_up(rt->heap, rt->nheap++);
    return id; /* not heap[..].id: heap_up may have moved the entry */
}

bool rt_timer_cancel(struct rt *rt, int64_t id)
{
    for (uint32_t i = 0; i < rt->nheap; i++)
        if (rt->heap[i].id == id) {
            heap_remove(rt, i);
            return true;
        }
    return false;
}

void rt_timers_fire(struct rt *rt)
{
    while (rt->nheap && rt->heap[0].deadline_us <= rt->now_us) {
        struct rt_timer t = rt->heap[0];
        heap_remove(rt, 0);
        struct rt_msg *m = rt_msg_new(rt, RT_MSG_TIMER);
        if (!m)
            return; /* retried next turn: the timer is lost only on OOM */
        m->cookie = t.cookie;
        rt->stats.timers_fired++;
        rt_post_local(rt, t.svc, m);
    }
}

/* How long the loop may sleep: until the next timer, capped by max_wait_ms
 * (-1 = no cap). */
int rt_timers_wait_ms(const struct rt *rt, int max_wait_ms)
{
    if (!rt->nheap)
        return max_wait_ms;
    uint64_t d = rt->heap[0].deadline_us;
    if (d <= rt->now_us)
        return 0;
    uint64_t ms = (d - rt->now_us + 999) / 1000;
    if (max_wait_ms >= 0 && ms > (uint64_t)max_wait_ms)
        return max_wait_ms;
    return ms > 60000 ? 60000 : (int)ms;
}

void rt_timers_destroy(struct rt *rt)
{
    free(rt->heap);
    rt->heap = NULL;
    rt->nheap = rt->heap_cap = 0;
}
