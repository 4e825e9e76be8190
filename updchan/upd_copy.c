/* Update channel, primary side: a change of shipping target (a hot standby,
 * the log copy of a PRIMARY ALONE fragment, or none) starts a new stint.
 * The new target must get every record it needs — every record of every
 * transaction not yet ended here, and what the old target had not
 * acknowledged — and every end mark the old target had not processed, so
 * its READY_IND reaches the hot-standby controller. README "Log copy: a
 * change of target". */
#include "upd_int.h"

#include "nlog.h"

void upd_ship_retarget(struct upd *u, struct upd_ship *sh, uint32_t old)
{
    const struct kern_log *log = kern_frag_log(sh->f);
    uint64_t first = kern_log_first_lsn(log);
    /* every open transaction's records are at or above the undo floor */
    uint64_t start = kern_frag_undo_floor(sh->f);
    /* and what a live old target had not acknowledged: the COMMIT/ABORT
     * records of transactions that ended but whose confirmation waits.
     * Without a live old target (none, or BROKEN) the acknowledged LSN is
     * stale: the floor alone. */
    if (old != 0 && sh->st == UPD_SH_LIVE && sh->acked_lsn + 1 < start)
        start = sh->acked_lsn + 1;
    if (start < first) {
        /* cannot happen: trimming never cuts an open transaction's chain
         * nor what the target has not acknowledged */
        NLOG_ERROR("upd", "table %u fragment %u: the new target's stint would start at LSN %llu "
                   "but the log starts at %llu; starting there", sh->table, sh->frag,
                   (unsigned long long)start, (unsigned long long)first);
        start = first;
    }
    NLOG_INFO("upd", "table %u fragment %u: shipping target node %u -> %u; the new stint starts at "
              "LSN %llu (log %llu..%llu) and the marks after seq %llu (%u held)", sh->table,
              sh->frag, old, sh->standby, (unsigned long long)start, (unsigned long long)first,
              (unsigned long long)(kern_log_next_lsn(log) - 1),
              (unsigned long long)sh->acked_seq, sh->nmarks);
    /* positions are per stint: nothing is acknowledged by the new target
     * yet, so nothing at or above `start` is trimmed until it is (trimming
     * happens only on its acknowledgements, below acked_lsn + 1) */
    sh->start_lsn = start;
    sh->next_lsn = start;
    sh->acked_lsn = start - 1;
    /* marks[] holds every mark the old target had not processed: all go
     * to the new one (acked_seq stays: those before it were processed) */
    sh->start_seq = sh->acked_seq;
    sh->shipped_seq = sh->acked_seq;
    sh->progress_us = rt_now_us(u->rt);
    upd_lag_reset(u, sh); /* the new target's lag counts from now */
}
