/* Schema rules: column types, names, table definition validation
 * (dict/README.md "Catalog rules"). */
#include "dict.h"
#include "dict_int.h"

#include "nines/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[] = {
    [DICT_T_INT32] = "int32",       [DICT_T_INT64] = "int64",
    [DICT_T_DOUBLE] = "double",     [DICT_T_STRING] = "string",
    [DICT_T_VARSTRING] = "varstring", [DICT_T_BYTES] = "bytes",
    [DICT_T_VARBYTES] = "varbytes", [DICT_T_TIMESTAMP] = "timestamp",
};

const char *dict_type_name(uint32_t type)
{
    if (type < DICT_T_FIRST || type > DICT_T_LAST)
        return "?";
    return type_names[type];
}

int dict_type_parse(const char *name, uint32_t *type)
{
    for (uint32_t t = DICT_T_FIRST; t <= DICT_T_LAST; t++) {
        if (strcmp(name, type_names[t]) == 0) {
            *type = t;
            return 0;
        }
    }
    return nines_err(NINES_EINVAL, "unknown column type '%s'", name);
}

/* Types whose `size` is a length (fixed n or variable max). */
static bool type_sized(uint32_t type)
{
    switch (type) {
    case DICT_T_STRING:
    case DICT_T_VARSTRING:
    case DICT_T_BYTES:
    case DICT_T_VARBYTES:
        return true;
    default:
        return false;
    }
}

int dict_name_check(const char *what, const char *name, size_t cap)
{
    size_t len = strnlen(name, cap);
    if (len == 0)
        return nines_err(NINES_EINVAL, "%s name is empty", what);
    if (len > DICT_NAME_MAX)
        return nines_err(NINES_EINVAL, "%s name '%.*s...' is longer than %d bytes", what, 20,
                         name, DICT_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0))
            return nines_err(NINES_EINVAL,
                             "%s name '%s': character %zu (0x%02x) is not allowed "
                             "(letters, digits, '_', not starting with a digit)",
                             what, name, i, (unsigned char)c);
    }
    return 0;
}

int dict_err_prefix(int rc, const char *fmt, ...)
{
    char old[512], pre[256];
    snprintf(old, sizeof old, "%s", nines_errdetail());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    return nines_err(rc, "%s: %s", pre, old);
}

void dict_hex(char *out, size_t cap, const uint8_t *b, size_t len)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len && o + 3 < cap; i++) {
        if (i == 16 && len > 17 && o + 6 < cap) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        out[o++] = hx[b[i] >> 4];
        out[o++] = hx[b[i] & 15];
    }
    if (cap)
        out[o < cap ? o : cap - 1] = '\0';
}

static int check_column(const char *t, uint32_t i, const struct dict_column *c)
{
    int rc = dict_name_check("column", c->name, sizeof c->name);
    if (rc < 0)
        return dict_err_prefix(rc, "table '%s' column %u", t, i);
    if (c->type < DICT_T_FIRST || c->type > DICT_T_LAST)
        return nines_err(NINES_EINVAL, "table '%s' column '%s': unknown type %u", t, c->name,
                         c->type);
    if (type_sized(c->type)) {
        if (c->size == 0 || c->size > DICT_MAX_COLSIZE)
            return nines_err(NINES_EINVAL,
                             "table '%s' column '%s': %s size %u must be in 1..%d", t, c->name,
                             dict_type_name(c->type), c->size, DICT_MAX_COLSIZE);
    } else if (c->size != 0) {
        return nines_err(NINES_EINVAL, "table '%s' column '%s': %s takes no size, got %u", t,
                         c->name, dict_type_name(c->type), c->size);
    }
    return 0;
}

static int check_splits(const char *t, const struct dict_table_def *def)
{
    char h1[64], h2[64];
    if (def->nsplits + 1 > DICT_MAX_FRAGS)
        return nines_err(NINES_EINVAL,
                         "table '%s': %u split points give %u fragments, more than the "
                         "maximum %d",
                         t, def->nsplits, def->nsplits + 1, DICT_MAX_FRAGS);
    if (def->nsplits > 0 && def->splits == NULL)
        return nines_err(NINES_EINVAL, "table '%s': %u split points but no array", t,
                         def->nsplits);
    if (def->nfrags != 0 && def->nfrags != def->nsplits + 1)
        return nines_err(NINES_EINVAL,
                         "table '%s': range fragment count %u does not match %u split points "
                         "(must be splits + 1 = %u, or 0)",
                         t, def->nfrags, def->nsplits, def->nsplits + 1);
    for (uint32_t i = 0; i < def->nsplits; i++) {
        const struct dict_key *k = &def->splits[i];
        if (k->len == 0 || k->bytes == NULL)
            return nines_err(NINES_EINVAL, "table '%s': split point %u is empty", t, i);
        if (k->len > DICT_KEY_MAX)
            return nines_err(NINES_EINVAL,
                             "table '%s': split point %u is %u bytes, longer than %d", t, i,
                             k->len, DICT_KEY_MAX);
        if (i == 0)
            continue;
        const struct dict_key *p = &def->splits[i - 1];
        int c = dict_key_cmp(p->bytes, p->len, k->bytes, k->len);
        if (c >= 0) {
            dict_hex(h1, sizeof h1, k->bytes, k->len);
            dict_hex(h2, sizeof h2, p->bytes, p->len);
            return nines_err(NINES_EINVAL, "table '%s': split point %u (%s) %s split point %u (%s)",
                             t, i, h1, c == 0 ? "duplicates" : "sorts before", i - 1, h2);
        }
    }
    return 0;
}

int dict_table_validate(const struct dict_table_def *def)
{
    int rc = dict_name_check("table", def->name, sizeof def->name);
    if (rc < 0)
        return rc;
    const char *t = def->name;
    if (def->ncols == 0 || def->cols == NULL)
        return nines_err(NINES_EINVAL, "table '%s' has no columns", t);
    if (def->ncols > DICT_MAX_COLS)
        return nines_err(NINES_EINVAL, "table '%s' has %u columns, more than the maximum %d", t,
                         def->ncols, DICT_MAX_COLS);
    for (uint32_t i = 0; i < def->ncols; i++) {
        if ((rc = check_column(t, i, &def->cols[i])) < 0)
            return rc;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(def->cols[i].name, def->cols[j].name) == 0)
                return nines_err(NINES_EINVAL,
                                 "table '%s': duplicate column name '%s' (columns %u and %u)",
                                 t, def->cols[i].name, j, i);
    }
    if (def->npk == 0 || def->pk == NULL)
        return nines_err(NINES_EINVAL, "table '%s' has no primary key", t);
    if (def->npk > DICT_MAX_PK)
        return nines_err(NINES_EINVAL,
                         "table '%s': primary key has %u columns, more than the maximum %d", t,
                         def->npk, DICT_MAX_PK);
    for (uint32_t i = 0; i < def->npk; i++) {
        uint32_t c = def->pk[i];
        if (c >= def->ncols)
            return nines_err(NINES_EINVAL,
                             "table '%s': primary key column %u refers to unknown column "
                             "index %u (table has %u columns)",
                             t, i, c, def->ncols);
        if (def->cols[c].nullable)
            return nines_err(NINES_EINVAL,
                             "table '%s': primary key column '%s' is nullable", t,
                             def->cols[c].name);
        for (uint32_t j = 0; j < i; j++)
            if (def->pk[j] == c)
                return nines_err(NINES_EINVAL,
                                 "table '%s': column '%s' appears twice in the primary key", t,
                                 def->cols[c].name);
    }
    switch (def->method) {
    case DICT_FRAG_HASH:
        if (def->nfrags == 0)
            return nines_err(NINES_EINVAL, "table '%s': zero fragments", t);
        if (def->nfrags > DICT_MAX_FRAGS)
            return nines_err(NINES_EINVAL,
                             "table '%s': %u fragments, more than the maximum %d", t,
                             def->nfrags, DICT_MAX_FRAGS);
        if (def->nsplits != 0)
            return nines_err(NINES_EINVAL, "table '%s': hash fragmentation takes no split "
                             "points, got %u", t, def->nsplits);
        break;
    case DICT_FRAG_RANGE:
        if ((rc = check_splits(t, def)) < 0)
            return rc;
        break;
    default:
        return nines_err(NINES_EINVAL, "table '%s': unknown fragmentation method %u", t,
                         def->method);
    }
    uint32_t r = def->replicas ? def->replicas : 2;
    if (r > DICT_NSITES)
        return nines_err(NINES_EINVAL,
                         "table '%s': %u replicas but only %d sites (one replica per site)", t,
                         r, DICT_NSITES);
    switch (def->scheme) {
    case 0:
    case DICT_PLACE_MISD:
    case DICT_PLACE_CIRCULAR:
        break;
    default:
        return nines_err(NINES_EINVAL, "table '%s': unknown placement scheme %u", t,
                         def->scheme);
    }
    return 0;
}

uint32_t dict_def_nfrags(const struct dict_table_def *def)
{
    return def->method == DICT_FRAG_RANGE ? def->nsplits + 1 : def->nfrags;
}
