/* Update channel internals shared by upd.c (primary side, task) and
 * upd_recv.c (hot-standby side). */
#ifndef NINES_UPD_INT_H
#define NINES_UPD_INT_H
#include "upd.h"

/* A primary replica being shipped. */
struct upd_ship {
    struct upd_ship *next;
    struct kern_frag *f;
    uint32_t table, frag, standby;
    uint64_t next_lsn;     /* next record to ship */
    uint64_t acked_lsn;
    bool dirty;            /* records or marks may be pending */
    Nines__TxnEndMark *marks;
    uint32_t nmarks, capmarks;
};

/* A fragment this node receives records of (hot standby). */
struct upd_in {
    struct upd_in *next;
    uint32_t table, frag, from;
    uint64_t next_lsn;     /* next LSN expected (0: nothing received yet) */
    uint64_t held_lsn;     /* last record handed to the kernel service */
    uint64_t acked_lsn;    /* last LSN acknowledged */
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
void upd_recv_fini(struct upd *u);
#endif
