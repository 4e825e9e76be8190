/* Update channel (internal, updchan): ships the log records of this node's
 * primary fragment replicas to the nodes of their hot standbys
 * (UPD_LOG_REQ) and keeps them, with the transaction end marks, until the
 * standby acknowledges it APPLIED them; at a hot standby it hands received
 * records to the kernel service for redo (a local message, no re-encoding)
 * and acknowledges what the kernel service reports applied (UPD_LOG_CONF),
 * asking for a resend when the kernel needs one. One task (RT_SVC_UPD) per
 * node; everything here runs on the node's executor thread. See
 * updchan/README.md. */
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
    UPD_MSG_ACKED,          /* to RT_SVC_KERN: a primary's acknowledged LSN advanced;
                             * cookie = struct upd_acked * (in the message's arena) */
    UPD_MSG_BARRIER,        /* to RT_SVC_UPD: upd_barrier; cookie = the caller's */
    UPD_MSG_BARRIER_DONE,   /* to RT_SVC_KERN: every UPD_MSG_REDO for what the channel
                             * received before upd_barrier was posted ahead of this;
                             * cookie = upd_barrier's */
};

/* What a hot standby's kernel service gets: the records of one fragment in
 * strictly consecutive LSN order (decoded; key and images point into the
 * received message's arena), then the transaction end marks that followed
 * them, all written by primary incarnation `pinc`. The channel has checked
 * every record's encoding, CRC, table and fragment, and nothing else: which
 * records are duplicates, whether there is a gap, and which marks are new
 * is for the kernel service to decide against its replica's log (the one
 * LSN truth at the standby). The message arrives kept (rt_msg_keep) by the
 * update channel: the kernel service's handler sets m->kept = false so the
 * runtime recycles it after the handler. The kernel service answers with
 * upd_recv_applied for every UPD_MSG_REDO. */
struct upd_redo {
    uint32_t table, frag;
    uint32_t from;                     /* primary node */
    uint64_t pinc;                     /* primary replica's incarnation */
    size_t nrecs;
    struct kern_logrec *recs;
    size_t nmarks;
    Nines__TxnEndMark *const *marks;
    /* log copies (README "Log copy: a change of target"): the sender's
     * stint starts at record start_lsn and the marks after start_seq; raw[i]
     * is recs[i] as the primary encoded it (CRC included), in the arena */
    uint64_t start_lsn, start_seq;
    const ProtobufCBinaryData *raw;
};

/* The hot standby of primary replica (table, frag) has applied every record
 * up to `lsn` (UPD_MSG_ACKED; lsn only grows). */
struct upd_acked {
    uint32_t table, frag;
    uint64_t lsn;
};

/* The kernel service's report after an UPD_MSG_REDO (or whenever its
 * position changes): its replica of (table, frag), holding records of
 * primary incarnation `pinc` received from node `from`, has applied every
 * record up to `lsn` and processed every end mark up to `mark_seq`;
 * `resend`: it stopped short (a gap, a redo error, no replica here yet, a
 * missing or early mark) and needs the primary to resend from lsn + 1 and
 * the marks after mark_seq. */
struct upd_applied {
    uint32_t table, frag, from;
    uint64_t pinc, lsn, mark_seq;
    bool resend;
};

#define UPD_MSG_BYTES (256u * 1024u) /* record bytes per UPD_LOG_REQ before another one */
#define UPD_MSG_MAX_RECS (UPD_MSG_BYTES / 16u) /* records per UPD_LOG_REQ at most (a
                                                * record has at least KERN_LOG_HDR bytes) */
#define UPD_RETRY_MS 100             /* re-ship held records / marks this often; at most one
                                      * resend request per fragment this often */
#define UPD_RESEND_MS 250            /* primary: shipped but no acknowledgement progress for
                                      * this long: rewind to the acknowledged position */
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
 * starts at the log's first record. The entry gets a new primary
 * incarnation (upd_ship_pinc). */
int upd_ship_add(struct upd *u, struct kern_frag *f, uint32_t standby, struct upd_ship **out);
void upd_ship_remove(struct upd *u, struct upd_ship *sh);
/* Ship to another node from now on: a hot standby, the log copy of a
 * PRIMARY ALONE fragment, or none (0). A new target starts a new stint
 * (README "Log copy: a change of target"): it gets every record from
 * min(undo floor, the old target's acknowledged LSN + 1) — every record of
 * every transaction not ended here and what the old target had not
 * acknowledged — and every end mark the old target had not processed; the
 * log is not trimmed below what it has not acknowledged. */
void upd_ship_set_standby(struct upd *u, struct upd_ship *sh, uint32_t standby);
/* The entry shipping (table, frag), or NULL (tests, introspection). */
struct upd_ship *upd_ship_find(struct upd *u, uint32_t table, uint32_t frag);
uint32_t upd_ship_standby(const struct upd_ship *sh);
uint64_t upd_ship_pinc(const struct upd_ship *sh);
/* Queue a TxnEndMark after the records written so far (its seq is the next
 * of this entry, its lsn the log's last LSN). No standby: nothing queued. */
int upd_ship_mark(struct upd *u, struct upd_ship *sh, uint64_t txn, uint32_t nrecords,
                  uint32_t ctl, uint32_t hsc);
/* An end mark of txn not yet acknowledged is queued in sh (it goes to the
 * current target, also after a change of target). */
bool upd_ship_has_mark(const struct upd_ship *sh, uint64_t txn);
/* Records were appended to sh's log (or a mark added): ship them at the end
 * of the current round of tasks (one local message per round at most). */
void upd_kick(struct upd *u, struct upd_ship *sh);

enum upd_ship_state {
    UPD_SH_LIVE = 1, /* shipping; resends from the log on request */
    UPD_SH_BROKEN,   /* the standby needs records or marks no longer held:
                      * nothing is shipped to it until it is rebuilt (later issue) */
};
struct upd_ship_info {
    uint64_t shipped_lsn;  /* next record to ship (every record below it left at least once
                            * since the last rewind) */
    uint64_t acked_lsn;    /* the standby applied every record up to here */
    uint64_t mark_seq;     /* seq of the last end mark made */
    uint64_t shipped_seq;  /* ... shipped */
    uint64_t acked_seq;    /* ... processed by the standby */
    uint32_t marks_held;   /* end marks not acknowledged yet */
    uint64_t start_lsn;    /* the current target's stint starts at this record ... */
    uint64_t start_seq;    /* ... and the marks after this seq */
    enum upd_ship_state state;
    uint64_t behind_since_us; /* the oldest record the target has not acknowledged was
                               * published at about this time (rt clock; 0: it holds
                               * everything): the lag in time (README "Lag") */
};
void upd_ship_info(const struct upd_ship *sh, struct upd_ship_info *out);

/* ---- both ---- */
/* A barrier through the channel's queue (takeover: "finish redo of every
 * record received before the new epoch"): the channel answers with a local
 * UPD_MSG_BARRIER_DONE{cookie} to the kernel service once it has handled
 * every message queued before this call, so that every UPD_MSG_REDO for
 * records received before it precedes the answer in the kernel's queue. */
void upd_barrier(struct upd *u, uint64_t cookie);

/* ---- hot-standby side ---- */
/* The kernel service reports what it applied (see struct upd_applied).
 * Progress is acknowledged within UPD_ACK_MS; a resend request goes at
 * once, at most one per fragment every UPD_RETRY_MS. */
void upd_recv_applied(struct upd *u, const struct upd_applied *a);

/* The kernel service no longer takes records of (table, frag) here (its
 * replica was promoted, dropped, or has no role in the node set): forget
 * the fragment's position, so no acknowledgement or resend request goes to
 * its former primary any more. */
void upd_recv_forget(struct upd *u, uint32_t table, uint32_t frag);

struct upd_stats {
    uint64_t msgs_out, recs_out, marks_out, send_failures;
    uint64_t rewinds;      /* primary: shipping restarted at an earlier position */
    uint64_t msgs_in, recs_in, bad_msgs, acks_out, acks_in, acks_stale;
    uint64_t resend_reqs;  /* standby: acknowledgements sent with resend = 1 */
    uint64_t gaps;         /* standby: kernel reports that asked for a resend */
    uint64_t trimmed;      /* primary log records dropped after the standby acknowledged */
};
void upd_get_stats(const struct upd *u, struct upd_stats *out);

/* Handlers named in sup_msgtab. */
void upd_on_log_req(struct rt *rt, void *st, struct rt_msg *m);
void upd_on_log_conf(struct rt *rt, void *st, struct rt_msg *m);
#endif
