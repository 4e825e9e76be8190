/* Kernel service: rebuild of a replica from its fragment's primary (a
 * fuzzy copy plus the live log stream; ClustRa section 4: "new replicas
 * ... are produced fuzzily, and they are then caught up"). README
 * "Rebuild". Two sides, both on the executor:
 *
 *   the rebuilding node T (a member of the node set that is not current:
 *   restarted, or back after being cut off) is, by the roles
 *   (dict_frag_roles_live), the log copy of each fragment placed on it
 *   whose other replica serves. It holds that stream (ksvc_copy.c) while it
 *   pulls a fuzzy copy from the primary a chunk at a time (KERN_COPY_REQ /
 *   CONF), loads each chunk as it arrives (kern_ckpt_loader_feed), applies
 *   the held stream past the copy's log end, and from then on redoes the
 *   stream as a hot standby does. When every such replica is in the stream it tells its
 *   supervisor (KSVC_MSG_REBUILT), whose node-set protocol makes it current
 *   (standby-only until takeback);
 *
 *   the primary P answers chunks of a fuzzy copy (kern_ckpt writer, a
 *   bounded number of records per request) and pins its log at the copy's
 *   redo start until T released the copy, so that every record T may
 *   still need can be sent again.
 *
 * Self-repair (README "Self-repair"): a current node T builds the replicas
 * the dictionary places on it as building (dict/README.md "Building
 * replicas") the same way — the roles make it their log copy — and once
 * one is in the stream asks the dictionary service to mark it built
 * (DICT_CHANGE_REQ MARK_BUILT, local); at that install the roles make it
 * the hot standby and the rebuild state is freed. */
#include "ksvc_int.h"

#include "kernel/kern_btree.h"
#include "kernel/kern_ckpt.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- state ---- */

/* P side: one copy being served per fragment replica. */
struct sk_cpjob {
    struct sk_cpjob *next;
    uint32_t table, frag, to;
    uint64_t copy_id;
    struct kern_frag *f;        /* the replica scanned (must outlive ck) */
    struct kern_ckpt *ck;
    uint8_t *buf;               /* copy bytes [off0, off0 + len) produced, not yet passed */
    size_t len, cap;
    uint64_t off0;
    bool done;                  /* the writer produced the trailer */
    uint64_t rows_total, rows_done;
    uint64_t last_us;           /* last request */
};

/* T side, per replica being rebuilt (sk_rep.rb). */
enum sk_rb_state {
    SK_RB_COPYING = 1,          /* holds the live stream (log copy); pulls the fuzzy copy */
    SK_RB_STREAM,               /* copy loaded, the held stream applied; redoes the stream */
};

struct sk_rb {
    enum sk_rb_state st;
    uint32_t source;            /* the primary it copies from */
    uint64_t copy_id;
    struct kern_ckpt_loader *ld; /* COPYING: the copy, validated and loaded as it arrives */
    uint64_t len;               /* the copy's bytes received (this attempt's) */
    uint64_t asked_us, began_us;
    uint64_t rows_done, rows_total;
    uint64_t max_gci;           /* the highest commit epoch the copy's chunks named */
    uint64_t release_at;        /* STREAM: release the copy once the log reaches past
                                 * this LSN (0: released) */
    /* STREAM, the dictionary places it as a building replica (self-repair):
     * the last DICT_CHANGE_REQ(MARK_BUILT) sent, and how many */
    uint64_t built_asked_us;
    uint32_t built_asks;
};

struct sk_rbs {
    struct sk_cpjob *jobs;
    uint32_t njobs;
    bool armed;                 /* SK_TIMER_REBUILD */
    uint64_t reported_epoch;    /* KSVC_MSG_REBUILT sent for this node-set epoch */
    uint64_t next_id;
    size_t chunk;               /* copy bytes per answer (KSVC_RB_CHUNK; tests: smaller) */
    struct ksvc_rebuild_stats st;
};

static struct sk_rbs *rbs_get(struct ksvc *k)
{
    if (!k->rbs) {
        k->rbs = calloc(1, sizeof *k->rbs);
        if (!k->rbs)
            NLOG_ERROR("kern", "no memory for the rebuild state of node %u", k->self);
    }
    return k->rbs;
}

void ksvc_rb_set_chunk(struct ksvc *k, size_t bytes)
{
    struct sk_rbs *s = rbs_get(k);
    if (s)
        s->chunk = bytes;
}

static size_t chunk_of(const struct ksvc *k)
{
    return k->rbs->chunk ? k->rbs->chunk : KSVC_RB_CHUNK;
}

static void arm(struct ksvc *k)
{
    struct sk_rbs *s = k->rbs;
    if (!s || s->armed)
        return;
    if (rt_timer_add(k->rt, RT_SVC_KERN, KSVC_RB_TICK_MS * 1000u, SK_TIMER_REBUILD) > 0)
        s->armed = true;
}

const char *ksvc_ha_name(enum ksvc_ha h)
{
    switch (h) {
    case KSVC_HA_ACTIVE:
        return "ACTIVE";
    case KSVC_HA_ALONE:
        return "ALONE";
    case KSVC_HA_COPYING:
        return "COPYING";
    case KSVC_HA_CATCHING_UP:
        return "CATCHING-UP";
    case KSVC_HA_OFFLINE:
        return "OFFLINE";
    default:
        return "?";
    }
}

/* ---- P side: serving a copy ---- */

static void job_free(struct ksvc *k, struct sk_cpjob *j, const char *why)
{
    struct sk_rbs *s = k->rbs;
    for (struct sk_cpjob **pp = &s->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    s->njobs--;
    if (j->f)
        kern_frag_log_pin(j->f, 0);
    NLOG_INFO("kern", "node %u: copy %llx of table %u fragment %u for node %u ends (%s; "
              "%llu bytes passed, %llu of %llu records scanned)", k->self,
              (unsigned long long)j->copy_id, j->table, j->frag, j->to, why,
              (unsigned long long)j->off0, (unsigned long long)j->rows_done,
              (unsigned long long)j->rows_total);
    kern_ckpt_free(j->ck);
    free(j->buf);
    free(j);
}

static struct sk_cpjob *job_find(const struct ksvc *k, uint32_t table, uint32_t frag)
{
    for (struct sk_cpjob *j = k->rbs ? k->rbs->jobs : NULL; j; j = j->next)
        if (j->table == table && j->frag == frag)
            return j;
    return NULL;
}

static void copy_ref(struct ksvc *k, net_addr to, const Nines__KernCopyReq *q, int err,
                     const char *detail)
{
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__KERN_COPY_REF);
    Nines__KernCopyRef *r = m ? RT_BODY(m, Nines__KernCopyRef, nines__kern_copy_ref__init) : NULL;
    if (!r) {
        if (m)
            rt_msg_free(k->rt, m);
        return; /* the asker re-asks */
    }
    r->table = q->table;
    r->frag = q->frag;
    r->copy_id = q->copy_id;
    r->error = err;
    char *d = rt_msg_alloc(m, strlen(detail) + 1);
    if (d) {
        memcpy(d, detail, strlen(detail) + 1);
        r->detail = d;
    }
    k->rbs->st.copy_refused++;
    (void)rt_send(k->rt, to, RT_SVC_KERN, m);
}

/* Produce copy bytes until a chunk is ready or the writer finished. */
static int job_produce(struct sk_cpjob *j, size_t chunk)
{
    while (!j->done && j->len < chunk) {
        int more = kern_ckpt_step(j->ck, 512);
        if (more < 0)
            return more;
        uint8_t *b = NULL;
        size_t n = 0;
        int rc = kern_ckpt_take(j->ck, &b, &n);
        if (rc < 0)
            return rc;
        if (n) {
            if (j->len + n > j->cap) {
                size_t cap = j->cap ? j->cap : 2 * KSVC_RB_CHUNK;
                while (cap < j->len + n)
                    cap *= 2;
                uint8_t *nb = realloc(j->buf, cap);
                if (!nb) {
                    free(b);
                    return nines_err(NINES_ENOMEM, "copy buffer of %zu bytes", cap);
                }
                j->buf = nb;
                j->cap = cap;
            }
            memcpy(j->buf + j->len, b, n);
            j->len += n;
        }
        free(b);
        if (!more)
            j->done = true;
    }
    struct kern_ckpt_info info;
    kern_ckpt_get_info(j->ck, &info);
    j->rows_done = info.records ? info.records : j->rows_done;
    return 0;
}

void ksvc_on_copy_req(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    (void)rt;
    const Nines__KernCopyReq *q = (const Nines__KernCopyReq *)m->body;
    struct sk_rbs *s = rbs_get(k);
    char d[320];
    if (!s || !q)
        return;
    uint32_t from = (uint32_t)m->from;
    struct sk_cpjob *j = job_find(k, q->table, q->frag);
    if (q->release) {
        if (j && j->copy_id == q->copy_id && j->to == from)
            job_free(k, j, "released by the rebuilt node");
        return;
    }
    struct sk_rep *r = sk_rep_get(k, q->table, q->frag);
    if (!r || r->oos[0] || kern_frag_role(r->f) != KERN_FRAG_PRIMARY ||
        r->ro.state != DICT_FRAG_ALONE || r->ro.logcopy != from) {
        snprintf(d, sizeof d, "node %u cannot copy table %u fragment %u to node %u: %s", k->self,
                 q->table, q->frag, from,
                 !r ? "it holds no replica of it"
                 : r->oos[0] ? "its replica is out of service"
                 : kern_frag_role(r->f) != KERN_FRAG_PRIMARY
                     ? "its replica is not the primary"
                     : "the asker is not the fragment's replica being rebuilt in this node set");
        copy_ref(k, m->from, q, NINES_ENOTPRIMARY, d);
        return;
    }
    if (q->offset == 0 && (!j || j->copy_id != q->copy_id)) {
        if (j)
            job_free(k, j, "a new copy was asked for");
        j = calloc(1, sizeof *j);
        int rc = j ? kern_ckpt_begin(r->f, &j->ck) : nines_err(NINES_ENOMEM, "copy job");
        if (rc < 0) {
            snprintf(d, sizeof d, "node %u cannot begin a copy of table %s fragment %u: %s",
                     k->self, r->tname, r->frag, nines_errdetail());
            free(j);
            copy_ref(k, m->from, q, rc, d);
            return;
        }
        j->table = q->table;
        j->frag = q->frag;
        j->to = from;
        j->copy_id = q->copy_id;
        j->f = r->f;
        j->rows_total = kern_bt_count(kern_frag_tree(r->f));
        struct kern_ckpt_info info;
        kern_ckpt_get_info(j->ck, &info);
        kern_frag_log_pin(r->f, info.redo_start_lsn ? info.redo_start_lsn : 1);
        j->next = s->jobs;
        s->jobs = j;
        s->njobs++;
        s->st.copies_served++;
        NLOG_INFO("kern", "node %u: copy %llx of table %s fragment %u (%llu records) to node %u "
                  "begins; its log is pinned from LSN %llu", k->self,
                  (unsigned long long)j->copy_id, r->tname, r->frag,
                  (unsigned long long)j->rows_total, from,
                  (unsigned long long)info.redo_start_lsn);
        arm(k);
    }
    if (!j || j->copy_id != q->copy_id || j->to != from || q->offset < j->off0 ||
        q->offset > j->off0 + j->len) {
        snprintf(d, sizeof d, "node %u holds no copy %llx of table %u fragment %u at offset %llu "
                 "(%s): start over", k->self, (unsigned long long)q->copy_id, q->table, q->frag,
                 (unsigned long long)q->offset,
                 !j ? "none in progress"
                 : j->copy_id != q->copy_id ? "another copy is in progress"
                                            : "offset outside what it holds");
        copy_ref(k, m->from, q, NINES_ESTATE, d);
        return;
    }
    j->last_us = rt_now_us(k->rt);
    /* what the asker has is passed: drop it */
    size_t drop = (size_t)(q->offset - j->off0);
    if (drop) {
        memmove(j->buf, j->buf + drop, j->len - drop);
        j->len -= drop;
        j->off0 = q->offset;
    }
    size_t chunk = chunk_of(k);
    int rc = job_produce(j, chunk);
    if (rc < 0) {
        snprintf(d, sizeof d, "node %u: copy of table %s fragment %u failed: %s", k->self,
                 r->tname, r->frag, nines_errdetail());
        copy_ref(k, m->from, q, rc, d);
        job_free(k, j, "the copy failed");
        return;
    }
    size_t n = j->len < chunk ? j->len : chunk;
    struct rt_msg *out = rt_msg_new(k->rt, NINES__MSG_TYPE__KERN_COPY_CONF);
    Nines__KernCopyConf *c =
        out ? RT_BODY(out, Nines__KernCopyConf, nines__kern_copy_conf__init) : NULL;
    if (!c) {
        if (out)
            rt_msg_free(k->rt, out);
        return; /* the asker re-asks */
    }
    struct kern_ckpt_info info;
    kern_ckpt_get_info(j->ck, &info);
    c->table = q->table;
    c->frag = q->frag;
    c->copy_id = q->copy_id;
    c->offset = q->offset;
    c->data.data = j->buf; /* packed by rt_send at once */
    c->data.len = n;
    c->last = j->done && n == j->len;
    c->redo_start = info.redo_start_lsn;
    c->rows_done = j->rows_done;
    c->rows_total = j->rows_total;
    c->max_gci = kern_frag_max_gci(r->f);
    if (rt_send(k->rt, m->from, RT_SVC_KERN, out) == 0) {
        s->st.copy_chunks_sent++;
        s->st.copy_bytes_sent += n;
    }
}

/* r's replica leaves this node (dropped, or taken out of service): a copy
 * being served from it ends (the writer points into it). */
void sk_rb_rep_gone(struct ksvc *k, const struct sk_rep *r)
{
    if (!k->rbs)
        return;
    for (struct sk_cpjob *j = k->rbs->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->f == r->f)
            job_free(k, j, "its replica left this node");
    }
}

/* ---- T side: rebuilding ---- */

static void rb_free(struct sk_rb *rb)
{
    if (!rb)
        return;
    kern_ckpt_loader_free(rb->ld);
    free(rb);
}

void sk_rb_free(struct sk_rep *r)
{
    rb_free(r->rb);
    r->rb = NULL;
}

bool sk_rb_holding(const struct sk_rep *r) { return r->rb && r->rb->st == SK_RB_COPYING; }

static void rb_send(struct ksvc *k, struct sk_rep *r, uint64_t offset, bool release)
{
    struct sk_rb *rb = r->rb;
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__KERN_COPY_REQ);
    Nines__KernCopyReq *q = m ? RT_BODY(m, Nines__KernCopyReq, nines__kern_copy_req__init) : NULL;
    if (!q) {
        if (m)
            rt_msg_free(k->rt, m);
        return; /* the timer asks again */
    }
    q->table = r->table;
    q->frag = r->frag;
    q->copy_id = rb->copy_id;
    q->offset = offset;
    q->release = release;
    if (!release)
        rb->asked_us = rt_now_us(k->rt);
    (void)rt_send(k->rt, rb->source, RT_SVC_KERN, m); /* a failure: the timer asks again */
}

/* Start (or start over) the copy of r from its primary. */
static void rb_begin(struct ksvc *k, struct sk_rep *r)
{
    struct sk_rbs *s = k->rbs;
    struct sk_rb *rb = r->rb;
    rb->st = SK_RB_COPYING;
    rb->source = r->ro.primary;
    rb->copy_id = ((uint64_t)k->self << 48) | (++s->next_id & 0xffffffffffffull);
    rb->len = 0;
    kern_ckpt_loader_free(rb->ld);
    rb->ld = NULL;
    if (kern_ckpt_loader_begin(r->f, &rb->ld) < 0) {
        NLOG_ERROR("kern", "node %u cannot load a copy of table %s fragment %u: %s; tried again "
                   "in %u ms", k->self, r->tname, r->frag, nines_errdetail(), KSVC_RB_RETRY_MS);
        rb->copy_id = 0; /* rb_tick starts over */
        rb->asked_us = rt_now_us(k->rt);
        arm(k);
        return;
    }
    rb->began_us = rt_now_us(k->rt);
    rb->rows_done = rb->rows_total = 0;
    rb->release_at = 0;
    rb->built_asked_us = 0;
    rb->built_asks = 0;
    NLOG_INFO("kern", "node %u rebuilds its replica of table %s fragment %u from primary node %u "
              "(copy %llx, node set %llu)", k->self, r->tname, r->frag, rb->source,
              (unsigned long long)rb->copy_id, (unsigned long long)r->ro_epoch);
    rb_send(k, r, 0, false);
    arm(k);
}

/* A new replica of (t, frag) to rebuild from its primary. */
static void rb_create(struct ksvc *k, const struct dict_table *t, uint32_t frag,
                      const struct dict_roles *ro, uint64_t epoch)
{
    struct sk_rep *r = NULL;
    int rc = sk_rep_new(t, frag, KERN_FRAG_HOT_STANDBY, &r);
    if (rc == 0)
        rc = kern_lock_set_role(k->locks, t->id, frag, KERN_LOCK_STANDBY);
    struct sk_rb *rb = rc == 0 ? calloc(1, sizeof *rb) : NULL;
    if (!rb) {
        NLOG_ERROR("kern", "cannot create the replica of table %s fragment %u to rebuild: %s",
                   t->def.name, frag, rc ? nines_errdetail() : "no memory");
        sk_rep_free(r);
        return;
    }
    r->rb = rb;
    r->ro = *ro;
    r->ro_epoch = epoch;
    r->seen = true;
    r->lost = true; /* refuses operations until rebuilt */
    sk_dlog_base(k, t->id, frag, 1); /* its base comes from a copy, not this disk log */
    sk_dlog_attach(k, r); /* the records it redoes from the load on feed the disk log */
    sk_map_put(&k->reps, &r->node);
    k->rbs->st.rebuilds_started++;
    rb_begin(k, r);
}

/* This node's replica of (t, f) is placed as a building standby
 * (self-repair, dict/README.md "Building replicas"). */
static bool placed_building(const struct ksvc *k, const struct dict_table *t, uint32_t f)
{
    return t->frags[f].standby == k->self && t->frags[f].standby_state == DICT_REP_BUILDING;
}

/* r is in the stream and its copy released: if the dictionary places it
 * as a building replica, ask the dictionary service (a local
 * DICT_CHANGE_REQ(MARK_BUILT), a dictionary transaction at every node) to
 * mark it built, again every KSVC_RB_BUILT_RETRY_MS while the dictionary
 * still says building (idempotent: a second mark is refused, changing
 * nothing). Not while marking it built would move the fragment's primary
 * (its serving replica is standby-only: that is takeback's to do): then
 * it stays in the stream, the fragment PRIMARY ALONE with this node its
 * log copy, until the roles allow it. README "Self-repair". */
static void rb_ask_built(struct ksvc *k, struct sk_rep *r, const struct dict *d)
{
    struct sk_rb *rb = r->rb;
    if (!rb || rb->st != SK_RB_STREAM || rb->release_at || !rt_nodeset(k->rt)->member)
        return;
    const struct dict_table *t = d ? dict_table_by_id(d, r->table) : NULL;
    if (!t || r->frag >= t->nfrags || !placed_building(k, t, r->frag))
        return;
    uint64_t now = rt_now_us(k->rt);
    if (rb->built_asks && now - rb->built_asked_us < (uint64_t)KSVC_RB_BUILT_RETRY_MS * 1000u)
        return;
    struct dict_live live = sk_live(k);
    struct dict_roles cur, after;
    if (dict_frag_roles_live(d, t, r->frag, &live, &cur) ||
        dict_frag_roles_built(d, t, r->frag, k->self, &live, &after))
        return;
    if (after.primary != cur.primary) {
        if (!rb->built_asks || now - rb->built_asked_us >= 10u * KSVC_RB_BUILT_RETRY_MS * 1000u) {
            NLOG_INFO("kern", "node %u: its replica of table %s fragment %u is built, but marking "
                      "it so would make node %u the primary instead of node %u (node set %llu): "
                      "it stays in the stream until takeback", k->self, r->tname, r->frag,
                      after.primary, cur.primary, (unsigned long long)rt_nodeset(k->rt)->epoch);
            rb->built_asked_us = now;
            rb->built_asks++;
        }
        return;
    }
    struct rt_msg *m = rt_msg_new(k->rt, NINES__MSG_TYPE__DICT_CHANGE_REQ);
    Nines__DictChangeReq *q =
        m ? RT_BODY(m, Nines__DictChangeReq, nines__dict_change_req__init) : NULL;
    Nines__DictChange *c = q ? rt_msg_alloc(m, sizeof *c) : NULL;
    if (!c) {
        if (m)
            rt_msg_free(k->rt, m);
        return; /* asked at the next tick */
    }
    nines__dict_change__init(c);
    c->op = NINES__DICT_OP__DICT_OP_MARK_BUILT;
    c->node = k->self;
    c->table_id = r->table;
    c->frag = r->frag;
    q->change = c;
    q->ref = ((uint64_t)r->table << 32) | r->frag;
    q->reply_svc = 0; /* the install says it: sk_rb_reconcile_rep */
    rb->built_asked_us = now;
    rb->built_asks++;
    if (rt_send(k->rt, 0, RT_SVC_DICT, m) == 0) {
        k->rbs->st.built_asked++;
        NLOG_INFO("kern", "node %u: its replica of table %s fragment %u is built (copied and in "
                  "the stream of node %u, %llu ms): asking the dictionary to mark it so%s",
                  k->self, r->tname, r->frag, rb->source,
                  (unsigned long long)((now - rb->began_us) / 1000u),
                  rb->built_asks > 1 ? " (again)" : "");
    }
    arm(k); /* asked again until the dictionary says so */
}

/* Every replica placed here that can be rebuilt is in the stream: tell the
 * supervisor (once per node-set epoch). */
static void rb_maybe_report(struct ksvc *k, const struct dict *d)
{
    const struct rt_nodeset *ns = rt_nodeset(k->rt);
    struct sk_rbs *s = k->rbs;
    if (!s || !ns->member || (ns->current & RT_NODE_BIT(k->self)) ||
        s->reported_epoch == ns->epoch)
        return;
    struct dict_live live = sk_live(k);
    uint32_t streaming = 0;
    for (uint32_t ti = 0; ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++) {
            if (t->frags[f].primary != k->self && t->frags[f].standby != k->self)
                continue;
            struct dict_roles ro;
            if (dict_frag_roles_live(d, t, f, &live, &ro) || ro.state != DICT_FRAG_ALONE ||
                ro.logcopy != k->self)
                continue; /* nothing to rebuild it from (DOWN, one replica configured) */
            const struct sk_rep *r = sk_rep_get(k, t->id, f);
            if (!r || !r->rb || r->rb->st != SK_RB_STREAM)
                return;
            streaming++;
        }
    }
    struct rt_msg *m = rt_msg_new(k->rt, KSVC_MSG_REBUILT);
    if (!m)
        return; /* asked again at the next event */
    m->cookie = ns->epoch;
    if (rt_send(k->rt, 0, RT_SVC_SUP, m) == 0) {
        s->reported_epoch = ns->epoch;
        s->st.reports++;
        NLOG_INFO("kern", "node %u: every replica placed here is rebuilt (%u in its primary's "
                  "stream) in node set %llu: asking to be current", k->self, streaming,
                  (unsigned long long)ns->epoch);
    }
}

bool sk_rb_reconcile_rep(struct ksvc *k, struct sk_rep *r, const struct dict_roles *ro,
                         uint64_t epoch)
{
    if (!r->rb)
        return false;
    struct sk_rb *rb = r->rb;
    const struct rt_nodeset *ns = rt_nodeset(k->rt);
    bool cur = (ns->current & RT_NODE_BIT(k->self)) != 0;
    r->ro = *ro;
    r->ro_epoch = epoch;
    r->seen = true;
    /* still the fragment's log copy: the rebuild goes on (a member not
     * current rebuilding its node's replicas, or any member building a
     * replica self-repair placed here) */
    if (ro->state == DICT_FRAG_ALONE && ro->logcopy == k->self) {
        if (ro->primary != rb->source) {
            NLOG_WARN("kern", "table %s fragment %u: its primary is node %u now (was %u): the "
                      "rebuild starts over", r->tname, r->frag, ro->primary, rb->source);
            return false; /* dropped and made again by sk_rb_reconcile */
        }
        return true;
    }
    /* the roles now say BOTH with this node the hot standby: it is current
     * and the replica counts (a rebuilt node made current, or a building
     * replica marked built) */
    if (cur && ro->state == DICT_FRAG_BOTH && ro->standby == k->self) {
        if (rb->st == SK_RB_STREAM) {
            NLOG_INFO("kern", "node %u: its rebuilt replica of table %s fragment %u is a hot "
                      "standby%s (node set %llu; copied and caught up in %llu ms, %llu copy "
                      "bytes)", k->self, r->tname, r->frag,
                      rb->built_asks ? " now, marked built" : " again",
                      (unsigned long long)epoch,
                      (unsigned long long)((rt_now_us(k->rt) - rb->began_us) / 1000u),
                      (unsigned long long)rb->len);
            k->rbs->st.rebuilds_done++;
            if (rb->release_at)
                rb_send(k, r, 0, true);
            sk_rb_free(r);
            r->lost = false;
            return true;
        }
        sk_rb_free(r);
        sk_rep_out_of_service(k, r, "the node became current before this replica's rebuild "
                              "finished (node set %llu)", (unsigned long long)epoch);
        return true;
    }
    return false;
}

/* A member that is not current holds nothing current: every transaction
 * its kernel still keeps (open or prepared on replicas it had before it was
 * cut off) was resolved by the replicas that took over. Their locks would
 * keep its rebuilt replicas from becoming standbys (kern_lock_set_role
 * refuses a fragment with locks held): release them and forget the
 * transactions. A controller that still asks about one gets the answer for
 * an unknown transaction (README "Rebuild"). */
static void rb_forget_stale_txns(struct ksvc *k)
{
    uint32_t n = 0;
    SK_MAP_FOREACH(&k->txns, i, nd, nx)
    {
        struct sk_txn *t = (struct sk_txn *)nd;
        (void)kern_lock_release_all(k->locks, t->txn);
        sk_txn_forget(k, t);
        n++;
    }
    if (n) {
        k->rbs->st.stale_txns += n;
        NLOG_WARN("kern", "node %u is a member that is not current: its kernel forgets %u "
                  "transactions of the replicas it held before (the replicas that took over "
                  "resolved them) and releases their locks", k->self, n);
    }
}

void sk_rb_reconcile(struct ksvc *k, const struct dict *d)
{
    const struct rt_nodeset *ns = rt_nodeset(k->rt);
    if (!ns->epoch || !ns->member)
        return;
    bool cur = (ns->current & RT_NODE_BIT(k->self)) != 0;
    if (!cur && k->txns.n && rbs_get(k))
        rb_forget_stale_txns(k);
    bool any = !cur; /* a current node rebuilds only replicas placed here as building */
    for (uint32_t ti = 0; ti < d->ntables && !any; ti++)
        for (uint32_t f = 0; f < d->tables[ti]->nfrags && !any; f++)
            any = placed_building(k, d->tables[ti], f);
    if (!any || !rbs_get(k))
        return;
    struct dict_live live = sk_live(k);
    for (uint32_t ti = 0; ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++) {
            if (t->frags[f].primary != k->self && t->frags[f].standby != k->self)
                continue;
            /* rebuilt here: every replica placed on a member that is not
             * current, and a replica placed as building on any member —
             * when this node is the fragment's log copy (its other replica
             * serves) */
            if (cur && !placed_building(k, t, f))
                continue;
            struct dict_roles ro;
            if (dict_frag_roles_live(d, t, f, &live, &ro) || ro.state != DICT_FRAG_ALONE ||
                ro.logcopy != k->self)
                continue;
            struct sk_rep *r = sk_rep_get(k, t->id, f);
            if (r && r->rb && r->rb->source == ro.primary) {
                rb_ask_built(k, r, d); /* rebuilding (or rebuilt) from it */
                continue;
            }
            if (r) /* its old replica (out of service, lost) or a rebuild from another node */
                sk_rep_drop(k, r);
            rb_create(k, t, f, &ro, ns->epoch);
        }
    }
    rb_maybe_report(k, d);
}

/* The copy does not load (a corrupt or cut chunk: never loaded in part):
 * release it and start over. */
static void rb_load_failed(struct ksvc *k, struct sk_rep *r)
{
    struct sk_rb *rb = r->rb;
    k->rbs->st.load_failed++;
    NLOG_ERROR("kern", "node %u: the copy %llx of table %s fragment %u from node %u (%llu bytes "
               "so far) does not load: %s; starting over", k->self,
               (unsigned long long)rb->copy_id, r->tname, r->frag, rb->source,
               (unsigned long long)rb->len, nines_errdetail());
    rb_send(k, r, 0, true);
    rb_begin(k, r);
}

/* The copy's last chunk arrived: check its trailer and whole-file CRC, give
 * the loaded tree to the replica, and take over the held stream. */
static void rb_load(struct ksvc *k, struct sk_rep *r)
{
    struct sk_rb *rb = r->rb;
    struct kern_ckpt_info info;
    if (kern_ckpt_loader_end(rb->ld, &info) < 0) {
        rb_load_failed(k, r);
        return;
    }
    kern_ckpt_loader_free(rb->ld);
    rb->ld = NULL;
    kern_frag_note_gci(r->f, rb->max_gci); /* the copy's commits: a checkpoint's epoch */
    uint64_t held_to = 0;
    sk_copy_hand_over(k, r, rb->source, &held_to);
    rb->st = SK_RB_STREAM;
    uint64_t loaded_us = rt_now_us(k->rt);
    k->rbs->st.copy_records += info.records;
    uint64_t next = kern_log_next_lsn(kern_frag_log(r->f));
    NLOG_INFO("kern", "node %u: copy of table %s fragment %u loaded (%llu records, %llu bytes, "
              "redo from LSN %llu, log now up to %llu; the stream held up to %llu) in %llu ms",
              k->self, r->tname, r->frag, (unsigned long long)info.records,
              (unsigned long long)rb->len,
              (unsigned long long)info.redo_start_lsn, (unsigned long long)(next - 1),
              (unsigned long long)held_to,
              (unsigned long long)((loaded_us - rb->began_us) / 1000u));
    if (next > held_to) {
        rb_send(k, r, 0, true); /* everything acknowledged is in the replica */
        rb->release_at = 0;
    } else {
        /* the held stream did not continue the copy's log: what lies
         * between comes again from the primary (pinned there) */
        rb->release_at = held_to;
        upd_recv_applied(k->u, &(struct upd_applied){.table = r->table, .frag = r->frag,
                                                     .from = rb->source, .pinc = r->pinc,
                                                     .lsn = next - 1, .mark_seq = r->mark_seq,
                                                     .resend = true});
    }
    rb_ask_built(k, r, k->dict(k->dict_ctx));
    rb_maybe_report(k, k->dict(k->dict_ctx));
}

static struct sk_rep *rb_rep_for(struct ksvc *k, uint32_t table, uint32_t frag, uint64_t id,
                                 uint32_t from)
{
    struct sk_rep *r = sk_rep_get(k, table, frag);
    if (!r || !r->rb || r->rb->st != SK_RB_COPYING || r->rb->copy_id != id ||
        r->rb->source != from)
        return NULL;
    return r;
}

void ksvc_on_copy_conf(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    (void)rt;
    const Nines__KernCopyConf *c = (const Nines__KernCopyConf *)m->body;
    struct sk_rep *r = c && k->rbs ? rb_rep_for(k, c->table, c->frag, c->copy_id,
                                                (uint32_t)m->from)
                                   : NULL;
    if (!r || !r->rb->ld || c->offset != r->rb->len)
        return; /* stale (a re-asked chunk answered twice) */
    struct sk_rb *rb = r->rb;
    if (kern_ckpt_loader_feed(rb->ld, c->data.data, c->data.len) < 0) {
        rb_load_failed(k, r);
        return;
    }
    rb->len += c->data.len;
    if (c->max_gci > rb->max_gci)
        rb->max_gci = c->max_gci;
    rb->rows_done = c->rows_done;
    rb->rows_total = c->rows_total;
    k->rbs->st.copy_bytes_recv += c->data.len;
    if (c->last)
        rb_load(k, r);
    else
        rb_send(k, r, rb->len, false);
}

void ksvc_on_copy_ref(struct rt *rt, void *st, struct rt_msg *m)
{
    struct ksvc *k = st;
    (void)rt;
    const Nines__KernCopyRef *f = (const Nines__KernCopyRef *)m->body;
    struct sk_rep *r = f && k->rbs ? rb_rep_for(k, f->table, f->frag, f->copy_id,
                                                (uint32_t)m->from)
                                   : NULL;
    if (!r)
        return;
    NLOG_WARN("kern", "node %u: node %u refused the copy of table %s fragment %u: %s (%d); "
              "starting over in %u ms", k->self, (uint32_t)m->from, r->tname, r->frag,
              f->detail ? f->detail : "", f->error, KSVC_RB_RETRY_MS);
    k->rbs->st.copy_restarts++;
    r->rb->len = 0;
    r->rb->asked_us = rt_now_us(k->rt); /* rb_tick starts over after KSVC_RB_RETRY_MS */
    r->rb->copy_id = 0;
}

/* SK_TIMER_REBUILD */
void sk_rb_tick(struct ksvc *k)
{
    struct sk_rbs *s = k->rbs;
    if (!s)
        return;
    s->armed = false;
    uint64_t now = rt_now_us(k->rt);
    bool busy = false;
    for (struct sk_cpjob *j = s->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (now - j->last_us > (uint64_t)KSVC_RB_IDLE_MS * 1000u)
            job_free(k, j, "nobody asked for it lately");
        else
            busy = true;
    }
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    {
        struct sk_rep *r = (struct sk_rep *)nd;
        struct sk_rb *rb = r->rb;
        if (!rb)
            continue;
        switch (rb->st) {
        case SK_RB_COPYING:
            busy = true;
            if (now - rb->asked_us < (uint64_t)KSVC_RB_RETRY_MS * 1000u)
                break;
            if (!rb->copy_id) {
                rb_begin(k, r); /* refused: start over */
                break;
            }
            s->st.copy_reasks++;
            rb_send(k, r, rb->len, false);
            break;
        case SK_RB_STREAM:
            if (rb->release_at) {
                busy = true;
                if (kern_log_next_lsn(kern_frag_log(r->f)) > rb->release_at) {
                    rb_send(k, r, 0, true);
                    rb->release_at = 0;
                }
            }
            if (!rb->release_at) {
                /* a building replica asks to be marked built, again until
                 * the dictionary says so (rb_ask_built paces the asks) */
                const struct dict *d = k->dict(k->dict_ctx);
                const struct dict_table *t = d ? dict_table_by_id(d, r->table) : NULL;
                if (t && r->frag < t->nfrags && placed_building(k, t, r->frag)) {
                    busy = true;
                    rb_ask_built(k, r, d);
                }
            }
            break;
        default:
            NLOG_ERROR("kern", "rebuild of table %s fragment %u in unknown state %d", r->tname,
                       r->frag, (int)rb->st);
            break;
        }
    }
    if (busy)
        arm(k);
}

/* ---- introspection ---- */

enum ksvc_ha sk_rep_ha(const struct ksvc *k, const struct sk_rep *r)
{
    (void)k;
    if (r->rb)
        return r->rb->st == SK_RB_COPYING ? KSVC_HA_COPYING : KSVC_HA_CATCHING_UP;
    if (r->oos[0] || r->lost)
        return KSVC_HA_OFFLINE;
    if (kern_frag_role(r->f) == KERN_FRAG_PRIMARY && r->ro.state != DICT_FRAG_BOTH)
        return KSVC_HA_ALONE;
    return KSVC_HA_ACTIVE;
}

int ksvc_rep_info(const struct ksvc *k, uint32_t table, uint32_t frag,
                  struct ksvc_rep_info *out)
{
    const struct sk_rep *r = sk_rep_get(k, table, frag);
    if (!r)
        return nines_err(NINES_ENOTFOUND, "node %u holds no replica of table %u fragment %u",
                         k->self, table, frag);
    memset(out, 0, sizeof *out);
    out->ha = sk_rep_ha(k, r);
    out->role = kern_frag_role(r->f);
    out->next_lsn = kern_log_next_lsn(kern_frag_log(r->f));
    out->rows = kern_bt_count(kern_frag_tree(r->f));
    const struct dict *d = k->dict(k->dict_ctx);
    const struct dict_table *t = d ? dict_table_by_id(d, table) : NULL;
    out->building = t && frag < t->nfrags && placed_building(k, t, frag);
    const struct sk_rb *rb = r->rb;
    if (rb) {
        out->source = rb->source;
        out->copy_bytes = rb->len;
        out->copy_rows_done = rb->rows_done;
        out->copy_rows_total = rb->rows_total;
        uint64_t now = rt_now_us(k->rt);
        out->elapsed_ms = now > rb->began_us ? (now - rb->began_us) / 1000u : 0;
        if (rb->st == SK_RB_COPYING && rb->rows_done && rb->rows_total > rb->rows_done)
            out->eta_ms = out->elapsed_ms * (rb->rows_total - rb->rows_done) / rb->rows_done;
        else if (rb->st == SK_RB_COPYING && !rb->rows_done)
            out->eta_ms = out->elapsed_ms ? out->elapsed_ms : 1; /* no rate yet: at least */
    }
    return 0;
}

void ksvc_rebuild_stats(const struct ksvc *k, struct ksvc_rebuild_stats *out)
{
    if (k->rbs) {
        *out = k->rbs->st;
        out->copies_serving = k->rbs->njobs;
    } else {
        memset(out, 0, sizeof *out);
    }
}

void sk_rb_fini(struct ksvc *k)
{
    struct sk_rbs *s = k->rbs;
    if (!s)
        return;
    while (s->jobs) {
        struct sk_cpjob *j = s->jobs;
        s->jobs = j->next;
        kern_ckpt_free(j->ck);
        free(j->buf);
        free(j);
    }
    free(s);
    k->rbs = NULL;
}
