/* Update channel (internal, updchan): ships the log records of this node's
 * primary fragment replicas to the nodes of their hot standbys
 * (UPD_LOG_REQ), and at a hot standby hands received records to the kernel
 * service for redo (a local message, no re-encoding) and acknowledges them
 * (UPD_LOG_CONF). One task (RT_SVC_UPD) per node; everything here runs on
 * the node's executor thread. See updchan/README.md. */
#ifndef NINES_UPD_H
#define NINES_UPD_H
#include "kernel/kern_frag.h"
#include "kernel/kern_log.h"
#include "runtime/rt.h"

#include "nines_txn.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

/* Local message types (never on the wire: above MsgType and RT_MSG_*). */
enum {
    UPD_MSG_SHIP = 0x20000, /* to RT_SVC_UPD: ship what is pending (upd_kick) */
    UPD_MSG_REDO,           /* to RT_SVC_KERN: received records; cookie = struct upd_redo * */
};

/* What a hot standby's kernel service gets: the records of one fragment in
 * log order (decoded; key and images point into the received message's
 * arena), then the transaction end marks that followed them. The message
 * arrives kept (rt_msg_keep) by the update channel: the kernel service's
 * handler sets m->kept = false so the runtime recycles it after the handler. */
struct upd_redo {
    uint32_t table, frag;
    uint32_t from;                     /* primary node */
    size_t nrecs;
    struct kern_logrec *recs;
    size_t nmarks;
    Nines__TxnEndMark *const *marks;
};

#define UPD_MSG_BYTES (256u * 1024u) /* record bytes per UPD_LOG_REQ before another one */
#define UPD_RETRY_MS 100             /* re-ship held records / marks this often */
#define UPD_ACK_MS 20                /* standby: acknowledge this often */

struct upd;
struct upd_ship;

/* Create the update channel of rt's node and register its task. */
int upd_init(struct upd **out, struct rt *rt);
/* After rt_destroy. */
void upd_fini(struct upd *u);

/* ---- primary side ---- */
/* Ship primary replica f (owned by the kernel service, which outlives the
 * entry) to node `standby` (0: none; records stay in the log). Shipping
 * starts at the log's first record. */
int upd_ship_add(struct upd *u, struct kern_frag *f, uint32_t standby, struct upd_ship **out);
void upd_ship_remove(struct upd *u, struct upd_ship *sh);
void upd_ship_set_standby(struct upd *u, struct upd_ship *sh, uint32_t standby);
uint32_t upd_ship_standby(const struct upd_ship *sh);
/* Ship a TxnEndMark after the records written so far. */
int upd_ship_mark(struct upd *u, struct upd_ship *sh, uint64_t txn, uint32_t nrecords,
                  uint32_t ctl, uint32_t hsc);
/* Records were appended to sh's log (or a mark added): ship them at the end
 * of the current round of tasks (one local message per round at most). */
void upd_kick(struct upd *u, struct upd_ship *sh);

struct upd_ship_info {
    uint64_t shipped_lsn; /* every record below this was handed to the transport */
    uint64_t acked_lsn;   /* the standby acknowledged every record up to here */
    uint32_t marks_held;  /* end marks not shipped yet */
};
void upd_ship_info(const struct upd_ship *sh, struct upd_ship_info *out);

struct upd_stats {
    uint64_t msgs_out, recs_out, marks_out, send_failures;
    uint64_t msgs_in, recs_in, dups_in, gaps, bad_msgs, acks_out, acks_in;
    uint64_t trimmed;     /* primary log records dropped after the standby acknowledged */
};
void upd_get_stats(const struct upd *u, struct upd_stats *out);

/* Handlers named in sup_msgtab. */
void upd_on_log_req(struct rt *rt, void *st, struct rt_msg *m);
void upd_on_log_conf(struct rt *rt, void *st, struct rt_msg *m);
#endif
