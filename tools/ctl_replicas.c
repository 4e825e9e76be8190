/* ninesctl replicas: each fragment's roles in the installed node set and
 * its replicas compared.
 *   roles   dict_frag_roles_live(dictionary from DICT_GET, the node set's
 *           members, current and standby_only from STATUS) — the same
 *           function every node uses;
 *   digests KERN_DIGEST_CONF from every node (per replica: primary flag,
 *           rows, a digest over keys + records + state ids, next LSN).
 * The primary's and the standby's digests side by side, the redo lag (the
 * primary's next LSN minus the standby's), and a warning for any fragment
 * two nodes claim to be primary of (the drills' split-brain check), and
 * every replica being rebuilt or built by self-repair with its progress
 * (ReplicaDigest.ha, building, copy bytes, rows, elapsed, time left).
 * tools/README.md "ninesctl replicas" has the output and the JSON keys. */
#include "ctl.h"

#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST_TIMEOUT_MS 3000  /* connecting */
#define DIGEST_ANSWER_MS 30000  /* a node digests a large data set over many executor
                                 * turns (kernel/svc/README.md "Digests") */
#define REP_MAX 65536
#define CLAIMS_MAX 8

struct rep {
    uint32_t table, frag, node;
    bool primary;
    uint64_t rows, digest, next_lsn;
    /* rebuild / self-repair progress (kernel/svc/README.md "Rebuild") */
    uint32_t ha, source;
    bool building;
    uint64_t copy_bytes, copy_rows_done, copy_rows_total, elapsed_ms, eta_ms;
    uint64_t ckpt_age_ms;            /* + 1; 0: no checkpoint */
    uint64_t lag_ms;                 /* primary: its oldest unacknowledged record's wait */
};

/* enum ksvc_ha as ReplicaDigest.ha carries it */
static const char *ha_name(uint32_t ha)
{
    static const char *const names[] = {"?", "ACTIVE", "ALONE", "COPYING", "CATCHING-UP",
                                        "OFFLINE"};
    return ha < sizeof names / sizeof names[0] ? names[ha] : "?";
}

/* Being rebuilt (a returning node) or built (self-repair): not a replica yet. */
static bool in_build(const struct rep *x)
{
    return x->building || x->ha == 3 || x->ha == 4;
}

/* One fragment's line. */
struct frow {
    uint32_t table, frag;
    bool have_roles;                 /* in the dictionary: roles computed */
    struct dict_roles roles;
    uint32_t building;               /* the dictionary's building standby (0: none) */
    const struct rep *p, *s;         /* the primary's and the standby's digests */
    uint32_t claims[CLAIMS_MAX];     /* nodes whose digest says primary */
    int nclaims;
};

static int rep_cmp(const void *a, const void *b)
{
    const struct rep *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    if (x->frag != y->frag)
        return x->frag < y->frag ? -1 : 1;
    if (x->primary != y->primary)
        return x->primary ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

static int frow_cmp(const void *a, const void *b)
{
    const struct frow *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    return x->frag < y->frag ? -1 : x->frag > y->frag;
}

/* Collect one node's replica digests into reps[*n..]. */
static int ask_node(const struct nines_conf *c, const struct nines_node_conf *nc, uint32_t table,
                    struct rep *reps, size_t *n)
{
    struct net_client *cl;
    int rc = ctl_dial(c, nc, &cl, DIGEST_TIMEOUT_MS);
    if (rc)
        return rc;
    Nines__KernDigestReq req = NINES__KERN_DIGEST_REQ__INIT;
    req.table = table;
    rc = net_client_send(cl, NINES__MSG_TYPE__KERN_DIGEST_REQ, &req.base);
    struct net_msg_in in;
    while (rc == 0) {
        rc = net_client_recv(cl, &in, DIGEST_ANSWER_MS);
        if (rc == 0 && in.type == NINES__MSG_TYPE__KERN_DIGEST_CONF)
            break;
    }
    if (rc == 0) {
        Nines__KernDigestConf *conf = nines__kern_digest_conf__unpack(NULL, in.body_len, in.body);
        if (!conf) {
            rc = nines_err(NINES_EPROTO, "node %u sent an undecodable KERN_DIGEST_CONF", nc->id);
        } else if (conf->error < 0) { /* refused: too many digests in progress there */
            rc = nines_err(conf->error, "node %u computed no digest: %s", nc->id, conf->detail);
            nines__kern_digest_conf__free_unpacked(conf, NULL);
        } else {
            for (size_t i = 0; i < conf->n_replicas && *n < REP_MAX; i++) {
                const Nines__ReplicaDigest *d = conf->replicas[i];
                reps[(*n)++] = (struct rep){d->table,          d->frag,
                                            nc->id,            d->primary,
                                            d->rows,           d->digest,
                                            d->next_lsn,       d->ha,
                                            d->source,         d->building,
                                            d->copy_bytes,     d->copy_rows_done,
                                            d->copy_rows_total, d->elapsed_ms,
                                            d->eta_ms,         d->ckpt_age_ms, d->lag_ms};
            }
            nines__kern_digest_conf__free_unpacked(conf, NULL);
        }
    }
    net_client_close(cl);
    return rc;
}

/* The digests of (table, frag): [*lo, *hi) in the sorted reps. */
static void rep_range(const struct rep *reps, size_t n, uint32_t table, uint32_t frag,
                      size_t *lo, size_t *hi)
{
    size_t a = 0, b = n;
    while (a < b) { /* first >= (table, frag) */
        size_t m = a + (b - a) / 2;
        if (reps[m].table < table || (reps[m].table == table && reps[m].frag < frag))
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    while (a < n && reps[a].table == table && reps[a].frag == frag)
        a++;
    *hi = a;
}

static const struct rep *rep_of(const struct rep *reps, size_t lo, size_t hi, uint32_t node)
{
    for (size_t k = lo; k < hi; k++)
        if (reps[k].node == node)
            return &reps[k];
    return NULL;
}

/* Digests of the row's roles (or, without roles, by the replicas' own
 * primary flags as before the node set existed) and the primary claims. */
static void fill_row(struct frow *r, const struct rep *reps, size_t n)
{
    size_t lo, hi;
    rep_range(reps, n, r->table, r->frag, &lo, &hi);
    for (size_t k = lo; k < hi; k++) {
        if (reps[k].primary && r->nclaims < CLAIMS_MAX)
            r->claims[r->nclaims++] = reps[k].node;
    }
    if (r->have_roles) {
        r->p = r->roles.primary ? rep_of(reps, lo, hi, r->roles.primary) : NULL;
        r->s = r->roles.standby ? rep_of(reps, lo, hi, r->roles.standby) : NULL;
        return;
    }
    for (size_t k = lo; k < hi; k++) {
        if (reps[k].primary && !r->p)
            r->p = &reps[k];
        else if (!reps[k].primary && !r->s)
            r->s = &reps[k];
    }
}

static const char *digest_state(const struct frow *r)
{
    if (!r->p && !r->s)
        return "NO-REPLICA";
    if (!r->p || !r->s)
        return "ONE-REPLICA";
    return r->p->rows == r->s->rows && r->p->digest == r->s->digest ? "EQUAL" : "DIFFERENT";
}

static const char *role_state(const struct frow *r)
{
    return r->have_roles ? dict_frag_state_name(r->roles.state) : "unknown";
}

static void json_rep(const char *key, const struct rep *x)
{
    printf(",\"%s\":{\"node\":%u,\"rows\":%llu,\"digest\":\"%016llx\",\"next_lsn\":%llu,"
           "\"claims_primary\":%s,\"ha\":\"%s\",\"ckpt_age_ms\":", key, x->node,
           (unsigned long long)x->rows, (unsigned long long)x->digest,
           (unsigned long long)x->next_lsn, x->primary ? "true" : "false",
           ha_name(x->ha));
    if (x->ckpt_age_ms)
        printf("%llu}", (unsigned long long)(x->ckpt_age_ms - 1));
    else
        printf("null}");
}

static void print_row_json(const struct frow *r, bool first)
{
    printf("%s{\"table\":%u,\"frag\":%u,\"state\":\"%s\"", first ? "" : ",", r->table, r->frag,
           digest_state(r));
    if (r->p)
        json_rep("primary", r->p);
    if (r->s)
        json_rep("standby", r->s);
    printf(",\"role_state\":\"%s\"", role_state(r));
    if (r->have_roles)
        printf(",\"roles\":{\"primary\":%u,\"standby\":%u,\"logcopy\":%u}", r->roles.primary,
               r->roles.standby, r->roles.logcopy);
    else
        printf(",\"roles\":null");
    if (r->building)
        printf(",\"building_on\":%u", r->building);
    if (r->p && r->s)
        printf(",\"lag\":%lld,\"lag_ms\":%llu", (long long)(r->p->next_lsn - r->s->next_lsn),
               (unsigned long long)r->p->lag_ms);
    else
        printf(",\"lag\":null,\"lag_ms\":null");
    printf(",\"digests_equal\":%s,\"primary_claims\":[",
           r->p && r->s && r->p->rows == r->s->rows && r->p->digest == r->s->digest ? "true"
                                                                                     : "false");
    for (int k = 0; k < r->nclaims; k++)
        printf("%s%u", k ? "," : "", r->claims[k]);
    printf("]}");
}

static void print_row_text(const struct frow *r)
{
    char lag[48] = "-", roles[64];
    if (r->p && r->s && r->p->lag_ms)
        snprintf(lag, sizeof lag, "%lld/%llums", (long long)(r->p->next_lsn - r->s->next_lsn),
                 (unsigned long long)r->p->lag_ms);
    else if (r->p && r->s)
        snprintf(lag, sizeof lag, "%lld", (long long)(r->p->next_lsn - r->s->next_lsn));
    if (r->have_roles && r->roles.state == DICT_FRAG_ALONE && r->building &&
        r->roles.logcopy == r->building)
        snprintf(roles, sizeof roles, "%s (building on %u)", role_state(r), r->building);
    else if (r->have_roles && r->roles.state == DICT_FRAG_ALONE && r->roles.logcopy)
        snprintf(roles, sizeof roles, "%s (log copy %u)", role_state(r), r->roles.logcopy);
    else if (r->have_roles && r->roles.state == DICT_FRAG_ALONE)
        snprintf(roles, sizeof roles, "%s (no log copy)", role_state(r));
    else
        snprintf(roles, sizeof roles, "%s", role_state(r));
    uint32_t pnode = r->p ? r->p->node : (r->have_roles ? r->roles.primary : 0);
    uint32_t snode = r->s ? r->s->node : (r->have_roles ? r->roles.standby : 0);
    char pn[16] = "-", sn[16] = "-", pr[24] = "-", sr[24] = "-", pd[24] = "-", sd[24] = "-";
    if (pnode)
        snprintf(pn, sizeof pn, "%u", pnode);
    if (snode)
        snprintf(sn, sizeof sn, "%u", snode);
    if (r->p) {
        snprintf(pr, sizeof pr, "%llu", (unsigned long long)r->p->rows);
        snprintf(pd, sizeof pd, "%016llx", (unsigned long long)r->p->digest);
    }
    if (r->s) {
        snprintf(sr, sizeof sr, "%llu", (unsigned long long)r->s->rows);
        snprintf(sd, sizeof sd, "%016llx", (unsigned long long)r->s->digest);
    }
    printf("%-6u %-5u %-8s %-10s %-18s %-8s %-10s %-18s %-12s %-6s %s\n", r->table, r->frag, pn,
           pr, pd, sn, sr, sd, digest_state(r), lag, roles);
}

/* Notes and warnings about a row's primary claims (text: stdout). */
static void print_claims(const struct frow *r)
{
    if (r->nclaims >= 2) {
        printf("WARNING: table %u fragment %u: %d nodes claim the primary role:", r->table,
               r->frag, r->nclaims);
        for (int k = 0; k < r->nclaims; k++)
            printf(" %u", r->claims[k]);
        printf("\n");
        return;
    }
    if (!r->have_roles || !r->roles.primary)
        return;
    if (r->nclaims == 1 && r->claims[0] != r->roles.primary)
        printf("note: table %u fragment %u: node %u claims the primary role, the node set names "
               "node %u\n", r->table, r->frag, r->claims[0], r->roles.primary);
    else if (r->nclaims == 0 && r->p)
        printf("note: table %u fragment %u: node %u is primary by the node set but does not "
               "claim it yet (takeover not finished)\n", r->table, r->frag, r->roles.primary);
}

int ctl_cmd_replicas(const struct nines_conf *c, int argc, char **argv)
{
    bool json = false;
    uint32_t table = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--table") && i + 1 < argc)
            table = (uint32_t)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "ninesctl replicas: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    /* the node set the nodes report, and the dictionary */
    static struct ctl_node_view views[NINES_MAX_NODES];
    struct ctl_nodeset ns;
    ctl_views_query(c, views);
    ctl_nodeset_of(c, views, &ns);
    ctl_views_free(c, views);
    dict_liveset current = ns.installed ? ns.current : ns.answered;
    /* without a reported node set: every node that answered, current */
    const struct dict_live live = {.members = ns.installed ? ns.members : ns.answered,
                                   .current = current,
                                   .standby_only = ns.installed ? ns.standby_only : 0,
                                   .since = ns.since};
    struct ctl_dict g;
    memset(&g, 0, sizeof g);
    bool have_dict = current && ctl_get(c, 0, current, "replicas", &g) == 0;
    struct rep *reps = calloc(REP_MAX, sizeof *reps);
    size_t cap = 0;
    if (have_dict)
        for (uint32_t i = 0; i < g.d.ntables; i++)
            cap += g.d.tables[i]->nfrags;
    struct frow *rows = calloc(cap + REP_MAX, sizeof *rows);
    if (!reps || !rows) {
        fprintf(stderr, "ninesctl replicas: out of memory\n");
        free(reps);
        free(rows);
        if (have_dict)
            dict_free(&g.d);
        return 1;
    }
    size_t n = 0;
    bool all_answered = true;
    for (uint32_t i = 0; i < c->nnodes; i++)
        if (ask_node(c, &c->nodes[i], table, reps, &n)) {
            fprintf(stderr, "ninesctl replicas: node %u: %s\n", c->nodes[i].id, nines_errdetail());
            all_answered = false;
        }
    qsort(reps, n, sizeof *reps, rep_cmp);
    /* rows: every fragment of the dictionary, then any fragment only the
     * digests know (a table the dictionary copy asked does not have yet) */
    size_t nrows = 0;
    for (uint32_t i = 0; have_dict && i < g.d.ntables; i++) {
        const struct dict_table *t = g.d.tables[i];
        if (table && t->id != table)
            continue;
        for (uint32_t f = 0; f < t->nfrags; f++) {
            struct frow *r = &rows[nrows++];
            r->table = t->id;
            r->frag = f;
            r->have_roles = dict_frag_roles_live(&g.d, t, f, &live, &r->roles) == 0;
            r->building = t->frags[f].standby_state == DICT_REP_BUILDING ? t->frags[f].standby
                                                                         : 0;
        }
    }
    size_t known = nrows;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && reps[j].table == reps[i].table && reps[j].frag == reps[i].frag)
            j++;
        struct frow key = {.table = reps[i].table, .frag = reps[i].frag};
        if (!bsearch(&key, rows, known, sizeof *rows, frow_cmp))
            rows[nrows++] = key;
        i = j;
    }
    qsort(rows, nrows, sizeof *rows, frow_cmp);
    for (size_t i = 0; i < nrows; i++)
        fill_row(&rows[i], reps, n);

    size_t equal = 0, single = 0, none = 0, two = 0;
    char cur[256], mem[256], sb[800], sbs[800];
    if (json) {
        printf("{\"node_set\":{\"installed\":%s", ns.installed ? "true" : "false");
        if (ns.installed)
            printf(",\"epoch\":%llu", (unsigned long long)ns.epoch);
        printf(",\"current\":[%s],\"members\":[%s],\"standby_only\":[%s],\"standby_since\":[%s]},"
               "\"dictionary\":", ctl_set_str(current, true, cur, sizeof cur),
               ctl_set_str(live.members, true, mem, sizeof mem),
               ctl_set_str(live.standby_only, true, sb, sizeof sb),
               ctl_since_json(live.standby_only, ns.since, sbs, sizeof sbs));
        if (have_dict)
            printf("{\"node\":%u,\"version\":%llu}", g.node, (unsigned long long)g.d.version);
        else
            printf("null");
        printf(",\"fragments\":[");
    } else {
        if (ns.installed) {
            printf("roles: node set epoch %llu, current %s", (unsigned long long)ns.epoch,
                   ctl_set_str(current, false, cur, sizeof cur));
            if (ns.members & ~current)
                printf(", members not current %s",
                       ctl_set_str(ns.members & ~current, false, mem, sizeof mem));
            if (ns.standby_only)
                printf(", standby-only %s",
                       ctl_standby_str(ns.standby_only, ns.since, sb, sizeof sb));
        } else
            printf("roles: no node set installed; computed over the nodes that answered (%s)",
                   ctl_set_str(current, false, cur, sizeof cur));
        if (have_dict)
            printf("; dictionary version %llu from node %u\n", (unsigned long long)g.d.version,
                   g.node);
        else
            printf("; no dictionary (pairs by the replicas' own primary flags)\n");
        printf("%-6s %-5s %-8s %-10s %-18s %-8s %-10s %-18s %-12s %-6s %s\n", "TABLE", "FRAG",
               "PRIMARY", "ROWS", "DIGEST", "STANDBY", "ROWS", "DIGEST", "STATE", "LAG", "ROLES");
    }
    for (size_t i = 0; i < nrows; i++) {
        const struct frow *r = &rows[i];
        const char *st = digest_state(r);
        if (!strcmp(st, "EQUAL"))
            equal++;
        else if (!strcmp(st, "ONE-REPLICA"))
            single++;
        else if (!strcmp(st, "NO-REPLICA"))
            none++;
        if (r->nclaims >= 2)
            two++;
        if (json)
            print_row_json(r, i == 0);
        else
            print_row_text(r);
    }
    if (!json)
        for (size_t i = 0; i < nrows; i++)
            print_claims(&rows[i]);
    /* replicas being rebuilt or built: progress, and the time left of the
     * slowest (they copy in parallel) */
    size_t nb = 0;
    uint64_t b_bytes = 0, b_rows = 0, b_total = 0, b_eta = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rep *x = &reps[i];
        if (!in_build(x))
            continue;
        if (!json) {
            if (!nb)
                printf("%-6s %-5s %-5s %-11s %-8s %-6s %-12s %-21s %-10s %s\n", "TABLE", "FRAG",
                       "NODE", "HA", "BUILDING", "FROM", "COPY-BYTES", "COPY-ROWS", "ELAPSED",
                       "LEFT");
            char rstr[48];
            snprintf(rstr, sizeof rstr, "%llu/%llu", (unsigned long long)x->copy_rows_done,
                     (unsigned long long)x->copy_rows_total);
            printf("%-6u %-5u %-5u %-11s %-8s %-6u %-12llu %-21s %-10llu %llu ms\n", x->table,
                   x->frag, x->node, ha_name(x->ha), x->building ? "yes" : "no", x->source,
                   (unsigned long long)x->copy_bytes, rstr, (unsigned long long)x->elapsed_ms,
                   (unsigned long long)x->eta_ms);
        }
        nb++;
        b_bytes += x->copy_bytes;
        b_rows += x->copy_rows_done;
        b_total += x->copy_rows_total;
        b_eta = x->eta_ms > b_eta ? x->eta_ms : b_eta;
    }
    if (!json && nb)
        printf("%zu replicas being rebuilt or built: %llu copy bytes, %llu of %llu rows copied, "
               "about %llu ms left\n", nb, (unsigned long long)b_bytes,
               (unsigned long long)b_rows, (unsigned long long)b_total,
               (unsigned long long)b_eta);
    bool ok = all_answered && nrows > 0 && equal == nrows && two == 0;
    if (json)
    if (json) {
        printf("],\"building\":[");
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const struct rep *x = &reps[i];
            if (!in_build(x))
                continue;
            printf("%s{\"table\":%u,\"frag\":%u,\"node\":%u,\"ha\":\"%s\",\"building\":%s,"
                   "\"source\":%u,\"copy_bytes\":%llu,\"copy_rows_done\":%llu,"
                   "\"copy_rows_total\":%llu,\"elapsed_ms\":%llu,\"eta_ms\":%llu}",
                   k++ ? "," : "", x->table, x->frag, x->node, ha_name(x->ha),
                   x->building ? "true" : "false", x->source,
                   (unsigned long long)x->copy_bytes, (unsigned long long)x->copy_rows_done,
                   (unsigned long long)x->copy_rows_total, (unsigned long long)x->elapsed_ms,
                   (unsigned long long)x->eta_ms);
        }
        printf("],\"building_total\":{\"replicas\":%zu,\"copy_bytes\":%llu,"
               "\"copy_rows_done\":%llu,\"copy_rows_total\":%llu,\"eta_ms\":%llu}", nb,
               (unsigned long long)b_bytes, (unsigned long long)b_rows,
               (unsigned long long)b_total, (unsigned long long)b_eta);
    }
    if (json)
        printf(",\"fragments_total\":%zu,\"equal\":%zu,\"one_replica\":%zu,\"no_replica\":%zu,"
               "\"two_primaries\":%zu,\"all_answered\":%s,\"ok\":%s}\n",
               nrows, equal, single, none, two, all_answered ? "true" : "false",
               ok ? "true" : "false");
    else {
        char extra[96] = "";
        if (none)
            snprintf(extra, sizeof extra, ", %zu with no replica answering", none);
        printf("%zu fragments: %zu equal, %zu with one replica, %zu different%s%s%s\n", nrows,
               equal, single, nrows - equal - single - none, extra,
               two ? ", SOME WITH TWO PRIMARIES" : "",
               all_answered ? "" : " (some nodes did not answer)");
    }
    free(reps);
    free(rows);
    if (have_dict)
        dict_free(&g.d);
    return ok ? 0 : 1;
}
