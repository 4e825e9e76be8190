/* Schema changes on existing tables: dict_replace_table and
 * dict_set_readonly (validation, details, what stays and what goes), the
 * same changes through the dictionary service's apply (DictChange on the
 * wire) and through the file image. */
#include "cu_test.h"
#include "dict/dict.h"
#include "dict/svc/dsvc_int.h"
#include "nines/errors.h"
#include "scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct dict_node nodes[] = {{1, 0}, {2, 0}, {3, 1}, {4, 1}};

/* old (4 fragments, hash on k), scratch (range on k, hidden row key), other */
static void build(struct dict *d, uint32_t *old_id, uint32_t *scratch_id)
{
    CU_ASSERT_EQUAL_FATAL(dict_init(d, nodes, 4), 0);
    struct dict_column cols[2] = {
        {.name = "k", .type = DICT_T_INT64, .sqltype = 20, .sqltypmod = -1},
        {.name = "v", .type = DICT_T_VARSTRING, .size = 20, .nullable = true, .sqltype = 1043,
         .sqltypmod = 24},
    };
    uint16_t pk = 0;
    struct dict_table_def def = {.name = "old", .ncols = 2, .cols = cols, .npk = 1, .pk = &pk,
                                 .method = DICT_FRAG_HASH, .nfrags = 4};
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &def, old_id), 0);
    cols[0].hidden = true;
    snprintf(def.name, sizeof def.name, "scratch");
    def.nfrags = 6;
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &def, scratch_id), 0);
    snprintf(def.name, sizeof def.name, "other");
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &def, NULL), 0);
}

static void test_replace(void)
{
    struct dict d;
    uint32_t old_id, sid;
    build(&d, &old_id, &sid);
    const struct dict_table *s = dict_table_by_name(&d, "scratch");
    struct dict_frag frags[6];
    memcpy(frags, s->frags, sizeof frags);
    uint64_t v = d.version;
    uint32_t next = d.next_table_id;
    CU_ASSERT_EQUAL_FATAL(dict_replace_table(&d, "old", "scratch"), 0);
    CU_ASSERT_EQUAL(d.version, v + 1);
    CU_ASSERT_EQUAL(d.ntables, 2);
    CU_ASSERT_EQUAL(d.next_table_id, next); /* no id given out, none reused */
    CU_ASSERT_PTR_NULL(dict_table_by_name(&d, "scratch"));
    CU_ASSERT_PTR_NULL(dict_table_by_id(&d, old_id));
    const struct dict_table *t = dict_table_by_name(&d, "old");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->id, sid);                       /* the replacement's id */
    CU_ASSERT_EQUAL(t->nfrags, 6);                     /* ... its fragments */
    CU_ASSERT_EQUAL(memcmp(t->frags, frags, sizeof frags), 0); /* ... placement */
    CU_ASSERT_TRUE(t->def.cols[0].hidden);             /* ... and columns */
    CU_ASSERT_EQUAL(t->def.cols[1].sqltypmod, 24);
    CU_ASSERT_PTR_EQUAL(dict_table_by_id(&d, sid), t);
    /* ids stay sorted: the lookup by id still finds the third table */
    CU_ASSERT_PTR_NOT_NULL(dict_table_by_name(&d, "other"));
    CU_ASSERT_PTR_EQUAL(dict_table_by_id(&d, dict_table_by_name(&d, "other")->id),
                        dict_table_by_name(&d, "other"));
    dict_free(&d);
}

static void test_replace_refused(void)
{
    struct dict d;
    uint32_t old_id, sid;
    build(&d, &old_id, &sid);
    uint64_t v = d.version;
    CU_ASSERT_EQUAL(dict_replace_table(&d, "old", "old"), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "replace table 'old' with itself"));
    CU_ASSERT_EQUAL(dict_replace_table(&d, "", "old"), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "no table name"));
    CU_ASSERT_EQUAL(dict_replace_table(&d, "old", NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "the replacement: no table name"));
    CU_ASSERT_EQUAL(dict_replace_table(&d, "missing", "scratch"), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "no table named 'missing'"));
    CU_ASSERT_EQUAL(dict_replace_table(&d, "old", "nope"), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "no table named 'nope'"));
    CU_ASSERT_EQUAL(d.version, v);
    CU_ASSERT_EQUAL(d.ntables, 3);
    /* the name is free again after the replace: a create under the
     * replacement's old name works, a create under the taken name clashes */
    CU_ASSERT_EQUAL_FATAL(dict_replace_table(&d, "old", "scratch"), 0);
    struct dict_column c = {.name = "k", .type = DICT_T_INT32};
    uint16_t pk = 0;
    struct dict_table_def def = {.name = "old", .ncols = 1, .cols = &c, .npk = 1, .pk = &pk,
                                 .method = DICT_FRAG_HASH, .nfrags = 1};
    CU_ASSERT_EQUAL(dict_create_table(&d, &def, NULL), NINES_EEXIST);
    snprintf(def.name, sizeof def.name, "scratch");
    CU_ASSERT_EQUAL(dict_create_table(&d, &def, NULL), 0);
    dict_free(&d);
}

static void test_readonly(void)
{
    struct dict d;
    uint32_t old_id, sid;
    build(&d, &old_id, &sid);
    uint64_t v = d.version;
    CU_ASSERT_FALSE(dict_table_by_name(&d, "old")->readonly);
    CU_ASSERT_EQUAL(dict_set_readonly(&d, "old", true), 0);
    CU_ASSERT_TRUE(dict_table_by_name(&d, "old")->readonly);
    CU_ASSERT_FALSE(dict_table_by_name(&d, "scratch")->readonly);
    CU_ASSERT_EQUAL(d.version, v + 1);
    CU_ASSERT_EQUAL(dict_set_readonly(&d, "old", true), 0); /* again: a version still */
    CU_ASSERT_EQUAL(d.version, v + 2);
    CU_ASSERT_EQUAL(dict_set_readonly(&d, "missing", true), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "'missing'"));
    CU_ASSERT_EQUAL(dict_set_readonly(&d, "", false), NINES_EINVAL);
    CU_ASSERT_EQUAL(dict_set_readonly(&d, NULL, false), NINES_EINVAL);
    /* a replace: the replacement keeps its own flag */
    CU_ASSERT_EQUAL(dict_replace_table(&d, "old", "scratch"), 0);
    CU_ASSERT_FALSE(dict_table_by_name(&d, "old")->readonly);
    CU_ASSERT_EQUAL(dict_set_readonly(&d, "old", true), 0);
    /* and through the image */
    struct dict c;
    CU_ASSERT_EQUAL_FATAL(dict_clone(&d, &c), 0);
    CU_ASSERT_TRUE(dict_table_by_name(&c, "old")->readonly);
    CU_ASSERT_FALSE(dict_table_by_name(&c, "other")->readonly);
    CU_ASSERT_TRUE(dict_table_by_name(&c, "old")->def.cols[0].hidden);
    CU_ASSERT_EQUAL(dict_set_readonly(&d, "old", false), 0);
    CU_ASSERT_FALSE(dict_table_by_name(&d, "old")->readonly);
    dict_free(&c);
    dict_free(&d);
}

/* The service's apply: a DictChange as it comes off the wire. */
static void test_apply(void)
{
    struct dict d, n;
    uint32_t old_id, sid, tid;
    build(&d, &old_id, &sid);
    Nines__DictChange ch = NINES__DICT_CHANGE__INIT;
    ch.op = NINES__DICT_OP__DICT_OP_SET_READONLY;
    ch.name = "old";
    ch.readonly = true;
    CU_ASSERT_EQUAL_FATAL(dsvc_apply(&d, &ch, &n, &tid, NULL), 0);
    CU_ASSERT_TRUE(dict_table_by_name(&n, "old")->readonly);
    CU_ASSERT_EQUAL(n.version, d.version + 1);
    dict_free(&n);
    char buf[200];
    CU_ASSERT_STRING_EQUAL(dsvc_change_name(&ch, buf, sizeof buf), "set table 'old' read-only");
    ch.op = NINES__DICT_OP__DICT_OP_REPLACE_TABLE;
    ch.with = "scratch";
    CU_ASSERT_STRING_EQUAL(dsvc_change_name(&ch, buf, sizeof buf),
                           "replace table 'old' with 'scratch'");
    CU_ASSERT_EQUAL_FATAL(dsvc_apply(&d, &ch, &n, &tid, NULL), 0);
    CU_ASSERT_EQUAL(dict_table_by_name(&n, "old")->id, sid);
    dict_free(&n);
    ch.with = "";
    CU_ASSERT_EQUAL(dsvc_apply(&d, &ch, &n, &tid, NULL), NINES_EINVAL);
    ch.with = NULL;
    CU_ASSERT_EQUAL(dsvc_apply(&d, &ch, &n, &tid, NULL), NINES_EINVAL);
    ch.with = "gone";
    CU_ASSERT_EQUAL(dsvc_apply(&d, &ch, &n, &tid, NULL), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "'gone'"));
    /* create: the SQL attributes ride DictColumn; sqltypmod is -1 when
     * sqltype is 0 (nothing to modify) */
    Nines__DictColumn c0 = NINES__DICT_COLUMN__INIT, c1 = NINES__DICT_COLUMN__INIT;
    c0.name = "rk";
    c0.type = DICT_T_INT64;
    c0.hidden = true;
    c1.name = "n";
    c1.type = DICT_T_VARSTRING;
    c1.size = 10;
    c1.sqltype = 1043;
    c1.sqltypmod = 14;
    Nines__DictColumn *cols[] = {&c0, &c1};
    uint32_t pk = 0;
    Nines__DictTableDef t = NINES__DICT_TABLE_DEF__INIT;
    t.name = "sqlt";
    t.n_columns = 2;
    t.columns = cols;
    t.n_pk = 1;
    t.pk = &pk;
    t.method = DICT_FRAG_HASH;
    t.nfrags = 2;
    Nines__DictChange cr = NINES__DICT_CHANGE__INIT;
    cr.op = NINES__DICT_OP__DICT_OP_CREATE_TABLE;
    cr.table = &t;
    CU_ASSERT_EQUAL_FATAL(dsvc_apply(&d, &cr, &n, &tid, NULL), 0);
    const struct dict_table *x = dict_table_by_id(&n, tid);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_TRUE(x->def.cols[0].hidden);
    CU_ASSERT_EQUAL(x->def.cols[0].sqltype, 0);
    CU_ASSERT_EQUAL(x->def.cols[0].sqltypmod, -1);
    CU_ASSERT_FALSE(x->def.cols[1].hidden);
    CU_ASSERT_EQUAL(x->def.cols[1].sqltype, 1043);
    CU_ASSERT_EQUAL(x->def.cols[1].sqltypmod, 14);
    dict_free(&n);
    dict_free(&d);
}

/* The user ops through the service's apply: what the coordinator
 * validates and every participant applies again. */
static void test_apply_users(void)
{
    struct dict d, n, m;
    uint32_t old_id, sid, tid;
    build(&d, &old_id, &sid);
    char v[DICT_VERIFIER_MAX + 1], buf[200];
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make("pw", 2, NULL, 0, 4096, v, sizeof v), 0);
    Nines__DictUser u = NINES__DICT_USER__INIT;
    Nines__DictChange ch = NINES__DICT_CHANGE__INIT;
    ch.op = NINES__DICT_OP__DICT_OP_CREATE_USER;
    ch.user = &u;
    u.name = "root";
    u.role = DICT_ROLE_ADMIN;
    u.verifier = v;
    CU_ASSERT_STRING_EQUAL(dsvc_change_name(&ch, buf, sizeof buf), "create user 'root' (admin)");
    CU_ASSERT_EQUAL_FATAL(dsvc_apply(&d, &ch, &n, &tid, NULL), 0);
    CU_ASSERT_EQUAL(n.version, d.version + 1);
    CU_ASSERT_EQUAL(d.nusers, 0); /* the base is untouched */
    const struct dict_user *x = dict_user_find(&n, "root");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->role, DICT_ROLE_ADMIN);
    CU_ASSERT_STRING_EQUAL(x->verifier, v);
    /* again: taken */
    CU_ASSERT_EQUAL(dsvc_apply(&n, &ch, &m, &tid, NULL), NINES_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "user 'root' already exists"));
    /* alter: role only (verifier "" keeps it), password only */
    ch.op = NINES__DICT_OP__DICT_OP_ALTER_USER;
    u.verifier = "";
    u.role = DICT_ROLE_READER;
    CU_ASSERT_STRING_EQUAL(dsvc_change_name(&ch, buf, sizeof buf),
                           "alter user 'root' role reader");
    CU_ASSERT_EQUAL(dsvc_apply(&n, &ch, &m, &tid, NULL), NINES_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "user root is the last admin"));
    u.role = 0;
    CU_ASSERT_EQUAL(dsvc_apply(&n, &ch, &m, &tid, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "neither a role nor a verifier"));
    char v2[DICT_VERIFIER_MAX + 1];
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make("new", 3, NULL, 0, 4096, v2, sizeof v2), 0);
    u.verifier = v2;
    CU_ASSERT_STRING_EQUAL(dsvc_change_name(&ch, buf, sizeof buf), "alter user 'root' password");
    CU_ASSERT_EQUAL_FATAL(dsvc_apply(&n, &ch, &m, &tid, NULL), 0);
    CU_ASSERT_STRING_EQUAL(dict_user_find(&m, "root")->verifier, v2);
    CU_ASSERT_EQUAL(dict_user_find(&m, "root")->role, DICT_ROLE_ADMIN);
    CU_ASSERT_EQUAL(m.version, n.version + 1);
    dict_free(&m);
    /* drop: the last admin refused, a missing user, no name */
    ch.op = NINES__DICT_OP__DICT_OP_DROP_USER;
    CU_ASSERT_STRING_EQUAL(dsvc_change_name(&ch, buf, sizeof buf), "drop user 'root'");
    CU_ASSERT_EQUAL(dsvc_apply(&n, &ch, &m, &tid, NULL), NINES_ESTATE);
    u.name = "ghost";
    CU_ASSERT_EQUAL(dsvc_apply(&n, &ch, &m, &tid, NULL), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "drop user 'ghost': no such user"));
    u.name = "";
    CU_ASSERT_EQUAL(dsvc_apply(&n, &ch, &m, &tid, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "drop user without a user name"));
    ch.user = NULL;
    CU_ASSERT_EQUAL(dsvc_apply(&n, &ch, &m, &tid, NULL), NINES_EINVAL);
    /* a bad verifier from the wire */
    ch.op = NINES__DICT_OP__DICT_OP_CREATE_USER;
    ch.user = &u;
    u.name = "eve";
    u.role = DICT_ROLE_READER;
    u.verifier = "md5abc";
    CU_ASSERT_EQUAL(dsvc_apply(&n, &ch, &m, &tid, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "user 'eve': verifier 'md5abc...'"));
    u.role = 7;
    u.verifier = v;
    CU_ASSERT_EQUAL(dsvc_apply(&n, &ch, &m, &tid, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "role 7 is not a role"));
    dict_free(&n);
    dict_free(&d);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"replace", test_replace},
        {"replace_refused", test_replace_refused},
        {"readonly", test_readonly},
        {"apply", test_apply},
        {"apply_users", test_apply_users},
        {NULL, NULL},
    };
    cu_add_suite("dict_alter", NULL, NULL, cases);
}
