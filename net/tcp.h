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

/* Flags of net_tcp_create_ex. */
#define NET_TCP_CLIENTS_ONLY 1u   /* listen only: no peer nodes (no dials, node
                                     addresses are EINVAL, bind refuses) */
int net_tcp_create_ex(struct net_transport **out, const struct nines_conf *cfg, uint32_t self,
                      unsigned flags);

/* The transport's epoll fd: readable while poll(t, 0) has work. For a
 * composite transport that sleeps elsewhere (dual.c). */
int net_tcp_wait_fd(const struct net_transport *t);
#endif
