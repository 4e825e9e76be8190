/* Order-preserving binary encoding of (composite) primary keys
 * (internal, kernel). Two encoded keys compare like their typed values
 * compare column by column: memcmp over the shorter length, then the
 * shorter key first (kern_key_cmp). Format: kernel/README.md "Keys". */
#ifndef NINES_KERN_KEY_H
#define NINES_KERN_KEY_H

#include "kern_val.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KERN_KEY_MAX 2048 /* longest encoded key, bytes */

/* Key column tag bytes. */
#define KERN_KEY_TAG_NULL  0x00
#define KERN_KEY_TAG_VALUE 0x01

/* Encode `vals` (one per key column `cols`) into `out` (capacity `cap`).
 * Returns the encoded length (>= 1) or NINES_EINVAL / NINES_ETYPE for a
 * value that does not fit its column, NINES_ETOOBIG when the key is longer
 * than KERN_KEY_MAX or `cap` (the detail names the length). */
int kern_key_encode(const struct kern_col *cols, unsigned ncols, const struct kern_val *vals,
                    uint8_t *out, size_t cap);

/* Decode `key` into `vals`. Fixed-width strings point into `key`; variable
 * strings are unescaped into `buf` (`bufcap` >= klen always suffices) and
 * point there. NINES_ECORRUPT / NINES_ETRUNC with a detail for a malformed
 * key. Doubles decode canonically: -0.0 as +0.0, every NaN as one quiet NaN. */
int kern_key_decode(const struct kern_col *cols, unsigned ncols, const uint8_t *key, size_t klen,
                    struct kern_val *vals, uint8_t *buf, size_t bufcap);

/* Compare two encoded keys: <0, 0, >0. */
static inline int kern_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

/* Canonical 64-bit order code of a double (what the key holds after the
 * tag, big-endian): -0.0 == +0.0, NaN above +inf, all NaNs equal. */
uint64_t kern_key_dbl_code(double d);

#endif
