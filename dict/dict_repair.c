/* Self-repair placement: the replicas of a node that stayed away move to
 * other nodes of its site as BUILDING standbys, and a built one is marked
 * READY. Rules and invariants: dict/README.md "Building replicas",
 * "Self-repair placement". */
#include "dict.h"
#include "dict_int.h"

#include "nassert.h"
#include "nines/errors.h"

#include <string.h>

static int site_of(const struct dict *d, uint32_t id)
{
    for (uint32_t i = 0; i < d->nnodes; i++)
        if (d->nodes[i].id == id)
            return (int)d->nodes[i].site;
    return -1;
}

uint32_t dict_node_replicas(const struct dict *d, uint32_t id)
{
    uint32_t n = 0;
    for (uint32_t ti = 0; ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++)
            n += (t->frags[f].primary == id) + (id && t->frags[f].standby == id);
    }
    return n;
}

/* Replicas of node id in table t (any slot, any state). */
static uint32_t table_replicas(const struct dict_table *t, uint32_t id)
{
    uint32_t n = 0;
    for (uint32_t f = 0; f < t->nfrags; f++)
        n += (t->frags[f].primary == id) + (t->frags[f].standby == id);
    return n;
}

/* Fragments of table t with replicas on both a and b. */
static uint32_t table_shared(const struct dict_table *t, uint32_t a, uint32_t b)
{
    uint32_t n = 0;
    for (uint32_t f = 0; f < t->nfrags; f++) {
        const struct dict_frag *fr = &t->frags[f];
        n += (fr->primary == a && fr->standby == b) || (fr->primary == b && fr->standby == a);
    }
    return n;
}

int dict_repair_node(struct dict *d, uint32_t dead, dict_liveset eligible,
                     struct dict_repair_result *out)
{
    struct dict_repair_result res;
    memset(&res, 0, sizeof res);
    int dsite = site_of(d, dead);
    if (dsite < 0)
        return nines_err(NINES_EINVAL, "node %u is not in the dictionary's node list", dead);
    eligible &= ~DICT_LIVE(dead);
    /* the candidates: the dead node's site-mates that may take a replica */
    uint32_t cand[DICT_MAX_NODES], nc = 0;
    for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
        if ((eligible & DICT_LIVE(id)) && site_of(d, id) == dsite)
            cand[nc++] = id;
    /* every node's replicas over all tables, kept up to date as we move */
    uint32_t total[DICT_MAX_NODES + 1];
    memset(total, 0, sizeof total);
    for (uint32_t i = 0; i < nc; i++)
        total[cand[i]] = dict_node_replicas(d, cand[i]);
    uint32_t held = 0;
    for (uint32_t ti = 0; ti < d->ntables; ti++) {
        struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++) {
            struct dict_frag *fr = &t->frags[f];
            if (fr->primary != dead && fr->standby != dead)
                continue;
            held++;
            uint32_t other = fr->primary == dead ? fr->standby : fr->primary;
            /* the replica copied from: another node, current, holding data */
            bool source = other != 0 && (eligible & DICT_LIVE(other)) &&
                          !(fr->primary == dead && fr->standby_state == DICT_REP_BUILDING);
            if (!source) {
                res.no_source++;
                continue;
            }
            uint32_t best = 0, bt = 0, ba = 0, bs = 0;
            for (uint32_t i = 0; i < nc; i++) {
                uint32_t c = cand[i];
                if (c == other)
                    continue; /* cannot happen across sites; kept for safety */
                uint32_t ct = table_replicas(t, c), ca = total[c], cs = table_shared(t, c, other);
                if (!best || ct < bt || (ct == bt && (ca < ba || (ca == ba && cs < bs)))) {
                    best = c;
                    bt = ct;
                    ba = ca;
                    bs = cs;
                }
            }
            if (!best) {
                res.no_target++;
                continue;
            }
            N_ASSERT(site_of(d, best) != site_of(d, other));
            fr->primary = other;
            fr->standby = best;
            fr->standby_state = DICT_REP_BUILDING;
            total[best]++;
            if (!res.moved++) {
                res.first_table = t->id;
                res.first_frag = f;
                res.first_to = best;
            }
        }
    }
    if (out)
        *out = res;
    if (!held)
        return nines_err(NINES_ENOTFOUND, "node %u holds no replica: nothing to repair", dead);
    if (!res.moved)
        return nines_err(NINES_EUNREACHABLE,
                         "node %u holds %u replicas and none can be rebuilt elsewhere now: %u "
                         "without a current replica to copy from, %u without a current node "
                         "of site %d to take it",
                         dead, held, res.no_source, res.no_target, dsite);
    d->version++;
    return (int)res.moved;
}

int dict_mark_built(struct dict *d, uint32_t table_id, uint32_t frag, uint32_t node)
{
    struct dict_table *ct = NULL;
    for (uint32_t i = 0; i < d->ntables && !ct; i++)
        if (d->tables[i]->id == table_id)
            ct = d->tables[i];
    if (!ct)
        return nines_err(NINES_ENOTFOUND, "no table with id %u", table_id);
    if (frag >= ct->nfrags)
        return nines_err(NINES_ENOTFOUND, "table '%s' has %u fragments, no fragment %u",
                         ct->def.name, ct->nfrags, frag);
    struct dict_frag *fr = &ct->frags[frag];
    if (!node || fr->standby != node)
        return nines_err(NINES_ENOTFOUND, "table '%s' fragment %u: node %u holds no replica "
                         "being built (primary %u, standby %u)", ct->def.name, frag, node,
                         fr->primary, fr->standby);
    if (fr->standby_state != DICT_REP_BUILDING)
        return nines_err(NINES_ESTATE, "table '%s' fragment %u: the replica on node %u is %s, "
                         "not being built", ct->def.name, frag, node,
                         dict_rep_state_name(fr->standby_state));
    fr->standby_state = DICT_REP_READY;
    d->version++;
    return 0;
}

/* ---- reintegration (dict/README.md "Reintegration placement") ---- */

/* Does moving a replica of table t from y to back reduce the imbalance
 * between them? dt: y's replicas of t minus back's; da: of all tables. */
static bool surplus(int64_t dt, int64_t da) { return dt >= 2 || (dt >= 1 && da >= 2); }

int dict_reintegrate_node(struct dict *d, uint32_t back, dict_liveset eligible,
                          struct dict_reint_result *out)
{
    struct dict_reint_result res;
    memset(&res, 0, sizeof res);
    if (out)
        *out = res;
    int bsite = site_of(d, back);
    if (bsite < 0)
        return nines_err(NINES_EINVAL, "node %u is not in the dictionary's node list", back);
    if (!(eligible & DICT_LIVE(back)))
        return nines_err(NINES_EINVAL, "node %u is not current (not in the eligible set): no "
                         "replica moves to it", back);
    /* one at a time: a replica of back still being built holds the next */
    for (uint32_t ti = 0; ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++)
            if (t->frags[f].standby == back && t->frags[f].standby_state == DICT_REP_BUILDING) {
                res.held = dict_node_replicas(d, back);
                if (out)
                    *out = res;
                return nines_err(NINES_EAGAIN, "node %u is still building table '%s' fragment "
                                 "%u: one replica moves to it at a time", back, t->def.name, f);
            }
    }
    uint32_t total[DICT_MAX_NODES + 1];
    memset(total, 0, sizeof total);
    for (uint32_t i = 0; i < d->nnodes; i++)
        if ((int)d->nodes[i].site == bsite && d->nodes[i].id <= DICT_MAX_NODES)
            total[d->nodes[i].id] = dict_node_replicas(d, d->nodes[i].id);
    struct dict_table *bt = NULL;
    uint32_t bf = 0, bfrom = 0;
    int64_t bdt = 0, bda = 0;
    uint32_t bsh = 0;
    for (uint32_t ti = 0; ti < d->ntables; ti++) {
        struct dict_table *t = d->tables[ti];
        uint32_t mine = table_replicas(t, back);
        for (uint32_t f = 0; f < t->nfrags; f++) {
            const struct dict_frag *fr = &t->frags[f];
            /* a surplus primary of a site-mate: never moved here */
            uint32_t p = fr->primary;
            if (p && p != back && site_of(d, p) == bsite &&
                surplus((int64_t)table_replicas(t, p) - mine, (int64_t)total[p] - total[back]))
                res.primaries++;
            uint32_t y = fr->standby;
            if (!y || y == back || site_of(d, y) != bsite)
                continue;
            int64_t dt = (int64_t)table_replicas(t, y) - mine;
            int64_t da = (int64_t)total[y] - total[back];
            if (!surplus(dt, da))
                continue;
            if (fr->standby_state != DICT_REP_READY || !(eligible & DICT_LIVE(y)) ||
                !(eligible & DICT_LIVE(p))) {
                res.blocked++;
                continue;
            }
            uint32_t sh = table_shared(t, back, p);
            if (!bt || dt > bdt || (dt == bdt && (da > bda || (da == bda && sh < bsh)))) {
                bt = t;
                bf = f;
                bfrom = y;
                bdt = dt;
                bda = da;
                bsh = sh;
            }
        }
    }
    if (!bt) {
        res.held = total[back];
        for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
            if (id != back && total[id] > res.most)
                res.most = total[id];
        if (out)
            *out = res;
        if (res.blocked)
            return nines_err(NINES_EAGAIN, "node %u holds %u replicas, a site-mate %u: %u hot "
                             "standbys could move to it but not now (their node or their "
                             "primary is not current, or they are being built)", back,
                             res.held, res.most, res.blocked);
        return nines_err(NINES_ENOTFOUND, "node %u holds %u replicas, its site-mates at most %u: "
                         "balanced as far as hot standbys go, nothing to move (%u surplus "
                         "primaries stay)", back, res.held, res.most, res.primaries);
    }
    struct dict_frag *fr = &bt->frags[bf];
    N_ASSERT(site_of(d, fr->primary) != bsite);
    fr->standby = back;
    fr->standby_state = DICT_REP_BUILDING;
    total[bfrom]--;
    total[back]++;
    res.moved = 1;
    res.table = bt->id;
    res.frag = bf;
    res.from = bfrom;
    res.held = total[back];
    for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
        if (id != back && total[id] > res.most)
            res.most = total[id];
    if (out)
        *out = res;
    d->version++;
    return 1;
}
