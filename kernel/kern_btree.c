/* Main-memory B+tree: lookup, insert with splits, delete with merges and
 * redistribution, update, memory accounting. Algorithm: README "B+tree". */
#include "kern_bt_node.h"

#include "nassert.h"
#include "nines/errors.h"

#include <malloc.h>
#include <stdlib.h>

/* Entry array and scratch nodes for rebuilding nodes. A tree is used by
 * one thread at a time and no operation re-enters another, so one set per
 * thread serves every tree of that thread. */
static _Thread_local struct bt_ent bt_ents[2 * BT_MAX_ENTS + 2];
static _Thread_local union {
    struct bt_node n;
    uint8_t b[BT_NODE_SZ];
} bt_scratch[2];

#define BT_SPARE_CAP(t) ((t)->height + 4)

static size_t usable(void *p)
{
    return malloc_usable_size(p);
}

static int key_check(size_t klen)
{
    if (klen == 0)
        return nines_err(NINES_EINVAL, "empty key");
    if (klen > KERN_KEY_MAX)
        return nines_err(NINES_ETOOBIG, "key of %zu bytes exceeds the maximum %d", klen,
                         KERN_KEY_MAX);
    return 0;
}

/* ---- node primitives ---- */

static void node_reset(struct bt_node *x)
{
    x->n = 0;
    x->heap = BT_NODE_SZ;
    x->live = 0;
}

static size_t node_contig(const struct bt_node *x)
{
    return x->heap - BT_HDR - BT_SLOT * x->n;
}

#ifdef NINES_DEBUG
/* Expensive: keys of x strictly increase and its byte count adds up. */
static bool node_ok(const struct bt_node *x)
{
    size_t live = 0, pl = 0;
    const uint8_t *pk = NULL;
    for (unsigned i = 0; i < x->n; i++) {
        size_t kl;
        const uint8_t *k = bt_ent_key(bt_ent(x, i), &kl);
        if (pk && kern_key_cmp(pk, pl, k, kl) >= 0)
            return false;
        live += bt_ent_size(kl);
        pk = k;
        pl = kl;
    }
    return live == x->live && x->heap >= BT_HDR + BT_SLOT * x->n;
}
#endif

/* Insert entry d at slot pos; the caller made contiguous room. */
static void node_put(struct bt_node *x, unsigned pos, const struct bt_ent *d)
{
    size_t sz = bt_ent_size(d->klen);
    N_ASSERT(node_contig(x) >= sz + BT_SLOT && pos <= x->n);
    x->heap = (uint16_t)(x->heap - sz);
    uint8_t *e = (uint8_t *)x + x->heap;
    bool ool = d->klen > BT_INLINE_MAX;
    uint16_t h = (uint16_t)(d->klen | (ool ? BT_OOL : 0));
    memcpy(e, &h, 2);
    size_t off = 2;
    if (ool) {
        memcpy(e + off, &d->key, sizeof d->key);
        off += sizeof d->key;
    } else {
        memcpy(e + off, d->key, d->klen);
        off += d->klen;
    }
    memcpy(e + off, &d->val, sizeof d->val);
    memmove(bt_slotp(x, pos + 1), bt_slotp(x, pos), (x->n - pos) * BT_SLOT);
    bt_slot_set(x, pos, bt_key_pfx(d->key, d->klen), x->heap);
    x->n++;
    x->live = (uint16_t)(x->live + sz);
    N_DASSERT(node_ok(x));
}

/* Drop slot pos (the heap bytes become garbage until the next compaction);
 * does not free an out-of-line key. */
static void node_del(struct bt_node *x, unsigned pos)
{
    size_t kl;
    uint8_t *e = bt_ent(x, pos);
    bt_ent_key(e, &kl);
    x->live = (uint16_t)(x->live - bt_ent_size(kl));
    memmove(bt_slotp(x, pos), bt_slotp(x, pos + 1), (x->n - pos - 1) * BT_SLOT);
    x->n--;
    if (x->n == 0)
        x->heap = BT_NODE_SZ;
}

static unsigned node_gather(const struct bt_node *x, struct bt_ent *out)
{
    for (unsigned i = 0; i < x->n; i++) {
        uint8_t *e = bt_ent(x, i);
        out[i].key = bt_ent_key(e, &out[i].klen);
        out[i].val = bt_ent_val(e);
    }
    return x->n;
}

/* Build ents[from, to) into scratch s, with the header (links, kind) of x. */
static void node_build(struct bt_node *s, const struct bt_node *x, const struct bt_ent *ents,
                       unsigned from, unsigned to)
{
    memcpy(s, x, BT_HDR);
    node_reset(s);
    for (unsigned i = from; i < to; i++)
        node_put(s, s->n, &ents[i]);
}

static void node_commit(struct bt_node *x, const struct bt_node *s)
{
    memcpy(x, s, BT_HDR + BT_SLOT * s->n);
    memcpy((uint8_t *)x + s->heap, (const uint8_t *)s + s->heap, BT_NODE_SZ - s->heap);
    N_DASSERT(node_ok(x));
}

static void node_compact(struct bt_node *x)
{
    unsigned n = node_gather(x, bt_ents);
    node_build(&bt_scratch[0].n, x, bt_ents, 0, n);
    node_commit(x, &bt_scratch[0].n);
}

/* ---- reserve: nodes and one key buffer taken before any change ---- */

static int reserve(struct kern_bt *t)
{
    while (t->nspare < t->height + 1) {
        struct bt_node *x = N_FAULT("kern.bt.nomem") ? NULL : malloc(BT_NODE_SZ);
        if (!x)
            return nines_err(NINES_ENOMEM, "B+tree node of %u bytes", BT_NODE_SZ);
        x->next = t->spare;
        t->spare = x;
        t->nspare++;
        t->other_bytes += usable(x);
    }
    if (!t->spare_key) {
        t->spare_key = malloc(KERN_KEY_MAX);
        if (!t->spare_key)
            return nines_err(NINES_ENOMEM, "B+tree key buffer of %d bytes", KERN_KEY_MAX);
        t->other_bytes += usable(t->spare_key);
    }
    return 0;
}

static struct bt_node *node_take(struct kern_bt *t, bool leaf)
{
    struct bt_node *x = t->spare;
    N_ASSERT(x); /* reserve() ran before the operation */
    t->spare = x->next;
    t->nspare--;
    size_t u = usable(x);
    t->other_bytes -= u;
    t->node_bytes += u;
    t->nodes++;
    t->leaves += leaf;
    memset(x, 0, BT_HDR);
    x->leaf = leaf;
    node_reset(x);
    return x;
}

static void node_release(struct kern_bt *t, struct bt_node *x)
{
    size_t u = usable(x);
    t->node_bytes -= u;
    t->nodes--;
    t->leaves -= x->leaf;
    if (t->nspare < BT_SPARE_CAP(t)) {
        x->next = t->spare;
        t->spare = x;
        t->nspare++;
        t->other_bytes += u;
    } else {
        free(x);
    }
}

/* Copy a key that becomes a new separator: inline ones into buf, longer
 * ones into the reserved key buffer (at most one per operation). */
static void sep_make(struct kern_bt *t, const uint8_t *k, size_t kl, uint8_t *buf,
                     struct bt_ent *out)
{
    out->klen = kl;
    if (kl <= BT_INLINE_MAX) {
        memcpy(buf, k, kl);
        out->key = buf;
        return;
    }
    uint8_t *p = t->spare_key;
    N_ASSERT(p);
    t->spare_key = NULL;
    t->other_bytes -= usable(p);
    memcpy(p, k, kl);
    uint8_t *q = realloc(p, kl);
    if (q)
        p = q;
    t->key_bytes += usable(p);
    out->key = p;
}

static void key_free(struct kern_bt *t, const uint8_t *k, size_t kl)
{
    if (kl > BT_INLINE_MAX) {
        t->key_bytes -= usable((void *)k);
        free((void *)k);
    }
}

/* Shortest prefix of b that is greater than a (a < b): the suffix-truncated
 * separator between two neighbouring leaf keys. */
static size_t sep_len(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t c = 0, m = al < bl ? al : bl;
    while (c < m && a[c] == b[c])
        c++;
    N_ASSERT(c < bl);
    return c + 1;
}

/* Leaf split point: entries [0, s) left, [s, m) right, byte-balanced. */
static unsigned split_leaf_at(const struct bt_ent *e, unsigned m)
{
    size_t total = 0;
    for (unsigned i = 0; i < m; i++)
        total += BT_SLOT + bt_ent_size(e[i].klen);
    unsigned best = 1;
    size_t left = 0, bestd = SIZE_MAX;
    for (unsigned s = 1; s < m; s++) {
        left += BT_SLOT + bt_ent_size(e[s - 1].klen);
        size_t right = total - left;
        size_t d = left > right ? left - right : right - left;
        if (d < bestd) {
            bestd = d;
            best = s;
        }
    }
    return best;
}

/* Internal split pivot p: [0, p) left, e[p] goes up, (p, m) right. */
static unsigned split_internal_at(const struct bt_ent *e, unsigned m)
{
    size_t total = 0;
    for (unsigned i = 0; i < m; i++)
        total += BT_SLOT + bt_ent_size(e[i].klen);
    unsigned best = 1;
    size_t left = BT_SLOT + bt_ent_size(e[0].klen), bestd = SIZE_MAX;
    for (unsigned p = 1; p + 1 < m; p++) {
        size_t pc = BT_SLOT + bt_ent_size(e[p].klen);
        size_t right = total - left - pc;
        size_t d = left > right ? left - right : right - left;
        if (d < bestd) {
            bestd = d;
            best = p;
        }
        left += pc;
    }
    return best;
}

/* ---- insert ---- */

struct bt_path {
    struct bt_node *node[BT_MAX_HEIGHT];
    unsigned idx[BT_MAX_HEIGHT]; /* internal: child taken; leaf: lower bound */
};

static struct bt_node *descend(const struct kern_bt *t, const uint8_t *k, size_t kl,
                               struct bt_path *p, bool *eq)
{
    uint64_t kp = bt_key_pfx(k, kl);
    struct bt_node *x = t->root;
    int lvl = 0;
    for (; lvl < t->height - 1; lvl++) {
        p->node[lvl] = x;
        x = bt_step(x, k, kl, kp, &p->idx[lvl]);
    }
    p->node[lvl] = x;
    p->idx[lvl] = bt_lower_bound(x, k, kl, kp, eq);
    return x;
}

/* Insert d at slot pos of the node at level lvl of the path, splitting up
 * the path as needed. Returns 1 when a split happened, 0 otherwise. */
static int ins_level(struct kern_bt *t, struct bt_path *p, int lvl, unsigned pos,
                     const struct bt_ent *d)
{
    struct bt_node *x = p->node[lvl];
    size_t cost = BT_SLOT + bt_ent_size(d->klen);
    if (bt_used(x) + cost <= BT_BODY) {
        if (node_contig(x) < cost)
            node_compact(x);
        node_put(x, pos, d);
        return 0;
    }
    unsigned m = node_gather(x, bt_ents);
    memmove(&bt_ents[pos + 1], &bt_ents[pos], (m - pos) * sizeof bt_ents[0]);
    bt_ents[pos] = *d;
    m++;
    struct bt_node *y = node_take(t, x->leaf);
    uint8_t upbuf[BT_INLINE_MAX];
    struct bt_ent up;
    if (x->leaf) {
        unsigned s = split_leaf_at(bt_ents, m);
        const struct bt_ent *a = &bt_ents[s - 1], *b = &bt_ents[s];
        sep_make(t, b->key, sep_len(a->key, a->klen, b->key, b->klen), upbuf, &up);
        for (unsigned i = s; i < m; i++)
            node_put(y, y->n, &bt_ents[i]);
        node_build(&bt_scratch[0].n, x, bt_ents, 0, s);
        node_commit(x, &bt_scratch[0].n);
        y->next = x->next;
        if (y->next)
            y->next->prev = y;
        y->prev = x;
        x->next = y;
    } else {
        unsigned pv = split_internal_at(bt_ents, m);
        up = bt_ents[pv];
        if (up.klen <= BT_INLINE_MAX) {
            memcpy(upbuf, up.key, up.klen);
            up.key = upbuf;
        }
        y->left = bt_ents[pv].val;
        for (unsigned i = pv + 1; i < m; i++)
            node_put(y, y->n, &bt_ents[i]);
        node_build(&bt_scratch[0].n, x, bt_ents, 0, pv);
        node_commit(x, &bt_scratch[0].n);
    }
    up.val = y;
    if (lvl == 0) {
        N_ASSERT(t->height < BT_MAX_HEIGHT);
        struct bt_node *r = node_take(t, false);
        r->left = x;
        node_put(r, 0, &up);
        t->root = r;
        t->height++;
        return 1;
    }
    ins_level(t, p, lvl - 1, p->idx[lvl - 1], &up);
    return 1;
}

int kern_bt_insert(struct kern_bt *t, const void *key, size_t klen, struct kern_rec *rec)
{
    int rc = key_check(klen);
    if (rc < 0)
        return rc;
    if (!rec)
        return nines_err(NINES_EINVAL, "insert of a NULL record");
    struct bt_path p;
    bool eq;
    descend(t, key, klen, &p, &eq);
    if (eq)
        return nines_err(NINES_EEXIST, "key of %zu bytes (first byte 0x%02x) is already in the "
                         "tree", klen, ((const uint8_t *)key)[0]);
    rc = reserve(t);
    if (rc < 0)
        return rc;
    struct bt_ent d = {.key = key, .klen = klen, .val = rec};
    if (klen > BT_INLINE_MAX) {
        uint8_t *k = N_FAULT("kern.bt.nomem") ? NULL : malloc(klen);
        if (!k)
            return nines_err(NINES_ENOMEM, "key copy of %zu bytes", klen);
        memcpy(k, key, klen);
        t->key_bytes += usable(k);
        d.key = k;
    }
    int h = t->height - 1;
    ins_level(t, &p, h, p.idx[h], &d);
    t->count++;
    t->mod++;
    t->rec_bytes += usable(rec);
    return 0;
}

/* ---- delete ---- */

/* Restore the fill bound of the node at level lvl and above after it lost
 * an entry: merge with a sibling when both fit one node, else redistribute
 * (which replaces the parent's separator and may split the parent). */
static void rebalance(struct kern_bt *t, struct bt_path *p, int lvl)
{
    for (; lvl > 0; lvl--) {
        struct bt_node *x = p->node[lvl];
        if (bt_used(x) >= BT_MIN_USED)
            return;
        struct bt_node *P = p->node[lvl - 1], *L, *R;
        unsigned ci = p->idx[lvl - 1], si;
        if (ci > 0) {
            si = ci - 1;
            L = bt_child(P, ci - 1);
            R = x;
        } else {
            si = 0;
            L = x;
            R = bt_child(P, 1);
        }
        size_t sl;
        const uint8_t *sk = bt_ent_key(bt_ent(P, si), &sl);
        uint8_t upbuf[BT_INLINE_MAX];
        struct bt_ent up;
        if (x->leaf) {
            if (bt_used(L) + bt_used(R) <= BT_BODY) {
                if (node_contig(L) < bt_used(R))
                    node_compact(L);
                unsigned n = node_gather(R, bt_ents);
                for (unsigned i = 0; i < n; i++)
                    node_put(L, L->n, &bt_ents[i]);
                L->next = R->next;
                if (L->next)
                    L->next->prev = L;
                key_free(t, sk, sl);
                node_del(P, si);
                node_release(t, R);
            } else {
                unsigned n = node_gather(L, bt_ents);
                n += node_gather(R, bt_ents + n);
                unsigned s = split_leaf_at(bt_ents, n);
                const struct bt_ent *a = &bt_ents[s - 1], *b = &bt_ents[s];
                sep_make(t, b->key, sep_len(a->key, a->klen, b->key, b->klen), upbuf, &up);
                node_build(&bt_scratch[0].n, L, bt_ents, 0, s);
                node_build(&bt_scratch[1].n, R, bt_ents, s, n);
                node_commit(L, &bt_scratch[0].n);
                node_commit(R, &bt_scratch[1].n);
                key_free(t, sk, sl);
                node_del(P, si);
                up.val = R;
                if (ins_level(t, p, lvl - 1, si, &up))
                    return;
            }
        } else {
            size_t sc = BT_SLOT + bt_ent_size(sl);
            if (bt_used(L) + bt_used(R) + sc <= BT_BODY) {
                if (node_contig(L) < bt_used(R) + sc)
                    node_compact(L);
                struct bt_ent sd = {.key = sk, .klen = sl, .val = R->left};
                node_put(L, L->n, &sd); /* the separator's key moves down */
                unsigned n = node_gather(R, bt_ents);
                for (unsigned i = 0; i < n; i++)
                    node_put(L, L->n, &bt_ents[i]);
                node_del(P, si);
                node_release(t, R);
            } else {
                unsigned n = node_gather(L, bt_ents);
                bt_ents[n].key = sk;
                bt_ents[n].klen = sl;
                bt_ents[n].val = R->left;
                n++;
                n += node_gather(R, bt_ents + n);
                unsigned pv = split_internal_at(bt_ents, n);
                up = bt_ents[pv];
                if (up.klen <= BT_INLINE_MAX) {
                    memcpy(upbuf, up.key, up.klen);
                    up.key = upbuf;
                }
                node_build(&bt_scratch[0].n, L, bt_ents, 0, pv);
                node_build(&bt_scratch[1].n, R, bt_ents, pv + 1, n);
                bt_scratch[1].n.left = bt_ents[pv].val;
                node_commit(L, &bt_scratch[0].n);
                node_commit(R, &bt_scratch[1].n);
                node_del(P, si); /* its key now lives in L, R or `up` */
                up.val = R;
                if (ins_level(t, p, lvl - 1, si, &up))
                    return;
            }
        }
        if (lvl - 1 == 0 && P->n == 0) {
            /* the root lost its last separator: its only child is the root */
            t->root = P->left;
            t->height--;
            node_release(t, P);
            return;
        }
    }
}

int kern_bt_delete(struct kern_bt *t, const void *key, size_t klen, struct kern_rec **old)
{
    int rc = key_check(klen);
    if (rc < 0)
        return rc;
    struct bt_path p;
    bool eq;
    struct bt_node *leaf = descend(t, key, klen, &p, &eq);
    if (!eq)
        return nines_err(NINES_ENOTFOUND, "delete: no key of %zu bytes (first byte 0x%02x)",
                         klen, ((const uint8_t *)key)[0]);
    rc = reserve(t);
    if (rc < 0)
        return rc;
    int h = t->height - 1;
    uint8_t *e = bt_ent(leaf, p.idx[h]);
    size_t kl;
    const uint8_t *k = bt_ent_key(e, &kl);
    struct kern_rec *rec = bt_ent_val(e);
    node_del(leaf, p.idx[h]);
    key_free(t, k, kl);
    t->count--;
    t->mod++;
    t->rec_bytes -= usable(rec);
    if (old)
        *old = rec;
    else
        kern_rec_free(rec);
    rebalance(t, &p, h);
    return 0;
}

/* ---- lookup, update, bookkeeping ---- */

int kern_bt_get(const struct kern_bt *t, const void *key, size_t klen, struct kern_rec **rec)
{
    int rc = key_check(klen);
    if (rc < 0)
        return rc;
    unsigned pos;
    bool eq;
    struct bt_node *x = bt_find_leaf(t, key, klen, &pos, &eq);
    if (!eq)
        return NINES_ENOTFOUND; /* the common miss: no detail formatting */
    *rec = bt_ent_val(bt_ent(x, pos));
    return 0;
}

int kern_bt_update(struct kern_bt *t, const void *key, size_t klen, struct kern_rec *rec,
                   struct kern_rec **old)
{
    int rc = key_check(klen);
    if (rc < 0)
        return rc;
    if (!rec)
        return nines_err(NINES_EINVAL, "update with a NULL record");
    unsigned pos;
    bool eq;
    struct bt_node *x = bt_find_leaf(t, key, klen, &pos, &eq);
    if (!eq)
        return nines_err(NINES_ENOTFOUND, "update: no key of %zu bytes (first byte 0x%02x)",
                         klen, ((const uint8_t *)key)[0]);
    uint8_t *e = bt_ent(x, pos);
    struct kern_rec *prev = bt_ent_val(e);
    bt_ent_set_val(e, rec);
    t->rec_bytes -= usable(prev);
    t->rec_bytes += usable(rec);
    if (old)
        *old = prev;
    else if (prev != rec)
        kern_rec_free(prev);
    return 0;
}

int kern_bt_create(struct kern_bt **out)
{
    struct kern_bt *t = calloc(1, sizeof *t);
    if (!t)
        return nines_err(NINES_ENOMEM, "B+tree header");
    t->other_bytes = usable(t);
    t->height = 1;
    t->ddepth = -1;
    int rc = reserve(t);
    if (rc < 0) {
        kern_bt_destroy(t);
        return rc;
    }
    t->root = node_take(t, true);
    *out = t;
    return 0;
}

static void free_subtree(struct bt_node *x, int levels)
{
    if (levels == 1) {
        for (unsigned i = 0; i < x->n; i++) {
            uint8_t *e = bt_ent(x, i);
            size_t kl;
            const uint8_t *k = bt_ent_key(e, &kl);
            if (kl > BT_INLINE_MAX)
                free((void *)k);
            kern_rec_free(bt_ent_val(e));
        }
    } else {
        for (unsigned i = 0; i <= x->n; i++)
            free_subtree(bt_child(x, i), levels - 1);
        for (unsigned i = 0; i < x->n; i++) {
            size_t kl;
            const uint8_t *k = bt_ent_key(bt_ent(x, i), &kl);
            if (kl > BT_INLINE_MAX)
                free((void *)k);
        }
    }
    free(x);
}

/* Free one node's own keys (and, for a leaf, its records): its children
 * are freed already. Returns the entries freed. */
static unsigned free_node_own(struct bt_node *x, bool leaf)
{
    unsigned n = x->n;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = bt_ent(x, i);
        size_t kl;
        const uint8_t *k = bt_ent_key(e, &kl);
        if (kl > BT_INLINE_MAX)
            free((void *)k);
        if (leaf)
            kern_rec_free(bt_ent_val(e));
    }
    free(x);
    return n;
}

int kern_bt_destroy_step(struct kern_bt *t, size_t budget)
{
    if (!t)
        return 0;
    if (t->ddepth < 0 && t->root) {
        t->dstack[0].x = t->root;
        t->dstack[0].next = 0;
        t->ddepth = 0;
        t->root = NULL; /* the tree is being freed: nothing may use it */
    }
    size_t done = 0;
    while (t->ddepth >= 0 && done < budget) {
        int d = t->ddepth;
        struct bt_node *x = t->dstack[d].x;
        bool leaf = d == t->height - 1;
        if (!leaf && t->dstack[d].next <= x->n) {
            N_ASSERT(d + 1 < BT_MAX_HEIGHT);
            t->dstack[d + 1].x = bt_child(x, t->dstack[d].next++);
            t->dstack[d + 1].next = 0;
            t->ddepth = d + 1;
            continue;
        }
        done += free_node_own(x, leaf) + 1;
        t->ddepth = d - 1;
    }
    if (t->ddepth >= 0)
        return 1; /* more next time */
    kern_bt_destroy(t);
    return 0;
}

void kern_bt_destroy(struct kern_bt *t)
{
    if (!t)
        return;
    if (t->ddepth >= 0) { /* a sliced destroy in progress: finish it */
        (void)kern_bt_destroy_step(t, SIZE_MAX);
        return;
    }
    if (t->root)
        free_subtree(t->root, t->height);
    while (t->spare) {
        struct bt_node *x = t->spare;
        t->spare = x->next;
        free(x);
    }
    free(t->spare_key);
    free(t);
}

uint64_t kern_bt_count(const struct kern_bt *t)
{
    return t->count;
}

int kern_bt_height(const struct kern_bt *t)
{
    return t->height;
}

size_t kern_bt_bytes(const struct kern_bt *t)
{
    return t->node_bytes + t->key_bytes + t->rec_bytes + t->other_bytes;
}

void kern_bt_mem(const struct kern_bt *t, struct kern_bt_mem *m)
{
    memset(m, 0, sizeof *m);
    m->rows = t->count;
    m->nodes = t->nodes;
    m->leaves = t->leaves;
    m->height = t->height;
    m->node_bytes = t->node_bytes;
    m->key_bytes = t->key_bytes;
    m->rec_bytes = t->rec_bytes;
    m->other_bytes = t->other_bytes;
    m->total = kern_bt_bytes(t);
    if (t->count) {
        m->bytes_per_row = (double)m->total / (double)t->count;
        m->index_bytes_per_row = (double)(m->node_bytes + m->key_bytes) / (double)t->count;
    }
}
