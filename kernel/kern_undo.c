/* Undo on a primary: walk a transaction's chain backwards from its last
 * record, write one CLR per record not yet compensated, and jump over
 * compensated stretches by the CLRs' undo-next LSNs (README "Undo walk").
 * An ADD is undone logically: its CLR (a clr-update) carries the record as
 * it is now with column -= delta, not the ADD's before image. */
#include "kern_frag_int.h"

#include "nassert.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Undo the non-CLR record `u` of transaction `t`, writing its CLR. */
static int undo_one(struct kern_frag *f, struct frag_txn *t, const struct kern_logrec *u)
{
    struct kern_logrec c = {
        .lsn = kern_log_next_lsn(f->log),
        .txn = t->txn,
        .sid = f->next_sid,
        .prev_lsn = t->last_lsn,
        .undo_next_lsn = u->prev_lsn,
        .comp_lsn = u->lsn,
        .table = f->table,
        .frag = f->id,
        .key = u->key,
        .klen = u->klen,
    };
    struct kern_rec *cur = NULL;
    int present = kern_bt_get(f->bt, u->key, u->klen, &cur) == 0;
    struct kern_rec *img = NULL; /* the restored record */
    switch (u->op) {
    case KERN_LOG_INSERT:
        c.op = KERN_LOG_CLR_DELETE;
        break;
    case KERN_LOG_UPDATE:
    case KERN_LOG_ADD:
        c.op = KERN_LOG_CLR_UPDATE;
        break;
    case KERN_LOG_DELETE:
        c.op = KERN_LOG_CLR_INSERT;
        break;
    default:
        return nines_err(NINES_ECORRUPT, "fragment %u.%u: undo of %s record LSN %llu",
                         f->table, f->id, kern_log_op_name(u->op), (unsigned long long)u->lsn);
    }
    /* The transaction holds the key's exclusive (or, for an ADD, increment)
     * lock, so the key is present or absent as its own later (already
     * undone) operations left it. */
    if (present != (u->op != KERN_LOG_DELETE))
        return nines_err(NINES_ECORRUPT, "fragment %u.%u: undo of %s LSN %llu finds the key "
                         "%s", f->table, f->id, kern_log_op_name(u->op),
                         (unsigned long long)u->lsn, present ? "present" : "absent");
    if (u->op == KERN_LOG_ADD) {
        /* Logical: other transactions' increments since stay. The escrow
         * bounds kept this subtraction in range; failing it means the log
         * and the tree disagree. */
        unsigned rcol;
        int64_t lo, hi, val;
        int rc = frag_add_column(f, u->column, &rcol, &lo, &hi);
        if (rc == 0)
            rc = frag_add_image(f, cur, rcol, u->delta, 1, lo, hi, &img, &val);
        if (rc == NINES_ENOMEM)
            return rc;
        if (rc < 0) {
            char why[400]; /* copied: nines_err rewrites the detail */
            snprintf(why, sizeof why, "%s", nines_errdetail());
            return nines_err(NINES_ECORRUPT, "fragment %u.%u: undo of add LSN %llu: %s",
                             f->table, f->id, (unsigned long long)u->lsn, why);
        }
        img->sid = c.sid;
        c.after = (const uint8_t *)img;
        c.alen = (uint32_t)kern_rec_bytes(img);
    } else if (u->op != KERN_LOG_INSERT) {
        img = malloc(u->blen);
        if (!img)
            return nines_err(NINES_ENOMEM, "restored image of %u bytes", u->blen);
        memcpy(img, u->before, u->blen);
        img->sid = c.sid;
        c.after = (const uint8_t *)img;
        c.alen = u->blen;
    }
    size_t n = kern_logrec_size(&c);
    uint8_t *space;
    int rc = kern_log_reserve(f->log, n, &space);
    if (rc < 0) {
        free(img);
        return rc;
    }
    struct kern_rec *old = NULL;
    switch (c.op) {
    case KERN_LOG_CLR_DELETE:
        rc = kern_bt_delete(f->bt, u->key, u->klen, &old);
        break;
    case KERN_LOG_CLR_UPDATE:
        rc = kern_bt_update(f->bt, u->key, u->klen, img, &old);
        N_ASSERT(rc == 0);
        break;
    default:
        rc = kern_bt_insert(f->bt, u->key, u->klen, img);
        break;
    }
    if (rc < 0) {
        free(img);
        return rc;
    }
    frag_log_put(f, space, n, &c);
    kern_rec_free(old);
    if (u->op == KERN_LOG_ADD)
        frag_esc_drop(f, t, u->lsn);
    t->last_lsn = c.lsn;
    f->next_sid++;
    f->st.clrs++;
    return 0;
}

int kern_frag_rollback(struct kern_frag *f, uint64_t txn, uint64_t to_lsn)
{
    switch (f->role) {
    case KERN_FRAG_PRIMARY:
        break;
    case KERN_FRAG_HOT_STANDBY:
    case KERN_FRAG_PROMOTING:
        return nines_err(NINES_ENOTPRIMARY, "rollback on fragment %u.%u, a %s replica",
                         f->table, f->id, kern_frag_role_name(f->role));
    default:
        return nines_err(NINES_ESTATE, "fragment %u.%u in unknown role %d", f->table, f->id,
                         f->role);
    }
    struct frag_txn *t = txn ? frag_txn_find(f, txn) : NULL;
    if (!t)
        return 0;
    int clrs = 0;
    uint64_t lsn = t->last_lsn;
    while (lsn > to_lsn) {
        struct kern_logrec u;
        int rc = kern_log_read(f->log, lsn, &u);
        if (rc < 0)
            return rc;
        if (u.txn != txn)
            return nines_err(NINES_ECORRUPT, "fragment %u.%u: chain of transaction %llu "
                             "reaches LSN %llu of transaction %llu", f->table, f->id,
                             (unsigned long long)txn, (unsigned long long)lsn,
                             (unsigned long long)u.txn);
        if (kern_log_op_is_clr(u.op)) {
            lsn = u.undo_next_lsn; /* skip what this CLR and its predecessors compensated */
            continue;
        }
        if ((rc = undo_one(f, t, &u)) < 0)
            return rc;
        clrs++;
        lsn = u.prev_lsn;
    }
    return clrs;
}

int kern_frag_abort(struct kern_frag *f, uint64_t txn, uint64_t *lsn)
{
    int rc = kern_frag_rollback(f, txn, 0);
    if (rc < 0)
        return rc;
    if (txn == 0)
        return nines_err(NINES_EINVAL, "abort of transaction id 0 on fragment %u.%u",
                         f->table, f->id);
    return frag_end(f, txn, KERN_LOG_ABORT, 0, lsn);
}

int kern_frag_reopen(struct kern_frag *f, uint64_t txn, uint64_t last_lsn)
{
    if (f->role != KERN_FRAG_PRIMARY)
        return nines_err(NINES_ENOTPRIMARY, "reopen of transaction %llu on fragment %u.%u, a "
                         "%s replica", (unsigned long long)txn, f->table, f->id,
                         kern_frag_role_name(f->role));
    if (txn == 0 || last_lsn == 0 || last_lsn >= kern_log_next_lsn(f->log))
        return nines_err(NINES_EINVAL, "reopen of transaction %llu on fragment %u.%u at LSN "
                         "%llu (log ends before %llu)", (unsigned long long)txn, f->table,
                         f->id, (unsigned long long)last_lsn,
                         (unsigned long long)kern_log_next_lsn(f->log));
    struct frag_txn *t;
    int added;
    int rc = frag_txn_get(f, txn, &t, &added);
    if (rc < 0)
        return rc;
    if (!added)
        return nines_err(NINES_EEXIST, "reopen of transaction %llu on fragment %u.%u: it is "
                         "open", (unsigned long long)txn, f->table, f->id);
    t->first_lsn = last_lsn; /* its older records are reached through the chain */
    t->last_lsn = last_lsn;
    return 0;
}
