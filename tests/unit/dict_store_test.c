/* Dictionary file: round trip, every flipped byte and every truncation
 * detected, semantically invalid content with valid checksums refused,
 * atomic save leaves no temporary file. */
#include "crc32c.h"
#include "cu_test.h"
#include "dict/dict.h"
#include "nines/errors.h"
#include "scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct dict_node nodes[] = {{2, 0}, {5, 0}, {7, 1}, {9, 1}, {11, 1}};

/* A verifier for password pw (fixed salt: the same text every run). */
static void verifier(const char *pw, char *out, size_t n)
{
    static const uint8_t salt[16] = "0123456789abcdef";
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make(pw, strlen(pw), salt, sizeof salt, 4096, out, n),
                          0);
}

/* Several tables of every kind; one dropped and one role switch so the
 * version and ids are not trivial. */
static void build(struct dict *d)
{
    CU_ASSERT_EQUAL_FATAL(dict_init(d, nodes, 5), 0);
    struct dict_column cols[3] = {
        {.name = "k", .type = DICT_T_STRING, .size = 12, .sqltype = 1042, .sqltypmod = 16},
        {.name = "v", .type = DICT_T_VARBYTES, .size = 300, .nullable = true, .sqltype = 17,
         .sqltypmod = -1},
        {.name = "t", .type = DICT_T_TIMESTAMP, .sqltypmod = -1, .hidden = true},
    };
    uint16_t pk[] = {0, 2};
    struct dict_table_def h = {.name = "hashed", .ncols = 3, .cols = cols, .npk = 2, .pk = pk,
                               .method = DICT_FRAG_HASH, .nfrags = 12};
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &h, NULL), 0);
    struct dict_key sp[] = {{(const uint8_t *)"\x01m", 2}, {(const uint8_t *)"\x01t\x00", 3}};
    struct dict_table_def r = h;
    snprintf(r.name, sizeof r.name, "ranged");
    r.method = DICT_FRAG_RANGE;
    r.nfrags = 0;
    r.nsplits = 2;
    r.splits = sp;
    r.scheme = DICT_PLACE_CIRCULAR;
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &r, NULL), 0);
    struct dict_table_def gone = h;
    snprintf(gone.name, sizeof gone.name, "gone");
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &gone, NULL), 0);
    struct dict_table_def single = h;
    snprintf(single.name, sizeof single.name, "single");
    single.replicas = 1;
    single.nfrags = 3;
    uint32_t sid;
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &single, &sid), 0);
    CU_ASSERT_EQUAL_FATAL(dict_drop_table(d, "gone"), 0);
    CU_ASSERT_EQUAL_FATAL(dict_switch_roles(d, dict_table_by_name(d, "hashed")->id, 3), 0);
    CU_ASSERT_EQUAL_FATAL(dict_set_readonly(d, "ranged", true), 0);
    /* users (format 4), created out of name order */
    char v[DICT_VERIFIER_MAX + 1];
    verifier("secret", v, sizeof v);
    CU_ASSERT_EQUAL_FATAL(dict_user_create(d, "zed", DICT_ROLE_READER, v), 0);
    CU_ASSERT_EQUAL_FATAL(dict_user_create(d, "ann@site-1.x", DICT_ROLE_ADMIN, v), 0);
    verifier("other", v, sizeof v);
    CU_ASSERT_EQUAL_FATAL(dict_user_create(d, "bob", DICT_ROLE_WRITER, v), 0);
    CU_ASSERT_EQUAL(d->version, 10);
}

static void same(const struct dict *a, const struct dict *b)
{
    CU_ASSERT_EQUAL(a->version, b->version);
    CU_ASSERT_EQUAL(a->next_table_id, b->next_table_id);
    CU_ASSERT_EQUAL_FATAL(a->nnodes, b->nnodes);
    CU_ASSERT_EQUAL(memcmp(a->nodes, b->nodes, a->nnodes * sizeof a->nodes[0]), 0);
    CU_ASSERT_EQUAL_FATAL(a->ntables, b->ntables);
    for (uint32_t i = 0; i < a->ntables; i++) {
        const struct dict_table *x = a->tables[i], *y = b->tables[i];
        CU_ASSERT_EQUAL(x->id, y->id);
        CU_ASSERT_EQUAL(x->readonly, y->readonly);
        CU_ASSERT_STRING_EQUAL(x->def.name, y->def.name);
        CU_ASSERT_EQUAL(x->def.method, y->def.method);
        CU_ASSERT_EQUAL(x->def.scheme, y->def.scheme);
        CU_ASSERT_EQUAL(x->def.replicas, y->def.replicas);
        CU_ASSERT_EQUAL(x->def.nfrags, y->def.nfrags);
        CU_ASSERT_EQUAL_FATAL(x->def.ncols, y->def.ncols);
        for (uint32_t c = 0; c < x->def.ncols; c++) {
            CU_ASSERT_STRING_EQUAL(x->def.cols[c].name, y->def.cols[c].name);
            CU_ASSERT_EQUAL(x->def.cols[c].type, y->def.cols[c].type);
            CU_ASSERT_EQUAL(x->def.cols[c].size, y->def.cols[c].size);
            CU_ASSERT_EQUAL(x->def.cols[c].nullable, y->def.cols[c].nullable);
            CU_ASSERT_EQUAL(x->def.cols[c].sqltype, y->def.cols[c].sqltype);
            CU_ASSERT_EQUAL(x->def.cols[c].sqltypmod, y->def.cols[c].sqltypmod);
            CU_ASSERT_EQUAL(x->def.cols[c].hidden, y->def.cols[c].hidden);
        }
        CU_ASSERT_EQUAL_FATAL(x->def.npk, y->def.npk);
        CU_ASSERT_EQUAL(memcmp(x->def.pk, y->def.pk, x->def.npk * sizeof x->def.pk[0]), 0);
        CU_ASSERT_EQUAL_FATAL(x->def.nsplits, y->def.nsplits);
        for (uint32_t s = 0; s < x->def.nsplits; s++) {
            CU_ASSERT_EQUAL_FATAL(x->def.splits[s].len, y->def.splits[s].len);
            CU_ASSERT_EQUAL(memcmp(x->def.splits[s].bytes, y->def.splits[s].bytes,
                                   x->def.splits[s].len), 0);
        }
        CU_ASSERT_EQUAL_FATAL(x->nfrags, y->nfrags);
        CU_ASSERT_EQUAL(memcmp(x->frags, y->frags, x->nfrags * sizeof x->frags[0]), 0);
    }
    CU_ASSERT_EQUAL_FATAL(a->nusers, b->nusers);
    for (uint32_t i = 0; i < a->nusers; i++) {
        CU_ASSERT_STRING_EQUAL(a->users[i].name, b->users[i].name);
        CU_ASSERT_EQUAL(a->users[i].role, b->users[i].role);
        CU_ASSERT_STRING_EQUAL(a->users[i].verifier, b->users[i].verifier);
    }
}

static void test_roundtrip(void)
{
    struct dict a, b;
    build(&a);
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(dict_encode(&a, &buf, &len), 0);
    CU_ASSERT_EQUAL_FATAL(dict_decode(buf, len, &b), 0);
    same(&a, &b);
    /* format 3: the SQL attributes and the table flag came back */
    const struct dict_table *rt = dict_table_by_name(&b, "ranged");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    CU_ASSERT_TRUE(rt->readonly);
    CU_ASSERT_FALSE(dict_table_by_name(&b, "hashed")->readonly);
    CU_ASSERT_EQUAL(rt->def.cols[0].sqltype, 1042);
    CU_ASSERT_EQUAL(rt->def.cols[0].sqltypmod, 16);
    CU_ASSERT_FALSE(rt->def.cols[0].hidden);
    CU_ASSERT_EQUAL(rt->def.cols[1].sqltypmod, -1);
    CU_ASSERT_TRUE(rt->def.cols[2].hidden);
    CU_ASSERT_EQUAL(buf[4], 4); /* format version written */
    /* format 4: the users came back, in name order */
    CU_ASSERT_EQUAL_FATAL(b.nusers, 3);
    CU_ASSERT_STRING_EQUAL(b.users[0].name, "ann@site-1.x");
    CU_ASSERT_EQUAL(b.users[0].role, DICT_ROLE_ADMIN);
    CU_ASSERT_STRING_EQUAL(b.users[1].name, "bob");
    CU_ASSERT_STRING_EQUAL(b.users[2].name, "zed");
    CU_ASSERT_PTR_NOT_NULL(strstr(b.users[1].verifier, "SCRAM-SHA-256$4096:"));
    CU_ASSERT_PTR_NOT_NULL(dict_user_find(&b, "zed"));
    /* a clone has them too (the dictionary service applies changes to one) */
    struct dict cl;
    CU_ASSERT_EQUAL_FATAL(dict_clone(&a, &cl), 0);
    same(&a, &cl);
    dict_free(&cl);
    /* the loaded dictionary keeps working: a new id, the version goes on */
    struct dict_column c = {.name = "k", .type = DICT_T_INT32};
    uint16_t pk = 0;
    struct dict_table_def def = {.name = "later", .ncols = 1, .cols = &c, .npk = 1, .pk = &pk,
                                 .method = DICT_FRAG_HASH, .nfrags = 2};
    uint32_t id;
    CU_ASSERT_EQUAL(dict_create_table(&b, &def, &id), 0);
    CU_ASSERT_EQUAL(id, a.next_table_id);
    CU_ASSERT_EQUAL(b.version, a.version + 1);
    /* an empty dictionary round trips too */
    struct dict e, e2;
    uint8_t *eb;
    size_t el;
    CU_ASSERT_EQUAL_FATAL(dict_init(&e, nodes, 2), 0);
    CU_ASSERT_EQUAL_FATAL(dict_encode(&e, &eb, &el), 0);
    CU_ASSERT_EQUAL(dict_decode(eb, el, &e2), 0);
    same(&e, &e2);
    free(eb);
    dict_free(&e);
    dict_free(&e2);
    free(buf);
    dict_free(&a);
    dict_free(&b);
}

static void test_corruption(void)
{
    struct dict a, b;
    build(&a);
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(dict_encode(&a, &buf, &len), 0);
    /* every single flipped byte is detected */
    uint32_t undetected = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = dict_decode(buf, len, &b);
            buf[i] ^= (uint8_t)(1u << bit);
            if (rc != NINES_ECORRUPT) {
                undetected++;
                fprintf(stderr, "flip byte %zu bit %d: rc %d\n", i, bit, rc);
            }
            CU_ASSERT_EQUAL(b.ntables, 0); /* never loaded */
        }
    }
    CU_ASSERT_EQUAL(undetected, 0);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), 0); /* restored image still fine */
    dict_free(&b);
    /* every truncation is detected as such */
    for (size_t l = 0; l < len; l++) {
        int rc = dict_decode(buf, l, &b);
        CU_ASSERT_EQUAL(rc, NINES_ETRUNC);
        if (rc != NINES_ETRUNC)
            fprintf(stderr, "truncated to %zu: rc %d\n", l, rc);
    }
    CU_ASSERT_EQUAL(dict_decode(buf, 10, &b), NINES_ETRUNC);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "10 bytes, shorter than its 32-byte"));
    CU_ASSERT_EQUAL(dict_decode(buf, len - 1, &b), NINES_ETRUNC);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "payload is"));
    /* trailing bytes */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    CU_ASSERT_EQUAL(dict_decode(longer, len + 1, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "1 bytes after its payload"));
    free(longer);
    free(buf);
    dict_free(&a);
}

/* Re-seal header and payload checksums after an edit. */
static void reseal(uint8_t *buf, size_t len)
{
    uint32_t c = crc32c(0, buf + 32, len - 32);
    for (int i = 0; i < 4; i++)
        buf[20 + i] = (uint8_t)(c >> (8 * i));
    c = crc32c(0, buf, 28);
    for (int i = 0; i < 4; i++)
        buf[28 + i] = (uint8_t)(c >> (8 * i));
}

/* A format-4 image without users -> the format-3 image of the same
 * dictionary (format 4 only appends the user count). */
static void to_v3(uint8_t *buf, size_t *len)
{
    CU_ASSERT_EQUAL_FATAL(buf[4], 4);
    CU_ASSERT_EQUAL_FATAL(memcmp(buf + *len - 4, "\0\0\0\0", 4), 0);
    *len -= 4;
    buf[4] = 3;
    uint32_t plen = (uint32_t)(*len - 32);
    for (int i = 0; i < 4; i++)
        buf[16 + i] = (uint8_t)(plen >> (8 * i));
    reseal(buf, *len);
}

/* The format-2 image of a format-3 image of one single-column table: the
 * column record loses sqltype and sqltypmod (8 bytes at col_off + 6). */
static uint8_t *downgrade(const uint8_t *buf, size_t len, size_t col_off, size_t *len2)
{
    uint8_t *v2 = malloc(len - 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v2);
    memcpy(v2, buf, col_off + 6);
    memcpy(v2 + col_off + 6, buf + col_off + 14, len - col_off - 14);
    *len2 = len - 8;
    v2[4] = 2;
    uint32_t plen = (uint32_t)(*len2 - 32);
    for (int i = 0; i < 4; i++)
        v2[16 + i] = (uint8_t)(plen >> (8 * i));
    reseal(v2, *len2);
    return v2;
}

/* payload: next id(4) nnodes(4) 2 nodes(16) ntables(4) id(4) name(1+1)
 * method scheme replicas flags(4) nfrags(4) ncols(2) colname(1+1) type */
#define ONE_TYPE_OFF (32 + 4 + 4 + 16 + 4 + 4 + 2 + 4 + 4 + 2 + 2)
#define ONE_TFLAG_OFF (32 + 4 + 4 + 16 + 4 + 4 + 2 + 3)

static void test_checked_content(void)
{
    /* one node per site, one single-fragment table: the last 12 payload
     * bytes are fragment 0's primary, standby, standby state and 3
     * reserved bytes (format 2) */
    static const struct dict_node two[] = {{1, 0}, {2, 1}};
    struct dict a, b;
    CU_ASSERT_EQUAL_FATAL(dict_init(&a, two, 2), 0);
    struct dict_column c = {.name = "k", .type = DICT_T_INT32};
    uint16_t pk = 0;
    struct dict_table_def def = {.name = "t", .ncols = 1, .cols = &c, .npk = 1, .pk = &pk,
                                 .method = DICT_FRAG_HASH, .nfrags = 1};
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&a, &def, NULL), 0);
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(dict_encode(&a, &buf, &len), 0);
    to_v3(buf, &len);
    CU_ASSERT_EQUAL(buf[len - 12], a.tables[0]->frags[0].primary);
    CU_ASSERT_EQUAL(buf[len - 8], a.tables[0]->frags[0].standby);
    CU_ASSERT_EQUAL(buf[len - 4], DICT_REP_READY);
    /* the standby building: read back as such */
    buf[len - 4] = DICT_REP_BUILDING;
    reseal(buf, len);
    CU_ASSERT_EQUAL_FATAL(dict_decode(buf, len, &b), 0);
    CU_ASSERT_EQUAL(b.tables[0]->frags[0].standby_state, DICT_REP_BUILDING);
    dict_free(&b);
    /* an unknown state, a reserved byte set: refused */
    buf[len - 4] = 2;
    reseal(buf, len);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "standby state 2"));
    buf[len - 4] = DICT_REP_READY;
    buf[len - 2] = 1;
    reseal(buf, len);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "reserved 0x100"));
    buf[len - 2] = 0;
    reseal(buf, len);
    /* a format-1 file (8 bytes per fragment, no states, no SQL attributes)
     * still loads: every replica ready */
    {
        size_t l2;
        uint8_t *v2 = downgrade(buf, len, ONE_TYPE_OFF, &l2);
        uint8_t *v1 = malloc(l2 - 4);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v1);
        memcpy(v1, v2, l2 - 4);
        free(v2);
        v1[4] = 1;
        uint32_t plen = (uint32_t)(l2 - 4 - 32);
        for (int i = 0; i < 4; i++)
            v1[16 + i] = (uint8_t)(plen >> (8 * i));
        reseal(v1, l2 - 4);
        CU_ASSERT_EQUAL_FATAL(dict_decode(v1, l2 - 4, &b), 0);
        CU_ASSERT_EQUAL(b.tables[0]->frags[0].standby, a.tables[0]->frags[0].standby);
        CU_ASSERT_EQUAL(b.tables[0]->frags[0].standby_state, DICT_REP_READY);
        dict_free(&b);
        free(v1);
    }
    /* both replicas on one node, checksums valid: refused */
    buf[len - 8] = buf[len - 12];
    reseal(buf, len);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "fragment 0: replicas on nodes"));
    /* an unknown node */
    buf[len - 8] = 33;
    reseal(buf, len);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), NINES_ECORRUPT);
    free(buf);
    /* a table that fails validation (zero fragments cannot be encoded by
     * the API; change the column type byte to an unknown type instead) */
    CU_ASSERT_EQUAL_FATAL(dict_encode(&a, &buf, &len), 0);
    to_v3(buf, &len);
    size_t type_off = ONE_TYPE_OFF;
    CU_ASSERT_EQUAL_FATAL(buf[type_off], DICT_T_INT32);
    buf[type_off] = 42;
    reseal(buf, len);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "unknown type 42"));
    buf[type_off] = DICT_T_INT32;
    /* a future format version */
    buf[4] = 5;
    reseal(buf, len);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), NINES_EVERSION);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "format 5"));
    buf[4] = 3;
    reseal(buf, len);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), 0);
    same(&a, &b);
    dict_free(&b);
    free(buf);
    dict_free(&a);
}

/* Format 3's table flag and column attributes; a format-2 image reads
 * with the defaults and refuses the flags format 3 added. */
static void test_format3(void)
{
    static const struct dict_node two[] = {{1, 0}, {2, 1}};
    struct dict a, b;
    CU_ASSERT_EQUAL_FATAL(dict_init(&a, two, 2), 0);
    struct dict_column c = {.name = "k", .type = DICT_T_INT32, .sqltype = 23, .sqltypmod = 7,
                            .hidden = true};
    uint16_t pk = 0;
    struct dict_table_def def = {.name = "t", .ncols = 1, .cols = &c, .npk = 1, .pk = &pk,
                                 .method = DICT_FRAG_HASH, .nfrags = 1};
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&a, &def, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(dict_set_readonly(&a, "t", true), 0);
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(dict_encode(&a, &buf, &len), 0);
    to_v3(buf, &len);
    /* the layout the README states */
    CU_ASSERT_EQUAL(buf[ONE_TFLAG_OFF], 1);          /* table flags: readonly */
    CU_ASSERT_EQUAL(buf[ONE_TYPE_OFF], DICT_T_INT32);
    CU_ASSERT_EQUAL(buf[ONE_TYPE_OFF + 1], 2);        /* column flags: hidden */
    CU_ASSERT_EQUAL(buf[ONE_TYPE_OFF + 6], 23);       /* sqltype */
    CU_ASSERT_EQUAL(buf[ONE_TYPE_OFF + 10], 7);       /* sqltypmod */
    CU_ASSERT_EQUAL_FATAL(dict_decode(buf, len, &b), 0);
    same(&a, &b);
    dict_free(&b);
    /* sqltypmod -1 travels as two's complement */
    ((struct dict_column *)a.tables[0]->def.cols)[0].sqltypmod = -1;
    free(buf);
    CU_ASSERT_EQUAL_FATAL(dict_encode(&a, &buf, &len), 0);
    to_v3(buf, &len);
    CU_ASSERT_EQUAL(buf[ONE_TYPE_OFF + 13], 0xff);
    CU_ASSERT_EQUAL_FATAL(dict_decode(buf, len, &b), 0);
    CU_ASSERT_EQUAL(b.tables[0]->def.cols[0].sqltypmod, -1);
    dict_free(&b);
    /* an unknown table flag, an unknown column flag: refused */
    buf[ONE_TFLAG_OFF] = 3;
    reseal(buf, len);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "unknown table flags 0x3"));
    buf[ONE_TFLAG_OFF] = 1;
    buf[ONE_TYPE_OFF + 1] = 4;
    reseal(buf, len);
    CU_ASSERT_EQUAL(dict_decode(buf, len, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "unknown flags 0x4"));
    /* format 2: no attributes; read with the defaults */
    buf[ONE_TFLAG_OFF] = 0;
    buf[ONE_TYPE_OFF + 1] = 0;
    reseal(buf, len);
    size_t l2;
    uint8_t *v2 = downgrade(buf, len, ONE_TYPE_OFF, &l2);
    CU_ASSERT_EQUAL_FATAL(dict_decode(v2, l2, &b), 0);
    CU_ASSERT_FALSE(b.tables[0]->readonly);
    CU_ASSERT_EQUAL(b.tables[0]->def.cols[0].sqltype, 0);
    CU_ASSERT_EQUAL(b.tables[0]->def.cols[0].sqltypmod, -1);
    CU_ASSERT_FALSE(b.tables[0]->def.cols[0].hidden);
    CU_ASSERT_EQUAL(b.tables[0]->def.cols[0].type, DICT_T_INT32);
    CU_ASSERT_EQUAL(b.version, a.version);
    /* ... and saved again it is format 4 (attributes, a user count) */
    uint8_t *b3;
    size_t l3;
    CU_ASSERT_EQUAL_FATAL(dict_encode(&b, &b3, &l3), 0);
    CU_ASSERT_EQUAL(b3[4], 4);
    CU_ASSERT_EQUAL(l3, l2 + 8 + 4);
    free(b3);
    dict_free(&b);
    /* a format-2 image with format 3's flags: refused */
    v2[ONE_TFLAG_OFF] = 1;
    reseal(v2, l2);
    CU_ASSERT_EQUAL(dict_decode(v2, l2, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "unknown table flags 0x1 (format 2)"));
    v2[ONE_TFLAG_OFF] = 0;
    v2[ONE_TYPE_OFF + 1] = 2;
    reseal(v2, l2);
    CU_ASSERT_EQUAL(dict_decode(v2, l2, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "unknown flags 0x2 (format 2)"));
    free(v2);
    free(buf);
    dict_free(&a);
}

/* Format 4's users section: the layout the README states, every check on
 * load, format-3 images without it, and the public image. */
static void test_format4(void)
{
    static const struct dict_node two[] = {{1, 0}, {2, 1}};
    struct dict a, b;
    CU_ASSERT_EQUAL_FATAL(dict_init(&a, two, 2), 0);
    struct dict_column c = {.name = "k", .type = DICT_T_INT32};
    uint16_t pk = 0;
    struct dict_table_def def = {.name = "t", .ncols = 1, .cols = &c, .npk = 1, .pk = &pk,
                                 .method = DICT_FRAG_HASH, .nfrags = 1};
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&a, &def, NULL), 0);
    uint8_t *none;
    size_t nlen;
    CU_ASSERT_EQUAL_FATAL(dict_encode(&a, &none, &nlen), 0); /* no users yet */
    char v[DICT_VERIFIER_MAX + 1];
    verifier("pw", v, sizeof v);
    size_t vl = strlen(v);
    CU_ASSERT_EQUAL_FATAL(dict_user_create(&a, "b", DICT_ROLE_WRITER, v), 0);
    CU_ASSERT_EQUAL_FATAL(dict_user_create(&a, "a", DICT_ROLE_ADMIN, v), 0);
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(dict_encode(&a, &buf, &len), 0);
    /* layout: count 2, then per user name length, name, role, reserved,
     * verifier length (2), verifier */
    size_t rec = 1 + 1 + 4 + vl;
    CU_ASSERT_EQUAL_FATAL(len, nlen + 2 * rec);
    size_t u0 = nlen; /* first user record; the count is the 4 bytes before */
    CU_ASSERT_EQUAL(memcmp(buf + u0 - 4, "\x02\0\0\0", 4), 0);
    CU_ASSERT_EQUAL(buf[u0], 1);
    CU_ASSERT_EQUAL(buf[u0 + 1], 'a');
    CU_ASSERT_EQUAL(buf[u0 + 2], DICT_ROLE_ADMIN);
    CU_ASSERT_EQUAL(buf[u0 + 3], 0);
    CU_ASSERT_EQUAL(buf[u0 + 4] | buf[u0 + 5] << 8, vl);
    CU_ASSERT_EQUAL(memcmp(buf + u0 + 6, v, vl), 0);
    CU_ASSERT_EQUAL(buf[u0 + rec + 1], 'b');
    CU_ASSERT_EQUAL(buf[u0 + rec + 2], DICT_ROLE_WRITER);
    CU_ASSERT_EQUAL_FATAL(dict_decode(buf, len, &b), 0);
    same(&a, &b);
    dict_free(&b);

    /* every check on load */
    struct { size_t off; uint8_t val; const char *why; } bad[] = {
        {u0 + 2, 4, "user 0: role 4 is not a role"},
        {u0 + 2, 0, "user 0: role 0 is not a role"},
        {u0 + 3, 1, "reserved byte 0x1"},
        {u0 + 1, '!', "user 0: user name '!': character 0"},
        {u0 + 1, 'c', "user 1: name 'b' does not sort after 'c'"}, /* c, b */
        {u0 + rec + 1, 'a', "user 1: name 'a' does not sort after 'a'"}, /* a duplicate */
        {u0 + 6, 'X', "user 0: user 'a': verifier 'XCRAM"},
        {u0 + 6 + 20, 0, "verifier holds a NUL byte"},
        {u0 + 4, 0, "user 0: user 'a': no verifier"},
        {u0 - 4, 0, "unexpected bytes after the last user"}, /* count 0: records left over */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *x = malloc(len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(x);
        memcpy(x, buf, len);
        x[bad[i].off] = bad[i].val;
        reseal(x, len);
        int rc = dict_decode(x, len, &b);
        CU_ASSERT_EQUAL(rc, NINES_ECORRUPT);
        CU_ASSERT_EQUAL(b.nusers, 0);
        CU_ASSERT_PTR_NULL(b.users);
        if (!strstr(nines_errdetail(), bad[i].why)) {
            fprintf(stderr, "case %zu: detail '%s', expected '%s'\n", i, nines_errdetail(),
                    bad[i].why);
            CU_FAIL("detail");
        }
        free(x);
    }
    /* a verifier longer than 255 bytes, a count above 1024 */
    {
        uint8_t *x = malloc(len);
        memcpy(x, buf, len);
        x[u0 + 5] = 1; /* length 256 + vl: runs past the image */
        reseal(x, len);
        CU_ASSERT_EQUAL(dict_decode(x, len, &b), NINES_ECORRUPT);
        memcpy(x, buf, len);
        x[u0 - 4] = 0x01;
        x[u0 - 3] = 0x04; /* 1025 */
        reseal(x, len);
        CU_ASSERT_EQUAL(dict_decode(x, len, &b), NINES_ECORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "user count 1025 above 1024"));
        free(x);
    }

    /* a format-3 file (no users section) loads with no users; its bytes
     * are the format-4 image of the same dictionary without its count */
    uint8_t *v3 = malloc(nlen);
    memcpy(v3, none, nlen);
    size_t l3 = nlen;
    to_v3(v3, &l3);
    CU_ASSERT_EQUAL_FATAL(dict_decode(v3, l3, &b), 0);
    CU_ASSERT_EQUAL(b.nusers, 0);
    CU_ASSERT_PTR_NULL(b.users);
    CU_ASSERT_EQUAL(b.ntables, 1);
    /* ... users can be added to it, and it saves as format 4 */
    CU_ASSERT_EQUAL(dict_user_create(&b, "a", DICT_ROLE_ADMIN, v), 0);
    dict_free(&b);
    /* a format-3 image followed by a user section is refused */
    {
        uint8_t *x = malloc(len);
        memcpy(x, buf, len);
        x[4] = 3;
        reseal(x, len);
        CU_ASSERT_EQUAL(dict_decode(x, len, &b), NINES_ECORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "after the last table"));
        free(x);
    }
    free(v3);

    /* the public image: the same dictionary, no users, no verifier bytes */
    uint8_t *pub;
    size_t plen;
    CU_ASSERT_EQUAL_FATAL(dict_encode_public(&a, &pub, &plen), 0);
    CU_ASSERT_EQUAL(plen, nlen);
    CU_ASSERT_EQUAL(pub[4], 4);
    CU_ASSERT_PTR_NULL(memmem(pub, plen, "SCRAM", 5));
    CU_ASSERT_PTR_NULL(memmem(pub, plen, v + 20, 16));
    CU_ASSERT_PTR_NOT_NULL(memmem(buf, len, "SCRAM", 5));
    /* only the version differs from the image before the users */
    CU_ASSERT_EQUAL(memcmp(pub + 32, none + 32, nlen - 32), 0);
    CU_ASSERT_EQUAL_FATAL(dict_decode(pub, plen, &b), 0);
    CU_ASSERT_EQUAL(b.nusers, 0);
    CU_ASSERT_EQUAL(b.version, a.version);
    CU_ASSERT_EQUAL_FATAL(b.ntables, 1);
    CU_ASSERT_STRING_EQUAL(b.tables[0]->def.name, "t");
    dict_free(&b);
    free(pub);
    free(none);
    free(buf);
    dict_free(&a);
}

static void test_files(void)
{
    char dir[] = "/tmp/dict_store_test" "XX" "XXXX" /* mkdtemp template */;
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[256], tmp[300];
    snprintf(path, sizeof path, "%s/dict.bin", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct dict a, b;
    CU_ASSERT_EQUAL(dict_load(path, &b), NINES_ENOTFOUND);
    build(&a);
    CU_ASSERT_EQUAL_FATAL(dict_save(&a, path), 0);
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    CU_ASSERT_EQUAL_FATAL(dict_load(path, &b), 0);
    same(&a, &b);
    dict_free(&b);
    /* overwrite with a newer version */
    CU_ASSERT_EQUAL(dict_drop_table(&a, "single"), 0);
    CU_ASSERT_EQUAL_FATAL(dict_save(&a, path), 0);
    CU_ASSERT_EQUAL_FATAL(dict_load(path, &b), 0);
    CU_ASSERT_EQUAL(b.version, 11);
    same(&a, &b);
    dict_free(&b);
    /* a truncated file */
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(truncate(path, size - 3), 0);
    CU_ASSERT_EQUAL(dict_load(path, &b), NINES_ETRUNC);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), path));
    CU_ASSERT_EQUAL(b.ntables, 0);
    /* a flipped byte in the file */
    CU_ASSERT_EQUAL_FATAL(dict_save(&a, path), 0);
    f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, size / 2, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, size / 2, SEEK_SET);
    fputc(ch ^ 0x10, f);
    fclose(f);
    CU_ASSERT_EQUAL(dict_load(path, &b), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "checksum"));
    CU_ASSERT_EQUAL(b.ntables, 0);
    /* a stale temporary file from a crash before the rename is ignored
     * and replaced by the next save */
    f = fopen(tmp, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("half", f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(dict_save(&a, path), 0);
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    CU_ASSERT_EQUAL_FATAL(dict_load(path, &b), 0);
    same(&a, &b);
    dict_free(&b);
    /* save into a missing folder fails cleanly */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/nodir/dict.bin", dir);
    CU_ASSERT_EQUAL(dict_save(&a, bad), NINES_ESYS);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "nodir"));
    dict_free(&a);
    unlink(path);
    rmdir(dir);
}

#ifdef NINES_FAULTS
#include "nassert.h"
/* Crash points of dict_save (FAULTS=1 builds): PATH keeps the old file. */
static void test_save_faults(void)
{
    char dir[] = "/tmp/dict_fault_test" "XX" "XXXX" /* mkdtemp template */;
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[256], tmp[300];
    snprintf(path, sizeof path, "%s/dict.bin", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct dict a, b;
    build(&a);
    CU_ASSERT_EQUAL_FATAL(dict_save(&a, path), 0);
    uint64_t old = a.version;
    CU_ASSERT_EQUAL(dict_drop_table(&a, "single"), 0);
    nines_fault_arm("dict.save.before_rename", 1);
    CU_ASSERT_EQUAL(dict_save(&a, path), NINES_EIO);
    CU_ASSERT_EQUAL(access(tmp, F_OK), 0); /* complete but never read */
    CU_ASSERT_EQUAL_FATAL(dict_load(path, &b), 0);
    CU_ASSERT_EQUAL(b.version, old);
    dict_free(&b);
    nines_fault_arm("dict.save.short_write", 1);
    CU_ASSERT_EQUAL(dict_save(&a, path), NINES_EIO);
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    CU_ASSERT_EQUAL_FATAL(dict_load(path, &b), 0);
    CU_ASSERT_EQUAL(b.version, old);
    dict_free(&b);
    CU_ASSERT_EQUAL_FATAL(dict_save(&a, path), 0);
    CU_ASSERT_EQUAL_FATAL(dict_load(path, &b), 0);
    CU_ASSERT_EQUAL(b.version, old + 1);
    dict_free(&b);
    dict_free(&a);
    unlink(path);
    rmdir(dir);
}
#endif

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"roundtrip", test_roundtrip},
        {"corruption", test_corruption},
        {"checked_content", test_checked_content},
        {"format3", test_format3},
        {"format4", test_format4},
        {"files", test_files},
#ifdef NINES_FAULTS
        {"save_faults", test_save_faults},
#endif
        {NULL, NULL},
    };
    cu_add_suite("dict_store", NULL, NULL, cases);
}
