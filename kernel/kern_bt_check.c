/* kern_bt_check: full structural verification of a B+tree (README
 * "Invariants"). Walks every node once, carrying the key range each
 * subtree must respect, and recomputes the counters the tree keeps. */
#include "kern_bt_node.h"

#include "nines/errors.h"

#include <malloc.h>

struct chk {
    const struct kern_bt *t;
    uint64_t rows, nodes, leaves;
    size_t node_bytes, key_bytes, rec_bytes;
    const struct bt_node *prev_leaf;
};

struct bound {
    const uint8_t *k;
    size_t kl;
    bool set;
};

static int fail(const struct bt_node *x, int lvl, const char *what, unsigned i)
{
    return nines_err(NINES_ECORRUPT, "B+tree node %p (level %d, %s) entry %u: %s", (void *)x,
                     lvl, x->leaf ? "leaf" : "internal", i, what);
}

static int chk_node(struct chk *c, const struct bt_node *x, int lvl, struct bound lo,
                    struct bound hi)
{
    const struct kern_bt *t = c->t;
    bool root = x == t->root;
    c->nodes++;
    c->node_bytes += malloc_usable_size((void *)x);
    if ((x->leaf != 0) != (lvl == t->height - 1))
        return fail(x, lvl, "leaf flag does not match its depth (leaves at unequal depth)", 0);
    if (x->heap > BT_NODE_SZ || x->heap < BT_HDR + BT_SLOT * x->n)
        return fail(x, lvl, "heap overlaps the slot array", 0);
    if (!root && bt_used(x) < BT_MIN_USED)
        return fail(x, lvl, "below the fill bound", 0);
    if (!x->leaf && x->n == 0)
        return fail(x, lvl, "internal node without separators", 0);
    if (x->leaf && x->left)
        return fail(x, lvl, "leaf with a child pointer", 0);
    size_t live = 0;
    const uint8_t *pk = NULL;
    size_t pkl = 0;
    for (unsigned i = 0; i < x->n; i++) {
        unsigned off = bt_slot_off(x, i);
        if (off < x->heap || off + 2u > BT_NODE_SZ)
            return fail(x, lvl, "slot points outside the heap", i);
        const uint8_t *e = bt_ent(x, i);
        unsigned h = bt_ent_hdr(e);
        size_t kl;
        const uint8_t *k = bt_ent_key(e, &kl);
        if (kl == 0 || kl > KERN_KEY_MAX)
            return fail(x, lvl, "key length out of range", i);
        if (((h & BT_OOL) != 0) != (kl > BT_INLINE_MAX))
            return fail(x, lvl, "out-of-line flag does not match the key length", i);
        if (off + bt_ent_size(kl) > BT_NODE_SZ)
            return fail(x, lvl, "entry runs past the node end", i);
        if (bt_slot_pfx(x, i) != bt_key_pfx(k, kl))
            return fail(x, lvl, "slot key prefix does not match the entry's key", i);
        live += bt_ent_size(kl);
        if (kl > BT_INLINE_MAX)
            c->key_bytes += malloc_usable_size((void *)k);
        if (pk && kern_key_cmp(pk, pkl, k, kl) >= 0)
            return fail(x, lvl, "keys not strictly increasing", i);
        if (lo.set && kern_key_cmp(k, kl, lo.k, lo.kl) < 0)
            return fail(x, lvl, "key below the separator on its left", i);
        if (hi.set && kern_key_cmp(k, kl, hi.k, hi.kl) >= 0)
            return fail(x, lvl, "key not below the separator on its right", i);
        pk = k;
        pkl = kl;
        if (!bt_ent_val(e))
            return fail(x, lvl, "NULL value pointer", i);
    }
    if (live != x->live)
        return fail(x, lvl, "live byte count is wrong", 0);
    if (live > BT_NODE_SZ - x->heap)
        return fail(x, lvl, "live entries exceed the heap", 0);
    if (x->leaf) {
        c->leaves++;
        c->rows += x->n;
        for (unsigned i = 0; i < x->n; i++) {
            struct kern_rec *r = bt_ent_val(bt_ent(x, i));
            if (r->version != KERN_REC_VERSION)
                return fail(x, lvl, "record with a bad version byte", i);
            c->rec_bytes += malloc_usable_size(r);
        }
        if (x->prev != c->prev_leaf)
            return fail(x, lvl, "prev pointer does not point at the previous leaf", 0);
        if (c->prev_leaf && c->prev_leaf->next != x)
            return fail(x, lvl, "previous leaf's next pointer skips this leaf", 0);
        if (!root && x->n == 0)
            return fail(x, lvl, "empty non-root leaf", 0);
        c->prev_leaf = x;
        return 0;
    }
    if (x->prev || x->next)
        return fail(x, lvl, "internal node with leaf-chain pointers", 0);
    for (unsigned i = 0; i <= x->n; i++) {
        struct bound l = lo, h = hi;
        if (i > 0) {
            l.k = bt_ent_key(bt_ent(x, i - 1), &l.kl);
            l.set = true;
        }
        if (i < x->n) {
            h.k = bt_ent_key(bt_ent(x, i), &h.kl);
            h.set = true;
        }
        const struct bt_node *ch = bt_child(x, i);
        if (!ch)
            return fail(x, lvl, "NULL child pointer", i);
        int rc = chk_node(c, ch, lvl + 1, l, h);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int kern_bt_check(const struct kern_bt *t)
{
    if (!t->root || t->height < 1 || t->height > BT_MAX_HEIGHT)
        return nines_err(NINES_ECORRUPT, "B+tree has no root or height %d", t->height);
    struct chk c = {.t = t};
    struct bound none = {0};
    int rc = chk_node(&c, t->root, 0, none, none);
    if (rc < 0)
        return rc;
    if (c.prev_leaf && c.prev_leaf->next)
        return nines_err(NINES_ECORRUPT, "B+tree last leaf %p has a next pointer",
                         (void *)c.prev_leaf);
    if (c.rows != t->count)
        return nines_err(NINES_ECORRUPT, "B+tree count %llu but %llu rows in the leaves",
                         (unsigned long long)t->count, (unsigned long long)c.rows);
    if (c.nodes != t->nodes || c.leaves != t->leaves)
        return nines_err(NINES_ECORRUPT, "B+tree counts %llu nodes / %llu leaves, found %llu / "
                         "%llu", (unsigned long long)t->nodes, (unsigned long long)t->leaves,
                         (unsigned long long)c.nodes, (unsigned long long)c.leaves);
    if (c.node_bytes != t->node_bytes || c.key_bytes != t->key_bytes ||
        c.rec_bytes != t->rec_bytes)
        return nines_err(NINES_ECORRUPT, "B+tree memory counters (nodes %zu, keys %zu, records "
                         "%zu) differ from the walk (%zu, %zu, %zu)", t->node_bytes,
                         t->key_bytes, t->rec_bytes, c.node_bytes, c.key_bytes, c.rec_bytes);
    return 0;
}
