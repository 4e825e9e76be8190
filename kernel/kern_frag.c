/* Fragment replica: definition, role state machine, the transaction
 * table, and the primary's record operations, each of which changes the
 * tree and appends one log record. README "Fragment replicas". */
#include "kern_frag_int.h"

#include "crc32c.h"
#include "nassert.h"
#include "nines/errors.h"

#include <stdlib.h>
#include <string.h>

const char *kern_frag_role_name(int role)
{
    switch (role) {
    case KERN_FRAG_PRIMARY:
        return "primary";
    case KERN_FRAG_HOT_STANDBY:
        return "hot-standby";
    case KERN_FRAG_PROMOTING:
        return "promoting";
    default:
        return "?";
    }
}

static uint32_t schema_hash(const struct kern_frag_def *d)
{
    uint8_t b[8];
    uint32_t h = crc32c(0, &d->ncols, sizeof d->ncols);
    for (unsigned i = 0; i < d->ncols; i++) {
        b[0] = d->cols[i].type;
        b[1] = d->cols[i].nullable;
        memcpy(b + 2, &d->cols[i].size, 4);
        h = crc32c(h, b, 6);
    }
    h = crc32c(h, &d->npk, sizeof d->npk);
    return crc32c(h, d->pk, d->npk * sizeof *d->pk);
}

static int def_check(const struct kern_frag_def *d)
{
    if (d->ncols == 0 || d->ncols > UINT16_MAX || !d->cols)
        return nines_err(NINES_EINVAL, "fragment %u.%u: %u columns", d->table, d->frag,
                         d->ncols);
    for (unsigned i = 0; i < d->ncols; i++) {
        int rc = kern_col_check(&d->cols[i], i);
        if (rc < 0)
            return rc;
    }
    if (d->npk == 0 || d->npk > d->ncols || !d->pk)
        return nines_err(NINES_EINVAL, "fragment %u.%u: %u key columns of %u", d->table,
                         d->frag, d->npk, d->ncols);
    for (unsigned i = 0; i < d->npk; i++) {
        if (d->pk[i] >= d->ncols)
            return nines_err(NINES_EINVAL, "fragment %u.%u: key column %u is column %u of %u",
                             d->table, d->frag, i, d->pk[i], d->ncols);
        for (unsigned j = 0; j < i; j++)
            if (d->pk[j] == d->pk[i])
                return nines_err(NINES_EINVAL, "fragment %u.%u: column %u twice in the key",
                                 d->table, d->frag, d->pk[i]);
    }
    return 0;
}

int kern_frag_create(const struct kern_frag_def *d, int role, struct kern_frag **out)
{
    int rc = def_check(d);
    if (rc < 0)
        return rc;
    switch (role) {
    case KERN_FRAG_PRIMARY:
    case KERN_FRAG_HOT_STANDBY:
        break;
    default:
        return nines_err(NINES_EINVAL, "fragment %u.%u created as %s (%d)", d->table, d->frag,
                         kern_frag_role_name(role), role);
    }
    struct kern_frag *f = calloc(1, sizeof *f);
    if (!f)
        return nines_err(NINES_ENOMEM, "fragment replica");
    f->table = d->table;
    f->id = d->frag;
    f->role = role;
    f->ncols = d->ncols;
    f->npk = d->npk;
    f->nrcols = d->ncols - d->npk;
    f->schema_hash = schema_hash(d);
    f->next_sid = 1;
    f->txcap = 16;
    f->cols = malloc(d->ncols * sizeof *f->cols);
    f->pk = malloc(d->npk * sizeof *f->pk);
    f->kcols = malloc(d->npk * sizeof *f->kcols);
    f->rcols = malloc((f->nrcols + 1) * sizeof *f->rcols);
    f->rmap = malloc((f->nrcols + 1) * sizeof *f->rmap);
    f->scratch = malloc(d->ncols * sizeof *f->scratch);
    f->tx = calloc(f->txcap, sizeof *f->tx);
    if (!f->cols || !f->pk || !f->kcols || !f->rcols || !f->rmap || !f->scratch || !f->tx) {
        kern_frag_destroy(f);
        return nines_err(NINES_ENOMEM, "fragment replica tables");
    }
    memcpy(f->cols, d->cols, d->ncols * sizeof *f->cols);
    memcpy(f->pk, d->pk, d->npk * sizeof *f->pk);
    for (unsigned i = 0; i < d->npk; i++)
        f->kcols[i] = d->cols[d->pk[i]];
    unsigned k = 0;
    for (unsigned i = 0; i < d->ncols; i++) {
        int inkey = 0;
        for (unsigned j = 0; j < d->npk; j++)
            inkey |= d->pk[j] == i;
        if (!inkey) {
            f->rmap[k] = (uint16_t)i;
            f->rcols[k++] = d->cols[i];
        }
    }
    N_ASSERT(k == f->nrcols);
    if ((rc = kern_bt_create(&f->bt)) < 0 || (rc = kern_log_create(1, &f->log)) < 0) {
        kern_frag_destroy(f);
        return rc;
    }
    *out = f;
    return 0;
}

int kern_frag_destroy_step(struct kern_frag *f, size_t budget)
{
    if (!f)
        return 0;
    if (f->bt && kern_bt_destroy_step(f->bt, budget))
        return 1;
    f->bt = NULL;
    kern_frag_destroy(f);
    return 0;
}

void kern_frag_destroy(struct kern_frag *f)
{
    if (!f)
        return;
    if (f->tx)
        frag_esc_destroy(f);
    if (f->bt)
        kern_bt_destroy(f->bt);
    kern_log_destroy(f->log);
    free(f->cols);
    free(f->pk);
    free(f->kcols);
    free(f->rcols);
    free(f->rmap);
    free(f->scratch);
    free(f->tx);
    free(f);
}

int kern_frag_role(const struct kern_frag *f)
{
    return f->role;
}

int kern_frag_set_role(struct kern_frag *f, int to)
{
    int ok = 0;
    switch (f->role) {
    case KERN_FRAG_HOT_STANDBY:
        ok = to == KERN_FRAG_PROMOTING;
        break;
    case KERN_FRAG_PROMOTING:
        ok = to == KERN_FRAG_PRIMARY || to == KERN_FRAG_HOT_STANDBY;
        break;
    case KERN_FRAG_PRIMARY:
        if (to == KERN_FRAG_HOT_STANDBY && f->ntx)
            return nines_err(NINES_ESTATE, "fragment %u.%u: demotion with %zu active "
                             "transactions", f->table, f->id, f->ntx);
        ok = to == KERN_FRAG_HOT_STANDBY;
        break;
    default:
        return nines_err(NINES_ESTATE, "fragment %u.%u in unknown role %d", f->table, f->id,
                         f->role);
    }
    if (!ok)
        return nines_err(NINES_ESTATE, "fragment %u.%u: no transition from %s to %s (%d)",
                         f->table, f->id, kern_frag_role_name(f->role),
                         kern_frag_role_name(to), to);
    f->role = to;
    return 0;
}

uint32_t kern_frag_table(const struct kern_frag *f)
{
    return f->table;
}
uint32_t kern_frag_id(const struct kern_frag *f)
{
    return f->id;
}
uint32_t kern_frag_schema_hash(const struct kern_frag *f)
{
    return f->schema_hash;
}
unsigned kern_frag_ncols(const struct kern_frag *f)
{
    return f->ncols;
}
const struct kern_col *kern_frag_rec_cols(const struct kern_frag *f, unsigned *n)
{
    *n = f->nrcols;
    return f->rcols;
}
const struct kern_col *kern_frag_key_cols(const struct kern_frag *f, unsigned *n)
{
    *n = f->npk;
    return f->kcols;
}
struct kern_bt *kern_frag_tree(const struct kern_frag *f)
{
    return f->bt;
}
struct kern_log *kern_frag_log(const struct kern_frag *f)
{
    return f->log;
}
uint64_t kern_frag_next_sid(const struct kern_frag *f)
{
    return f->next_sid;
}
void kern_frag_stats(const struct kern_frag *f, struct kern_frag_stats *s)
{
    *s = f->st;
}

int kern_frag_row(const struct kern_frag *f, const struct kern_val *row, uint8_t *key,
                  size_t cap, size_t *klen, struct kern_rec **rec)
{
    for (unsigned i = 0; i < f->npk; i++)
        f->scratch[i] = row[f->pk[i]];
    int n = kern_key_encode(f->kcols, f->npk, f->scratch, key, cap);
    if (n < 0)
        return n;
    for (unsigned i = 0; i < f->nrcols; i++)
        f->scratch[i] = row[f->rmap[i]];
    int rc = kern_rec_build(f->rcols, f->nrcols, f->scratch, 0, rec);
    if (rc < 0)
        return rc;
    *klen = (size_t)n;
    return 0;
}

int frag_key_check(struct kern_frag *f, const void *key, size_t klen)
{
    if (klen == 0 || klen > KERN_KEY_MAX)
        return nines_err(NINES_EINVAL, "fragment %u.%u: key of %zu bytes", f->table, f->id,
                         klen);
    return kern_key_decode(f->kcols, f->npk, key, klen, f->scratch, f->kbuf, sizeof f->kbuf);
}

int frag_rec_check(const struct kern_frag *f, const struct kern_rec *r, size_t avail)
{
    return kern_rec_check(r, avail, f->rcols, f->nrcols);
}

int kern_frag_get(const struct kern_frag *f, const void *key, size_t klen,
                  const struct kern_rec **rec)
{
    struct kern_rec *r;
    int rc = kern_bt_get(f->bt, key, klen, &r);
    if (rc == 0)
        *rec = r;
    return rc;
}

/* ---- transaction table: open addressing, linear probing ---- */

static size_t tx_slot(uint64_t txn, size_t cap)
{
    return (size_t)((txn * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

struct frag_txn *frag_txn_find(const struct kern_frag *f, uint64_t txn)
{
    for (size_t i = tx_slot(txn, f->txcap);; i = (i + 1) & (f->txcap - 1)) {
        if (f->tx[i].txn == txn)
            return &f->tx[i];
        if (f->tx[i].txn == 0)
            return NULL;
    }
}

int frag_txn_get(struct kern_frag *f, uint64_t txn, struct frag_txn **out, int *added)
{
    N_ASSERT(txn != 0);
    struct frag_txn *t = frag_txn_find(f, txn);
    *added = 0;
    if (t) {
        *out = t;
        return 0;
    }
    if (2 * (f->ntx + 1) > f->txcap) {
        size_t cap = 2 * f->txcap;
        struct frag_txn *v = calloc(cap, sizeof *v);
        if (!v)
            return nines_err(NINES_ENOMEM, "transaction table of %zu slots", cap);
        for (size_t i = 0; i < f->txcap; i++) {
            if (!f->tx[i].txn)
                continue;
            size_t j = tx_slot(f->tx[i].txn, cap);
            while (v[j].txn)
                j = (j + 1) & (cap - 1);
            v[j] = f->tx[i];
        }
        free(f->tx);
        f->tx = v;
        f->txcap = cap;
    }
    size_t i = tx_slot(txn, f->txcap);
    while (f->tx[i].txn)
        i = (i + 1) & (f->txcap - 1);
    f->tx[i] = (struct frag_txn){.txn = txn};
    f->ntx++;
    *out = &f->tx[i];
    *added = 1;
    return 0;
}

void frag_txn_remove(struct kern_frag *f, uint64_t txn)
{
    struct frag_txn *t = frag_txn_find(f, txn);
    if (!t)
        return;
    frag_esc_release(f, t);
    size_t mask = f->txcap - 1, i = (size_t)(t - f->tx);
    f->tx[i].txn = 0;
    f->ntx--;
    /* backward-shift deletion: pull later members of the probe run back */
    for (size_t j = (i + 1) & mask; f->tx[j].txn; j = (j + 1) & mask) {
        size_t home = tx_slot(f->tx[j].txn, f->txcap);
        /* move j to i when its home is not cyclically within (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            f->tx[i] = f->tx[j];
            f->tx[j].txn = 0;
            i = j;
        }
    }
}

uint64_t kern_frag_txn_last_lsn(const struct kern_frag *f, uint64_t txn)
{
    const struct frag_txn *t = txn ? frag_txn_find(f, txn) : NULL;
    return t ? t->last_lsn : 0;
}

size_t kern_frag_txns(const struct kern_frag *f, uint64_t *txns, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < f->txcap; i++)
        if (f->tx[i].txn) {
            if (n < cap)
                txns[n] = f->tx[i].txn;
            n++;
        }
    return n;
}

uint64_t kern_frag_undo_floor(const struct kern_frag *f)
{
    uint64_t m = kern_log_next_lsn(f->log);
    for (size_t i = 0; i < f->txcap; i++)
        if (f->tx[i].txn && f->tx[i].first_lsn < m)
            m = f->tx[i].first_lsn;
    return m;
}

int64_t kern_frag_log_truncate(struct kern_frag *f, uint64_t below)
{
    for (size_t i = 0; i < f->txcap; i++)
        if (f->tx[i].txn && f->tx[i].first_lsn < below)
            return nines_err(NINES_ESTATE, "fragment %u.%u: truncating the log below LSN %llu "
                             "would cut transaction %llu, whose records start at LSN %llu",
                             f->table, f->id, (unsigned long long)below,
                             (unsigned long long)f->tx[i].txn,
                             (unsigned long long)f->tx[i].first_lsn);
    return (int64_t)kern_log_truncate(f->log, below);
}

int64_t kern_frag_log_trim(struct kern_frag *f, uint64_t keep_below)
{
    uint64_t below = kern_frag_undo_floor(f);
    if (keep_below < below)
        below = keep_below;
    if (f->log_pin && f->log_pin < below)
        below = f->log_pin;
    if (below <= kern_log_first_lsn(f->log))
        return 0;
    return kern_frag_log_truncate(f, below);
}

void kern_frag_log_pin(struct kern_frag *f, uint64_t lsn) { f->log_pin = lsn; }
uint64_t kern_frag_log_pinned(const struct kern_frag *f) { return f->log_pin; }

/* ---- primary operations ---- */

void frag_log_put(struct kern_frag *f, uint8_t *space, size_t n, const struct kern_logrec *r)
{
    int rc = kern_logrec_encode(r, space, n);
    /* every field was produced here and checked before the tree changed */
    N_ASSERT(rc == (int)n);
    kern_log_publish(f->log, n);
}

int frag_op_begin(struct kern_frag *f, const char *what, uint64_t txn, const void *key,
                  size_t klen)
{
    switch (f->role) {
    case KERN_FRAG_PRIMARY:
        break;
    case KERN_FRAG_HOT_STANDBY:
    case KERN_FRAG_PROMOTING:
        return nines_err(NINES_ENOTPRIMARY, "%s on fragment %u.%u, a %s replica", what,
                         f->table, f->id, kern_frag_role_name(f->role));
    default:
        return nines_err(NINES_ESTATE, "fragment %u.%u in unknown role %d", f->table, f->id,
                         f->role);
    }
    if (txn == 0)
        return nines_err(NINES_EINVAL, "%s on fragment %u.%u with transaction id 0", what,
                         f->table, f->id);
    return key ? frag_key_check(f, key, klen) : 0;
}

static int rec_arg(const struct kern_frag *f, const struct kern_rec *rec)
{
    if (!rec)
        return nines_err(NINES_EINVAL, "fragment %u.%u: no record", f->table, f->id);
    if (rec->len > KERN_REC_MAX)
        return nines_err(NINES_ETOOBIG, "fragment %u.%u: record body of %u bytes", f->table,
                         f->id, rec->len);
    return frag_rec_check(f, rec, kern_rec_bytes(rec));
}

/* Log record of a primary operation with the next LSN and state id. */
struct kern_logrec frag_op_rec(struct kern_frag *f, const struct frag_txn *t, unsigned op,
                               const void *key, size_t klen)
{
    return (struct kern_logrec){
        .lsn = kern_log_next_lsn(f->log),
        .txn = t->txn,
        .sid = f->next_sid,
        .prev_lsn = t->last_lsn,
        .table = f->table,
        .frag = f->id,
        .op = (uint8_t)op,
        .key = key,
        .klen = (uint32_t)klen,
    };
}

/* After the record is published: the chain and the counters move on. */
void frag_op_done(struct kern_frag *f, struct frag_txn *t, uint64_t lsn, uint64_t *out)
{
    if (!t->first_lsn)
        t->first_lsn = lsn;
    t->last_lsn = lsn;
    f->next_sid++;
    f->st.ops++;
    if (out)
        *out = lsn;
}

static void op_fail(struct kern_frag *f, uint64_t txn, int added)
{
    if (added)
        frag_txn_remove(f, txn);
}

int kern_frag_insert(struct kern_frag *f, uint64_t txn, const void *key, size_t klen,
                     struct kern_rec *rec, uint64_t *lsn)
{
    int rc = frag_op_begin(f, "insert", txn, key, klen);
    if (rc < 0 || (rc = rec_arg(f, rec)) < 0)
        return rc;
    struct kern_rec *cur;
    if (kern_bt_get(f->bt, key, klen, &cur) == 0)
        return nines_err(NINES_EEXIST, "insert into fragment %u.%u: key of %zu bytes exists",
                         f->table, f->id, klen);
    struct frag_txn *t;
    int added;
    if ((rc = frag_txn_get(f, txn, &t, &added)) < 0)
        return rc;
    struct kern_logrec r = frag_op_rec(f, t, KERN_LOG_INSERT, key, klen);
    r.after = (const uint8_t *)rec;
    r.alen = (uint32_t)kern_rec_bytes(rec);
    size_t n = kern_logrec_size(&r);
    uint8_t *space;
    if ((rc = kern_log_reserve(f->log, n, &space)) < 0) {
        op_fail(f, txn, added);
        return rc;
    }
    uint64_t old_sid = rec->sid;
    rec->sid = r.sid;
    if ((rc = kern_bt_insert(f->bt, key, klen, rec)) < 0) {
        rec->sid = old_sid;
        op_fail(f, txn, added);
        return rc;
    }
    frag_log_put(f, space, n, &r);
    frag_op_done(f, t, r.lsn, lsn);
    return 0;
}

int kern_frag_update(struct kern_frag *f, uint64_t txn, const void *key, size_t klen,
                     struct kern_rec *rec, uint64_t *lsn)
{
    int rc = frag_op_begin(f, "update", txn, key, klen);
    if (rc < 0 || (rc = rec_arg(f, rec)) < 0)
        return rc;
    struct kern_rec *cur;
    if ((rc = kern_bt_get(f->bt, key, klen, &cur)) < 0)
        return nines_err(rc, "update in fragment %u.%u: key of %zu bytes absent", f->table,
                         f->id, klen);
    struct frag_txn *t;
    int added;
    if ((rc = frag_txn_get(f, txn, &t, &added)) < 0)
        return rc;
    struct kern_logrec r = frag_op_rec(f, t, KERN_LOG_UPDATE, key, klen);
    r.before = (const uint8_t *)cur;
    r.blen = (uint32_t)kern_rec_bytes(cur);
    r.after = (const uint8_t *)rec;
    r.alen = (uint32_t)kern_rec_bytes(rec);
    size_t n = kern_logrec_size(&r);
    uint8_t *space;
    if ((rc = kern_log_reserve(f->log, n, &space)) < 0) {
        op_fail(f, txn, added);
        return rc;
    }
    rec->sid = r.sid;
    struct kern_rec *old = NULL;
    rc = kern_bt_update(f->bt, key, klen, rec, &old);
    N_ASSERT(rc == 0 && old == cur); /* present, and an update allocates nothing */
    frag_log_put(f, space, n, &r);
    kern_rec_free(old);
    frag_op_done(f, t, r.lsn, lsn);
    return 0;
}

int kern_frag_delete(struct kern_frag *f, uint64_t txn, const void *key, size_t klen,
                     uint64_t *lsn)
{
    int rc = frag_op_begin(f, "delete", txn, key, klen);
    if (rc < 0)
        return rc;
    struct kern_rec *cur;
    if ((rc = kern_bt_get(f->bt, key, klen, &cur)) < 0)
        return nines_err(rc, "delete in fragment %u.%u: key of %zu bytes absent", f->table,
                         f->id, klen);
    struct frag_txn *t;
    int added;
    if ((rc = frag_txn_get(f, txn, &t, &added)) < 0)
        return rc;
    struct kern_logrec r = frag_op_rec(f, t, KERN_LOG_DELETE, key, klen);
    r.before = (const uint8_t *)cur;
    r.blen = (uint32_t)kern_rec_bytes(cur);
    size_t n = kern_logrec_size(&r);
    uint8_t *space;
    if ((rc = kern_log_reserve(f->log, n, &space)) < 0) {
        op_fail(f, txn, added);
        return rc;
    }
    struct kern_rec *old = NULL;
    if ((rc = kern_bt_delete(f->bt, key, klen, &old)) < 0) {
        op_fail(f, txn, added);
        return rc;
    }
    N_ASSERT(old == cur);
    frag_log_put(f, space, n, &r);
    kern_rec_free(old);
    frag_op_done(f, t, r.lsn, lsn);
    return 0;
}

int frag_end(struct kern_frag *f, uint64_t txn, unsigned op, uint64_t gci, uint64_t *lsn)
{
    struct frag_txn *t = frag_txn_find(f, txn);
    if (lsn)
        *lsn = 0;
    if (!t)
        return 0;
    struct kern_logrec r = frag_op_rec(f, t, op, NULL, 0);
    r.sid = 0;
    r.gci = gci;
    size_t n = kern_logrec_size(&r);
    uint8_t *space;
    int rc = kern_log_reserve(f->log, n, &space);
    if (rc < 0)
        return rc;
    frag_log_put(f, space, n, &r);
    frag_txn_remove(f, txn);
    if (gci > f->max_gci)
        f->max_gci = gci;
    if (lsn)
        *lsn = r.lsn;
    return 0;
}

int kern_frag_commit(struct kern_frag *f, uint64_t txn, uint64_t *lsn)
{
    return kern_frag_commit_gci(f, txn, 0, lsn);
}

int kern_frag_commit_gci(struct kern_frag *f, uint64_t txn, uint64_t gci, uint64_t *lsn)
{
    int rc = frag_op_begin(f, "commit", txn, NULL, 0);
    if (rc < 0)
        return rc;
    return frag_end(f, txn, KERN_LOG_COMMIT, gci, lsn);
}

uint64_t kern_frag_max_gci(const struct kern_frag *f)
{
    return f->max_gci;
}

void kern_frag_note_gci(struct kern_frag *f, uint64_t gci)
{
    if (gci > f->max_gci)
        f->max_gci = gci;
}
