/* Bump arena (internal, common): many small allocations, freed all at once.
 * Used to unpack protobuf-c messages on hot paths without one malloc per
 * field (arena_pb_allocator), and for per-message scratch memory.
 * Not thread-safe: one owner at a time. */
#ifndef NINES_ARENA_H
#define NINES_ARENA_H
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct arena_chunk;
struct arena {
    struct arena_chunk *head;   /* current chunk; older chunks follow */
    size_t chunk_size;          /* size of new chunks (grows for large asks) */
    size_t used_total;          /* bytes handed out since last reset */
    ProtobufCAllocator pb;      /* protobuf-c allocator view of this arena */
};

void arena_init(struct arena *a, size_t chunk_size);
/* 16-byte aligned; NULL only when out of memory. */
void *arena_alloc(struct arena *a, size_t n);
/* Forget all allocations; keeps the first chunk for reuse. */
void arena_reset(struct arena *a);
void arena_destroy(struct arena *a);
static inline ProtobufCAllocator *arena_pb_allocator(struct arena *a) { return &a->pb; }
#endif
