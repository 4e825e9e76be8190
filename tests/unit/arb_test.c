/* The arbitrator (arbitrator/README.md): the grant rule as a pure function
 * (one set per epoch, grant again to the same set, refuse another set
 * naming the granted one, refuse a stale epoch, refuse malformed or
 * foreign requests); the grant record (round trip, every corruption
 * refused with a detail, atomic replacement, a leftover temp file); and the
 * server in this process on loopback TCP driven by arb_vote / arb_status
 * (both sides of a 2|2 split racing, a restart keeping the grant, a failed
 * write refusing rather than granting, bad input, the lock, the timeout of
 * arb_vote against an arbitrator that never answers). */
#include "arbitrator/arb.h"
#include "arbitrator/arb_grant.h"
#include "crc32c.h"
#include "cu_test.h"
#include "nassert.h"
#include "nclock.h"
#include "net/net.h"
#include "nines/errors.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define B(id) ((uint64_t)1 << ((id) - 1))
#define ALL4 (B(1) | B(2) | B(3) | B(4))
#define SIDE_A (B(1) | B(3))
#define SIDE_B (B(2) | B(4))

static struct arb_req req(uint32_t node, uint64_t prev, uint64_t epoch, uint64_t members,
                          uint32_t coord)
{
    return (struct arb_req){.cluster = "c4", .node = node, .prev_members = prev,
                            .has_proposal = 1, .epoch = epoch, .members = members,
                            .current = members, .coordinator = coord};
}

/* Apply a decision the way the server does (record on a new grant). */
static struct arb_decision decide(struct arb_grant *g, struct arb_req r)
{
    struct arb_decision d;
    arb_decide(g, "c4", ALL4, &r, 1234, &d);
    if (d.verdict == ARB_GRANT_NEW)
        *g = d.next;
    return d;
}

/* ---- the rule ---- */

static void test_rule_one_set_per_epoch(void)
{
    struct arb_grant g = {0};
    struct arb_decision d = decide(&g, req(1, ALL4, 5, SIDE_A, 1));
    CU_ASSERT_EQUAL(d.verdict, ARB_GRANT_NEW);
    CU_ASSERT_EQUAL(d.epoch, 5);
    CU_ASSERT_EQUAL(d.members, SIDE_A);
    CU_ASSERT_EQUAL(g.epoch, 5);
    CU_ASSERT_EQUAL(g.members, SIDE_A);
    CU_ASSERT_EQUAL(g.prev_members, ALL4);
    CU_ASSERT_EQUAL(g.node, 1);
    CU_ASSERT_STRING_EQUAL(g.cluster, "c4");
    /* the other side of the split, same epoch: refused, naming the grant */
    d = decide(&g, req(2, ALL4, 5, SIDE_B, 2));
    CU_ASSERT_EQUAL(d.verdict, ARB_REFUSE);
    CU_ASSERT_EQUAL(d.error, NINES_ESTATE);
    CU_ASSERT_EQUAL(d.epoch, 5);
    CU_ASSERT_EQUAL(d.members, SIDE_A);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "epoch 5 is already granted to members {1,3}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "node 2 asks for {2,4}"));
    /* the coordinator retrying, and its successor proposing the same side */
    d = decide(&g, req(1, ALL4, 5, SIDE_A, 1));
    CU_ASSERT_EQUAL(d.verdict, ARB_GRANT_AGAIN);
    d = decide(&g, req(3, ALL4, 5, SIDE_A, 3));
    CU_ASSERT_EQUAL(d.verdict, ARB_GRANT_AGAIN);
    CU_ASSERT_EQUAL(d.members, SIDE_A);
    CU_ASSERT_EQUAL(g.node, 1); /* the record keeps the first asker */
    /* a later epoch replaces the record; the old one is now stale */
    d = decide(&g, req(1, SIDE_A | B(2), 6, B(1) | B(2), 1));
    CU_ASSERT_EQUAL(d.verdict, ARB_GRANT_NEW);
    CU_ASSERT_EQUAL(g.epoch, 6);
    d = decide(&g, req(2, ALL4, 5, SIDE_B, 2));
    CU_ASSERT_EQUAL(d.verdict, ARB_REFUSE);
    CU_ASSERT_EQUAL(d.error, NINES_ESTALE);
    CU_ASSERT_EQUAL(d.epoch, 6);
    CU_ASSERT_EQUAL(d.members, B(1) | B(2));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "epoch 5 is stale"));
    /* even the set once granted for 5 is stale now */
    d = decide(&g, req(1, ALL4, 5, SIDE_A, 1));
    CU_ASSERT_EQUAL(d.error, NINES_ESTALE);
}

/* Both orders of the 2|2 race: exactly one side is granted each time. */
static void test_rule_race_both_orders(void)
{
    for (int first = 0; first < 2; first++) {
        struct arb_grant g = {0};
        struct arb_req a = req(1, ALL4, 2, SIDE_A, 1), b = req(2, ALL4, 2, SIDE_B, 2);
        struct arb_decision d1 = decide(&g, first ? b : a);
        struct arb_decision d2 = decide(&g, first ? a : b);
        CU_ASSERT_EQUAL(d1.verdict, ARB_GRANT_NEW);
        CU_ASSERT_EQUAL(d2.verdict, ARB_REFUSE);
        CU_ASSERT_EQUAL(d2.members, first ? SIDE_B : SIDE_A);
    }
}

static void test_rule_refuses_bad_requests(void)
{
    struct arb_grant g = {0};
    struct {
        struct arb_req r;
        int error;
        const char *text;
    } cases[] = {
        {req(1, ALL4, 5, SIDE_A, 1), NINES_ECONFIG, "serves cluster 'c4'"},
        {req(1, ALL4, 5, SIDE_A, 1), NINES_EINVAL, "carries no proposal"},
        {req(9, ALL4, 5, SIDE_A, 1), NINES_EINVAL, "node 9 is not a node"},
        {req(0, ALL4, 5, SIDE_A, 1), NINES_EINVAL, "node 0 is not a node"},
        {req(1, ALL4, 0, SIDE_A, 1), NINES_EINVAL, "epoch 0"},
        {req(1, ALL4, 5, 0, 1), NINES_EINVAL, "proposes members {}"},
        {req(1, ALL4, 5, SIDE_A | B(7), 1), NINES_EINVAL, "naming unconfigured nodes"},
        {req(1, 0, 5, SIDE_A, 1), NINES_EINVAL, "previous members {}"},
        {req(1, ALL4, 5, SIDE_A, 1), NINES_EINVAL, "not a subset of members"},
        {req(1, ALL4, 5, SIDE_A, 2), NINES_EINVAL, "coordinator must both be members"},
        {req(2, ALL4, 5, SIDE_A, 1), NINES_EINVAL, "coordinator must both be members"},
        {req(1, ALL4, 5, B(1), 1), NINES_EINVAL, "less than half"},
        {req(1, ALL4, 5, SIDE_A, 64), NINES_EINVAL, "coordinator must both be members"},
    };
    cases[0].r.cluster = "other";
    cases[1].r.has_proposal = 0;
    cases[8].r.current = ALL4;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct arb_decision d = decide(&g, cases[i].r);
        CU_ASSERT_EQUAL(d.verdict, ARB_REFUSE);
        CU_ASSERT_EQUAL(d.error, cases[i].error);
        if (!strstr(d.reason, cases[i].text)) {
            printf("\n  case %zu: reason '%s' lacks '%s'\n", i, d.reason, cases[i].text);
            CU_FAIL("refusal does not say why");
        }
    }
    CU_ASSERT_EQUAL(g.epoch, 0); /* nothing recorded by any of them */
    /* a NULL cluster name is the empty name, refused, not a crash */
    struct arb_req r = req(1, ALL4, 5, SIDE_A, 1);
    r.cluster = NULL;
    CU_ASSERT_EQUAL(decide(&g, r).error, NINES_ECONFIG);
    /* a joiner beside exactly half of the previous set is allowed; beside
     * less than half it is not */
    struct arb_decision d = decide(&g, req(1, SIDE_A | B(2), 5, B(1) | B(4), 1));
    CU_ASSERT_EQUAL(d.verdict, ARB_REFUSE); /* keeps 1 of 3 */
    d = decide(&g, req(1, B(1) | B(2), 5, B(1) | B(3), 1));
    CU_ASSERT_EQUAL(d.verdict, ARB_GRANT_NEW); /* keeps 1 of 2, node 3 joins */
}

static void test_set_str(void)
{
    char b[64];
    CU_ASSERT_STRING_EQUAL(arb_set_str(0, b, sizeof b), "{}");
    CU_ASSERT_STRING_EQUAL(arb_set_str(B(1) | B(3) | B(64), b, sizeof b), "{1,3,64}");
    char tiny[4];
    arb_set_str(ALL4, tiny, sizeof tiny); /* truncated, terminated */
    CU_ASSERT_EQUAL(strlen(tiny), 3);
}

/* ---- the record ---- */

static struct arb_grant sample(void)
{
    struct arb_grant g = {.epoch = 7, .members = SIDE_A, .current = B(1), .prev_members = ALL4,
                          .coordinator = 1, .node = 3, .granted_us = 1700000000123456ull};
    snprintf(g.cluster, sizeof g.cluster, "c4");
    return g;
}

static void put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the CRC after an edit, so the structure checks are reached. */
static void reseal(uint8_t *rec) { put32le(rec + 132, crc32c(0, rec, 132)); }

static void test_record_roundtrip(void)
{
    struct arb_grant g = sample(), back;
    uint8_t rec[ARB_REC_SIZE];
    arb_rec_encode(&g, rec);
    CU_ASSERT_EQUAL(memcmp(rec, "NINESARB", 8), 0);
    CU_ASSERT_EQUAL(rec[8], 1);     /* version, little-endian */
    CU_ASSERT_EQUAL(rec[12], 136);  /* length */
    CU_ASSERT_EQUAL(rec[16], 7);    /* epoch */
    CU_ASSERT_EQUAL(rec[24], 0x05); /* members {1,3} */
    CU_ASSERT_EQUAL(memcmp(rec + 64, "c4", 3), 0);
    CU_ASSERT_EQUAL_FATAL(arb_rec_decode(rec, sizeof rec, "c4", "t", &back), 0);
    CU_ASSERT_EQUAL(back.epoch, 7);
    CU_ASSERT_EQUAL(back.members, SIDE_A);
    CU_ASSERT_EQUAL(back.current, B(1));
    CU_ASSERT_EQUAL(back.prev_members, ALL4);
    CU_ASSERT_EQUAL(back.coordinator, 1);
    CU_ASSERT_EQUAL(back.node, 3);
    CU_ASSERT_EQUAL(back.granted_us, 1700000000123456ull);
    CU_ASSERT_STRING_EQUAL(back.cluster, "c4");
}

static void test_record_corruption_refused(void)
{
    struct arb_grant g = sample(), back;
    uint8_t good[ARB_REC_SIZE], rec[ARB_REC_SIZE + 8];
    arb_rec_encode(&g, good);
    /* every single flipped bit is caught (CRC, or magic before it) */
    for (size_t i = 0; i < ARB_REC_SIZE; i++) {
        memcpy(rec, good, sizeof good);
        rec[i] ^= 0x10;
        int rc = arb_rec_decode(rec, ARB_REC_SIZE, "c4", "f", &back);
        if (rc != NINES_ECORRUPT && rc != NINES_EVERSION) {
            printf("\n  byte %zu flipped: rc %d\n", i, rc);
            CU_FAIL("a flipped bit was not refused");
        }
    }
    memcpy(rec, good, sizeof good);
    rec[132] ^= 1;
    CU_ASSERT_EQUAL(arb_rec_decode(rec, ARB_REC_SIZE, "c4", "f.grant", &back), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "f.grant: CRC-32C mismatch"));
    /* structure errors behind a valid CRC */
    memcpy(rec, good, sizeof good);
    put32le(rec + 8, 2);
    reseal(rec);
    CU_ASSERT_EQUAL(arb_rec_decode(rec, ARB_REC_SIZE, "c4", "f", &back), NINES_EVERSION);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "format version 2"));
    memcpy(rec, good, sizeof good);
    put32le(rec + 128, 1);
    reseal(rec);
    CU_ASSERT_EQUAL(arb_rec_decode(rec, ARB_REC_SIZE, "c4", "f", &back), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "reserved"));
    memcpy(rec, good, sizeof good);
    memset(rec + 64, 'x', 64);
    reseal(rec);
    CU_ASSERT_EQUAL(arb_rec_decode(rec, ARB_REC_SIZE, "c4", "f", &back), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "not terminated"));
    memcpy(rec, good, sizeof good);
    memset(rec + 16, 0, 8); /* epoch 0 */
    reseal(rec);
    CU_ASSERT_EQUAL(arb_rec_decode(rec, ARB_REC_SIZE, "c4", "f", &back), NINES_ECORRUPT);
    /* sizes */
    CU_ASSERT_EQUAL(arb_rec_decode(good, 10, "c4", "f", &back), NINES_ECORRUPT);
    CU_ASSERT_EQUAL(arb_rec_decode(good, ARB_REC_SIZE - 1, "c4", "f", &back), NINES_ECORRUPT);
    memcpy(rec, good, sizeof good);
    memset(rec + ARB_REC_SIZE, 0, 8);
    CU_ASSERT_EQUAL(arb_rec_decode(rec, sizeof rec, "c4", "f", &back), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "a version-1 record is 136 bytes"));
    /* another cluster's record */
    CU_ASSERT_EQUAL(arb_rec_decode(good, ARB_REC_SIZE, "other", "f", &back), NINES_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "records grants of cluster 'c4'"));
}

static char tdir[64];

static int mk_tdir(void)
{
    snprintf(tdir, sizeof tdir, "/tmp/nines_arb_XXXXXX");
    return mkdtemp(tdir) ? 0 : 1;
}

static int rm_tdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tdir);
    return system(cmd) == 0 ? 0 : 1;
}

static void test_record_file(void)
{
    char path[128], tmp[140];
    snprintf(path, sizeof path, "%s/rec/%s", tdir, ARB_FILE_NAME);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char dir[100];
    snprintf(dir, sizeof dir, "%s/rec", tdir);
    mkdir(dir, 0755);
    struct arb_grant g = sample(), back;
    /* missing: nothing granted */
    CU_ASSERT_EQUAL(arb_rec_load(path, "c4", &back), 0);
    CU_ASSERT_EQUAL(back.epoch, 0);
    CU_ASSERT_EQUAL_FATAL(arb_rec_store(path, &g), 0);
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    CU_ASSERT_EQUAL(arb_rec_load(path, "c4", &back), 0);
    CU_ASSERT_EQUAL(back.epoch, 7);
    CU_ASSERT_EQUAL(back.members, SIDE_A);
    /* a failed write leaves the old record */
    struct arb_grant g2 = g;
    g2.epoch = 8;
    nines_fault_arm("arb_store", 1);
    CU_ASSERT_EQUAL(arb_rec_store(path, &g2), NINES_EIO);
    CU_ASSERT_EQUAL(arb_rec_load(path, "c4", &back), 0);
    CU_ASSERT_EQUAL(back.epoch, 7);
    /* a crash between the temp file and its rename: the temp is removed at
     * load, the old record holds */
    nines_fault_arm("arb_store_rename", 1);
    CU_ASSERT_EQUAL(arb_rec_store(path, &g2), NINES_EIO);
    CU_ASSERT_EQUAL(access(tmp, F_OK), 0);
    CU_ASSERT_EQUAL(arb_rec_load(path, "c4", &back), 0);
    CU_ASSERT_EQUAL(back.epoch, 7);
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    /* a garbage file: refused, naming it */
    FILE *f = fopen(path, "w");
    fputs("hello", f);
    fclose(f);
    CU_ASSERT_EQUAL(arb_rec_load(path, "c4", &back), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), path));
    /* a huge one too */
    f = fopen(path, "w");
    for (int i = 0; i < 5000; i++)
        fputc('x', f);
    fclose(f);
    CU_ASSERT_EQUAL(arb_rec_load(path, "c4", &back), NINES_ECORRUPT);
}

/* ---- the server, in this process on loopback ---- */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    uint16_t p = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        p = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return p;
}

static struct nines_conf conf;
static char srv_dir[100];

static int conf_for(uint16_t port)
{
    char text[512];
    snprintf(text, sizeof text,
             "cluster c4\narbitrator 127.0.0.1:%u\n"
             "node 1 site 0 127.0.0.1:1\nnode 2 site 1 127.0.0.1:2\n"
             "node 3 site 0 127.0.0.1:3\nnode 4 site 1 127.0.0.1:4\n", port);
    return nines_conf_parse(text, "arb_test.conf", &conf);
}

struct runner {
    struct arb_srv *s;
    pthread_t th;
    atomic_int stop;
};

static void *run_srv(void *arg)
{
    struct runner *r = arg;
    while (!atomic_load(&r->stop))
        if (arb_srv_poll(r->s, 20))
            break;
    return NULL;
}

static int start(struct runner *r)
{
    memset(r, 0, sizeof *r);
    int rc = arb_srv_open(&r->s, &conf, srv_dir);
    if (rc)
        return rc;
    pthread_create(&r->th, NULL, run_srv, r);
    return 0;
}

static void stop(struct runner *r)
{
    atomic_store(&r->stop, 1);
    arb_srv_wake(r->s);
    pthread_join(r->th, NULL);
    arb_srv_close(r->s);
    r->s = NULL;
}

static Nines__NodeSet nodeset(uint64_t epoch, uint64_t members, uint32_t coord)
{
    Nines__NodeSet ns = NINES__NODE_SET__INIT;
    ns.epoch = epoch;
    ns.members = members;
    ns.current = members;
    ns.coordinator = coord;
    return ns;
}

static int setup_srv(void)
{
    if (mk_tdir())
        return 1;
    snprintf(srv_dir, sizeof srv_dir, "%s/arb", tdir);
    uint16_t port = free_port();
    return port && conf_for(port) == 0 ? 0 : 1;
}

static void test_srv_split_and_restart(void)
{
    struct runner r;
    CU_ASSERT_EQUAL_FATAL(start(&r), 0);
    struct arb_answer a;
    Nines__NodeSet pa = nodeset(2, SIDE_A, 1), pb = nodeset(2, SIDE_B, 2);
    /* status before anything is granted */
    struct arb_status st;
    CU_ASSERT_EQUAL(arb_status(&conf, 2000, &st), 0);
    CU_ASSERT_EQUAL(st.epoch, 0);
    /* side A first: granted; side B: refused naming A's set */
    CU_ASSERT_EQUAL(arb_vote(&conf, 1, ALL4, &pa, 2000, &a), 0);
    CU_ASSERT_TRUE(a.granted);
    CU_ASSERT_EQUAL(a.epoch, 2);
    CU_ASSERT_EQUAL(a.members, SIDE_A);
    CU_ASSERT_EQUAL(arb_vote(&conf, 2, ALL4, &pb, 2000, &a), 0);
    CU_ASSERT_FALSE(a.granted);
    CU_ASSERT_EQUAL(a.error, NINES_ESTATE);
    CU_ASSERT_EQUAL(a.members, SIDE_A);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.reason, "already granted to members {1,3}"));
    /* A's successor asks for the same set: granted again */
    pa.coordinator = 3;
    CU_ASSERT_EQUAL(arb_vote(&conf, 3, ALL4, &pa, 2000, &a), 0);
    CU_ASSERT_TRUE(a.granted);
    CU_ASSERT_EQUAL(arb_status(&conf, 2000, &st), 0);
    CU_ASSERT_EQUAL(st.epoch, 2);
    CU_ASSERT_EQUAL(st.members, SIDE_A);
    CU_ASSERT_EQUAL(st.votes, 3);
    CU_ASSERT_EQUAL(st.grants, 1);
    CU_ASSERT_EQUAL(st.refusals, 1);
    /* restart: the record is read back; B is still refused */
    stop(&r);
    CU_ASSERT_EQUAL_FATAL(start(&r), 0);
    CU_ASSERT_EQUAL(arb_vote(&conf, 4, ALL4, &pb, 2000, &a), 0);
    CU_ASSERT_FALSE(a.granted);
    CU_ASSERT_EQUAL(a.members, SIDE_A);
    CU_ASSERT_EQUAL(arb_status(&conf, 2000, &st), 0);
    CU_ASSERT_EQUAL(st.epoch, 2);
    /* a failed write refuses the grant and records nothing */
    Nines__NodeSet p3 = nodeset(3, B(2) | B(1), 1);
    nines_fault_arm("arb_store", 1);
    CU_ASSERT_EQUAL(arb_vote(&conf, 1, SIDE_A | B(2), &p3, 2000, &a), 0);
    CU_ASSERT_FALSE(a.granted);
    CU_ASSERT_EQUAL(a.error, NINES_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.reason, "cannot record its grant"));
    Nines__NodeSet p3b = nodeset(3, SIDE_A, 3);
    CU_ASSERT_EQUAL(arb_vote(&conf, 3, SIDE_A | B(2), &p3b, 2000, &a), 0);
    CU_ASSERT_TRUE(a.granted); /* epoch 3 was still free */
    /* stale */
    CU_ASSERT_EQUAL(arb_vote(&conf, 2, ALL4, &pb, 2000, &a), 0);
    CU_ASSERT_FALSE(a.granted);
    CU_ASSERT_EQUAL(a.error, NINES_ESTALE);
    CU_ASSERT_EQUAL(a.epoch, 3);
    /* a second arbitrator on the same folder is refused */
    struct arb_srv *twin = NULL;
    CU_ASSERT_EQUAL(arb_srv_open(&twin, &conf, srv_dir), NINES_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "another arbitrator"));
    stop(&r);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* One raw frame: length, then an Envelope written by hand (version 1,
 * sender 0, epoch 0, type, body bytes as given: they need not decode). */
static int raw_frame(int fd, uint32_t type, const uint8_t *body, size_t blen)
{
    uint8_t buf[512];
    size_t n = 4;
    buf[n++] = 0x08;
    buf[n++] = 1;
    buf[n++] = 0x20;
    n += put_varint(buf + n, type);
    if (blen) {
        buf[n++] = 0x2a;
        n += put_varint(buf + n, blen);
        memcpy(buf + n, body, blen);
        n += blen;
    }
    put32le(buf, (uint32_t)(n - 4));
    return write(fd, buf, n) == (ssize_t)n ? 0 : -1;
}

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(conf.arbitrator_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int raw_closed(int fd)
{
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ;
    return n == 0;
}

/* Garbage, an undecodable vote, a vote of another cluster, a node HELLO,
 * an unknown type: each refused or closed; the arbitrator keeps serving. */
static void test_srv_bad_input(void)
{
    struct runner r;
    CU_ASSERT_EQUAL_FATAL(start(&r), 0);
    static const char *garbage[] = {"GET / HTTP/1.0\r\n\r\n", "\xff\xff\xff\x7f", "\x05\x00"};
    for (size_t k = 0; k < 3; k++) {
        int fd = raw_connect();
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT(write(fd, garbage[k], strlen(garbage[k])) > 0);
        shutdown(fd, SHUT_WR);
        CU_ASSERT_TRUE(raw_closed(fd));
        close(fd);
    }
    /* an undecodable ARB_VOTE_REQ after a good HELLO: refused with EPROTO */
    struct net_client *cl;
    CU_ASSERT_EQUAL_FATAL(net_client_connect(&cl, "127.0.0.1", conf.arbitrator_port, "c4", 2000),
                          0);
    Nines__ArbVoteReq bad = NINES__ARB_VOTE_REQ__INIT;
    bad.node = 1;
    bad.cluster = "c4";
    CU_ASSERT_EQUAL(net_client_send(cl, NINES__MSG_TYPE__ARB_VOTE_REQ, &bad.base), 0);
    struct net_msg_in in;
    CU_ASSERT_EQUAL(net_client_recv(cl, &in, 2000), 0);
    CU_ASSERT_EQUAL(in.type, NINES__MSG_TYPE__ARB_VOTE_REF);
    Nines__ArbVoteRef *ref = nines__arb_vote_ref__unpack(NULL, in.body_len, in.body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(ref->error, NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref->reason, "no proposal"));
    nines__arb_vote_ref__free_unpacked(ref, NULL);
    net_client_close(cl);
    /* a body that is not protobuf */
    int fd = raw_connect();
    Nines__HelloReq h = NINES__HELLO_REQ__INIT;
    h.cluster = "c4";
    h.role = NINES__ROLE__ROLE_CLIENT;
    uint8_t hb[64];
    size_t hl = nines__hello_req__pack(&h, hb);
    CU_ASSERT_EQUAL(raw_frame(fd, NINES__MSG_TYPE__HELLO_REQ, hb, hl), 0);
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(raw_frame(fd, NINES__MSG_TYPE__ARB_VOTE_REQ, junk, sizeof junk), 0);
    /* then a type the arbitrator does not serve: closed */
    CU_ASSERT_EQUAL(raw_frame(fd, NINES__MSG_TYPE__TXN_REQ, NULL, 0), 0);
    CU_ASSERT_TRUE(raw_closed(fd));
    close(fd);
    /* another cluster's client: refused at HELLO */
    CU_ASSERT_NOT_EQUAL(net_client_connect(&cl, "127.0.0.1", conf.arbitrator_port, "zz", 2000),
                        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "cluster 'zz'"));
    /* still granting */
    Nines__NodeSet p = nodeset(9, SIDE_A, 1);
    struct arb_answer a;
    CU_ASSERT_EQUAL(arb_vote(&conf, 1, ALL4, &p, 2000, &a), 0);
    CU_ASSERT_TRUE(a.granted);
    /* still serving after all of it */
    struct arb_status st;
    CU_ASSERT_EQUAL(arb_status(&conf, 2000, &st), 0);
    CU_ASSERT_EQUAL(st.epoch, 9);
    stop(&r);
}

/* A corrupt record keeps the arbitrator from starting, naming the file. */
static void test_srv_corrupt_record_refused(void)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", srv_dir, ARB_FILE_NAME);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t b = 0;
    CU_ASSERT_EQUAL(pread(fd, &b, 1, 20), 1);
    b ^= 0x40;
    CU_ASSERT_EQUAL(pwrite(fd, &b, 1, 20), 1);
    close(fd);
    struct arb_srv *s = NULL;
    CU_ASSERT_EQUAL(arb_srv_open(&s, &conf, srv_dir), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "CRC-32C mismatch"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), ARB_FILE_NAME));
    CU_ASSERT_PTR_NULL(s);
}

/* arb_vote never waits longer than asked: an arbitrator address that
 * accepts but never answers (a listening socket nobody serves), and one
 * where nothing listens. */
static void test_vote_timeout(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT_FATAL(listen(lfd, 4) == 0);
    getsockname(lfd, (struct sockaddr *)&a, &len);
    struct nines_conf mute = conf;
    mute.arbitrator_port = ntohs(a.sin_port);
    Nines__NodeSet p = nodeset(2, SIDE_A, 1);
    struct arb_answer ans;
    uint64_t t0 = nclock_ms();
    int rc = arb_vote(&mute, 1, ALL4, &p, 300, &ans);
    uint64_t took = nclock_ms() - t0;
    CU_ASSERT_EQUAL(rc, NINES_ETIMEDOUT);
    CU_ASSERT_FALSE(ans.granted);
    CU_ASSERT_PTR_NOT_NULL(strstr(ans.reason, "timed out"));
    CU_ASSERT(took < 300 + 700); /* the bound, with room for a loaded machine */
    close(lfd);
    /* nothing listening: an error at once, not a grant */
    mute.arbitrator_port = free_port();
    rc = arb_vote(&mute, 1, ALL4, &p, 300, &ans);
    CU_ASSERT(rc == NINES_EUNREACHABLE || rc == NINES_ECLOSED);
    CU_ASSERT_FALSE(ans.granted);
    CU_ASSERT_PTR_NOT_NULL(strstr(ans.reason, "arbitrator 127.0.0.1"));
    /* no arbitrator configured */
    mute.has_arbitrator = false;
    CU_ASSERT_EQUAL(arb_vote(&mute, 1, ALL4, &p, 300, &ans), NINES_ECONFIG);
    CU_ASSERT_EQUAL(arb_vote(&conf, 1, ALL4, NULL, 300, &ans), NINES_EINVAL);
}

void cu_register(void)
{
    static const struct cu_case rule[] = {
        {"one_set_per_epoch", test_rule_one_set_per_epoch},
        {"race_both_orders", test_rule_race_both_orders},
        {"refuses_bad_requests", test_rule_refuses_bad_requests},
        {"set_str", test_set_str},
        {NULL, NULL},
    };
    cu_add_suite("arb_rule", NULL, NULL, rule);
    static const struct cu_case rec[] = {
        {"roundtrip", test_record_roundtrip},
        {"corruption_refused", test_record_corruption_refused},
        {"file", test_record_file},
        {NULL, NULL},
    };
    cu_add_suite("arb_record", mk_tdir, rm_tdir, rec);
    static const struct cu_case srv[] = {
        {"split_and_restart", test_srv_split_and_restart},
        {"bad_input", test_srv_bad_input},
        {"corrupt_record_refused", test_srv_corrupt_record_refused},
        {"vote_timeout", test_vote_timeout},
        {NULL, NULL},
    };
    cu_add_suite("arb_server", setup_srv, rm_tdir, srv);
}
