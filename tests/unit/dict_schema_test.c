/* Schema catalog: every invalid definition is rejected with the expected
 * code and a detail naming the offending value; create/drop/lookup by
 * name and id; versions; replica moves and role switches. */
#include "cu_test.h"
#include "dict/dict.h"
#include "nines/errors.h"

#include <stdio.h>
#include <string.h>

static struct dict_column cols[4];
static uint16_t pk[4];
static struct dict_key splits[4];
static struct dict_table_def def;

/* A valid hash table: id int64, name varstring(40), ts timestamp (nullable). */
static void good_def(void)
{
    memset(cols, 0, sizeof cols);
    memset(&def, 0, sizeof def);
    snprintf(cols[0].name, sizeof cols[0].name, "id");
    cols[0].type = DICT_T_INT64;
    snprintf(cols[1].name, sizeof cols[1].name, "name");
    cols[1].type = DICT_T_VARSTRING;
    cols[1].size = 40;
    snprintf(cols[2].name, sizeof cols[2].name, "ts");
    cols[2].type = DICT_T_TIMESTAMP;
    cols[2].nullable = true;
    pk[0] = 0;
    snprintf(def.name, sizeof def.name, "subscriber");
    def.ncols = 3;
    def.cols = cols;
    def.npk = 1;
    def.pk = pk;
    def.method = DICT_FRAG_HASH;
    def.nfrags = 8;
}

static void expect(int want, const char *detail, const char *what)
{
    int rc = dict_table_validate(&def);
    if (rc != want || strstr(nines_errdetail(), detail) == NULL)
        fprintf(stderr, "case '%s': rc %d detail '%s'\n", what, rc, nines_errdetail());
    CU_ASSERT_EQUAL(rc, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), detail));
}

static void test_valid(void)
{
    good_def();
    CU_ASSERT_EQUAL(dict_table_validate(&def), 0);
    CU_ASSERT_EQUAL(dict_def_nfrags(&def), 8);
    /* every type, with a composite key */
    struct dict_column all[8];
    memset(all, 0, sizeof all);
    for (uint32_t t = DICT_T_FIRST; t <= DICT_T_LAST; t++) {
        struct dict_column *c = &all[t - 1];
        snprintf(c->name, sizeof c->name, "c_%s", dict_type_name(t));
        c->type = t;
        if (t == DICT_T_STRING || t == DICT_T_VARSTRING || t == DICT_T_BYTES ||
            t == DICT_T_VARBYTES)
            c->size = 16;
        uint32_t back;
        CU_ASSERT_EQUAL(dict_type_parse(dict_type_name(t), &back), 0);
        CU_ASSERT_EQUAL(back, t);
    }
    uint16_t pk2[] = {3, 0};
    def.cols = all;
    def.ncols = 8;
    def.pk = pk2;
    def.npk = 2;
    CU_ASSERT_EQUAL(dict_table_validate(&def), 0);
    /* range with splits */
    good_def();
    splits[0] = (struct dict_key){(const uint8_t *)"g", 1};
    splits[1] = (struct dict_key){(const uint8_t *)"g\x00", 2};
    splits[2] = (struct dict_key){(const uint8_t *)"t", 1};
    def.method = DICT_FRAG_RANGE;
    def.nfrags = 0;
    def.nsplits = 3;
    def.splits = splits;
    CU_ASSERT_EQUAL(dict_table_validate(&def), 0);
    CU_ASSERT_EQUAL(dict_def_nfrags(&def), 4);
    def.nfrags = 4; /* the matching count is accepted too */
    CU_ASSERT_EQUAL(dict_table_validate(&def), 0);
    def.nsplits = 0; /* one fragment */
    def.nfrags = 0;
    CU_ASSERT_EQUAL(dict_table_validate(&def), 0);
    CU_ASSERT_EQUAL(dict_def_nfrags(&def), 1);
}

static void test_invalid(void)
{
    uint32_t ty;
    CU_ASSERT_EQUAL(dict_type_parse("blob", &ty), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "unknown column type 'blob'"));

    good_def();
    snprintf(cols[2].name, sizeof cols[2].name, "id");
    expect(NINES_EINVAL, "duplicate column name 'id' (columns 0 and 2)", "dup column");

    good_def();
    def.npk = 0;
    expect(NINES_EINVAL, "table 'subscriber' has no primary key", "no pk");

    good_def();
    pk[0] = 2;
    expect(NINES_EINVAL, "primary key column 'ts' is nullable", "nullable pk");

    good_def();
    pk[0] = 7;
    expect(NINES_EINVAL, "unknown column index 7", "unknown pk column");

    good_def();
    uint16_t twice[] = {0, 0};
    def.pk = twice;
    def.npk = 2;
    expect(NINES_EINVAL, "column 'id' appears twice in the primary key", "pk twice");

    good_def();
    def.npk = DICT_MAX_PK + 1;
    expect(NINES_EINVAL, "17 columns, more than the maximum 16", "pk too long");

    good_def();
    cols[1].type = 99;
    expect(NINES_EINVAL, "column 'name': unknown type 99", "unknown type");

    good_def();
    cols[1].type = 0;
    expect(NINES_EINVAL, "unknown type 0", "type 0");

    good_def();
    cols[1].size = 0;
    expect(NINES_EINVAL, "varstring size 0 must be in 1..65535", "size 0");

    good_def();
    cols[1].size = 70000;
    expect(NINES_EINVAL, "varstring size 70000", "size too big");

    good_def();
    cols[0].size = 4;
    expect(NINES_EINVAL, "int64 takes no size, got 4", "size on int");

    good_def();
    def.nfrags = 0;
    expect(NINES_EINVAL, "table 'subscriber': zero fragments", "zero frags");

    good_def();
    def.nfrags = 5000;
    expect(NINES_EINVAL, "5000 fragments, more than the maximum 4096", "too many frags");

    good_def();
    def.method = 3;
    expect(NINES_EINVAL, "unknown fragmentation method 3", "method");

    good_def();
    def.replicas = 3;
    expect(NINES_EINVAL, "3 replicas but only 2 sites", "replicas");

    good_def();
    def.scheme = 5;
    expect(NINES_EINVAL, "unknown placement scheme 5", "scheme");

    good_def();
    def.name[0] = '\0';
    expect(NINES_EINVAL, "table name is empty", "empty table name");

    good_def();
    memset(def.name, 'x', sizeof def.name); /* not terminated inside: 64 bytes */
    expect(NINES_EINVAL, "longer than 63 bytes", "long table name");

    good_def();
    snprintf(def.name, sizeof def.name, "9lives");
    expect(NINES_EINVAL, "table name '9lives': character 0 (0x39)", "digit first");

    good_def();
    snprintf(cols[1].name, sizeof cols[1].name, "na me");
    expect(NINES_EINVAL, "column 1: column name 'na me': character 2 (0x20)", "space");

    good_def();
    cols[1].name[0] = '\0';
    expect(NINES_EINVAL, "column 1: column name is empty", "empty column name");

    good_def();
    def.ncols = 0;
    expect(NINES_EINVAL, "has no columns", "no columns");

    good_def();
    def.ncols = DICT_MAX_COLS + 1;
    expect(NINES_EINVAL, "257 columns, more than the maximum 256", "too many columns");

    good_def();
    def.nsplits = 2;
    expect(NINES_EINVAL, "hash fragmentation takes no split points, got 2", "hash splits");

    /* range split points */
    good_def();
    def.method = DICT_FRAG_RANGE;
    def.nfrags = 0;
    def.splits = splits;
    def.nsplits = 2;
    splits[0] = (struct dict_key){(const uint8_t *)"b", 1};
    splits[1] = (struct dict_key){(const uint8_t *)"a", 1};
    expect(NINES_EINVAL, "split point 1 (61) sorts before split point 0 (62)", "order");
    splits[1] = (struct dict_key){(const uint8_t *)"b", 1};
    expect(NINES_EINVAL, "split point 1 (62) duplicates split point 0 (62)", "dup split");
    splits[0] = (struct dict_key){(const uint8_t *)"b\x01", 2};
    expect(NINES_EINVAL, "split point 1 (62) sorts before split point 0 (6201)", "prefix");
    splits[0] = (struct dict_key){(const uint8_t *)"", 0};
    expect(NINES_EINVAL, "split point 0 is empty", "empty split");
    splits[0] = (struct dict_key){(const uint8_t *)"a", DICT_KEY_MAX + 1};
    expect(NINES_EINVAL, "split point 0 is 2049 bytes, longer than 2048", "long split");
    splits[0] = (struct dict_key){(const uint8_t *)"a", 1};
    def.nfrags = 7;
    expect(NINES_EINVAL, "range fragment count 7 does not match 2 split points", "count");
    def.nfrags = 0;
    def.nsplits = DICT_MAX_FRAGS;
    expect(NINES_EINVAL, "4096 split points give 4097 fragments, more than the maximum 4096",
           "too many splits");
}

static const struct dict_node nodes4[] = {{1, 0}, {2, 0}, {3, 1}, {4, 1}};

static void test_catalog(void)
{
    struct dict d;
    CU_ASSERT_EQUAL_FATAL(dict_init(&d, nodes4, 4), 0);
    CU_ASSERT_EQUAL(d.version, 0);
    good_def();
    uint32_t id1 = 0, id2 = 0, id3 = 0;
    CU_ASSERT_EQUAL(dict_create_table(&d, &def, &id1), 0);
    CU_ASSERT_EQUAL(d.version, 1);
    CU_ASSERT_EQUAL(dict_create_table(&d, &def, &id2), NINES_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "table 'subscriber' already exists"));
    CU_ASSERT_EQUAL(d.version, 1);
    snprintf(def.name, sizeof def.name, "account");
    def.scheme = DICT_PLACE_CIRCULAR;
    CU_ASSERT_EQUAL(dict_create_table(&d, &def, &id2), 0);
    CU_ASSERT_EQUAL(d.version, 2);
    CU_ASSERT_NOT_EQUAL(id1, id2);
    /* the catalog owns its copy: the caller's arrays may change */
    snprintf(cols[0].name, sizeof cols[0].name, "changed");
    const struct dict_table *t = dict_table_by_name(&d, "subscriber");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->id, id1);
    CU_ASSERT_STRING_EQUAL(t->def.cols[0].name, "id");
    CU_ASSERT_EQUAL(t->def.replicas, 2);          /* default filled in */
    CU_ASSERT_EQUAL(t->def.scheme, DICT_PLACE_MISD);
    CU_ASSERT_EQUAL(t->nfrags, 8);
    CU_ASSERT_PTR_EQUAL(dict_table_by_id(&d, id2), dict_table_by_name(&d, "account"));
    CU_ASSERT_EQUAL(dict_table_by_id(&d, id2)->def.scheme, DICT_PLACE_CIRCULAR);
    /* invalid definitions never reach the catalog or the version */
    good_def();
    snprintf(def.name, sizeof def.name, "broken");
    def.nfrags = 0;
    CU_ASSERT_EQUAL(dict_create_table(&d, &def, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NULL(dict_table_by_name(&d, "broken"));
    CU_ASSERT_EQUAL(d.version, 2);
    /* drop by name and id; ids are not reused */
    CU_ASSERT_EQUAL(dict_drop_table(&d, "subscriber"), 0);
    CU_ASSERT_EQUAL(d.version, 3);
    CU_ASSERT_PTR_NULL(dict_table_by_name(&d, "subscriber"));
    CU_ASSERT_PTR_NULL(dict_table_by_id(&d, id1));
    CU_ASSERT_EQUAL(dict_drop_table(&d, "subscriber"), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "no table named 'subscriber'"));
    good_def();
    CU_ASSERT_EQUAL(dict_create_table(&d, &def, &id3), 0);
    CU_ASSERT(id3 > id2);
    CU_ASSERT_EQUAL(dict_drop_table_id(&d, id2), 0);
    CU_ASSERT_EQUAL(dict_drop_table_id(&d, id2), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "no table with id"));
    CU_ASSERT_EQUAL(d.ntables, 1);
    CU_ASSERT_EQUAL(d.version, 5);
    dict_free(&d);

    /* 2 replicas need both sites */
    static const struct dict_node one_site[] = {{1, 0}, {2, 0}};
    CU_ASSERT_EQUAL_FATAL(dict_init(&d, one_site, 2), 0);
    good_def();
    CU_ASSERT_EQUAL(dict_create_table(&d, &def, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "table 'subscriber': 2 replicas need"));
    def.replicas = 1;
    CU_ASSERT_EQUAL(dict_create_table(&d, &def, NULL), 0);
    dict_free(&d);
    static const struct dict_node dup[] = {{3, 0}, {3, 1}};
    CU_ASSERT_EQUAL(dict_init(&d, dup, 2), NINES_EINVAL);
}

static void test_move_switch(void)
{
    struct dict d;
    CU_ASSERT_EQUAL_FATAL(dict_init(&d, nodes4, 4), 0);
    good_def();
    uint32_t id;
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&d, &def, &id), 0);
    const struct dict_table *t = dict_table_by_id(&d, id);
    struct dict_frag f0 = t->frags[0];
    uint64_t v = d.version;
    CU_ASSERT_EQUAL(dict_switch_roles(&d, id, 0), 0);
    CU_ASSERT_EQUAL(t->frags[0].primary, f0.standby);
    CU_ASSERT_EQUAL(t->frags[0].standby, f0.primary);
    CU_ASSERT_EQUAL(d.version, v + 1);
    CU_ASSERT_EQUAL(dict_switch_roles(&d, id, 8), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "no fragment 8"));
    CU_ASSERT_EQUAL(dict_switch_roles(&d, 99, 0), NINES_ENOTFOUND);
    /* move the standby (now f0.primary) to the other node of its site */
    uint32_t from = f0.primary, to = from == 1 ? 2 : from == 2 ? 1 : from == 3 ? 4 : 3;
    CU_ASSERT_EQUAL(dict_move_replica(&d, id, 0, from, to), 0);
    CU_ASSERT_EQUAL(t->frags[0].standby, to);
    CU_ASSERT_EQUAL(d.version, v + 2);
    /* the two replicas must stay at different sites */
    uint32_t same_as_primary = t->frags[0].primary <= 2 ? 3 - t->frags[0].primary
                                                        : 7 - t->frags[0].primary;
    CU_ASSERT_EQUAL(dict_move_replica(&d, id, 0, to, same_as_primary), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "the same site as the other replica"));
    CU_ASSERT_EQUAL(dict_move_replica(&d, id, 0, to, t->frags[0].primary), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "already holds the other replica"));
    CU_ASSERT_EQUAL(dict_move_replica(&d, id, 0, 9, 1), NINES_EINVAL);
    CU_ASSERT_EQUAL(dict_move_replica(&d, id, 0, to, 17), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "node 17 is not in"));
    uint32_t other = 0;
    for (uint32_t n = 1; n <= 4; n++)
        if (n != t->frags[0].primary && n != t->frags[0].standby)
            other = n;
    CU_ASSERT_EQUAL(dict_move_replica(&d, id, 0, other, 1), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "has no replica on node"));
    CU_ASSERT_EQUAL(d.version, v + 2);
    dict_free(&d);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"valid", test_valid},
        {"invalid", test_invalid},
        {"catalog", test_catalog},
        {"move_switch", test_move_switch},
        {NULL, NULL},
    };
    cu_add_suite("dict_schema", NULL, NULL, cases);
}
