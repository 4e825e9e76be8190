/* Column types and typed values shared by the key and record codecs
 * (internal, kernel). A value never owns memory: strings and byte strings
 * point at the caller's bytes (or into a decoded key or record). */
#ifndef NINES_KERN_VAL_H
#define NINES_KERN_VAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kern_type {
    KERN_T_INT32 = 1, /* int32_t */
    KERN_T_INT64,     /* int64_t */
    KERN_T_DOUBLE,    /* IEEE 754 binary64 */
    KERN_T_FSTR,      /* fixed string: exactly `size` bytes */
    KERN_T_VSTR,      /* variable string: 0..size bytes (size 0: no limit) */
    KERN_T_FBYTES,    /* fixed byte string: exactly `size` bytes */
    KERN_T_VBYTES,    /* variable byte string: 0..size bytes (size 0: no limit) */
    KERN_T_TS,        /* timestamp: int64 microseconds since the Unix epoch */
    KERN_T_MAX_
};

/* One column of a key or record layout. */
struct kern_col {
    uint8_t type;     /* enum kern_type */
    uint8_t nullable; /* 1: NULL allowed */
    uint32_t size;    /* fixed width, or maximum length of a variable one */
};

/* One value. `null` set: the value is SQL NULL and `u`/`len` are ignored.
 * Strings are byte strings compared bytewise (binary collation). */
struct kern_val {
    uint8_t type; /* enum kern_type; must equal the column's type */
    uint8_t null;
    uint32_t len; /* byte length of FSTR/VSTR/FBYTES/VBYTES */
    union {
        int32_t i32;
        int64_t i64; /* INT64 and TS */
        double d;
        const void *p; /* string/bytes */
    } u;
};

/* Kernel type of a schema column type code (the dictionary's enum
 * dict_type, proto/nines_dict.proto DictColumn.type: 1 int32, 2 int64,
 * 3 double, 4 string(n), 5 varstring(max), 6 bytes(n), 7 varbytes(max),
 * 8 timestamp), or -1 for another code. The one mapping every caller that
 * encodes keys from a table definition uses (node controller, kernel
 * service, client library), so they encode and route alike. */
int kern_type_from_dict(uint32_t dict_type);

/* Name of a type ("int32", "vstr" ...); "?" for an unknown code. */
const char *kern_type_name(unsigned type);

/* Is `c` a usable column definition? NINES_EINVAL naming column `idx`. */
int kern_col_check(const struct kern_col *c, unsigned idx);

/* Does `v` fit column `c` (type, NOT NULL, fixed width, maximum length)?
 * NINES_ETYPE / NINES_EINVAL / NINES_ETOOBIG with a detail naming `idx`. */
int kern_val_check(const struct kern_col *c, unsigned idx, const struct kern_val *v);

static inline bool kern_type_is_bytes(unsigned t)
{
    return t == KERN_T_FSTR || t == KERN_T_VSTR || t == KERN_T_FBYTES || t == KERN_T_VBYTES;
}
static inline bool kern_type_is_fixed_bytes(unsigned t)
{
    return t == KERN_T_FSTR || t == KERN_T_FBYTES;
}

/* Value constructors (convenience for callers and tests). */
static inline struct kern_val kern_v_null(unsigned type)
{
    struct kern_val v = {.type = (uint8_t)type, .null = 1};
    return v;
}
static inline struct kern_val kern_v_i32(int32_t x)
{
    struct kern_val v = {.type = KERN_T_INT32, .u.i32 = x};
    return v;
}
static inline struct kern_val kern_v_i64(int64_t x)
{
    struct kern_val v = {.type = KERN_T_INT64, .u.i64 = x};
    return v;
}
static inline struct kern_val kern_v_ts(int64_t us)
{
    struct kern_val v = {.type = KERN_T_TS, .u.i64 = us};
    return v;
}
static inline struct kern_val kern_v_dbl(double x)
{
    struct kern_val v = {.type = KERN_T_DOUBLE, .u.d = x};
    return v;
}
static inline struct kern_val kern_v_bytes(unsigned type, const void *p, uint32_t len)
{
    struct kern_val v = {.type = (uint8_t)type, .len = len, .u.p = p};
    return v;
}

#endif
