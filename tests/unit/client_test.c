/* Client library against fake servers (threads with a listening socket on
 * 127.0.0.1 speaking HELLO + TXN_REQ / TXN_CONF / TXN_REF through the net
 * envelope codec): pipelining with out-of-order answers, error mapping,
 * connection loss and failover, local rejection of oversized requests,
 * timeouts, bad frames, interactive transactions with buffered ops. */
#include "cu_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arena.h"
#include "net/net.h"
#include "nines/nines.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

enum fake_mode {
    FAKE_ECHO,         /* answer each request at once: value = aid + delta */
    FAKE_REVERSE,      /* collect `batch` requests, answer them in reverse order */
    FAKE_REF,          /* TXN_REF(err, "duplicate key 7 in account") */
    FAKE_CLOSE,        /* close the connection after reading one request */
    FAKE_SILENT,       /* read requests, never answer */
    FAKE_ZERO_FRAME,   /* answer with a zero-length frame */
    FAKE_GARBAGE_ENV,  /* answer with a frame that is no Envelope */
    FAKE_BAD_BODY,     /* TXN_CONF whose body does not decode */
    FAKE_HUGE_LEN,     /* a length prefix above max_frame_bytes */
    FAKE_TXN,          /* interactive: results per op, GET returns key + 100 */
    FAKE_CLOSE_N,      /* read `batch` requests (keys recorded in FO), then close */
    FAKE_FO,           /* failover node: outcome questions answered by FO's script,
                        * requests echoed with txn 2000 + aid */
};

/* What the failover fakes share: the keys node 1 took (seq -> aid), and
 * what node 2 saw. The outcome of a key is scripted by its aid % 10:
 * 0 committed (txn 1000 + aid, value aid + delta), 1 not committed,
 * 2 aborted with EDEADLOCK, 3 aborted with ECLOSED, 4 unknown,
 * 7 in progress the first time it is asked, then committed. */
#define FO_MAX 64
static struct {
    pthread_mutex_t mu;
    uint64_t client;
    uint64_t seq[FO_MAX];
    int64_t aid[FO_MAX], delta[FO_MAX];
    int asked[FO_MAX];
    int n;
    /* node 2: requests re-sent (seq, attempt), questions (keys, sent_to) */
    uint64_t resent_seq[FO_MAX];
    uint32_t resent_attempt[FO_MAX];
    int nresent;
    int questions;
    uint64_t last_sent_to;
    uint64_t last_client;
} FO = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct fake {
    atomic_int mode;           /* enum fake_mode; tests change it while serving */
    uint32_t node_id;
    atomic_int batch;
    atomic_int ref_err;
    int lfd;
    uint16_t port;
    pthread_t th;
    atomic_int stop;
    /* what the server saw (read after the client call returns) */
    atomic_int nreq;
    atomic_int last_nops;
    atomic_int last_end;
    atomic_ullong last_txn;
};

static int fk_read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int k = poll(&pf, 1, 100);
        if (k <= 0)
            return k == 0 ? 1 : -1;   /* 1: nothing yet */
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Read one frame into buf (cap); 0 ok, 1 nothing within 100 ms, -1 closed. */
static int fk_read_frame(struct fake *f, int fd, uint8_t *buf, size_t cap, size_t *len)
{
    uint8_t h[4];
    int rc;
    while ((rc = fk_read_full(fd, h, 1)) == 1)
        if (atomic_load(&f->stop))
            return -1;
    if (rc)
        return -1;
    if (fk_read_full(fd, h + 1, 3) < 0)
        return -1;
    uint32_t n = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                 (uint32_t)h[3] << 24;
    if (n > cap) {  /* drain a frame we do not keep */
        uint8_t tmp[4096];
        while (n > 0) {
            size_t k = n > sizeof tmp ? sizeof tmp : n;
            if (fk_read_full(fd, tmp, k) < 0)
                return -1;
            n -= (uint32_t)k;
        }
        *len = 0;
        return 0;
    }
    for (size_t got = 0; got < n;) {
        rc = fk_read_full(fd, buf + got, n - got);
        if (rc < 0)
            return -1;
        if (rc == 0)
            got = n;
    }
    *len = n;
    return 0;
}

static void fk_send_raw(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void fk_send(struct fake *f, int fd, uint32_t type, const ProtobufCMessage *body)
{
    size_t blen = protobuf_c_message_get_packed_size(body);
    size_t elen = net_env_size(f->node_id, 0, type, blen);
    uint8_t *p = malloc(4 + elen);
    p[0] = (uint8_t)elen;
    p[1] = (uint8_t)(elen >> 8);
    p[2] = (uint8_t)(elen >> 16);
    p[3] = (uint8_t)(elen >> 24);
    net_env_pack(p + 4, f->node_id, 0, type, body, blen);
    fk_send_raw(fd, p, 4 + elen);
    free(p);
}

static void fk_answer(struct fake *f, int fd, const Nines__TxnReq *r)
{
    Nines__TxnConf conf = NINES__TXN_CONF__INIT;
    conf.req_id = r->req_id;
    conf.txn = r->txn ? r->txn : 42;
    if (r->proc_case == NINES__TXN_REQ__PROC_TPCB)
        conf.value = r->tpcb->aid + r->tpcb->delta;
    if (atomic_load(&f->mode) != FAKE_TXN) {
        fk_send(f, fd, NINES__MSG_TYPE__TXN_CONF, &conf.base);
        return;
    }
    /* one result per op; GET/ADD/SCAN return rows built from the key */
    Nines__OpResult res[16], *pres[16];
    Nines__Row row[16], *prow[16];
    Nines__Value v[16][2], *pv[16][2];
    size_t n = r->n_ops < 16 ? r->n_ops : 16;
    for (size_t i = 0; i < n; i++) {
        nines__op_result__init(&res[i]);
        pres[i] = &res[i];
        const Nines__RecordOp *op = r->ops[i];
        if (op->op == NINES__OP_TYPE__OP_GET || op->op == NINES__OP_TYPE__OP_ADD) {
            if (op->n_key == 1 && op->key[0]->v_case == NINES__VALUE__V_I64 &&
                op->key[0]->i64 == 404) {
                res[i].status = NINES_ENOTFOUND;
                continue;
            }
            nines__row__init(&row[i]);
            nines__value__init(&v[i][0]);
            nines__value__init(&v[i][1]);
            v[i][0] = *op->key[0];
            v[i][1].v_case = NINES__VALUE__V_STR;
            v[i][1].str = op->table;
            pv[i][0] = &v[i][0];
            pv[i][1] = &v[i][1];
            row[i].values = pv[i];
            row[i].n_values = 2;
            prow[i] = &row[i];
            res[i].rows = &prow[i];
            res[i].n_rows = 1;
        }
    }
    conf.results = pres;
    conf.n_results = n;
    fk_send(f, fd, NINES__MSG_TYPE__TXN_CONF, &conf.base);
}

/* FAKE_FO: answer a TXN_OUTCOME_REQ by the script (FO). */
static void fo_answer(struct fake *f, int fd, const struct net_msg_in *m)
{
    Nines__TxnOutcomeReq *q = nines__txn_outcome_req__unpack(NULL, m->body_len, m->body);
    if (!q)
        return;
    Nines__TxnOutcomeConf conf = NINES__TXN_OUTCOME_CONF__INIT;
    Nines__KeyAnswer av[FO_MAX], *pa[FO_MAX];
    conf.req_id = q->req_id;
    conf.n_answers = q->n_keys < FO_MAX ? q->n_keys : FO_MAX;
    conf.answers = pa;
    pthread_mutex_lock(&FO.mu);
    FO.questions++;
    for (size_t i = 0; i < conf.n_answers; i++) {
        nines__key_answer__init(&av[i]);
        pa[i] = &av[i];
        const Nines__KeyQuery *k = q->keys[i];
        FO.last_sent_to = k->sent_to;
        FO.last_client = k->key->client;
        int j = 0;
        while (j < FO.n && FO.seq[j] != k->key->seq)
            j++;
        if (j == FO.n) { /* a key node 1 never took: it never ran */
            av[i].outcome = NINES__KEY_OUTCOME__KEY_NOT_COMMITTED;
            continue;
        }
        switch (FO.aid[j] % 10) {
        case 0:
            av[i].outcome = NINES__KEY_OUTCOME__KEY_COMMITTED;
            av[i].txn = 1000 + (uint64_t)FO.aid[j];
            av[i].value = FO.aid[j] + FO.delta[j];
            break;
        case 1:
            av[i].outcome = NINES__KEY_OUTCOME__KEY_NOT_COMMITTED;
            break;
        case 2:
            av[i].outcome = NINES__KEY_OUTCOME__KEY_ABORTED;
            av[i].error = NINES_EDEADLOCK;
            av[i].detail = "deadlock victim";
            break;
        case 3:
            av[i].outcome = NINES__KEY_OUTCOME__KEY_ABORTED;
            av[i].error = NINES_ECLOSED;
            break;
        case 7:
            av[i].outcome = FO.asked[j]++ ? NINES__KEY_OUTCOME__KEY_COMMITTED
                                          : NINES__KEY_OUTCOME__KEY_IN_PROGRESS;
            av[i].txn = 1000 + (uint64_t)FO.aid[j];
            av[i].value = FO.aid[j] + FO.delta[j];
            break;
        default:
            av[i].outcome = NINES__KEY_OUTCOME__KEY_UNKNOWN;
            av[i].detail = "nodes 1 and 4 did not answer";
            break;
        }
    }
    pthread_mutex_unlock(&FO.mu);
    fk_send(f, fd, NINES__MSG_TYPE__TXN_OUTCOME_CONF, &conf.base);
    nines__txn_outcome_req__free_unpacked(q, NULL);
}

static void fk_serve(struct fake *f, int fd)
{
    static _Thread_local uint8_t buf[1u << 16]; /* one per fake node thread */
    size_t len;
    if (fk_read_frame(f, fd, buf, sizeof buf, &len))
        return;
    Nines__HelloConf hc = NINES__HELLO_CONF__INIT;
    hc.node_id = f->node_id;
    hc.conn_id = 1;
    fk_send(f, fd, NINES__MSG_TYPE__HELLO_CONF, &hc.base);
    Nines__TxnReq *held[256];
    int nheld = 0;
    for (;;) {
        if (fk_read_frame(f, fd, buf, sizeof buf, &len))
            break;
        atomic_fetch_add(&f->nreq, 1);
        struct net_msg_in m;
        if (len && !net_env_parse(buf, len, &m) && m.type == NINES__MSG_TYPE__TXN_OUTCOME_REQ &&
            atomic_load(&f->mode) == FAKE_FO) {
            fo_answer(f, fd, &m);
            continue;
        }
        if (len == 0 || net_env_parse(buf, len, &m) || m.type != NINES__MSG_TYPE__TXN_REQ)
            continue;
        Nines__TxnReq *r = nines__txn_req__unpack(NULL, m.body_len, m.body);
        if (!r)
            continue;
        atomic_store(&f->last_nops, (int)r->n_ops);
        atomic_store(&f->last_end, (int)r->end);
        atomic_store(&f->last_txn, r->txn);
        static const uint8_t zero[4] = {0, 0, 0, 0};
        static const uint8_t huge[4] = {0xff, 0xff, 0xff, 0x7f};
        static const uint8_t garbage[] = {5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff};
        static const uint8_t badbody[] = {10, 0, 0, 0, 0x08, 0x01, 0x20, 0x65, 0x2a, 0x04,
                                          0x0a, 0x09, 0xff, 0xff};
        switch ((enum fake_mode)atomic_load(&f->mode)) {
        case FAKE_ECHO:
        case FAKE_TXN:
            fk_answer(f, fd, r);
            break;
        case FAKE_REVERSE:
            held[nheld++] = r;
            r = NULL;
            if (nheld >= atomic_load(&f->batch) || nheld == 256) {
                while (nheld > 0) {
                    fk_answer(f, fd, held[--nheld]);
                    nines__txn_req__free_unpacked(held[nheld], NULL);
                }
            }
            break;
        case FAKE_REF: {
            Nines__TxnRef ref = NINES__TXN_REF__INIT;
            ref.req_id = r->req_id;
            ref.error = atomic_load(&f->ref_err);
            ref.detail = "duplicate key 7 in account";
            fk_send(f, fd, NINES__MSG_TYPE__TXN_REF, &ref.base);
            break;
        }
        case FAKE_CLOSE:
            nines__txn_req__free_unpacked(r, NULL);
            return;
        case FAKE_CLOSE_N: {
            pthread_mutex_lock(&FO.mu);
            if (FO.n < FO_MAX && r->key) {
                /* a transaction's commit: scripted committed (aid 30) */
                FO.client = r->key->client;
                FO.seq[FO.n] = r->key->seq;
                FO.aid[FO.n] = r->tpcb ? r->tpcb->aid : 30;
                FO.delta[FO.n] = r->tpcb ? r->tpcb->delta : 0;
                FO.asked[FO.n++] = 0;
            }
            int took = FO.n;
            pthread_mutex_unlock(&FO.mu);
            if (took >= atomic_load(&f->batch)) {
                nines__txn_req__free_unpacked(r, NULL);
                return;
            }
            break;
        }
        case FAKE_FO:
            pthread_mutex_lock(&FO.mu);
            if (FO.nresent < FO_MAX && r->key) {
                FO.resent_seq[FO.nresent] = r->key->seq;
                FO.resent_attempt[FO.nresent++] = r->key->attempt;
            }
            pthread_mutex_unlock(&FO.mu);
            {
                Nines__TxnConf conf = NINES__TXN_CONF__INIT;
                conf.req_id = r->req_id;
                conf.txn = r->tpcb ? 2000 + (uint64_t)r->tpcb->aid : 2000;
                conf.value = r->tpcb ? r->tpcb->aid + r->tpcb->delta : 0;
                fk_send(f, fd, NINES__MSG_TYPE__TXN_CONF, &conf.base);
            }
            break;
        case FAKE_SILENT:
            break;
        case FAKE_ZERO_FRAME:
            fk_send_raw(fd, zero, sizeof zero);
            break;
        case FAKE_GARBAGE_ENV:
            fk_send_raw(fd, garbage, sizeof garbage);
            break;
        case FAKE_BAD_BODY:
            fk_send_raw(fd, badbody, sizeof badbody);
            break;
        case FAKE_HUGE_LEN:
            fk_send_raw(fd, huge, sizeof huge);
            break;
        default:
            break;
        }
        if (r)
            nines__txn_req__free_unpacked(r, NULL);
    }
    while (nheld > 0)
        nines__txn_req__free_unpacked(held[--nheld], NULL);
}

static void *fk_main(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd pf = {.fd = f->lfd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        fk_serve(f, fd);
        close(fd);
    }
    return NULL;
}

static void fk_start(struct fake *f, enum fake_mode mode, uint32_t node)
{
    memset(f, 0, sizeof *f);
    atomic_store(&f->mode, (int)mode);
    f->node_id = node;
    atomic_store(&f->batch, 1);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(f->lfd >= 0);
    int one = 1;
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CU_ASSERT_FATAL(bind(f->lfd, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT_FATAL(getsockname(f->lfd, (struct sockaddr *)&a, &len) == 0);
    CU_ASSERT_FATAL(listen(f->lfd, 8) == 0);
    f->port = ntohs(a.sin_port);
    CU_ASSERT_FATAL(pthread_create(&f->th, NULL, fk_main, f) == 0);
}

static void fk_stop(struct fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
    close(f->lfd);
}

/* Tests that need node 1 first: the list order (not spread). */
static const struct nines_connect_opts FIRST = {.flags = NINES_CONNECT_FIRST_NODE};

static nines_conn *fk_connect(struct fake *f, int timeout_ms)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", f->port);
    const char *addrs[] = {addr};
    nines_conn *c = NULL;
    int rc = nines_connect(&c, addrs, 1, "test", timeout_ms);
    if (rc)
        printf("\n  connect: %s\n", nines_errdetail());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return c;
}

/* ---- pipelining --------------------------------------------------------- */

struct pipe_req {
    int64_t aid, delta;
    int done, rc;
    int64_t value;
};

static void on_pipe(void *arg, int rc, int64_t value, const char *detail)
{
    struct pipe_req *p = arg;
    p->done++;
    p->rc = rc;
    p->value = value;
}

static void test_pipeline_out_of_order(void)
{
    struct fake f;
    fk_start(&f, FAKE_REVERSE, 3);
    atomic_store(&f.batch, 64);
    nines_conn *c = fk_connect(&f, 5000);
    struct pipe_req r[128];
    for (int i = 0; i < 128; i++) {
        r[i] = (struct pipe_req){.aid = 1000 + i, .delta = i * 3 - 50};
        CU_ASSERT_EQUAL(nines_tpcb_async(c, r[i].aid, i % 10, i / 10, r[i].delta, on_pipe, &r[i]),
                        0);
    }
    CU_ASSERT_EQUAL(nines_conn_inflight(c), 128);
    int got = 0;
    for (int turns = 0; got < 128 && turns < 1000; turns++) {
        int n = nines_poll(c, 100);
        CU_ASSERT(n >= 0);
        got += n > 0 ? n : 0;
    }
    CU_ASSERT_EQUAL(got, 128);
    for (int i = 0; i < 128; i++) {
        CU_ASSERT_EQUAL(r[i].done, 1);
        CU_ASSERT_EQUAL(r[i].rc, 0);
        CU_ASSERT_EQUAL(r[i].value, r[i].aid + r[i].delta);
    }
    CU_ASSERT_EQUAL(nines_conn_inflight(c), 0);
    CU_ASSERT_EQUAL(atomic_load(&f.nreq), 128);
    /* the blocking form on the same connection still works */
    atomic_store(&f.batch, 1);
    nines_close(c);
    fk_stop(&f);
}

/* ---- errors ------------------------------------------------------------- */

static void test_error_mapping(void)
{
    struct fake f;
    fk_start(&f, FAKE_REF, 2);
    atomic_store(&f.ref_err, NINES_EEXIST);
    nines_conn *c = fk_connect(&f, 5000);
    int64_t bal = 0;
    CU_ASSERT_EQUAL(nines_tpcb(c, 7, 1, 0, 5, &bal), NINES_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "duplicate key 7 in account"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "duplicate key 7"));
    struct pipe_req p = {0};
    CU_ASSERT_EQUAL(nines_two_upd_async(c, 1, 2, 3, on_pipe, &p), 0);
    while (!p.done)
        CU_ASSERT_FATAL(nines_poll(c, 100) >= 0);
    CU_ASSERT_EQUAL(p.rc, NINES_EEXIST);
    nines_close(c);
    fk_stop(&f);
    /* a code outside the error space becomes a protocol error */
    fk_start(&f, FAKE_REF, 2);
    atomic_store(&f.ref_err, 5);
    c = fk_connect(&f, 5000);
    CU_ASSERT_EQUAL(nines_tpcb(c, 7, 1, 0, 5, &bal), NINES_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "invalid error code 5"));
    nines_close(c);
    fk_stop(&f);
}

static void test_argument_errors(void)
{
    struct fake f;
    fk_start(&f, FAKE_TXN, 2);
    nines_conn *c = fk_connect(&f, 5000);
    nines_txn *t;
    CU_ASSERT_EQUAL(nines_txn_begin(c, &t), 0);
    struct nines_value v[2] = {nines_v_int64(1), nines_v_string("a\0b", 3)};
    CU_ASSERT_EQUAL(nines_txn_insert(t, "t1", v, 2), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "NUL"));
    CU_ASSERT_EQUAL(nines_txn_insert(t, "", v, 1), NINES_EINVAL);
    CU_ASSERT_EQUAL(nines_txn_delete(t, "t1", v, 0), NINES_EINVAL);
    struct nines_value bad = {.type = (enum nines_vtype)77};
    CU_ASSERT_EQUAL(nines_txn_insert(t, "t1", &bad, 1), NINES_ETYPE);
    CU_ASSERT_EQUAL(nines_txn_rollback(t), 0);
    CU_ASSERT_EQUAL(atomic_load(&f.nreq), 0);  /* nothing was sent */
    const char *badaddr[] = {"nocolon"};
    nines_conn *c2 = NULL;
    CU_ASSERT_EQUAL(nines_connect(&c2, badaddr, 1, "test", 100), NINES_EUNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "not host:port"));
    CU_ASSERT_PTR_NULL(c2);
    nines_close(c);
    fk_stop(&f);
}

/* ---- connection loss and failover -------------------------------------- */

static void test_failover(void)
{
    struct fake a, b;
    fk_start(&a, FAKE_CLOSE, 1);
    fk_start(&b, FAKE_ECHO, 2);
    char aa[32], ab[32];
    snprintf(aa, sizeof aa, "127.0.0.1:%u", a.port);
    snprintf(ab, sizeof ab, "127.0.0.1:%u", b.port);
    const char *addrs[] = {aa, ab};
    nines_conn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(nines_connect_with(&c, addrs, 2, "test", 5000, &FIRST), 0);
    CU_ASSERT_EQUAL(nines_conn_node(c), 1);
    /* in-flight requests fail with a clear error when the connection drops */
    struct pipe_req p[4] = {{0}};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(nines_tpcb_async(c, i, 0, 0, 1, on_pipe, &p[i]), 0);
    for (int turns = 0; turns < 100 && nines_conn_inflight(c) > 0; turns++)
        CU_ASSERT(nines_poll(c, 100) >= 0);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(p[i].done, 1);
        CU_ASSERT_EQUAL(p[i].rc, NINES_ECLOSED);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "lost"));
    CU_ASSERT_EQUAL(nines_conn_node(c), 0);
    /* the next call reconnects, to the next address */
    int64_t bal = 0;
    CU_ASSERT_EQUAL(nines_tpcb(c, 10, 1, 0, 5, &bal), 0);
    CU_ASSERT_EQUAL(bal, 15);
    CU_ASSERT_EQUAL(nines_conn_node(c), 2);
    nines_close(c);
    fk_stop(&a);
    fk_stop(&b);
    /* nobody listening: EUNREACHABLE naming the addresses */
    CU_ASSERT_EQUAL(nines_connect_with(&c, addrs, 2, "test", 500, &FIRST), NINES_EUNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), aa));
}

static void test_interactive_lost(void)
{
    struct fake a, b;
    fk_start(&a, FAKE_TXN, 1);
    fk_start(&b, FAKE_TXN, 2);
    char aa[32], ab[32];
    snprintf(aa, sizeof aa, "127.0.0.1:%u", a.port);
    snprintf(ab, sizeof ab, "127.0.0.1:%u", b.port);
    const char *addrs[] = {aa, ab};
    nines_conn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(nines_connect_with(&c, addrs, 2, "test", 5000, &FIRST), 0);
    nines_txn *t;
    CU_ASSERT_EQUAL(nines_txn_begin(c, &t), 0);
    struct nines_value k = nines_v_int64(5);
    nines_row *row;
    CU_ASSERT_EQUAL(nines_txn_get(t, "account", &k, 1, &row), 0);
    atomic_store(&a.mode, FAKE_CLOSE);
    /* the open transaction dies with its connection */
    CU_ASSERT_EQUAL(nines_txn_get(t, "account", &k, 1, &row), NINES_ECLOSED);
    CU_ASSERT_EQUAL(nines_txn_get(t, "account", &k, 1, &row), NINES_EABORTED);
    CU_ASSERT_EQUAL(nines_txn_commit(t), NINES_EABORTED);
    CU_ASSERT_EQUAL(nines_txn_begin(c, &t), 0);
    CU_ASSERT_EQUAL(nines_txn_get(t, "account", &k, 1, &row), 0);
    CU_ASSERT_EQUAL(nines_conn_node(c), 2);
    CU_ASSERT_EQUAL(nines_txn_commit(t), 0);
    nines_close(c);
    fk_stop(&a);
    fk_stop(&b);
}

/* ---- failover with exactly-once outcomes --------------------------------- */

struct fo_req {
    int done, rc;
    int64_t value;
    struct nines_answer_info info;
    nines_conn *c;
};

static void on_fo(void *arg, int rc, int64_t value, const char *detail)
{
    struct fo_req *p = arg;
    p->done++;
    p->rc = rc;
    p->value = value;
    CU_ASSERT_EQUAL(nines_conn_answer_info(p->c, &p->info), 0);
    (void)detail;
}

static void fo_reset(void)
{
    pthread_mutex_lock(&FO.mu);
    FO.n = FO.nresent = FO.questions = 0;
    FO.last_sent_to = FO.last_client = 0;
    pthread_mutex_unlock(&FO.mu);
}

static int fo_resent_attempt(uint64_t seq)
{
    int a = 0;
    pthread_mutex_lock(&FO.mu);
    for (int i = 0; i < FO.nresent; i++)
        if (FO.resent_seq[i] == seq)
            a = a ? -1 : (int)FO.resent_attempt[i]; /* -1: sent twice */
    pthread_mutex_unlock(&FO.mu);
    return a;
}

/* Node 1 takes six procedure calls and dies; the connection moves to
 * node 2 and asks: committed ones complete with the cluster's value,
 * not-committed ones and ones aborted by the failure run again under
 * their key (attempt 2), one aborted on its merits reports its code, an
 * unknown one NINES_EINDOUBT, one in progress is asked again. */
static void test_failover_outcomes(void)
{
    fo_reset();
    struct fake a, b;
    fk_start(&a, FAKE_CLOSE_N, 1);
    atomic_store(&a.batch, 6);
    fk_start(&b, FAKE_FO, 2);
    char aa[32], ab[32];
    snprintf(aa, sizeof aa, "127.0.0.1:%u", a.port);
    snprintf(ab, sizeof ab, "127.0.0.1:%u", b.port);
    const char *addrs[] = {aa, ab};
    nines_conn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(nines_connect_with(&c, addrs, 2, "test", 2000, &FIRST), 0);
    CU_ASSERT_EQUAL(nines_conn_set_failover(c, 1, 3000), 0);
    static const int64_t aids[6] = {10, 11, 12, 13, 14, 17};
    struct fo_req p[6];
    memset(p, 0, sizeof p);
    for (int i = 0; i < 6; i++) {
        p[i].c = c;
        CU_ASSERT_EQUAL(nines_tpcb_async(c, aids[i], 0, 0, 5, on_fo, &p[i]), 0);
    }
    for (int turns = 0; turns < 200 && nines_conn_inflight(c) > 0; turns++)
        CU_ASSERT(nines_poll(c, 50) >= 0);
    CU_ASSERT_EQUAL(nines_conn_inflight(c), 0);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(p[i].done, 1);
    /* 10: committed before the loss, value and txn as the cluster recorded */
    CU_ASSERT_EQUAL(p[0].rc, 0);
    CU_ASSERT_EQUAL(p[0].value, 15);
    CU_ASSERT_EQUAL(p[0].info.txn, 1010);
    CU_ASSERT_EQUAL(p[0].info.attempts, 1);
    CU_ASSERT_TRUE(p[0].info.via_failover);
    /* 11 (never ran) and 13 (aborted by the failure): sent again to node 2,
     * same key, attempt 2, committed there */
    CU_ASSERT_EQUAL(p[1].rc, 0);
    CU_ASSERT_EQUAL(p[1].info.txn, 2011);
    CU_ASSERT_EQUAL(p[1].info.attempts, 2);
    CU_ASSERT_EQUAL(fo_resent_attempt(p[1].info.key_seq), 2);
    CU_ASSERT_EQUAL(p[3].rc, 0);
    CU_ASSERT_EQUAL(p[3].value, 18);
    CU_ASSERT_EQUAL(fo_resent_attempt(p[3].info.key_seq), 2);
    /* 12: aborted on its merits, reported, not sent again */
    CU_ASSERT_EQUAL(p[2].rc, NINES_EDEADLOCK);
    CU_ASSERT_EQUAL(fo_resent_attempt(p[2].info.key_seq), 0);
    /* 14: the cluster cannot tell */
    CU_ASSERT_EQUAL(p[4].rc, NINES_EINDOUBT);
    CU_ASSERT_EQUAL(fo_resent_attempt(p[4].info.key_seq), 0);
    /* 17: in progress, then committed */
    CU_ASSERT_EQUAL(p[5].rc, 0);
    CU_ASSERT_EQUAL(p[5].info.txn, 1017);
    /* one key per request, one client id, node 1 named as where it went */
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            CU_ASSERT_NOT_EQUAL(p[i].info.key_seq, p[j].info.key_seq);
    CU_ASSERT_EQUAL(FO.last_client, p[0].info.key_client);
    CU_ASSERT_EQUAL(FO.last_sent_to, 1u);
    CU_ASSERT(FO.questions >= 2);
    struct nines_failover_stats st;
    nines_conn_failover_stats(c, &st);
    CU_ASSERT_EQUAL(st.failovers, 1);
    CU_ASSERT_EQUAL(st.committed, 2);
    CU_ASSERT_EQUAL(st.resent, 2);
    CU_ASSERT_EQUAL(st.aborted, 1);
    CU_ASSERT_EQUAL(st.in_doubt, 1);
    CU_ASSERT_EQUAL(nines_conn_node(c), 2);
    /* a blocking call works on as usual */
    int64_t bal = 0;
    CU_ASSERT_EQUAL(nines_tpcb(c, 40, 0, 0, 2, &bal), 0);
    CU_ASSERT_EQUAL(bal, 42);
    nines_close(c);
    fk_stop(&a);
    fk_stop(&b);
}

/* A one-shot write transaction whose commit was in flight when its node
 * died: asked about, found committed, commit returns 0 (no op results
 * needed); a second one that never reached a node: "not committed". */
static void test_failover_commit(void)
{
    fo_reset();
    struct fake a, b;
    fk_start(&a, FAKE_CLOSE_N, 1);
    atomic_store(&a.batch, 1);
    fk_start(&b, FAKE_FO, 2);
    char aa[32], ab[32];
    snprintf(aa, sizeof aa, "127.0.0.1:%u", a.port);
    snprintf(ab, sizeof ab, "127.0.0.1:%u", b.port);
    const char *addrs[] = {aa, ab};
    nines_conn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(nines_connect_with(&c, addrs, 2, "test", 2000, &FIRST), 0);
    CU_ASSERT_EQUAL(nines_conn_set_failover(c, 1, 0), 0);
    nines_txn *t;
    CU_ASSERT_EQUAL_FATAL(nines_txn_begin(c, &t), 0);
    struct nines_value row[2] = {nines_v_int64(1), nines_v_int64(2)};
    CU_ASSERT_EQUAL(nines_txn_insert(t, "kv", row, 2), 0);
    CU_ASSERT_EQUAL(nines_txn_commit(t), 0);
    struct nines_answer_info in;
    CU_ASSERT_EQUAL(nines_conn_answer_info(c, &in), 0);
    CU_ASSERT_EQUAL(in.txn, 1030);
    CU_ASSERT_TRUE(in.via_failover);
    CU_ASSERT_EQUAL(nines_conn_node(c), 2);
    nines_close(c);
    fk_stop(&a);
    fk_stop(&b);
}

/* A node that says it is outside the node set: the request did not run
 * there; the connection moves on and the call completes through another
 * node. A blocking call rides through the failover too. */
static void test_failover_not_member(void)
{
    fo_reset();
    struct fake a, b;
    fk_start(&a, FAKE_REF, 1);
    atomic_store(&a.ref_err, NINES_ENOTMEMBER);
    fk_start(&b, FAKE_FO, 2);
    char aa[32], ab[32];
    snprintf(aa, sizeof aa, "127.0.0.1:%u", a.port);
    snprintf(ab, sizeof ab, "127.0.0.1:%u", b.port);
    const char *addrs[] = {aa, ab};
    nines_conn *c = NULL;
    CU_ASSERT_EQUAL_FATAL(nines_connect_with(&c, addrs, 2, "test", 2000, &FIRST), 0);
    CU_ASSERT_EQUAL(nines_conn_set_failover(c, 1, 0), 0);
    int64_t bal = 0;
    CU_ASSERT_EQUAL(nines_tpcb(c, 21, 0, 0, 4, &bal), 0);
    CU_ASSERT_EQUAL(bal, 25);
    CU_ASSERT_EQUAL(nines_conn_node(c), 2);
    struct nines_answer_info in;
    CU_ASSERT_EQUAL(nines_conn_answer_info(c, &in), 0);
    CU_ASSERT_EQUAL(in.attempts, 2);
    CU_ASSERT_EQUAL(in.txn, 2021);
    CU_ASSERT_EQUAL(fo_resent_attempt(in.key_seq), 2);
    nines_close(c);
    fk_stop(&a);
    fk_stop(&b);
}

/* ---- size limit, timeouts, bad frames ----------------------------------- */

static void test_oversized(void)
{
    struct fake f;
    fk_start(&f, FAKE_ECHO, 2);
    nines_conn *c = fk_connect(&f, 5000);
    size_t n = 5u << 20; /* above the default max_frame_bytes of 4 MiB */
    char *big = malloc(n);
    memset(big, 'x', n);
    nines_txn *t;
    CU_ASSERT_EQUAL(nines_txn_begin(c, &t), 0);
    struct nines_value v[2] = {nines_v_int64(1), nines_v_string(big, n)};
    CU_ASSERT_EQUAL(nines_txn_insert(t, "t1", v, 2), 0);
    CU_ASSERT_EQUAL(nines_txn_commit(t), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "exceeds max_frame_bytes 4194304"));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "5242"));
    free(big);
    /* nothing reached the server; the connection is still good */
    CU_ASSERT_EQUAL(atomic_load(&f.nreq), 0);
    int64_t bal = 0;
    CU_ASSERT_EQUAL(nines_tpcb(c, 1, 0, 0, 2, &bal), 0);
    CU_ASSERT_EQUAL(bal, 3);
    nines_close(c);
    fk_stop(&f);
}

static void test_timeout(void)
{
    struct fake f;
    fk_start(&f, FAKE_SILENT, 2);
    nines_conn *c = fk_connect(&f, 150);
    CU_ASSERT_EQUAL(nines_tpcb(c, 1, 0, 0, 2, NULL), NINES_ETIMEDOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), "outcome is unknown"));
    struct pipe_req p = {0};
    CU_ASSERT_EQUAL(nines_tpcb_async(c, 1, 0, 0, 2, on_pipe, &p), 0);
    for (int turns = 0; turns < 100 && !p.done; turns++)
        CU_ASSERT(nines_poll(c, 50) >= 0);
    CU_ASSERT_EQUAL(p.done, 1);
    CU_ASSERT_EQUAL(p.rc, NINES_ETIMEDOUT);
    CU_ASSERT_EQUAL(nines_conn_inflight(c), 0);
    nines_close(c);
    fk_stop(&f);
}

static void bad_frame_case(enum fake_mode mode, int want, const char *words)
{
    struct fake f;
    fk_start(&f, mode, 2);
    nines_conn *c = fk_connect(&f, 5000);
    int rc = nines_tpcb(c, 1, 0, 0, 2, NULL);
    CU_ASSERT_EQUAL(rc, want);
    if (!strstr(nines_conn_errdetail(c), words))
        printf("\n  mode %d detail: %s\n", (int)mode, nines_conn_errdetail(c));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_conn_errdetail(c), words));
    CU_ASSERT_EQUAL(nines_conn_node(c), 0);  /* that connection was dropped */
    nines_close(c);
    fk_stop(&f);
}

static void test_bad_frames(void)
{
    bad_frame_case(FAKE_ZERO_FRAME, NINES_EPROTO, "bad frame length 0");
    bad_frame_case(FAKE_HUGE_LEN, NINES_ETOOBIG, "bad frame length 2147483647");
    bad_frame_case(FAKE_GARBAGE_ENV, NINES_EPROTO, "malformed envelope");
    bad_frame_case(FAKE_BAD_BODY, NINES_EPROTO, "does not decode");
}

/* ---- interactive transactions ------------------------------------------- */

static int count_row(void *arg, const nines_row *r)
{
    (*(int *)arg)++;
    return 0;
}

static void test_interactive(void)
{
    struct fake f;
    fk_start(&f, FAKE_TXN, 2);
    nines_conn *c = fk_connect(&f, 5000);
    nines_txn *t;
    /* write-only: buffered, one request at commit */
    CU_ASSERT_EQUAL(nines_txn_begin(c, &t), 0);
    struct nines_value row[3] = {nines_v_int64(1), nines_v_int64(2), nines_v_bytes("ab", 2)};
    CU_ASSERT_EQUAL(nines_txn_insert(t, "t1", row, 3), 0);
    CU_ASSERT_EQUAL(nines_txn_update(t, "t1", row, 3), 0);
    CU_ASSERT_EQUAL(nines_txn_delete(t, "t1", row, 1), 0);
    CU_ASSERT_EQUAL(atomic_load(&f.nreq), 0);
    CU_ASSERT_EQUAL(nines_txn_commit(t), 0);
    CU_ASSERT_EQUAL(atomic_load(&f.nreq), 1);
    CU_ASSERT_EQUAL(atomic_load(&f.last_nops), 3);
    CU_ASSERT_EQUAL(atomic_load(&f.last_end), NINES__TXN_END__TXN_END_COMMIT);
    /* a get sends what is buffered with end NONE; the txn id is kept */
    CU_ASSERT_EQUAL(nines_txn_begin(c, &t), 0);
    CU_ASSERT_EQUAL(nines_txn_insert(t, "t1", row, 3), 0);
    struct nines_value k = nines_v_int64(77);
    nines_row *r = NULL;
    CU_ASSERT_EQUAL(nines_txn_get(t, "account", &k, 1, &r), 0);
    CU_ASSERT_EQUAL(atomic_load(&f.nreq), 2);
    CU_ASSERT_EQUAL(atomic_load(&f.last_nops), 2);
    CU_ASSERT_EQUAL(atomic_load(&f.last_end), NINES__TXN_END__TXN_END_NONE);
    CU_ASSERT_EQUAL(nines_txn_id(t), 42);
    CU_ASSERT_EQUAL(nines_row_ncols(r), 2);
    CU_ASSERT_EQUAL(nines_row_value(r, 0).type, NINES_V_INT64);
    CU_ASSERT_EQUAL(nines_row_value(r, 0).u.i64, 77);
    struct nines_value s = nines_row_value(r, 1);
    CU_ASSERT_EQUAL(s.type, NINES_V_STRING);
    CU_ASSERT(s.u.s.len == 7 && memcmp(s.u.s.p, "account", 7) == 0);
    CU_ASSERT_EQUAL(nines_row_value(r, 9).type, NINES_V_NULL);
    /* a missing row is a per-op status: the transaction stays usable */
    nines_row *r77 = r;
    k = nines_v_int64(404);
    CU_ASSERT_EQUAL(nines_txn_get(t, "account", &k, 1, &r), NINES_ENOTFOUND);
    CU_ASSERT_PTR_NULL(r);
    nines_row *r2 = NULL;
    k = nines_v_int64(8);
    CU_ASSERT_EQUAL(nines_txn_add(t, "account", &k, 1, 2, 5, &r2), 0);
    CU_ASSERT_EQUAL(nines_row_value(r2, 0).u.i64, 8);
    CU_ASSERT_EQUAL(nines_row_value(r77, 0).u.i64, 77); /* earlier rows stay valid */
    int rows = 0;
    CU_ASSERT_EQUAL(nines_txn_scan(t, "account", NULL, 0, NULL, 0, 10, count_row, &rows), 0);
    CU_ASSERT_EQUAL(atomic_load(&f.last_txn), 42);
    CU_ASSERT_EQUAL(nines_txn_commit(t), 0);
    CU_ASSERT_EQUAL(atomic_load(&f.last_end), NINES__TXN_END__TXN_END_COMMIT);
    CU_ASSERT_EQUAL(atomic_load(&f.last_nops), 0);
    /* rollback of a transaction the server knows sends ROLLBACK */
    CU_ASSERT_EQUAL(nines_txn_begin(c, &t), 0);
    CU_ASSERT_EQUAL(nines_txn_get(t, "account", &k, 1, &r), 0);
    int before = atomic_load(&f.nreq);
    CU_ASSERT_EQUAL(nines_txn_rollback(t), 0);
    CU_ASSERT_EQUAL(atomic_load(&f.nreq), before + 1);
    CU_ASSERT_EQUAL(atomic_load(&f.last_end), NINES__TXN_END__TXN_END_ROLLBACK);
    nines_close(c);
    fk_stop(&f);
}

/* ---- spreading (README "Spreading") -------------------------------------- */

/* The start index: deterministic for a seed, round robin over k from a
 * seed-dependent base, and the bases of many seeds spread over the nodes. */
static void test_spread_start(void)
{
    size_t s0 = nines_spread_start(42, 0, 4);
    CU_ASSERT(s0 < 4);
    int hits[4] = {0};
    for (uint64_t k = 0; k < 8; k++) {
        size_t s = nines_spread_start(42, k, 4);
        CU_ASSERT_EQUAL(s, nines_spread_start(42, k, 4)); /* same seed, same answer */
        CU_ASSERT_EQUAL(s, (s0 + k) % 4);
        hits[s]++;
    }
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(hits[i], 2);
    /* 1000 processes (seeds) with one connection each: no node gets more
     * than 30 % or less than 20 % of them */
    int per[4] = {0};
    for (uint64_t seed = 1; seed <= 1000; seed++)
        per[nines_spread_start(seed, 0, 4)]++;
    for (int i = 0; i < 4; i++) {
        CU_ASSERT(per[i] >= 200);
        CU_ASSERT(per[i] <= 300);
    }
    CU_ASSERT_EQUAL(nines_spread_start(7, 5, 1), 0);
    CU_ASSERT_EQUAL(nines_spread_start(7, 5, 0), 0);
}

/* Four fake nodes: 8 connections of this process land on every node twice
 * (whatever the base); with NINES_CONNECT_FIRST_NODE all on node 1; a node
 * that is down is skipped (the next address answers). */
static void test_spread_connect(void)
{
    struct fake f[4];
    char a[4][32];
    const char *addrs[4];
    for (int i = 0; i < 4; i++) {
        fk_start(&f[i], FAKE_ECHO, (uint32_t)i + 1);
        snprintf(a[i], sizeof a[i], "127.0.0.1:%u", f[i].port);
        addrs[i] = a[i];
    }
    int on[5] = {0};
    for (int k = 0; k < 8; k++) {
        nines_conn *c = NULL;
        CU_ASSERT_EQUAL_FATAL(nines_connect(&c, addrs, 4, "test", 5000), 0);
        uint32_t n = nines_conn_node(c);
        CU_ASSERT(n >= 1 && n <= 4);
        on[n <= 4 ? n : 0]++;
        int64_t bal = 0;
        CU_ASSERT_EQUAL(nines_tpcb(c, 10, 1, 0, 5, &bal), 0);
        CU_ASSERT_EQUAL(bal, 15);
        nines_close(c);
    }
    for (int i = 1; i <= 4; i++)
        CU_ASSERT_EQUAL(on[i], 2);
    /* a fixed seed: the same round robin */
    memset(on, 0, sizeof on);
    const struct nines_connect_opts seeded = {.seed = 12345};
    for (int k = 0; k < 4; k++) {
        nines_conn *c = NULL;
        CU_ASSERT_EQUAL_FATAL(nines_connect_with(&c, addrs, 4, "test", 5000, &seeded), 0);
        uint32_t n = nines_conn_node(c);
        on[n <= 4 ? n : 0]++;
        nines_close(c);
    }
    for (int i = 1; i <= 4; i++)
        CU_ASSERT_EQUAL(on[i], 1);
    for (int k = 0; k < 4; k++) {
        nines_conn *c = NULL;
        CU_ASSERT_EQUAL_FATAL(nines_connect_with(&c, addrs, 4, "test", 5000, &FIRST), 0);
        CU_ASSERT_EQUAL(nines_conn_node(c), 1);
        nines_close(c);
    }
    /* nodes 1 and 3 down: every spread connect lands on 2 or 4, each twice
     * in 4 connects (start 1 -> 2, start 3 -> 4) */
    fk_stop(&f[0]);
    fk_stop(&f[2]);
    memset(on, 0, sizeof on);
    for (int k = 0; k < 4; k++) {
        nines_conn *c = NULL;
        CU_ASSERT_EQUAL_FATAL(nines_connect(&c, addrs, 4, "test", 2000), 0);
        uint32_t n = nines_conn_node(c);
        on[n <= 4 ? n : 0]++;
        nines_close(c);
    }
    CU_ASSERT_EQUAL(on[2], 2);
    CU_ASSERT_EQUAL(on[4], 2);
    fk_stop(&f[1]);
    fk_stop(&f[3]);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"pipeline_out_of_order", test_pipeline_out_of_order},
        {"error_mapping", test_error_mapping},
        {"argument_errors", test_argument_errors},
        {"failover", test_failover},
        {"interactive_lost", test_interactive_lost},
        {"failover_outcomes", test_failover_outcomes},
        {"failover_not_member", test_failover_not_member},
        {"failover_commit", test_failover_commit},
        {"oversized", test_oversized},
        {"timeout", test_timeout},
        {"bad_frames", test_bad_frames},
        {"interactive", test_interactive},
        {"spread_start", test_spread_start},
        {"spread_connect", test_spread_connect},
        {NULL, NULL},
    };
    cu_add_suite("client", NULL, NULL, cases);
}
