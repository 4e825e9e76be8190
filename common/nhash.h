/* 64-bit integer mixing (internal, common). */
#ifndef NINES_NHASH_H
#define NINES_NHASH_H
#include <stdint.h>

/* MurmurHash3's 64-bit finalizer: every input bit affects every output
 * bit. Its values are part of the routing contract (dict/README.md test
 * vectors): never change it. */
static inline uint64_t nhash_fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}
#endif
