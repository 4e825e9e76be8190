/* Redo at a hot standby (or a replica rebuilt from a checkpoint): apply
 * the primary's records in its log order, idempotently. Two filters
 * (README "Redo and state identifiers"):
 *   1. LSN: a record at or below the replica's log end was applied before
 *      and is skipped whole; one beyond the next expected LSN is a gap.
 *   2. State id: the change is made only when it moves the record's state
 *      forward (the tree may already hold a newer state, from a fuzzy
 *      checkpoint).
 * ADD records and their CLRs redo like updates (after images in the
 * primary's order); besides, pending ADDs are noted for the escrow bounds
 * so that a promoted replica can undo in-doubt ADDs logically. */
#include "kern_frag_int.h"

#include "nassert.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Validated, aligned copy of the after image, owned by the caller. */
static int after_copy(struct kern_frag *f, const struct kern_logrec *r, struct kern_rec **out)
{
    struct kern_rec *x = malloc(r->alen);
    if (!x)
        return nines_err(NINES_ENOMEM, "redo image of %u bytes", r->alen);
    memcpy(x, r->after, r->alen);
    int rc = frag_rec_check(f, x, r->alen);
    if (rc < 0) {
        free(x);
        return nines_err(NINES_ECORRUPT, "redo of LSN %llu in fragment %u.%u: after image: %s",
                         (unsigned long long)r->lsn, f->table, f->id, nines_errdetail());
    }
    x->sid = r->sid; /* as the encoder writes it */
    *out = x;
    return 0;
}

int kern_frag_redo(struct kern_frag *f, const struct kern_logrec *r)
{
    switch (f->role) {
    case KERN_FRAG_HOT_STANDBY:
    case KERN_FRAG_PROMOTING:
        break;
    case KERN_FRAG_PRIMARY:
        return nines_err(NINES_ESTATE, "redo of LSN %llu on fragment %u.%u, a primary",
                         (unsigned long long)r->lsn, f->table, f->id);
    default:
        return nines_err(NINES_ESTATE, "fragment %u.%u in unknown role %d", f->table, f->id,
                         f->role);
    }
    int rc = kern_logrec_check(r);
    if (rc < 0)
        return rc;
    if (r->table != f->table || r->frag != f->id)
        return nines_err(NINES_EINVAL, "redo of a record of fragment %u.%u on fragment %u.%u",
                         r->table, r->frag, f->table, f->id);
    uint64_t next = kern_log_next_lsn(f->log);
    if (r->lsn < next) {
        f->st.redo_dup++;
        return 0;
    }
    if (r->lsn > next)
        return nines_err(NINES_ESTATE, "redo on fragment %u.%u: log gap, expected LSN %llu, "
                         "got %llu", f->table, f->id, (unsigned long long)next,
                         (unsigned long long)r->lsn);
    if (r->klen && (rc = frag_key_check(f, r->key, r->klen)) < 0)
        return nines_err(NINES_ECORRUPT, "redo of LSN %llu in fragment %u.%u: key: %s",
                         (unsigned long long)r->lsn, f->table, f->id, nines_errdetail());

    /* Decide on the tree change (state-id rule) before touching anything. */
    enum { NONE, PUT, REPLACE, REMOVE } act = NONE;
    struct kern_rec *cur = NULL;
    int present = r->klen && kern_bt_get(f->bt, r->key, r->klen, &cur) == 0;
    int newer = present && cur->sid < r->sid;
    switch (r->op) {
    case KERN_LOG_INSERT:
    case KERN_LOG_CLR_INSERT:
        act = !present ? PUT : newer ? REPLACE : NONE;
        break;
    case KERN_LOG_ADD: {
        unsigned rcol;
        int64_t lo, hi;
        if ((rc = frag_add_column(f, r->column, &rcol, &lo, &hi)) < 0) {
            char why[400]; /* copied: nines_err rewrites the detail */
            snprintf(why, sizeof why, "%s", nines_errdetail());
            return nines_err(NINES_ECORRUPT, "redo of LSN %llu in fragment %u.%u: %s",
                             (unsigned long long)r->lsn, f->table, f->id, why);
        }
        act = newer ? REPLACE : NONE;
        break;
    }
    case KERN_LOG_UPDATE:
    case KERN_LOG_CLR_UPDATE:
        act = newer ? REPLACE : NONE;
        break;
    case KERN_LOG_DELETE:
    case KERN_LOG_CLR_DELETE:
        act = newer ? REMOVE : NONE;
        break;
    case KERN_LOG_COMMIT:
    case KERN_LOG_ABORT:
        break;
    default:
        return nines_err(NINES_ECORRUPT, "redo of LSN %llu: unknown op %u",
                         (unsigned long long)r->lsn, r->op);
    }
    struct kern_rec *img = NULL;
    if ((act == PUT || act == REPLACE) && (rc = after_copy(f, r, &img)) < 0)
        return rc;
    struct frag_txn *t = NULL;
    int added = 0;
    int ends = r->op == KERN_LOG_COMMIT || r->op == KERN_LOG_ABORT;
    if (!ends && (rc = frag_txn_get(f, r->txn, &t, &added)) < 0) {
        free(img);
        return rc;
    }
    int held = 0; /* an escrow note made for this ADD */
    if (r->op == KERN_LOG_ADD) {
        /* the value after is not needed unchecked: 0 */
        if ((rc = frag_esc_hold(f, t, r->key, r->klen, r->column, 0, r->delta, 0, 0, r->lsn,
                                0)) < 0)
            goto fail;
        held = 1;
    }
    size_t n = kern_logrec_size(r);
    uint8_t *space;
    if ((rc = kern_log_reserve(f->log, n, &space)) < 0)
        goto fail;
    rc = kern_logrec_encode(r, space, n);
    N_ASSERT(rc == (int)n); /* checked above */
    struct kern_rec *old = NULL;
    switch (act) {
    case PUT:
        rc = kern_bt_insert(f->bt, r->key, r->klen, img);
        break;
    case REPLACE:
        rc = kern_bt_update(f->bt, r->key, r->klen, img, &old);
        N_ASSERT(rc == 0);
        break;
    case REMOVE:
        rc = kern_bt_delete(f->bt, r->key, r->klen, &old);
        break;
    case NONE:
        rc = 0;
        break;
    }
    if (rc < 0)
        goto fail;
    kern_log_publish(f->log, n);
    kern_rec_free(old);
    if (ends) {
        frag_txn_remove(f, r->txn);
        if (r->gci > f->max_gci)
            f->max_gci = r->gci;
    } else {
        if (kern_log_op_is_clr(r->op))
            frag_esc_drop(f, t, r->comp_lsn); /* the ADD it undid is no longer pending */
        if (!t->first_lsn)
            t->first_lsn = r->lsn;
        t->last_lsn = r->lsn;
    }
    if (r->sid >= f->next_sid)
        f->next_sid = r->sid + 1;
    if (act == NONE) {
        f->st.redo_nochange++;
        return 0;
    }
    f->st.redo_applied++;
    return 1;

fail:
    free(img);
    if (held)
        frag_esc_drop(f, t, r->lsn);
    if (added)
        frag_txn_remove(f, r->txn);
    return rc;
}

int kern_frag_redo_bytes(struct kern_frag *f, const uint8_t *buf, size_t len)
{
    struct kern_logrec r;
    int rc = kern_logrec_decode(buf, len, &r);
    if (rc < 0)
        return rc;
    if ((size_t)rc != len)
        return nines_err(NINES_ECORRUPT, "redo: %zu bytes hold a record of %d and more", len,
                         rc);
    return kern_frag_redo(f, &r);
}
