/* Escrow bounds for ADD records (README "Escrow bounds"): per key, the
 * pending increments of transactions that have not ended, so that an ADD
 * that could make a later logical undo overflow is refused up front. Kept
 * on primaries (checked) and rebuilt by redo on standbys (not checked: the
 * primary did), so a promoted standby undoes in-doubt ADDs safely too. */
#include "kern_frag_int.h"

#include "nassert.h"
#include "nines/errors.h"

#include <stdlib.h>
#include <string.h>

#define ESC_MIN_BUCKETS 16u

static uint64_t esc_hash(const uint8_t *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static void esc_grow(struct kern_frag *f)
{
    size_t nb = f->nbesc ? 2 * f->nbesc : ESC_MIN_BUCKETS;
    struct frag_esc **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* chains only get longer */
    for (size_t i = 0; i < f->nbesc; i++)
        for (struct frag_esc *e = f->esc[i], *nx; e; e = nx) {
            nx = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(f->esc);
    f->esc = b;
    f->nbesc = nb;
}

static struct frag_esc *esc_find(const struct kern_frag *f, const void *key, size_t klen,
                                 uint64_t h)
{
    if (!f->nbesc)
        return NULL;
    for (struct frag_esc *e = f->esc[h & (f->nbesc - 1)]; e; e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

static void esc_unref(struct kern_frag *f, struct frag_esc *e, int64_t delta)
{
    if (delta >= 0)
        e->pos -= (uint64_t)delta;
    else
        e->neg -= (uint64_t)0 - (uint64_t)delta;
    N_ASSERT(e->refs > 0);
    if (--e->refs)
        return;
    N_ASSERT(e->pos == 0 && e->neg == 0);
    struct frag_esc **pp = &f->esc[e->hash & (f->nbesc - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    f->nesc--;
    free(e);
}

int frag_esc_hold(struct kern_frag *f, struct frag_txn *t, const void *key, size_t klen,
                  unsigned column, int64_t after, int64_t delta, int64_t lo, int64_t hi,
                  uint64_t lsn, int check)
{
    uint64_t h = esc_hash(key, klen);
    struct frag_esc *e = esc_find(f, key, klen, h);
    uint64_t pos = e ? e->pos : 0, neg = e ? e->neg : 0;
    uint64_t mag = delta >= 0 ? (uint64_t)delta : (uint64_t)0 - (uint64_t)delta;
    if (delta >= 0)
        pos += mag;
    else
        neg += mag;
    /* lowest committed outcome: every pending positive delta undone; highest:
     * every negative one undone (the value itself includes them all) */
    __int128 low = (__int128)after - (__int128)pos, high = (__int128)after + (__int128)neg;
    if (check && (low < lo || high > hi))
        return nines_err(NINES_ETOOBIG, "fragment %u.%u: ADD %lld to column %u (value then "
                         "%lld) refused: with the pending increments of open transactions "
                         "(+%llu / -%llu) undone the value could leave %lld..%lld",
                         f->table, f->id, (long long)delta, column, (long long)after,
                         (unsigned long long)(pos - (delta >= 0 ? mag : 0)),
                         (unsigned long long)(neg - (delta < 0 ? mag : 0)), (long long)lo,
                         (long long)hi);
    struct frag_esc_op *o = malloc(sizeof *o);
    if (!o)
        return nines_err(NINES_ENOMEM, "escrow entry of an ADD");
    if (!e) {
        if (f->nesc >= f->nbesc)
            esc_grow(f);
        if (!f->nbesc || !(e = calloc(1, sizeof *e + klen))) {
            free(o);
            return nines_err(NINES_ENOMEM, "escrow entry of an ADD");
        }
        e->hash = h;
        e->klen = (uint16_t)klen;
        e->column = (uint16_t)column;
        memcpy(e->key, key, klen);
        e->next = f->esc[h & (f->nbesc - 1)];
        f->esc[h & (f->nbesc - 1)] = e;
        f->nesc++;
    }
    e->pos = pos;
    e->neg = neg;
    e->refs++;
    *o = (struct frag_esc_op){.next = t->esc, .e = e, .lsn = lsn, .delta = delta};
    t->esc = o;
    return 0;
}

void frag_esc_drop(struct kern_frag *f, struct frag_txn *t, uint64_t lsn)
{
    for (struct frag_esc_op **pp = &t->esc; *pp; pp = &(*pp)->next)
        if ((*pp)->lsn == lsn) {
            struct frag_esc_op *o = *pp;
            *pp = o->next;
            esc_unref(f, o->e, o->delta);
            free(o);
            return;
        }
}

void frag_esc_release(struct kern_frag *f, struct frag_txn *t)
{
    struct frag_esc_op *o;
    while ((o = t->esc) != NULL) {
        t->esc = o->next;
        esc_unref(f, o->e, o->delta);
        free(o);
    }
}

void frag_esc_destroy(struct kern_frag *f)
{
    for (size_t i = 0; i < f->txcap; i++)
        if (f->tx[i].txn)
            frag_esc_release(f, &f->tx[i]);
    N_ASSERT(f->nesc == 0);
    free(f->esc);
    f->esc = NULL;
    f->nbesc = 0;
}
