/* Users in the dictionary (dict/dict_user.c, dict/README.md "Users"):
 * every refusal with its code and detail, sorted order, the last-admin
 * rule, versions. */
#include "cu_test.h"
#include "dict/dict.h"
#include "nines/errors.h"
#include "scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct dict_node nodes[] = {{1, 0}, {2, 1}};
static char V1[DICT_VERIFIER_MAX + 1], V2[DICT_VERIFIER_MAX + 1];

static int setup(void)
{
    if (scram_verifier_make("one", 3, NULL, 0, 4096, V1, sizeof V1) ||
        scram_verifier_make("two", 3, NULL, 0, 4096, V2, sizeof V2))
        return -1;
    return 0;
}

#define REFUSED(call, code, text)                                                    \
    do {                                                                             \
        uint64_t v_ = d.version;                                                     \
        uint32_t n_ = d.nusers;                                                      \
        CU_ASSERT_EQUAL(call, code);                                                 \
        CU_ASSERT_EQUAL(d.version, v_);                                              \
        CU_ASSERT_EQUAL(d.nusers, n_);                                               \
        if (!strstr(nines_errdetail(), text)) {                                      \
            fprintf(stderr, "%s: detail '%s', expected '%s'\n", #call,               \
                    nines_errdetail(), text);                                        \
            CU_FAIL("detail");                                                       \
        }                                                                            \
    } while (0)

static void test_create(void)
{
    struct dict d;
    CU_ASSERT_EQUAL_FATAL(dict_init(&d, nodes, 2), 0);
    CU_ASSERT_EQUAL(d.nusers, 0);
    CU_ASSERT_PTR_NULL(dict_user_find(&d, "x"));
    /* out of order: kept sorted by name; each create is version + 1 */
    const char *names[] = {"mallory", "Bob", "alice", "0day", "a.b@c-d_e", "zz"};
    for (size_t i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(dict_user_create(&d, names[i], DICT_ROLE_READER + (uint32_t)(i % 3),
                                         i % 2 ? V2 : V1), 0);
        CU_ASSERT_EQUAL(d.version, i + 1);
    }
    CU_ASSERT_EQUAL_FATAL(d.nusers, 6);
    const char *sorted[] = {"0day", "Bob", "a.b@c-d_e", "alice", "mallory", "zz"};
    for (uint32_t i = 0; i < 6; i++)
        CU_ASSERT_STRING_EQUAL(d.users[i].name, sorted[i]);
    const struct dict_user *u = dict_user_find(&d, "alice");
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(u->role, DICT_ROLE_ADMIN);
    CU_ASSERT_STRING_EQUAL(u->verifier, V1);
    CU_ASSERT_PTR_NULL(dict_user_find(&d, "ALICE"));
    CU_ASSERT_PTR_NULL(dict_user_find(&d, "alic"));

    /* refusals: nothing changes */
    REFUSED(dict_user_create(&d, "alice", DICT_ROLE_READER, V2), NINES_EEXIST,
            "user 'alice' already exists (role admin)");
    REFUSED(dict_user_create(&d, "", DICT_ROLE_READER, V1), NINES_EINVAL, "user name is empty");
    REFUSED(dict_user_create(&d, NULL, DICT_ROLE_READER, V1), NINES_EINVAL,
            "user name is empty");
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    REFUSED(dict_user_create(&d, longname, DICT_ROLE_READER, V1), NINES_EINVAL,
            "is longer than 63 bytes");
    longname[63] = '\0'; /* 63 bytes: fine */
    CU_ASSERT_EQUAL(dict_user_create(&d, longname, DICT_ROLE_READER, V1), 0);
    REFUSED(dict_user_create(&d, "a b", DICT_ROLE_READER, V1), NINES_EINVAL,
            "user name 'a b': character 1 (0x20) is not allowed");
    REFUSED(dict_user_create(&d, "x'y", DICT_ROLE_READER, V1), NINES_EINVAL,
            "character 1 (0x27)");
    REFUSED(dict_user_create(&d, "ok", 0, V1), NINES_EINVAL, "user 'ok': role 0 is not a role");
    REFUSED(dict_user_create(&d, "ok", 4, V1), NINES_EINVAL, "user 'ok': role 4 is not a role");
    REFUSED(dict_user_create(&d, "ok", DICT_ROLE_READER, NULL), NINES_EINVAL,
            "user 'ok': no verifier");
    REFUSED(dict_user_create(&d, "ok", DICT_ROLE_READER, "secret"), NINES_EINVAL,
            "user 'ok': verifier 'secret...' is not a SCRAM-SHA-256");
    REFUSED(dict_user_create(&d, "ok", DICT_ROLE_READER, "SCRAM-SHA-256$4096:abc$x:y"),
            NINES_EINVAL, "is not a SCRAM-SHA-256");
    char longv[300];
    memset(longv, 'S', 299);
    longv[299] = '\0';
    REFUSED(dict_user_create(&d, "ok", DICT_ROLE_READER, longv), NINES_EINVAL,
            "user 'ok': verifier is longer than 255 bytes");
    dict_free(&d);
    CU_ASSERT_EQUAL(d.nusers, 0);
    CU_ASSERT_PTR_NULL(d.users);
}

static void test_limit(void)
{
    struct dict d;
    CU_ASSERT_EQUAL_FATAL(dict_init(&d, nodes, 2), 0);
    for (int i = 0; i < DICT_MAX_USERS; i++) {
        char n[16];
        snprintf(n, sizeof n, "u%04d", DICT_MAX_USERS - i); /* descending: every insert at 0 */
        CU_ASSERT_EQUAL_FATAL(dict_user_create(&d, n, DICT_ROLE_READER, V1), 0);
    }
    for (uint32_t i = 1; i < d.nusers; i++)
        CU_ASSERT(strcmp(d.users[i - 1].name, d.users[i].name) < 0);
    REFUSED(dict_user_create(&d, "one-more", DICT_ROLE_READER, V1), NINES_EFULL,
            "user 'one-more': the dictionary holds 1024 users already");
    /* the full set round trips */
    struct dict c;
    CU_ASSERT_EQUAL_FATAL(dict_clone(&d, &c), 0);
    CU_ASSERT_EQUAL(c.nusers, DICT_MAX_USERS);
    CU_ASSERT_PTR_NOT_NULL(dict_user_find(&c, "u0512"));
    dict_free(&c);
    dict_free(&d);
}

static void test_drop_alter(void)
{
    struct dict d;
    CU_ASSERT_EQUAL_FATAL(dict_init(&d, nodes, 2), 0);
    CU_ASSERT_EQUAL_FATAL(dict_user_create(&d, "root", DICT_ROLE_ADMIN, V1), 0);
    CU_ASSERT_EQUAL_FATAL(dict_user_create(&d, "bob", DICT_ROLE_WRITER, V1), 0);
    CU_ASSERT_EQUAL_FATAL(dict_user_create(&d, "carol", DICT_ROLE_READER, V1), 0);
    CU_ASSERT_EQUAL(dict_admin_count(&d), 1);
    CU_ASSERT_EQUAL(d.version, 3);

    /* the last admin can be neither dropped nor demoted */
    REFUSED(dict_user_drop(&d, "root"), NINES_ESTATE, "user root is the last admin");
    REFUSED(dict_user_alter(&d, "root", DICT_ROLE_WRITER, NULL), NINES_ESTATE,
            "alter user 'root' to writer: user root is the last admin");
    REFUSED(dict_user_alter(&d, "root", DICT_ROLE_READER, V2), NINES_ESTATE,
            "user root is the last admin");
    CU_ASSERT_STRING_EQUAL(dict_user_find(&d, "root")->verifier, V1); /* nothing changed */
    /* but its password can change, and it can stay admin */
    CU_ASSERT_EQUAL(dict_user_alter(&d, "root", 0, V2), 0);
    CU_ASSERT_EQUAL(d.version, 4);
    CU_ASSERT_STRING_EQUAL(dict_user_find(&d, "root")->verifier, V2);
    CU_ASSERT_EQUAL(dict_user_find(&d, "root")->role, DICT_ROLE_ADMIN);
    CU_ASSERT_EQUAL(dict_user_alter(&d, "root", DICT_ROLE_ADMIN, NULL), 0);
    CU_ASSERT_EQUAL(d.version, 5);

    /* a second admin: now either may go */
    CU_ASSERT_EQUAL(dict_user_alter(&d, "bob", DICT_ROLE_ADMIN, NULL), 0);
    CU_ASSERT_EQUAL(dict_admin_count(&d), 2);
    CU_ASSERT_STRING_EQUAL(dict_user_find(&d, "bob")->verifier, V1); /* kept */
    CU_ASSERT_EQUAL(dict_user_alter(&d, "root", DICT_ROLE_READER, NULL), 0);
    CU_ASSERT_EQUAL(d.version, 7);
    REFUSED(dict_user_drop(&d, "bob"), NINES_ESTATE, "drop user 'bob': user bob is the last admin");
    CU_ASSERT_EQUAL(dict_user_drop(&d, "root"), 0);
    CU_ASSERT_EQUAL(d.version, 8);
    CU_ASSERT_PTR_NULL(dict_user_find(&d, "root"));
    CU_ASSERT_EQUAL_FATAL(d.nusers, 2);
    CU_ASSERT_STRING_EQUAL(d.users[0].name, "bob");
    CU_ASSERT_STRING_EQUAL(d.users[1].name, "carol");

    /* refusals */
    REFUSED(dict_user_drop(&d, "root"), NINES_ENOTFOUND, "drop user 'root': no such user");
    REFUSED(dict_user_drop(&d, "a b"), NINES_EINVAL, "is not allowed");
    REFUSED(dict_user_alter(&d, "nobody", DICT_ROLE_READER, NULL), NINES_ENOTFOUND,
            "alter user 'nobody': no such user");
    REFUSED(dict_user_alter(&d, "carol", 0, NULL), NINES_EINVAL,
            "alter user 'carol': neither a role nor a verifier");
    REFUSED(dict_user_alter(&d, "carol", 9, NULL), NINES_EINVAL, "role 9 is not a role");
    REFUSED(dict_user_alter(&d, "carol", 0, "nope"), NINES_EINVAL, "is not a SCRAM-SHA-256");
    REFUSED(dict_user_alter(&d, "", DICT_ROLE_READER, NULL), NINES_EINVAL, "user name is empty");

    /* a second admin lets the other go; then it is the last one */
    CU_ASSERT_EQUAL(dict_user_alter(&d, "bob", DICT_ROLE_ADMIN, NULL), 0); /* no change: v+1 */
    CU_ASSERT_EQUAL(dict_user_create(&d, "dave", DICT_ROLE_ADMIN, V1), 0);
    CU_ASSERT_EQUAL(dict_user_drop(&d, "bob"), 0);
    REFUSED(dict_user_drop(&d, "dave"), NINES_ESTATE, "user dave is the last admin");
    CU_ASSERT_EQUAL(dict_user_drop(&d, "carol"), 0);
    CU_ASSERT_EQUAL(d.nusers, 1);
    dict_free(&d);

    /* no admin at all (readers and writers only): nothing is guarded */
    struct dict e;
    CU_ASSERT_EQUAL_FATAL(dict_init(&e, nodes, 2), 0);
    CU_ASSERT_EQUAL(dict_user_create(&e, "r", DICT_ROLE_READER, V1), 0);
    CU_ASSERT_EQUAL(dict_user_drop(&e, "r"), 0);
    CU_ASSERT_EQUAL(e.nusers, 0);
    CU_ASSERT_EQUAL(e.version, 2);
    dict_free(&e);
}

static void test_roles(void)
{
    uint32_t r = 0;
    CU_ASSERT_STRING_EQUAL(dict_role_name(DICT_ROLE_READER), "reader");
    CU_ASSERT_STRING_EQUAL(dict_role_name(DICT_ROLE_WRITER), "writer");
    CU_ASSERT_STRING_EQUAL(dict_role_name(DICT_ROLE_ADMIN), "admin");
    CU_ASSERT_STRING_EQUAL(dict_role_name(0), "?");
    CU_ASSERT_STRING_EQUAL(dict_role_name(4), "?");
    CU_ASSERT_EQUAL(dict_role_parse("reader", &r), 0);
    CU_ASSERT_EQUAL(r, DICT_ROLE_READER);
    CU_ASSERT_EQUAL(dict_role_parse("writer", &r), 0);
    CU_ASSERT_EQUAL(r, DICT_ROLE_WRITER);
    CU_ASSERT_EQUAL(dict_role_parse("admin", &r), 0);
    CU_ASSERT_EQUAL(r, DICT_ROLE_ADMIN);
    CU_ASSERT_EQUAL(dict_role_parse("Admin", &r), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "unknown role 'Admin' (reader, writer or "
                                                     "admin)"));
    CU_ASSERT_EQUAL(dict_role_parse("", &r), NINES_EINVAL);
    CU_ASSERT_EQUAL(dict_role_parse(NULL, &r), NINES_EINVAL);
    CU_ASSERT_EQUAL(r, DICT_ROLE_ADMIN); /* untouched by refusals */
    /* ordered */
    CU_ASSERT(DICT_ROLE_READER < DICT_ROLE_WRITER && DICT_ROLE_WRITER < DICT_ROLE_ADMIN);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"create", test_create},
        {"limit", test_limit},
        {"drop_alter", test_drop_alter},
        {"roles", test_roles},
        {NULL, NULL},
    };
    cu_add_suite("dict_user", setup, NULL, cases);
}
