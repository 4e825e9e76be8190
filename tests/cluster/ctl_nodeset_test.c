/* ninesctl status / replicas against four fake nodes in this process (real
 * TCP endpoints on loopback answering STATUS_REQ, DICT_GET_REQ and
 * KERN_DIGEST_REQ with what each scenario says), so the node-set fields of
 * STATUS_CONF and every replica situation can be shown before and
 * independently of the supervisor filling them:
 *   - no node set reported: "no node set installed", roles over the nodes
 *     that answered;
 *   - every node in epoch 4, all current and serving: healthy, roles
 *     "both", the redo lag from the digests' next LSNs;
 *   - node 2 evicted (epoch 3 = {1,3,4}) but still claiming its primaries:
 *     status names the set, node 2 as "out" and NOT SERVING with its
 *     reason, the nodes' disagreement; replicas computes primary-alone
 *     roles with their log-copy nodes and warns about every fragment two
 *     nodes claim to be primary of;
 *   - node 2 a member that is not current (being rebuilt), then current
 *     and standby-only: replicas computes roles as the nodes do
 *     (dict_frag_roles_live): node 2 is the log copy of the fragments it
 *     holds a replica of, then their standby (no primary until takeback);
 *     status shows the standby-only set. */
#include "clu.h"
#include "cu_test.h"
#include "dict/dict.h"
#include "net/net.h"
#include "net/tcp.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

#include <pthread.h>
#include <stdatomic.h>

#define N 4
#define B(id) ((uint64_t)1 << ((id) - 1))
#define NFRAGS 4

struct scenario {
    bool have_set[N + 1];
    uint64_t epoch[N + 1], members[N + 1], current[N + 1], standby_only[N + 1];
    uint64_t since[N + 1][N + 1];   /* [node][id]: id's epoch of becoming current */
    uint32_t coordinator[N + 1];
    bool serving[N + 1];
    const char *ha[N + 1], *reason[N + 1];
    uint64_t rounds[N + 1];
    /* digests: per node, per fragment: holds a replica, claims primary, next LSN */
    bool holds[N + 1][NFRAGS], claims[N + 1][NFRAGS];
    uint64_t next_lsn[N + 1][NFRAGS];
};

static struct clu C;               /* only dir, conf, bindir, out (no ninesd) */
static struct nines_conf conf;
static struct net_endpoint *eps[N + 1];
static uint32_t ids[N + 1];
static struct dict dict;
static uint32_t table_id;
static struct scenario sc;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t poller;
static atomic_int stopping;

static int fake_status(uint32_t id, net_addr to)
{
    Nines__StatusConf b = NINES__STATUS_CONF__INIT;
    Nines__NodeSet ns = NINES__NODE_SET__INIT;
    Nines__PeerStatus peers[N], *pp[N];
    uint64_t since[N];
    b.node_id = id;
    b.site = (id - 1) % 2;
    b.uptime_ms = 5000;
    b.epoch = sc.have_set[id] ? sc.epoch[id] : 1;
    b.transport = "tcp";
    size_t n = 0;
    for (uint32_t p = 1; p <= N; p++) {
        if (p == id)
            continue;
        nines__peer_status__init(&peers[n]);
        peers[n].node_id = p;
        peers[n].site = (p - 1) % 2;
        peers[n].reachable = true;
        pp[n] = &peers[n];
        n++;
    }
    b.n_peers = n;
    b.peers = pp;
    if (sc.have_set[id]) {
        ns.epoch = sc.epoch[id];
        ns.members = sc.members[id];
        ns.current = sc.current[id];
        ns.standby_only = sc.standby_only[id];
        for (uint32_t i = 1; i <= N; i++)
            if (ns.standby_only & B(i))
                since[ns.n_standby_since++] = sc.since[id][i];
        ns.standby_since = since;
        ns.coordinator = sc.coordinator[id];
        b.node_set = &ns;
    }
    b.ha_state = (char *)(sc.ha[id] ? sc.ha[id] : "");
    b.serving = sc.serving[id];
    b.reason = (char *)(sc.reason[id] ? sc.reason[id] : "");
    b.arbitrator = "";
    b.ns_rounds = sc.rounds[id];
    return net_send(eps[id], to, NINES__MSG_TYPE__STATUS_CONF, &b.base);
}

static int fake_dict(uint32_t id, net_addr to)
{
    uint8_t *img = NULL;
    size_t len = 0;
    int rc = dict_encode(&dict, &img, &len);
    if (rc)
        return rc;
    Nines__DictGetConf b = NINES__DICT_GET_CONF__INIT;
    uint32_t live[N] = {1, 2, 3, 4};
    b.node_id = id;
    b.version = dict.version;
    b.image.data = img;
    b.image.len = len;
    b.live = live;
    b.n_live = N;
    b.coordinator = 1;
    rc = net_send(eps[id], to, NINES__MSG_TYPE__DICT_GET_CONF, &b.base);
    free(img);
    return rc;
}

static int fake_digest(uint32_t id, net_addr to)
{
    Nines__ReplicaDigest reps[NFRAGS], *rp[NFRAGS];
    size_t n = 0;
    for (uint32_t f = 0; f < NFRAGS; f++) {
        if (!sc.holds[id][f])
            continue;
        nines__replica_digest__init(&reps[n]);
        reps[n].table = table_id;
        reps[n].frag = f;
        reps[n].primary = sc.claims[id][f];
        reps[n].rows = 10;
        reps[n].digest = 0xabcdef00u + f;
        reps[n].next_lsn = sc.next_lsn[id][f];
        rp[n] = &reps[n];
        n++;
    }
    Nines__KernDigestConf b = NINES__KERN_DIGEST_CONF__INIT;
    b.node = id;
    b.replicas = rp;
    b.n_replicas = n;
    return net_send(eps[id], to, NINES__MSG_TYPE__KERN_DIGEST_CONF, &b.base);
}

static int fake_on_msg(void *ctx, const struct net_msg_in *m)
{
    uint32_t id = *(uint32_t *)ctx;
    switch (m->type) {
    case NINES__MSG_TYPE__STATUS_REQ:
        return fake_status(id, m->from);
    case NINES__MSG_TYPE__DICT_GET_REQ:
        return fake_dict(id, m->from);
    case NINES__MSG_TYPE__KERN_DIGEST_REQ:
        return fake_digest(id, m->from);
    default:
        return nines_err(NINES_EUNKNOWN_MSG, "fake node: type %u", m->type);
    }
}

static bool fake_known(void *ctx, uint32_t type)
{
    (void)ctx;
    return type == NINES__MSG_TYPE__STATUS_REQ || type == NINES__MSG_TYPE__DICT_GET_REQ ||
           type == NINES__MSG_TYPE__KERN_DIGEST_REQ;
}

static void *poll_all(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping)) {
        pthread_mutex_lock(&mu);
        for (uint32_t i = 1; i <= N; i++)
            (void)net_poll(eps[i], 0);
        pthread_mutex_unlock(&mu);
        usleep(1000);
    }
    return NULL;
}

static int setup(void)
{
    memset(&C, 0, sizeof C);
    C.bindir = getenv("NINES_BIN") ? getenv("NINES_BIN") : "build/bin";
    snprintf(C.dir, sizeof C.dir, "/tmp/nines_ctlns_XXXXXX");
    int base = clu_pick_port(N);
    if (!mkdtemp(C.dir) || base < 0)
        return 1;
    snprintf(C.conf, sizeof C.conf, "%s/cluster.conf", C.dir);
    FILE *f = fopen(C.conf, "w");
    if (!f)
        return 1;
    fprintf(f, "cluster fake\n");
    for (int i = 1; i <= N; i++)
        fprintf(f, "node %d site %d 127.0.0.1:%d\n", i, (i - 1) % 2, base + i);
    fclose(f);
    if (nines_conf_load(C.conf, &conf))
        return 1;
    static const struct dict_node nodes[] = {{1, 0}, {2, 1}, {3, 0}, {4, 1}};
    struct dict_column cols[2] = {{.name = "k", .type = DICT_T_INT64},
                                  {.name = "v", .type = DICT_T_INT64}};
    uint16_t pk[] = {0};
    struct dict_table_def t = {.name = "t", .ncols = 2, .cols = cols, .npk = 1, .pk = pk,
                               .method = DICT_FRAG_HASH, .nfrags = NFRAGS};
    if (dict_init(&dict, nodes, N) || dict_create_table(&dict, &t, &table_id))
        return 1;
    for (uint32_t i = 1; i <= N; i++) {
        ids[i] = i;
        struct net_transport *tr;
        struct net_handlers h = {.ctx = &ids[i], .on_msg = fake_on_msg, .known_type = fake_known};
        if (net_tcp_create_ex(&tr, &conf, i, NET_TCP_CLIENTS_ONLY) ||
            net_endpoint_open_on(&eps[i], &conf, i, tr, &h))
            return 1;
    }
    return pthread_create(&poller, NULL, poll_all, NULL) ? 1 : 0;
}

static int teardown(void)
{
    atomic_store(&stopping, 1);
    pthread_join(poller, NULL);
    for (uint32_t i = 1; i <= N; i++)
        net_endpoint_close(eps[i]);
    dict_free(&dict);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", C.dir);
    return system(cmd) == 0 ? 0 : 1;
}

static const struct dict_frag *frag(uint32_t f)
{
    return &dict_table_by_id(&dict, table_id)->frags[f];
}

/* Every replica where the dictionary places it; the dictionary primary
 * claims the role; next LSNs equal (lag 0). */
static void base_digests(struct scenario *s)
{
    for (uint32_t f = 0; f < NFRAGS; f++) {
        const struct dict_frag *fr = frag(f);
        s->holds[fr->primary][f] = s->holds[fr->standby][f] = true;
        s->claims[fr->primary][f] = true;
        s->next_lsn[fr->primary][f] = s->next_lsn[fr->standby][f] = 100;
    }
}

static void set_scenario(const struct scenario *s)
{
    pthread_mutex_lock(&mu);
    sc = *s;
    pthread_mutex_unlock(&mu);
}

static void test_no_nodeset(void)
{
    struct scenario s = {0};
    base_digests(&s);
    set_scenario(&s);
    int rc = clu_run(&C, "ninesctl", 0, "status");
    CU_ASSERT_EQUAL(rc, 0); /* nothing reported: health as before */
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "node set: no node set installed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "arbitrator: none configured"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "all nodes up"));
    rc = clu_run(&C, "ninesctl", 0, "status --json");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"node_set\":{\"installed\":false}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"arbitrator\":{\"configured\":false}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"node_set\":null,\"set\":\"-\",\"ha_state\":\"\""));
    rc = clu_run(&C, "ninesctl", 0, "replicas");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "roles: no node set installed; computed over the nodes "
                                         "that answered (1 2 3 4)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "4 fragments: 4 equal, 0 with one replica, 0 different"));
    if (rc)
        printf("\n%s\n", C.out);
}

static void test_all_current(void)
{
    struct scenario s = {0};
    for (uint32_t i = 1; i <= N; i++) {
        s.have_set[i] = true;
        s.epoch[i] = 4;
        s.members[i] = s.current[i] = B(1) | B(2) | B(3) | B(4);
        s.coordinator[i] = 1;
        s.serving[i] = true;
        s.ha[i] = "running";
    }
    s.rounds[1] = 3;
    base_digests(&s);
    /* fragment 0's standby is 5 records behind */
    s.next_lsn[frag(0)->standby][0] = 95;
    set_scenario(&s);
    int rc = clu_run(&C, "ninesctl", 0, "status");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "node set: epoch 4, members 1 2 3 4, current 1 2 3 4, "
                                         "coordinator 1 (every node that answered reports it)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "current  running"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "(node set here: 3 rounds coordinated"));
    if (rc)
        printf("\n%s\n", C.out);
    rc = clu_run(&C, "ninesctl", 0, "status --json");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"healthy\":true,\"node_set\":{\"installed\":true,"
                                         "\"epoch\":4,\"members\":[1,2,3,4],\"current\":[1,2,3,4],"
                                         "\"coordinator\":1,\"reported_by\":1,\"agreed\":true,"
                                         "\"standby_only\":[],\"standby_since\":[]}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"set\":\"current\",\"ha_state\":\"running\","
                                         "\"serving\":true,\"reason\":\"\""));
    rc = clu_run(&C, "ninesctl", 0, "replicas --json");
    CU_ASSERT_EQUAL(rc, 0);
    char want[256];
    snprintf(want, sizeof want, "{\"table\":%u,\"frag\":0,\"state\":\"EQUAL\",\"primary\":{\"node\":%u,"
             "\"rows\":10,", table_id, frag(0)->primary);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"role_state\":\"both\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"lag\":5,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"two_primaries\":0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"ok\":true"));
    if (rc)
        printf("\n%s\n", C.out);
}

static void test_node_evicted_still_claiming(void)
{
    struct scenario s = {0};
    for (uint32_t i = 1; i <= N; i++) {
        s.have_set[i] = true;
        s.epoch[i] = 3;
        s.members[i] = s.current[i] = B(1) | B(3) | B(4);
        s.coordinator[i] = 1;
        s.serving[i] = true;
        s.ha[i] = "running";
    }
    /* node 2 still has the set it knew, and is told it is out */
    s.epoch[2] = 2;
    s.members[2] = s.current[2] = B(1) | B(2) | B(3) | B(4);
    s.serving[2] = false;
    s.ha[2] = "outside";
    s.reason[2] = "not in the installed node set (epoch 3)";
    base_digests(&s);
    /* the standbys of node 2's primaries took over, node 2 still claims */
    int two = 0;
    for (uint32_t f = 0; f < NFRAGS; f++)
        if (frag(f)->primary == 2) {
            s.claims[frag(f)->standby][f] = true;
            two++;
        }
    CU_ASSERT_FATAL(two > 0);
    set_scenario(&s);
    int rc = clu_run(&C, "ninesctl", 0, "status");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "node set: epoch 3, members 1 3 4, current 1 3 4, "
                                         "coordinator 1 (reported by node 1; NOT every node "
                                         "agrees"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "out      outside"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "(NOT SERVING: not in the installed node set (epoch 3))"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "(its node set differs: epoch 2, members 1 2 3 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "health: DEGRADED"));
    if (getenv("PEEK"))
        printf("\n%s\n", C.out);
    rc = clu_run(&C, "ninesctl", 0, "status --json");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"agreed\":false"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"set\":\"out\",\"ha_state\":\"outside\","
                                         "\"serving\":false,\"reason\":\"not in the installed "
                                         "node set (epoch 3)\""));
    rc = clu_run(&C, "ninesctl", 0, "replicas");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "roles: node set epoch 3, current 1 3 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "primary-alone (log copy "));
    for (uint32_t f = 0; f < NFRAGS; f++) {
        if (frag(f)->primary != 2)
            continue;
        char want[160];
        uint32_t a = frag(f)->standby < 2 ? frag(f)->standby : 2;
        uint32_t b = frag(f)->standby < 2 ? 2 : frag(f)->standby;
        snprintf(want, sizeof want, "WARNING: table %u fragment %u: 2 nodes claim the primary "
                 "role: %u %u", table_id, f, a, b);
        CU_ASSERT_PTR_NOT_NULL(strstr(C.out, want));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "SOME WITH TWO PRIMARIES"));
    if (rc != 1 || getenv("PEEK"))
        printf("\n%s\n", C.out);
    rc = clu_run(&C, "ninesctl", 0, "replicas --json");
    CU_ASSERT_EQUAL(rc, 1);
    char want[64];
    snprintf(want, sizeof want, "\"two_primaries\":%d", two);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"role_state\":\"primary-alone\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"node_set\":{\"installed\":true,\"epoch\":3,"
                                         "\"current\":[1,3,4],\"members\":[1,3,4],"
                                         "\"standby_only\":[],\"standby_since\":[]}"));
}

/* Node 2 came back: in epoch 5 a member that is not current (its replicas
 * are being rebuilt: it is the log copy of each fragment it holds a
 * replica of, whose other replica is primary alone), then in epoch 6
 * current and standby-only (the fragments it is the dictionary primary of
 * keep their standby as primary, node 2 is their standby); then the other
 * replica of a fragment standby-only too: of the two, the one current since
 * the earlier epoch is primary. */
static void test_rebuilt_standby_only(void)
{
    struct scenario s = {0};
    for (uint32_t i = 1; i <= N; i++) {
        s.have_set[i] = true;
        s.epoch[i] = 5;
        s.members[i] = B(1) | B(2) | B(3) | B(4);
        s.current[i] = B(1) | B(3) | B(4);
        s.coordinator[i] = 1;
        s.serving[i] = true;
        s.ha[i] = "active";
    }
    base_digests(&s);
    int on2 = 0, prim2 = 0;
    for (uint32_t f = 0; f < NFRAGS; f++) {
        if (frag(f)->primary == 2) { /* taken over by its standby */
            s.claims[2][f] = false;
            s.claims[frag(f)->standby][f] = true;
            prim2++;
        }
        on2 += frag(f)->primary == 2 || frag(f)->standby == 2;
    }
    CU_ASSERT_FATAL(on2 > 0 && prim2 > 0);
    set_scenario(&s);
    int rc = clu_run(&C, "ninesctl", 0, "replicas");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "roles: node set epoch 5, current 1 3 4, members not "
                                         "current 2;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "primary-alone (log copy 2)"));
    if (getenv("PEEK"))
        printf("\n%s\n", C.out);
    rc = clu_run(&C, "ninesctl", 0, "replicas --json");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"node_set\":{\"installed\":true,\"epoch\":5,"
                                         "\"current\":[1,3,4],\"members\":[1,2,3,4],"
                                         "\"standby_only\":[],\"standby_since\":[]}"));
    for (uint32_t f = 0; f < NFRAGS; f++) {
        if (frag(f)->primary != 2 && frag(f)->standby != 2)
            continue;
        char want[96];
        uint32_t other = frag(f)->primary == 2 ? frag(f)->standby : frag(f)->primary;
        snprintf(want, sizeof want, "\"roles\":{\"primary\":%u,\"standby\":0,\"logcopy\":2}",
                 other);
        CU_ASSERT_PTR_NOT_NULL(strstr(C.out, want));
    }

    for (uint32_t i = 1; i <= N; i++) {
        s.epoch[i] = 6;
        s.current[i] = s.members[i];
        s.standby_only[i] = B(2);
        s.since[i][2] = 6;
    }
    set_scenario(&s);
    rc = clu_run(&C, "ninesctl", 0, "status");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "node set: epoch 6, members 1 2 3 4, current 1 2 3 4, "
                                         "standby-only 2 (since epoch 6), coordinator 1 (every "
                                         "node that answered reports it)"));
    if (rc || getenv("PEEK"))
        printf("\n%s\n", C.out);
    rc = clu_run(&C, "ninesctl", 0, "status --json");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"agreed\":true,\"standby_only\":[2],"
                                         "\"standby_since\":[6]}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"coordinator\":1,\"standby_only\":[2],"
                                         "\"standby_since\":[6]},\"set\":"));
    rc = clu_run(&C, "ninesctl", 0, "replicas");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "roles: node set epoch 6, current 1 2 3 4, "
                                         "standby-only 2 (since epoch 6);"));
    CU_ASSERT_PTR_NULL(strstr(C.out, "claims the primary role, the node set names"));
    if (getenv("PEEK"))
        printf("\n%s\n", C.out);
    rc = clu_run(&C, "ninesctl", 0, "replicas --json");
    CU_ASSERT_PTR_NOT_NULL(strstr(C.out, "\"standby_only\":[2],\"standby_since\":[6]}"));
    for (uint32_t f = 0; f < NFRAGS; f++) {
        char want[96];
        const struct dict_frag *fr = frag(f);
        uint32_t p = fr->primary == 2 ? fr->standby : fr->primary;
        uint32_t sb = fr->primary == 2 ? 2 : fr->standby;
        snprintf(want, sizeof want, "\"role_state\":\"both\",\"roles\":{\"primary\":%u,"
                 "\"standby\":%u,", p, sb);
        CU_ASSERT_PTR_NOT_NULL(strstr(C.out, want));
    }

    /* fragment 0's two replicas both standby-only: the one current since
     * the earlier epoch is its primary, whichever the dictionary names */
    const struct dict_frag *f0 = frag(0);
    for (int earlier_is_dict_primary = 0; earlier_is_dict_primary < 2; earlier_is_dict_primary++) {
        for (uint32_t i = 1; i <= N; i++) {
            s.epoch[i] = 9;
            s.standby_only[i] = B(f0->primary) | B(f0->standby);
            memset(s.since[i], 0, sizeof s.since[i]);
            s.since[i][f0->primary] = earlier_is_dict_primary ? 6 : 8;
            s.since[i][f0->standby] = earlier_is_dict_primary ? 8 : 6;
        }
        set_scenario(&s);
        rc = clu_run(&C, "ninesctl", 0, "replicas --json");
        uint32_t p = earlier_is_dict_primary ? f0->primary : f0->standby;
        uint32_t sb = earlier_is_dict_primary ? f0->standby : f0->primary;
        char want[160];
        snprintf(want, sizeof want, "{\"table\":%u,\"frag\":0,", table_id);
        const char *row = strstr(C.out, want);
        CU_ASSERT_PTR_NOT_NULL_FATAL(row);
        snprintf(want, sizeof want, "\"role_state\":\"both\",\"roles\":{\"primary\":%u,"
                 "\"standby\":%u,", p, sb);
        const char *roles = strstr(row, want), *next = strstr(row + 1, "{\"table\":");
        CU_ASSERT(roles && (!next || roles < next)); /* in fragment 0's row */
    }
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"no_nodeset", test_no_nodeset},
        {"all_current", test_all_current},
        {"node_evicted_still_claiming", test_node_evicted_still_claiming},
        {"rebuilt_standby_only", test_rebuilt_standby_only},
        {NULL, NULL},
    };
    cu_add_suite("ctl_nodeset", setup, teardown, cases);
}
