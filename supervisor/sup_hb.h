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

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The datagram (little-endian), version 1:
 *
 *   offset size meaning
 *        0    4 magic "NHB1"
 *        4    2 version (1)
 *        6    2 flags (bit 0: the sender serves)
 *        8    4 cluster id: CRC-32C of the cluster name
 *       12    4 sender node id
 *       16    8 sender incarnation
 *       24    8 the epoch the sender advertises (sup_ns ns_adv_epoch)
 *       32    8 sequence number
 *       40    4 CRC-32C of bytes 0..39
 */
#define SUP_HB_MAGIC 0x3142484eu /* "NHB1" */
#define SUP_HB_VERSION 1
#define SUP_HB_SIZE 44


struct sup_hb_peer {
    _Atomic uint64_t last_us;    /* nclock_us of its last valid datagram (0: never) */
    _Atomic uint64_t inc;        /* its incarnation then */
    _Atomic uint64_t epoch;      /* the epoch it advertised then */
};

struct sup_hb_stats {
    _Atomic uint64_t sent, received, bad, send_errors, withheld;
};

struct sup_hb;

/* Bind the node's UDP port (its address in the cluster file) and start the
 * thread. `interval_us`: heartbeat period; `stall_us`: an executor turn
 * longer than this withholds heartbeats. */
int sup_hb_start(struct sup_hb **out, struct rt *rt, uint64_t incarnation, uint64_t interval_us,
                 uint64_t stall_us);
void sup_hb_stop(struct sup_hb *h);
/* The epoch and serving flag this node advertises (executor thread). */
void sup_hb_advertise(struct sup_hb *h, uint64_t epoch, bool serving);
const struct sup_hb_peer *sup_hb_peer(const struct sup_hb *h, uint32_t node);
const struct sup_hb_stats *sup_hb_stats(const struct sup_hb *h);
/* When the thread last went round its loop (nclock_us): a thread that did
 * not run lately has not been receiving either. */
uint64_t sup_hb_loop_us(const struct sup_hb *h);
#endif
