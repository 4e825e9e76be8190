/* Update channel internals shared by upd.c (primary side, task) and
 * upd_recv.c (hot-standby side). */
#ifndef NINES_UPD_INT_H
#define NINES_UPD_INT_H
#include "upd.h"

/* A primary replica being shipped. Positions (README "Positions"):
 * records acked_lsn < lsn < next_lsn have left since the last rewind and
 * are not acknowledged; end marks acked_seq < seq <= shipped_seq likewise;
 * marks[] holds every mark with seq > acked_seq, in seq order. */
#define UPD_LAG_SAMPLES 32
struct upd_ship {
    struct upd_ship *next;
    struct kern_frag *f;
    uint32_t table, frag, standby;
    enum upd_ship_state st;
    uint64_t pinc;         /* this primary replica's incarnation */
    uint64_t next_lsn;     /* next record to ship */
    uint64_t acked_lsn;    /* the standby applied every record up to here */
    uint64_t next_seq;     /* seq of the next end mark */
    uint64_t shipped_seq;  /* marks up to here left since the last rewind */
    uint64_t acked_seq;    /* the standby processed marks up to here */
    uint64_t start_lsn, start_seq; /* the target's stint starts here (README "Log copy:
                            * a change of target"): acked_lsn >= start_lsn - 1 */
    uint64_t progress_us;  /* last acknowledgement progress (or rewind, or first
                            * shipment after everything was acknowledged) */
    bool dirty;            /* records or marks may be pending */
    /* lag samples (README "Lag"): (the log's last LSN, when) at kicks while
     * records are unacknowledged, oldest first, those above acked_lsn */
    struct { uint64_t lsn, us; } lag[UPD_LAG_SAMPLES];
    uint32_t lag_head, lag_n;
    Nines__TxnEndMark *marks; /* seq acked_seq + 1 ... next_seq - 1 */
    uint32_t nmarks, capmarks;
};

/* A fragment this node receives records of (hot standby). The positions
 * are the kernel service's (upd_recv_applied), not the channel's own. */
struct upd_in {
    struct upd_in *next;
    uint32_t table, frag, from;
    uint64_t pinc;         /* incarnation the kernel's replica holds records of */
    uint64_t applied_lsn, applied_seq; /* last kernel report */
    uint64_t acked_lsn, acked_seq;     /* last acknowledgement sent */
    bool resend_due;       /* the kernel needs a resend not yet requested (throttled) */
    bool resend_sent;      /* a resend request went (resend_us) */
    uint64_t resend_us;
};

/* Task state. */
enum upd_timer { UPD_T_RETRY = 1, UPD_T_ACK = 2 };

struct upd {
    struct rt *rt;
    uint32_t self;
    struct upd_ship *ships;
    struct upd_in *ins;
    bool ship_posted;      /* an UPD_MSG_SHIP is queued */
    bool retry_armed, ack_armed;
    struct upd_stats st;
};

void upd_recv_ack_all(struct upd *u);
/* upd_copy.c: sh->standby changed from `old`: start the new target's stint */
void upd_ship_retarget(struct upd *u, struct upd_ship *sh, uint32_t old);
void upd_lag_reset(struct upd *u, struct upd_ship *sh); /* a new stint: lag from now */
void upd_recv_fini(struct upd *u);
#endif
