/* Fault injection for tests: a message filter on rt_send and a movable
 * clock (runtime/README.md "Fault injection"). Compiled always; effective
 * only in NINES_FAULTS builds, so a production build has no hook. */
#include "rt_internal.h"

#include "nines/errors.h"
#include "nlog.h"

uint64_t rt_clock_us(const struct rt *rt) { return nclock_us() + rt->clock_skew_us; }

#ifdef NINES_FAULTS
int rt_fault_set_filter(struct rt *rt, rt_fault_fn fn, void *ctx)
{
    rt->fault_fn = fn;
    rt->fault_ctx = ctx;
    return 0;
}

int rt_fault_advance_clock(struct rt *rt, uint64_t us)
{
    rt->clock_skew_us += us;
    rt->now_us = rt_clock_us(rt);
    return 0;
}

/* true: the filter decided (*rc is rt_send's result); false: send it. */
bool rt_fault_filter(struct rt *rt, net_addr to, enum rt_svc svc, struct rt_msg *m, int *rc)
{
    uint32_t type = m->type;
    enum rt_fault_verdict v = rt->fault_fn(rt->fault_ctx, rt, to, svc, m);
    switch (v) {
    case RT_FAULT_PASS:
        return false;
    case RT_FAULT_DROP:
        NLOG_DEBUG("rt", "fault: message type %u to %llu dropped", type, (unsigned long long)to);
        rt_msg_free(rt, m);
        *rc = 0;
        return true;
    case RT_FAULT_FAIL:
        rt_msg_free(rt, m);
        *rc = nines_err(NINES_EAGAIN, "fault: send of message type %u to %llu refused", type,
                        (unsigned long long)to);
        return true;
    case RT_FAULT_TAKE:
        *rc = 0;
        return true;
    default:
        NLOG_ERROR("rt", "fault filter returned %d: message passed", (int)v);
        return false;
    }
}
#else
int rt_fault_set_filter(struct rt *rt, rt_fault_fn fn, void *ctx)
{
    (void)rt, (void)fn, (void)ctx;
    return nines_err(NINES_ESTATE, "fault injection needs a FAULTS=1 build");
}

int rt_fault_advance_clock(struct rt *rt, uint64_t us)
{
    (void)rt, (void)us;
    return nines_err(NINES_ESTATE, "fault injection needs a FAULTS=1 build");
}
#endif
