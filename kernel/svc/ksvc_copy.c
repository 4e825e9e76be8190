/* Kernel service: log copies (ClustRa section 4: "the log where only one
 * replica exists, is copied to a node at the other site"). While a
 * fragment is PRIMARY ALONE (dict_frag_roles: one replica left) its primary
 * ships its log records and end marks to the fragment's `logcopy` node, a
 * node of the other site holding no replica of it. This file is that
 * node's side: it holds the records and marks in memory without applying
 * them, acknowledges them as held (the update channel's positions: held
 * counts as applied), and sends READY_IND(standby = 1, node = self) to
 * each mark's hsc, so the commit point waits for the copy as it waits for
 * a hot standby. Bounded by a per-fragment byte budget; dropped when the
 * fragment is no longer ALONE with this node as its log copy, kept (and
 * frozen) when the alone primary is lost. README "Log copy". */
#include "ksvc_int.h"

#include "nines/errors.h"
#include "nlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One held record, exactly as the primary encoded it (CRC included). */
struct sk_crec {
    struct sk_crec *next;
    uint64_t lsn, txn;
    uint32_t len;
    uint8_t bytes[];
};

/* A transaction with records in a copy. */
struct sk_ctxn {
    struct sk_node node;        /* a = txn */
    uint32_t nheld;             /* its records held */
    bool ended;                 /* its COMMIT or ABORT record arrived */
};

/* A held end mark. */
struct sk_cmark {
    uint64_t txn, seq, lsn;
    uint32_t nrecords, ctl, hsc;
};

enum sk_copy_state {
    SK_COPY_TAKING = 1,         /* ALONE, this node its log copy: takes the primary's stream */
    SK_COPY_KEPT,               /* the alone primary left the node set (DOWN): frozen, kept
                                 * for the durability issue's rebuild */
};

struct sk_copy {
    struct sk_node node;        /* a = table, b = frag */
    uint32_t table, frag;
    uint32_t primary;           /* the node whose stream it holds */
    enum sk_copy_state st;
    uint64_t pinc;              /* that primary replica's incarnation */
    uint64_t start_lsn, start_seq; /* the stint it holds from (updchan README) */
    uint64_t next_lsn;          /* every record below it arrived (held, or dropped over the
                                 * budget as a record of an ended transaction) */
    uint64_t mark_seq;          /* the last end mark processed */
    struct sk_crec *head, *tail; /* LSN order */
    size_t nrecs, bytes;        /* bytes: records + their headers + marks */
    struct sk_cmark *marks;     /* seq order */
    uint32_t nmarks, capmarks;
    struct sk_map txns;         /* struct sk_ctxn */
    uint64_t dropped;           /* records dropped over the budget */
    bool gap_logged, over_logged;
};

struct sk_copies {
    struct sk_map map;          /* struct sk_copy */
    size_t budget;
    struct ksvc_copy_stats st;
};

static struct sk_copies *copies_get(struct ksvc *k)
{
    if (k->copies)
        return k->copies;
    struct sk_copies *cs = calloc(1, sizeof *cs);
    if (!cs || sk_map_init(&cs->map, 16)) {
        free(cs);
        NLOG_ERROR("kern", "no memory for the log copies of node %u", k->self);
        return NULL;
    }
    cs->budget = KSVC_COPY_BUDGET;
    k->copies = cs;
    return cs;
}

static struct sk_copy *copy_find(const struct ksvc *k, uint32_t table, uint32_t frag)
{
    if (!k->copies)
        return NULL;
    struct sk_node *nd = sk_map_get(&k->copies->map, table, frag, 0);
    return nd ? (struct sk_copy *)nd : NULL;
}

/* Free everything c holds; its positions stay. */
static void copy_clear(struct sk_copy *c)
{
    while (c->head) {
        struct sk_crec *r = c->head;
        c->head = r->next;
        free(r);
    }
    c->tail = NULL;
    if (c->txns.bk) {
        SK_MAP_FOREACH(&c->txns, i, nd, nx)
        free(nd);
        memset(c->txns.bk, 0, c->txns.cap * sizeof *c->txns.bk);
        c->txns.n = 0;
    }
    free(c->marks);
    c->marks = NULL;
    c->nmarks = c->capmarks = 0;
    c->nrecs = c->bytes = 0;
}

static void copy_free(struct sk_copy *c)
{
    copy_clear(c);
    sk_map_free(&c->txns);
    free(c);
}

static void copy_drop(struct ksvc *k, struct sk_copy *c, const char *why)
{
    NLOG_INFO("kern", "node %u drops its log copy of table %u fragment %u (primary node %u, "
              "%zu records, %u end marks, LSN %llu..%llu): %s", k->self, c->table, c->frag,
              c->primary, c->nrecs, c->nmarks, (unsigned long long)c->start_lsn,
              (unsigned long long)(c->next_lsn - 1), why);
    k->copies->st.copies_dropped++;
    sk_map_del(&k->copies->map, &c->node);
    copy_free(c);
}

void sk_copy_fini(struct ksvc *k)
{
    struct sk_copies *cs = k->copies;
    if (!cs)
        return;
    SK_MAP_FOREACH(&cs->map, i, nd, nx)
    copy_free((struct sk_copy *)nd);
    sk_map_free(&cs->map);
    free(cs);
    k->copies = NULL;
}

/* ---- roles ---- */

/* The roles of (table, frag) in the installed node set and dictionary d;
 * false when they cannot be computed (no node set yet, no such table or
 * fragment in d). */
static bool copy_roles(const struct ksvc *k, const struct dict *d, uint32_t table, uint32_t frag,
                       struct dict_roles *out, const struct dict_table **tout)
{
    const struct rt_nodeset *ns = rt_nodeset(k->rt);
    const struct dict_table *t = d ? dict_table_by_id(d, table) : NULL;
    if (ns->epoch == 0 || !t || frag >= t->nfrags)
        return false;
    if (tout)
        *tout = t;
    struct dict_live live = sk_live(k);
    return dict_frag_roles_live(d, t, frag, &live, out) == 0;
}

int sk_copy_write_check(struct ksvc *k, uint32_t table, uint32_t frag)
{
    const struct rt_nodeset *ns = rt_nodeset(k->rt);
    const struct dict *d = k->dict(k->dict_ctx);
    const struct dict_table *t = d && ns->epoch ? dict_table_by_id(d, table) : NULL;
    if (!t || frag >= t->nfrags)
        return 0; /* the caller refuses unknown fragments itself */
    const struct dict_frag *fr = &t->frags[frag];
    if (!fr->standby || ((ns->current & DICT_LIVE(fr->primary)) &&
                         (ns->current & DICT_LIVE(fr->standby))))
        return 0; /* SINGLE or BOTH: the common case, decided without more */
    struct dict_roles ro;
    struct dict_live live = sk_live(k);
    char why[256];
    if (dict_frag_roles_live(d, t, frag, &live, &ro) < 0 || ro.state != DICT_FRAG_ALONE ||
        ro.logcopy != 0 || sk_dlog_sole_ok(k, why, sizeof why))
        return 0; /* (a working disk log stands in: commits wait for the local fsync) */
    return nines_err(NINES_EUNREACHABLE,
                     "table %s fragment %u has one replica left, on node %u, and no node of the "
                     "other site is in the node set (epoch %llu) to hold a copy of its log, and "
                     "%s: writes to it are refused (not committed) until one is — a commit "
                     "would be in memory at one site only",
                     t->def.name, frag, ro.primary, (unsigned long long)ns->epoch, why);
}

/* ---- holding ---- */

static struct sk_ctxn *ctxn_get(struct sk_copy *c, uint64_t txn)
{
    if (!c->txns.bk)
        return NULL;
    struct sk_node *nd = sk_map_get(&c->txns, txn, 0, 0);
    if (nd)
        return (struct sk_ctxn *)nd;
    struct sk_ctxn *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->node.a = txn;
    sk_map_put(&c->txns, &x->node);
    return x;
}

static bool ctxn_ended(const struct sk_copy *c, uint64_t txn)
{
    struct sk_node *nd = c->txns.bk ? sk_map_get(&c->txns, txn, 0, 0) : NULL;
    return nd && ((const struct sk_ctxn *)nd)->ended;
}

/* Hold record lr (encoded bytes raw); false: no memory. */
static bool copy_hold(struct sk_copy *c, const struct kern_logrec *lr,
                      const ProtobufCBinaryData *raw)
{
    struct sk_ctxn *x = ctxn_get(c, lr->txn);
    struct sk_crec *r = x ? malloc(sizeof *r + raw->len) : NULL;
    if (!r)
        return false;
    r->next = NULL;
    r->lsn = lr->lsn;
    r->txn = lr->txn;
    r->len = (uint32_t)raw->len;
    memcpy(r->bytes, raw->data, raw->len);
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->nrecs++;
    c->bytes += sizeof *r + raw->len;
    x->nheld++;
    if (lr->op == KERN_LOG_COMMIT || lr->op == KERN_LOG_ABORT)
        x->ended = true;
    return true;
}

static bool copy_hold_mark(struct sk_copy *c, const Nines__TxnEndMark *mk)
{
    if (c->nmarks == c->capmarks) {
        uint32_t cap = c->capmarks ? 2 * c->capmarks : 16;
        struct sk_cmark *nm = realloc(c->marks, cap * sizeof *nm);
        if (!nm)
            return false;
        c->marks = nm;
        c->capmarks = cap;
    }
    c->marks[c->nmarks++] = (struct sk_cmark){mk->txn, mk->seq, mk->lsn, mk->nrecords, mk->ctl,
                                              mk->hsc};
    c->bytes += sizeof(struct sk_cmark);
    return true;
}

/* Over the budget: drop the oldest records (and the marks) of transactions
 * that already ended here — their COMMIT/ABORT record is held — down to
 * three quarters of the budget. Records of a transaction still open are
 * never dropped (they are what a rebuild needs to resolve it). */
static void copy_trim(struct ksvc *k, struct sk_copy *c)
{
    size_t budget = k->copies->budget;
    if (c->bytes <= budget)
        return;
    const struct sk_rep *rr = sk_rep_get(k, c->table, c->frag);
    if (rr && rr->rb)
        return; /* a replica being rebuilt applies all of it (README "Rebuild") */
    size_t goal = budget - budget / 4;
    uint32_t keep = 0, mdrop = 0;
    for (uint32_t i = 0; i < c->nmarks; i++) {
        if (ctxn_ended(c, c->marks[i].txn)) {
            mdrop++;
            continue;
        }
        c->marks[keep++] = c->marks[i];
    }
    c->nmarks = keep;
    c->bytes -= mdrop * sizeof(struct sk_cmark);
    uint64_t n = 0, lo = 0, hi = 0;
    struct sk_crec *prev = NULL;
    for (struct sk_crec *r = c->head, *nx; r && c->bytes > goal; r = nx) {
        nx = r->next;
        struct sk_ctxn *x = (struct sk_ctxn *)sk_map_get(&c->txns, r->txn, 0, 0);
        if (!x || !x->ended) {
            prev = r;
            continue;
        }
        if (prev)
            prev->next = nx;
        else
            c->head = nx;
        if (c->tail == r)
            c->tail = prev;
        if (!n)
            lo = r->lsn;
        hi = r->lsn;
        n++;
        c->nrecs--;
        c->bytes -= sizeof *r + r->len;
        free(r);
        if (--x->nheld == 0) {
            sk_map_del(&c->txns, &x->node);
            free(x);
        }
    }
    c->dropped += n;
    k->copies->st.dropped_recs += n;
    if (n)
        NLOG_WARN("kern", "node %u: the log copy of table %u fragment %u is over its budget of "
                  "%zu bytes: dropped %llu records of ended transactions (LSN %llu..%llu) and "
                  "%u end marks; those commits are now in memory at primary node %u only",
                  k->self, c->table, c->frag, budget, (unsigned long long)n,
                  (unsigned long long)lo, (unsigned long long)hi, mdrop, c->primary);
    if (c->bytes > budget && !c->over_logged) {
        c->over_logged = true;
        NLOG_WARN("kern", "node %u: the log copy of table %u fragment %u holds %zu bytes of open "
                  "transactions, over its budget of %zu: kept (records of open transactions are "
                  "never dropped)", k->self, c->table, c->frag, c->bytes, budget);
    } else if (c->bytes <= budget) {
        c->over_logged = false;
    }
}

/* The copy's readiness for an end mark: to the mark's hot-standby
 * controller (the commit point), or its controller when it has none — the
 * READY_IND a hot standby sends, naming this node. */
static void copy_ready(struct ksvc *k, const struct sk_copy *c, const Nines__TxnEndMark *mk)
{
    uint32_t to = mk->hsc ? mk->hsc : mk->ctl;
    if (!to)
        return;
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__READY_IND);
    Nines__ReadyInd *r = m ? RT_BODY(m, Nines__ReadyInd, nines__ready_ind__init) : NULL;
    if (!r) {
        if (m)
            rt_msg_free(k->rt, m);
        return; /* the controller times out and aborts */
    }
    r->txn = mk->txn;
    r->node = k->self;
    r->table = c->table;
    r->frag = c->frag;
    r->standby = 1;
    if (rt_send(k->rt, to == k->self ? 0 : to, RT_SVC_TXC, m) == 0)
        k->copies->st.readies++;
}

/* Start c over for the stream of `rd` (a new primary incarnation or stint
 * it cannot continue from). */
static void copy_restart(struct ksvc *k, struct sk_copy *c, const struct upd_redo *rd,
                         uint64_t start)
{
    if (c->nrecs || c->nmarks || c->pinc) {
        NLOG_INFO("kern", "node %u: log copy of table %u fragment %u starts over for node %u "
                  "(incarnation %llu, from LSN %llu and the marks after %llu); it held %zu "
                  "records of node %u (incarnation %llu, LSN %llu..%llu)", k->self, c->table,
                  c->frag, rd->from, (unsigned long long)rd->pinc, (unsigned long long)start,
                  (unsigned long long)rd->start_seq, c->nrecs, c->primary,
                  (unsigned long long)c->pinc, (unsigned long long)c->start_lsn,
                  (unsigned long long)(c->next_lsn - 1));
        k->copies->st.restarts++;
    }
    copy_clear(c);
    c->primary = rd->from;
    c->pinc = rd->pinc;
    c->start_lsn = start;
    c->start_seq = rd->start_seq;
    c->next_lsn = start;
    c->mark_seq = rd->start_seq;
    c->st = SK_COPY_TAKING;
    c->gap_logged = c->over_logged = false;
}

bool sk_copy_on_redo(struct ksvc *k, const struct upd_redo *rd)
{
    struct dict_roles ro;
    const struct dict_table *t = NULL;
    bool have = copy_roles(k, k->dict(k->dict_ctx), rd->table, rd->frag, &ro, &t);
    if (!have || ro.state != DICT_FRAG_ALONE || ro.logcopy != k->self) {
        if (rd->start_lsn <= 1)
            return false; /* a stream from the start: the hot-standby path answers */
        /* a log-copy stint (it starts past LSN 1) for a fragment this node
         * is not the log copy of in its node set and dictionary: the
         * sender's view differs (a change in progress). Not answered: an
         * answer from position 0 would make the primary rewind below its
         * log; it resends by itself when nothing is acknowledged. */
        NLOG_DEBUG("kern", "%zu records of table %u fragment %u from node %u (from LSN %llu): "
                   "node %u is not its log copy in node set %llu; not answered", rd->nrecs,
                   rd->table, rd->frag, rd->from, (unsigned long long)rd->start_lsn, k->self,
                   (unsigned long long)rt_nodeset(k->rt)->epoch);
        return true;
    }
    struct sk_copies *cs = copies_get(k);
    if (!cs)
        return true; /* nothing acknowledged: the primary resends */
    if (rd->from != ro.primary) {
        cs->st.refused++;
        NLOG_WARN("kern", "node %u refuses %zu log records of table %s fragment %u from node %u: "
                  "node %u is the fragment's primary in node set %llu, and only its log is "
                  "copied here", k->self, rd->nrecs, t->def.name, rd->frag, rd->from, ro.primary,
                  (unsigned long long)rt_nodeset(k->rt)->epoch);
        return true;
    }
    struct sk_copy *c = copy_find(k, rd->table, rd->frag);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c || sk_map_init(&c->txns, 64)) {
            free(c);
            NLOG_ERROR("kern", "no memory for a log copy of table %u fragment %u: not "
                       "acknowledged (the primary resends)", rd->table, rd->frag);
            return true;
        }
        c->table = rd->table;
        c->frag = rd->frag;
        c->node.a = rd->table;
        c->node.b = rd->frag;
        sk_map_put(&cs->map, &c->node);
        NLOG_INFO("kern", "node %u is the log copy of table %s fragment %u (primary node %u "
                  "alone, node set %llu)", k->self, t->def.name, rd->frag, rd->from,
                  (unsigned long long)rt_nodeset(k->rt)->epoch);
    }
    uint64_t start = rd->start_lsn ? rd->start_lsn : 1;
    /* continue what is held when this stint covers it without a hole;
     * else start over from the stint's start */
    if (c->st != SK_COPY_TAKING || c->primary != rd->from || c->pinc != rd->pinc ||
        start < c->start_lsn || start > c->next_lsn || rd->start_seq < c->start_seq ||
        rd->start_seq > c->mark_seq)
        copy_restart(k, c, rd, start);
    bool resend = false;
    for (size_t i = 0; i < rd->nrecs && !resend; i++) {
        const struct kern_logrec *lr = &rd->recs[i];
        if (lr->lsn < c->next_lsn)
            continue; /* held already (a resend) */
        if (lr->lsn > c->next_lsn) {
            if (!c->gap_logged)
                NLOG_WARN("kern", "log copy of table %u fragment %u from node %u: LSN gap, "
                          "holds up to %llu, got %llu; resend asked", c->table, c->frag,
                          rd->from, (unsigned long long)(c->next_lsn - 1),
                          (unsigned long long)lr->lsn);
            c->gap_logged = true;
            resend = true;
            break;
        }
        if (!copy_hold(c, lr, &rd->raw[i])) {
            NLOG_ERROR("kern", "no memory to hold LSN %llu of table %u fragment %u in the log "
                       "copy: the rest is not acknowledged, resend asked",
                       (unsigned long long)lr->lsn, c->table, c->frag);
            resend = true;
            break;
        }
        c->next_lsn++;
        c->gap_logged = false;
    }
    for (size_t i = 0; i < rd->nmarks && !resend; i++) {
        const Nines__TxnEndMark *mk = rd->marks[i];
        if (mk->seq <= c->mark_seq)
            continue; /* processed already */
        if (mk->seq != c->mark_seq + 1 || mk->lsn >= c->next_lsn) {
            NLOG_DEBUG("kern", "log copy of table %u fragment %u: end mark %llu (LSN %llu) after "
                       "mark %llu with LSN %llu held: resend asked", c->table, c->frag,
                       (unsigned long long)mk->seq, (unsigned long long)mk->lsn,
                       (unsigned long long)c->mark_seq, (unsigned long long)(c->next_lsn - 1));
            resend = true;
            break;
        }
        if (!copy_hold_mark(c, mk)) {
            NLOG_ERROR("kern", "no memory to hold end mark %llu of table %u fragment %u: resend "
                       "asked", (unsigned long long)mk->seq, c->table, c->frag);
            resend = true;
            break;
        }
        /* every record of mk->txn here is at or below mk->lsn, held (or
         * before the stint: ended, or open and at/above the undo floor the
         * stint starts from) */
        c->mark_seq = mk->seq;
        copy_ready(k, c, mk);
    }
    copy_trim(k, c);
    upd_recv_applied(k->u, &(struct upd_applied){.table = c->table, .frag = c->frag,
                                                 .from = c->primary, .pinc = c->pinc,
                                                 .lsn = c->next_lsn - 1,
                                                 .mark_seq = c->mark_seq, .resend = resend});
    return true;
}

/* ---- rebuild: the copied replica takes over what is held ---- */

void sk_copy_hand_over(struct ksvc *k, struct sk_rep *r, uint32_t source, uint64_t *held_to)
{
    struct sk_copy *c = copy_find(k, r->table, r->frag);
    *held_to = 0;
    r->pinc = 0;
    r->mark_seq = 0;
    r->adopt_pinc = true;
    if (!c || c->st != SK_COPY_TAKING || c->primary != source) {
        if (c)
            copy_drop(k, c, "the replica was rebuilt from another primary's copy");
        return; /* the stream continues in the standby path from the replica's log */
    }
    struct kern_log *log = kern_frag_log(r->f);
    uint64_t applied = 0, skipped = 0;
    bool hole = false;
    for (const struct sk_crec *h = c->head; h && !hole; h = h->next) {
        uint64_t next = kern_log_next_lsn(log);
        if (h->lsn < next) {
            skipped++;
            continue; /* reflected in the copy (below its redo start) */
        }
        if (h->lsn > next) {
            hole = true; /* the rest comes again from the primary */
            break;
        }
        int rc = kern_frag_redo_bytes(r->f, h->bytes, h->len);
        if (rc < 0) {
            NLOG_ERROR("kern", "node %u: redo of held LSN %llu of table %s fragment %u into the "
                       "rebuilt replica failed: %s; the rest comes again from the primary",
                       k->self, (unsigned long long)h->lsn, r->tname, r->frag,
                       nines_errdetail());
            hole = true;
            break;
        }
        applied++;
    }
    r->pinc = c->pinc;
    r->mark_seq = c->mark_seq;
    r->adopt_pinc = false;
    /* the end marks of transactions not ended in what is held: a takeover
     * of this replica asks their hsc (their records are redone above, or
     * come again) */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->nmarks; i++) {
        const struct sk_cmark *m = &c->marks[i];
        if (ctxn_ended(c, m->txn))
            continue;
        Nines__TxnEndMark mk = NINES__TXN_END_MARK__INIT;
        mk.txn = m->txn;
        mk.nrecords = m->nrecords;
        mk.ctl = m->ctl;
        mk.hsc = m->hsc;
        mk.seq = m->seq;
        mk.lsn = m->lsn;
        sk_mark_keep_ahead(k, r, &mk);
        kept++;
    }
    *held_to = c->next_lsn - 1;
    NLOG_INFO("kern", "node %u: the rebuilt replica of table %s fragment %u takes over its log "
              "copy: %llu held records redone, %llu already in the copy, %s; %u end marks kept, "
              "stream position LSN %llu, mark %llu", k->self, r->tname, r->frag,
              (unsigned long long)applied, (unsigned long long)skipped,
              hole ? "the rest comes again from the primary" : "no hole", kept,
              (unsigned long long)*held_to, (unsigned long long)c->mark_seq);
    k->copies->st.handed_over++;
    sk_map_del(&k->copies->map, &c->node);
    copy_free(c);
}

/* ---- a new node set or dictionary ---- */

void sk_copy_reconcile(struct ksvc *k, const struct dict *d)
{
    struct sk_copies *cs = k->copies;
    if (!cs)
        return;
    SK_MAP_FOREACH(&cs->map, i, nd, nx)
    {
        struct sk_copy *c = (struct sk_copy *)nd;
        struct dict_roles ro;
        char why[160];
        if (!copy_roles(k, d, c->table, c->frag, &ro, NULL)) {
            copy_drop(k, c, "the table is no longer in the dictionary");
            continue;
        }
        switch (ro.state) {
        case DICT_FRAG_ALONE:
            if (ro.logcopy == k->self && ro.primary == c->primary)
                continue; /* still this node's copy */
            if (ro.primary != c->primary)
                snprintf(why, sizeof why, "node %u is the fragment's primary now", ro.primary);
            else
                snprintf(why, sizeof why, "node %u is its log copy now (the primary re-ships "
                         "what it needs there)", ro.logcopy);
            copy_drop(k, c, why);
            break;
        case DICT_FRAG_DOWN:
            if (c->st != SK_COPY_KEPT) {
                c->st = SK_COPY_KEPT;
                NLOG_WARN("kern", "node %u: the alone primary node %u of table %u fragment %u "
                          "left the node set (epoch %llu): this node keeps its log copy (%zu "
                          "records, LSN %llu..%llu, %u end marks, %zu transactions) in memory "
                          "for the durability issue's rebuild; nothing is added to it",
                          k->self, c->primary, c->table, c->frag,
                          (unsigned long long)rt_nodeset(k->rt)->epoch, c->nrecs,
                          (unsigned long long)c->start_lsn,
                          (unsigned long long)(c->next_lsn - 1), c->nmarks, c->txns.n);
            }
            break;
        case DICT_FRAG_BOTH:
            copy_drop(k, c, "both replicas serve again");
            break;
        case DICT_FRAG_SINGLE:
            copy_drop(k, c, "the fragment has one replica by configuration");
            break;
        default:
            copy_drop(k, c, "unknown fragment state");
            break;
        }
    }
}

/* ---- introspection ---- */

int ksvc_copy_info(const struct ksvc *k, uint32_t table, uint32_t frag,
                   struct ksvc_copy_info *out)
{
    const struct sk_copy *c = copy_find(k, table, frag);
    if (!c)
        return nines_err(NINES_ENOTFOUND, "node %u holds no log copy of table %u fragment %u",
                         k->self, table, frag);
    memset(out, 0, sizeof *out);
    out->primary = c->primary;
    out->kept = c->st == SK_COPY_KEPT;
    out->pinc = c->pinc;
    out->start_lsn = c->start_lsn;
    out->start_seq = c->start_seq;
    out->next_lsn = c->next_lsn;
    out->first_lsn = c->head ? c->head->lsn : c->next_lsn;
    out->mark_seq = c->mark_seq;
    out->nrecs = c->nrecs;
    out->bytes = c->bytes;
    out->nmarks = c->nmarks;
    for (size_t i = 0; i < c->txns.cap; i++)
        for (const struct sk_node *nd = c->txns.bk[i]; nd; nd = nd->next)
            out->open_txns += !((const struct sk_ctxn *)nd)->ended;
    out->dropped = c->dropped;
    return 0;
}

size_t ksvc_copy_held(const struct ksvc *k, uint32_t table, uint32_t frag, uint64_t txn)
{
    const struct sk_copy *c = copy_find(k, table, frag);
    size_t n = 0;
    for (const struct sk_crec *r = c ? c->head : NULL; r; r = r->next)
        n += r->txn == txn;
    return n;
}

bool ksvc_copy_has_mark(const struct ksvc *k, uint32_t table, uint32_t frag, uint64_t txn)
{
    const struct sk_copy *c = copy_find(k, table, frag);
    for (uint32_t i = 0; c && i < c->nmarks; i++)
        if (c->marks[i].txn == txn)
            return true;
    return false;
}

int ksvc_copy_check(const struct ksvc *k, uint32_t table, uint32_t frag)
{
    const struct sk_copy *c = copy_find(k, table, frag);
    if (!c)
        return nines_err(NINES_ENOTFOUND, "node %u holds no log copy of table %u fragment %u",
                         k->self, table, frag);
    uint64_t prev = 0;
    size_t n = 0, bytes = 0;
    for (const struct sk_crec *r = c->head; r; r = r->next) {
        struct kern_logrec lr;
        int rc = kern_logrec_decode(r->bytes, r->len, &lr); /* CRC, version, shape */
        if (rc < 0)
            return nines_err(NINES_ECORRUPT, "log copy of table %u fragment %u: held record LSN "
                             "%llu does not decode: %s", table, frag,
                             (unsigned long long)r->lsn, nines_errdetail());
        if ((uint32_t)rc != r->len || lr.lsn != r->lsn || lr.txn != r->txn ||
            lr.table != table || lr.frag != frag)
            return nines_err(NINES_ECORRUPT, "log copy of table %u fragment %u: held record LSN "
                             "%llu decodes as LSN %llu of txn %llu, table %u fragment %u, %d of "
                             "%u bytes", table, frag, (unsigned long long)r->lsn,
                             (unsigned long long)lr.lsn, (unsigned long long)lr.txn, lr.table,
                             lr.frag, rc, r->len);
        if (lr.lsn <= prev || lr.lsn < c->start_lsn || lr.lsn >= c->next_lsn)
            return nines_err(NINES_ECORRUPT, "log copy of table %u fragment %u: LSN %llu after "
                             "%llu, outside %llu..%llu", table, frag, (unsigned long long)lr.lsn,
                             (unsigned long long)prev, (unsigned long long)c->start_lsn,
                             (unsigned long long)(c->next_lsn - 1));
        prev = lr.lsn;
        n++;
        bytes += sizeof *r + r->len;
    }
    for (uint32_t i = 0; i < c->nmarks; i++)
        if (c->marks[i].seq <= c->start_seq || c->marks[i].seq > c->mark_seq ||
            (i && c->marks[i].seq <= c->marks[i - 1].seq))
            return nines_err(NINES_ECORRUPT, "log copy of table %u fragment %u: end mark %u has "
                             "seq %llu (stint after %llu, processed up to %llu)", table, frag, i,
                             (unsigned long long)c->marks[i].seq,
                             (unsigned long long)c->start_seq, (unsigned long long)c->mark_seq);
    bytes += c->nmarks * sizeof(struct sk_cmark);
    if (n != c->nrecs || bytes != c->bytes)
        return nines_err(NINES_ECORRUPT, "log copy of table %u fragment %u counts %zu records "
                         "and %zu bytes, holds %zu and %zu", table, frag, c->nrecs, c->bytes, n,
                         bytes);
    return 0;
}

void ksvc_copy_set_budget(struct ksvc *k, size_t bytes)
{
    struct sk_copies *cs = copies_get(k);
    if (cs)
        cs->budget = bytes ? bytes : KSVC_COPY_BUDGET;
}

void ksvc_copy_stats(const struct ksvc *k, struct ksvc_copy_stats *out)
{
    if (k->copies)
        *out = k->copies->st;
    else
        memset(out, 0, sizeof *out);
}
