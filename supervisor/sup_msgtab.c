/* The one table mapping each wire message type to its service and handler.
 * A type missing here is unknown: a peer that sends it is disconnected. */
#include "sup.h"

#include "nines_net.pb-c.h"

#define ROW(T, desc_, svc_, fn_) [NINES__MSG_TYPE__##T] = {#T, &desc_, svc_, fn_}

const struct rt_msg_entry sup_msgtab[] = {
    ROW(PING_REQ, nines__ping_req__descriptor, RT_SVC_SUP, sup_on_ping_req),
    ROW(SINK_REQ, nines__sink_req__descriptor, RT_SVC_SUP, sup_on_sink_req),
    ROW(STATUS_REQ, nines__status_req__descriptor, RT_SVC_SUP, sup_on_status_req),
    ROW(I_AM_ALIVE, nines__iam_alive__descriptor, RT_SVC_SUP, sup_on_i_am_alive),
};
const uint32_t sup_msgtab_len = sizeof sup_msgtab / sizeof sup_msgtab[0];
