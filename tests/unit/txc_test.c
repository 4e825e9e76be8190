/* Transaction controller: the 2-safe commit sequencing, aborts, client
 * close, timeout, interactive transactions, the hot-standby controller and
 * bad requests — four nodes (two per site) over the in-process test
 * transport, each with a real controller and a fake kernel task that
 * answers KERN_OP_REQ / PREPARE_REQ / COMMIT_REQ / ABORT_REQ and plays the
 * update channel (UPD_LOG_REQ with end marks -> standby READY_IND). */
#include "cu_test.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../net/testnet.h"
#include "conv_cases.h"
#include "kernel/kern_key.h"
#include "nassert.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"
#include "txctl/txc.h"

#define NN 4
#define CONN(c) (NET_CONN_BASE + (c))
#define MAX_EV 8192
#define MAX_ANS 512
#define MAX_HELD 256
#define FK_TXNS 512

/* key values the fake kernels refuse */
#define KEY_DEADLOCK 666
#define KEY_MISSING 777

/* scan tables of the fake kernels: keys 0..N-1, v = 10 * k */
#define SC_ROWS 1500   /* "sc": hash, 8 fragments */
#define RG_ROWS 400    /* "rg": range, splits 100, 200, 300 */
#define ROWPOOL (1 << 17)

enum ev_type { EV_OPREQ = 1, EV_PREPARE, EV_COMMIT, EV_ABORT, EV_SREADY, EV_PREADY, EV_SCAN,
               EV_OREF };
struct ev {
    enum ev_type type;
    uint32_t node;
    uint64_t txn;
    bool prepare;
    uint32_t table, frag, limit; /* EV_SCAN: the fragment scanned, the limit sent */
    uint64_t gci;                /* EV_COMMIT: CommitReq.gci */
};

/* A commit-epoch answer a controller sent to the (fake) supervisor. */
struct gev {
    uint32_t type;     /* GCP_PREPARE_CONF, GCP_COMMIT_CONF, GCP_COMMIT_REF */
    uint32_t node;     /* the answering controller's node (the body's) */
    uint32_t at;       /* the supervisor that got it */
    uint64_t round, gci;
    int error;
};
#define MAX_GEV 256

struct ans {
    uint32_t node;
    net_addr conn;
    uint32_t type;
    uint64_t req_id, txn;
    int error;
    uint32_t failed_op;
    char detail[600];
    int64_t value;
    size_t nresults;
    int64_t first_row_val;
    /* rows of results[0]: first column values in w->rowpool[rows_off ..] */
    uint32_t rows_off, nrows;
    int status0;
    /* snapshot when the answer left the controller */
    uint64_t commits_before, hsc_ready_before, sreadies_before;
};

struct held { /* a READY_IND the test holds back */
    uint32_t from, to;
    uint64_t txn;
    uint32_t table, frag;
    bool standby;
    uint32_t nrec, sb; /* primary: the fragment's FragRecords */
};

struct fk_txn {
    uint64_t txn;
    bool has_value;  /* KernOpReq.value_op: the procedure's value for READY_IND */
    int64_t value;
    uint32_t ctl, hsc, n;
    uint32_t table[32], frag[32], standby[32], nrec[32];
};

/* A fault rule of the runtime filter: the next `count` messages of `type`
 * sent by node `from` (0: any) to `to` (0: any node, incl. local) are
 * dropped or taken (held for release_taken). */
enum flt_action { FLT_DROP = 1, FLT_TAKE };
struct flt {
    uint32_t type, from, to;
    enum flt_action act;
    int count;
};
struct taken {
    uint32_t from;
    net_addr to;
    enum rt_svc svc;
    struct rt_msg *m;
};
#define MAX_TAKEN 64

struct world;
struct fk {
    struct world *w;
    uint32_t self;
    struct fk_txn txns[FK_TXNS];
    int64_t vals[4096]; /* ADD state by key % 4096, starts at 1000 */
    uint64_t inserted[4096];
    uint32_t ninserted;
    uint64_t ended[256]; /* txns this kernel ended (repeats are answered again) */
    uint32_t nended;
};

struct world {
    struct nines_conf cfg;
    struct net_testnet *hub;
    struct rt *rt[NN + 1];
    struct txc *txc[NN + 1];
    struct fk fk[NN + 1];
    struct dict d;
    struct ev ev[MAX_EV];
    uint32_t nev;
    struct ans ans[MAX_ANS];
    uint32_t nans;
    bool hold_p, hold_s;
    struct held held[MAX_HELD];
    uint32_t nheld;
    uint32_t t_kv, t_vk, t_sc, t_rg, t_se;
    bool scan_bad_order;       /* fake kernels return a fragment's rows out of order */
    int scan_bad_key;          /* 1: no key bytes, 2: a first key of another fragment,
                                * 3: a first key below the low bound */
    int64_t rowpool[ROWPOOL];
    uint32_t nrowpool;
    struct flt flt[4];
    uint32_t nflt;
    struct taken taken[MAX_TAKEN];
    uint32_t ntaken;
    uint64_t filtered;
    bool fk_lenient; /* fake kernels take ends of txns they never saw (outcome questions) */
    uint64_t dead;   /* RT_NODE_BIT of nodes that died: never stepped again */
    uint32_t t_one;  /* "one": a table with one replica per fragment */
    /* a fragment drained for a takeback, or taken over: the fake kernel at
     * eagain_node (or any node of the mask eagain_nodes) refuses KERN_OP_REQ
     * NINES_EAGAIN with failed_op 0 (before anything ran) eagain_n more times
     * (< 0: until cleared), only requests naming a fragment whose dictionary
     * primary is eagain_dictp (0: any) */
    uint32_t eagain_node, eagain_dictp;
    uint64_t eagain_nodes;
    int eagain_n;
    struct gev gev[MAX_GEV]; /* commit-epoch answers, in arrival order */
    uint32_t ngev;
};

static struct world W;
static uint32_t g_max_inflight; /* world_open: txc_config.max_inflight (0: default) */
static bool g_gcp_on; /* world_open: the controllers stamp commit epochs (txc_config.gcp_on) */

/* The controller's dictionary accessor (ninesd: the dictionary service's). */
static const struct dict *world_dict(void *ctx) { return &((struct world *)ctx)->d; }

static void ev_add(struct world *w, enum ev_type ty, uint32_t node, uint64_t txn, bool prep)
{
    if (w->nev < MAX_EV)
        w->ev[w->nev++] = (struct ev){ty, node, txn, prep, 0, 0, 0, 0};
}

static uint32_t ev_count(struct world *w, enum ev_type ty, uint64_t txn)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < w->nev; i++)
        n += w->ev[i].type == ty && (txn == 0 || w->ev[i].txn == txn);
    return n;
}

/* node set of events of a type for a txn */
static uint64_t ev_nodes(struct world *w, enum ev_type ty, uint64_t txn)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < w->nev; i++)
        if (w->ev[i].type == ty && w->ev[i].txn == txn)
            s |= 1ull << w->ev[i].node;
    return s;
}

/* ---- the fake client (controller's client_send hook) ------------------- */

static int client_send(void *ctx, struct rt *rt, net_addr conn, struct rt_msg *m)
{
    struct world *w = ctx;
    CU_ASSERT_FATAL(w->nans < MAX_ANS);
    struct ans *a = &w->ans[w->nans++];
    memset(a, 0, sizeof *a);
    a->node = rt_self(rt);
    a->conn = conn;
    a->type = m->type;
    a->commits_before = ev_count(w, EV_COMMIT, 0);
    a->sreadies_before = ev_count(w, EV_SREADY, 0);
    for (uint32_t n = 1; n <= NN; n++) {
        struct txc_stats st;
        txc_get_stats(w->txc[n], &st);
        a->hsc_ready_before += st.hsc_ready;
    }
    if (m->type == NINES__MSG_TYPE__TXN_OUTCOME_CONF) {
        /* an outcome question (one key): its outcome in value, txn */
        const Nines__TxnOutcomeConf *b = (const Nines__TxnOutcomeConf *)m->body;
        a->req_id = b->req_id;
        if (b->n_answers) {
            a->value = b->answers[0]->outcome;
            a->txn = b->answers[0]->txn;
        }
    } else if (m->type == NINES__MSG_TYPE__TXN_OUTCOME_REF) {
        const Nines__TxnOutcomeRef *b = (const Nines__TxnOutcomeRef *)m->body;
        a->req_id = b->req_id;
        a->error = b->error;
    } else if (m->type == NINES__MSG_TYPE__TXN_CONF) {
        const Nines__TxnConf *b = (const Nines__TxnConf *)m->body;
        a->req_id = b->req_id;
        a->txn = b->txn;
        a->value = b->value;
        a->nresults = b->n_results;
        if (b->n_results && b->results[0]->n_rows && b->results[0]->rows[0]->n_values)
            a->first_row_val = b->results[0]->rows[0]->values[0]->i64;
        if (b->n_results) {
            const Nines__OpResult *r0 = b->results[0];
            a->status0 = r0->status;
            a->rows_off = w->nrowpool;
            CU_ASSERT_FATAL(w->nrowpool + r0->n_rows <= ROWPOOL);
            for (size_t i = 0; i < r0->n_rows; i++) {
                const Nines__Row *row = r0->rows[i];
                w->rowpool[w->nrowpool++] = row->n_values ? row->values[0]->i64 : INT64_MIN;
            }
            a->nrows = (uint32_t)r0->n_rows;
        }
    } else {
        const Nines__TxnRef *b = (const Nines__TxnRef *)m->body;
        a->req_id = b->req_id;
        a->txn = b->txn;
        a->error = b->error;
        a->failed_op = b->failed_op;
        snprintf(a->detail, sizeof a->detail, "%s", b->detail ? b->detail : "");
    }
    rt_msg_free(rt, m);
    return 0;
}

static struct ans *answer_for(struct world *w, net_addr conn, uint64_t req_id)
{
    struct ans *found = NULL;
    int n = 0;
    for (uint32_t i = 0; i < w->nans; i++)
        if (w->ans[i].conn == conn && w->ans[i].req_id == req_id) {
            found = &w->ans[i];
            n++;
        }
    CU_ASSERT(n <= 1); /* each request answered at most once */
    return found;
}

/* ---- fake kernel ------------------------------------------------------- */

static struct fk_txn *fk_txn(struct fk *k, uint64_t txn, bool create)
{
    struct fk_txn *fr = NULL;
    for (int i = 0; i < FK_TXNS; i++) {
        if (k->txns[i].txn == txn)
            return &k->txns[i];
        if (!fr && !k->txns[i].txn)
            fr = &k->txns[i];
    }
    if (!create || !fr)
        return NULL;
    memset(fr, 0, sizeof *fr);
    fr->txn = txn;
    return fr;
}

/* A primary's READY_IND names one fragment with its FragRecords (the real
 * kernel sends one per node listing all; per fragment is equivalent). */
static void send_ready(struct world *w, uint32_t from, uint32_t to, uint64_t txn, uint32_t table,
                       uint32_t frag, bool standby, uint32_t nrec, uint32_t sb)
{
    if (!to)
        return;
    if ((standby && w->hold_s) || (!standby && w->hold_p)) {
        CU_ASSERT_FATAL(w->nheld < MAX_HELD);
        w->held[w->nheld++] = (struct held){from, to, txn, table, frag, standby, nrec, sb};
        return;
    }
    struct rt *rt = w->rt[from];
    struct rt_msg *m = rt_msg_new(rt, NINES__MSG_TYPE__READY_IND);
    Nines__ReadyInd *b = RT_BODY(m, Nines__ReadyInd, nines__ready_ind__init);
    b->txn = txn;
    b->node = from;
    b->table = table;
    b->frag = frag;
    b->standby = standby;
    if (!standby) {
        const struct fk_txn *fx = fk_txn(&w->fk[from], txn, false);
        if (fx && fx->has_value) {
            b->has_value = true;
            b->value = fx->value;
        }
        Nines__FragRecords *f = rt_msg_alloc(m, sizeof *f);
        b->frags = rt_msg_alloc(m, sizeof *b->frags);
        nines__frag_records__init(f);
        f->table = table;
        f->frag = frag;
        f->nrecords = nrec;
        f->standby = nrec ? sb : 0;
        b->frags[0] = f;
        b->n_frags = 1;
    }
    ev_add(w, standby ? EV_SREADY : EV_PREADY, from, txn, false);
    rt_send(rt, to == from ? 0 : to, RT_SVC_TXC, m);
}

static void release(struct world *w, bool standby)
{
    bool h = standby ? w->hold_s : w->hold_p;
    if (standby)
        w->hold_s = false;
    else
        w->hold_p = false;
    uint32_t keep = 0;
    for (uint32_t i = 0; i < w->nheld; i++) {
        struct held x = w->held[i];
        if (x.standby == standby)
            send_ready(w, x.from, x.to, x.txn, x.table, x.frag, x.standby, x.nrec, x.sb);
        else
            w->held[keep++] = x;
    }
    w->nheld = keep;
    (void)h;
}

/* Primary prepared: ship end marks to the standbys, READY_IND to the hsc. */
static void fk_prepared(struct fk *k, struct fk_txn *x)
{
    struct world *w = k->w;
    for (uint32_t i = 0; i < x->n; i++) {
        send_ready(w, k->self, x->hsc, x->txn, x->table[i], x->frag[i], false, x->nrec[i],
                   x->standby[i]);
        if (!x->standby[i] || !x->nrec[i])
            continue; /* only read here: nothing shipped, no standby READY_IND */
        struct rt_msg *m = rt_msg_new(w->rt[k->self], NINES__MSG_TYPE__UPD_LOG_REQ);
        Nines__UpdLogReq *b = RT_BODY(m, Nines__UpdLogReq, nines__upd_log_req__init);
        Nines__TxnEndMark *e = rt_msg_alloc(m, sizeof *e);
        Nines__TxnEndMark **pe = rt_msg_alloc(m, sizeof *pe);
        nines__txn_end_mark__init(e);
        e->txn = x->txn;
        e->nrecords = 1;
        e->ctl = x->ctl;
        e->hsc = x->hsc;
        pe[0] = e;
        b->table = x->table[i];
        b->frag = x->frag[i];
        b->n_prepared = 1;
        b->prepared = pe;
        rt_send(w->rt[k->self], x->standby[i], RT_SVC_KERN, m);
    }
}

/* Every fragment the txn touched here with its write count (FragRecords). */
static void fk_frags(const struct fk_txn *x, struct rt_msg *r, Nines__FragRecords ***out,
                     size_t *n)
{
    *out = rt_msg_alloc(r, (x->n ? x->n : 1) * sizeof **out);
    for (uint32_t i = 0; i < x->n; i++) {
        Nines__FragRecords *f = rt_msg_alloc(r, sizeof *f);
        nines__frag_records__init(f);
        f->table = x->table[i];
        f->frag = x->frag[i];
        f->nrecords = x->nrec[i];
        f->standby = x->nrec[i] ? x->standby[i] : 0;
        (*out)[i] = f;
    }
    *n = x->n;
}

static uint32_t fk_slot(const struct fk_txn *x, const Nines__Participant *p)
{
    for (uint32_t j = 0; j < x->n; j++)
        if (x->table[j] == p->table && x->frag[j] == p->frag)
            return j;
    CU_FAIL("fragment not recorded");
    return 0;
}

/* buf: at least 16 bytes (an int64 key is a tag and 8 bytes) */
static uint8_t *enc_i64(int64_t k, uint8_t *buf, size_t *len)
{
    struct kern_col c = {KERN_T_INT64, 0, 0};
    struct kern_val v = kern_v_i64(k);
    int n = kern_key_encode(&c, 1, &v, buf, 16);
    CU_ASSERT_FATAL(n > 0);
    *len = (size_t)n;
    return buf;
}

static Nines__Row *fk_row(struct rt_msg *r, int64_t k)
{
    Nines__Row *row = rt_msg_alloc(r, sizeof *row);
    nines__row__init(row);
    row->n_values = 2;
    row->values = rt_msg_alloc(r, 2 * sizeof *row->values);
    for (int c = 0; c < 2; c++) {
        Nines__Value *val = rt_msg_alloc(r, sizeof *val);
        nines__value__init(val);
        val->v_case = NINES__VALUE__V_I64;
        val->i64 = c ? 10 * k : k;
        row->values[c] = val;
    }
    return row;
}

/* SCAN of one fragment of a scan table, like the kernel: keys[i] (encoded,
 * may be empty) is the low bound, key_hi values the high one, at most
 * limit rows in key order (descending when reverse). */
static void fk_scan(struct fk *k, const Nines__KernOpReq *b, size_t i, struct rt_msg *r,
                    Nines__OpResult *res)
{
    struct world *w = k->w;
    const Nines__RecordOp *op = b->ops[i];
    const Nines__Participant *p = b->parts[i];
    const struct dict_table *tb = dict_table_by_id(&w->d, p->table);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tb);
    CU_ASSERT(op->limit >= 1 && op->limit <= TXC_SCAN_MAX); /* the controller's effective limit */
    if (w->nev < MAX_EV)
        w->ev[w->nev++] = (struct ev){EV_SCAN, k->self, b->txn, false, p->table, p->frag, op->limit,
                                      0};
    int64_t nkeys = p->table == w->t_sc ? SC_ROWS : p->table == w->t_rg ? RG_ROWS : 0;
    bool have_hi = op->n_key_hi > 0;
    int64_t hi = have_hi ? op->key_hi[0]->i64 : 0;
    res->rows = rt_msg_alloc(r, (op->limit + 1) * sizeof *res->rows);
    res->keys = rt_msg_alloc(r, (op->limit + 1) * sizeof *res->keys);
    for (int64_t j = 0; j < nkeys && res->n_rows < op->limit; j++) {
        int64_t key = op->reverse ? nkeys - 1 - j : j;
        uint8_t kb[KERN_KEY_MAX];
        size_t kl;
        enc_i64(key, kb, &kl);
        if (dict_route(tb, kb, kl) != (int)p->frag)
            continue;
        if (b->keys[i].len && kern_key_cmp(kb, kl, b->keys[i].data, b->keys[i].len) < 0)
            continue;
        if (have_hi && key > hi)
            continue;
        /* the row's encoded key next to it, as the kernel service sends */
        uint8_t *kc = rt_msg_alloc(r, kl);
        memcpy(kc, kb, kl);
        res->keys[res->n_keys++] = (ProtobufCBinaryData){kl, kc};
        res->rows[res->n_rows++] = fk_row(r, key);
    }
    if (w->scan_bad_order && res->n_rows >= 2) {
        Nines__Row *tmp = res->rows[0];
        res->rows[0] = res->rows[1];
        res->rows[1] = tmp;
        ProtobufCBinaryData tk = res->keys[0];
        res->keys[0] = res->keys[1];
        res->keys[1] = tk;
    }
    if (w->scan_bad_key == 1)
        res->n_keys = 0;
    for (int64_t j = 0; w->scan_bad_key >= 2 && res->n_keys && j < nkeys; j++) {
        uint8_t kb[16];
        size_t kl;
        enc_i64(j, kb, &kl);
        if ((w->scan_bad_key == 2) == (dict_route(tb, kb, kl) != (int)p->frag)) {
            uint8_t *kc = rt_msg_alloc(r, kl);
            memcpy(kc, kb, kl);
            res->keys[0] = (ProtobufCBinaryData){kl, kc};
            break;
        }
    }
}

static int64_t op_key(const Nines__RecordOp *op)
{
    if (op->n_key && op->key[0]->v_case == NINES__VALUE__V_I64)
        return op->key[0]->i64;
    if (op->row && op->row->n_values && op->row->values[0]->v_case == NINES__VALUE__V_I64)
        return op->row->values[0]->i64;
    return -1;
}

static void fk_on_op_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct fk *k = st;
    struct world *w = k->w;
    const Nines__KernOpReq *b = (const Nines__KernOpReq *)m->body;
    CU_ASSERT_EQUAL(b->n_ops, b->n_parts);
    CU_ASSERT_EQUAL(b->n_ops, b->n_keys);
    ev_add(w, EV_OPREQ, k->self, b->txn, b->prepare);
    if ((w->eagain_node == k->self || (w->eagain_nodes & RT_NODE_BIT(k->self))) &&
        w->eagain_n != 0) {
        bool names = !w->eagain_dictp;
        for (size_t i = 0; i < b->n_parts && !names; i++) {
            const struct dict_table *tb = dict_table_by_id(&w->d, b->parts[i]->table);
            names = tb && tb->frags[b->parts[i]->frag].primary == w->eagain_dictp;
        }
        if (names) {
            if (w->eagain_n > 0)
                w->eagain_n--;
            struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__KERN_OP_REF);
            Nines__KernOpRef *rb = RT_BODY(r, Nines__KernOpRef, nines__kern_op_ref__init);
            rb->txn = b->txn;
            rb->seq = b->seq;
            rb->error = NINES_EAGAIN;
            rb->failed_op = 0;
            rb->detail = (char *)"fake kernel: a fragment is handed back (takeback): retry";
            rt_send(rt, b->ctl == k->self ? 0 : b->ctl, RT_SVC_TXC, r);
            return;
        }
    }
    struct fk_txn *x = fk_txn(k, b->txn, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    x->ctl = b->ctl;
    x->hsc = b->hsc;
    uint32_t ctl = b->ctl;
    for (size_t i = 0; i < b->n_parts; i++) {
        CU_ASSERT_EQUAL(b->parts[i]->primary, k->self);
        bool seen = false;
        for (uint32_t j = 0; j < x->n; j++)
            seen |= x->table[j] == b->parts[i]->table && x->frag[j] == b->parts[i]->frag;
        if (!seen && x->n < 32) {
            x->table[x->n] = b->parts[i]->table;
            x->frag[x->n] = b->parts[i]->frag;
            x->standby[x->n++] = b->parts[i]->standby;
        }
    }
    /* refusals */
    for (size_t i = 0; i < b->n_ops; i++) {
        const Nines__RecordOp *op = b->ops[i];
        int64_t key = op_key(op);
        int err = 0;
        char det[160] = "";
        if (key == KEY_DEADLOCK) {
            err = NINES_EDEADLOCK;
            snprintf(det, sizeof det, "deadlock victim: waits for a lock held by txn 42");
        } else if (key == KEY_MISSING && op->op == NINES__OP_TYPE__OP_ADD) {
            err = NINES_ENOTFOUND;
            snprintf(det, sizeof det, "no row with key %d", KEY_MISSING);
        } else if (op->op == NINES__OP_TYPE__OP_INSERT) {
            uint64_t h = (uint64_t)key * 31 + op->table_id;
            for (uint32_t j = 0; j < k->ninserted; j++)
                if (k->inserted[j] == h) {
                    err = NINES_EEXIST;
                    snprintf(det, sizeof det, "duplicate key %" PRId64, key);
                }
            if (!err && k->ninserted < 4096)
                k->inserted[k->ninserted++] = h;
        }
        if (err) {
            struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__KERN_OP_REF);
            Nines__KernOpRef *rb = RT_BODY(r, Nines__KernOpRef, nines__kern_op_ref__init);
            rb->txn = b->txn;
            rb->seq = b->seq;
            rb->error = err;
            rb->failed_op = (uint32_t)i;
            char *d = rt_msg_alloc(r, strlen(det) + 1);
            strcpy(d, det);
            rb->detail = d;
            rt_send(rt, ctl == k->self ? 0 : ctl, RT_SVC_TXC, r);
            return;
        }
    }
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__KERN_OP_CONF);
    Nines__KernOpConf *cb = RT_BODY(r, Nines__KernOpConf, nines__kern_op_conf__init);
    cb->txn = b->txn;
    cb->seq = b->seq;
    cb->ready = b->prepare;
    cb->n_results = b->n_ops;
    cb->results = rt_msg_alloc(r, b->n_ops * sizeof *cb->results);
    for (size_t i = 0; i < b->n_ops; i++) {
        const Nines__RecordOp *op = b->ops[i];
        Nines__OpResult *res = rt_msg_alloc(r, sizeof *res);
        nines__op_result__init(res);
        cb->results[i] = res;
        if (op->op != NINES__OP_TYPE__OP_GET && op->op != NINES__OP_TYPE__OP_SCAN)
            x->nrec[fk_slot(x, b->parts[i])]++;
        if (op->op == NINES__OP_TYPE__OP_SCAN) {
            fk_scan(k, b, i, r, res);
            continue;
        }
        if (op->op != NINES__OP_TYPE__OP_ADD && op->op != NINES__OP_TYPE__OP_GET)
            continue;
        int64_t key = op_key(op);
        int64_t *v = &k->vals[(uint64_t)key % 4096];
        if (op->op == NINES__OP_TYPE__OP_ADD)
            *v += op->delta;
        uint32_t col = op->op == NINES__OP_TYPE__OP_ADD ? op->column : 0;
        Nines__Row *row = rt_msg_alloc(r, sizeof *row);
        nines__row__init(row);
        row->n_values = col + 1;
        row->values = rt_msg_alloc(r, (col + 1) * sizeof *row->values);
        for (uint32_t c = 0; c <= col; c++) {
            Nines__Value *val = rt_msg_alloc(r, sizeof *val);
            nines__value__init(val);
            val->v_case = NINES__VALUE__V_I64;
            val->i64 = c == col ? 1000 + *v : key;
            row->values[c] = val;
        }
        res->n_rows = 1;
        res->rows = rt_msg_alloc(r, sizeof *res->rows);
        res->rows[0] = row;
    }
    if (b->prepare)
        fk_frags(x, r, &cb->frags, &cb->n_frags);
    if (b->prepare && b->value_op) {
        CU_ASSERT_FATAL(b->value_op <= b->n_ops);
        const Nines__OpResult *vr = cb->results[b->value_op - 1];
        if (vr->n_rows && vr->rows[0]->n_values > b->value_col) {
            x->has_value = true;
            x->value = vr->rows[0]->values[b->value_col]->i64;
        }
    }
    rt_send(rt, ctl == k->self ? 0 : ctl, RT_SVC_TXC, r);
    if (b->prepare)
        fk_prepared(k, x);
}

static void fk_on_prepare_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct fk *k = st;
    const Nines__PrepareReq *b = (const Nines__PrepareReq *)m->body;
    ev_add(k->w, EV_PREPARE, k->self, b->txn, true);
    struct fk_txn *x = fk_txn(k, b->txn, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    x->hsc = b->hsc;
    x->ctl = b->ctl;
    struct rt_msg *r = rt_msg_new(rt, NINES__MSG_TYPE__PREPARE_CONF);
    Nines__PrepareConf *cb = RT_BODY(r, Nines__PrepareConf, nines__prepare_conf__init);
    cb->txn = b->txn;
    cb->node = k->self;
    fk_frags(x, r, &cb->frags, &cb->n_frags);
    rt_send(rt, b->ctl == k->self ? 0 : b->ctl, RT_SVC_TXC, r);
    fk_prepared(k, x);
}

static void fk_on_end(struct rt *rt, void *st, struct rt_msg *m)
{
    struct fk *k = st;
    bool commit = m->type == NINES__MSG_TYPE__COMMIT_REQ;
    uint64_t txn = commit ? ((const Nines__CommitReq *)m->body)->txn
                          : ((const Nines__AbortReq *)m->body)->txn;
    ev_add(k->w, commit ? EV_COMMIT : EV_ABORT, k->self, txn, false);
    if (commit && k->w->nev <= MAX_EV)
        k->w->ev[k->w->nev - 1].gci = ((const Nines__CommitReq *)m->body)->gci;
    struct fk_txn *x = fk_txn(k, txn, false);
    bool again = false;
    for (uint32_t i = 0; i < k->nended && i < 256; i++)
        again |= k->ended[i] == txn;
    CU_ASSERT(x || again || k->w->fk_lenient); /* only kernels that ran ops hear of the end */
    uint32_t ctl = (uint32_t)m->from ? (uint32_t)m->from : k->self;
    if (x) {
        x->txn = 0;
        k->ended[k->nended++ % 256] = txn;
    }
    struct rt_msg *r;
    if (commit) {
        r = rt_msg_new(rt, NINES__MSG_TYPE__COMMIT_CONF);
        Nines__CommitConf *b = RT_BODY(r, Nines__CommitConf, nines__commit_conf__init);
        b->txn = txn;
        b->node = k->self;
    } else {
        r = rt_msg_new(rt, NINES__MSG_TYPE__ABORT_CONF);
        Nines__AbortConf *b = RT_BODY(r, Nines__AbortConf, nines__abort_conf__init);
        b->txn = txn;
        b->node = k->self;
    }
    rt_send(rt, ctl == k->self ? 0 : ctl, RT_SVC_TXC, r);
}

/* Standby: the end marks arrived -> READY_IND to both controllers. */
static void fk_on_upd_log(struct rt *rt, void *st, struct rt_msg *m)
{
    struct fk *k = st;
    const Nines__UpdLogReq *b = (const Nines__UpdLogReq *)m->body;
    for (size_t i = 0; i < b->n_prepared; i++) {
        const Nines__TxnEndMark *e = b->prepared[i];
        /* to the hsc alone (the ctl when the transaction has none) */
        send_ready(k->w, k->self, e->hsc ? e->hsc : e->ctl, e->txn, b->table, b->frag, true, 0,
                   0);
    }
    (void)rt;
}

static void fk_on_outcome_ref(struct rt *rt, void *st, struct rt_msg *m)
{
    struct fk *k = st;
    const Nines__TxcOutcomeRef *b = (const Nines__TxcOutcomeRef *)m->body;
    ev_add(k->w, EV_OREF, k->self, b->txn, false);
    (void)rt;
}

/* The fake kernel at `node` asks controller node `to` for txn's outcome. */
static void fk_ask_inc(struct world *w, uint32_t node, uint32_t to, uint64_t txn, uint64_t inc)
{
    struct rt_msg *m = rt_msg_new(w->rt[node], NINES__MSG_TYPE__TXC_OUTCOME_REQ);
    Nines__TxcOutcomeReq *b = RT_BODY(m, Nines__TxcOutcomeReq, nines__txc_outcome_req__init);
    b->txn = txn;
    b->node = node;
    b->asked_inc = inc;
    rt_send(w->rt[node], to == node ? 0 : to, RT_SVC_TXC, m);
}

static void fk_ask(struct world *w, uint32_t node, uint32_t to, uint64_t txn)
{
    fk_ask_inc(w, node, to, txn, 0);
}

static void fk_event(struct rt *rt, void *st, struct rt_msg *m) { (void)rt, (void)st, (void)m; }

/* The fake supervisor: records the controllers' commit-epoch answers. */
static void fs_on_gcp(struct rt *rt, void *st, struct rt_msg *m)
{
    struct fk *k = st;
    struct world *w = k->w;
    CU_ASSERT_FATAL(w->ngev < MAX_GEV);
    struct gev *g = &w->gev[w->ngev++];
    memset(g, 0, sizeof *g);
    g->type = m->type;
    g->at = k->self;
    switch (m->type) {
    case NINES__MSG_TYPE__GCP_PREPARE_CONF: {
        const Nines__GcpPrepareConf *b = (const Nines__GcpPrepareConf *)m->body;
        g->node = b->node, g->round = b->round, g->gci = b->gci;
        break;
    }
    case NINES__MSG_TYPE__GCP_COMMIT_CONF: {
        const Nines__GcpCommitConf *b = (const Nines__GcpCommitConf *)m->body;
        g->node = b->node, g->round = b->round, g->gci = b->gci;
        break;
    }
    case NINES__MSG_TYPE__GCP_COMMIT_REF: {
        const Nines__GcpCommitRef *b = (const Nines__GcpCommitRef *)m->body;
        g->node = b->node, g->round = b->round, g->error = b->error;
        break;
    }
    default:
        CU_FAIL("unexpected message at the fake supervisor");
        break;
    }
    (void)rt;
}

/* ---- fault filter ------------------------------------------------------ */

static enum rt_fault_verdict filter(void *ctx, struct rt *rt, net_addr to, enum rt_svc svc,
                                    struct rt_msg *m)
{
    struct world *w = ctx;
    uint32_t from = rt_self(rt);
    uint32_t dst = to == 0 ? from : (uint32_t)to;
    for (uint32_t i = 0; i < w->nflt; i++) {
        struct flt *f = &w->flt[i];
        if (f->count == 0 || f->type != m->type || (f->from && f->from != from) ||
            (f->to && f->to != dst))
            continue;
        f->count--;
        w->filtered++;
        if (f->act == FLT_DROP)
            return RT_FAULT_DROP;
        CU_ASSERT_FATAL(w->ntaken < MAX_TAKEN);
        w->taken[w->ntaken++] = (struct taken){from, to, svc, m};
        return RT_FAULT_TAKE;
    }
    return RT_FAULT_PASS;
}

static void flt_add(struct world *w, uint32_t type, uint32_t from, uint32_t to,
                    enum flt_action act, int count)
{
    CU_ASSERT_FATAL(w->nflt < 4);
    w->flt[w->nflt++] = (struct flt){type, from, to, act, count};
}

/* Deliver the held messages now, in the order they were taken. */
static void release_taken(struct world *w)
{
    uint32_t n = w->ntaken;
    w->ntaken = 0;
    for (uint32_t i = 0; i < n; i++)
        rt_send_nofault(w->rt[w->taken[i].from], w->taken[i].to, w->taken[i].svc,
                        w->taken[i].m);
}

/* ---- message table of the test nodes ----------------------------------- */

/* This world trusts every sender; who may send what on a real node is
 * sup_msgtab.c's business (tested in rt_sender_test). Like the real rows,
 * a peer's message of another epoch is dropped: a node set installed in
 * the middle of an exchange loses what is in flight, as on a real node. */
#define ROW(T, desc_, svc_, fn_) \
    [NINES__MSG_TYPE__##T] = {#T, &desc_, svc_, fn_, RT_FROM_ANY, RT_EPOCH_SAME}
static const struct rt_msg_entry msgtab[] = {
    ROW(TXN_REQ, nines__txn_req__descriptor, RT_SVC_TXC, txc_on_txn_req),
    ROW(KERN_OP_CONF, nines__kern_op_conf__descriptor, RT_SVC_TXC, txc_on_kern_op_conf),
    ROW(KERN_OP_REF, nines__kern_op_ref__descriptor, RT_SVC_TXC, txc_on_kern_op_ref),
    ROW(PREPARE_CONF, nines__prepare_conf__descriptor, RT_SVC_TXC, txc_on_prepare_conf),
    ROW(PREPARE_REF, nines__prepare_ref__descriptor, RT_SVC_TXC, txc_on_prepare_ref),
    ROW(READY_IND, nines__ready_ind__descriptor, RT_SVC_TXC, txc_on_ready_ind),
    ROW(COMMIT_CONF, nines__commit_conf__descriptor, RT_SVC_TXC, txc_on_commit_conf),
    ROW(ABORT_CONF, nines__abort_conf__descriptor, RT_SVC_TXC, txc_on_abort_conf),
    ROW(TXC_START_REQ, nines__txc_start_req__descriptor, RT_SVC_TXC, txc_on_start_req),
    ROW(TXC_READY_CONF, nines__txc_ready_conf__descriptor, RT_SVC_TXC, txc_on_ready_conf),
    ROW(TXC_FORGET_REQ, nines__txc_forget_req__descriptor, RT_SVC_TXC, txc_on_forget_req),
    ROW(TXC_ABORT_REQ, nines__txc_abort_req__descriptor, RT_SVC_TXC, txc_on_abort_req),
    ROW(TXC_ABORT_CONF, nines__txc_abort_conf__descriptor, RT_SVC_TXC, txc_on_abort_conf_hsc),
    ROW(TXC_OUTCOME_REQ, nines__txc_outcome_req__descriptor, RT_SVC_TXC, txc_on_outcome_req),
    ROW(TXC_OUTCOME_REF, nines__txc_outcome_ref__descriptor, RT_SVC_KERN, fk_on_outcome_ref),
    ROW(KERN_OP_REQ, nines__kern_op_req__descriptor, RT_SVC_KERN, fk_on_op_req),
    ROW(PREPARE_REQ, nines__prepare_req__descriptor, RT_SVC_KERN, fk_on_prepare_req),
    ROW(COMMIT_REQ, nines__commit_req__descriptor, RT_SVC_KERN, fk_on_end),
    ROW(ABORT_REQ, nines__abort_req__descriptor, RT_SVC_KERN, fk_on_end),
    ROW(UPD_LOG_REQ, nines__upd_log_req__descriptor, RT_SVC_KERN, fk_on_upd_log),
    ROW(TXN_OUTCOME_REQ, nines__txn_outcome_req__descriptor, RT_SVC_TXC, txc_on_txn_outcome_req),
    ROW(TXO_ASK_REQ, nines__txo_ask_req__descriptor, RT_SVC_TXC, txc_on_txo_ask_req),
    ROW(TXO_ASK_CONF, nines__txo_ask_conf__descriptor, RT_SVC_TXC, txc_on_txo_ask_conf),
    ROW(GCP_PREPARE_REQ, nines__gcp_prepare_req__descriptor, RT_SVC_TXC, txc_on_gcp_prepare_req),
    ROW(GCP_COMMIT_REQ, nines__gcp_commit_req__descriptor, RT_SVC_TXC, txc_on_gcp_commit_req),
    ROW(GCP_PREPARE_CONF, nines__gcp_prepare_conf__descriptor, RT_SVC_SUP, fs_on_gcp),
    ROW(GCP_COMMIT_CONF, nines__gcp_commit_conf__descriptor, RT_SVC_SUP, fs_on_gcp),
    ROW(GCP_COMMIT_REF, nines__gcp_commit_ref__descriptor, RT_SVC_SUP, fs_on_gcp),
};

/* ---- world ------------------------------------------------------------- */

static void mk_table(struct dict *d, const char *name, uint32_t ncols,
                     const struct dict_column *cols, uint32_t nfrags, uint32_t *id)
{
    struct dict_table_def def;
    memset(&def, 0, sizeof def);
    snprintf(def.name, sizeof def.name, "%s", name);
    static const uint16_t pk0[1] = {0};
    def.ncols = ncols;
    def.cols = cols;
    def.npk = 1;
    def.pk = pk0;
    def.method = DICT_FRAG_HASH;
    def.nfrags = nfrags;
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &def, id), 0);
}

#define COL(n, t, s) {.name = n, .type = t, .size = s}

static void build_dict(struct world *w, bool tpcb)
{
    struct dict_node nodes[NN];
    for (uint32_t i = 0; i < NN; i++)
        nodes[i] = (struct dict_node){i + 1, i % 2};
    CU_ASSERT_EQUAL_FATAL(dict_init(&w->d, nodes, NN), 0);
    static const struct dict_column kv[] = {COL("k", DICT_T_INT64, 0), COL("v", DICT_T_INT64, 0),
                                            COL("s", DICT_T_VARSTRING, 100)};
    static const struct dict_column vk[] = {COL("name", DICT_T_VARSTRING, 4000),
                                            COL("v", DICT_T_INT64, 0)};
    mk_table(&w->d, "kv", 3, kv, 8, &w->t_kv);
    mk_table(&w->d, "vk", 2, vk, 8, &w->t_vk);
    static const struct dict_column sc[] = {COL("k", DICT_T_INT64, 0), COL("v", DICT_T_INT64, 0)};
    mk_table(&w->d, "sc", 2, sc, 8, &w->t_sc);
    mk_table(&w->d, "se", 2, sc, 8, &w->t_se);
    {
        struct dict_table_def one;
        memset(&one, 0, sizeof one);
        snprintf(one.name, sizeof one.name, "one");
        static const uint16_t pk1[1] = {0};
        one.ncols = 2;
        one.cols = sc;
        one.npk = 1;
        one.pk = pk1;
        one.method = DICT_FRAG_HASH;
        one.nfrags = 8;
        one.replicas = 1;
        CU_ASSERT_EQUAL_FATAL(dict_create_table(&w->d, &one, &w->t_one), 0);
    }
    /* range table: fragments [..100), [100, 200), [200, 300), [300, ..) */
    static uint8_t sp[3][16];
    struct dict_key splits[3];
    for (int i = 0; i < 3; i++) {
        size_t l;
        enc_i64(100 * (i + 1), sp[i], &l);
        splits[i] = (struct dict_key){sp[i], (uint32_t)l};
    }
    struct dict_table_def def;
    memset(&def, 0, sizeof def);
    snprintf(def.name, sizeof def.name, "rg");
    static const uint16_t pk0[1] = {0};
    def.ncols = 2;
    def.cols = sc;
    def.npk = 1;
    def.pk = pk0;
    def.method = DICT_FRAG_RANGE;
    def.nsplits = 3;
    def.splits = splits;
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&w->d, &def, &w->t_rg), 0);
    if (!tpcb)
        return;
    static const struct dict_column br[] = {COL("bid", DICT_T_INT64, 0),
                                            COL("balance", DICT_T_INT64, 0),
                                            COL("filler", DICT_T_STRING, 88)};
    static const struct dict_column te[] = {COL("tid", DICT_T_INT64, 0), COL("bid", DICT_T_INT64, 0),
                                            COL("balance", DICT_T_INT64, 0),
                                            COL("filler", DICT_T_STRING, 84)};
    static const struct dict_column ac[] = {COL("aid", DICT_T_INT64, 0), COL("bid", DICT_T_INT64, 0),
                                            COL("balance", DICT_T_INT64, 0),
                                            COL("filler", DICT_T_STRING, 84)};
    static const struct dict_column hi[] = {
        COL("hid", DICT_T_INT64, 0),   COL("aid", DICT_T_INT64, 0),
        COL("tid", DICT_T_INT64, 0),   COL("bid", DICT_T_INT64, 0),
        COL("delta", DICT_T_INT64, 0), COL("ts", DICT_T_TIMESTAMP, 0),
        COL("filler", DICT_T_STRING, 22)};
    mk_table(&w->d, "branch", 3, br, 8, NULL);
    mk_table(&w->d, "teller", 4, te, 8, NULL);
    mk_table(&w->d, "account", 4, ac, 8, NULL);
    mk_table(&w->d, "history", 7, hi, 8, NULL);
}

static void settle(struct world *w, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        for (uint32_t n = 1; n <= NN; n++)
            if (!(w->dead & RT_NODE_BIT(n)))
                rt_step(w->rt[n], 0);
        net_testnet_advance(w->hub, 100);
    }
}

static void world_open(struct world *w, uint32_t timeout_ms, bool tpcb)
{
    memset(w, 0, sizeof *w);
    struct nines_conf *c = &w->cfg;
    snprintf(c->cluster, sizeof c->cluster, "txctest");
    c->nnodes = NN;
    for (uint32_t i = 0; i < NN; i++) {
        c->nodes[i].id = i + 1;
        c->nodes[i].site = i % 2;
        snprintf(c->nodes[i].host, sizeof c->nodes[i].host, "127.0.0.1");
        c->nodes[i].port = (uint16_t)(7100 + i);
    }
    c->heartbeat_ms = 50;
    c->heartbeat_misses = 2;
    c->reconnect_min_ms = 1;
    c->reconnect_max_ms = 10;
    c->max_frame_bytes = 1u << 22;
    c->send_queue_bytes = 64u << 20;
    snprintf(c->transport, sizeof c->transport, "test");
    build_dict(w, tpcb);
    CU_ASSERT_EQUAL_FATAL(net_testnet_new(&w->hub, c, cu_seed(5)), 0);
    for (uint32_t n = 1; n <= NN; n++) {
        struct net_transport *tr;
        CU_ASSERT_EQUAL_FATAL(net_testnet_transport(w->hub, n, &tr), 0);
        struct rt_config rc = {.self = n, .conf = c, .transport = tr, .msgtab = msgtab,
                               .msgtab_len = sizeof msgtab / sizeof msgtab[0]};
        CU_ASSERT_EQUAL_FATAL(rt_create(&w->rt[n], &rc), 0);
        struct txc_config tc = {.dict = world_dict, .dict_ctx = w, .timeout_ms = timeout_ms,
                                .client_send = client_send, .client_ctx = w,
                                .gcp_on = g_gcp_on, .max_inflight = g_max_inflight};
        CU_ASSERT_EQUAL_FATAL(txc_create(&w->txc[n], w->rt[n], &tc), 0);
        w->fk[n].w = w;
        w->fk[n].self = n;
        CU_ASSERT_EQUAL_FATAL(rt_task_add(w->rt[n], RT_SVC_KERN, "fake-kern", fk_event, &w->fk[n]),
                              0);
        CU_ASSERT_EQUAL_FATAL(rt_task_add(w->rt[n], RT_SVC_SUP, "fake-sup", fk_event, &w->fk[n]),
                              0);
        CU_ASSERT_EQUAL_FATAL(rt_fault_set_filter(w->rt[n], filter, w), 0);
    }
    /* what the supervisor does at start: every node a current member */
    uint64_t every = (1ull << NN) - 1;
    for (uint32_t n = 1; n <= NN; n++) {
        struct rt_nodeset ns = {.epoch = 1, .members = every, .current = every, .coordinator = 1,
                                .member = true, .serving = true};
        rt_install_nodeset(w->rt[n], &ns);
    }
    /* until every node reaches every other */
    for (int guard = 0; guard < 2000; guard++) {
        settle(w, 1);
        bool all = true;
        for (uint32_t a = 1; a <= NN; a++)
            for (uint32_t b = 1; b <= NN; b++)
                if (a != b && !net_peer_reachable(rt_net(w->rt[a]), b))
                    all = false;
        if (all)
            return;
    }
    CU_FAIL_FATAL("test nodes did not connect");
}

static void world_close(struct world *w)
{
    for (uint32_t i = 0; i < w->ntaken; i++)
        rt_msg_free(w->rt[w->taken[i].from], w->taken[i].m);
    w->ntaken = 0;
    for (uint32_t n = 1; n <= NN; n++) {
        txc_destroy(w->txc[n]);
        rt_destroy(w->rt[n]);
    }
    net_testnet_free(w->hub);
    dict_free(&w->d);
}

static uint32_t active_total(struct world *w)
{
    uint32_t a = 0;
    for (uint32_t n = 1; n <= NN; n++) {
        if (w->dead & RT_NODE_BIT(n))
            continue; /* a dead node's memory is gone with it */
        struct txc_stats st;
        txc_get_stats(w->txc[n], &st);
        a += st.active;
    }
    return a;
}

static struct txc_stats stats(struct world *w, uint32_t n)
{
    struct txc_stats st;
    txc_get_stats(w->txc[n], &st);
    return st;
}

/* ---- requests ---------------------------------------------------------- */

static Nines__Value *v_i64(struct rt_msg *m, int64_t x)
{
    Nines__Value *v = rt_msg_alloc(m, sizeof *v);
    nines__value__init(v);
    v->v_case = NINES__VALUE__V_I64;
    v->i64 = x;
    return v;
}

static Nines__Value *v_str(struct rt_msg *m, const char *s)
{
    Nines__Value *v = rt_msg_alloc(m, sizeof *v);
    nines__value__init(v);
    v->v_case = NINES__VALUE__V_STR;
    v->str = rt_msg_alloc(m, strlen(s) + 1);
    strcpy(v->str, s);
    return v;
}

static Nines__TxnReq *new_req(struct world *w, uint32_t node, struct rt_msg **out, uint64_t req_id,
                              uint64_t txn, Nines__TxnEnd end, uint32_t nops)
{
    struct rt_msg *m = rt_msg_new(w->rt[node], NINES__MSG_TYPE__TXN_REQ);
    Nines__TxnReq *b = RT_BODY(m, Nines__TxnReq, nines__txn_req__init);
    b->req_id = req_id;
    b->txn = txn;
    b->end = end;
    b->n_ops = nops;
    b->ops = nops ? rt_msg_alloc(m, nops * sizeof *b->ops) : NULL;
    for (uint32_t i = 0; i < nops; i++) {
        b->ops[i] = rt_msg_alloc(m, sizeof *b->ops[i]);
        nines__record_op__init(b->ops[i]);
    }
    *out = m;
    return b;
}

static void submit(struct world *w, uint32_t node, net_addr conn, struct rt_msg *m)
{
    m->from = conn;
    rt_post_local(w->rt[node], RT_SVC_TXC, m);
}

/* kv op: ADD v += delta on key (by table name), or GET */
static void kv_op(struct rt_msg *m, Nines__RecordOp *op, Nines__OpType t, int64_t key, int64_t d)
{
    op->op = t;
    op->table = (char *)"kv";
    op->n_key = 1;
    op->key = rt_msg_alloc(m, sizeof *op->key);
    op->key[0] = v_i64(m, key);
    op->column = 1;
    op->delta = d;
}

static void submit_tpcb(struct world *w, uint32_t node, net_addr conn, uint64_t req_id, int64_t aid,
                        int64_t tid, int64_t bid, int64_t delta)
{
    struct rt_msg *m;
    Nines__TxnReq *b = new_req(w, node, &m, req_id, 0, NINES__TXN_END__TXN_END_COMMIT, 0);
    Nines__TpcbCall *c = rt_msg_alloc(m, sizeof *c);
    nines__tpcb_call__init(c);
    c->aid = aid;
    c->tid = tid;
    c->bid = bid;
    c->delta = delta;
    b->proc_case = NINES__TXN_REQ__PROC_TPCB;
    b->tpcb = c;
    submit(w, node, conn, m);
}

/* ---- tests ------------------------------------------------------------- */

static uint64_t hsc_sum(struct world *w, size_t off)
{
    uint64_t v = 0;
    for (uint32_t n = 1; n <= NN; n++) {
        struct txc_stats st = stats(w, n);
        v += *(const uint64_t *)((const char *)&st + off);
    }
    return v;
}
#define HSUM(w, field) hsc_sum((w), offsetof(struct txc_stats, field))

/* One TPC-B transaction: with `hold_ready_conf` the hsc's TXC_READY_CONF
 * is held (COMMIT is recorded at the hsc, the client not answered yet),
 * else the standby READY_INDs are held (nothing is decided). Either way
 * the answer comes only after the release, and only once the hsc has
 * recorded COMMIT. */
static void sequencing(struct world *w, bool hold_ready_conf, uint64_t req_id, int64_t aid)
{
    uint32_t nev0 = w->nev, nans0 = w->nans;
    uint64_t hr0 = HSUM(w, hsc_ready), hf0 = HSUM(w, hsc_forgotten), hs0 = HSUM(w, hsc_started);
    if (hold_ready_conf)
        flt_add(w, NINES__MSG_TYPE__TXC_READY_CONF, 0, 0, FLT_TAKE, 1);
    else
        w->hold_s = true;
    submit_tpcb(w, 1, CONN(1), req_id, aid, 3, 0, 5);
    settle(w, 100);
    CU_ASSERT_EQUAL(w->nans, nans0);
    CU_ASSERT_FATAL(w->nev > nev0 && w->ev[nev0].type == EV_OPREQ);
    uint64_t txn = w->ev[nev0].txn;
    CU_ASSERT_EQUAL(txn >> 56, 1u);
    for (uint32_t i = nev0; i < w->nev; i++)
        if (w->ev[i].type == EV_OPREQ)
            CU_ASSERT_TRUE(w->ev[i].prepare); /* one-shot: prepare=1 */
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    CU_ASSERT_EQUAL(HSUM(w, hsc_started), hs0 + 1);
    CU_ASSERT_EQUAL(HSUM(w, hsc_ready), hr0 + (hold_ready_conf ? 1 : 0));
    if (hold_ready_conf) {
        CU_ASSERT_EQUAL(w->ntaken, 1);
        release_taken(w);
    } else {
        CU_ASSERT_TRUE(w->nheld > 0);
        release(w, true);
    }
    w->nflt = 0;
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(1), req_id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->txn, txn);
    CU_ASSERT_EQUAL(a->value, 1000 + 5); /* the account's new balance */
    CU_ASSERT_EQUAL(a->commits_before, ev_count(w, EV_COMMIT, 0) - ev_count(w, EV_COMMIT, txn));
    CU_ASSERT_EQUAL(a->hsc_ready_before, hr0 + 1); /* COMMIT recorded before the answer */
    CU_ASSERT_EQUAL(a->sreadies_before, ev_count(w, EV_SREADY, 0));
    CU_ASSERT_TRUE(ev_count(w, EV_SREADY, txn) >= 1);
    /* COMMIT_REQ to exactly the kernels that ran ops; both controllers forgot */
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), ev_nodes(w, EV_OPREQ, txn));
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    for (uint32_t n = 1; n <= NN; n++)
        if (stats(w, n).hsc_started)
            CU_ASSERT_EQUAL(n % 2, 0); /* hsc at the other site */
    CU_ASSERT_EQUAL(HSUM(w, hsc_forgotten), hf0 + 1);
    CU_ASSERT_EQUAL(active_total(w), 0);
}

/* The client answer waits for every primary ready, every standby
 * READY_IND and the hsc's recorded COMMIT; commit follows it. */
static void test_commit_sequencing(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    sequencing(w, true, 7, 12);
    sequencing(w, false, 8, 13);
    CU_ASSERT_EQUAL(stats(w, 1).committed, 2);
    world_close(w);
}

/* Many TPC-B transactions in flight on one connection, at every node. */
static void test_pipelined(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    enum { N = 60 };
    for (uint32_t i = 0; i < N; i++)
        submit_tpcb(w, 1 + i % NN, CONN(1 + i % NN), 100 + i, i * 7 % 50, i % 10, i % 3, 1);
    settle(w, 300);
    uint32_t conf = 0;
    for (uint32_t i = 0; i < N; i++) {
        struct ans *a = answer_for(w, CONN(1 + i % NN), 100 + i);
        CU_ASSERT_PTR_NOT_NULL(a);
        if (a && a->type == NINES__MSG_TYPE__TXN_CONF)
            conf++;
        else if (a)
            printf("\nrequest %u refused: %s\n", i, a->detail);
    }
    CU_ASSERT_EQUAL(conf, N);
    CU_ASSERT_EQUAL(w->nans, N);
    uint64_t committed = 0;
    for (uint32_t n = 1; n <= NN; n++)
        committed += stats(w, n).committed;
    CU_ASSERT_EQUAL(committed, N);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, 0), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* KERN_OP_REF: ABORT_REQ to every kernel that ran ops, TXN_REF with the
 * kernel's error, FORGET(committed=0) to the hsc. */
static void test_kernel_refusals(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    submit_tpcb(w, 1, CONN(1), 1, KEY_DEADLOCK, 1, 0, 10);
    submit_tpcb(w, 2, CONN(2), 2, 5, KEY_MISSING, 0, 10);
    settle(w, 200);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(a->error, NINES_EDEADLOCK);
    CU_ASSERT_EQUAL(a->failed_op, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->detail, "account"));
    CU_ASSERT_PTR_NOT_NULL(strstr(a->detail, "deadlock victim"));
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, a->txn), ev_nodes(w, EV_OPREQ, a->txn));
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, a->txn), 0);
    struct ans *b = answer_for(w, CONN(2), 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->error, NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(b->failed_op, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(b->detail, "teller"));
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, b->txn), ev_nodes(w, EV_OPREQ, b->txn));
    /* duplicate key: two interactive inserts of the same kv key */
    struct rt_msg *m;
    for (int i = 0; i < 2; i++) {
        Nines__TxnReq *r = new_req(w, 3, &m, 10 + (uint64_t)i, 0, NINES__TXN_END__TXN_END_COMMIT, 1);
        Nines__RecordOp *op = r->ops[0];
        op->op = NINES__OP_TYPE__OP_INSERT;
        op->table_id = w->t_kv;
        op->row = rt_msg_alloc(m, sizeof *op->row);
        nines__row__init(op->row);
        op->row->n_values = 3;
        op->row->values = rt_msg_alloc(m, 3 * sizeof *op->row->values);
        op->row->values[0] = v_i64(m, 99);
        op->row->values[1] = v_i64(m, 1);
        op->row->values[2] = v_str(m, "x");
        submit(w, 3, CONN(3), m);
        settle(w, 100);
    }
    CU_ASSERT_EQUAL(answer_for(w, CONN(3), 10)->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(answer_for(w, CONN(3), 11)->error, NINES_EEXIST);
    CU_ASSERT_EQUAL(stats(w, 1).aborted, 1);
    settle(w, 50);
    CU_ASSERT_EQUAL(active_total(w), 0); /* late readies at the hsc are recognized */
    world_close(w);
}

/* Interactive: ops with end=NONE, more ops, commit (prepare=1 to the node
 * with new ops, PREPARE_REQ to the others); rollback; busy/unknown txn. */
static void test_interactive(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    struct rt_msg *m;
    Nines__TxnReq *r = new_req(w, 1, &m, 1, 0, NINES__TXN_END__TXN_END_NONE, 4);
    for (int i = 0; i < 4; i++)
        kv_op(m, r->ops[i], NINES__OP_TYPE__OP_ADD, 10 + i, 1);
    submit(w, 1, CONN(1), m);
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL_FATAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->nresults, 4);
    uint64_t txn = a->txn;
    CU_ASSERT_NOT_EQUAL(txn, 0);
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn) + ev_count(w, EV_ABORT, txn), 0);
    uint64_t ran1 = ev_nodes(w, EV_OPREQ, txn);
    /* a second connection cannot use it */
    new_req(w, 1, &m, 2, txn, NINES__TXN_END__TXN_END_COMMIT, 0);
    submit(w, 1, CONN(2), m);
    /* one more op, then commit with a GET */
    r = new_req(w, 1, &m, 3, txn, NINES__TXN_END__TXN_END_NONE, 1);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_ADD, 20, 2);
    submit(w, 1, CONN(1), m);
    settle(w, 100);
    CU_ASSERT_EQUAL(answer_for(w, CONN(2), 2)->error, NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(answer_for(w, CONN(1), 3)->type, NINES__MSG_TYPE__TXN_CONF);
    r = new_req(w, 1, &m, 4, txn, NINES__TXN_END__TXN_END_COMMIT, 1);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_GET, 10, 0);
    submit(w, 1, CONN(1), m);
    settle(w, 200);
    a = answer_for(w, CONN(1), 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->nresults, 1);
    CU_ASSERT_EQUAL(a->first_row_val, 1000 + 1);
    uint64_t ran = ev_nodes(w, EV_OPREQ, txn);
    CU_ASSERT_TRUE((ran & ran1) == ran1);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), ran);
    /* every kernel voted: prepare=1 ops or a PREPARE_REQ */
    uint64_t voted = ev_nodes(w, EV_PREPARE, txn);
    for (uint32_t i = 0; i < w->nev; i++)
        if (w->ev[i].type == EV_OPREQ && w->ev[i].txn == txn && w->ev[i].prepare)
            voted |= 1ull << w->ev[i].node;
    CU_ASSERT_EQUAL(voted, ran);
    CU_ASSERT_TRUE(ev_count(w, EV_PREPARE, txn) >= 1);
    /* rollback */
    r = new_req(w, 2, &m, 5, 0, NINES__TXN_END__TXN_END_NONE, 1);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_ADD, 30, 1);
    submit(w, 2, CONN(5), m);
    settle(w, 100);
    uint64_t t2 = answer_for(w, CONN(5), 5)->txn;
    new_req(w, 2, &m, 6, t2, NINES__TXN_END__TXN_END_ROLLBACK, 0);
    submit(w, 2, CONN(5), m);
    settle(w, 100);
    a = answer_for(w, CONN(5), 6);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->error, NINES_EABORTED);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, t2), ev_nodes(w, EV_OPREQ, t2));
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, t2), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* A client connection that closes aborts its open transactions (an idle
 * interactive one and a one-shot one waiting for readies). */
static void test_client_close(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    struct rt_msg *m;
    Nines__TxnReq *r = new_req(w, 1, &m, 1, 0, NINES__TXN_END__TXN_END_NONE, 2);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_ADD, 1, 1);
    kv_op(m, r->ops[1], NINES__OP_TYPE__OP_ADD, 2, 1);
    submit(w, 1, CONN(9), m);
    settle(w, 100);
    uint64_t t1 = answer_for(w, CONN(9), 1)->txn;
    w->hold_s = true;
    submit_tpcb(w, 1, CONN(9), 2, 1, 2, 0, 1);
    submit_tpcb(w, 1, CONN(8), 3, 3, 4, 1, 1); /* another client: unaffected */
    settle(w, 100);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(9), 2));
    uint32_t nans = w->nans;
    struct rt_msg *c = rt_msg_new(w->rt[1], RT_MSG_CLIENT_CLOSED);
    c->from = CONN(9);
    rt_post_local(w->rt[1], RT_SVC_TXC, c);
    settle(w, 100);
    CU_ASSERT_EQUAL(w->nans, nans); /* nobody to answer */
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, t1), ev_nodes(w, EV_OPREQ, t1));
    CU_ASSERT_TRUE(ev_nodes(w, EV_ABORT, t1) != 0);
    CU_ASSERT_EQUAL(stats(w, 1).aborted, 2);
    release(w, true);
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(8), 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(stats(w, 1).active, 0);
    world_close(w);
}

/* max_requests_per_connection (txctl/README.md "Requests in flight"): a
 * connection's TXN_REQ beyond its in-flight limit is refused at once with
 * NINES_EAGAIN naming the limit; other connections are unaffected; answers
 * and a closed connection give the slots back. */
static void expect_ref(struct world *w, net_addr conn, uint64_t req, int err, const char *needle);
static void test_inflight_limit(void)
{
    struct world *w = &W;
    g_max_inflight = 2;
    world_open(w, 10000, true);
    g_max_inflight = 0;
    w->hold_s = true; /* commits wait: requests stay in flight */
    submit_tpcb(w, 1, CONN(5), 1, 1, 1, 0, 1);
    submit_tpcb(w, 1, CONN(5), 2, 2, 2, 1, 1);
    submit_tpcb(w, 1, CONN(5), 3, 3, 3, 2, 1);
    submit_tpcb(w, 1, CONN(6), 4, 4, 4, 0, 1);
    submit_tpcb(w, 1, CONN(6), 5, 5, 5, 1, 1);
    settle(w, 100);
    expect_ref(w, CONN(5), 3, NINES_EAGAIN, "max_requests_per_connection 2");
    expect_ref(w, CONN(5), 3, NINES_EAGAIN, "already has 2 requests in flight at node 1");
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(5), 1));
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(5), 2));
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(6), 4)); /* its own two: not refused */
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(6), 5));
    submit_tpcb(w, 1, CONN(5), 6, 6, 6, 2, 1); /* still full */
    settle(w, 10);
    expect_ref(w, CONN(5), 6, NINES_EAGAIN, "max_requests_per_connection 2");
    CU_ASSERT_EQUAL(stats(w, 1).refused_inflight, 2);
    /* answered: the slots are free again */
    release(w, true);
    settle(w, 100);
    for (uint64_t r = 1; r <= 5; r++) {
        if (r == 3)
            continue;
        struct ans *a = answer_for(w, r <= 2 ? CONN(5) : CONN(6), r);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    }
    w->hold_s = true;
    submit_tpcb(w, 1, CONN(5), 7, 7, 7, 0, 1);
    submit_tpcb(w, 1, CONN(5), 8, 8, 8, 1, 1);
    settle(w, 100);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(5), 7));
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(5), 8));
    /* the connection closes with two in flight: its count is dropped (an
     * address is never reused by TCP; here it is, to see the count gone) */
    struct rt_msg *c = rt_msg_new(w->rt[1], RT_MSG_CLIENT_CLOSED);
    c->from = CONN(5);
    rt_post_local(w->rt[1], RT_SVC_TXC, c);
    settle(w, 100);
    release(w, true);
    settle(w, 100);
    submit_tpcb(w, 1, CONN(5), 9, 9, 9, 2, 1);
    submit_tpcb(w, 1, CONN(5), 10, 1, 1, 0, 1);
    settle(w, 100);
    for (uint64_t r = 9; r <= 10; r++) {
        struct ans *a = answer_for(w, CONN(5), r);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    }
    CU_ASSERT_EQUAL(stats(w, 1).refused_inflight, 2);
    CU_ASSERT_EQUAL(stats(w, 1).active, 0);
    world_close(w);
}

/* The controller timeout aborts a transaction whose standby never
 * answers, naming what it waited for. */
static void test_timeout(void)
{
    struct world *w = &W;
    world_open(w, 30, true);
    w->hold_s = true;
    submit_tpcb(w, 1, CONN(1), 1, 1, 2, 0, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct ans *a = NULL;
    for (;;) {
        settle(w, 1);
        a = answer_for(w, CONN(1), 1);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (a || t1.tv_sec - t0.tv_sec > 10)
            break;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(a->error, NINES_ETIMEDOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->detail, "standby"));
    settle(w, 100);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, a->txn), ev_nodes(w, EV_OPREQ, a->txn));
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, a->txn), 0);
    CU_ASSERT_EQUAL(stats(w, 1).timeouts, 1);
    CU_ASSERT_EQUAL(stats(w, 1).active, 0);
    w->nheld = 0;
    world_close(w);
}

/* hsc role on its own: readies before TXC_START_REQ are kept, READY_CONF
 * only when every participant (primary and standby) is ready, forget. */
static void test_hsc(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    uint64_t txn = (1ull << 56) | 12345; /* controller: node 1 */
    struct rt *rt = w->rt[2];
    struct rt_msg *m = rt_msg_new(rt, NINES__MSG_TYPE__READY_IND);
    Nines__ReadyInd *ri = RT_BODY(m, Nines__ReadyInd, nines__ready_ind__init);
    ri->txn = txn, ri->node = 3, ri->table = 1, ri->frag = 5;
    m->from = 3;
    rt_post_local(rt, RT_SVC_TXC, m);
    settle(w, 5);
    CU_ASSERT_EQUAL(stats(w, 2).active, 1);
    m = rt_msg_new(rt, NINES__MSG_TYPE__TXC_START_REQ);
    Nines__TxcStartReq *sr = RT_BODY(m, Nines__TxcStartReq, nines__txc_start_req__init);
    sr->txn = txn;
    sr->ctl = 1;
    sr->n_parts = 2;
    sr->parts = rt_msg_alloc(m, 2 * sizeof *sr->parts);
    for (int i = 0; i < 2; i++) {
        sr->parts[i] = rt_msg_alloc(m, sizeof *sr->parts[i]);
        nines__participant__init(sr->parts[i]);
        sr->parts[i]->table = 1;
        sr->parts[i]->frag = 5 + (uint32_t)i;
        sr->parts[i]->primary = 3;
        sr->parts[i]->standby = i == 0 ? 4 : 0;
    }
    m->from = 1;
    rt_post_local(rt, RT_SVC_TXC, m);
    settle(w, 5);
    CU_ASSERT_EQUAL(stats(w, 2).hsc_started, 1);
    CU_ASSERT_EQUAL(stats(w, 2).hsc_ready, 0); /* standby of fragment 5 missing */
    m = rt_msg_new(rt, NINES__MSG_TYPE__READY_IND);
    ri = RT_BODY(m, Nines__ReadyInd, nines__ready_ind__init);
    ri->txn = txn, ri->node = 4, ri->table = 1, ri->frag = 5, ri->standby = 1;
    m->from = 4;
    rt_post_local(rt, RT_SVC_TXC, m);
    uint64_t stale1 = stats(w, 1).stale;
    settle(w, 20);
    CU_ASSERT_EQUAL(stats(w, 2).hsc_ready, 1);
    CU_ASSERT_EQUAL(stats(w, 1).stale, stale1 + 1); /* node 1 got the READY_CONF */
    /* a forget from a node that is not the controller is ignored */
    static const uint32_t froms[] = {3, 1};
    for (int f = 0; f < 2; f++) {
        uint32_t from = froms[f];
        m = rt_msg_new(rt, NINES__MSG_TYPE__TXC_FORGET_REQ);
        Nines__TxcForgetReq *fr = RT_BODY(m, Nines__TxcForgetReq, nines__txc_forget_req__init);
        fr->txn = txn;
        fr->committed = 1;
        m->from = from;
        rt_post_local(rt, RT_SVC_TXC, m);
        settle(w, 5);
        CU_ASSERT_EQUAL(stats(w, 2).active, from == 3 ? 1u : 0u);
    }
    CU_ASSERT_EQUAL(stats(w, 2).hsc_forgotten, 1);
    world_close(w);
}

/* ---- faults of the commit path (issue 8, defects 1, 2, 3, 6) ------------ */

static void advance(struct world *w, uint32_t node, uint64_t ms)
{
    CU_ASSERT_EQUAL_FATAL(rt_fault_advance_clock(w->rt[node], ms * 1000u), 0);
    settle(w, 50);
}

/* The txn of the first KERN_OP_REQ after event index nev0. */
static uint64_t txn_after(struct world *w, uint32_t nev0)
{
    for (uint32_t i = nev0; i < w->nev; i++)
        if (w->ev[i].type == EV_OPREQ)
            return w->ev[i].txn;
    CU_FAIL_FATAL("no KERN_OP_REQ");
    return 0;
}

/* A node other than `not` that ran ops of txn (0: none). */
static uint32_t remote_participant(struct world *w, uint64_t txn, uint32_t not)
{
    uint64_t ran = ev_nodes(w, EV_OPREQ, txn);
    for (uint32_t n = 1; n <= NN; n++)
        if (n != not && (ran & (1ull << n)))
            return n;
    return 0;
}

/* Defect 1, run X: the hsc records COMMIT, its TXC_READY_CONF is delayed
 * and the controller's timer fires first. The controller may not abort on
 * its own: it asks the hsc, which answers "committed"; the client hears
 * commit, every kernel commits, nobody aborts. */
static void test_commit_point_timer_race(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    uint32_t nev0 = w->nev;
    flt_add(w, NINES__MSG_TYPE__TXC_READY_CONF, 0, 1, FLT_TAKE, 1);
    submit_tpcb(w, 1, CONN(1), 1, 21, 2, 0, 5);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL(w->ntaken, 1);            /* COMMIT recorded, the ack delayed */
    CU_ASSERT_EQUAL(HSUM(w, hsc_ready), 1);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1));
    advance(w, 1, 10000);                     /* the ctl's timeout fires now */
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->value, 1000 + 5);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), ev_nodes(w, EV_OPREQ, txn));
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    CU_ASSERT_EQUAL(HSUM(w, hsc_aborted), 0);
    w->nflt = 0;
    release_taken(w);                         /* the delayed ack: a repeat */
    settle(w, 50);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    CU_ASSERT_EQUAL(stats(w, 1).committed, 1);
    CU_ASSERT_EQUAL(stats(w, 1).aborted, 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* Defect 1, the other order: nothing is decided when the timer fires (a
 * standby's READY_IND is late). The hsc records ABORT at the ctl's request;
 * the late ready changes nothing. Likewise a client that closes after
 * START: the abort goes through the hsc. */
static void test_commit_point_abort_asks(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    uint32_t nev0 = w->nev;
    w->hold_s = true;
    submit_tpcb(w, 1, CONN(1), 1, 21, 2, 0, 5);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL(HSUM(w, hsc_started), 1);
    advance(w, 1, 10000);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(a->error, NINES_ETIMEDOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->detail, "hot-standby controller"));
    CU_ASSERT_EQUAL(HSUM(w, hsc_aborted), 1);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, txn), ev_nodes(w, EV_OPREQ, txn));
    release(w, true); /* the late standby readies */
    settle(w, 50);
    CU_ASSERT_EQUAL(HSUM(w, hsc_ready), 0);
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    /* client close after START */
    nev0 = w->nev;
    w->hold_s = true;
    submit_tpcb(w, 1, CONN(2), 2, 22, 3, 0, 5);
    settle(w, 100);
    txn = txn_after(w, nev0);
    struct rt_msg *c = rt_msg_new(w->rt[1], RT_MSG_CLIENT_CLOSED);
    c->from = CONN(2);
    rt_post_local(w->rt[1], RT_SVC_TXC, c);
    settle(w, 50);
    CU_ASSERT_EQUAL(HSUM(w, hsc_aborted), 2);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, txn), ev_nodes(w, EV_OPREQ, txn));
    release(w, true);
    settle(w, 50);
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* Defect 2: no silent 1-safe answer. A node set without the other site
 * (nodes 2 and 4 left): every write node 1 controls is refused "not
 * committed" (no standby, no log copy, no node to hold the decision)
 * instead of committing in one site's memory. A controller that cannot
 * build TXC_START_REQ (no memory) aborts instead of running without its
 * hsc. */
static void ns_install(struct world *w, uint64_t epoch, uint64_t members);
static void test_no_silent_1safe(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    ns_install(w, 2, RT_NODE_BIT(1) | RT_NODE_BIT(3));
    settle(w, 50);
    for (uint32_t i = 0; i < 8; i++)
        submit_tpcb(w, 1, CONN(1), 10 + i, 31 + i, i, i % 3, 1);
    settle(w, 100);
    for (uint32_t i = 0; i < 8; i++) {
        struct ans *a = answer_for(w, CONN(1), 10 + i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
        CU_ASSERT_EQUAL(a->error, NINES_EUNREACHABLE);
        CU_ASSERT_PTR_NOT_NULL(strstr(a->detail, "not committed"));
    }
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, 0), 0);
    CU_ASSERT_TRUE(stats(w, 1).refused_1safe >= 8);
    ns_install(w, 3, (1ull << NN) - 1);
    settle(w, 20);
#ifdef NINES_FAULTS
    uint32_t nev0 = w->nev;
    nines_fault_arm("txc.start.nomem", 1);
    submit_tpcb(w, 1, CONN(1), 30, 41, 4, 1, 1);
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(1), 30);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(a->error, NINES_ENOMEM);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->detail, "not committed"));
    CU_ASSERT_EQUAL(w->nev, nev0); /* refused before any kernel was asked */
    /* healed: the same request commits */
    submit_tpcb(w, 1, CONN(1), 31, 41, 4, 1, 1);
    settle(w, 100);
    CU_ASSERT_EQUAL(answer_for(w, CONN(1), 31)->type, NINES__MSG_TYPE__TXN_CONF);
#endif
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* Defects 3 and 6 (controller side): a lost COMMIT_REQ / ABORT_REQ is
 * re-sent until confirmed; neither controller forgets before every kernel
 * confirmed (the hsc keeps the decision meanwhile); a kernel that asks for
 * the outcome is told. */
static void test_second_phase_retry(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    /* COMMIT_REQ lost once */
    uint32_t nev0 = w->nev;
    flt_add(w, NINES__MSG_TYPE__TXC_READY_CONF, 0, 1, FLT_TAKE, 1);
    submit_tpcb(w, 1, CONN(1), 1, 21, 2, 0, 5);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    uint32_t r = remote_participant(w, txn, 1);
    CU_ASSERT_FATAL(r != 0);
    w->nflt = 0;
    flt_add(w, NINES__MSG_TYPE__COMMIT_REQ, 1, r, FLT_DROP, 1);
    release_taken(w);
    settle(w, 100);
    CU_ASSERT_EQUAL(answer_for(w, CONN(1), 1)->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(w->filtered, 2);
    CU_ASSERT_FALSE(ev_nodes(w, EV_COMMIT, txn) & (1ull << r)); /* lost */
    CU_ASSERT_EQUAL(stats(w, 1).active, 1);      /* the ctl keeps it */
    CU_ASSERT_EQUAL(HSUM(w, hsc_forgotten), 0);  /* the hsc keeps the decision */
    /* the kernel asks the ctl: COMMIT_REQ again */
    fk_ask(w, r, 1, txn);
    settle(w, 50);
    CU_ASSERT_TRUE(ev_nodes(w, EV_COMMIT, txn) & (1ull << r));
    CU_ASSERT_EQUAL(active_total(w), 0);
    CU_ASSERT_EQUAL(HSUM(w, hsc_forgotten), 1);

    /* COMMIT_CONF lost for many rounds: both controllers hold on and the
     * ctl re-sends until a confirmation comes */
    nev0 = w->nev;
    flt_add(w, NINES__MSG_TYPE__TXC_READY_CONF, 0, 1, FLT_TAKE, 1);
    submit_tpcb(w, 1, CONN(1), 2, 23, 4, 0, 5);
    settle(w, 100);
    txn = txn_after(w, nev0);
    r = remote_participant(w, txn, 1);
    CU_ASSERT_FATAL(r != 0);
    w->nflt = 0;
    flt_add(w, NINES__MSG_TYPE__COMMIT_CONF, r, 1, FLT_DROP, 5);
    release_taken(w);
    settle(w, 100);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(stats(w, 1).active, 1);
        CU_ASSERT_EQUAL(HSUM(w, hsc_forgotten), 1);
        advance(w, 1, 2500); /* retry interval: timeout / 4 */
    }
    CU_ASSERT_TRUE(stats(w, 1).resent >= 5);
    CU_ASSERT_EQUAL(active_total(w), 0);
    CU_ASSERT_EQUAL(HSUM(w, hsc_forgotten), 2);

    /* ABORT_REQ lost once (a kernel refused an op) */
    nev0 = w->nev;
    flt_add(w, NINES__MSG_TYPE__ABORT_REQ, 1, 0, FLT_DROP, 1);
    submit_tpcb(w, 1, CONN(1), 3, 5, KEY_MISSING, 0, 10);
    settle(w, 100);
    txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL(answer_for(w, CONN(1), 3)->error, NINES_ENOTFOUND);
    CU_ASSERT_NOT_EQUAL(ev_nodes(w, EV_ABORT, txn), ev_nodes(w, EV_OPREQ, txn));
    CU_ASSERT_EQUAL(stats(w, 1).active, 1);
    advance(w, 1, 2500);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, txn), ev_nodes(w, EV_OPREQ, txn));
    CU_ASSERT_EQUAL(active_total(w), 0);

    /* questions: an id of this incarnation the ctl no longer holds was
     * finished (abort is the answer); an earlier incarnation's id cannot be
     * told (TXC_OUTCOME_REF); an hsc without a decision records ABORT */
    uint32_t na = ev_count(w, EV_ABORT, 0);
    w->fk_lenient = true;
    uint64_t mine = txn + 1000;
    fk_ask(w, 3, 1, mine);
    settle(w, 20);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, mine), 1);
    uint64_t old = (1ull << 56) | 7;
    fk_ask(w, 3, 1, old);
    settle(w, 20);
    CU_ASSERT_EQUAL(ev_count(w, EV_OREF, old), 1);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, old), 0);
    uint64_t ha = stats(w, 2).hsc_aborted;
    fk_ask(w, 3, 2, old); /* node 2 as the hsc of node 1's txn */
    settle(w, 20);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, old), 1);
    CU_ASSERT_EQUAL(stats(w, 2).hsc_aborted, ha + 1);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, 0), na + 2);
    /* a kernel that prepared under another incarnation of the hsc's node
     * gets no decision from this one; under this one, it does */
    uint64_t old2 = old + 1, inc2 = net_incarnation(rt_net(w->rt[2]));
    fk_ask_inc(w, 3, 2, old2, inc2 - 1);
    settle(w, 20);
    CU_ASSERT_EQUAL(ev_count(w, EV_OREF, old2), 1);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, old2), 0);
    fk_ask_inc(w, 3, 2, old2, inc2);
    settle(w, 20);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, old2), 1);
    /* the hsc re-sends its decision; node 1 does not hold the txn and its id
     * is of an earlier incarnation, so the entry stays for takeover */
    world_close(w);
}

/* A kernel's answer lost after the hsc recorded COMMIT: the transaction is
 * committed all the same; at the ctl's timeout the client hears commit, with
 * the procedure's value as the hsc recorded it (from the primary's ready). */
static void test_answer_lost_after_commit(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    const struct dict_table *acct = dict_table_by_name(&w->d, "account");
    CU_ASSERT_PTR_NOT_NULL_FATAL(acct);
    uint8_t kb[16];
    size_t kl;
    enc_i64(21, kb, &kl);
    int frag = dict_route(acct, kb, kl);
    CU_ASSERT_FATAL(frag >= 0);
    uint32_t x = acct->frags[frag].primary; /* runs op 0, the account's ADD */
    flt_add(w, NINES__MSG_TYPE__KERN_OP_CONF, x, 1, FLT_DROP, 1);
    uint32_t nev0 = w->nev;
    submit_tpcb(w, 1, CONN(1), 1, 21, 2, 0, 5);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL(w->filtered, 1);
    CU_ASSERT_EQUAL(HSUM(w, hsc_ready), 1);     /* COMMIT recorded at the hsc */
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1)); /* the ctl lacks an answer */
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    advance(w, 1, 10000);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->value, 1000 + 5); /* the hsc's record of it */
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), ev_nodes(w, EV_OPREQ, txn));
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

static void expect_ref(struct world *w, net_addr conn, uint64_t req, int err, const char *needle)
{
    struct ans *a = answer_for(w, conn, req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(a->error, err);
    if (!strstr(a->detail, needle)) {
        printf("\nrequest %" PRIu64 ": detail '%s' lacks '%s'\n", req, a->detail, needle);
        CU_FAIL("detail");
    }
}

/* Bad requests get TXN_REF with a clear detail; the connection serves on. */
static void test_bad_requests(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    net_addr c = CONN(4);
    struct rt_msg *m;
    Nines__TxnReq *r = new_req(w, 1, &m, 1, 0, NINES__TXN_END__TXN_END_COMMIT, 1);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_GET, 1, 0);
    r->ops[0]->table = (char *)"nosuch";
    submit(w, 1, c, m);
    r = new_req(w, 1, &m, 2, 0, NINES__TXN_END__TXN_END_COMMIT, 1);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_GET, 1, 0);
    r->ops[0]->table_id = 999;
    submit(w, 1, c, m);
    r = new_req(w, 1, &m, 3, 0, NINES__TXN_END__TXN_END_COMMIT, 2);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_GET, 1, 0);
    kv_op(m, r->ops[1], NINES__OP_TYPE__OP_GET, 1, 0);
    r->ops[1]->key[0] = v_str(m, "abc");
    submit(w, 1, c, m);
    r = new_req(w, 1, &m, 4, 0, NINES__TXN_END__TXN_END_COMMIT, 1);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_GET, 1, 0);
    r->ops[0]->n_key = 0;
    submit(w, 1, c, m);
    static char longname[3001];
    memset(longname, 'x', 3000);
    r = new_req(w, 1, &m, 5, 0, NINES__TXN_END__TXN_END_COMMIT, 1);
    r->ops[0]->op = NINES__OP_TYPE__OP_GET;
    r->ops[0]->table = (char *)"vk";
    r->ops[0]->n_key = 1;
    r->ops[0]->key = rt_msg_alloc(m, sizeof *r->ops[0]->key);
    r->ops[0]->key[0] = v_str(m, longname);
    submit(w, 1, c, m);
    r = new_req(w, 1, &m, 6, 0, NINES__TXN_END__TXN_END_COMMIT, 1025);
    for (int i = 0; i < 1025; i++)
        kv_op(m, r->ops[i], NINES__OP_TYPE__OP_GET, i, 0);
    submit(w, 1, c, m);
    r = new_req(w, 1, &m, 7, 0, NINES__TXN_END__TXN_END_COMMIT, 0);
    Nines__TwoUpdCall *tu = rt_msg_alloc(m, sizeof *tu);
    nines__two_upd_call__init(tu);
    r->proc_case = NINES__TXN_REQ__PROC_TWO_UPD;
    r->two_upd = tu;
    submit(w, 1, c, m);
    submit_tpcb(w, 1, c, 8, 1, 1, 1, 1);
    new_req(w, 1, &m, 9, 0xdead, NINES__TXN_END__TXN_END_COMMIT, 0);
    submit(w, 1, c, m);
    r = new_req(w, 1, &m, 10, 0, NINES__TXN_END__TXN_END_COMMIT, 1);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_ADD, 1, 1);
    r->ops[0]->column = 2; /* a varstring */
    submit(w, 1, c, m);
    /* and a good one on the same connection */
    r = new_req(w, 1, &m, 11, 0, NINES__TXN_END__TXN_END_COMMIT, 2);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_ADD, 1, 1);
    kv_op(m, r->ops[1], NINES__OP_TYPE__OP_GET, 2, 0);
    submit(w, 1, c, m);
    settle(w, 200);
    expect_ref(w, c, 1, NINES_ENOTFOUND, "'nosuch'");
    expect_ref(w, c, 2, NINES_ENOTFOUND, "table id 999");
    expect_ref(w, c, 3, NINES_ETYPE, "column k (int64) takes an integer (i64), got string 'abc'");
    CU_ASSERT_EQUAL(answer_for(w, c, 3)->failed_op, 1);
    expect_ref(w, c, 4, NINES_ETYPE, "1 key column");
    expect_ref(w, c, 5, NINES_ETOOBIG, "3003 bytes");
    expect_ref(w, c, 6, NINES_ETOOBIG, "1025 ops");
    expect_ref(w, c, 7, NINES_ENOTFOUND, "'t1'");
    expect_ref(w, c, 8, NINES_ENOTFOUND, "'account'");
    expect_ref(w, c, 9, NINES_ENOTFOUND, "not open");
    expect_ref(w, c, 10, NINES_ETYPE, "column s");
    struct ans *a = answer_for(w, c, 11);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->nresults, 2);
    CU_ASSERT_EQUAL(stats(w, 1).refused, 10);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* ---- scans ------------------------------------------------------------- */

#define NOKEY INT64_MIN /* no bound */

static void scan_op(struct rt_msg *m, Nines__RecordOp *op, const char *table, int64_t lo,
                    int64_t hi, uint32_t limit, bool reverse)
{
    op->op = NINES__OP_TYPE__OP_SCAN;
    op->table = (char *)table;
    if (lo != NOKEY) {
        op->n_key = 1;
        op->key = rt_msg_alloc(m, sizeof *op->key);
        op->key[0] = v_i64(m, lo);
    }
    if (hi != NOKEY) {
        op->n_key_hi = 1;
        op->key_hi = rt_msg_alloc(m, sizeof *op->key_hi);
        op->key_hi[0] = v_i64(m, hi);
    }
    op->limit = limit;
    op->reverse = reverse;
}

/* One request with one scan; its answer (settled). */
static struct ans *scan1(struct world *w, uint32_t node, net_addr conn, uint64_t req_id,
                         uint64_t txn, Nines__TxnEnd end, const char *table, int64_t lo,
                         int64_t hi, uint32_t limit, bool reverse)
{
    struct rt_msg *m;
    Nines__TxnReq *r = new_req(w, node, &m, req_id, txn, end, 1);
    scan_op(m, r->ops[0], table, lo, hi, limit, reverse);
    submit(w, node, conn, m);
    settle(w, 100);
    struct ans *a = answer_for(w, conn, req_id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    if (a->type != NINES__MSG_TYPE__TXN_CONF)
        printf("\nscan request %" PRIu64 " refused: %s\n", req_id, a->detail);
    return a;
}

/* The answer carries exactly the keys first, first + step, ... (n of them). */
static void expect_rows(struct world *w, const struct ans *a, int64_t first, int64_t step,
                        uint32_t n)
{
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->status0, 0);
    CU_ASSERT_EQUAL(a->nrows, n);
    uint32_t bad = 0;
    for (uint32_t i = 0; i < a->nrows && i < n; i++)
        bad += w->rowpool[a->rows_off + i] != first + (int64_t)i * step;
    CU_ASSERT_EQUAL(bad, 0);
}

/* Fragments (bit per fragment) the fake kernels scanned for txn; *limit
 * gets the limit they were sent (0: differing). */
static uint64_t scanned(struct world *w, uint64_t txn, uint32_t *limit)
{
    uint64_t s = 0;
    uint32_t l = UINT32_MAX;
    for (uint32_t i = 0; i < w->nev; i++) {
        const struct ev *e = &w->ev[i];
        if (e->type != EV_SCAN || e->txn != txn)
            continue;
        CU_ASSERT_EQUAL(s & (1ull << e->frag), 0); /* each fragment once */
        s |= 1ull << e->frag;
        l = l == UINT32_MAX || l == e->limit ? e->limit : 0;
    }
    if (limit)
        *limit = l;
    return s;
}

/* HASH table: every fragment's primary gets the scan (one KERN_OP_REQ per
 * node), the controller merges in key order, up to the limit (default
 * 1000, capped at 10000), reverse, bounds, empty table, empty range,
 * single-key range; interactive scans and a scan next to a write; a
 * read-only commit needs no standby READY_IND. */
static void test_scan_hash(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    const Nines__TxnEnd C = NINES__TXN_END__TXN_END_COMMIT;
    uint32_t lim;
    /* all rows, default limit */
    struct ans *a = scan1(w, 1, CONN(1), 1, 0, C, "sc", NOKEY, NOKEY, 0, false);
    expect_rows(w, a, 0, 1, TXC_SCAN_DEFAULT);
    CU_ASSERT_EQUAL(a->nresults, 1);
    uint64_t txn = a->txn;
    CU_ASSERT_EQUAL(scanned(w, txn, &lim), 0xff);
    CU_ASSERT_EQUAL(lim, TXC_SCAN_DEFAULT);
    uint64_t nodes = ev_nodes(w, EV_OPREQ, txn);
    CU_ASSERT_EQUAL(ev_count(w, EV_OPREQ, txn), (uint32_t)__builtin_popcountll(nodes));
    CU_ASSERT_TRUE(__builtin_popcountll(nodes) >= 2);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), nodes);
    CU_ASSERT_EQUAL(ev_count(w, EV_SREADY, txn), 0); /* read only */
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    /* limit and low bound */
    a = scan1(w, 2, CONN(1), 2, 0, C, "sc", 100, NOKEY, 37, false);
    expect_rows(w, a, 100, 1, 37);
    CU_ASSERT_EQUAL(scanned(w, a->txn, &lim), 0xff);
    CU_ASSERT_EQUAL(lim, 37);
    /* reverse from the high bound */
    a = scan1(w, 3, CONN(1), 3, 0, C, "sc", NOKEY, 1200, 50, true);
    expect_rows(w, a, 1200, -1, 50);
    /* both bounds, both directions */
    a = scan1(w, 4, CONN(1), 4, 0, C, "sc", 10, 20, 0, false);
    expect_rows(w, a, 10, 1, 11);
    a = scan1(w, 4, CONN(1), 5, 0, C, "sc", 10, 20, 0, true);
    expect_rows(w, a, 20, -1, 11);
    /* a limit above the cap is capped */
    a = scan1(w, 1, CONN(1), 6, 0, C, "sc", NOKEY, NOKEY, 20000, false);
    expect_rows(w, a, 0, 1, SC_ROWS);
    scanned(w, a->txn, &lim);
    CU_ASSERT_EQUAL(lim, TXC_SCAN_MAX);
    /* empty table */
    a = scan1(w, 1, CONN(1), 7, 0, C, "se", NOKEY, NOKEY, 0, false);
    expect_rows(w, a, 0, 1, 0);
    CU_ASSERT_EQUAL(a->nresults, 1);
    CU_ASSERT_EQUAL(scanned(w, a->txn, NULL), 0xff);
    /* empty range: no kernel is asked */
    a = scan1(w, 1, CONN(1), 8, 0, C, "sc", 50, 40, 0, false);
    expect_rows(w, a, 0, 1, 0);
    CU_ASSERT_EQUAL(a->nresults, 1);
    CU_ASSERT_EQUAL(ev_count(w, EV_OPREQ, a->txn), 0);
    /* one full key: one fragment */
    a = scan1(w, 1, CONN(1), 9, 0, C, "sc", 777, 777, 0, false);
    expect_rows(w, a, 777, 1, 1);
    CU_ASSERT_EQUAL(__builtin_popcountll(scanned(w, a->txn, NULL)), 1);
    /* interactive: scan, scan + commit */
    a = scan1(w, 3, CONN(2), 10, 0, NINES__TXN_END__TXN_END_NONE, "sc", 5, NOKEY, 3, false);
    expect_rows(w, a, 5, 1, 3);
    txn = a->txn;
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    a = scan1(w, 3, CONN(2), 11, txn, C, "sc", NOKEY, NOKEY, 2, true);
    expect_rows(w, a, SC_ROWS - 1, -1, 2);
    CU_ASSERT_EQUAL(a->txn, txn);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), ev_nodes(w, EV_OPREQ, txn));
    CU_ASSERT_EQUAL(ev_count(w, EV_SREADY, txn), 0);
    /* a scan next to a write in one request */
    struct rt_msg *m;
    Nines__TxnReq *r = new_req(w, 2, &m, 12, 0, C, 2);
    scan_op(m, r->ops[0], "sc", 1490, NOKEY, 0, false);
    kv_op(m, r->ops[1], NINES__OP_TYPE__OP_ADD, 3, 1);
    submit(w, 2, CONN(3), m);
    settle(w, 100);
    a = answer_for(w, CONN(3), 12);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    expect_rows(w, a, 1490, 1, 10);
    CU_ASSERT_EQUAL(a->nresults, 2);
    CU_ASSERT_TRUE(ev_count(w, EV_SREADY, a->txn) >= 1); /* the write's standby */
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, 0), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* RANGE table: only the fragments overlapping [lo, hi] get the scan. */
static void test_scan_range(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    const Nines__TxnEnd C = NINES__TXN_END__TXN_END_COMMIT;
    static const struct {
        int64_t lo, hi;
        uint32_t limit;
        bool rev;
        uint64_t frags;
        int64_t first, step;
        uint32_t n;
    } cs[] = {
        {150, 250, 0, false, 0x6, 150, 1, 101},
        {NOKEY, 50, 0, false, 0x1, 0, 1, 51},
        {300, NOKEY, 0, false, 0x8, 300, 1, 100},
        {95, 105, 5, true, 0x3, 105, -1, 5},
        {NOKEY, NOKEY, 0, false, 0xf, 0, 1, RG_ROWS},
        {NOKEY, NOKEY, 120, true, 0xf, RG_ROWS - 1, -1, 120},
        {100, 100, 0, false, 0x2, 100, 1, 1},
        {99, 100, 0, false, 0x3, 99, 1, 2},
        {1000, NOKEY, 0, false, 0x8, 0, 1, 0},
        {NOKEY, -5, 0, false, 0x1, 0, 1, 0},
    };
    for (uint32_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        struct ans *a = scan1(w, 1 + i % NN, CONN(1), 100 + i, 0, C, "rg", cs[i].lo, cs[i].hi,
                              cs[i].limit, cs[i].rev);
        expect_rows(w, a, cs[i].first, cs[i].step, cs[i].n);
        uint64_t f = scanned(w, a->txn, NULL);
        if (f != cs[i].frags)
            printf("\nrange case %u: fragments %#llx, expected %#llx\n", i,
                   (unsigned long long)f, (unsigned long long)cs[i].frags);
        CU_ASSERT_EQUAL(f, cs[i].frags);
    }
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* Bad scans: refused with a clear detail; kernel rows out of order abort
 * the transaction (NINES_EPROTO); the connection serves on. */
static void test_scan_errors(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    const Nines__TxnEnd C = NINES__TXN_END__TXN_END_COMMIT;
    net_addr c = CONN(6);
    w->scan_bad_order = true;
    struct ans *a = scan1(w, 1, c, 1, 0, C, "sc", NOKEY, NOKEY, 0, false);
    w->scan_bad_order = false;
    expect_ref(w, c, 1, NINES_EPROTO, "not in ascending key order");
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, a->txn), ev_nodes(w, EV_OPREQ, a->txn));
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, a->txn), 0);
    struct rt_msg *m;
    Nines__TxnReq *r = new_req(w, 1, &m, 2, 0, C, 1);
    scan_op(m, r->ops[0], "sc", 1, NOKEY, 0, false);
    r->ops[0]->n_key = 2;
    r->ops[0]->key = rt_msg_alloc(m, 2 * sizeof *r->ops[0]->key);
    r->ops[0]->key[0] = v_i64(m, 1);
    r->ops[0]->key[1] = v_i64(m, 2);
    submit(w, 1, c, m);
    r = new_req(w, 1, &m, 3, 0, C, 1);
    scan_op(m, r->ops[0], "sc", NOKEY, 5, 0, false);
    r->ops[0]->key_hi[0] = v_str(m, "five");
    submit(w, 1, c, m);
    r = new_req(w, 1, &m, 4, 0, C, 1);
    scan_op(m, r->ops[0], "nosuch", NOKEY, NOKEY, 0, false);
    submit(w, 1, c, m);
    settle(w, 100);
    expect_ref(w, c, 2, NINES_ETYPE, "2 low key values");
    expect_ref(w, c, 3, NINES_ETYPE, "SCAN high key");
    expect_ref(w, c, 4, NINES_ENOTFOUND, "'nosuch'");
    a = scan1(w, 1, c, 5, 0, C, "sc", 3, 4, 0, false);
    expect_rows(w, a, 3, 1, 2);
    /* the kernels' key bytes: missing, of another fragment, below the bound */
    w->scan_bad_key = 1;
    a = scan1(w, 2, c, 6, 0, C, "sc", NOKEY, NOKEY, 0, false);
    expect_ref(w, c, 6, NINES_EPROTO, "but 0 keys");
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, a->txn), ev_nodes(w, EV_OPREQ, a->txn));
    w->scan_bad_key = 2;
    scan1(w, 3, c, 7, 0, C, "sc", NOKEY, NOKEY, 0, false);
    expect_ref(w, c, 7, NINES_EPROTO, "a key of another fragment");
    w->scan_bad_key = 3; /* key 0 (of the fragment) below the low bound 1200 */
    scan1(w, 4, c, 8, 0, C, "sc", 1200, NOKEY, 0, false);
    expect_ref(w, c, 8, NINES_EPROTO, "below the scan's low bound");
    w->scan_bad_key = 0;
    a = scan1(w, 1, c, 9, 0, C, "rg", 150, 250, 0, false);
    expect_rows(w, a, 150, 1, 101);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* ---- node sets: liveness and the takeover of transactions (issue 9) ------ */

#define BIT(n) RT_NODE_BIT(n)
#define EVB(n) (1ull << (n)) /* ev_nodes' bit of node n */
#define ALL ((1ull << NN) - 1)

/* Install node set `epoch` (members, current) on every node that lives; a
 * node outside the members is told it does not serve, with a reason. */
static void ns_install_cur(struct world *w, uint64_t epoch, uint64_t members, uint64_t current)
{
    for (uint32_t n = 1; n <= NN; n++) {
        if (w->dead & BIT(n))
            continue;
        struct rt_nodeset ns = {.epoch = epoch, .members = members, .current = current,
                                .member = (members & BIT(n)) != 0, .serving = (members & BIT(n)) != 0};
        for (uint32_t c = NN; c >= 1; c--)
            if (members & BIT(c))
                ns.coordinator = c;
        if (!ns.serving)
            snprintf(ns.reason, sizeof ns.reason, "node %u is outside node set %" PRIu64
                     " (minority side)", n, epoch);
        rt_install_nodeset(w->rt[n], &ns);
    }
}

static void ns_install(struct world *w, uint64_t epoch, uint64_t members)
{
    ns_install_cur(w, epoch, members, members);
}

/* Nodes `bits` die at this step (never stepped again); every other node
 * installs node set `epoch` without them at the same step. */
static void kill_nodes(struct world *w, uint64_t bits, uint64_t epoch)
{
    w->dead |= bits;
    ns_install(w, epoch, ALL & ~w->dead);
}

/* A key of table `table` whose fragment has dictionary primary p and
 * standby s (s < 0: any); *frag gets the fragment. */
static int64_t key_on(struct world *w, uint32_t table, uint32_t p, int s, uint32_t *frag)
{
    const struct dict_table *tb = dict_table_by_id(&w->d, table);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tb);
    for (int64_t k = 1; k < 100000; k++) {
        uint8_t kb[16];
        size_t kl;
        enc_i64(k, kb, &kl);
        int f = dict_route(tb, kb, kl);
        if (f >= 0 && tb->frags[f].primary == p && (s < 0 || tb->frags[f].standby == (uint32_t)s)) {
            if (frag)
                *frag = (uint32_t)f;
            return k;
        }
    }
    CU_FAIL_FATAL("no key on that fragment");
    return -1;
}

/* One request of ADD/GET ops on (table, key) pairs. */
struct opspec {
    const char *table;
    Nines__OpType type;
    int64_t key;
};

static void submit_ops(struct world *w, uint32_t node, net_addr conn, uint64_t req, uint64_t txn,
                       Nines__TxnEnd end, const struct opspec *o, uint32_t n)
{
    struct rt_msg *m;
    Nines__TxnReq *r = new_req(w, node, &m, req, txn, end, n);
    for (uint32_t i = 0; i < n; i++) {
        kv_op(m, r->ops[i], o[i].type, o[i].key, 1);
        r->ops[i]->table = (char *)o[i].table;
    }
    submit(w, node, conn, m);
}

static void hs_snap(struct world *w, uint64_t *hs)
{
    for (uint32_t n = 1; n <= NN; n++)
        hs[n] = stats(w, n).hsc_started;
}

/* The node that took a TXC_START_REQ since hs_snap (0: none). */
static uint32_t hs_new(struct world *w, const uint64_t *hs)
{
    for (uint32_t n = 1; n <= NN; n++)
        if (stats(w, n).hsc_started > hs[n])
            return n;
    return 0;
}

static void expect_conf(struct world *w, net_addr conn, uint64_t req)
{
    struct ans *a = answer_for(w, conn, req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    if (a->type != NINES__MSG_TYPE__TXN_CONF)
        printf("\nrequest %" PRIu64 " refused: %d %s\n", req, a->error, a->detail);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
}

/* Routing over the installed node set: a fragment whose primary left runs
 * at its standby (ALONE) and the hsc waits for the log-copy node's ready;
 * a DOWN fragment and a write to an ALONE fragment without a log copy are
 * refused "not committed" naming table, fragment and why. */
static void test_ns_routing(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    const Nines__TxnEnd C = NINES__TXN_END__TXN_END_COMMIT;
    const struct dict_table *kv = dict_table_by_id(&w->d, w->t_kv);
    uint32_t f;
    int64_t k = key_on(w, w->t_kv, 3, -1, &f);
    uint32_t s = kv->frags[f].standby;
    kill_nodes(w, BIT(3), 2);
    settle(w, 20);
    struct dict_roles r;
    CU_ASSERT_EQUAL_FATAL(dict_frag_roles(&w->d, kv, f, ALL & ~BIT(3), &r), 0);
    CU_ASSERT_EQUAL(r.state, DICT_FRAG_ALONE);
    CU_ASSERT_EQUAL(r.primary, s);
    CU_ASSERT_EQUAL(r.logcopy, 1); /* the only current node of site 0 */
    uint32_t nev0 = w->nev;
    struct opspec add = {"kv", NINES__OP_TYPE__OP_ADD, k};
    submit_ops(w, 1, CONN(1), 1, 0, C, &add, 1);
    settle(w, 100);
    expect_conf(w, CONN(1), 1);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_OPREQ, txn), EVB(s));          /* the promoted node */
    CU_ASSERT_EQUAL(ev_nodes(w, EV_SREADY, txn), EVB(r.logcopy)); /* the log copy's ready */
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), EVB(s));
    /* DOWN: its standby dies too */
    kill_nodes(w, BIT(s), 3);
    settle(w, 20);
    uint64_t r1 = stats(w, 1).refused_1safe;
    struct opspec get = {"kv", NINES__OP_TYPE__OP_GET, k};
    submit_ops(w, 1, CONN(1), 2, 0, C, &add, 1);
    submit_ops(w, 1, CONN(1), 3, 0, C, &get, 1);
    settle(w, 50);
    char want[80];
    snprintf(want, sizeof want, "table kv fragment %u", f);
    expect_ref(w, CONN(1), 2, NINES_EUNREACHABLE, "not committed");
    expect_ref(w, CONN(1), 2, NINES_EUNREACHABLE, want);
    expect_ref(w, CONN(1), 2, NINES_EUNREACHABLE, "down");
    expect_ref(w, CONN(1), 3, NINES_EUNREACHABLE, want);
    CU_ASSERT_TRUE(stats(w, 1).refused_1safe > r1);
    /* ALONE without a log copy: no node of the other site is left */
    uint32_t o = s == 2 ? 4 : 2;
    kill_nodes(w, BIT(o), 4);
    settle(w, 20);
    int64_t k1 = key_on(w, w->t_kv, 1, -1, &f);
    add.key = get.key = k1;
    submit_ops(w, 1, CONN(1), 4, 0, C, &add, 1);
    submit_ops(w, 1, CONN(1), 5, 0, C, &get, 1);
    settle(w, 50);
    snprintf(want, sizeof want, "table kv fragment %u", f);
    expect_ref(w, CONN(1), 4, NINES_EUNREACHABLE, "not committed");
    expect_ref(w, CONN(1), 4, NINES_EUNREACHABLE, want);
    expect_ref(w, CONN(1), 4, NINES_EUNREACHABLE, "copy of its log");
    expect_conf(w, CONN(1), 5); /* a read needs one replica and no decision point */
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, 0), 2);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* The same node set without the other site, but the cluster file turns
 * the disk log on (disk_log async): the primaries' disk logs stand in for
 * the missing site (kernel/svc/README.md "Commits that wait for the
 * disk"), so the writes go to the kernels, which answer ready only after
 * the local fsync (or refuse). There is no node to hold the decision: the
 * controller decides alone, as in a one-site cluster — no TXC_START_REQ,
 * no primary READY_IND to any hsc, the commit once every primary answered
 * ready. With the disk log off again the writes are refused as before. */
static void test_alone_disk_log_decides_alone(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    w->cfg.disk_log = NINES_DISK_LOG_ASYNC; /* every node reads the same file (rt_conf) */
    ns_install(w, 2, RT_NODE_BIT(1) | RT_NODE_BIT(3));
    settle(w, 50);
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    uint64_t refused = stats(w, 1).refused_1safe;
    uint32_t nev0 = w->nev;
    for (uint32_t i = 0; i < 8; i++)
        submit_tpcb(w, 1, CONN(1), 10 + i, 31 + i, i, i % 3, 1);
    settle(w, 100);
    for (uint32_t i = 0; i < 8; i++) {
        struct ans *a = answer_for(w, CONN(1), 10 + i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
        CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, a->txn), ev_nodes(w, EV_OPREQ, a->txn));
        CU_ASSERT_EQUAL(ev_nodes(w, EV_OPREQ, a->txn) & ~(EVB(1) | EVB(3)), 0);
        CU_ASSERT_EQUAL(ev_count(w, EV_SREADY, a->txn), 0);
    }
    CU_ASSERT_EQUAL(hs_new(w, hs), 0); /* nobody was asked to hold the decision */
    for (uint32_t i = nev0; i < w->nev; i++)
        CU_ASSERT_NOT_EQUAL(w->ev[i].type, EV_PREADY); /* no READY_IND to any hsc */
    CU_ASSERT_EQUAL(stats(w, 1).refused_1safe, refused);
    /* the disk log off again: refused "not committed" before any kernel */
    w->cfg.disk_log = NINES_DISK_LOG_OFF;
    nev0 = w->nev;
    submit_tpcb(w, 1, CONN(1), 20, 51, 5, 1, 1);
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(1), 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(a->error, NINES_EUNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->detail, "not committed"));
    CU_ASSERT_EQUAL(w->nev, nev0);
    CU_ASSERT_TRUE(stats(w, 1).refused_1safe > refused);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* A node outside the node set answers every request NINES_ENOTMEMBER with
 * the reason and keeps the connection; what it held is finished by the
 * others (its undecided one-shot: the client hears EINDOUBT, the hsc
 * aborts it). Back in the node set, it serves again. */
static void test_ns_not_member(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    w->fk_lenient = true;
    const Nines__TxnEnd C = NINES__TXN_END__TXN_END_COMMIT;
    struct opspec add = {"kv", NINES__OP_TYPE__OP_ADD, 1};
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_NONE, &add, 1);
    settle(w, 50);
    expect_conf(w, CONN(1), 1);
    uint64_t open_txn = answer_for(w, CONN(1), 1)->txn;
    uint32_t nev0 = w->nev;
    w->hold_s = true;
    submit_tpcb(w, 1, CONN(2), 2, 21, 2, 0, 5);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(2), 2));
    ns_install(w, 2, ALL & ~BIT(1));
    settle(w, 100);
    expect_ref(w, CONN(2), 2, NINES_EINDOUBT, "left the node set");
    CU_ASSERT_EQUAL(stats(w, 1).active, 0);
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    CU_ASSERT_TRUE(ev_count(w, EV_ABORT, txn) > 0); /* the hsc aborted it */
    struct opspec get = {"kv", NINES__OP_TYPE__OP_GET, 1};
    submit_ops(w, 1, CONN(3), 10, 0, C, &get, 1);
    submit_ops(w, 1, CONN(3), 11, 0, C, &get, 1);
    submit_ops(w, 1, CONN(1), 12, open_txn, C, &get, 1);
    settle(w, 50);
    expect_ref(w, CONN(3), 10, NINES_ENOTMEMBER, "minority side");
    expect_ref(w, CONN(3), 11, NINES_ENOTMEMBER, "minority side");
    expect_ref(w, CONN(1), 12, NINES_ENOTMEMBER, "minority side");
    /* back: a member again (its replicas not current) */
    w->hold_s = false;
    w->nheld = 0;
    ns_install_cur(w, 3, ALL, ALL & ~BIT(1));
    settle(w, 20);
    submit_ops(w, 1, CONN(3), 13, 0, C, &get, 1);
    settle(w, 100);
    expect_conf(w, CONN(3), 13);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 2a, the ctl dies after its hsc recorded COMMIT (the ack never reached
 * it): the hsc sends COMMIT_REQ to the current primary of every
 * participant fragment (the promoted standby for the dead node's), re-sends
 * until each confirmed, then forgets. A promoted standby asking the hsc is
 * told COMMIT (2e). */
static void test_ns_ctl_dies_committed(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    w->fk_lenient = true;
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    uint32_t nev0 = w->nev;
    flt_add(w, NINES__MSG_TYPE__TXC_READY_CONF, 0, 1, FLT_TAKE, 1);
    submit_tpcb(w, 1, CONN(1), 1, 21, 2, 0, 5);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    uint32_t h = hs_new(w, hs);
    CU_ASSERT_FATAL(h == 2 || h == 4);
    CU_ASSERT_EQUAL(HSUM(w, hsc_ready), 1);
    uint64_t ran = ev_nodes(w, EV_OPREQ, txn);
    uint32_t r = remote_participant(w, txn, 1);
    CU_ASSERT_FATAL(r != 0);
    flt_add(w, NINES__MSG_TYPE__COMMIT_CONF, r, h, FLT_DROP, 1);
    kill_nodes(w, BIT(1), 2);
    settle(w, 100);
    uint64_t commit = ev_nodes(w, EV_COMMIT, txn);
    CU_ASSERT_EQUAL(commit & ran & ~EVB(1), ran & ~EVB(1)); /* every surviving participant */
    if (ran & EVB(1))
        CU_ASSERT_TRUE(commit & (EVB(2) | EVB(4))); /* node 1's fragments: their standby */
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    CU_ASSERT_EQUAL(stats(w, h).active, 1); /* r's confirmation was lost */
    uint32_t q = h == 2 ? 4 : 2;
    uint32_t c0 = ev_count(w, EV_COMMIT, txn);
    fk_ask(w, q, h, txn);
    settle(w, 20);
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), c0 + 1);
    advance(w, h, 2500); /* the hsc re-sends to r */
    CU_ASSERT_EQUAL(stats(w, h).hsc_finished, 1);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 2a, the ctl dies before the decision: the hsc records ABORT and aborts
 * at the current primaries, with START (parts) and without it (only the
 * primaries' readies name the fragments). */
static void test_ns_ctl_dies_undecided(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    w->fk_lenient = true;
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    uint32_t nev0 = w->nev;
    w->hold_s = true;
    submit_tpcb(w, 1, CONN(1), 1, 21, 2, 0, 5);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    uint32_t h = hs_new(w, hs);
    CU_ASSERT_FATAL(h != 0);
    uint64_t ran = ev_nodes(w, EV_OPREQ, txn);
    uint32_t r = remote_participant(w, txn, 1);
    CU_ASSERT_FATAL(r != 0);
    flt_add(w, NINES__MSG_TYPE__ABORT_CONF, r, h, FLT_DROP, 1);
    kill_nodes(w, BIT(1), 2);
    w->nheld = 0;
    w->hold_s = false;
    settle(w, 100);
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, txn) & ran & ~EVB(1), ran & ~EVB(1));
    CU_ASSERT_EQUAL(stats(w, h).active, 1); /* r's confirmation was lost */
    /* a promoted standby (any node) asks the hsc by id: ABORT (2e) */
    uint32_t q = h == 2 ? 4 : 2, a0 = ev_count(w, EV_ABORT, txn);
    fk_ask(w, q, h, txn);
    settle(w, 20);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), a0 + 1);
    CU_ASSERT_TRUE(ev_nodes(w, EV_ABORT, txn) & EVB(q));
    advance(w, h, 2500);
    CU_ASSERT_EQUAL(stats(w, h).hsc_aborted, 1);
    CU_ASSERT_EQUAL(stats(w, h).hsc_finished, 1);
    CU_ASSERT_EQUAL(active_total(w), 0);
    /* START never arrived: node 3 controls, its START is held, it dies */
    nev0 = w->nev;
    flt_add(w, NINES__MSG_TYPE__TXC_START_REQ, 3, 0, FLT_TAKE, 1);
    submit_tpcb(w, 3, CONN(2), 2, 22, 3, 0, 5);
    settle(w, 100);
    txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL(w->ntaken, 1);
    ran = ev_nodes(w, EV_OPREQ, txn);
    CU_ASSERT_TRUE(active_total(w) > 0);
    kill_nodes(w, BIT(3), 3);
    settle(w, 100);
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, txn) & ran & ~EVB(3), ran & ~EVB(3));
    CU_ASSERT_TRUE(ev_nodes(w, EV_ABORT, txn) != 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 2b/2c, a primary kernel dies before it was ready (its ops never came):
 * the ctl aborts through the hsc, the hsc records ABORT itself, the client
 * hears EABORTED naming the node, ABORT_REQ goes to the survivors and to
 * the node that took over the dead one's fragment. */
static void test_ns_primary_dies_before_ready(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    struct opspec o[2] = {{"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 3, 2, NULL)},
                          {"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 1, 2, NULL)}};
    flt_add(w, NINES__MSG_TYPE__KERN_OP_REQ, 1, 3, FLT_TAKE, 1);
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_COMMIT, o, 2);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL(hs_new(w, hs), 2);
    kill_nodes(w, BIT(3), 2);
    settle(w, 100);
    expect_ref(w, CONN(1), 1, NINES_EABORTED, "node 3");
    expect_ref(w, CONN(1), 1, NINES_EABORTED, "left the node set");
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    CU_ASSERT_TRUE(ev_nodes(w, EV_ABORT, txn) & EVB(1));
    CU_ASSERT_TRUE(ev_nodes(w, EV_ABORT, txn) & EVB(2)); /* took over node 3's fragment */
    CU_ASSERT_EQUAL(stats(w, 2).hsc_aborted, 1);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 2c, decided: a primary dies after the client was answered (its
 * COMMIT_REQ lost): the second phase goes to the promoted standby. */
static void test_ns_primary_dies_after_ready(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    struct opspec o[2] = {{"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 3, 2, NULL)},
                          {"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 1, 2, NULL)}};
    flt_add(w, NINES__MSG_TYPE__COMMIT_REQ, 1, 3, FLT_DROP, 1);
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_COMMIT, o, 2);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    expect_conf(w, CONN(1), 1);
    CU_ASSERT_EQUAL(stats(w, 1).active, 1); /* node 3 never confirmed */
    kill_nodes(w, BIT(3), 2);
    settle(w, 100);
    CU_ASSERT_TRUE(ev_nodes(w, EV_COMMIT, txn) & EVB(2)); /* the promoted standby */
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 3, decided but a kernel's answer never came: the hsc recorded COMMIT
 * and that kernel's node dies: committed at once, its op's result
 * reported lost. */
static void test_ns_answer_lost_node_dies(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    struct opspec o[2] = {{"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 3, 2, NULL)},
                          {"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 1, 2, NULL)}};
    flt_add(w, NINES__MSG_TYPE__KERN_OP_CONF, 3, 1, FLT_DROP, 1);
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_COMMIT, o, 2);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL(HSUM(w, hsc_ready), 1);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1));
    kill_nodes(w, BIT(3), 2);
    settle(w, 100);
    expect_conf(w, CONN(1), 1);
    CU_ASSERT_EQUAL(answer_for(w, CONN(1), 1)->status0, NINES_ECLOSED);
    CU_ASSERT_TRUE(ev_nodes(w, EV_COMMIT, txn) & EVB(2));
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 2d: only the hsc dies, before its decision (a one-replica fragment: the
 * hsc node holds no replica of the transaction). The ctl picks the other
 * node of that site, re-prepares the kernel with it (PREPARE_REQ, new
 * hsc), which re-sends its ready there; START follows; commit. */
static void test_ns_hsc_dies_before_decision(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    struct opspec add = {"one", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_one, 3, -1, NULL)};
    w->hold_p = true;
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_COMMIT, &add, 1);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    uint32_t h = hs_new(w, hs), o = h == 2 ? 4 : 2;
    CU_ASSERT_FATAL(h == 2 || h == 4);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1));
    w->hold_p = false;
    w->nheld = 0; /* the readies to the dead hsc */
    kill_nodes(w, BIT(h), 2);
    settle(w, 100);
    expect_conf(w, CONN(1), 1);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_PREPARE, txn), EVB(3)); /* re-prepared with the new hsc */
    CU_ASSERT_EQUAL(stats(w, o).hsc_started, 1);
    CU_ASSERT_EQUAL(stats(w, o).hsc_ready, 1);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), EVB(3));
    CU_ASSERT_EQUAL(stats(w, 1).hsc_moved, 1);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 2d: the hsc dies after its decision reached the ctl: the second phase
 * goes on; nothing waits for the dead hsc. */
static void test_ns_hsc_dies_after_decision(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    struct opspec add = {"one", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_one, 3, -1, NULL)};
    flt_add(w, NINES__MSG_TYPE__COMMIT_CONF, 3, 1, FLT_DROP, 1);
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_COMMIT, &add, 1);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    expect_conf(w, CONN(1), 1);
    uint32_t h = hs_new(w, hs);
    CU_ASSERT_EQUAL(stats(w, 1).active, 1);
    kill_nodes(w, BIT(h), 2);
    settle(w, 20);
    advance(w, 1, 2500); /* COMMIT_REQ re-sent, confirmed */
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 2);
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 2d, the ctl was already asking to abort (its timeout) when the hsc left
 * without answering: the kernels are asked (a lost answer is asked again);
 * all still prepared, so it aborts with the timeout's reason, and the new
 * hsc never gets a START. */
static void test_ns_hsc_dies_while_asking(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    struct opspec add = {"one", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_one, 3, -1, NULL)};
    w->hold_p = true;
    flt_add(w, NINES__MSG_TYPE__TXC_ABORT_REQ, 1, 0, FLT_DROP, 100);
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_COMMIT, &add, 1);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    uint32_t h = hs_new(w, hs), o = h == 2 ? 4 : 2;
    advance(w, 1, 10000); /* timeout: ASKING, its requests lost */
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1));
    w->hold_p = false;
    w->nheld = 0;
    flt_add(w, NINES__MSG_TYPE__PREPARE_CONF, 3, 1, FLT_DROP, 1);
    kill_nodes(w, BIT(h), 2);
    settle(w, 20);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1)); /* the answer was lost: asked again */
    advance(w, 1, 2500);
    expect_ref(w, CONN(1), 1, NINES_ETIMEDOUT, "timed out");
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, txn), EVB(3));
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    CU_ASSERT_EQUAL(stats(w, o).hsc_started, 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 2d, what a re-prepared kernel says when the transaction already ENDED
 * there (scripted: the PREPARE_REQ is taken and the kernel's answer
 * injected — the real kernel's answer comes with the kern-takeover
 * branch): committed -> committed (the new hsc records COMMIT from START);
 * aborted -> aborted; not known -> the client hears EINDOUBT and nobody
 * decides (the new hsc answers questions EINDOUBT). */
static void hsc_dies_kernel_says(int error, int outcome)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    struct opspec add = {"one", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_one, 3, -1, NULL)};
    w->hold_p = true;
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_COMMIT, &add, 1);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    uint32_t h = hs_new(w, hs), o = h == 2 ? 4 : 2;
    w->hold_p = false;
    w->nheld = 0;
    flt_add(w, NINES__MSG_TYPE__PREPARE_REQ, 1, 3, FLT_TAKE, 1);
    kill_nodes(w, BIT(h), 2);
    settle(w, 20);
    CU_ASSERT_EQUAL_FATAL(w->ntaken, 1);
    CU_ASSERT_EQUAL(((const Nines__PrepareReq *)w->taken[0].m->body)->hsc, o);
    rt_msg_free(w->rt[1], w->taken[0].m);
    w->ntaken = 0;
    struct rt_msg *m = rt_msg_new(w->rt[3], NINES__MSG_TYPE__PREPARE_REF);
    Nines__PrepareRef *b = RT_BODY(m, Nines__PrepareRef, nines__prepare_ref__init);
    b->txn = txn;
    b->node = 3;
    b->error = error;
    b->outcome = outcome;
    b->detail = (char *)"scripted";
    rt_send_nofault(w->rt[3], 1, RT_SVC_TXC, m);
    settle(w, 100);
    if (outcome == 1) {
        expect_conf(w, CONN(1), 1);
        CU_ASSERT_EQUAL(stats(w, o).hsc_ready, 1); /* COMMIT recorded at the new hsc */
        CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), EVB(3));
        CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
        CU_ASSERT_EQUAL(active_total(w), 0);
    } else if (outcome == 2) {
        expect_ref(w, CONN(1), 1, NINES_EABORTED, "aborted");
        CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, txn), EVB(3));
        CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
        CU_ASSERT_EQUAL(active_total(w), 0);
    } else if (error == NINES_ENOTMEMBER) {
        /* the kernel does not serve for a moment (its lease, a node-set
         * change): it cannot answer now, which is not "it forgot": the
         * transaction is not held in doubt, the kernel is asked again and
         * the outcome is decided */
        struct ans *a = answer_for(w, CONN(1), 1);
        CU_ASSERT(!a || a->error != NINES_EINDOUBT);
        CU_ASSERT_EQUAL(stats(w, 1).lost_decisions, 0);
        for (int i = 0; i < 20 && !answer_for(w, CONN(1), 1); i++)
            advance(w, 1, 200);
        a = answer_for(w, CONN(1), 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_NOT_EQUAL(a->error, NINES_EINDOUBT);
        CU_ASSERT_EQUAL(stats(w, 1).lost_decisions, 0);
        CU_ASSERT(ev_count(w, EV_COMMIT, txn) + ev_count(w, EV_ABORT, txn) > 0);
    } else {
        expect_ref(w, CONN(1), 1, NINES_EINDOUBT, "node 3");
        CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn) + ev_count(w, EV_ABORT, txn), 0);
        fk_ask(w, 3, 1, txn); /* the ctl: not decided */
        fk_ask(w, 3, o, txn); /* the new hsc: cannot tell, records nothing */
        settle(w, 20);
        CU_ASSERT_EQUAL(ev_count(w, EV_OREF, txn), 2);
        CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn) + ev_count(w, EV_ABORT, txn), 0);
        CU_ASSERT_EQUAL(stats(w, o).hsc_aborted, 0);
        CU_ASSERT_EQUAL(stats(w, 1).active, 1); /* held, never guessed */
        CU_ASSERT_EQUAL(stats(w, o).active, 1);
    }
    world_close(w);
}

static void test_ns_hsc_dies_kernel_says(void)
{
    hsc_dies_kernel_says(NINES_ESTATE, 1);
    hsc_dies_kernel_says(NINES_ESTATE, 2);
    hsc_dies_kernel_says(NINES_ENOTFOUND, 0);
    hsc_dies_kernel_says(NINES_ENOTMEMBER, 0);
}

/* Double failures. (1) The hsc's node dies before the decision and it was
 * also a standby of the transaction (the usual hsc crash: the hsc is
 * picked where the standbys are): a kernel is lost, so the transaction
 * aborts — after the surviving kernels were asked whether it ended there
 * — and the client hears which node left. (2) The ctl's site dies (ctl
 * and a primary) after the hsc recorded COMMIT: the hsc commits at the
 * promoted standbys. */
static void test_ns_double_failure(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    struct opspec o[2] = {{"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 3, 2, NULL)},
                          {"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 1, 2, NULL)}};
    w->hold_s = true;
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_COMMIT, o, 2);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL_FATAL(hs_new(w, hs), 2);
    w->hold_s = false;
    w->nheld = 0;
    kill_nodes(w, BIT(2), 2);
    settle(w, 100);
    expect_ref(w, CONN(1), 1, NINES_EABORTED, "node 2");
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, txn), EVB(1) | EVB(3));
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, txn), 0);
    CU_ASSERT_EQUAL(stats(w, 4).hsc_started, 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);

    world_open(w, 10000, false);
    w->fk_lenient = true;
    hs_snap(w, hs);
    flt_add(w, NINES__MSG_TYPE__TXC_READY_CONF, 0, 1, FLT_TAKE, 1);
    nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, NINES__TXN_END__TXN_END_COMMIT, o, 2);
    settle(w, 100);
    txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL_FATAL(hs_new(w, hs), 2);
    CU_ASSERT_EQUAL(stats(w, 2).hsc_ready, 1);
    kill_nodes(w, BIT(1) | BIT(3), 2);
    settle(w, 100);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), EVB(2)); /* both fragments now at node 2 */
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, txn), 0);
    CU_ASSERT_EQUAL(stats(w, 2).hsc_finished, 1);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* 2c, before START: an interactive transaction with ops at a node that
 * dies is aborted — the one waiting for that node's answer tells its
 * client EABORTED naming the node, the idle one learns it at its next
 * request; ABORT_REQ reaches the survivors and the promoted standby. */
static void test_ns_interactive_kernel_dies(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    const Nines__TxnEnd N = NINES__TXN_END__TXN_END_NONE;
    struct opspec o[2] = {{"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 3, 2, NULL)},
                          {"kv", NINES__OP_TYPE__OP_ADD, key_on(w, w->t_kv, 1, 4, NULL)}};
    submit_ops(w, 1, CONN(1), 1, 0, N, o, 2);
    settle(w, 50);
    expect_conf(w, CONN(1), 1);
    uint64_t t_open = answer_for(w, CONN(1), 1)->txn;
    flt_add(w, NINES__MSG_TYPE__KERN_OP_REQ, 1, 3, FLT_TAKE, 1);
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(2), 2, 0, N, o, 2);
    settle(w, 50);
    uint64_t t_exec = txn_after(w, nev0);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(2), 2));
    kill_nodes(w, BIT(3), 2);
    settle(w, 100);
    expect_ref(w, CONN(2), 2, NINES_EABORTED, "node 3");
    /* node 1, and node 2 which took over node 3's fragment (the second
     * phase of a departed kernel goes to every node that took over one of
     * its fragments: a superset, the others confirm at once) */
    CU_ASSERT_EQUAL(ev_nodes(w, EV_ABORT, t_open) & (EVB(1) | EVB(2)), EVB(1) | EVB(2));
    CU_ASSERT_FALSE(ev_nodes(w, EV_ABORT, t_open) & EVB(3));
    CU_ASSERT_TRUE(ev_nodes(w, EV_ABORT, t_exec) & EVB(1));
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, 0), 0);
    submit_ops(w, 1, CONN(1), 3, t_open, NINES__TXN_END__TXN_END_COMMIT, o + 1, 1);
    settle(w, 50);
    struct ans *a = answer_for(w, CONN(1), 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* ---- the conversion cases (conv_cases.h) -------------------------------- */

/* The answer to request req is case c's outcome: its code and, for an
 * error, a detail naming table, column, column type and value. */
static void conv_expect(struct world *w, net_addr conn, uint64_t req, const struct cv_case *c,
                        const char *table)
{
    struct ans *a = answer_for(w, conn, req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    int got = a->type == NINES__MSG_TYPE__TXN_CONF ? 0 : a->error;
    const char *miss = NULL;
    if (got != c->want)
        printf("\n  txctl %s '%s': CODE want %d got %d (%s)", table, c->what, c->want, got,
               a->detail);
    else if (got && !cv_detail_ok(c, table, a->detail, &miss))
        printf("\n  txctl %s '%s': DETAIL lacks \"%s\": %s", table, c->what, miss, a->detail);
    CU_ASSERT_EQUAL(got, c->want);
    CU_ASSERT_PTR_NULL(miss);
}

/* Every case as a column of an INSERT row (table cv) and, for NOT NULL
 * columns, as a key value of a GET (table cvk, every column in the key). */
static void test_conversion(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    mk_table(&w->d, "cv", CV_NCOLS, cv_cols, 8, NULL);
    struct dict_table_def def;
    memset(&def, 0, sizeof def);
    snprintf(def.name, sizeof def.name, "cvk");
    def.ncols = CVK_NPK + 1;
    def.cols = cvk_cols;
    def.npk = CVK_NPK;
    def.pk = cvk_pk;
    def.method = DICT_FRAG_HASH;
    def.nfrags = 8;
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&w->d, &def, NULL), 0);
    const Nines__TxnEnd C = NINES__TXN_END__TXN_END_COMMIT;
    net_addr conn = CONN(9);
    for (uint32_t i = 0; i < CV_NCASES; i++) {
        const struct cv_case *c = &cv_cases[i];
        struct rt_msg *m;
        Nines__TxnReq *r = new_req(w, 1 + i % NN, &m, 1000 + i, 0, C, 1);
        Nines__RecordOp *op = r->ops[0];
        op->op = NINES__OP_TYPE__OP_INSERT;
        op->table = (char *)"cv";
        Nines__Row *row = rt_msg_alloc(m, sizeof *row);
        nines__row__init(row);
        row->n_values = CV_NCOLS;
        row->values = rt_msg_alloc(m, CV_NCOLS * sizeof *row->values);
        for (int j = 0; j < CV_NCOLS; j++) {
            row->values[j] = rt_msg_alloc(m, sizeof *row->values[j]);
            if (j == c->col)
                cv_pb(c, row->values[j]);
            else
                cv_good(j, 100000 + i, row->values[j]);
        }
        op->row = row;
        submit(w, 1 + i % NN, conn, m);
        if (!cv_is_key(c))
            continue;
        r = new_req(w, 1 + i % NN, &m, 2000 + i, 0, C, 1);
        op = r->ops[0];
        op->op = NINES__OP_TYPE__OP_GET;
        op->table = (char *)"cvk";
        op->n_key = CVK_NPK;
        op->key = rt_msg_alloc(m, CVK_NPK * sizeof *op->key);
        for (int j = 0; j < CVK_NPK; j++) {
            op->key[j] = rt_msg_alloc(m, sizeof *op->key[j]);
            if (j + 1 == c->col)
                cv_pb(c, op->key[j]);
            else
                cv_good(j + 1, 0, op->key[j]);
        }
        submit(w, 1 + i % NN, conn, m);
    }
    settle(w, 200);
    for (uint32_t i = 0; i < CV_NCASES; i++) {
        conv_expect(w, conn, 1000 + i, &cv_cases[i], "cv");
        if (cv_is_key(&cv_cases[i]))
            conv_expect(w, conn, 2000 + i, &cv_cases[i], "cvk");
    }
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}


/* ---- takeback: requests refused before anything ran (kernel/svc/README.md
 * "Takeback", txctl/README.md "Refused before anything ran") ---- */

/* Let `ms` of the executors' clocks pass (timers fire by it), a
 * millisecond at a time. */
static void settle_ms(struct world *w, uint32_t ms)
{
    for (uint32_t i = 0; i < ms; i++) {
        for (uint32_t n = 1; n <= NN; n++)
            if (!(w->dead & RT_NODE_BIT(n)))
                CU_ASSERT_EQUAL_FATAL(rt_fault_advance_clock(w->rt[n], 1000u), 0);
        settle(w, 3);
    }
}

/* Install node set `epoch` on every node with `sbo` standby-only (current
 * since `since`). */
static void ns_install_sbo(struct world *w, uint64_t epoch, uint64_t sbo, uint64_t since)
{
    for (uint32_t n = 1; n <= NN; n++) {
        struct rt_nodeset ns = {.epoch = epoch, .members = ALL, .current = ALL,
                                .standby_only = sbo, .coordinator = 1, .member = true,
                                .serving = true};
        for (uint32_t id = 1; id <= NN; id++)
            if (sbo & BIT(id))
                ns.since[id] = since;
        rt_install_nodeset(w->rt[n], &ns);
    }
}

/* A kernel refuses EAGAIN before anything ran (its fragment drained for a
 * takeback): the controller sends the same request again, with backoff,
 * and the transaction commits — one-shot (PREPARING) and interactive
 * (EXECUTING) — nothing aborted. */
static void test_takeback_eagain_retried(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    const Nines__TxnEnd C = NINES__TXN_END__TXN_END_COMMIT;
    uint32_t f;
    int64_t k = key_on(w, w->t_kv, 2, -1, &f);
    struct opspec add = {"kv", NINES__OP_TYPE__OP_ADD, k};
    w->eagain_node = 2;
    w->eagain_n = 3;
    uint32_t nev0 = w->nev;
    submit_ops(w, 1, CONN(1), 1, 0, C, &add, 1);
    settle_ms(w, 60);
    expect_conf(w, CONN(1), 1);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_EQUAL(ev_count(w, EV_OPREQ, txn), 4);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), EVB(2));
    CU_ASSERT_EQUAL(stats(w, 1).op_retries, 3);
    CU_ASSERT_EQUAL(stats(w, 1).aborted, 0);
    /* interactive: the ops of an open transaction, refused twice */
    w->eagain_n = 2;
    nev0 = w->nev;
    submit_ops(w, 3, CONN(3), 2, 0, NINES__TXN_END__TXN_END_NONE, &add, 1);
    settle_ms(w, 60);
    expect_conf(w, CONN(3), 2);
    txn = txn_after(w, nev0);
    submit_ops(w, 3, CONN(3), 3, txn, C, NULL, 0);
    settle_ms(w, 60);
    expect_conf(w, CONN(3), 3);
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, txn), EVB(2));
    CU_ASSERT_EQUAL(stats(w, 3).op_retries, 2);
    CU_ASSERT_EQUAL(stats(w, 3).aborted, 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* Refused while draining for the takeback of node 3, then the node set
 * that clears node 3's standby-only bit: the retry goes where the
 * fragment's primary is now (node 3), also when only part of the refused
 * request moves (split: its other op stays at the drained node); the hsc
 * takes the new primary's READY_IND; committed, nothing aborted, the
 * drained node never hears of the transaction. */
static void test_takeback_rerouted(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    const Nines__TxnEnd C = NINES__TXN_END__TXN_END_COMMIT;
    uint32_t f3, fs;
    int64_t k3 = key_on(w, w->t_kv, 3, -1, &f3); /* node 3's, interim primary s */
    const struct dict_table *kv = dict_table_by_id(&w->d, w->t_kv);
    uint32_t s = kv->frags[f3].standby;
    int64_t ks = key_on(w, w->t_kv, s, 3, &fs); /* s's own fragment (standby 3) */
    ns_install_sbo(w, 2, BIT(3), 2);
    settle(w, 20);
    w->eagain_node = s;
    w->eagain_dictp = 3;
    w->eagain_n = -1;
    uint32_t nev0 = w->nev;
    struct opspec one = {"kv", NINES__OP_TYPE__OP_ADD, k3};
    submit_ops(w, 1, CONN(1), 1, 0, C, &one, 1);
    struct opspec two[2] = {{"kv", NINES__OP_TYPE__OP_ADD, k3 + 0}, {"kv", NINES__OP_TYPE__OP_ADD, ks}};
    two[0].key = key_on(w, w->t_kv, 3, (int)s, NULL);
    submit_ops(w, 2, CONN(2), 2, 0, C, two, 2);
    settle_ms(w, 60); /* refused again and again: draining */
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1));
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(2), 2));
    CU_ASSERT(stats(w, 1).op_retries >= 3);
    /* the switch: node 3 primary of its fragments again */
    ns_install_sbo(w, 3, 0, 0);
    settle_ms(w, 60);
    expect_conf(w, CONN(1), 1);
    expect_conf(w, CONN(2), 2);
    uint64_t t1 = answer_for(w, CONN(1), 1)->txn, t2 = answer_for(w, CONN(2), 2)->txn;
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, t1), EVB(3));
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, t2), EVB(3) | EVB(s));
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, 0), 0);
    CU_ASSERT(stats(w, 1).op_rerouted >= 1);
    CU_ASSERT(stats(w, 2).op_rerouted >= 1);
    CU_ASSERT_EQUAL(stats(w, 1).aborted + stats(w, 2).aborted, 0);
    settle_ms(w, 20);
    CU_ASSERT_EQUAL(active_total(w), 0);
    (void)nev0;
    /* ops at both of node 4's partners (site 0: nodes 1 and 3), both
     * drained: after the switch both groups go to node 4 in one request */
    int64_t ka = key_on(w, w->t_kv, 4, 1, NULL), kb = key_on(w, w->t_kv, 4, 3, NULL);
    ns_install_sbo(w, 4, BIT(4), 4);
    settle(w, 20);
    w->eagain_node = 0;
    w->eagain_nodes = BIT(1) | BIT(3);
    w->eagain_dictp = 4;
    w->eagain_n = -1;
    struct opspec both[2] = {{"kv", NINES__OP_TYPE__OP_ADD, ka}, {"kv", NINES__OP_TYPE__OP_ADD, kb}};
    submit_ops(w, 2, CONN(2), 3, 0, C, both, 2);
    settle_ms(w, 30);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(2), 3));
    ns_install_sbo(w, 5, 0, 0);
    settle_ms(w, 60);
    expect_conf(w, CONN(2), 3);
    uint64_t t3 = answer_for(w, CONN(2), 3)->txn;
    CU_ASSERT_EQUAL(ev_nodes(w, EV_COMMIT, t3), EVB(4));
    CU_ASSERT_EQUAL(ev_count(w, EV_ABORT, 0), 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* A request refused before anything ran waits for its retry when the
 * hsc's node leaves: the transaction resolves to ABORT (its refused kernel
 * never prepared, so no hsc can have recorded COMMIT), not in doubt. */
static void test_takeback_refused_hsc_leaves(void)
{
    struct world *w = &W;
    world_open(w, 10000, false);
    w->fk_lenient = true;
    const Nines__TxnEnd C = NINES__TXN_END__TXN_END_COMMIT;
    uint32_t f;
    int64_t k = key_on(w, w->t_kv, 2, 1, &f); /* primary 2, standby 1 */
    w->eagain_node = 2;
    w->eagain_n = -1;
    uint64_t hs[NN + 1];
    hs_snap(w, hs);
    struct opspec add = {"kv", NINES__OP_TYPE__OP_ADD, k};
    submit_ops(w, 4, CONN(4), 1, 0, C, &add, 1);
    settle_ms(w, 10);
    uint32_t hsc = hs_new(w, hs);
    CU_ASSERT_NOT_EQUAL_FATAL(hsc, 0);
    CU_ASSERT_NOT_EQUAL_FATAL(hsc, 4);
    CU_ASSERT_NOT_EQUAL_FATAL(hsc, 2);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(4), 1));
    kill_nodes(w, BIT(hsc), 2);
    settle_ms(w, 60);
    struct ans *a = answer_for(w, CONN(4), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_NOT_EQUAL(a->error, NINES_EINDOUBT);
    CU_ASSERT_EQUAL(stats(w, 4).lost_decisions, 0);
    w->eagain_n = 0;
    settle_ms(w, 20);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}


/* ---- commit epochs (txctl/README.md "Commit epochs") --------------------- */

#define GCP_COORD 1 /* the node whose (fake) supervisor runs the rounds */
#define ALL_NODES (RT_NODE_BIT(1) | RT_NODE_BIT(2) | RT_NODE_BIT(3) | RT_NODE_BIT(4))

/* GCP_PREPARE_REQ (hold_ms) or GCP_COMMIT_REQ (gci) of `round` from the
 * coordinator's supervisor to the controllers of `nodes`. */
static void gcp_send(struct world *w, uint64_t nodes, bool commit, uint64_t round, uint64_t arg)
{
    struct rt *rt = w->rt[GCP_COORD];
    for (uint32_t n = 1; n <= NN; n++) {
        if (!(nodes & RT_NODE_BIT(n)))
            continue;
        struct rt_msg *m;
        if (commit) {
            m = rt_msg_new(rt, NINES__MSG_TYPE__GCP_COMMIT_REQ);
            Nines__GcpCommitReq *b = RT_BODY(m, Nines__GcpCommitReq, nines__gcp_commit_req__init);
            b->coordinator = GCP_COORD;
            b->epoch = rt_nodeset(rt)->epoch;
            b->round = round;
            b->gci = arg;
        } else {
            m = rt_msg_new(rt, NINES__MSG_TYPE__GCP_PREPARE_REQ);
            Nines__GcpPrepareReq *b = RT_BODY(m, Nines__GcpPrepareReq,
                                              nines__gcp_prepare_req__init);
            b->coordinator = GCP_COORD;
            b->epoch = rt_nodeset(rt)->epoch;
            b->round = round;
            b->hold_ms = (uint32_t)arg;
        }
        CU_ASSERT_EQUAL(rt_send(rt, n == GCP_COORD ? 0 : n, RT_SVC_TXC, m), 0);
    }
}

/* Answers of `type` for `round` from node (0: any). */
static uint32_t gev_count(struct world *w, uint32_t type, uint32_t node, uint64_t round)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < w->ngev; i++)
        c += w->gev[i].type == type && w->gev[i].round == round &&
             (!node || w->gev[i].node == node);
    return c;
}

static const struct gev *gev_find(struct world *w, uint32_t type, uint32_t node, uint64_t round)
{
    for (uint32_t i = 0; i < w->ngev; i++)
        if (w->gev[i].type == type && w->gev[i].round == round && w->gev[i].node == node)
            return &w->gev[i];
    return NULL;
}

static uint32_t popcount64(uint64_t v) { return (uint32_t)__builtin_popcountll(v); }

/* A whole round to `nodes`: stop, switch to gci. Every controller answers
 * PREPARE_CONF (at the coordinator's supervisor) before the switch. */
static void gcp_round(struct world *w, uint64_t nodes, uint64_t round, uint64_t gci)
{
    gcp_send(w, nodes, false, round, 10000);
    settle(w, 20);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_PREPARE_CONF, 0, round), popcount64(nodes));
    for (uint32_t i = 0; i < w->ngev; i++)
        if (w->gev[i].type == NINES__MSG_TYPE__GCP_PREPARE_CONF && w->gev[i].round == round)
            CU_ASSERT_EQUAL(w->gev[i].at, GCP_COORD);
    gcp_send(w, nodes, true, round, gci);
    settle(w, 20);
}

/* Every COMMIT_REQ of txn carried gci (and there was one). */
static bool commits_carry(struct world *w, uint64_t txn, uint64_t gci)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < w->nev; i++) {
        if (w->ev[i].type != EV_COMMIT || w->ev[i].txn != txn)
            continue;
        if (w->ev[i].gci != gci)
            return false;
        n++;
    }
    return n > 0;
}

static struct txc_gcp_stats gstats(struct world *w, uint32_t n)
{
    struct txc_gcp_stats g;
    txc_get_gcp_stats(w->txc[n], &g);
    return g;
}

static uint64_t gsum_waiting(struct world *w)
{
    uint64_t v = 0;
    for (uint32_t n = 1; n <= NN; n++)
        v += gstats(w, n).waiting;
    return v;
}

static struct world *gcp_open(struct world *w)
{
    g_gcp_on = true;
    world_open(w, 10000, true);
    g_gcp_on = false;
    return w;
}

/* Stamps: a decision before any round waits for the first epoch; decisions
 * of both controllers before and after a switch carry g and g+1 in every
 * COMMIT_REQ; every controller confirms each switch. */
static void test_gcp_stamps(void)
{
    struct world *w = gcp_open(&W);
    submit_tpcb(w, 1, CONN(1), 1, 1, 2, 0, 1);
    settle(w, 100);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1)); /* no epoch known yet */
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, 0), 0);
    CU_ASSERT_EQUAL(gsum_waiting(w), 1);
    CU_ASSERT_EQUAL(HSUM(w, hsc_ready), 0);
    gcp_round(w, ALL_NODES, 1, 5);
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_TRUE(commits_carry(w, a->txn, 5));
    for (uint32_t n = 1; n <= NN; n++) {
        const struct gev *g = gev_find(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, n, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        CU_ASSERT_EQUAL(g->gci, 5);
        CU_ASSERT_EQUAL(g->at, GCP_COORD);
        CU_ASSERT_EQUAL(gev_find(w, NINES__MSG_TYPE__GCP_PREPARE_CONF, n, 1)->gci, 0);
    }
    submit_tpcb(w, 1, CONN(1), 2, 2, 3, 0, 1);
    submit_tpcb(w, 2, CONN(2), 3, 3, 4, 0, 1);
    settle(w, 100);
    struct ans *b = answer_for(w, CONN(1), 2), *c = answer_for(w, CONN(2), 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(commits_carry(w, b->txn, 5));
    CU_ASSERT_TRUE(commits_carry(w, c->txn, 5));
    gcp_round(w, ALL_NODES, 2, 6);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, 0, 2), NN);
    for (uint32_t n = 1; n <= NN; n++)
        CU_ASSERT_EQUAL(gev_find(w, NINES__MSG_TYPE__GCP_PREPARE_CONF, n, 2)->gci, 5);
    submit_tpcb(w, 1, CONN(1), 4, 4, 5, 0, 1);
    submit_tpcb(w, 2, CONN(2), 5, 5, 6, 0, 1);
    settle(w, 100);
    b = answer_for(w, CONN(1), 4);
    c = answer_for(w, CONN(2), 5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(commits_carry(w, b->txn, 6));
    CU_ASSERT_TRUE(commits_carry(w, c->txn, 6));
    uint64_t stamped = 0;
    for (uint32_t n = 1; n <= NN; n++) {
        struct txc_gcp_stats g = gstats(w, n);
        CU_ASSERT_EQUAL(g.gci, 6);
        CU_ASSERT_FALSE(g.stopped);
        CU_ASSERT_EQUAL(g.incomplete, 0);
        stamped += g.stamped;
    }
    CU_ASSERT_EQUAL(stamped, 5); /* once each, at its hsc */
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* A decision while stamping is stopped waits and gets the new epoch; an
 * abort meanwhile is not delayed. */
static void test_gcp_stopped_waits(void)
{
    struct world *w = gcp_open(&W);
    gcp_round(w, ALL_NODES, 1, 5);
    gcp_send(w, ALL_NODES, false, 2, 10000);
    settle(w, 20);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_PREPARE_CONF, 0, 2), NN);
    uint64_t hr0 = HSUM(w, hsc_ready);
    submit_tpcb(w, 1, CONN(1), 1, 1, 2, 0, 1);
    submit_tpcb(w, 1, CONN(1), 2, KEY_DEADLOCK, 3, 0, 1);
    settle(w, 100);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1));
    CU_ASSERT_EQUAL(ev_count(w, EV_COMMIT, 0), 0);
    CU_ASSERT_EQUAL(HSUM(w, hsc_ready), hr0); /* every ready in, COMMIT not recorded */
    CU_ASSERT_EQUAL(gsum_waiting(w), 1);
    struct ans *r = answer_for(w, CONN(1), 2); /* ABORT never waits */
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(r->error, NINES_EDEADLOCK);
    gcp_send(w, ALL_NODES, true, 2, 6);
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_TRUE(commits_carry(w, a->txn, 6)); /* the new epoch */
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, 0, 2), NN);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* GCP_COMMIT_CONF waits while a decision of the old epoch is incomplete
 * at its hsc (a kernel's COMMIT_CONF held: no FORGET yet); the others
 * confirm at once. */
static void test_gcp_conf_waits(void)
{
    struct world *w = gcp_open(&W);
    gcp_round(w, ALL_NODES, 1, 5);
    flt_add(w, NINES__MSG_TYPE__COMMIT_CONF, 0, 0, FLT_TAKE, 1);
    submit_tpcb(w, 1, CONN(1), 1, 1, 2, 0, 1);
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL_FATAL(w->ntaken, 1);
    uint32_t h = 0;
    for (uint32_t n = 1; n <= NN; n++)
        if (stats(w, n).hsc_started)
            h = n;
    CU_ASSERT_FATAL(h != 0);
    CU_ASSERT_EQUAL(gstats(w, h).incomplete, 1);
    gcp_round(w, ALL_NODES, 2, 6);
    settle(w, 50);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, 0, 2), NN - 1);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, h, 2), 0);
    /* a newer decision (epoch 6) does not hold it either way */
    submit_tpcb(w, 1, CONN(1), 2, 2, 3, 0, 1);
    settle(w, 100);
    CU_ASSERT_PTR_NOT_NULL(answer_for(w, CONN(1), 2));
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, h, 2), 0);
    w->nflt = 0;
    release_taken(w);
    settle(w, 100);
    const struct gev *g = gev_find(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, h, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->gci, 6);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, h, 2), 1);
    CU_ASSERT_EQUAL(gstats(w, h).incomplete, 0);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* PREPARE, then silence: after hold_ms every controller stamps again (the
 * old epoch) by itself, and that round's COMMIT_REQ is refused — but
 * still raises the epoch. */
static void test_gcp_hold_expiry(void)
{
    struct world *w = gcp_open(&W);
    gcp_round(w, ALL_NODES, 1, 5);
    gcp_send(w, ALL_NODES, false, 2, 100);
    settle(w, 20);
    submit_tpcb(w, 1, CONN(1), 1, 1, 2, 0, 1);
    settle(w, 100);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1));
    for (uint32_t n = 1; n <= NN; n++)
        advance(w, n, 150);
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_TRUE(commits_carry(w, a->txn, 5));
    for (uint32_t n = 1; n <= NN; n++) {
        CU_ASSERT_EQUAL(gstats(w, n).holds_expired, 1);
        CU_ASSERT_FALSE(gstats(w, n).stopped);
    }
    gcp_send(w, ALL_NODES, true, 2, 6);
    settle(w, 20);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_REF, 0, 2), NN);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, 0, 2), 0);
    for (uint32_t i = 0; i < w->ngev; i++)
        if (w->gev[i].type == NINES__MSG_TYPE__GCP_COMMIT_REF)
            CU_ASSERT_EQUAL(w->gev[i].error, NINES_ESTATE);
    submit_tpcb(w, 1, CONN(1), 2, 2, 3, 0, 1);
    settle(w, 100);
    a = answer_for(w, CONN(1), 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_TRUE(commits_carry(w, a->txn, 6)); /* raised by the refused round */
    /* a COMMIT_REQ of a round that never stopped this controller: refused */
    gcp_send(w, RT_NODE_BIT(2), true, 7, 9);
    settle(w, 20);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_REF, 2, 7), 1);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

/* The ctl deciding alone (no node of the other site, disk log on) stamps
 * too: it waits while stopped, and it is counted until every kernel
 * confirmed. */
static void test_gcp_ctl_alone(void)
{
    struct world *w = gcp_open(&W);
    w->cfg.disk_log = NINES_DISK_LOG_ASYNC; /* every node reads the same file (rt_conf) */
    uint64_t alive = RT_NODE_BIT(1) | RT_NODE_BIT(3);
    ns_install(w, 2, alive);
    settle(w, 50);
    gcp_round(w, alive, 1, 5);
    flt_add(w, NINES__MSG_TYPE__COMMIT_CONF, 0, 1, FLT_TAKE, 1);
    submit_tpcb(w, 1, CONN(1), 1, 31, 0, 0, 1);
    settle(w, 100);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_TRUE(commits_carry(w, a->txn, 5));
    CU_ASSERT_EQUAL(HSUM(w, hsc_started), 0); /* decided alone */
    CU_ASSERT_EQUAL_FATAL(w->ntaken, 1);
    gcp_send(w, alive, false, 2, 10000);
    settle(w, 20);
    submit_tpcb(w, 1, CONN(1), 2, 32, 1, 1, 1);
    settle(w, 100);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 2));
    CU_ASSERT_EQUAL(gstats(w, 1).waiting, 1);
    gcp_send(w, alive, true, 2, 6);
    settle(w, 100);
    a = answer_for(w, CONN(1), 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_TRUE(commits_carry(w, a->txn, 6));
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, 3, 2), 1);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, 1, 2), 0); /* txn 1 */
    w->nflt = 0;
    release_taken(w);
    settle(w, 100);
    CU_ASSERT_EQUAL(gev_count(w, NINES__MSG_TYPE__GCP_COMMIT_CONF, 1, 2), 1);
    w->cfg.disk_log = NINES_DISK_LOG_OFF;
    world_close(w);
}

static void post_saved(struct world *w, uint32_t node, uint64_t gci)
{
    struct rt_msg *m = rt_msg_new(w->rt[node], RT_MSG_GCP_SAVED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    m->cookie = gci;
    rt_post_local(w->rt[node], RT_SVC_TXC, m);
}

/* disk_log sync: the client's TXN_CONF for a commit of epoch g leaves only
 * once RT_MSG_GCP_SAVED(g) reached its controller (the kernels committed
 * long before). */
static void test_gcp_sync_holds_answer(void)
{
    struct world *w = gcp_open(&W);
    w->cfg.disk_log = NINES_DISK_LOG_SYNC;
    gcp_round(w, ALL_NODES, 1, 5);
    uint32_t nev0 = w->nev;
    submit_tpcb(w, 1, CONN(1), 1, 41, 2, 0, 7);
    settle(w, 100);
    uint64_t txn = txn_after(w, nev0);
    CU_ASSERT_TRUE(commits_carry(w, txn, 5));
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1));
    CU_ASSERT_EQUAL(gstats(w, 1).held_now, 1);
    CU_ASSERT_EQUAL(active_total(w), 0); /* the transaction itself is done */
    post_saved(w, 1, 4);
    settle(w, 20);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1));
    post_saved(w, 1, 5);
    settle(w, 20);
    struct ans *a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(a->txn, txn);
    CU_ASSERT_EQUAL(a->value, 1000 + 7);
    CU_ASSERT_EQUAL(a->nresults, 0); /* a procedure: its value only */
    struct txc_gcp_stats g = gstats(w, 1);
    CU_ASSERT_EQUAL(g.held_now, 0);
    CU_ASSERT_EQUAL(g.released, 1);
    CU_ASSERT_EQUAL(g.restorable, 5);
    /* stamped 5, already restorable: answered at once */
    submit_tpcb(w, 1, CONN(1), 2, 42, 3, 0, 1);
    settle(w, 100);
    CU_ASSERT_PTR_NOT_NULL(answer_for(w, CONN(1), 2));
    /* the next epoch waits for its own SAVED */
    gcp_round(w, ALL_NODES, 2, 6);
    submit_tpcb(w, 1, CONN(1), 3, 43, 4, 0, 1);
    settle(w, 100);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 3));
    post_saved(w, 1, 6);
    settle(w, 20);
    CU_ASSERT_PTR_NOT_NULL(answer_for(w, CONN(1), 3));
    CU_ASSERT_EQUAL(gstats(w, 1).released, 2);
    w->cfg.disk_log = NINES_DISK_LOG_OFF;
    world_close(w);
}


#define GCP_CLIENT 0x77u /* the request-key client of gcp_sync_outcome */

/* TPC-B under request key (GCP_CLIENT, seq, attempt 1). */
static void submit_tpcb_key(struct world *w, uint32_t node, net_addr conn, uint64_t req_id,
                            uint64_t seq, int64_t aid, int64_t tid, int64_t delta)
{
    struct rt_msg *m;
    Nines__TxnReq *b = new_req(w, node, &m, req_id, 0, NINES__TXN_END__TXN_END_COMMIT, 0);
    Nines__TpcbCall *c = rt_msg_alloc(m, sizeof *c);
    nines__tpcb_call__init(c);
    c->aid = aid;
    c->tid = tid;
    c->delta = delta;
    b->proc_case = NINES__TXN_REQ__PROC_TPCB;
    b->tpcb = c;
    Nines__ReqKey *k = rt_msg_alloc(m, sizeof *k);
    nines__req_key__init(k);
    k->client = GCP_CLIENT;
    k->seq = seq;
    k->attempt = 1;
    b->key = k;
    submit(w, node, conn, m);
}

/* The outcome of key seq (sent to node 1) asked at `node`. */
static struct ans *ask_key(struct world *w, uint32_t node, net_addr conn, uint64_t req_id,
                           uint64_t seq)
{
    struct rt_msg *m = rt_msg_new(w->rt[node], NINES__MSG_TYPE__TXN_OUTCOME_REQ);
    Nines__TxnOutcomeReq *b = RT_BODY(m, Nines__TxnOutcomeReq, nines__txn_outcome_req__init);
    b->req_id = req_id;
    b->n_keys = 1;
    b->keys = rt_msg_alloc(m, sizeof *b->keys);
    Nines__KeyQuery *q = rt_msg_alloc(m, sizeof *q);
    nines__key_query__init(q);
    Nines__ReqKey *k = rt_msg_alloc(m, sizeof *k);
    nines__req_key__init(k);
    k->client = GCP_CLIENT;
    k->seq = seq;
    k->attempt = 1;
    q->key = k;
    q->sent_to = RT_NODE_BIT(1);
    b->keys[0] = q;
    submit(w, node, conn, m);
    settle(w, 50);
    return answer_for(w, conn, req_id);
}

/* disk_log sync: an outcome question says "committed" only once the
 * commit's epoch is restorable (until then: in progress), and a repeated
 * request key is not answered from its stored commit either. */
static void test_gcp_sync_outcome(void)
{
    struct world *w = gcp_open(&W);
    w->cfg.disk_log = NINES_DISK_LOG_SYNC;
    gcp_round(w, ALL_NODES, 1, 5);
    submit_tpcb_key(w, 1, CONN(1), 1, 1, 51, 2, 3);
    settle(w, 100);
    CU_ASSERT_PTR_NULL(answer_for(w, CONN(1), 1)); /* held */
    struct ans *a = ask_key(w, 3, CONN(3), 100, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_OUTCOME_CONF);
    CU_ASSERT_EQUAL(a->value, NINES__KEY_OUTCOME__KEY_IN_PROGRESS);
    submit_tpcb_key(w, 1, CONN(4), 2, 1, 51, 2, 3); /* the same key again */
    settle(w, 50);
    a = answer_for(w, CONN(4), 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_REF);
    CU_ASSERT_EQUAL(a->error, NINES_EAGAIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->detail, "not restorable yet"));
    for (uint32_t n = 1; n <= NN; n++)
        post_saved(w, n, 5);
    settle(w, 20);
    a = answer_for(w, CONN(1), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    uint64_t txn = a->txn;
    a = ask_key(w, 3, CONN(3), 101, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->value, NINES__KEY_OUTCOME__KEY_COMMITTED);
    CU_ASSERT_EQUAL(a->txn, txn);
    w->cfg.disk_log = NINES_DISK_LOG_OFF;
    world_close(w);
}

/* A table with the dictionary's readonly flag: INSERT, UPDATE, DELETE, ADD
 * and a procedure's writes are refused with NINES_ESTATE naming the table
 * (txctl/README.md "Requests and routing"); GET and SCAN go on; cleared,
 * writes go on. */
static void test_readonly_table(void)
{
    struct world *w = &W;
    world_open(w, 10000, true);
    net_addr c = CONN(4);
    CU_ASSERT_EQUAL_FATAL(dict_set_readonly(&w->d, "kv", true), 0);
    CU_ASSERT_EQUAL_FATAL(dict_set_readonly(&w->d, "account", true), 0);
    struct rt_msg *m;
    static const Nines__OpType writes[] = {NINES__OP_TYPE__OP_INSERT, NINES__OP_TYPE__OP_UPDATE,
                                           NINES__OP_TYPE__OP_DELETE, NINES__OP_TYPE__OP_ADD};
    for (uint64_t i = 0; i < 4; i++) {
        Nines__TxnReq *r = new_req(w, 1, &m, 1 + i, 0, NINES__TXN_END__TXN_END_COMMIT, 2);
        kv_op(m, r->ops[0], NINES__OP_TYPE__OP_GET, 1, 0);
        kv_op(m, r->ops[1], writes[i], 7, 1);
        if (writes[i] == NINES__OP_TYPE__OP_INSERT || writes[i] == NINES__OP_TYPE__OP_UPDATE) {
            Nines__RecordOp *op = r->ops[1];
            op->n_key = 0;
            op->row = rt_msg_alloc(m, sizeof *op->row);
            nines__row__init(op->row);
            op->row->n_values = 3;
            op->row->values = rt_msg_alloc(m, 3 * sizeof *op->row->values);
            op->row->values[0] = v_i64(m, 7);
            op->row->values[1] = v_i64(m, 1);
            op->row->values[2] = v_str(m, "x");
        }
        submit(w, 1, c, m);
    }
    submit_tpcb(w, 1, c, 5, 1, 1, 1, 1);
    Nines__TxnReq *r = new_req(w, 1, &m, 6, 0, NINES__TXN_END__TXN_END_COMMIT, 2);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_GET, 1, 0);
    scan_op(m, r->ops[1], "kv", NOKEY, NOKEY, 10, false);
    submit(w, 1, c, m);
    settle(w, 200);
    expect_ref(w, c, 1, NINES_ESTATE, "table kv is read-only: INSERT refused");
    CU_ASSERT_EQUAL(answer_for(w, c, 1)->failed_op, 1);
    expect_ref(w, c, 2, NINES_ESTATE, "table kv is read-only: UPDATE refused");
    expect_ref(w, c, 3, NINES_ESTATE, "table kv is read-only: DELETE refused");
    expect_ref(w, c, 4, NINES_ESTATE, "table kv is read-only: ADD refused");
    expect_ref(w, c, 5, NINES_ESTATE, "table account is read-only");
    struct ans *a = answer_for(w, c, 6);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    /* cleared: the same write goes through */
    CU_ASSERT_EQUAL_FATAL(dict_set_readonly(&w->d, "kv", false), 0);
    r = new_req(w, 1, &m, 7, 0, NINES__TXN_END__TXN_END_COMMIT, 1);
    kv_op(m, r->ops[0], NINES__OP_TYPE__OP_ADD, 1, 1);
    submit(w, 1, c, m);
    settle(w, 200);
    a = answer_for(w, c, 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->type, NINES__MSG_TYPE__TXN_CONF);
    CU_ASSERT_EQUAL(active_total(w), 0);
    world_close(w);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"commit_sequencing", test_commit_sequencing},
        {"pipelined", test_pipelined},
        {"kernel_refusals", test_kernel_refusals},
        {"interactive", test_interactive},
        {"client_close", test_client_close},
        {"inflight_limit", test_inflight_limit},
        {"timeout", test_timeout},
        {"hsc", test_hsc},
        {"commit_point_timer_race", test_commit_point_timer_race},
        {"commit_point_abort_asks", test_commit_point_abort_asks},
        {"no_silent_1safe", test_no_silent_1safe},
        {"alone_disk_log_decides_alone", test_alone_disk_log_decides_alone},
        {"second_phase_retry", test_second_phase_retry},
        {"answer_lost_after_commit", test_answer_lost_after_commit},
        {"bad_requests", test_bad_requests},
        {"readonly_table", test_readonly_table},
        {"scan_hash", test_scan_hash},
        {"scan_range", test_scan_range},
        {"scan_errors", test_scan_errors},
        {"conversion", test_conversion},
        {"ns_routing", test_ns_routing},
        {"ns_not_member", test_ns_not_member},
        {"ns_ctl_dies_committed", test_ns_ctl_dies_committed},
        {"ns_ctl_dies_undecided", test_ns_ctl_dies_undecided},
        {"ns_primary_dies_before_ready", test_ns_primary_dies_before_ready},
        {"ns_primary_dies_after_ready", test_ns_primary_dies_after_ready},
        {"ns_answer_lost_node_dies", test_ns_answer_lost_node_dies},
        {"ns_hsc_dies_before_decision", test_ns_hsc_dies_before_decision},
        {"ns_hsc_dies_after_decision", test_ns_hsc_dies_after_decision},
        {"ns_hsc_dies_while_asking", test_ns_hsc_dies_while_asking},
        {"ns_hsc_dies_kernel_says", test_ns_hsc_dies_kernel_says},
        {"ns_double_failure", test_ns_double_failure},
        {"ns_interactive_kernel_dies", test_ns_interactive_kernel_dies},
        {"takeback_eagain_retried", test_takeback_eagain_retried},
        {"takeback_rerouted", test_takeback_rerouted},
        {"takeback_refused_hsc_leaves", test_takeback_refused_hsc_leaves},
        {"gcp_stamps", test_gcp_stamps},
        {"gcp_stopped_waits", test_gcp_stopped_waits},
        {"gcp_conf_waits", test_gcp_conf_waits},
        {"gcp_hold_expiry", test_gcp_hold_expiry},
        {"gcp_ctl_alone", test_gcp_ctl_alone},
        {"gcp_sync_holds_answer", test_gcp_sync_holds_answer},
        {"gcp_sync_outcome", test_gcp_sync_outcome},
        {NULL, NULL},
    };
    cu_add_suite("txc", NULL, NULL, cases);
}
