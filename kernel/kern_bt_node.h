/* B+tree node layout and tree struct, shared by kern_btree.c (operations),
 * kern_bt_cursor.c and kern_bt_check.c. Layout: kernel/README.md "Node
 * layout". Private to the B+tree files. */
#ifndef NINES_KERN_BT_NODE_H
#define NINES_KERN_BT_NODE_H

#include "kern_btree.h"

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BT_NODE_SZ    4096u /* bytes per node, leaf or internal */
#define BT_HDR        32u   /* node header; the slot array follows */
#define BT_BODY       (BT_NODE_SZ - BT_HDR)
#define BT_SLOT       10u   /* per entry: 8-byte key prefix + 2-byte entry offset */
#define BT_PFX        8u    /* key prefix bytes held in the slot */
#define BT_INLINE_MAX 256u  /* longer keys live out of line */
#define BT_OOL        0x8000u
#define BT_ENT_MAX    (BT_SLOT + 2u + BT_INLINE_MAX + 8u) /* costliest entry */
#define BT_ENT_MIN    (BT_SLOT + 2u + 1u + 8u)            /* cheapest entry */
#define BT_MIN_USED   (BT_BODY / 3u) /* fill bound of every non-root node */
#define BT_MAX_ENTS   (BT_BODY / BT_ENT_MIN + 1u)
#define BT_MAX_HEIGHT 24

/* A balanced split or redistribution of more than BT_BODY bytes leaves at
 * least (BT_BODY - 2 * BT_ENT_MAX) / 2 on each side: keep that above the
 * fill bound, and the bound above two entries, so non-root leaves are never
 * empty and non-root internal nodes keep at least one separator. */
_Static_assert((BT_BODY - 2 * BT_ENT_MAX) / 2 >= BT_MIN_USED, "fill bound unreachable");
_Static_assert(BT_MIN_USED > 2 * BT_ENT_MAX, "fill bound below two entries");
_Static_assert(KERN_KEY_MAX < BT_OOL, "key length must fit the entry header");

struct bt_node {
    uint8_t leaf;          /* 1: leaf, 0: internal */
    uint8_t pad_;
    uint16_t n;            /* entries */
    uint16_t heap;         /* start of the entry heap, which ends at BT_NODE_SZ */
    uint16_t live;         /* bytes of live entries in the heap */
    struct bt_node *prev;  /* leaf chain (NULL in internal nodes) */
    struct bt_node *next;
    struct bt_node *left;  /* internal: leftmost child (NULL in leaves) */
    /* then the slot array at BT_HDR, in key order: slot i is BT_SLOT bytes
     * at BT_HDR + BT_SLOT * i, holding the key prefix (bt_key_pfx, host
     * order, 8 bytes) and the entry offset from the node start (2 bytes) */
};
_Static_assert(sizeof(struct bt_node) == BT_HDR, "node header is 32 bytes");

/* An entry handed between nodes: inline keys point into a node or the
 * caller's buffer; out-of-line keys (klen > BT_INLINE_MAX) point at the
 * owned heap copy, whose ownership moves with the entry. */
struct bt_ent {
    const uint8_t *key;
    size_t klen;
    void *val; /* leaf: struct kern_rec *; internal: child struct bt_node * */
};

struct kern_bt {
    struct bt_node *root;
    int height;
    uint64_t count;
    uint64_t mod;          /* bumped by every insert and delete */
    uint64_t nodes, leaves;
    size_t node_bytes, key_bytes, rec_bytes, other_bytes;
    struct bt_node *spare; /* reserve for splits, chained by ->next */
    int nspare;
    uint8_t *spare_key;    /* reserve for one new out-of-line separator */
    /* kern_bt_destroy_step: the post-order walk in progress (depth ddepth) */
    struct { struct bt_node *x; unsigned next; } dstack[BT_MAX_HEIGHT];
    int ddepth;            /* -1: not started */
};

/* The first BT_PFX key bytes as a big-endian integer, zero-padded: for
 * any keys a, b, pfx(a) < pfx(b) implies a < b (kern_key_cmp), and a < b
 * implies pfx(a) <= pfx(b); only equal prefixes need the whole keys. */
static inline uint64_t bt_key_pfx(const uint8_t *k, size_t kl)
{
    uint64_t v = 0;
    if (kl >= BT_PFX)
        memcpy(&v, k, BT_PFX);
    else
        memcpy(&v, k, kl);
    return be64toh(v);
}

static inline uint8_t *bt_slotp(const struct bt_node *x, unsigned i)
{
    return (uint8_t *)x + BT_HDR + BT_SLOT * i;
}

static inline uint64_t bt_slot_pfx(const struct bt_node *x, unsigned i)
{
    uint64_t p;
    memcpy(&p, bt_slotp(x, i), sizeof p);
    return p;
}

static inline unsigned bt_slot_off(const struct bt_node *x, unsigned i)
{
    uint16_t o;
    memcpy(&o, bt_slotp(x, i) + BT_PFX, sizeof o);
    return o;
}

static inline void bt_slot_set(struct bt_node *x, unsigned i, uint64_t pfx, unsigned off)
{
    uint16_t o = (uint16_t)off;
    memcpy(bt_slotp(x, i), &pfx, sizeof pfx);
    memcpy(bt_slotp(x, i) + BT_PFX, &o, sizeof o);
}

static inline uint8_t *bt_ent(const struct bt_node *x, unsigned i)
{
    return (uint8_t *)x + bt_slot_off(x, i);
}

static inline unsigned bt_ent_hdr(const uint8_t *e)
{
    uint16_t h;
    memcpy(&h, e, 2);
    return h;
}

static inline const uint8_t *bt_ent_key(const uint8_t *e, size_t *klen)
{
    unsigned h = bt_ent_hdr(e);
    *klen = h & ~BT_OOL;
    if (h & BT_OOL) {
        const uint8_t *p;
        memcpy(&p, e + 2, sizeof p);
        return p;
    }
    return e + 2;
}

static inline size_t bt_ent_size(size_t klen)
{
    return 2 + (klen > BT_INLINE_MAX ? sizeof(void *) : klen) + sizeof(void *);
}

static inline size_t bt_ent_valoff(const uint8_t *e)
{
    unsigned h = bt_ent_hdr(e);
    return 2 + ((h & BT_OOL) ? sizeof(void *) : (h & ~BT_OOL));
}

static inline void *bt_ent_val(const uint8_t *e)
{
    void *v;
    memcpy(&v, e + bt_ent_valoff(e), sizeof v);
    return v;
}

static inline void bt_ent_set_val(uint8_t *e, void *v)
{
    memcpy(e + bt_ent_valoff(e), &v, sizeof v);
}

static inline size_t bt_used(const struct bt_node *x)
{
    return BT_SLOT * x->n + x->live;
}

static inline struct bt_node *bt_child(const struct bt_node *x, unsigned i)
{
    return i == 0 ? x->left : (struct bt_node *)bt_ent_val(bt_ent(x, i - 1));
}

/* Index of the first entry >= key (x->n when none); *eq: it equals key.
 * kp = bt_key_pfx(k, kl). The search compares the slots' prefixes and reads
 * an entry only when its prefix equals kp. */
static inline unsigned bt_lower_bound(const struct bt_node *x, const uint8_t *k, size_t kl,
                                      uint64_t kp, bool *eq)
{
    unsigned lo = 0, hi = x->n;
    bool found = false;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        uint64_t mp = bt_slot_pfx(x, mid);
        if (mp < kp) {
            lo = mid + 1;
            continue;
        }
        if (mp > kp) {
            hi = mid;
            continue;
        }
        size_t ml;
        const uint8_t *mk = bt_ent_key(bt_ent(x, mid), &ml);
        int c = kern_key_cmp(mk, ml, k, kl);
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
            if (c == 0)
                found = true;
        }
    }
    *eq = found;
    return lo;
}

/* Start loading a node the descent is about to search: its header and the
 * first BT_PF_LINES cache lines of slots, all in parallel, instead of one
 * dependent miss per binary-search probe. */
#define BT_PF_LINES 16u
static inline void bt_prefetch(const struct bt_node *x)
{
    for (unsigned i = 0; i < BT_PF_LINES; i++)
        __builtin_prefetch((const uint8_t *)x + 64u * i);
}

/* Child to descend into from internal node x for key k. */
static inline struct bt_node *bt_step(const struct bt_node *x, const uint8_t *k, size_t kl,
                                      uint64_t kp, unsigned *ci)
{
    bool eq;
    unsigned i = bt_lower_bound(x, k, kl, kp, &eq);
    i += eq ? 1 : 0;
    *ci = i;
    struct bt_node *c = bt_child(x, i);
    bt_prefetch(c);
    return c;
}

/* Leaf that holds (or would hold) key; *pos and *eq as bt_lower_bound. */
static inline struct bt_node *bt_find_leaf(const struct kern_bt *t, const uint8_t *k, size_t kl,
                                           unsigned *pos, bool *eq)
{
    uint64_t kp = bt_key_pfx(k, kl);
    struct bt_node *x = t->root;
    for (int lvl = 0; lvl < t->height - 1; lvl++) {
        unsigned ci;
        x = bt_step(x, k, kl, kp, &ci);
    }
    *pos = bt_lower_bound(x, k, kl, kp, eq);
    return x;
}

#endif
