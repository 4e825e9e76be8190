/* Key routing: encoded primary key -> fragment (dict/README.md "Routing").
 * A pure function of the table definition and the key bytes, so the node
 * and the client library agree without talking. */
#include "nhash.h"
#include "dict.h"

#include "nines/errors.h"

#include <string.h>

#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME  0x00000100000001b3ULL

uint64_t dict_fnv1a64(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t h = FNV64_OFFSET;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV64_PRIME;
    }
    return h;
}

/* FNV-1a, then murmur3's 64-bit finalizer: every input bit affects every
 * output bit, which FNV-1a alone does not give for the high bits of short
 * keys. */
uint64_t dict_hash64(const void *buf, size_t len)
{
    return nhash_fmix64(dict_fnv1a64(buf, len));
}

/* Jump consistent hash: walk the sequence of bucket counts at which this
 * key would jump to the newly added bucket, driven by a 64-bit LCG; the
 * last jump below nbuckets is the answer. Growing nbuckets by one moves
 * exactly the keys that land in the new bucket (1/(n+1) of them). The
 * division is IEEE-754 double arithmetic, exact-rounded on every platform
 * we build for, so the result is the same on every node and client. */
uint32_t dict_jump(uint64_t key, uint32_t nbuckets)
{
    int64_t b = -1, j = 0;
    while (j < (int64_t)nbuckets) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((key >> 33) + 1)));
    }
    return (uint32_t)b;
}

int dict_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

/* Number of split points <= key: a key equal to split i goes to i + 1. */
static int route_range(const struct dict_key *splits, uint32_t n, const uint8_t *key,
                       size_t len)
{
    uint32_t lo = 0, hi = n; /* answer in [lo, hi] */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (dict_key_cmp(splits[mid].bytes, splits[mid].len, key, len) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int)lo;
}

int dict_route_def(const struct dict_table_def *def, const uint8_t *key, size_t len)
{
    if (len == 0 || key == NULL)
        return nines_err(NINES_EINVAL, "table '%s': empty key cannot be routed", def->name);
    if (len > DICT_KEY_MAX)
        return nines_err(NINES_EINVAL, "table '%s': key of %zu bytes is longer than %d",
                         def->name, len, DICT_KEY_MAX);
    switch (def->method) {
    case DICT_FRAG_HASH:
        if (def->nfrags == 0 || def->nfrags > DICT_MAX_FRAGS)
            return nines_err(NINES_EINVAL, "table '%s': fragment count %u outside 1..%d",
                             def->name, def->nfrags, DICT_MAX_FRAGS);
        return (int)dict_jump(dict_hash64(key, len), def->nfrags);
    case DICT_FRAG_RANGE:
        return route_range(def->splits, def->nsplits, key, len);
    default:
        return nines_err(NINES_EINVAL, "table '%s': unknown fragmentation method %u", def->name,
                         def->method);
    }
}

int dict_route(const struct dict_table *t, const uint8_t *key, size_t len)
{
    return dict_route_def(&t->def, key, len);
}
