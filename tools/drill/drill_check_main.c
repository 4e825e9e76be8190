/* drill_check — after (or during) a failure drill, check what the cluster
 * must guarantee, from client journals and from the nodes themselves.
 *
 *   drill_check --config FILE [--journal F]... [--noack-journal F]...
 *               [--expect-out ID]... [--settle-ms MS] [--no-data] [--no-takeover]
 *               [--expect-two] [--expect-balanced] [--expect-spread]
 *               [--kill-us T [--lost-window-ms W] [--restart-us R]]
 *   drill_check --config FILE --watch SECONDS [--interval-ms MS]
 *   drill_check --self-test
 *
 * Checks (one PASS/FAIL line each, with counts; tools/drill/README.md
 * "The checker"):
 *   acknowledged present  every journal line A has its history row (aid, tid,
 *                         bid, delta; by hid = txn id when the journal has it);
 *                         after a whole-cluster kill at T (--kill-us, drill
 *                         kill-all) one may be missing if acknowledged at most
 *                         W ms before T (--lost-window-ms; 0: none may), and
 *                         "loss window measured: N commits, at most M ms
 *                         before the kill" is printed
 *   executed once         no tuple has more history rows than its A + U lines
 *   aborted absent        no R line has a history row
 *   balance invariant     sum account = sum teller = sum branch = sum history.delta
 *   balances per row      each account/teller/branch balance = the sum of its
 *                         history deltas (every balance starts at 0)
 *   replicas agree        the replicas of each fragment on current serving
 *                         nodes have equal rows and digests (KERN_DIGEST);
 *                         with --expect-two every fragment has two of them
 *   one primary           no fragment claimed primary by two serving nodes
 *   node set              serving nodes agree on one installed node set; the
 *                         --expect-out nodes are neither serving nor members
 *   takeover              every fragment's primary by (dictionary, node set)
 *                         is serving and its kernel says primary
 *   balanced              (--expect-balanced) no node is standby-only and every
 *                         fragment's primary is its dictionary primary, serving
 *                         and saying primary: the placement is the original
 *                         (after a restarted node took its primaries back)
 *   spread                (--expect-spread) the dictionary places no building
 *                         replica and, per site, the nodes' replica counts
 *                         (all tables, and each table) are within one of each
 *                         other (after a node came back and was reintegrated)
 *   minority served nothing  no A line in a --noack-journal
 * The cluster-state checks are retried for --settle-ms (default 5000; log
 * shipping and a node-set round may still be under way); the data checks
 * read through the client library from serving nodes only.
 *
 * --self-test runs the logic above on made-up journals, history rows,
 * balances and cluster states, without a cluster.
 *
 * --watch samples every node's roles every --interval-ms (default 100) and
 * fails if two serving nodes with the same epoch ever claimed primary for
 * one fragment at once (claims from different epochs are counted: the
 * epoch fences the older one).
 *
 * Exit: 0 every check passed, 1 a check failed, 2 usage or setup error. */
#include "bench/tpcb_schema.h"
#include "kernel/svc/ksvc.h" /* enum ksvc_ha: ReplicaDigest.ha */
#include "nines/nines.h"
#include "nines_txn.pb-c.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <unistd.h>

#define CHK_TIMEOUT_MS 1500
#define CHK_DIGEST_MS 30000 /* a node digests a large data set over many executor turns */
#define CHK_MAX_FILES 16
#define CHK_MAX_REPS 65536

/* ---- nodes: status and replica digests ---------------------------------- */

struct node_st {
    uint32_t id;
    bool up;                    /* answered STATUS_REQ */
    bool serving;
    bool has_ns;                /* reported an installed node set (epoch > 0) */
    uint64_t epoch, members, current, standby_only, suspicions;
    uint64_t since[NINES_MAX_NODES + 1];  /* standby-only nodes' epochs of becoming current */
    uint32_t coord;
    char ha[32], reason[160];
};

struct rep {
    uint32_t table, frag, node;
    bool primary;           /* claimed primary while serving, at epoch `epoch` */
    uint64_t rows, digest;
    uint64_t epoch;         /* the node's epoch at the claim (0: not said) */
    uint32_t ha;            /* enum ksvc_ha (0: a node that does not say) */
    bool building;          /* placed as a building replica (self-repair) */
};

static struct nines_conf cf;

/* One request, one answer of type want within answer_ms; body malloc'd. */
static int node_call(const struct nines_node_conf *nc, uint32_t type, const ProtobufCMessage *req,
                     uint32_t want, uint8_t **body, size_t *len, int answer_ms)
{
    struct net_client *cl;
    int rc = net_client_connect_key(&cl, nc->host, nc->port, cf.cluster,
                                    cf.has_key ? cf.key : NULL, CHK_TIMEOUT_MS);
    if (rc)
        return rc;
    rc = net_client_send(cl, type, req);
    uint64_t deadline = nclock_ms() + (uint64_t)answer_ms;
    struct net_msg_in in;
    while (rc == 0) {
        uint64_t now = nclock_ms();
        if (now >= deadline) {
            rc = nines_err(NINES_ETIMEDOUT, "node %u: no answer to type %u", nc->id, type);
            break;
        }
        rc = net_client_recv(cl, &in, (int)(deadline - now));
        if (rc == 0 && in.type == want) {
            *body = malloc(in.body_len ? in.body_len : 1);
            if (!*body) {
                rc = NINES_ENOMEM;
                break;
            }
            memcpy(*body, in.body, in.body_len);
            *len = in.body_len;
            break;
        }
    }
    net_client_close(cl);
    return rc;
}

static void node_status(const struct nines_node_conf *nc, struct node_st *st)
{
    memset(st, 0, sizeof *st);
    st->id = nc->id;
    Nines__StatusReq req = NINES__STATUS_REQ__INIT;
    uint8_t *b;
    size_t n;
    if (node_call(nc, NINES__MSG_TYPE__STATUS_REQ, &req.base, NINES__MSG_TYPE__STATUS_CONF, &b,
                  &n, CHK_TIMEOUT_MS))
        return;
    Nines__StatusConf *s = nines__status_conf__unpack(NULL, n, b);
    free(b);
    if (!s)
        return;
    st->up = true;
    st->serving = s->serving;
    if (s->node_set && s->node_set->epoch) {
        st->has_ns = true;
        st->epoch = s->node_set->epoch;
        st->members = s->node_set->members;
        st->current = s->node_set->current;
        st->standby_only = s->node_set->standby_only;
        if (s->node_set->n_standby_since == (size_t)__builtin_popcountll(st->standby_only)) {
            size_t k = 0;
            for (uint32_t id = 1; id <= NINES_MAX_NODES; id++)
                if (st->standby_only & DICT_LIVE(id))
                    st->since[id] = s->node_set->standby_since[k++];
        }
        st->coord = s->node_set->coordinator;
    } else {
        /* a node that predates the node-set fields serves everything */
        st->serving = true;
        st->epoch = s->epoch;
    }
    st->suspicions = s->suspicions;
    snprintf(st->ha, sizeof st->ha, "%s", s->ha_state ? s->ha_state : "");
    snprintf(st->reason, sizeof st->reason, "%s", s->reason ? s->reason : "");
    nines__status_conf__free_unpacked(s, NULL);
}

static int node_digests(const struct nines_node_conf *nc, struct rep *reps, size_t *n)
{
    Nines__KernDigestReq req = NINES__KERN_DIGEST_REQ__INIT;
    uint8_t *b;
    size_t len;
    int rc = node_call(nc, NINES__MSG_TYPE__KERN_DIGEST_REQ, &req.base,
                       NINES__MSG_TYPE__KERN_DIGEST_CONF, &b, &len, CHK_DIGEST_MS);
    if (rc)
        return rc;
    Nines__KernDigestConf *c = nines__kern_digest_conf__unpack(NULL, len, b);
    free(b);
    if (!c)
        return nines_err(NINES_EPROTO, "node %u: KERN_DIGEST_CONF does not decode", nc->id);
    if (c->error < 0) { /* refused: too many digests in progress there */
        rc = nines_err(c->error, "node %u computed no digest: %s", nc->id, c->detail);
        nines__kern_digest_conf__free_unpacked(c, NULL);
        return rc;
    }
    for (size_t i = 0; i < c->n_replicas && *n < CHK_MAX_REPS; i++) {
        const Nines__ReplicaDigest *d = c->replicas[i];
        reps[(*n)++] = (struct rep){d->table, d->frag, nc->id, d->primary, d->rows, d->digest,
                                    d->epoch, d->ha, d->building};
    }
    nines__kern_digest_conf__free_unpacked(c, NULL);
    return 0;
}

/* A snapshot of the cluster: every node's status and replicas. */
struct snap {
    struct node_st st[NINES_MAX_NODES];
    struct rep *reps;
    size_t nreps;
    uint64_t epoch, members, current;   /* the installed set of the highest serving epoch */
    uint64_t standby_only;
    uint64_t since[NINES_MAX_NODES + 1];
    uint64_t serving;                   /* bit (id-1): answered and serving */
};

static void snap_take(struct snap *s)
{
    s->nreps = 0;
    s->epoch = s->members = s->current = s->standby_only = s->serving = 0;
    for (uint32_t i = 0; i < cf.nnodes; i++) {
        node_status(&cf.nodes[i], &s->st[i]);
        const struct node_st *n = &s->st[i];
        if (!n->up)
            continue;
        if (n->serving)
            s->serving |= DICT_LIVE(n->id);
        if (n->serving && n->epoch >= s->epoch) {
            s->epoch = n->epoch;
            s->members = n->has_ns ? n->members : 0;
            s->current = n->has_ns ? n->current : 0;
            s->standby_only = n->has_ns ? n->standby_only : 0;
            memcpy(s->since, n->since, sizeof s->since);
        }
        node_digests(&cf.nodes[i], s->reps, &s->nreps);
    }
    if (!s->members) { /* no node-set fields: the static set of every configured node */
        for (uint32_t i = 0; i < cf.nnodes; i++)
            s->members |= DICT_LIVE(cf.nodes[i].id);
        s->current = s->members;
    }
}

static const struct node_st *snap_node(const struct snap *s, uint32_t id)
{
    for (uint32_t i = 0; i < cf.nnodes; i++)
        if (s->st[i].id == id)
            return &s->st[i];
    return NULL;
}

static bool node_serving(const struct snap *s, uint32_t id)
{
    return (s->serving & DICT_LIVE(id)) != 0;
}

/* ---- report -------------------------------------------------------------- */

static int nfail, npass;

static void result(bool pass, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void result(bool pass, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s %-26s ", pass ? "PASS" : "FAIL", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (pass)
        npass++;
    else
        nfail++;
}

static void info(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("INFO %-26s ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void fmt_set(uint64_t set, char *out, size_t n)
{
    size_t off = 0;
    out[0] = '\0';
    for (uint32_t id = 1; id <= 64 && off < n; id++)
        if (set & DICT_LIVE(id))
            off += (size_t)snprintf(out + off, n - off, "%s%u", off ? "," : "", id);
    if (!off)
        snprintf(out, n, "none");
}

/* ---- cluster-state checks ------------------------------------------------ */

struct state_res {
    bool ok_rep, ok_prim, ok_ns, ok_take, ok_bal, ok_spread;
    char rep[400], prim[400], ns[1200], take[600], bal[700], spread[700];
};

static int rep_cmp(const void *a, const void *b)
{
    const struct rep *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    if (x->frag != y->frag)
        return x->frag < y->frag ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* --expect-two: every fragment must have two current serving replicas that
 * agree (after a drill whose failed node came back and was rebuilt) */
static bool g_expect_two;
/* --expect-balanced: the original placement (every primary where the
 * dictionary puts it: the takeback is done) */
static bool g_expect_balanced;
/* --expect-spread: per site, replica counts within one; nothing building */
static bool g_expect_spread;

/* The spread check of --expect-spread over dictionary d into r. */
static void check_spread(const struct dict *d, struct state_res *r)
{
    r->ok_spread = false;
    if (!d) {
        snprintf(r->spread, sizeof r->spread, "no dictionary");
        return;
    }
    size_t building = 0, worst = 0;
    char first[300] = "", counts[300] = "";
    size_t at = 0;
    /* ti == ntables: all tables together */
    for (uint32_t ti = 0; ti <= d->ntables; ti++) {
        for (int site = 0; site < 2; site++) {
            uint32_t mx = 0, mn = UINT32_MAX, nmx = 0, nmn = 0;
            for (uint32_t i = 0; i < d->nnodes; i++) {
                if ((int)d->nodes[i].site != site)
                    continue;
                uint32_t id = d->nodes[i].id, c = 0;
                for (uint32_t tj = 0; tj < d->ntables; tj++) {
                    if (ti < d->ntables && tj != ti)
                        continue;
                    const struct dict_table *t = d->tables[tj];
                    for (uint32_t f = 0; f < t->nfrags; f++)
                        c += (t->frags[f].primary == id) + (t->frags[f].standby == id);
                }
                if (ti == d->ntables && at < sizeof counts)
                    at += (size_t)snprintf(counts + at, sizeof counts - at, "%snode %u: %u",
                                           at ? ", " : "", id, c);
                if (c > mx) {
                    mx = c;
                    nmx = id;
                }
                if (c < mn) {
                    mn = c;
                    nmn = id;
                }
            }
            if (mn != UINT32_MAX && mx - mn > 1 && !worst++)
                snprintf(first, sizeof first, " (first: %s site %d: node %u holds %u, node %u "
                         "holds %u)", ti < d->ntables ? d->tables[ti]->def.name : "all tables",
                         site, nmx, mx, nmn, mn);
        }
        if (ti < d->ntables)
            for (uint32_t f = 0; f < d->tables[ti]->nfrags; f++)
                building += d->tables[ti]->frags[f].standby_state == DICT_REP_BUILDING;
    }
    r->ok_spread = building == 0 && worst == 0;
    snprintf(r->spread, sizeof r->spread, "replicas per node %.300s; %zu building; %zu "
             "(table, site) pairs more than one apart%.300s", counts, building, worst, first);
}

static void check_state(struct snap *s, const struct dict *d, const uint32_t *out_ids, int nout,
                        struct state_res *r)
{
    qsort(s->reps, s->nreps, sizeof *s->reps, rep_cmp);
    /* replicas agree, one primary (per fragment present on some node) */
    size_t frags = 0, compared = 0, alone = 0, differ = 0, dual = 0, stale_claims = 0;
    size_t in_build = 0; /* replicas being rebuilt or built (not a replica yet) */
    char first_diff[160] = "", first_dual[160] = "";
    for (size_t i = 0; i < s->nreps;) {
        size_t j = i;
        while (j < s->nreps && s->reps[j].table == s->reps[i].table &&
               s->reps[j].frag == s->reps[i].frag)
            j++;
        frags++;
        const struct rep *ref = NULL;
        size_t live = 0, claims = 0;
        bool diff = false;
        for (size_t k = i; k < j; k++) {
            const struct rep *x = &s->reps[k];
            bool srv = node_serving(s, x->node);
            if (x->primary && srv)
                claims++;
            else if (x->primary)
                stale_claims++;
            if (!srv || !(s->current & DICT_LIVE(x->node)))
                continue;
            /* a replica being copied, caught up or built (self-repair), or
             * out of service, is not one of the fragment's replicas yet */
            if (x->ha == KSVC_HA_COPYING || x->ha == KSVC_HA_CATCHING_UP ||
                x->ha == KSVC_HA_OFFLINE || x->building) {
                in_build++;
                continue;
            }
            live++;
            if (!ref)
                ref = x;
            else if (x->rows != ref->rows || x->digest != ref->digest)
                diff = true;
        }
        if (live >= 2)
            compared++;
        else
            alone++;
        if (diff && !differ++)
            snprintf(first_diff, sizeof first_diff, " (first: table %u frag %u)",
                     s->reps[i].table, s->reps[i].frag);
        if (claims > 1 && !dual++)
            snprintf(first_dual, sizeof first_dual, " (first: table %u frag %u)",
                     s->reps[i].table, s->reps[i].frag);
        i = j;
    }
    r->ok_rep = differ == 0 && frags > 0 && (!g_expect_two || alone == 0);
    snprintf(r->rep, sizeof r->rep,
             "%zu fragments seen: %zu with two or more current serving replicas compared, "
             "%zu with one, %zu differ%s; %zu replicas being built or rebuilt", frags, compared,
             alone, differ, first_diff, in_build);
    r->ok_prim = dual == 0;
    snprintf(r->prim, sizeof r->prim,
             "%zu fragments claimed primary by two serving nodes%s; %zu primary claims on "
             "nodes not serving (fenced)", dual, first_dual, stale_claims);

    /* node set: the serving nodes agree; expected-out nodes are outside */
    char mem[200], cur[200], srv[200];
    fmt_set(s->members, mem, sizeof mem);
    fmt_set(s->current, cur, sizeof cur);
    fmt_set(s->serving, srv, sizeof srv);
    bool agree = true;
    uint32_t disagree = 0;
    for (uint32_t i = 0; i < cf.nnodes; i++) {
        const struct node_st *n = &s->st[i];
        if (n->up && n->serving && (n->epoch != s->epoch || (n->has_ns && n->members != s->members))) {
            agree = false;
            disagree = n->id;
        }
    }
    bool outs_ok = true;
    char outs[200] = "";
    size_t off = 0;
    for (int k = 0; k < nout; k++) {
        /* out: holds no role — not current (it may rejoin as a member
         * whose replicas are not current) and no primary claim while serving */
        const struct node_st *n = snap_node(s, out_ids[k]);
        bool serving = n && n->up && n->serving, claims = false;
        for (size_t i = 0; i < s->nreps; i++)
            claims = claims || (s->reps[i].node == out_ids[k] && s->reps[i].primary);
        bool current = (s->current & DICT_LIVE(out_ids[k])) != 0;
        bool bad = current || (serving && claims);
        outs_ok = outs_ok && !bad;
        if (off < sizeof outs)
            off += (size_t)snprintf(outs + off, sizeof outs - off, "; node %u %s%s%s%s%s",
                                    out_ids[k],
                                    n && n->up ? (serving ? "serving" : "not serving") : "silent",
                                    current ? ", still CURRENT" : "",
                                    serving && claims ? ", CLAIMS PRIMARIES" : "",
                                    n && n->up && n->reason[0] ? ": " : "",
                                    n && n->up ? n->reason : "");
    }
    r->ok_ns = agree && outs_ok && s->serving;
    char dis[64] = "";
    if (!agree)
        snprintf(dis, sizeof dis, " — serving nodes disagree (node %u)", disagree);
    snprintf(r->ns, sizeof r->ns, "epoch %llu, members %s, current %s, serving %s%s%s",
             (unsigned long long)s->epoch, mem, cur, srv, dis, outs);

    /* takeover: each fragment's expected primary serves and says primary */
    size_t total = 0, ok = 0, down = 0;
    char first_bad[200] = "";
    for (uint32_t ti = 0; d && ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++) {
            total++;
            struct dict_roles ro;
            const struct dict_live live = {.members = s->members, .current = s->current,
                                           .standby_only = s->standby_only,
                                           .since = s->since};
            if (dict_frag_roles_live(d, t, f, &live, &ro) || ro.state == DICT_FRAG_DOWN ||
                !ro.primary) {
                down++;
                if (!first_bad[0])
                    snprintf(first_bad, sizeof first_bad, " (first: %s frag %u: no current "
                             "replica)", t->def.name, f);
                continue;
            }
            bool claims = false;
            for (size_t k = 0; k < s->nreps; k++)
                if (s->reps[k].table == t->id && s->reps[k].frag == f &&
                    s->reps[k].node == ro.primary && s->reps[k].primary)
                    claims = true;
            if (node_serving(s, ro.primary) && claims)
                ok++;
            else if (!first_bad[0])
                snprintf(first_bad, sizeof first_bad, " (first: %s frag %u: node %u %s)",
                         t->def.name, f, ro.primary,
                         !node_serving(s, ro.primary) ? "is not serving"
                                                      : "does not say primary");
        }
    }
    r->ok_take = d && total > 0 && ok == total;
    snprintf(r->take, sizeof r->take,
             "%zu of %zu fragments have a serving primary; %zu have no current replica%s",
             ok, total, down, first_bad);

    /* balanced: each fragment's primary is its dictionary primary, which
     * serves and says primary; no node standby-only */
    size_t home = 0, away = 0;
    char first_away[200] = "", sbo[200];
    for (uint32_t ti = 0; d && ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++) {
            uint32_t p = t->frags[f].primary;
            bool claims = false;
            for (size_t k = 0; k < s->nreps; k++)
                if (s->reps[k].table == t->id && s->reps[k].frag == f && s->reps[k].node == p &&
                    s->reps[k].primary)
                    claims = true;
            if (claims && node_serving(s, p)) {
                home++;
            } else if (!away++) {
                snprintf(first_away, sizeof first_away, " (first: %s frag %u: dictionary "
                         "primary node %u %s)", t->def.name, f, p,
                         !node_serving(s, p) ? "is not serving" : "does not say primary");
            }
        }
    }
    fmt_set(s->standby_only, sbo, sizeof sbo);
    r->ok_bal = d && home > 0 && away == 0 && s->standby_only == 0;
    check_spread(d, r);
    snprintf(r->bal, sizeof r->bal, "%zu fragments at their dictionary primary, %zu elsewhere%.200s; "
             "standby-only nodes: %.200s", home, away, first_away, sbo);
}

/* ---- data: history and balances ----------------------------------------- */

struct hrow { int64_t hid, aid, tid, bid, delta; };
/* t_done_us: when the client learned the outcome (wall clock, journal
 * column 11; 0 in a line without it) — for an A line its acknowledgement */
struct jent { char kind; uint64_t txn; int64_t aid, tid, bid, delta; uint64_t t_done_us; };

struct rows {
    struct hrow *v;
    size_t n, cap;
    int ncols;
    int cols[5];
};

static int rows_add(void *arg, const nines_row *r)
{
    struct rows *s = arg;
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 65536;
        struct hrow *p = realloc(s->v, c * sizeof *p);
        if (!p)
            return 1;
        s->v = p;
        s->cap = c;
    }
    int64_t x[5] = {0};
    for (int i = 0; i < s->ncols; i++) {
        struct nines_value v = nines_row_value(r, (size_t)s->cols[i]);
        if (v.type != NINES_V_INT64)
            return 1;
        x[i] = v.u.i64;
    }
    s->v[s->n++] = (struct hrow){x[0], x[1], x[2], x[3], x[4]};
    return 0;
}

/* Every row of a table (columns cols[0..n), int64, column 0 the key), by
 * pages of 1000 keys upward; a failing page is retried until deadline. */
static int scan_all(nines_conn *c, const char *table, const int *cols, int ncols,
                    struct rows *out, uint64_t deadline)
{
    memset(out, 0, sizeof *out);
    out->ncols = ncols;
    memcpy(out->cols, cols, (size_t)ncols * sizeof *cols);
    int64_t lo = INT64_MIN;
    for (;;) {
        size_t before = out->n;
        nines_txn *t;
        char why[300] = "";
        int rc = nines_txn_begin(c, &t);
        if (rc == 0) {
            struct nines_value k = nines_v_int64(lo);
            rc = nines_txn_scan(t, table, &k, 1, NULL, 0, 1000, rows_add, out);
            if (rc < 0) {
                snprintf(why, sizeof why, "%s", nines_conn_errdetail(c));
                nines_txn_rollback(t);
            } else {
                rc = nines_txn_commit(t);
            }
        }
        if (rc) {
            out->n = before;
            if (!why[0])
                snprintf(why, sizeof why, "%s", nines_conn_errdetail(c));
            if (nclock_ms() >= deadline)
                return nines_err(rc, "scan of %s from key %lld: %s: %s", table, (long long)lo,
                                 nines_strerror(rc), why);
            usleep(200000);
            continue;
        }
        if (out->n - before < 1000 || out->v[out->n - 1].hid == INT64_MAX)
            return 0;
        lo = out->v[out->n - 1].hid + 1;
    }
}

static int cmp_tuple(int64_t a1, int64_t a2, int64_t a3, int64_t a4, int64_t b1, int64_t b2,
                     int64_t b3, int64_t b4)
{
    if (a1 != b1)
        return a1 < b1 ? -1 : 1;
    if (a2 != b2)
        return a2 < b2 ? -1 : 1;
    if (a3 != b3)
        return a3 < b3 ? -1 : 1;
    return a4 < b4 ? -1 : a4 > b4;
}
static int hrow_cmp(const void *a, const void *b)
{
    const struct hrow *x = a, *y = b;
    return cmp_tuple(x->aid, x->tid, x->bid, x->delta, y->aid, y->tid, y->bid, y->delta);
}
static int jent_cmp(const void *a, const void *b)
{
    const struct jent *x = a, *y = b;
    return cmp_tuple(x->aid, x->tid, x->bid, x->delta, y->aid, y->tid, y->bid, y->delta);
}
static int hid_cmp(const void *a, const void *b)
{
    const struct hrow *x = a, *y = b;
    return x->hid < y->hid ? -1 : x->hid > y->hid;
}

struct journal {
    struct jent *v;
    size_t n, cap, acked, refused, unknown;
    char first_refusal[200];    /* code and detail of the first R line */
};

static int journal_read(const char *path, struct journal *j)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return nines_err(NINES_EIO, "journal %s: %s", path, strerror(errno));
    char line[512];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        struct jent e;
        int thr;
        unsigned long long seq, txn, t0 = 0, t1 = 0;
        long long aid, tid, bid, delta, val;
        /* the times (columns 10, 11) are optional for the reader: a line
         * without them has no acknowledgement time (t_done_us 0) */
        int nf = sscanf(line, "%c %d %llu %llu %lld %lld %lld %lld %lld %llu %llu", &e.kind, &thr,
                        &seq, &txn, &aid, &tid, &bid, &delta, &val, &t0, &t1);
        if (nf < 9 || (e.kind != 'A' && e.kind != 'R' && e.kind != 'U')) {
            /* a torn last line (the client was killed) is not an error */
            if (!strchr(line, '\n'))
                break;
            fclose(f);
            return nines_err(NINES_ECORRUPT, "journal %s line %u does not parse: %.60s", path,
                             lineno, line);
        }
        e.txn = txn;
        e.t_done_us = nf == 11 ? t1 : 0;
        e.aid = aid;
        e.tid = tid;
        e.bid = bid;
        e.delta = delta;
        if (j->n == j->cap) {
            size_t c = j->cap ? j->cap * 2 : 65536;
            struct jent *p = realloc(j->v, c * sizeof *p);
            if (!p) {
                fclose(f);
                return NINES_ENOMEM;
            }
            j->v = p;
            j->cap = c;
        }
        j->v[j->n++] = e;
        if (e.kind == 'A')
            j->acked++;
        else if (e.kind == 'U')
            j->unknown++;
        else if (j->refused++ == 0) {
            /* fields: kind thread seq txn aid tid bid delta code t0 t1 detail */
            const char *p = line;
            for (int k = 0; k < 11 && p; k++) {
                p = strchr(p, ' ');
                p = p ? p + 1 : NULL;
            }
            snprintf(j->first_refusal, sizeof j->first_refusal, "%s: %.150s",
                     nines_strerror((int)val), p ? p : "");
            char *nl = strchr(j->first_refusal, '\n');
            if (nl)
                *nl = '\0';
        }
    }
    fclose(f);
    return 0;
}

/* Per-id sums of history deltas against a table's balances. */
static size_t balance_mismatch(const struct rows *tab, const struct hrow *h, size_t nh, int which,
                               char *first, size_t firstn)
{
    int64_t maxid = -1;
    for (size_t i = 0; i < tab->n; i++)
        if (tab->v[i].hid > maxid)
            maxid = tab->v[i].hid;
    if (maxid < 0 || maxid > 100000000)
        return 0;
    long double *sum = calloc((size_t)maxid + 1, sizeof *sum);
    if (!sum)
        return 0;
    size_t orphans = 0, bad = 0;
    for (size_t i = 0; i < nh; i++) {
        int64_t id = which == 0 ? h[i].aid : which == 1 ? h[i].tid : h[i].bid;
        if (id < 0 || id > maxid)
            orphans++;
        else
            sum[id] += h[i].delta;
    }
    for (size_t i = 0; i < tab->n; i++)
        if ((long double)tab->v[i].aid != sum[tab->v[i].hid] && !bad++)
            snprintf(first, firstn, " (first: id %lld balance %lld, history says %.0Lf)",
                     (long long)tab->v[i].hid, (long long)tab->v[i].aid, sum[tab->v[i].hid]);
    free(sum);
    return bad + orphans;
}

/* ---- journal against history ------------------------------------------------ */

/* A whole-cluster kill (drill kill-all; README "Whole-cluster restart"):
 * --kill-us T --lost-window-ms W. Under disk_log async the restart keeps
 * the commits of the last restorable epoch, so an acknowledged commit may
 * be missing if its acknowledgement came at most W ms before T; under sync
 * (W = 0) none may. Every node is dead from T on, so an acknowledgement the
 * client read after T was sent before it; the ones read from --restart-us R
 * on (default T + 1 s) come from the restarted cluster and must be there. */
#define LOSS_RESTART_DEFAULT_US 1000000u
struct loss_opts {
    bool on;                    /* --kill-us given */
    uint64_t kill_us, restart_us, window_ms;
};
static struct loss_opts g_loss;

static bool loss_allowed(const struct loss_opts *o, uint64_t t_ack)
{
    if (!o->on || o->window_ms == 0 || t_ack == 0 || t_ack >= o->restart_us)
        return false;
    return t_ack >= o->kill_us || o->kill_us - t_ack <= o->window_ms * 1000u;
}

struct jh_res {
    size_t missing;         /* acknowledged, no history row, not allowed: FAIL */
    size_t lost;            /* acknowledged, no history row, inside the loss window */
    size_t missing_late;    /* of missing: acknowledged by the restarted cluster */
    size_t missing_notime;  /* of missing: the journal line has no time (window mode) */
    size_t acked_before;    /* A lines acknowledged at or before the kill */
    double max_age_ms;      /* largest (kill - ack) over every missing acknowledgement */
    size_t twice, aborted_present, unk_in, unk_out, unjournaled, hid_bad;
    char fmiss[200], ftwice[160], fab[160];
};

static int u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x > y ? -1 : x < y;
}

/* Compare the journal with the history rows (by tuple; by hid where the
 * journal has it). Sorts j->v and h in place. Where a tuple has fewer rows
 * than acknowledgements (a collision of two requests, or a loss), the
 * newest acknowledgements are taken for the missing ones. */
static void journal_vs_history(struct journal *j, struct hrow *h, size_t hn,
                               const struct loss_opts *lo, struct jh_res *r)
{
    memset(r, 0, sizeof *r);
    r->max_age_ms = -1e18;
    qsort(j->v, j->n, sizeof *j->v, jent_cmp);
    struct hrow *byhid = malloc((hn ? hn : 1) * sizeof *byhid);
    if (byhid) {
        memcpy(byhid, h, hn * sizeof *byhid);
        qsort(byhid, hn, sizeof *byhid, hid_cmp);
    }
    qsort(h, hn, sizeof *h, hrow_cmp);
    size_t hi = 0;
    for (size_t ji = 0; ji < j->n;) {
        const struct jent *e = &j->v[ji];
        size_t jj = ji, na_ = 0, nu = 0, nr = 0, nh = 0;
        uint64_t acks[64];
        while (jj < j->n && !jent_cmp(&j->v[jj], e)) {
            if (j->v[jj].kind == 'A') {
                if (na_ < sizeof acks / sizeof acks[0])
                    acks[na_] = j->v[jj].t_done_us;
                if (lo->on && j->v[jj].t_done_us && j->v[jj].t_done_us <= lo->kill_us)
                    r->acked_before++;
                na_++;
            }
            nu += j->v[jj].kind == 'U';
            nr += j->v[jj].kind == 'R';
            if (j->v[jj].txn && byhid) {
                struct hrow key = {.hid = (int64_t)j->v[jj].txn};
                struct hrow *p = bsearch(&key, byhid, hn, sizeof *byhid, hid_cmp);
                bool present = p && !hrow_cmp(p, &(struct hrow){0, e->aid, e->tid, e->bid,
                                                                 e->delta});
                if ((j->v[jj].kind == 'A' && !present) || (j->v[jj].kind == 'R' && p))
                    r->hid_bad++;
            }
            jj++;
        }
        while (hi < hn && cmp_tuple(h[hi].aid, h[hi].tid, h[hi].bid, h[hi].delta, e->aid, e->tid,
                                    e->bid, e->delta) < 0) {
            r->unjournaled++;
            hi++;
        }
        while (hi < hn && !cmp_tuple(h[hi].aid, h[hi].tid, h[hi].bid, h[hi].delta, e->aid, e->tid,
                                     e->bid, e->delta)) {
            nh++;
            hi++;
        }
        if (nh < na_) {
            size_t nk = na_ < sizeof acks / sizeof acks[0] ? na_ : sizeof acks / sizeof acks[0];
            qsort(acks, nk, sizeof acks[0], u64_desc);
            for (size_t k = 0; k < na_ - nh; k++) {
                uint64_t t = k < nk ? acks[k] : 0;
                if (lo->on && t) {
                    double age = ((double)lo->kill_us - (double)t) / 1000.0;
                    if (age > r->max_age_ms)
                        r->max_age_ms = age;
                }
                if (loss_allowed(lo, t)) {
                    r->lost++;
                    continue;
                }
                if (lo->on && !t)
                    r->missing_notime++;
                else if (lo->on && t >= lo->restart_us)
                    r->missing_late++;
                if (!r->missing++) {
                    int n = snprintf(r->fmiss, sizeof r->fmiss, " (first: aid %lld tid %lld "
                                     "delta %lld", (long long)e->aid, (long long)e->tid,
                                     (long long)e->delta);
                    if (lo->on && n > 0 && (size_t)n < sizeof r->fmiss)
                        snprintf(r->fmiss + n, sizeof r->fmiss - (size_t)n, "%s%.1f ms %s)",
                                 !t ? ", no acknowledgement time" : ", acknowledged ",
                                 !t ? 0.0 : (t <= lo->kill_us ? (double)(lo->kill_us - t)
                                                              : (double)(t - lo->kill_us)) /
                                                 1000.0,
                                 !t ? "" : t <= lo->kill_us ? "before the kill"
                                                            : "after the kill");
                    else if (n > 0 && (size_t)n < sizeof r->fmiss)
                        snprintf(r->fmiss + n, sizeof r->fmiss - (size_t)n, ")");
                }
            }
        } else if (nh > na_ + nu) {
            if (nr) {
                if (!r->aborted_present)
                    snprintf(r->fab, sizeof r->fab, " (first: aid %lld tid %lld delta %lld)",
                             (long long)e->aid, (long long)e->tid, (long long)e->delta);
                r->aborted_present += nh - na_ - nu;
            } else {
                if (!r->twice)
                    snprintf(r->ftwice, sizeof r->ftwice, " (first: aid %lld tid %lld delta "
                             "%lld, %zu rows)", (long long)e->aid, (long long)e->tid,
                             (long long)e->delta, nh);
                r->twice += nh - na_ - nu;
            }
        }
        if (nu) {
            size_t extra = nh > na_ ? nh - na_ : 0;
            r->unk_in += extra < nu ? extra : nu;
            r->unk_out += extra < nu ? nu - extra : 0;
        }
        ji = jj;
    }
    r->unjournaled += hn - hi;
    free(byhid);
}

/* The data checks over rows already read (from the cluster, or made up by
 * --self-test): the journal against the history, the balances. */
static void data_results(struct journal *j, struct rows *h, const struct rows *a,
                         const struct rows *t, const struct rows *b)
{
    if (j->n) {
        struct jh_res r;
        journal_vs_history(j, h->v, h->n, &g_loss, &r);
        char lost[200] = "";
        if (g_loss.on)
            snprintf(lost, sizeof lost, "; %zu missing within the %llu ms loss window before "
                     "the kill", r.lost, (unsigned long long)g_loss.window_ms);
        result(r.missing == 0 && r.hid_bad == 0, "acknowledged present",
               "%zu of %zu acknowledged transactions have their history row%s%s%s",
               j->acked - r.missing - r.lost, j->acked, lost, r.fmiss,
               r.hid_bad ? "; some rows by txn id missing or wrong" : "");
        if (g_loss.on) {
            size_t nmiss = r.missing + r.lost;
            printf("loss window measured: %zu commits, at most %.1f ms before the kill (%zu "
                   "acknowledged before the kill; allowed %llu ms%s)\n", nmiss,
                   nmiss && r.max_age_ms > -1e17 ? r.max_age_ms : 0.0, r.acked_before,
                   (unsigned long long)g_loss.window_ms,
                   g_loss.window_ms ? "" : ": every acknowledged commit present");
            if (r.missing_late || r.missing_notime)
                printf("  of the missing ones not allowed: %zu acknowledged by the restarted "
                       "cluster, %zu with no acknowledgement time\n", r.missing_late,
                       r.missing_notime);
        }
        result(r.twice == 0, "executed once",
               "%zu history rows beyond the requests that could have made them%s", r.twice,
               r.ftwice);
        result(r.aborted_present == 0, "aborted absent",
               "%zu of %zu refused/aborted transactions have a history row%s",
               r.aborted_present, j->refused, r.fab);
        info("unknown outcomes", "%zu (%zu committed, %zu not); %zu history rows from requests "
             "in no journal", j->unknown, r.unk_in, r.unk_out, r.unjournaled);
    }

    long double sa = 0, st = 0, sb = 0, sh = 0;
    for (size_t i = 0; i < a->n; i++)
        sa += a->v[i].aid;
    for (size_t i = 0; i < t->n; i++)
        st += t->v[i].aid;
    for (size_t i = 0; i < b->n; i++)
        sb += b->v[i].aid;
    for (size_t i = 0; i < h->n; i++)
        sh += h->v[i].delta;
    result(sa == st && st == sb && sb == sh, "balance invariant",
           "sum account %.0Lf, teller %.0Lf, branch %.0Lf, history.delta %.0Lf", sa, st, sb, sh);
    char fa[160] = "", ft[160] = "", fb[160] = "";
    size_t ba = balance_mismatch(a, h->v, h->n, 0, fa, sizeof fa);
    size_t bt = balance_mismatch(t, h->v, h->n, 1, ft, sizeof ft);
    size_t bb = balance_mismatch(b, h->v, h->n, 2, fb, sizeof fb);
    result(ba + bt + bb == 0, "balances per row",
           "%zu accounts%s, %zu tellers%s, %zu branches%s differ from their history deltas", ba,
           fa, bt, ft, bb, fb);
}

static void check_data(const struct snap *s, struct journal *j, uint64_t deadline)
{
    const char *addrs[NINES_MAX_NODES];
    char abuf[NINES_MAX_NODES][NINES_HOST_MAX + 8];
    size_t na = 0;
    for (uint32_t i = 0; i < cf.nnodes; i++)
        if (node_serving(s, cf.nodes[i].id)) {
            snprintf(abuf[na], sizeof abuf[na], "%s:%u", cf.nodes[i].host, cf.nodes[i].port);
            addrs[na] = abuf[na];
            na++;
        }
    nines_conn *c = NULL;
    if (!na || nines_connect(&c, addrs, na, cf.cluster, 5000)) {
        result(false, "data readable", "no serving node accepts a client: %s",
               na ? nines_errdetail() : "none serving");
        return;
    }
    static const int hcols[5] = {0, 1, 2, 3, 4};
    static const int acols[2] = {0, 2}, tcols[2] = {0, 2}, bcols[2] = {0, 1};
    struct rows h, a, t, b;
    memset(&a, 0, sizeof a);
    memset(&t, 0, sizeof t);
    memset(&b, 0, sizeof b);
    int rc = scan_all(c, "history", hcols, 5, &h, deadline);
    if (!rc)
        rc = scan_all(c, "account", acols, 2, &a, deadline);
    if (!rc)
        rc = scan_all(c, "teller", tcols, 2, &t, deadline);
    if (!rc)
        rc = scan_all(c, "branch", bcols, 2, &b, deadline);
    char why[400];
    snprintf(why, sizeof why, "%s", nines_errdetail());
    nines_close(c);
    if (rc) {
        result(false, "data readable", "%s", why);
        goto out;
    }
    info("data", "history %zu rows, account %zu, teller %zu, branch %zu", h.n, a.n, t.n, b.n);

    data_results(j, &h, &a, &t, &b);
out:
    free(h.v);
    free(a.v);
    free(t.v);
    free(b.v);
}

/* ---- dictionary ---------------------------------------------------------- */

static int fetch_dict(struct dict *d)
{
    Nines__DictGetReq gq = NINES__DICT_GET_REQ__INIT;
    uint32_t got = 0;
    uint8_t *body = NULL;
    size_t len = 0;
    memset(d, 0, sizeof *d);
    int rc = tpcb_admin_call(&cf, NINES__MSG_TYPE__DICT_GET_REQ, &gq.base,
                             NINES__MSG_TYPE__DICT_GET_CONF, NINES__MSG_TYPE__DICT_GET_REF, &got,
                             &body, &len);
    if (rc)
        return rc;
    if (got != NINES__MSG_TYPE__DICT_GET_CONF) {
        free(body);
        return nines_err(NINES_EPROTO, "DICT_GET refused");
    }
    Nines__DictGetConf *gc = nines__dict_get_conf__unpack(NULL, len, body);
    free(body);
    if (!gc)
        return nines_err(NINES_EPROTO, "DICT_GET_CONF does not decode");
    rc = dict_decode(gc->image.data, gc->image.len, d);
    nines__dict_get_conf__free_unpacked(gc, NULL);
    return rc;
}

/* ---- watch ---------------------------------------------------------------- */

struct claim { uint32_t table, frag, node; uint64_t epoch; };

static int watch(double seconds, int interval_ms)
{
    static struct snap s;
    s.reps = calloc(CHK_MAX_REPS, sizeof *s.reps);
    if (!s.reps)
        return 2;
    uint64_t end = nclock_ms() + (uint64_t)(seconds * 1000);
    size_t samples = 0, same_epoch = 0, cross_epoch = 0;
    char first[200] = "";
    uint64_t max_epoch = 0;
    while (nclock_ms() < end) {
        snap_take(&s);
        samples++;
        if (s.epoch > max_epoch)
            max_epoch = s.epoch;
        qsort(s.reps, s.nreps, sizeof *s.reps, rep_cmp);
        for (size_t i = 0; i < s.nreps;) {
            size_t j = i;
            while (j < s.nreps && s.reps[j].table == s.reps[i].table &&
                   s.reps[j].frag == s.reps[i].frag)
                j++;
            for (size_t x = i; x < j; x++)
                for (size_t y = x + 1; y < j; y++) {
                    const struct rep *p = &s.reps[x], *q = &s.reps[y];
                    /* a claim says its own epoch and was made while serving
                     * (a digest takes several turns: the node's STATUS,
                     * read before it, may be of an older set) */
                    if (!p->primary || !q->primary)
                        continue;
                    if ((!p->epoch && !node_serving(&s, p->node)) ||
                        (!q->epoch && !node_serving(&s, q->node)))
                        continue;
                    uint64_t ep = p->epoch ? p->epoch : snap_node(&s, p->node)->epoch,
                             eq = q->epoch ? q->epoch : snap_node(&s, q->node)->epoch;
                    if (ep == eq) {
                        if (!same_epoch++)
                            snprintf(first, sizeof first, "table %u frag %u on nodes %u and %u "
                                     "in epoch %llu", p->table, p->frag, p->node, q->node,
                                     (unsigned long long)ep);
                    } else {
                        cross_epoch++;
                    }
                }
            i = j;
        }
        usleep((useconds_t)interval_ms * 1000);
    }
    printf("watch: %zu samples over %.1f s, highest epoch %llu\n", samples, seconds,
           (unsigned long long)max_epoch);
    result(same_epoch == 0, "one primary (watched)",
           "%zu samples with two serving primaries of one fragment in one epoch%s%s; %zu "
           "claims from different epochs", same_epoch, first[0] ? ": " : "", first, cross_epoch);
    free(s.reps);
    return nfail ? 1 : 0;
}

/* ---- self-test (--self-test) ---------------------------------------------- */

/* The checker's logic on made-up data, without a cluster: journals and
 * history rows (the loss window of a whole-cluster kill, losses outside it,
 * aborted rows present, a request executed twice, unknown outcomes), the
 * balance checks, the journal reader (lines with and without times) and
 * the replica checks on a made-up cluster state. */
static int st_fail, st_cases;

static void st_expect(bool ok, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void st_expect(bool ok, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("self-test %-4s %s: ", ok ? "ok" : "FAIL", what);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    st_cases++;
    st_fail += !ok;
}

struct st_data {
    struct journal j;
    struct rows h, a, t, b;
};

static void st_reset(struct st_data *x)
{
    free(x->j.v);
    free(x->h.v);
    free(x->a.v);
    free(x->t.v);
    free(x->b.v);
    memset(x, 0, sizeof *x);
}

static void st_row(struct rows *r, struct hrow v)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        if (!r->v)
            abort();
    }
    r->v[r->n++] = v;
}

/* A journal line for request k (tuple derived from k); kind A, R or U;
 * t_done: its acknowledgement time. in_history: the cluster has its row. */
static void st_req(struct st_data *x, int k, char kind, uint64_t t_done, int rows)
{
    struct jent e = {kind, 0, 1000 + k, k % 10, 0, 10 + k, t_done};
    if (x->j.n == x->j.cap) {
        x->j.cap = x->j.cap ? x->j.cap * 2 : 64;
        x->j.v = realloc(x->j.v, x->j.cap * sizeof *x->j.v);
        if (!x->j.v)
            abort();
    }
    x->j.v[x->j.n++] = e;
    x->j.acked += kind == 'A';
    x->j.refused += kind == 'R';
    x->j.unknown += kind == 'U';
    for (int i = 0; i < rows; i++)
        st_row(&x->h, (struct hrow){(int64_t)x->h.n + 1, e.aid, e.tid, e.bid, e.delta});
}

/* Balances that agree with the history rows (account id = aid - 1000 ...). */
static void st_balances(struct st_data *x)
{
    int64_t acc[64] = {0}, tel[10] = {0}, br = 0;
    for (size_t i = 0; i < x->h.n; i++) {
        acc[x->h.v[i].aid - 1000] += x->h.v[i].delta;
        tel[x->h.v[i].tid] += x->h.v[i].delta;
        br += x->h.v[i].delta;
    }
    /* struct rows of a balance table: hid = the id, aid = the balance */
    for (int i = 0; i < 64; i++)
        st_row(&x->a, (struct hrow){1000 + i, acc[i], 0, 0, 0});
    for (int i = 0; i < 10; i++)
        st_row(&x->t, (struct hrow){i, tel[i], 0, 0, 0});
    st_row(&x->b, (struct hrow){0, br, 0, 0, 0});
}

static void self_test_journal(void)
{
    const uint64_t T = 1800000000000000ull; /* the kill, wall-clock µs */
    const struct loss_opts none = {0};
    const struct loss_opts async300 = {true, T, T + LOSS_RESTART_DEFAULT_US, 300};
    const struct loss_opts sync0 = {true, T, T + LOSS_RESTART_DEFAULT_US, 0};
    struct st_data x = {0};
    struct jh_res r;

    /* every acknowledged present, refused absent, unknowns either way */
    for (int k = 0; k < 20; k++)
        st_req(&x, k, 'A', T - 5000000 + (uint64_t)k, 1);
    st_req(&x, 20, 'R', T - 4000000, 0);
    st_req(&x, 21, 'U', T - 4000000, 1);
    st_req(&x, 22, 'U', T - 4000000, 0);
    journal_vs_history(&x.j, x.h.v, x.h.n, &none, &r);
    st_expect(!r.missing && !r.lost && !r.aborted_present && !r.twice && r.unk_in == 1 &&
              r.unk_out == 1, "clean journal", "missing %zu lost %zu aborted %zu twice %zu "
              "unknown %zu in %zu out", r.missing, r.lost, r.aborted_present, r.twice, r.unk_in,
              r.unk_out);
    journal_vs_history(&x.j, x.h.v, x.h.n, &async300, &r);
    st_expect(!r.missing && !r.lost && r.acked_before == 20, "clean journal, window mode",
              "missing %zu lost %zu, %zu acknowledged before the kill", r.missing, r.lost,
              r.acked_before);

    /* async: three missing, acknowledged 100 and 250 ms before the kill and
     * 5 ms after it (sent before it): inside a 300 ms window */
    st_req(&x, 30, 'A', T - 100000, 0);
    st_req(&x, 31, 'A', T - 250000, 0);
    st_req(&x, 32, 'A', T + 5000, 0);
    journal_vs_history(&x.j, x.h.v, x.h.n, &async300, &r);
    st_expect(!r.missing && r.lost == 3 && r.max_age_ms == 250.0 && r.acked_before == 22,
              "async: losses inside the window", "missing %zu lost %zu max age %.1f ms, %zu "
              "acknowledged before the kill", r.missing, r.lost, r.max_age_ms, r.acked_before);
    journal_vs_history(&x.j, x.h.v, x.h.n, &none, &r);
    st_expect(r.missing == 3 && !r.lost, "the same without --kill-us", "missing %zu lost %zu",
              r.missing, r.lost);
    /* sync (window 0): any missing acknowledgement fails */
    journal_vs_history(&x.j, x.h.v, x.h.n, &sync0, &r);
    st_expect(r.missing == 3 && !r.lost && r.max_age_ms == 250.0, "sync: no loss allowed",
              "missing %zu lost %zu max age %.1f ms", r.missing, r.lost, r.max_age_ms);

    /* one older than the window */
    st_req(&x, 33, 'A', T - 400000, 0);
    journal_vs_history(&x.j, x.h.v, x.h.n, &async300, &r);
    st_expect(r.missing == 1 && r.lost == 3 && r.max_age_ms == 400.0 &&
              strstr(r.fmiss, "400.0 ms before the kill"), "async: a loss older than the window",
              "missing %zu lost %zu max age %.1f ms%s", r.missing, r.lost, r.max_age_ms, r.fmiss);
    /* acknowledged by the restarted cluster, and a line with no time */
    st_req(&x, 34, 'A', T + 2 * LOSS_RESTART_DEFAULT_US, 0);
    st_req(&x, 35, 'A', 0, 0);
    journal_vs_history(&x.j, x.h.v, x.h.n, &async300, &r);
    st_expect(r.missing == 3 && r.missing_late == 1 && r.missing_notime == 1,
              "after the restart / no time", "missing %zu (late %zu, no time %zu)", r.missing,
              r.missing_late, r.missing_notime);
    struct loss_opts early = async300;
    early.restart_us = T + 3000; /* the client read the +5 ms one after the restart began */
    journal_vs_history(&x.j, x.h.v, x.h.n, &early, &r);
    st_expect(r.missing == 4 && r.missing_late == 2, "--restart-us bounds the window",
              "missing %zu (late %zu)", r.missing, r.missing_late);

    /* the checks as printed: acknowledged present fails, the rest passes */
    int f0 = nfail;
    struct loss_opts saved = g_loss;
    g_loss = async300;
    st_balances(&x);
    data_results(&x.j, &x.h, &x.a, &x.t, &x.b);
    g_loss = saved;
    st_expect(nfail - f0 == 1, "data_results with losses outside the window",
              "%d checks failed (want 1: acknowledged present)", nfail - f0);

    /* a collision: two acknowledgements of one tuple, one row; the newer is
     * taken for the missing one */
    st_reset(&x);
    st_req(&x, 40, 'A', T - 1000000, 1);
    st_req(&x, 40, 'A', T - 50000, 0);
    journal_vs_history(&x.j, x.h.v, x.h.n, &async300, &r);
    st_expect(!r.missing && r.lost == 1 && r.max_age_ms == 50.0, "collision",
              "missing %zu lost %zu max age %.1f", r.missing, r.lost, r.max_age_ms);

    /* aborted present, executed twice */
    st_reset(&x);
    st_req(&x, 50, 'R', T - 1000000, 1);
    st_req(&x, 51, 'A', T - 1000000, 2);
    st_req(&x, 52, 'U', T - 1000000, 2);
    journal_vs_history(&x.j, x.h.v, x.h.n, &async300, &r);
    st_expect(r.aborted_present == 1 && r.twice == 2 && !r.missing, "aborted present, twice",
              "aborted %zu twice %zu missing %zu", r.aborted_present, r.twice, r.missing);

    /* balances: consistent, then one account off (invariant and per row) */
    st_reset(&x);
    for (int k = 0; k < 30; k++)
        st_req(&x, k, 'A', T - 1000000, 1);
    st_balances(&x);
    f0 = nfail;
    data_results(&x.j, &x.h, &x.a, &x.t, &x.b);
    st_expect(nfail == f0, "balances agree", "%d checks failed", nfail - f0);
    x.a.v[3].aid += 7;
    f0 = nfail;
    data_results(&x.j, &x.h, &x.a, &x.t, &x.b);
    st_expect(nfail - f0 == 2, "one account off", "%d checks failed (want 2: invariant, per row)",
              nfail - f0);
    st_reset(&x);
}

static void self_test_reader(void)
{
    char path[] = "/tmp/drill_check_selftest.XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        st_expect(false, "journal reader", "cannot make a temporary file: %s", strerror(errno));
        return;
    }
    fprintf(f, "# nines-tpcb-journal v1\n"
               "A 0 1 0 5 6 0 -7 123 1800000000000000 1800000000001234\n"
               "A 0 2 0 5 6 0 -8 123\n"
               "R 1 1 0 9 9 0 3 -16 1800000000000000 1800000000002000 refused: no\n"
               "U 1 2 0 9 9 0 4 -11 1800000000000000 1800000000003000 timed out\n"
               "A 1 3 0 9 9");   /* a torn last line */
    fclose(f);
    struct journal j = {0};
    int rc = journal_read(path, &j);
    unlink(path);
    st_expect(rc == 0 && j.n == 4 && j.acked == 2 && j.refused == 1 && j.unknown == 1 &&
              j.v[0].t_done_us == 1800000000001234ull && j.v[1].t_done_us == 0 &&
              j.v[3].t_done_us == 1800000000003000ull, "journal reader",
              "rc %d, %zu lines (%zu A, %zu R, %zu U), times %llu %llu", rc, j.n, j.acked,
              j.refused, j.unknown, j.n ? (unsigned long long)j.v[0].t_done_us : 0ull,
              j.n > 1 ? (unsigned long long)j.v[1].t_done_us : 0ull);
    free(j.v);
}

static void self_test_state(void)
{
    memset(&cf, 0, sizeof cf);
    cf.nnodes = 4;
    for (uint32_t i = 0; i < 4; i++) {
        cf.nodes[i].id = i + 1;
        cf.nodes[i].site = i % 2;
    }
    static struct snap s;
    static struct rep reps[16];
    struct state_res r;
    bool two = g_expect_two;
    for (int round = 0; round < 4; round++) {
        memset(&s, 0, sizeof s);
        s.reps = reps;
        s.epoch = 7;
        s.members = s.current = s.serving = 0xf;
        for (uint32_t i = 0; i < 4; i++)
            s.st[i] = (struct node_st){.id = i + 1, .up = true, .serving = true, .has_ns = true,
                                       .epoch = 7, .members = 0xf, .current = 0xf};
        /* fragments (1,0) on nodes 1,2; (1,1) on nodes 3,4 */
        reps[0] = (struct rep){1, 0, 1, true, 10, 0xabc, 7, 0, false};
        reps[1] = (struct rep){1, 0, 2, false, 10, 0xabc, 7, 0, false};
        reps[2] = (struct rep){1, 1, 3, true, 12, 0xdef, 7, 0, false};
        reps[3] = (struct rep){1, 1, 4, false, 12, 0xdef, 7, 0, false};
        s.nreps = 4;
        const char *what = "two replicas agree";
        bool want_rep = true, want_prim = true;
        if (round == 1) {
            reps[3].digest ^= 1;
            what = "replicas differ";
            want_rep = false;
        } else if (round == 2) {
            s.nreps = 3; /* node 4's replica gone */
            what = "one replica with --expect-two";
            want_rep = false;
        } else if (round == 3) {
            reps[1].primary = true;
            what = "two primaries";
            want_prim = false;
        }
        g_expect_two = true;
        check_state(&s, NULL, NULL, 0, &r);
        st_expect(r.ok_rep == want_rep && r.ok_prim == want_prim && r.ok_ns, what,
                  "replicas %s, primary %s, node set %s: %s", r.ok_rep ? "ok" : "FAIL",
                  r.ok_prim ? "ok" : "FAIL", r.ok_ns ? "ok" : "FAIL", r.rep);
    }
    g_expect_two = two;
}

static int self_test(void)
{
    printf("-- checks printed by the self-test (some fail on purpose):\n");
    self_test_journal();
    self_test_reader();
    self_test_state();
    printf("drill_check self-test: %s (%d cases, %d failed)\n", st_fail ? "FAIL" : "PASS",
           st_cases, st_fail);
    return st_fail ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: drill_check --config FILE [--journal F]... [--noack-journal F]...\n"
               "                   [--expect-out ID]... [--settle-ms MS] [--no-data] "
               "[--no-takeover] [--expect-two] [--expect-balanced]\n"
               "                   [--expect-spread]\n"
               "                   [--kill-us T [--lost-window-ms W] [--restart-us R]]\n"
               "       drill_check --config FILE --watch SECONDS [--interval-ms MS]\n"
               "       drill_check --self-test\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL, *journals[CHK_MAX_FILES], *noack[CHK_MAX_FILES];
    int nj = 0, nn = 0, nout = 0, settle_ms = 5000, interval_ms = 100;
    uint32_t outs[NINES_MAX_NODES];
    bool data = true, takeover = true;
    double watch_s = 0;
    bool selftest = false;
    uint64_t kill_us = 0, restart_us = 0;
    const char *window_ms = NULL;
    g_expect_two = false;
    g_expect_balanced = false;
    g_expect_spread = false;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (!strcmp(argv[i], "--config") && more)
            config = argv[++i];
        else if (!strcmp(argv[i], "--journal") && more && nj < CHK_MAX_FILES)
            journals[nj++] = argv[++i];
        else if (!strcmp(argv[i], "--noack-journal") && more && nn < CHK_MAX_FILES)
            noack[nn++] = argv[++i];
        else if (!strcmp(argv[i], "--expect-out") && more && nout < NINES_MAX_NODES)
            outs[nout++] = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--settle-ms") && more)
            settle_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--interval-ms") && more)
            interval_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--watch") && more)
            watch_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-data"))
            data = false;
        else if (!strcmp(argv[i], "--no-takeover"))
            takeover = false;
        else if (!strcmp(argv[i], "--expect-two"))
            g_expect_two = true;
        else if (!strcmp(argv[i], "--expect-balanced"))
            g_expect_balanced = true;
        else if (!strcmp(argv[i], "--kill-us") && more)
            kill_us = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--lost-window-ms") && more)
            window_ms = argv[++i];
        else if (!strcmp(argv[i], "--restart-us") && more)
            restart_us = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--self-test"))
            selftest = true;
        else if (!strcmp(argv[i], "--expect-spread"))
            g_expect_spread = true;
        else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "drill_check: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (selftest)
        return self_test();
    char *end = NULL;
    unsigned long long w = window_ms ? strtoull(window_ms, &end, 10) : 0;
    if ((window_ms && (!*window_ms || *end || !kill_us)) || (restart_us && !kill_us) ||
        (restart_us && restart_us <= kill_us)) {
        fprintf(stderr, "drill_check: --lost-window-ms W (a number of ms) and --restart-us R "
                        "(after T) need --kill-us T (wall-clock µs)\n");
        usage(stderr);
        return 2;
    }
    g_loss = (struct loss_opts){kill_us != 0, kill_us,
                                restart_us ? restart_us : kill_us + LOSS_RESTART_DEFAULT_US, w};
    if (!config || settle_ms < 0 || interval_ms <= 0) {
        usage(stderr);
        return 2;
    }
    if (nines_conf_load(config, &cf)) {
        fprintf(stderr, "drill_check: %s\n", nines_errdetail());
        return 2;
    }
    if (watch_s > 0)
        return watch(watch_s, interval_ms);

    struct journal j = {0};
    for (int i = 0; i < nj; i++)
        if (journal_read(journals[i], &j)) {
            fprintf(stderr, "drill_check: %s\n", nines_errdetail());
            return 2;
        }
    if (nj)
        printf("journal: %zu requests in %d file%s: %zu acknowledged, %zu refused/aborted, %zu "
               "unknown\n", j.n, nj, nj == 1 ? "" : "s", j.acked, j.refused, j.unknown);

    struct dict d;
    bool have_dict = fetch_dict(&d) == 0;
    if (!have_dict)
        printf("INFO %-26s %s\n", "dictionary", nines_errdetail());

    /* cluster state, retried until it passes or the settle time is over */
    static struct snap s;
    s.reps = calloc(CHK_MAX_REPS, sizeof *s.reps);
    if (!s.reps)
        return 2;
    struct state_res r;
    uint64_t deadline = nclock_ms() + (uint64_t)settle_ms;
    for (;;) {
        snap_take(&s);
        check_state(&s, have_dict ? &d : NULL, outs, nout, &r);
        if ((r.ok_rep && r.ok_prim && r.ok_ns && (r.ok_take || !takeover) &&
             (r.ok_bal || !g_expect_balanced) && (r.ok_spread || !g_expect_spread)) ||
            nclock_ms() >= deadline)
            break;
        usleep(200000);
    }
    for (uint32_t i = 0; i < cf.nnodes; i++) {
        const struct node_st *n = &s.st[i];
        if (n->up)
            printf("node %u: %s, epoch %llu (members %llx, current %llx), ha %s, "
                   "suspicions %llu%s%s\n", n->id,
                   n->serving ? "serving" : "NOT serving", (unsigned long long)n->epoch,
                   (unsigned long long)n->members, (unsigned long long)n->current,
                   n->ha[0] ? n->ha : "-", (unsigned long long)n->suspicions,
                   n->reason[0] ? ", reason: " : "", n->reason);
        else
            printf("node %u: silent (no STATUS answer)\n", n->id);
    }
    result(r.ok_ns, "node set", "%s", r.ns);
    result(r.ok_prim, "one primary", "%s", r.prim);
    result(r.ok_rep, "replicas agree", "%s", r.rep);
    if (takeover)
        result(r.ok_take, "takeover", "%s", r.take);
    if (g_expect_balanced)
        result(r.ok_bal, "balanced", "%s", r.bal);
    if (g_expect_spread)
        result(r.ok_spread, "spread", "%s", r.spread);

    for (int i = 0; i < nn; i++) {
        struct journal m = {0};
        if (journal_read(noack[i], &m)) {
            result(false, "minority served nothing", "%s", nines_errdetail());
            continue;
        }
        /* nothing acknowledged, and the client was told so (a refusal with
         * a reason, not only silence) */
        result(m.acked == 0 && m.refused > 0, "minority served nothing",
               "%s: %zu requests, %zu acknowledged, %zu refused, %zu unknown%s%s", noack[i], m.n,
               m.acked, m.refused, m.unknown, m.refused ? "; first refusal: " : " — no refusal "
               "with a reason", m.first_refusal);
        free(m.v);
    }
    if (data)
        check_data(&s, &j, nclock_ms() + (uint64_t)(settle_ms > 2000 ? settle_ms : 2000));
    printf("drill_check: %s (%d passed, %d failed)\n", nfail ? "FAIL" : "PASS", npass, nfail);
    free(j.v);
    free(s.reps);
    if (have_dict)
        dict_free(&d);
    return nfail ? 1 : 0;
}
