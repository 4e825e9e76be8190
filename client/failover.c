/* Failover with exactly-once outcomes (README "Failover"): requests whose
 * connection was lost are kept (LOST), the connection is re-established
 * with another node, one TXN_OUTCOME_REQ asks about them, and each is
 * completed from the cluster's answer — or a procedure call that never ran
 * is sent again under the same key, as a new attempt. */
#include "cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nines_net.pb-c.h"

#define CLI_ASK_MAX 1024u        /* keys in one outcome question */
#define CLI_DIAL_EVERY_MS 50u    /* failover: reconnect attempts at most this often */

static uint64_t retry_interval(const struct nines_conn *c)
{
    uint64_t ms = (uint64_t)c->timeout_ms / 4;
    return ms < 20 ? 20 : ms;
}

bool cli_fo_keep(struct nines_conn *c, uint32_t i, uint64_t gen, uint64_t now)
{
    struct cli_slot *s = &c->slots[i];
    if (s->st == CLI_SLOT_ASKING) { /* its question was on the lost connection */
        s->st = CLI_SLOT_LOST;
        if (c->ask.busy && c->ask.gen == gen)
            c->ask.busy = false;
        return true;
    }
    if (!c->failover || s->kind == CLI_REQ_PLAIN || s->st != CLI_SLOT_PENDING)
        return false;
    if (!cli_fo_busy(c))
        c->fst.failovers++; /* the first one of this loss */
    s->st = CLI_SLOT_LOST;
    if (!s->give_up_ms)
        s->give_up_ms = now + (uint64_t)c->failover_ms;
    return true;
}

bool cli_fo_busy(const struct nines_conn *c)
{
    for (uint32_t i = 0; i < c->nslots; i++) {
        enum cli_slot_state st = c->slots[i].st;
        if (st == CLI_SLOT_LOST || st == CLI_SLOT_ASKING || st == CLI_SLOT_WAITING)
            return true;
    }
    return false;
}

static void in_doubt(struct nines_conn *c, uint32_t i, const char *why)
{
    struct cli_slot *s = &c->slots[i];
    char msg[CLI_DETAIL_MAX];
    snprintf(msg, sizeof msg, "request key %llx:%llu: outcome unknown after failover (%u "
             "attempt%s): %s", (unsigned long long)c->client_id, (unsigned long long)s->key_seq,
             s->attempt, s->attempt == 1 ? "" : "s", why);
    snprintf(c->detail, sizeof c->detail, "%s", msg);
    c->fst.in_doubt++;
    cli_complete(c, i, NINES_EINDOUBT, NULL, msg);
}

/* A procedure call that did not run: the next attempt under its key. */
static void resend(struct nines_conn *c, uint32_t i, uint64_t now)
{
    struct cli_slot *s = &c->slots[i];
    Nines__TpcbCall tp = NINES__TPCB_CALL__INIT;
    Nines__TwoUpdCall tu = NINES__TWO_UPD_CALL__INIT;
    Nines__ReqKey key = NINES__REQ_KEY__INIT;
    Nines__TxnReq req = NINES__TXN_REQ__INIT;
    req.end = NINES__TXN_END__TXN_END_COMMIT;
    req.proc_case = (Nines__TxnReq__ProcCase)s->proc;
    if (s->proc == NINES__TXN_REQ__PROC_TPCB) {
        tp.aid = s->p[0], tp.tid = s->p[1], tp.bid = s->p[2], tp.delta = s->p[3];
        req.tpcb = &tp;
    } else {
        tu.key1 = s->p[0], tu.key2 = s->p[1], tu.delta = s->p[2];
        req.two_upd = &tu;
    }
    key.client = c->client_id;
    key.seq = s->key_seq;
    key.attempt = s->attempt + 1;
    req.key = &key;
    c->counter++;
    uint64_t req_id = c->counter << CLI_SLOT_BITS | i;
    if (cli_pack_req(c, &req, req_id)) {
        char why[CLI_DETAIL_MAX];
        snprintf(why, sizeof why, "not committed, and sending it again failed: %.400s",
                 c->detail);
        c->fst.aborted++;
        cli_complete(c, i, NINES_EABORTED, NULL, why);
        return;
    }
    c->fst.resent++;
    s->attempt++;
    s->st = CLI_SLOT_PENDING;
    s->req_id = req_id;
    s->gen = c->gen;
    s->deadline_ms = now + (uint64_t)c->timeout_ms;
    if (c->node_id >= 1 && c->node_id <= 64)
        s->sent_to |= (uint64_t)1 << (c->node_id - 1);
}

/* Ask about every LOST slot and every WAITING one that is due. */
static void ask(struct nines_conn *c, uint64_t now)
{
    if (c->ask.cap < CLI_ASK_MAX) {
        uint32_t *p = realloc(c->ask.slots, CLI_ASK_MAX * sizeof *p);
        if (!p)
            return; /* asked at a later turn */
        c->ask.slots = p;
        c->ask.cap = CLI_ASK_MAX;
    }
    c->ask.n = 0;
    for (uint32_t i = 0; i < c->nslots && c->ask.n < CLI_ASK_MAX; i++) {
        struct cli_slot *s = &c->slots[i];
        if (s->st == CLI_SLOT_LOST || (s->st == CLI_SLOT_WAITING && s->retry_ms <= now))
            c->ask.slots[c->ask.n++] = i;
    }
    if (!c->ask.n)
        return;
    arena_reset(&c->req);
    uint32_t n = c->ask.n;
    Nines__KeyQuery **pq = arena_alloc(&c->req, n * sizeof *pq);
    Nines__KeyQuery *qv = arena_alloc(&c->req, n * sizeof *qv);
    Nines__ReqKey *kv = arena_alloc(&c->req, n * sizeof *kv);
    if (!pq || !qv || !kv)
        return;
    for (uint32_t j = 0; j < n; j++) {
        const struct cli_slot *s = &c->slots[c->ask.slots[j]];
        nines__key_query__init(&qv[j]);
        nines__req_key__init(&kv[j]);
        kv[j].client = c->client_id;
        kv[j].seq = s->key_seq;
        kv[j].attempt = s->attempt;
        qv[j].key = &kv[j];
        qv[j].sent_to = s->sent_to;
        qv[j].age_ms = now - s->first_ms;
        pq[j] = &qv[j];
    }
    Nines__TxnOutcomeReq q = NINES__TXN_OUTCOME_REQ__INIT;
    q.req_id = ++c->ask_counter;
    q.n_keys = n;
    q.keys = pq;
    if (cli_queue(c, NINES__MSG_TYPE__TXN_OUTCOME_REQ, &q.base))
        return;
    c->fst.questions++;
    c->ask.busy = true;
    c->ask.gen = c->gen;
    c->ask.req_id = q.req_id;
    for (uint32_t j = 0; j < n; j++) {
        struct cli_slot *s = &c->slots[c->ask.slots[j]];
        s->st = CLI_SLOT_ASKING;
        s->gen = c->gen;
    }
}

void cli_fo_turn(struct nines_conn *c, uint64_t now)
{
    bool due = false;
    for (uint32_t i = 0; i < c->nslots; i++) {
        struct cli_slot *s = &c->slots[i];
        if (s->st != CLI_SLOT_LOST && s->st != CLI_SLOT_WAITING)
            continue;
        if (s->give_up_ms && now >= s->give_up_ms) {
            char why[96];
            snprintf(why, sizeof why, "not resolved within %d ms (%s)", c->failover_ms,
                     s->st == CLI_SLOT_WAITING ? "still in progress"
                                               : "no node answered the question");
            in_doubt(c, i, why);
            continue;
        }
        due |= s->st == CLI_SLOT_LOST || s->retry_ms <= now;
    }
    if (!due || c->in_dispatch)
        return;
    if (c->st != CLI_UP) {
        if (now < c->next_dial_ms)
            return;
        c->next_dial_ms = now + CLI_DIAL_EVERY_MS;
        if (cli_ensure_up(c))
            return;
    }
    if (!c->ask.busy)
        ask(c, now);
}

/* TXN_OUTCOME_CONF: one answer per key asked, in order. */
static int on_conf(struct nines_conn *c, const Nines__TxnOutcomeConf *b)
{
    if (!c->ask.busy || b->req_id != c->ask.req_id) {
        c->stale++;
        return 0;
    }
    if (b->n_answers != c->ask.n)
        return cli_fail(c, NINES_EPROTO, "TXN_OUTCOME_CONF with %zu answers for %u keys",
                        b->n_answers, c->ask.n);
    c->ask.busy = false;
    uint64_t now = cli_now_ms();
    for (uint32_t j = 0; j < c->ask.n; j++) {
        uint32_t i = c->ask.slots[j];
        struct cli_slot *s = &c->slots[i];
        const Nines__KeyAnswer *a = b->answers[j];
        if (s->st != CLI_SLOT_ASKING || !a)
            continue;
        char msg[CLI_DETAIL_MAX];
        const char *d = a->detail && a->detail[0] ? a->detail : "";
        switch (a->outcome) {
        case NINES__KEY_OUTCOME__KEY_COMMITTED: {
            Nines__TxnConf conf = NINES__TXN_CONF__INIT;
            conf.req_id = s->req_id;
            conf.txn = a->txn;
            conf.value = a->value;
            c->fst.committed++;
            cli_complete(c, i, 0, &conf, NULL);
            break;
        }
        case NINES__KEY_OUTCOME__KEY_ABORTED: {
            int err = a->error < 0 && a->error >= NINES_ERR_MIN_ ? a->error : NINES_EABORTED;
            /* aborted by the failure itself (its node, a timeout, a closed
             * connection): a procedure runs again; a refusal on its merits
             * (missing row, deadlock, ...) is reported */
            bool by_failure = err == NINES_ECLOSED || err == NINES_ETIMEDOUT ||
                              err == NINES_EABORTED || err == NINES_EUNREACHABLE ||
                              err == NINES_ENOTMEMBER;
            if (s->kind == CLI_REQ_PROC && by_failure) {
                resend(c, i, now);
                break;
            }
            snprintf(msg, sizeof msg, "aborted (found after failover): %s", d);
            snprintf(c->detail, sizeof c->detail, "%s", msg);
            c->fst.aborted++;
            cli_complete(c, i, err, NULL, msg);
            break;
        }
        case NINES__KEY_OUTCOME__KEY_NOT_COMMITTED:
            if (s->kind == CLI_REQ_PROC) {
                resend(c, i, now);
                break;
            }
            snprintf(msg, sizeof msg, "not committed: the connection was lost before it ran "
                     "(found after failover); the transaction is aborted");
            snprintf(c->detail, sizeof c->detail, "%s", msg);
            c->fst.aborted++;
            cli_complete(c, i, NINES_EABORTED, NULL, msg);
            break;
        case NINES__KEY_OUTCOME__KEY_IN_PROGRESS:
            s->st = CLI_SLOT_WAITING;
            s->retry_ms = now + retry_interval(c);
            break;
        case NINES__KEY_OUTCOME__KEY_UNKNOWN:
        default:
            in_doubt(c, i, d[0] ? d : "the cluster cannot tell");
            break;
        }
    }
    return 0;
}

int cli_fo_on_answer(struct nines_conn *c, uint32_t type, const uint8_t *body, size_t len)
{
    ProtobufCAllocator *al = arena_pb_allocator(&c->ans);
    if (type == NINES__MSG_TYPE__TXN_OUTCOME_CONF) {
        Nines__TxnOutcomeConf *b = nines__txn_outcome_conf__unpack(al, len, body);
        if (!b)
            return cli_fail(c, NINES_EPROTO, "TXN_OUTCOME_CONF of %zu bytes does not decode",
                            len);
        return on_conf(c, b);
    }
    Nines__TxnOutcomeRef *r = nines__txn_outcome_ref__unpack(al, len, body);
    if (!r)
        return cli_fail(c, NINES_EPROTO, "TXN_OUTCOME_REF of %zu bytes does not decode", len);
    if (!c->ask.busy || r->req_id != c->ask.req_id) {
        c->stale++;
        return 0;
    }
    c->ask.busy = false;
    uint64_t now = cli_now_ms();
    for (uint32_t j = 0; j < c->ask.n; j++) {
        struct cli_slot *s = &c->slots[c->ask.slots[j]];
        if (s->st != CLI_SLOT_ASKING)
            continue;
        s->st = CLI_SLOT_WAITING; /* asked again later (or through another node) */
        s->retry_ms = now + retry_interval(c);
    }
    if (r->error == NINES_ENOTMEMBER) /* this node does not serve: another one */
        return cli_fail(c, NINES_ENOTMEMBER, "outcome question refused: %s",
                        r->detail ? r->detail : "");
    snprintf(c->detail, sizeof c->detail, "outcome question refused (%s): %s; asked again",
             nines_strerror(r->error), r->detail ? r->detail : "");
    return 0;
}
