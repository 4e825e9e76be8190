/* Composite transport (internal to net/): node-to-node frames over an RDMA
 * transport, client connections over a TCP listener on the node's own
 * host:port. net/README.md, "RDMA for nodes, TCP for clients". */
#ifndef NINES_NET_DUAL_H
#define NINES_NET_DUAL_H
#include <stdint.h>

#include "conf.h"
#include "net_transport.h"

/* Wrap `rdma` (from net_rdma_create*, not started) for node `self`: it
 * keeps carrying node addresses; a TCP transport created here with
 * NET_TCP_CLIENTS_ONLY accepts clients on self's host:port. Takes ownership
 * of `rdma` (destroyed when this fails). */
int net_dual_create(struct net_transport **out, const struct nines_conf *cfg, uint32_t self,
                    struct net_transport *rdma);

/* The halves, for tests and statistics (owned by the dual transport). */
struct net_transport *net_dual_rdma(struct net_transport *t);
struct net_transport *net_dual_tcp(struct net_transport *t);
#endif
