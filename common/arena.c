/* Bump arena with a chain of chunks. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

struct arena_chunk {
    struct arena_chunk *next;
    size_t size, off;
    _Alignas(16) unsigned char data[];
};

static void *pb_alloc(void *ctx, size_t n) { return arena_alloc(ctx, n); }
static void pb_free(void *ctx, void *p) { (void)ctx; (void)p; }

void arena_init(struct arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 4096;
    a->used_total = 0;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
}

void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    struct arena_chunk *c = a->head;
    if (!c || c->size - c->off < n) {
        size_t sz = a->chunk_size;
        while (sz < n)
            sz *= 2;
        c = malloc(sizeof *c + sz);
        if (!c)
            return NULL;
        c->size = sz;
        c->off = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->off;
    c->off += n;
    a->used_total += n;
    return p;
}

void arena_reset(struct arena *a)
{
    struct arena_chunk *c = a->head;
    if (!c)
        return;
    /* keep the oldest chunk (normally the first, right-sized one) */
    while (c->next) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    c->off = 0;
    a->head = c;
    a->used_total = 0;
}

void arena_destroy(struct arena *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}
