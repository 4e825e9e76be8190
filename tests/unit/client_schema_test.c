/* The client library's schema calls (client/README.md "Schema") against a
 * fake node: a thread speaking HELLO, DICT_CHANGE_REQ and DICT_GET_REQ
 * over loopback, applying each change with the dictionary service's own
 * dsvc_apply to its dictionary and answering CONF or REF as a node does.
 * What travels (the DictTableDef, split keys, SQL attributes), the
 * refusal's code and reason passed through, the copy fetched again after
 * a change, infos built from it, arguments refused before anything is
 * sent, a connection lost while the change waits, and a change never
 * answered (12 s). Users (client/README.md "Users"): create/alter/drop
 * carry a verifier made from the password and never the password, the
 * list comes as names and roles, the fetched image holds no users. */
#include "cu_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dict/dict.h"
#include "dict/svc/dsvc_int.h"
#include "net/net.h"
#include "nines/errors.h"
#include "nines/nines.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "scram.h"

static struct {
    int lfd;
    uint16_t port;
    pthread_t th;
    atomic_int stop;
    atomic_int changes;        /* DICT_CHANGE_REQs seen */
    atomic_int gets;           /* DICT_GET_REQs seen */
    struct dict d;             /* the fake node's dictionary (its thread's) */
    Nines__DictTableDef *last; /* the last CREATE_TABLE's definition */
    Nines__DictChange *last_user; /* the last user change (its op and DictUser) */
    atomic_int pw_seen;        /* frames holding the test's password bytes */
    atomic_int users_asked;    /* DICT_GET_REQs with users set */
    int last_image_users;      /* users in the last image sent (decoded by the fake) */
} F;

#define TEST_PW "pw-Never-On-The-Wire"


static const struct dict_node nodes[] = {{1, 0}, {2, 1}, {3, 0}};

/* Read one whole frame (4-byte little-endian length, then the envelope). */
static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int k = poll(&pf, 1, 50);
        if (atomic_load(&F.stop))
            return -1;
        if (k <= 0)
            continue;
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int read_frame(int fd, uint8_t **buf, size_t *len)
{
    uint8_t h[4];
    if (read_full(fd, h, 4))
        return -1;
    uint32_t n = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                 (uint32_t)h[3] << 24;
    *buf = malloc(n ? n : 1);
    *len = n;
    if (!*buf || read_full(fd, *buf, n)) {
        free(*buf);
        return -1;
    }
    return 0;
}

static void send_msg(int fd, uint32_t type, const ProtobufCMessage *body)
{
    size_t blen = protobuf_c_message_get_packed_size(body);
    size_t elen = net_env_size(1, 0, type, blen);
    uint8_t *p = malloc(4 + elen);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(elen >> (8 * i));
    net_env_pack(p + 4, 1, 0, type, body, blen);
    for (size_t off = 0; off < 4 + elen;) {
        ssize_t w = send(fd, p + off, 4 + elen - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(p);
}

/* One change as a node answers it; false: close the connection instead
 * (a change of table "vanish"). */
static bool on_change(int fd, const struct net_msg_in *m)
{
    Nines__DictChangeReq *q = nines__dict_change_req__unpack(NULL, m->body_len, m->body);
    if (!q)
        return false;
    atomic_fetch_add(&F.changes, 1);
    Nines__DictChange *ch = q->change;
    if (ch && ch->name && !strcmp(ch->name, "vanish")) {
        nines__dict_change_req__free_unpacked(q, NULL);
        return false;
    }
    if (ch && ch->name && !strcmp(ch->name, "silent")) { /* never answered */
        nines__dict_change_req__free_unpacked(q, NULL);
        return true;
    }
    if (ch && ch->op == NINES__DICT_OP__DICT_OP_CREATE_TABLE) {
        if (F.last)
            nines__dict_table_def__free_unpacked(F.last, NULL);
        size_t n = protobuf_c_message_get_packed_size(&ch->table->base);
        uint8_t *b = malloc(n);
        protobuf_c_message_pack(&ch->table->base, b);
        F.last = nines__dict_table_def__unpack(NULL, n, b);
        free(b);
    }
    if (ch && ch->user) {
        if (F.last_user)
            nines__dict_change__free_unpacked(F.last_user, NULL);
        size_t n = protobuf_c_message_get_packed_size(&ch->base);
        uint8_t *b = malloc(n);
        protobuf_c_message_pack(&ch->base, b);
        F.last_user = nines__dict_change__unpack(NULL, n, b);
        free(b);
    }
    struct dict next;
    uint32_t tid = 0;
    int rc = dsvc_apply(&F.d, ch, &next, &tid, NULL);
    if (rc) {
        Nines__DictChangeRef r = NINES__DICT_CHANGE_REF__INIT;
        r.error = rc;
        r.reason = (char *)nines_errdetail();
        r.coordinator = 1;
        send_msg(fd, NINES__MSG_TYPE__DICT_CHANGE_REF, &r.base);
    } else {
        dict_free(&F.d);
        F.d = next;
        Nines__DictChangeConf a = NINES__DICT_CHANGE_CONF__INIT;
        a.version = F.d.version;
        a.table_id = tid;
        a.coordinator = 1;
        send_msg(fd, NINES__MSG_TYPE__DICT_CHANGE_CONF, &a.base);
    }
    nines__dict_change_req__free_unpacked(q, NULL);
    return true;
}

/* As the dictionary service answers (dict/svc dsvc_on_get_req): the
 * public image, and with users asked their names and roles. */
static void on_get(int fd, const struct net_msg_in *m)
{
    atomic_fetch_add(&F.gets, 1);
    Nines__DictGetReq *q = nines__dict_get_req__unpack(NULL, m->body_len, m->body);
    bool users = q && q->users;
    if (q)
        nines__dict_get_req__free_unpacked(q, NULL);
    uint8_t *img;
    size_t len;
    if (dict_encode_public(&F.d, &img, &len))
        return;
    struct dict chk;
    F.last_image_users = dict_decode(img, len, &chk) == 0 ? (int)chk.nusers : -1;
    dict_free(&chk);
    Nines__DictGetConf g = NINES__DICT_GET_CONF__INIT;
    g.node_id = 1;
    g.version = F.d.version;
    g.image.data = img;
    g.image.len = len;
    Nines__DictUserInfo ui[8], *up[8];
    if (users) {
        atomic_fetch_add(&F.users_asked, 1);
        for (uint32_t i = 0; i < F.d.nusers && i < 8; i++) {
            nines__dict_user_info__init(&ui[i]);
            ui[i].name = F.d.users[i].name;
            ui[i].role = F.d.users[i].role;
            up[i] = &ui[i];
        }
        g.users = up;
        g.n_users = F.d.nusers < 8 ? F.d.nusers : 8;
    }
    send_msg(fd, NINES__MSG_TYPE__DICT_GET_CONF, &g.base);
    free(img);
}

static void serve(int fd)
{
    uint8_t *buf;
    size_t len;
    if (read_frame(fd, &buf, &len))
        return;
    free(buf);
    Nines__HelloConf hc = NINES__HELLO_CONF__INIT;
    hc.node_id = 1;
    hc.conn_id = 1;
    send_msg(fd, NINES__MSG_TYPE__HELLO_CONF, &hc.base);
    while (read_frame(fd, &buf, &len) == 0) {
        struct net_msg_in m;
        bool go_on = true;
        if (memmem(buf, len, TEST_PW, strlen(TEST_PW)))
            atomic_fetch_add(&F.pw_seen, 1);
        if (net_env_parse(buf, len, &m) == 0) {
            if (m.type == NINES__MSG_TYPE__DICT_CHANGE_REQ)
                go_on = on_change(fd, &m);
            else if (m.type == NINES__MSG_TYPE__DICT_GET_REQ)
                on_get(fd, &m);
        }
        free(buf);
        if (!go_on)
            return;
    }
}

static void *fake_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&F.stop)) {
        struct pollfd pf = {.fd = F.lfd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(F.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve(fd);
        close(fd);
    }
    return NULL;
}

static int suite_init(void)
{
    memset(&F, 0, sizeof F);
    if (dict_init(&F.d, nodes, 3))
        return 1;
    F.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (F.lfd < 0 || bind(F.lfd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(F.lfd, (struct sockaddr *)&a, &len) || listen(F.lfd, 8))
        return 1;
    F.port = ntohs(a.sin_port);
    return pthread_create(&F.th, NULL, fake_main, NULL) ? 1 : 0;
}

static int suite_fini(void)
{
    atomic_store(&F.stop, 1);
    pthread_join(F.th, NULL);
    close(F.lfd);
    dict_free(&F.d);
    if (F.last)
        nines__dict_table_def__free_unpacked(F.last, NULL);
    if (F.last_user)
        nines__dict_change__free_unpacked(F.last_user, NULL);
    return 0;
}

static nines_conn *conn(void)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", F.port);
    const char *addrs[] = {addr};
    nines_conn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(nines_connect(&c, addrs, 1, "test", 2000), 0);
    return c;
}

static const struct nines_column cols[] = {
    {.name = "name", .type = NINES_T_VARSTRING, .size = 16, .sqltype = 1043, .sqltypmod = 20},
    {.name = "score", .type = NINES_T_DOUBLE, .nullable = 1, .sqltype = 701, .sqltypmod = -1},
    {.name = "rk", .type = NINES_T_INT64, .sqltype = 20, .sqltypmod = -1, .hidden = 1},
};

static void test_create_and_list(void)
{
    nines_conn *c = conn();
    /* hash, nfrags 0: one fragment per node of the dictionary */
    struct nines_table_def d = {.name = "h", .ncols = 3, .cols = cols, .npk = 1,
                                .pk = (const uint32_t[]){2}};
    uint32_t id = 0;
    CU_ASSERT_EQUAL_FATAL(nines_table_create(c, &d, &id), 0);
    CU_ASSERT_EQUAL(id, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(F.last);
    CU_ASSERT_EQUAL(F.last->nfrags, 3);
    CU_ASSERT_EQUAL(F.last->method, 1);
    CU_ASSERT_EQUAL_FATAL(F.last->n_columns, 3);
    CU_ASSERT_EQUAL(F.last->columns[0]->sqltype, 1043);
    CU_ASSERT_EQUAL(F.last->columns[0]->sqltypmod, 20);
    CU_ASSERT_TRUE(F.last->columns[2]->hidden);
    CU_ASSERT_TRUE(F.last->columns[1]->nullable);
    /* range on a varstring key: split values encoded as keys, read back */
    struct nines_value sp[] = {nines_v_string("g", 1), nines_v_string("p\0q", 3)};
    struct nines_table_def r = {.name = "r", .ncols = 3, .cols = cols, .npk = 1,
                                .pk = (const uint32_t[]){0}, .method = 2, .nsplits = 2,
                                .splits = sp, .replicas = 1, .scheme = 2};
    CU_ASSERT_EQUAL(nines_table_create(c, &r, NULL), NINES_EINVAL); /* NUL in a string */
    sp[1] = nines_v_string("pq", 2);
    CU_ASSERT_EQUAL_FATAL(nines_table_create(c, &r, &id), 0);
    CU_ASSERT_EQUAL(id, 2);
    CU_ASSERT_EQUAL(F.last->n_splits, 2);
    struct nines_table_info ti;
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c, "r", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.version, 2);
    CU_ASSERT_EQUAL(ti.def.nfrags, 3);
    CU_ASSERT_EQUAL(ti.def.replicas, 1);
    CU_ASSERT_EQUAL(ti.def.scheme, 2);
    CU_ASSERT_EQUAL_FATAL(ti.def.nsplits, 2);
    CU_ASSERT_EQUAL(ti.def.splits[0].type, NINES_V_STRING);
    CU_ASSERT_EQUAL(ti.def.splits[0].u.s.len, 1);
    CU_ASSERT_EQUAL(memcmp(ti.def.splits[0].u.s.p, "g", 1), 0);
    CU_ASSERT_EQUAL(ti.def.splits[1].u.s.len, 2);
    CU_ASSERT_EQUAL(memcmp(ti.def.splits[1].u.s.p, "pq", 2), 0);
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c, "h", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.id, 1);
    CU_ASSERT_EQUAL(ti.def.nfrags, 3);
    CU_ASSERT_EQUAL_FATAL(ti.def.ncols, 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(ti.def.cols[i].name, cols[i].name);
        CU_ASSERT_EQUAL(ti.def.cols[i].type, cols[i].type);
        CU_ASSERT_EQUAL(ti.def.cols[i].size, cols[i].size);
        CU_ASSERT_EQUAL(ti.def.cols[i].nullable, cols[i].nullable);
        CU_ASSERT_EQUAL(ti.def.cols[i].sqltype, cols[i].sqltype);
        CU_ASSERT_EQUAL(ti.def.cols[i].sqltypmod, cols[i].sqltypmod);
        CU_ASSERT_EQUAL(ti.def.cols[i].hidden, cols[i].hidden);
    }
    CU_ASSERT_EQUAL(ti.def.pk[0], 2);
    /* a listing without refresh makes no fetch */
    int gets = atomic_load(&F.gets);
    CU_ASSERT_EQUAL(nines_table_get(c, "h", 0, &ti), 0);
    CU_ASSERT_EQUAL(atomic_load(&F.gets), gets);
    CU_ASSERT_EQUAL(nines_table_get(c, "h", 1, &ti), 0);
    CU_ASSERT_EQUAL(atomic_load(&F.gets), gets + 1);
    CU_ASSERT_EQUAL(nines_table_get(c, "nope", 0, &ti), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "'nope'"));
    nines_close(c);
}

static void test_changes(void)
{
    nines_conn *c = conn();
    struct nines_table_info ti;
    /* a refusal: the node's code and reason as they are */
    CU_ASSERT_EQUAL(nines_table_drop(c, "missing"), NINES_ENOTFOUND);
    CU_ASSERT_STRING_EQUAL(nines_conn_errdetail(c), "no table named 'missing'");
    CU_ASSERT_STRING_EQUAL(nines_errdetail(), "no table named 'missing'");
    struct nines_table_def d = {.name = "h", .ncols = 3, .cols = cols, .npk = 1,
                                .pk = (const uint32_t[]){2}, .nfrags = 2};
    CU_ASSERT_EQUAL(nines_table_create(c, &d, NULL), NINES_EEXIST);
    CU_ASSERT_EQUAL(nines_table_replace(c, "h", "none"), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "no table named 'none'"));
    /* read-only: the listing shows it right after the change */
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c, "h", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.readonly, 0);
    CU_ASSERT_EQUAL_FATAL(nines_table_set_readonly(c, "h", 1), 0);
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c, "h", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.readonly, 1);
    /* replace: r takes h's name and keeps its id */
    CU_ASSERT_EQUAL_FATAL(nines_table_replace(c, "h", "r"), 0);
    CU_ASSERT_EQUAL_FATAL(nines_table_get(c, "h", 0, &ti), 0);
    CU_ASSERT_EQUAL(ti.id, 2);
    CU_ASSERT_EQUAL(ti.readonly, 0);
    CU_ASSERT_EQUAL(ti.def.method, 2);
    CU_ASSERT_EQUAL(nines_table_get(c, "r", 0, &ti), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL_FATAL(nines_table_drop(c, "h"), 0);
    CU_ASSERT_EQUAL(nines_table_get(c, "h", 0, &ti), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(F.d.ntables, 0);
    nines_close(c);
}

static void test_refused_here(void)
{
    nines_conn *c = conn();
    int before = atomic_load(&F.changes);
    const uint32_t pk0[] = {0}, pk9[] = {9};
    struct nines_value sp[] = {nines_v_int64(1)};
    struct nines_table_def d = {.name = "x", .ncols = 3, .cols = cols, .npk = 1, .pk = pk0};
    CU_ASSERT_EQUAL(nines_table_create(c, NULL, NULL), NINES_EINVAL);
    d.npk = 0;
    CU_ASSERT_EQUAL(nines_table_create(c, &d, NULL), NINES_EINVAL);
    d.npk = 1;
    d.pk = pk9;
    CU_ASSERT_EQUAL(nines_table_create(c, &d, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "key column 9"));
    d.pk = pk0;
    d.method = 3;
    CU_ASSERT_EQUAL(nines_table_create(c, &d, NULL), NINES_EINVAL);
    d.method = 1;
    d.nsplits = 1;
    d.splits = sp;
    CU_ASSERT_EQUAL(nines_table_create(c, &d, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "for a hash table"));
    d.method = 2; /* an integer split for a varstring key */
    CU_ASSERT_EQUAL(nines_table_create(c, &d, NULL), NINES_ETYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "split point 0"));
    d.name = "";
    CU_ASSERT_EQUAL(nines_table_create(c, &d, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_table_drop(c, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_table_replace(c, "a", ""), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_table_set_readonly(c, "", 1), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_table_drop(NULL, "a"), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_tables(c, 0, NULL, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(atomic_load(&F.changes), before); /* nothing was sent */
    /* the connection lost while the change waits: an error, not a hang */
    CU_ASSERT_NOT_EQUAL(nines_table_drop(c, "vanish"), 0);
    CU_ASSERT_EQUAL(atomic_load(&F.changes), before + 1);
    /* ... and the next call reconnects */
    CU_ASSERT_EQUAL(nines_table_drop(c, "missing"), NINES_ENOTFOUND);
    nines_close(c);
}

/* No answer within max(timeout, 12 s): NINES_ETIMEDOUT and the connection
 * closed (a late answer could not be told from the next change's). */
static void test_timeout(void)
{
    nines_conn *c = conn();
    CU_ASSERT_EQUAL(nines_table_drop(c, "missing"), NINES_ENOTFOUND);
    CU_ASSERT_NOT_EQUAL(nines_conn_node(c), 0);
    CU_ASSERT_EQUAL(nines_table_set_readonly(c, "silent", 1), NINES_ETIMEDOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "within 12000 ms"));
    CU_ASSERT_EQUAL(nines_conn_node(c), 0);
    CU_ASSERT_EQUAL(nines_table_drop(c, "missing"), NINES_ENOTFOUND);
    nines_close(c);
}

/* The verifier the last user change carried is password's (its own salt
 * and iterations), in PostgreSQL's form with 4096 iterations. */
static void verifier_is(const char *password)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(F.last_user);
    CU_ASSERT_PTR_NOT_NULL_FATAL(F.last_user->user);
    const char *v = F.last_user->user->verifier;
    struct scram_verifier sv;
    CU_ASSERT_EQUAL_FATAL(scram_verifier_parse(v, &sv), 0);
    CU_ASSERT_EQUAL(sv.iterations, SCRAM_ITERATIONS);
    CU_ASSERT_EQUAL(sv.salt_len, SCRAM_SALT_LEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(v, "SCRAM-SHA-256$4096:"));
    char again[300];
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make(password, strlen(password), sv.salt, sv.salt_len,
                                              sv.iterations, again, sizeof again), 0);
    CU_ASSERT_STRING_EQUAL(again, v);
}

struct ulist {
    int n;
    char names[8][64];
    uint32_t roles[8];
};

static int collect(void *arg, const struct nines_user_info *u)
{
    struct ulist *l = arg;
    if (l->n < 8) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", u->name);
        l->roles[l->n] = u->role;
    }
    l->n++;
    return 0;
}

static int stop_at_first(void *arg, const struct nines_user_info *u)
{
    (void)u;
    (*(int *)arg)++;
    return 42;
}

static void test_users(void)
{
    nines_conn *c = conn();
    int asked = atomic_load(&F.users_asked);
    struct ulist l = {0};
    CU_ASSERT_EQUAL(nines_users(c, collect, &l), 0);
    CU_ASSERT_EQUAL(l.n, 0);
    CU_ASSERT_EQUAL(atomic_load(&F.users_asked), asked + 1);

    CU_ASSERT_EQUAL_FATAL(nines_user_create(c, "zoe", NINES_ROLE_ADMIN, TEST_PW), 0);
    CU_ASSERT_EQUAL(F.last_user->op, NINES__DICT_OP__DICT_OP_CREATE_USER);
    CU_ASSERT_STRING_EQUAL(F.last_user->user->name, "zoe");
    CU_ASSERT_EQUAL(F.last_user->user->role, NINES_ROLE_ADMIN);
    verifier_is(TEST_PW);
    char first[300];
    snprintf(first, sizeof first, "%s", F.last_user->user->verifier);
    CU_ASSERT_EQUAL_FATAL(nines_user_create(c, "al.b@x-y", NINES_ROLE_READER, "r"), 0);
    verifier_is("r");
    /* the client's copy fetched after the change holds no users */
    CU_ASSERT_EQUAL(F.last_image_users, 0);
    CU_ASSERT_EQUAL(F.d.nusers, 2);

    memset(&l, 0, sizeof l);
    CU_ASSERT_EQUAL(nines_users(c, collect, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    CU_ASSERT_STRING_EQUAL(l.names[0], "al.b@x-y");
    CU_ASSERT_EQUAL(l.roles[0], NINES_ROLE_READER);
    CU_ASSERT_STRING_EQUAL(l.names[1], "zoe");
    CU_ASSERT_EQUAL(l.roles[1], NINES_ROLE_ADMIN);
    int calls = 0;
    CU_ASSERT_EQUAL(nines_users(c, stop_at_first, &calls), 42);
    CU_ASSERT_EQUAL(calls, 1);

    /* alter: the password (a new salt), the role, both */
    CU_ASSERT_EQUAL(nines_user_alter(c, "zoe", 0, TEST_PW), 0);
    CU_ASSERT_EQUAL(F.last_user->op, NINES__DICT_OP__DICT_OP_ALTER_USER);
    CU_ASSERT_EQUAL(F.last_user->user->role, 0);
    verifier_is(TEST_PW);
    CU_ASSERT_STRING_NOT_EQUAL(F.last_user->user->verifier, first);
    CU_ASSERT_EQUAL(nines_user_alter(c, "al.b@x-y", NINES_ROLE_WRITER, NULL), 0);
    CU_ASSERT_STRING_EQUAL(F.last_user->user->verifier, ""); /* kept */
    CU_ASSERT_EQUAL(nines_user_alter(c, "al.b@x-y", NINES_ROLE_ADMIN, "z"), 0);
    verifier_is("z");
    CU_ASSERT_EQUAL_FATAL(F.d.nusers, 2);
    CU_ASSERT_EQUAL(F.d.users[0].role, DICT_ROLE_ADMIN);

    /* the node's refusals, passed through with their detail */
    CU_ASSERT_EQUAL(nines_user_create(c, "zoe", NINES_ROLE_READER, "x"), NINES_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "user 'zoe' already exists"));
    CU_ASSERT_EQUAL(nines_user_drop(c, "nobody"), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "no such user"));
    CU_ASSERT_EQUAL(nines_user_alter(c, "al.b@x-y", NINES_ROLE_READER, NULL), 0);
    CU_ASSERT_EQUAL(nines_user_drop(c, "zoe"), NINES_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "user zoe is the last admin"));
    CU_ASSERT_EQUAL(nines_user_alter(c, "zoe", NINES_ROLE_WRITER, NULL), NINES_ESTATE);
    CU_ASSERT_EQUAL(nines_user_drop(c, "al.b@x-y"), 0);
    CU_ASSERT_EQUAL(F.last_user->op, NINES__DICT_OP__DICT_OP_DROP_USER);

    /* refused here, nothing sent */
    int changes = atomic_load(&F.changes);
    char longpw[1100];
    memset(longpw, 'p', 1025);
    longpw[1025] = '\0';
    CU_ASSERT_EQUAL(nines_user_create(c, "u", NINES_ROLE_READER, longpw), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "longer than 1024 bytes"));
    longpw[1024] = '\0'; /* 1024 bytes: fine */
    CU_ASSERT_EQUAL(nines_user_create(c, "u", NINES_ROLE_READER, longpw), 0);
    CU_ASSERT_EQUAL(atomic_load(&F.changes), changes + 1);
    changes++;
    CU_ASSERT_EQUAL(nines_user_create(c, "u2", NINES_ROLE_READER, ""), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "the password is empty"));
    CU_ASSERT_EQUAL(nines_user_create(c, "u2", NINES_ROLE_READER, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_user_create(c, "u2", 0, "x"), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "role 0 is not a role"));
    CU_ASSERT_EQUAL(nines_user_create(c, "u2", 4, "x"), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_user_create(c, "bad name", NINES_ROLE_READER, "x"), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "character 3 (0x20) is not allowed"));
    CU_ASSERT_EQUAL(nines_user_create(c, "", NINES_ROLE_READER, "x"), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_user_create(c, NULL, NINES_ROLE_READER, "x"), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_user_drop(c, "a/b"), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_user_alter(c, "u", 0, NULL), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "neither a role nor a password"));
    CU_ASSERT_EQUAL(nines_user_alter(c, "u", -1, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_users(c, NULL, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_users(NULL, collect, &l), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_user_drop(NULL, "u"), NINES_EINVAL);
    CU_ASSERT_EQUAL(atomic_load(&F.changes), changes);
    /* the password never travelled */
    CU_ASSERT_EQUAL(atomic_load(&F.pw_seen), 0);
    nines_close(c);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"create_and_list", test_create_and_list},
        {"changes", test_changes},
        {"refused_here", test_refused_here},
        {"users", test_users},
        {"timeout", test_timeout},
        {NULL, NULL},
    };
    cu_add_suite("client_schema", suite_init, suite_fini, cases);
}
