/* The I-am-alive path (internal, supervisor): a thread of its own that
 * sends a small UDP datagram to every other configured node every
 * heartbeat interval and records what it receives, so heartbeats never
 * wait behind log batches in a connection's send queue nor behind a long
 * executor turn. It withholds this node's heartbeats while the executor is
 * stuck in one turn (the watchdog). It decides nothing and never waits for
 * the executor: the supervisor task reads the recorded state (sup_hb_peer)
 * on its own timer and feeds the node-set protocol.
 * supervisor/README.md "I-am-alive". */
#ifndef NINES_SUP_HB_H
#define NINES_SUP_HB_H
#include "runtime/rt.h"
#include "sup_ns.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The datagram (little-endian), version 2:
 *
 *   offset size meaning
 *        0    4 magic "NHB1"
 *        4    2 version (2; version 1, without the ballot, is refused)
 *        6    2 flags (bit 0: the sender serves)
 *        8    4 cluster id: CRC-32C of the cluster name
 *       12    4 sender node id
 *       16    8 sender incarnation
 *       24    8 advertised epoch (sup_ns ns_adv): the sender's installed one, or
 *               that of a proposal it accepted that includes it
 *       32    4 advertised round: 0 for an installed set, else the accepted
 *               proposal's ballot round
 *       36    4 advertised coordinator: 0, or the accepted ballot's coordinator
 *       40    8 sequence number
 *       48    4 CRC-32C of bytes 0..47
 */
#define SUP_HB_MAGIC 0x3142484eu /* "NHB1" */
#define SUP_HB_VERSION 2
#define SUP_HB_SIZE 52

/* What the thread recorded of a peer's last heartbeat. The thread writes
 * it under a sequence count (odd while it writes) and never waits; read it
 * with sup_hb_read. */
struct sup_hb_heard {
    uint64_t last_us;            /* nclock_us of its last valid datagram (0: never) */
    uint64_t inc;                /* its incarnation then */
    uint64_t epoch;              /* the epoch it advertised then */
    uint32_t round, coord;       /* ... and the ballot (0, 0: its installed set) */
};

struct sup_hb_peer {
    _Atomic uint32_t seq;        /* odd while the thread writes */
    _Atomic uint64_t last_us, inc, epoch;
    _Atomic uint32_t round, coord;
    _Atomic uint64_t unreach_us; /* nclock_us of the last ICMP "port unreachable" for a
                                  * datagram sent to it: its host says no process has
                                  * its port (0: never) */
};

struct sup_hb_stats {
    _Atomic uint64_t sent, received, bad, send_errors, withheld, unreachable;
};

struct sup_hb;

/* Bind the node's UDP port (its address in the cluster file) and start the
 * thread. `interval_us`: heartbeat period; `stall_us`: an executor turn
 * longer than this withholds heartbeats. */
int sup_hb_start(struct sup_hb **out, struct rt *rt, uint64_t incarnation, uint64_t interval_us,
                 uint64_t stall_us);
void sup_hb_stop(struct sup_hb *h);
/* The epoch and serving flag this node advertises (executor thread). */
void sup_hb_advertise(struct sup_hb *h, uint64_t epoch, uint32_t round, uint32_t coord,
                       bool serving);
/* The lease rule (executor thread, after every change of the node-set
 * state): the thread keeps the lease from it in real time, so a long
 * executor turn neither extends nor cuts it. `window_us`: how long a
 * confirmation counts. */
void sup_hb_set_rule(struct sup_hb *h, const struct ns_lease_rule *r, uint64_t window_us);
/* The lease's end (nclock_us; 0: none) as the latest confirmations give
 * it: the quorum-th most recent confirmation under the rule, plus the
 * window (supervisor/README.md "Fencing"). The runtime reads, through
 * sup_hb_lease_src, the lease granted: the latest end ever given, never
 * shortened (a lease once granted holds until it ends). */
uint64_t sup_hb_lease(const struct sup_hb *h);
const _Atomic uint64_t *sup_hb_lease_src(const struct sup_hb *h);
/* A consistent copy of what was last heard from `node` (executor thread);
 * false when none could be read now (the thread was stopped in the middle
 * of writing it): the caller judges nothing about that peer this time. */
bool sup_hb_read(const struct sup_hb *h, uint32_t node, struct sup_hb_heard *out);
/* Send one heartbeat to `node` now (executor thread; never blocks): after
 * its connection closed, the answer tells whether its process is gone (an
 * ICMP "port unreachable", recorded in unreach_us) well before the next
 * interval's silence would. */
void sup_hb_probe(struct sup_hb *h, uint32_t node);
const struct sup_hb_peer *sup_hb_peer(const struct sup_hb *h, uint32_t node);
const struct sup_hb_stats *sup_hb_stats(const struct sup_hb *h);
/* When the thread last went round its loop (nclock_us): a thread that did
 * not run lately has not been receiving either. */
uint64_t sup_hb_loop_us(const struct sup_hb *h);
/* When the thread last ran again after a gap of more than two intervals
 * (0: never): silence before then says nothing about the others. */
uint64_t sup_hb_resumed_us(const struct sup_hb *h);
#endif
