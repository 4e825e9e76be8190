/* Replica placement: minimum intersecting sets declustering (MISD), the
 * circular scheme, effective primaries, placement statistics.
 * Algorithm and proof sketch: dict/README.md "Placement". */
#include "dict.h"
#include "dict_int.h"

#include "nassert.h"
#include "nines/errors.h"

#include <string.h>

int dict_nodes_validate(const struct dict_node *nodes, uint32_t n)
{
    if (n == 0 || nodes == NULL)
        return nines_err(NINES_EINVAL, "no nodes given");
    if (n > DICT_MAX_NODES)
        return nines_err(NINES_EINVAL, "%u nodes, more than the maximum %d", n, DICT_MAX_NODES);
    dict_liveset seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (nodes[i].id == 0 || nodes[i].id > DICT_MAX_NODES)
            return nines_err(NINES_EINVAL, "node id %u outside 1..%d", nodes[i].id,
                             DICT_MAX_NODES);
        if (nodes[i].site >= DICT_NSITES)
            return nines_err(NINES_EINVAL, "node %u: site %u must be 0 or 1", nodes[i].id,
                             nodes[i].site);
        if (seen & DICT_LIVE(nodes[i].id))
            return nines_err(NINES_EINVAL, "node id %u is listed twice", nodes[i].id);
        seen |= DICT_LIVE(nodes[i].id);
    }
    return 0;
}

void dict_nodes_sorted(const struct dict_node *nodes, uint32_t n, struct dict_node *out,
                       uint32_t nsite[DICT_NSITES])
{
    N_ASSERT(n <= DICT_MAX_NODES);
    memcpy(out, nodes, n * sizeof *out);
    for (uint32_t i = 1; i < n; i++) {
        struct dict_node x = out[i];
        uint32_t j = i;
        while (j > 0 && (out[j - 1].site > x.site ||
                         (out[j - 1].site == x.site && out[j - 1].id > x.id))) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = x;
    }
    nsite[0] = nsite[1] = 0;
    for (uint32_t i = 0; i < n; i++)
        nsite[out[i].site]++;
}

uint32_t dict_place_min_pair(uint32_t p, uint32_t q, uint32_t nfrags)
{
    if (p == 0 || q == 0)
        return 0;
    return (nfrags + p * q - 1) / (p * q);
}

/* Ring of all nodes, sites interleaved as evenly as possible: position k
 * holds a site-0 node when ceil((k+1)p/N) > ceil(kp/N). `sorted` has the
 * p site-0 nodes first. ring[] gets indices into `sorted`. */
static void ring_order(uint32_t p, uint32_t q, uint32_t *ring)
{
    uint32_t n = p + q, ia = 0, ib = 0;
    for (uint32_t k = 0; k < n; k++) {
        bool a = (k + 1) * p / n + ((k + 1) * p % n != 0) > k * p / n + (k * p % n != 0);
        if (a && ia < p)
            ring[k] = ia++;
        else
            ring[k] = p + ib++;
    }
    N_ASSERT(ia == p && ib == q);
}

static uint32_t gcd32(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The counts of the MISD construction. dab[a][b]: fragments with primary
 * on site-0 node a and standby on site-1 node b; dba[b][a] the reverse. */
struct misd_counts {
    uint16_t dab[DICT_MAX_NODES][DICT_MAX_NODES];
    uint16_t dba[DICT_MAX_NODES][DICT_MAX_NODES];
};

static void misd_counts(uint32_t p, uint32_t q, uint32_t nfrags, struct misd_counts *mc)
{
    uint32_t n = p + q, u = nfrags / n, v = nfrags % n;
    /* v nodes get u + 1 primaries: split v between the sites in
     * proportion to their sizes, within what each site can take. */
    uint32_t va = (v * p + n / 2) / n;
    if (va > p)
        va = p;
    if (v - va > q)
        va = v - q;
    uint32_t vb = v - va;
    uint32_t alpha = u / q, h = u % q, beta = u / p, h2 = u % p;
    uint32_t nx = p * h + va;  /* cells with dab = alpha + 1 */
    uint32_t ny = q * h2 + vb; /* cells with dba = beta + 1 */
    uint32_t pq = p * q, l = p / gcd32(p, q) * q;
    N_ASSERT(nx <= pq && ny <= pq);
    for (uint32_t a = 0; a < p; a++)
        for (uint32_t b = 0; b < q; b++) {
            mc->dab[a][b] = (uint16_t)alpha;
            mc->dba[b][a] = (uint16_t)beta;
        }
    /* The cell sequence t -> (t mod p, (t + t/l) mod q) visits every cell
     * once; its prefixes and suffixes are balanced over rows and columns.
     * Site 0's extra units take a prefix, site 1's a suffix, so they meet
     * in one cell only when there are more than p*q of them together. */
    for (uint32_t t = 0; t < nx; t++)
        mc->dab[t % p][(t + t / l) % q]++;
    for (uint32_t t = pq - ny; t < pq; t++)
        mc->dba[(t + t / l) % q][t % p]++;
}

/* Emit fragments from per-direction counts: the nodes take turns in ring
 * order; each node walks the other site cyclically from its own position
 * so its successive primaries have successive standbys. */
static void emit(const struct dict_node *sorted, uint32_t p, uint32_t q, uint32_t nfrags,
                 struct misd_counts *mc, struct dict_frag *out)
{
    uint32_t n = p + q, ring[DICT_MAX_NODES], rem[DICT_MAX_NODES], cur[DICT_MAX_NODES];
    ring_order(p, q, ring);
    for (uint32_t x = 0; x < n; x++) {
        rem[x] = 0;
        uint32_t o = x < p ? q : p, i = x < p ? x : x - p;
        for (uint32_t y = 0; y < o; y++)
            rem[x] += x < p ? mc->dab[i][y] : mc->dba[i][y];
        cur[x] = i % o;
    }
    uint32_t f = 0;
    while (f < nfrags) {
        uint32_t before = f;
        for (uint32_t k = 0; k < n && f < nfrags; k++) {
            uint32_t x = ring[k];
            if (rem[x] == 0)
                continue;
            uint32_t o = x < p ? q : p, i = x < p ? x : x - p, y = cur[x];
            uint16_t *row = x < p ? mc->dab[i] : mc->dba[i];
            while (row[y] == 0)
                y = (y + 1) % o;
            row[y]--;
            rem[x]--;
            cur[x] = (y + 1) % o;
            out[f].primary = sorted[x].id;
            out[f].standby = sorted[x < p ? p + y : y].id;
            f++;
        }
        N_ASSERT(f > before);
    }
}

static int place_circular(const struct dict_node *sorted, uint32_t p, uint32_t q,
                          uint32_t nfrags, uint32_t replicas, struct dict_frag *out)
{
    uint32_t n = p + q, ring[DICT_MAX_NODES];
    ring_order(p, q, ring);
    for (uint32_t f = 0; f < nfrags; f++) {
        uint32_t k = f % n, x = ring[k];
        out[f].primary = sorted[x].id;
        out[f].standby = 0;
        if (replicas < 2)
            continue;
        /* next node in the ring at the other site (skip same-site ones) */
        uint32_t s = 1;
        while (sorted[ring[(k + s) % n]].site == sorted[x].site)
            s++;
        out[f].standby = sorted[ring[(k + s) % n]].id;
    }
    return 0;
}

int dict_place(const struct dict_node *nodes, uint32_t n, uint32_t nfrags, uint32_t replicas,
               uint32_t scheme, struct dict_frag *out)
{
    int rc = dict_nodes_validate(nodes, n);
    if (rc < 0)
        return rc;
    if (nfrags == 0 || nfrags > DICT_MAX_FRAGS)
        return nines_err(NINES_EINVAL, "fragment count %u outside 1..%d", nfrags,
                         DICT_MAX_FRAGS);
    if (replicas == 0 || replicas > DICT_NSITES)
        return nines_err(NINES_EINVAL, "%u replicas: must be 1 or %d (one per site)", replicas,
                         DICT_NSITES);
    struct dict_node sorted[DICT_MAX_NODES];
    uint32_t ns[DICT_NSITES];
    dict_nodes_sorted(nodes, n, sorted, ns);
    if (replicas == 2 && (ns[0] == 0 || ns[1] == 0))
        return nines_err(NINES_EINVAL, "2 replicas need nodes at both sites, site %d has none",
                         ns[0] == 0 ? 0 : 1);
    switch (scheme) {
    case DICT_PLACE_MISD:
        if (replicas == 2) {
            static _Thread_local struct misd_counts mc;
            misd_counts(ns[0], ns[1], nfrags, &mc);
            emit(sorted, ns[0], ns[1], nfrags, &mc, out);
            return 0;
        }
        /* one replica: primaries in ring order, nothing else to place */
        return place_circular(sorted, ns[0], ns[1], nfrags, 1, out);
    case DICT_PLACE_CIRCULAR:
        return place_circular(sorted, ns[0], ns[1], nfrags, replicas, out);
    default:
        return nines_err(NINES_EINVAL, "unknown placement scheme %u", scheme);
    }
}

int dict_place_stats(const struct dict_node *nodes, uint32_t n, const struct dict_frag *frags,
                     uint32_t nfrags, struct dict_place_stats *st)
{
    int rc = dict_nodes_validate(nodes, n);
    if (rc < 0)
        return rc;
    if (nfrags > DICT_MAX_FRAGS)
        return nines_err(NINES_EINVAL, "fragment count %u above the maximum %d", nfrags,
                         DICT_MAX_FRAGS);
    memset(st, 0, sizeof *st);
    st->nnodes = n;
    dict_nodes_sorted(nodes, n, st->node, st->nsite);
    int8_t idx[DICT_MAX_NODES + 1];
    memset(idx, -1, sizeof idx);
    for (uint32_t i = 0; i < n; i++)
        idx[st->node[i].id] = (int8_t)i;
    for (uint32_t f = 0; f < nfrags; f++) {
        uint32_t pr = frags[f].primary, sb = frags[f].standby;
        if (pr == 0 || pr > DICT_MAX_NODES || idx[pr] < 0)
            return nines_err(NINES_EINVAL, "fragment %u: primary node %u is not in the node list",
                             f, pr);
        st->primaries[idx[pr]]++;
        if (sb == 0)
            continue;
        if (sb > DICT_MAX_NODES || idx[sb] < 0)
            return nines_err(NINES_EINVAL, "fragment %u: standby node %u is not in the node list",
                             f, sb);
        st->standbys[idx[sb]]++;
        st->dir[idx[pr]][idx[sb]]++;
        if (st->node[idx[pr]].site == st->node[idx[sb]].site)
            st->same_site++;
    }
    uint32_t p = st->nsite[0];
    for (uint32_t i = 0; i < p; i++)
        for (uint32_t j = p; j < n; j++) {
            uint32_t c = (uint32_t)st->dir[i][j] + st->dir[j][i];
            if (c > st->max_pair)
                st->max_pair = c;
        }
    st->min_pair_bound = dict_place_min_pair(p, st->nsite[1], nfrags);
    return 0;
}

int dict_effective_primary(const struct dict_table *t, uint32_t frag, dict_liveset live,
                           uint32_t *node_out)
{
    if (frag >= t->nfrags)
        return nines_err(NINES_EINVAL, "table '%s' has %u fragments, no fragment %u",
                         t->def.name, t->nfrags, frag);
    const struct dict_frag *fr = &t->frags[frag];
    if (live & DICT_LIVE(fr->primary)) {
        *node_out = fr->primary;
        return 0;
    }
    if (fr->standby != 0 && fr->standby_state == DICT_REP_READY &&
        (live & DICT_LIVE(fr->standby))) {
        *node_out = fr->standby;
        return 0;
    }
    if (fr->standby != 0 && fr->standby_state == DICT_REP_BUILDING)
        return nines_err(NINES_EUNREACHABLE,
                         "table '%s' fragment %u unavailable: primary node %u is down and the "
                         "replica on node %u is still being built",
                         t->def.name, frag, fr->primary, fr->standby);
    if (fr->standby == 0)
        return nines_err(NINES_EUNREACHABLE,
                         "table '%s' fragment %u unavailable: its only replica, on node %u, "
                         "is down",
                         t->def.name, frag, fr->primary);
    return nines_err(NINES_EUNREACHABLE,
                     "table '%s' fragment %u unavailable: primary node %u and hot standby "
                     "node %u are both down",
                     t->def.name, frag, fr->primary, fr->standby);
}

static int node_site(const struct dict *d, uint32_t id)
{
    for (uint32_t i = 0; i < d->nnodes; i++)
        if (d->nodes[i].id == id)
            return (int)d->nodes[i].site;
    return -1;
}

int dict_frag_roles(const struct dict *d, const struct dict_table *t, uint32_t frag,
                    dict_liveset current, struct dict_roles *out)
{
    const struct dict_live live = {.members = current, .current = current, .standby_only = 0};
    return dict_frag_roles_live(d, t, frag, &live, out);
}

/* The roles of fragment `frag` (of table t) placed as *fr. */
static void roles_of(const struct dict *d, const struct dict_table *t, uint32_t frag,
                     const struct dict_frag *fr, const struct dict_live *live,
                     struct dict_roles *out)
{
    dict_liveset current = live->current;
    bool building = fr->standby && fr->standby_state == DICT_REP_BUILDING;
    bool p = fr->primary && (current & DICT_LIVE(fr->primary)) != 0;
    /* a replica being built is never current, whatever its node is */
    bool s = fr->standby && !building && (current & DICT_LIVE(fr->standby)) != 0;
    memset(out, 0, sizeof *out);
    if (!fr->standby) {
        out->primary = p ? fr->primary : 0;
        out->state = p ? DICT_FRAG_SINGLE : DICT_FRAG_DOWN;
        return;
    }
    if (p && s) {
        /* a node that came back holds no primary until takeback */
        bool swap = (live->standby_only & DICT_LIVE(fr->primary)) != 0;
        if (swap && (live->standby_only & DICT_LIVE(fr->standby)))
            swap = live->since && live->since[fr->standby] < live->since[fr->primary];
        out->primary = swap ? fr->standby : fr->primary;
        out->standby = swap ? fr->primary : fr->standby;
        out->state = DICT_FRAG_BOTH;
        return;
    }
    if (!p && !s) {
        out->state = DICT_FRAG_DOWN;
        return;
    }
    out->primary = p ? fr->primary : fr->standby;
    out->state = DICT_FRAG_ALONE;
    /* the log copy: the other replica's node while it is a member being
     * rebuilt (not current), or being built (any member: current or not);
     * else the current nodes at the other site, ids ascending, one picked
     * by (table, fragment) */
    uint32_t other = p ? fr->standby : fr->primary;
    if ((live->members & DICT_LIVE(other)) && (building || !(current & DICT_LIVE(other)))) {
        out->logcopy = other;
        return;
    }
    int psite = node_site(d, out->primary);
    uint32_t cand[DICT_MAX_NODES], n = 0;
    for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
        if ((current & DICT_LIVE(id)) && node_site(d, id) >= 0 && node_site(d, id) != psite)
            cand[n++] = id;
    if (n)
        out->logcopy = cand[(t->id * 31u + frag) % n];
}

int dict_frag_roles_live(const struct dict *d, const struct dict_table *t, uint32_t frag,
                         const struct dict_live *live, struct dict_roles *out)
{
    if (frag >= t->nfrags)
        return nines_err(NINES_EINVAL, "table '%s' has %u fragments, no fragment %u",
                         t->def.name, t->nfrags, frag);
    roles_of(d, t, frag, &t->frags[frag], live, out);
    return 0;
}

int dict_frag_roles_built(const struct dict *d, const struct dict_table *t, uint32_t frag,
                          uint32_t node, const struct dict_live *live, struct dict_roles *out)
{
    if (frag >= t->nfrags)
        return nines_err(NINES_EINVAL, "table '%s' has %u fragments, no fragment %u",
                         t->def.name, t->nfrags, frag);
    struct dict_frag fr = t->frags[frag];
    if (!node || fr.standby != node || fr.standby_state != DICT_REP_BUILDING)
        return nines_err(NINES_ENOTFOUND, "table '%s' fragment %u: node %u holds no replica of "
                         "it being built (primary %u, standby %u, %s)", t->def.name, frag, node,
                         fr.primary, fr.standby, dict_rep_state_name(fr.standby_state));
    fr.standby_state = DICT_REP_READY;
    roles_of(d, t, frag, &fr, live, out);
    return 0;
}

const char *dict_rep_state_name(uint32_t st)
{
    switch (st) {
    case DICT_REP_READY:
        return "ready";
    case DICT_REP_BUILDING:
        return "building";
    default:
        return "?";
    }
}

const char *dict_frag_state_name(enum dict_frag_state st)
{
    switch (st) {
    case DICT_FRAG_BOTH:
        return "both";
    case DICT_FRAG_ALONE:
        return "primary-alone";
    case DICT_FRAG_SINGLE:
        return "single";
    case DICT_FRAG_DOWN:
        return "down";
    default:
        return "?";
    }
}
