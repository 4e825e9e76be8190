/* Users with roles (dict/README.md "Users", tools/README.md "ninesctl
 * user", client/README.md "Users") on four real ninesd processes (2
 * sites): ninesctl user add/list/passwd/role/drop at node 1, the list seen
 * at node 3, each node's dictionary file holding the users with verifiers
 * of the right passwords, the refusals (the last admin, a taken name, a
 * bad role); the client library's calls at node 2; the users surviving a
 * restart of every node; and the dictionary image a client fetches
 * (DICT_GET_CONF) holding no users and no verifier bytes. */
#include "clu.h"
#include "conf.h"
#include "cu_test.h"
#include "dict/dict.h"
#include "nines/errors.h"
#include "nines/nines.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "scram.h"
#include "tools/ctl.h"

#include <stdbool.h>

static struct clu C;

static int setup(void)
{
    if (clu_setup(&C, 4, NULL))
        return 1;
    return clu_run(&C, "ninesctl", 0, "status --wait-healthy 20") == 0 ? 0 : 1;
}

static int teardown(void) { return clu_teardown(&C); }

/* ninesctl with stdin from `input` (NULL: none); output and errors in C.out. */
static int ctl(const char *input, const char *args)
{
    if (input)
        return clu_sh(&C, "printf '%%s\\n' '%s' | %s/ninesctl --config %s %s 2>&1", input,
                      C.bindir, C.conf, args);
    return clu_sh(&C, "%s/ninesctl --config %s %s 2>&1 </dev/null", C.bindir, C.conf, args);
}

static void expect(int rc, int want, const char *text)
{
    CU_ASSERT_EQUAL(rc, want);
    bool has = strstr(C.out, text) != NULL;
    CU_ASSERT(has);
    if (rc != want || !has)
        printf("\n  exit %d (want %d), output lacks '%s':\n%s\n", rc, want, text, C.out);
}

/* The user list at node `id` equals `want` ("name role\n" lines), within
 * a few seconds (a node catches up by the version exchange). */
static void list_is(int id, const char *want)
{
    char args[64];
    snprintf(args, sizeof args, "user list --node %d", id);
    int rc = -1;
    for (int i = 0; i < 50; i++) {
        rc = ctl(NULL, args);
        if (rc == 0 && !strcmp(C.out, want))
            break;
        usleep(100000);
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(C.out, want);
    if (rc || strcmp(C.out, want))
        printf("\n  node %d lists:\n%s  want:\n%s", id, C.out, want);
}

/* Node `id`'s dictionary file: user `name`'s verifier is password's (its
 * salt and iterations) and its role is `role`. */
static void file_has(int id, const char *name, uint32_t role, const char *password)
{
    char path[160];
    snprintf(path, sizeof path, "%s/node%d/dict.ndd", C.dir, id);
    struct dict d;
    const struct dict_user *u = NULL;
    for (int i = 0; i < 50; i++) { /* saved right after the commit */
        if (dict_load(path, &d) == 0) {
            u = dict_user_find(&d, name);
            if (u && u->role == role)
                break;
            dict_free(&d);
            u = NULL;
        }
        usleep(100000);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    struct scram_verifier sv;
    CU_ASSERT_EQUAL_FATAL(scram_verifier_parse(u->verifier, &sv), 0);
    char again[DICT_VERIFIER_MAX + 1];
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make(password, strlen(password), sv.salt, sv.salt_len,
                                              sv.iterations, again, sizeof again), 0);
    CU_ASSERT_STRING_EQUAL(again, u->verifier);
    dict_free(&d);
}

static void test_ninesctl(void)
{
    expect(ctl("first secret", "user add ann --role admin --node 1"), 0,
           "created user 'ann' (admin): dictionary version");
    expect(ctl(NULL, "user add bob --role reader --password bob-pw --node 1"), 0,
           "created user 'bob' (reader)");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "confirmed by nodes: 1 2 3 4"));
    list_is(1, "ann admin\nbob reader\n");
    list_is(3, "ann admin\nbob reader\n");
    for (int id = 1; id <= 4; id++) {
        file_has(id, "ann", DICT_ROLE_ADMIN, "first secret");
        file_has(id, "bob", DICT_ROLE_READER, "bob-pw");
    }
    /* passwd from stdin, role */
    expect(ctl("bobs new one", "user passwd bob --node 1"), 0,
           "changed the password of user 'bob'");
    expect(ctl(NULL, "user role bob writer --node 1"), 0, "user 'bob' is now writer");
    list_is(3, "ann admin\nbob writer\n");
    file_has(3, "bob", DICT_ROLE_WRITER, "bobs new one");
    /* refusals, with the dictionary's detail */
    expect(ctl(NULL, "user drop ann --node 1"), 1, "user ann is the last admin");
    expect(ctl(NULL, "user role ann reader --node 1"), 1, "user ann is the last admin");
    expect(ctl(NULL, "user add bob --role admin --password x --node 1"), 1,
           "user 'bob' already exists");
    expect(ctl(NULL, "user drop nobody --node 1"), 1, "no such user");
    expect(ctl(NULL, "user add carl --role boss --password x"), 2, "unknown role 'boss'");
    expect(ctl(NULL, "user add carl --password x"), 2, "needs --role");
    expect(ctl(NULL, "user add 'c l' --role reader --password x"), 2, "is not allowed");
    expect(ctl("", "user add carl --role reader"), 2, "the password is empty");
    expect(ctl(NULL, "user frob carl"), 2, "unknown subcommand");
    list_is(1, "ann admin\nbob writer\n");
}

struct ulist {
    int n;
    char text[512];
};

static int collect(void *arg, const struct nines_user_info *u)
{
    struct ulist *l = arg;
    size_t off = strlen(l->text);
    snprintf(l->text + off, sizeof l->text - off, "%s %u\n", u->name, u->role);
    l->n++;
    return 0;
}

static nines_conn *connect_node(int id)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", C.base_port + id);
    const char *addrs[] = {addr};
    nines_conn *c = NULL;
    int rc = nines_connect(&c, addrs, 1, "clutest", 5000);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return c;
}

static void test_client(void)
{
    nines_conn *c = connect_node(2);
    CU_ASSERT_EQUAL(nines_user_create(c, "carol@ops", NINES_ROLE_WRITER, "carol-pw"), 0);
    CU_ASSERT_EQUAL(nines_user_alter(c, "carol@ops", NINES_ROLE_ADMIN, NULL), 0);
    struct ulist l = {0};
    CU_ASSERT_EQUAL(nines_users(c, collect, &l), 0);
    CU_ASSERT_STRING_EQUAL(l.text, "ann 3\nbob 2\ncarol@ops 3\n");
    /* two admins now: ann may be demoted */
    CU_ASSERT_EQUAL(nines_user_alter(c, "ann", NINES_ROLE_READER, NULL), 0);
    CU_ASSERT_EQUAL(nines_user_drop(c, "carol@ops"), NINES_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "user carol@ops is the last admin"));
    CU_ASSERT_EQUAL(nines_user_create(c, "bob", NINES_ROLE_READER, "x"), NINES_EEXIST);
    nines_close(c);
    list_is(4, "ann reader\nbob writer\ncarol@ops admin\n");
    file_has(4, "carol@ops", DICT_ROLE_ADMIN, "carol-pw");
}

/* What a client gets from DICT_GET: no users in the image, no verifier
 * bytes anywhere in the answer; with users asked, names and roles. */
static void test_public_image(void)
{
    static struct nines_conf conf;
    CU_ASSERT_EQUAL_FATAL(nines_conf_load(C.conf, &conf), 0);
    for (int asked = 0; asked < 2; asked++) {
        struct net_client *cl;
        uint32_t used;
        CU_ASSERT_EQUAL_FATAL(ctl_connect(&conf, 3, 0, "test", &cl, &used), 0);
        Nines__DictGetReq req = NINES__DICT_GET_REQ__INIT;
        req.users = asked;
        uint32_t got;
        uint8_t *body = NULL;
        size_t len = 0;
        CU_ASSERT_EQUAL_FATAL(ctl_call(cl, NINES__MSG_TYPE__DICT_GET_REQ, &req.base,
                                       NINES__MSG_TYPE__DICT_GET_CONF,
                                       NINES__MSG_TYPE__DICT_GET_REF, 3000, &got, &body, &len),
                              0);
        net_client_close(cl);
        CU_ASSERT_EQUAL_FATAL(got, NINES__MSG_TYPE__DICT_GET_CONF);
        CU_ASSERT_PTR_NULL(memmem(body, len, "SCRAM", 5));
        CU_ASSERT_PTR_NULL(memmem(body, len, "4096:", 5));
        Nines__DictGetConf *g = nines__dict_get_conf__unpack(NULL, len, body);
        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        struct dict d;
        CU_ASSERT_EQUAL_FATAL(dict_decode(g->image.data, g->image.len, &d), 0);
        CU_ASSERT_EQUAL(d.nusers, 0);
        CU_ASSERT(d.version >= 7);
        dict_free(&d);
        if (asked) {
            CU_ASSERT_EQUAL_FATAL(g->n_users, 3);
            CU_ASSERT_STRING_EQUAL(g->users[0]->name, "ann");
            CU_ASSERT_EQUAL(g->users[0]->role, DICT_ROLE_READER);
            CU_ASSERT_STRING_EQUAL(g->users[2]->name, "carol@ops");
            CU_ASSERT_EQUAL(g->users[2]->role, DICT_ROLE_ADMIN);
        } else {
            CU_ASSERT_EQUAL(g->n_users, 0);
        }
        nines__dict_get_conf__free_unpacked(g, NULL);
        free(body);
    }
    /* the node-to-node image (the file) does hold them */
    char path[160];
    snprintf(path, sizeof path, "%s/node3/dict.ndd", C.dir);
    struct dict d;
    CU_ASSERT_EQUAL_FATAL(dict_load(path, &d), 0);
    CU_ASSERT_EQUAL(d.nusers, 3);
    dict_free(&d);
}

static void test_restart_all(void)
{
    for (int id = 1; id <= 4; id++)
        clu_stop(&C, id, SIGTERM);
    for (int id = 1; id <= 4; id++)
        clu_start(&C, id);
    int rc = clu_run(&C, "ninesctl", 0, "status --wait-healthy 30");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    const char *want = "ann reader\nbob writer\ncarol@ops admin\n";
    for (int id = 1; id <= 4; id++)
        list_is(id, want);
    file_has(2, "bob", DICT_ROLE_WRITER, "bobs new one");
    /* and changes go on after it */
    expect(ctl(NULL, "user drop bob --node 4"), 0, "dropped user 'bob'");
    list_is(1, "ann reader\ncarol@ops admin\n");
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"ninesctl", test_ninesctl},
        {"client", test_client},
        {"public_image", test_public_image},
        {"restart_all", test_restart_all},
        {NULL, NULL},
    };
    cu_add_suite("users_cluster", setup, teardown, cases);
}
