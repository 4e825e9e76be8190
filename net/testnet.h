/* In-process test transport (internal to net/, for tests): a hub with a
 * virtual clock connects the transports of many nodes inside one thread,
 * with deterministic fault injection (seeded PRNG): frame drop, fixed or
 * random delay, reordering, partitions between node pairs, and crash /
 * restart of a node's transport. Addressing and upcalls are those of the
 * TCP transport (lower id "dials" the higher; accepted connections are
 * unbound until bind()), so the endpoint runs unchanged on top of it.
 *
 * Time only moves with net_testnet_advance(); poll() never sleeps and
 * delivers the events whose due time has come. Not thread-safe. */
#ifndef NINES_NET_TESTNET_H
#define NINES_NET_TESTNET_H
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "net_transport.h"

struct net_testnet;

struct net_testnet_stats {
    uint64_t frames_sent;      /* frames handed to the network by flush */
    uint64_t frames_dropped;   /* lost by the drop probability or a cut link */
    uint64_t frames_delivered; /* on_frame upcalls */
    uint64_t connects;         /* links established */
    uint64_t dial_failures;    /* dials to an absent, crashed or cut node */
};

/* A hub for the nodes of cfg (copied: max_frame_bytes, send_queue_bytes,
 * reconnect_min_ms/max_ms and the node list are used). */
int net_testnet_new(struct net_testnet **out, const struct nines_conf *cfg, uint64_t seed);
/* All transports of the hub must have been destroyed first. */
void net_testnet_free(struct net_testnet *hub);

/* The transport of `node` (one live transport per node at a time;
 * NINES_EEXIST while the previous one is not destroyed). */
int net_testnet_transport(struct net_testnet *hub, uint32_t node, struct net_transport **out);

void net_testnet_advance(struct net_testnet *hub, uint64_t us);
uint64_t net_testnet_now_us(const struct net_testnet *hub);

/* Each frame flushed from now on is lost with probability p (0..1).
 * Applies to every frame, handshakes included: set it after connecting. */
void net_testnet_set_drop(struct net_testnet *hub, double p);
/* Each frame is due min_us..max_us (uniform) after its flush. */
void net_testnet_set_delay(struct net_testnet *hub, uint64_t min_us, uint64_t max_us);
/* Off (default): frames on one connection keep their order whatever their
 * delays. On: each frame is due after its own delay, so they may pass. */
void net_testnet_set_reorder(struct net_testnet *hub, bool on);
/* Cut (or heal) the link between nodes a and b: a cut drops the
 * connection at once (in-flight frames lost, both sides get on_close at
 * their next poll) and fails every dial between them until healed. */
void net_testnet_partition(struct net_testnet *hub, uint32_t a, uint32_t b, bool cut);
/* Crash node's transport: its connections vanish (peers see on_close),
 * queued and in-flight frames are lost, it gets no more upcalls and sends
 * nothing. Restart = destroy it (net_endpoint_close) and create a new
 * transport for the node. */
void net_testnet_crash(struct net_testnet *hub, uint32_t node);

void net_testnet_get_stats(const struct net_testnet *hub, struct net_testnet_stats *out);
#endif
