/* RDMA transport (internal to net/): libibverbs reliable-connected queue
 * pairs behind the net_transport ops. */
#ifndef NINES_NET_RDMA_H
#define NINES_NET_RDMA_H
#include "conf.h"
#include "net_transport.h"

/* Build an RDMA transport for node `self`. Returns NINES_ENODEV (detail
 * says why) when no RDMA device is usable; the caller then uses TCP. */
int net_rdma_create(struct net_transport **out, const struct nines_conf *cfg, uint32_t self);

/* Add `fd` to the set poll() sleeps on: when it is readable, poll() stops
 * busy-polling or waiting and returns (it does not read fd). For a
 * composite transport whose other half must not wait behind RDMA (dual.c).
 * One such fd per transport. */
int net_rdma_watch_fd(struct net_transport *t, int fd);
#endif
