/* RDMA transport (internal to net/): libibverbs reliable-connected queue
 * pairs behind the net_transport ops. */
#ifndef NINES_NET_RDMA_H
#define NINES_NET_RDMA_H
#include "conf.h"
#include "net_transport.h"

/* Build an RDMA transport for node `self`. Returns NINES_ENODEV (detail
 * says why) when no RDMA device is usable; the caller then uses TCP. */
int net_rdma_create(struct net_transport **out, const struct nines_conf *cfg, uint32_t self);
#endif
