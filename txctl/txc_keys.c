/* The request-key table (txo.h; txctl/README.md "Request keys"): a fixed
 * array of entries allocated once, two chained hash tables (by key, by the
 * current attempt's txn id) and one list in the order entries were entered
 * or last decided, oldest first. Entries leave from the old end: when older
 * than keep_ms, or when the table is full; a RUNNING entry never leaves (it
 * moves to the young end), so the table can only refuse when every entry
 * runs. Every key that leaves raises its client bucket's high-water seq, so
 * a later question about it is answered "may have been dropped", never
 * "not seen". */
#include "txo.h"

#include <stdlib.h>
#include <string.h>

#include "nines/errors.h"

const char *txo_state_name(enum txo_state s)
{
    switch (s) {
    case TXO_FREE:
        return "free";
    case TXO_FENCED:
        return "fenced";
    case TXO_RUNNING:
        return "running";
    case TXO_COMMITTED:
        return "committed";
    case TXO_ABORTED:
        return "aborted";
    case TXO_LOST:
        return "lost";
    default:
        return "?";
    }
}

static uint32_t khash(const struct txo *o, uint64_t client, uint64_t seq)
{
    uint64_t h = client * UINT64_C(0x9E3779B97F4A7C15) ^ seq * UINT64_C(0xC2B2AE3D27D4EB4F);
    return (uint32_t)(h >> 32) & o->hmask;
}

static uint32_t thash(const struct txo *o, uint64_t txn)
{
    return (uint32_t)((txn * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & o->hmask;
}

static uint32_t bucket(uint64_t client)
{
    return (uint32_t)((client * UINT64_C(0xFF51AFD7ED558CCD)) >> 40) % TXO_EVICT_BUCKETS;
}

static struct txo_ent *E(struct txo *o, uint32_t i) { return &o->ent[i - 1]; }

int txo_init(struct txo *o, uint32_t cap, uint64_t keep_ms, uint64_t now_ms)
{
    memset(o, 0, sizeof *o);
    if (cap < 2 || keep_ms == 0)
        return nines_err(NINES_EINVAL, "request-key table: %u entries kept %llu ms (need >= 2 "
                         "and > 0)", cap, (unsigned long long)keep_ms);
    uint32_t hs = 1;
    while (hs < 2 * cap)
        hs <<= 1;
    o->ent = calloc(cap, sizeof *o->ent);
    o->khash = calloc(hs, sizeof *o->khash);
    o->thash = calloc(hs, sizeof *o->thash);
    if (!o->ent || !o->khash || !o->thash) {
        txo_free(o);
        return nines_err(NINES_ENOMEM, "no memory for a request-key table of %u entries", cap);
    }
    o->cap = cap;
    o->hmask = hs - 1;
    o->keep_ms = keep_ms;
    o->start_ms = now_ms;
    for (uint32_t i = cap; i >= 1; i--) {
        E(o, i)->next = o->free_head;
        o->free_head = i;
    }
    return 0;
}

void txo_free(struct txo *o)
{
    free(o->ent);
    free(o->khash);
    free(o->thash);
    o->ent = NULL;
    o->khash = o->thash = NULL;
    o->cap = 0;
}

/* ---- lists and chains --------------------------------------------------- */

static void list_unlink(struct txo *o, uint32_t i)
{
    struct txo_ent *e = E(o, i);
    if (e->prev)
        E(o, e->prev)->next = e->next;
    else
        o->head = e->next;
    if (e->next)
        E(o, e->next)->prev = e->prev;
    else
        o->tail = e->prev;
    e->prev = e->next = 0;
}

static void list_append(struct txo *o, uint32_t i)
{
    struct txo_ent *e = E(o, i);
    e->prev = o->tail;
    e->next = 0;
    if (o->tail)
        E(o, o->tail)->next = i;
    else
        o->head = i;
    o->tail = i;
}

static void thash_unlink(struct txo *o, uint32_t i)
{
    struct txo_ent *e = E(o, i);
    if (!e->txn)
        return;
    uint32_t *pp = &o->thash[thash(o, e->txn)];
    while (*pp && *pp != i)
        pp = &E(o, *pp)->tnext;
    if (*pp)
        *pp = e->tnext;
    e->tnext = 0;
}

static void thash_link(struct txo *o, uint32_t i)
{
    struct txo_ent *e = E(o, i);
    if (!e->txn)
        return;
    uint32_t h = thash(o, e->txn);
    e->tnext = o->thash[h];
    o->thash[h] = i;
}

static uint32_t idx(const struct txo *o, const struct txo_ent *e)
{
    return (uint32_t)(e - o->ent) + 1;
}

/* Drop entry i: its key's bucket remembers that keys up to its seq may be
 * gone. */
static void drop(struct txo *o, uint32_t i)
{
    struct txo_ent *e = E(o, i);
    uint32_t b = bucket(e->client);
    if (o->evicted[b] < e->seq)
        o->evicted[b] = e->seq;
    list_unlink(o, i);
    thash_unlink(o, i);
    uint32_t *pp = &o->khash[khash(o, e->client, e->seq)];
    while (*pp && *pp != i)
        pp = &E(o, *pp)->knext;
    if (*pp)
        *pp = e->knext;
    memset(e, 0, sizeof *e);
    e->next = o->free_head;
    o->free_head = i;
    o->used--;
}

/* Drop what is older than keep_ms; a running entry moves to the young end
 * instead (it cannot leave while its transaction lives). */
static void expire(struct txo *o, uint64_t now_ms)
{
    uint32_t guard = o->used;
    while (o->head && guard--) {
        uint32_t i = o->head;
        struct txo_ent *e = E(o, i);
        if (now_ms < e->born_ms || now_ms - e->born_ms < o->keep_ms)
            break;
        if (e->state == TXO_RUNNING) {
            list_unlink(o, i);
            list_append(o, i);
            continue;
        }
        o->st.evicted_age++;
        drop(o, i);
    }
}

/* A free entry: the oldest decided or fenced one is dropped when none is
 * free. 0 when every entry runs. */
static uint32_t take(struct txo *o)
{
    if (!o->free_head) {
        uint32_t guard = o->used;
        while (o->head && guard--) {
            uint32_t i = o->head;
            if (E(o, i)->state != TXO_RUNNING) {
                o->st.evicted_count++;
                drop(o, i);
                break;
            }
            list_unlink(o, i);
            list_append(o, i);
        }
        if (!o->free_head)
            return 0;
    }
    uint32_t i = o->free_head;
    o->free_head = E(o, i)->next;
    memset(E(o, i), 0, sizeof(struct txo_ent));
    o->used++;
    return i;
}

static struct txo_ent *lookup(struct txo *o, uint64_t client, uint64_t seq)
{
    for (uint32_t i = o->khash[khash(o, client, seq)]; i; i = E(o, i)->knext) {
        struct txo_ent *e = E(o, i);
        if (e->client == client && e->seq == seq)
            return e;
    }
    return NULL;
}

static struct txo_ent *enter(struct txo *o, uint64_t client, uint64_t seq, uint64_t now_ms)
{
    uint32_t i = take(o);
    if (!i)
        return NULL;
    struct txo_ent *e = E(o, i);
    e->client = client;
    e->seq = seq;
    e->born_ms = now_ms;
    uint32_t h = khash(o, client, seq);
    e->knext = o->khash[h];
    o->khash[h] = i;
    list_append(o, i);
    o->st.entered++;
    return e;
}

/* Move e to the young end (it changed state: kept keep_ms from now). */
static void refresh(struct txo *o, struct txo_ent *e, uint64_t now_ms)
{
    uint32_t i = idx(o, e);
    list_unlink(o, i);
    e->born_ms = now_ms;
    list_append(o, i);
}

/* ---- API ---------------------------------------------------------------- */

struct txo_ent *txo_find(struct txo *o, uint64_t client, uint64_t seq, uint64_t now_ms)
{
    expire(o, now_ms);
    return lookup(o, client, seq);
}

struct txo_ent *txo_find_txn(struct txo *o, uint64_t txn)
{
    if (!txn || !o->cap)
        return NULL;
    for (uint32_t i = o->thash[thash(o, txn)]; i; i = E(o, i)->tnext)
        if (E(o, i)->txn == txn)
            return E(o, i);
    return NULL;
}

bool txo_maybe_dropped(const struct txo *o, uint64_t client, uint64_t seq)
{
    return seq <= o->evicted[bucket(client)];
}

static void start_attempt(struct txo *o, struct txo_ent *e, uint32_t attempt, enum txo_role role,
                          uint64_t txn, uint32_t ctl, uint64_t now_ms)
{
    uint32_t i = idx(o, e);
    thash_unlink(o, i);
    e->state = TXO_RUNNING;
    e->role = (uint8_t)role;
    e->attempt = attempt;
    e->txn = txn;
    e->ctl = ctl;
    e->value = 0;
    e->error = 0;
    thash_link(o, i);
    refresh(o, e, now_ms);
}

enum txo_verdict txo_admit(struct txo *o, uint64_t client, uint64_t seq, uint32_t attempt,
                           enum txo_role role, uint64_t txn, uint32_t ctl, uint64_t now_ms,
                           struct txo_ent **out)
{
    if (attempt == 0)
        attempt = 1;
    struct txo_ent *e = txo_find(o, client, seq, now_ms);
    *out = e;
    if (e && e->txn == txn && txn && e->state != TXO_FENCED)
        return e->state == TXO_RUNNING ? TXO_RUN : TXO_SAME; /* that transaction again */
    if (!e) {
        if (txo_maybe_dropped(o, client, seq)) {
            o->st.refused_lost++;
            return TXO_DROPPED;
        }
        e = enter(o, client, seq, now_ms);
        *out = e;
        if (!e)
            return TXO_FULL;
        start_attempt(o, e, attempt, role, txn, ctl, now_ms);
        return TXO_RUN;
    }
    switch ((enum txo_state)e->state) {
    case TXO_RUNNING:
        if (e->txn == txn)
            return TXO_RUN; /* the same attempt again (a repeated START) */
        o->st.refused_running++;
        return TXO_BUSY;
    case TXO_COMMITTED:
        o->st.deduped++;
        return TXO_DONE_COMMITTED;
    case TXO_ABORTED:
    case TXO_FENCED:
    case TXO_LOST:
        if (attempt <= e->attempt || attempt <= e->fence) {
            o->st.refused_stale++;
            return TXO_STALE;
        }
        start_attempt(o, e, attempt, role, txn, ctl, now_ms);
        return TXO_RUN;
    default:
        return TXO_FULL; /* a free entry in a chain cannot be: treat as no room */
    }
}

void txo_decided(struct txo *o, uint64_t txn, bool committed, int64_t value, int error,
                 uint64_t now_ms)
{
    struct txo_ent *e = txo_find_txn(o, txn);
    if (!e || e->state != TXO_RUNNING)
        return;
    e->state = committed ? TXO_COMMITTED : TXO_ABORTED;
    e->value = committed ? value : 0;
    e->error = committed ? 0 : (error < 0 ? error : NINES_EABORTED);
    /* kept keep_ms from the decision (a long-running attempt is not dropped
     * the moment it ends) */
    refresh(o, e, now_ms);
}

struct txo_ent *txo_force(struct txo *o, uint64_t client, uint64_t seq, uint32_t attempt,
                          enum txo_role role, uint64_t txn, uint32_t ctl, uint64_t now_ms)
{
    struct txo_ent *e = txo_find(o, client, seq, now_ms);
    if (!e && !(e = enter(o, client, seq, now_ms)))
        return NULL;
    start_attempt(o, e, attempt ? attempt : 1, role, txn, ctl, now_ms);
    return e;
}

void txo_lost(struct txo *o, uint64_t txn, uint64_t now_ms)
{
    struct txo_ent *e = txo_find_txn(o, txn);
    if (!e || e->state != TXO_RUNNING)
        return;
    e->state = TXO_LOST;
    refresh(o, e, now_ms);
}

struct txo_ent *txo_fence(struct txo *o, uint64_t client, uint64_t seq, uint32_t attempt,
                          uint64_t now_ms)
{
    if (attempt == 0)
        attempt = 1;
    struct txo_ent *e = txo_find(o, client, seq, now_ms);
    if (!e) {
        e = enter(o, client, seq, now_ms);
        if (!e)
            return NULL;
        e->state = TXO_FENCED;
        o->st.fenced++;
    }
    if (e->fence < attempt)
        e->fence = attempt;
    return e;
}

void txo_set_gci(struct txo *o, uint64_t txn, uint64_t gci)
{
    struct txo_ent *e = txo_find_txn(o, txn);
    if (e)
        e->gci = gci;
}
