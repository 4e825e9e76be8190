/* Kernel service: a chained hash map keyed by (u64, u32, u32), grown by
 * doubling; entries are embedded in their owners (struct sk_node). */
#include "ksvc_int.h"

#include "nines/errors.h"

#include <stdlib.h>

static size_t sk_hash(uint64_t a, uint32_t b, uint32_t c, size_t cap)
{
    uint64_t h = a * 0x9e3779b97f4a7c15ull;
    h ^= ((uint64_t)b << 32 | c) * 0xc2b2ae3d27d4eb4full;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (size_t)h & (cap - 1);
}

int sk_map_init(struct sk_map *mp, size_t cap)
{
    size_t c = 16;
    while (c < cap)
        c *= 2;
    mp->bk = calloc(c, sizeof *mp->bk);
    if (!mp->bk)
        return nines_err(NINES_ENOMEM, "no memory for a %zu-bucket map", c);
    mp->cap = c;
    mp->n = 0;
    return 0;
}

void sk_map_free(struct sk_map *mp)
{
    free(mp->bk);
    mp->bk = NULL;
    mp->cap = mp->n = 0;
}

struct sk_node *sk_map_get(const struct sk_map *mp, uint64_t a, uint32_t b, uint32_t c)
{
    for (struct sk_node *nd = mp->bk[sk_hash(a, b, c, mp->cap)]; nd; nd = nd->next)
        if (nd->a == a && nd->b == b && nd->c == c)
            return nd;
    return NULL;
}

static void sk_map_grow(struct sk_map *mp)
{
    size_t cap = mp->cap * 2;
    struct sk_node **bk = calloc(cap, sizeof *bk);
    if (!bk)
        return; /* stays correct, only slower */
    for (size_t i = 0; i < mp->cap; i++)
        for (struct sk_node *nd = mp->bk[i], *nx; nd; nd = nx) {
            nx = nd->next;
            size_t h = sk_hash(nd->a, nd->b, nd->c, cap);
            nd->next = bk[h];
            bk[h] = nd;
        }
    free(mp->bk);
    mp->bk = bk;
    mp->cap = cap;
}

int sk_map_put(struct sk_map *mp, struct sk_node *nd)
{
    if (mp->n >= mp->cap)
        sk_map_grow(mp);
    size_t h = sk_hash(nd->a, nd->b, nd->c, mp->cap);
    nd->next = mp->bk[h];
    mp->bk[h] = nd;
    mp->n++;
    return 0;
}

void sk_map_del(struct sk_map *mp, struct sk_node *nd)
{
    for (struct sk_node **pp = &mp->bk[sk_hash(nd->a, nd->b, nd->c, mp->cap)]; *pp;
         pp = &(*pp)->next)
        if (*pp == nd) {
            *pp = nd->next;
            mp->n--;
            return;
        }
}
