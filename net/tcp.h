/* TCP transport (internal to net/): epoll, non-blocking sockets, one
 * connection per node pair (the lower id dials the higher), per-peer
 * contiguous send queues written with one send() per flush. */
#ifndef NINES_NET_TCP_H
#define NINES_NET_TCP_H
#include <stdint.h>

#include "conf.h"
#include "net_transport.h"

/* Build the TCP transport for node `self` (listens on its host:port from
 * cfg at start()). cfg must outlive the transport. */
int net_tcp_create(struct net_transport **out, const struct nines_conf *cfg, uint32_t self);
#endif
