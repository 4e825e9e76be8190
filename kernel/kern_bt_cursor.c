/* B+tree cursors: a remembered key plus a cached leaf position that is
 * trusted only while the tree's modification count is unchanged; otherwise
 * the cursor re-seeks its key from the root. README "Cursor stability". */
#include "kern_bt_node.h"

#include "nines/errors.h"

/* Where the cursor stands relative to c->key:
 *   ON      on key (the last entry returned): next > key, prev < key
 *   BEFORE  just before key:                  next >= key, prev < key
 *   AFTER   just after key:                   next > key, prev <= key */
enum cur_state { CUR_NONE = 0, CUR_ON, CUR_BEFORE, CUR_AFTER };

void kern_bt_cursor_init(struct kern_bt_cursor *c, struct kern_bt *t)
{
    c->t = t;
    c->state = CUR_NONE;
    c->mod = 0;
    c->leaf = NULL;
    c->idx = 0;
    c->eq = false;
    c->rec = NULL;
    c->klen = 0;
}

/* Leaf and lower-bound index of c->key, from the cache when still valid. */
static struct bt_node *locate(struct kern_bt_cursor *c)
{
    const struct kern_bt *t = c->t;
    if (c->leaf && c->mod == t->mod)
        return c->leaf;
    unsigned pos;
    bool eq;
    struct bt_node *x = bt_find_leaf(t, c->key, c->klen, &pos, &eq);
    c->leaf = x;
    c->idx = pos;
    c->eq = eq;
    c->mod = t->mod;
    return x;
}

static int land(struct kern_bt_cursor *c, struct bt_node *x, unsigned i)
{
    uint8_t *e = bt_ent(x, i);
    size_t kl;
    const uint8_t *k = bt_ent_key(e, &kl);
    memcpy(c->key, k, kl);
    c->klen = kl;
    c->rec = bt_ent_val(e);
    c->leaf = x;
    c->idx = i;
    c->eq = true;
    c->mod = c->t->mod;
    c->state = CUR_ON;
    return 0;
}

int kern_bt_next(struct kern_bt_cursor *c)
{
    switch (c->state) {
    case CUR_NONE:
        return kern_bt_first(c);
    case CUR_ON:
    case CUR_BEFORE:
    case CUR_AFTER:
        break;
    default:
        return nines_err(NINES_ESTATE, "cursor in unknown state %d", c->state);
    }
    struct bt_node *x = locate(c);
    unsigned i = c->idx + ((c->state != CUR_BEFORE && c->eq) ? 1 : 0);
    while (i >= x->n) {
        x = x->next;
        i = 0;
        if (!x) {
            c->state = CUR_AFTER;
            c->rec = NULL;
            return NINES_ENOTFOUND;
        }
    }
    return land(c, x, i);
}

int kern_bt_prev(struct kern_bt_cursor *c)
{
    switch (c->state) {
    case CUR_NONE:
        return kern_bt_last(c);
    case CUR_ON:
    case CUR_BEFORE:
    case CUR_AFTER:
        break;
    default:
        return nines_err(NINES_ESTATE, "cursor in unknown state %d", c->state);
    }
    struct bt_node *x = locate(c);
    if (c->state == CUR_AFTER && c->eq)
        return land(c, x, c->idx);
    unsigned i = c->idx;
    while (i == 0) {
        x = x->prev;
        if (!x) {
            c->state = CUR_BEFORE;
            c->rec = NULL;
            return NINES_ENOTFOUND;
        }
        i = x->n;
    }
    return land(c, x, i - 1);
}

/* Position on `key` with `state`, then step forward (fwd) or backward. */
static int seek(struct kern_bt_cursor *c, const void *key, size_t klen, int state, bool fwd)
{
    if (klen == 0)
        return nines_err(NINES_EINVAL, "cursor seek to an empty key");
    if (klen > KERN_KEY_MAX)
        return nines_err(NINES_ETOOBIG, "cursor seek key of %zu bytes exceeds the maximum %d",
                         klen, KERN_KEY_MAX);
    memmove(c->key, key, klen); /* key may be the cursor's own */
    c->klen = klen;
    c->leaf = NULL;
    c->rec = NULL;
    c->state = state;
    return fwd ? kern_bt_next(c) : kern_bt_prev(c);
}

int kern_bt_seek_ge(struct kern_bt_cursor *c, const void *key, size_t klen)
{
    return seek(c, key, klen, CUR_BEFORE, true);
}

int kern_bt_seek_le(struct kern_bt_cursor *c, const void *key, size_t klen)
{
    return seek(c, key, klen, CUR_AFTER, false);
}

/* As if the cursor had just returned `key` (present or not): next() gives
 * the smallest key above it, prev() the largest below it. */
int kern_bt_seek_gt(struct kern_bt_cursor *c, const void *key, size_t klen)
{
    return seek(c, key, klen, CUR_ON, true);
}

int kern_bt_seek_lt(struct kern_bt_cursor *c, const void *key, size_t klen)
{
    return seek(c, key, klen, CUR_ON, false);
}

int kern_bt_first(struct kern_bt_cursor *c)
{
    /* the empty key is below every key */
    c->klen = 0;
    c->leaf = NULL;
    c->rec = NULL;
    c->state = CUR_BEFORE;
    return kern_bt_next(c);
}

int kern_bt_last(struct kern_bt_cursor *c)
{
    /* KERN_KEY_MAX + 1 bytes of 0xff are above every key */
    memset(c->key, 0xff, KERN_KEY_MAX + 1);
    c->klen = KERN_KEY_MAX + 1;
    c->leaf = NULL;
    c->rec = NULL;
    c->state = CUR_AFTER;
    return kern_bt_prev(c);
}
