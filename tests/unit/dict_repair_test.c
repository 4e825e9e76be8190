/* Self-repair placement (dict/README.md "Building replicas", "Self-repair
 * placement"): dict_repair_node keeps the two-site rule, moves only the
 * dead node's replicas, balances them over its site-mates and is a pure
 * function; building replicas in the roles (never current, the log copy),
 * dict_mark_built, dict_frag_roles_built, effective primaries, errors,
 * and the building state through the file image. */
#include "cu_test.h"
#include "dict/dict.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n per site: site 0 = 1..n, site 1 = n+1..2n; one table of nf fragments
 * (MISD), and a second one of nf2 (0: none). */
static void build(struct dict *d, uint32_t n, uint32_t nf, uint32_t nf2)
{
    struct dict_node nodes[DICT_MAX_NODES];
    for (uint32_t i = 0; i < 2 * n; i++) {
        nodes[i].id = i + 1;
        nodes[i].site = i < n ? 0 : 1;
    }
    CU_ASSERT_EQUAL_FATAL(dict_init(d, nodes, 2 * n), 0);
    struct dict_column cols[2] = {{.name = "id", .type = DICT_T_INT64},
                                  {.name = "v", .type = DICT_T_INT64}};
    uint16_t pk[] = {0};
    struct dict_table_def t = {.name = "subs", .ncols = 2, .cols = cols, .npk = 1, .pk = pk,
                               .method = DICT_FRAG_HASH, .nfrags = nf};
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &t, NULL), 0);
    if (nf2) {
        struct dict_table_def t2 = t;
        snprintf(t2.name, sizeof t2.name, "calls");
        t2.nfrags = nf2;
        CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &t2, NULL), 0);
    }
}

static int site(const struct dict *d, uint32_t id)
{
    for (uint32_t i = 0; i < d->nnodes; i++)
        if (d->nodes[i].id == id)
            return (int)d->nodes[i].site;
    return -1;
}

static dict_liveset all_but(uint32_t n, uint32_t out)
{
    dict_liveset s = 0;
    for (uint32_t id = 1; id <= 2 * n; id++)
        if (id != out)
            s |= DICT_LIVE(id);
    return s;
}

static uint32_t table_reps(const struct dict_table *t, uint32_t id)
{
    uint32_t c = 0;
    for (uint32_t f = 0; f < t->nfrags; f++)
        c += (t->frags[f].primary == id) + (t->frags[f].standby == id);
    return c;
}

/* Every layout n x n (n = 2..6), every dead node, two tables: the rules. */
static void test_rules(void)
{
    for (uint32_t n = 2; n <= 6; n++) {
        for (uint32_t dead = 1; dead <= 2 * n; dead++) {
            struct dict d, before;
            build(&d, n, 2 * n * n, 3 * n + 1);
            CU_ASSERT_EQUAL_FATAL(dict_clone(&d, &before), 0);
            uint32_t held = dict_node_replicas(&d, dead);
            CU_ASSERT(held > 0);
            struct dict_repair_result res;
            int rc = dict_repair_node(&d, dead, all_but(n, dead), &res);
            CU_ASSERT_EQUAL(rc, (int)held);
            CU_ASSERT_EQUAL(res.moved, held);
            CU_ASSERT_EQUAL(res.no_source + res.no_target, 0);
            CU_ASSERT_EQUAL(d.version, before.version + 1);
            CU_ASSERT_EQUAL(dict_node_replicas(&d, dead), 0);
            for (uint32_t ti = 0; ti < d.ntables; ti++) {
                const struct dict_table *t = d.tables[ti], *b = before.tables[ti];
                for (uint32_t f = 0; f < t->nfrags; f++) {
                    const struct dict_frag *x = &t->frags[f], *y = &b->frags[f];
                    /* two-site rule */
                    CU_ASSERT_NOT_EQUAL(site(&d, x->primary), site(&d, x->standby));
                    if (y->primary != dead && y->standby != dead) {
                        /* only the dead node's replicas move */
                        CU_ASSERT(memcmp(x, y, sizeof *x) == 0);
                        continue;
                    }
                    /* the survivor is the primary slot; the new replica at
                     * the dead node's site, building */
                    uint32_t other = y->primary == dead ? y->standby : y->primary;
                    CU_ASSERT_EQUAL(x->primary, other);
                    CU_ASSERT_EQUAL(site(&d, x->standby), site(&d, dead));
                    CU_ASSERT_NOT_EQUAL(x->standby, dead);
                    CU_ASSERT_EQUAL(x->standby_state, DICT_REP_BUILDING);
                }
                /* balance: the dead node's site-mates hold table replicas
                 * within one of each other */
                uint32_t mx = 0, mn = UINT32_MAX;
                for (uint32_t id = 1; id <= 2 * n; id++) {
                    if (id == dead || site(&d, id) != site(&d, dead))
                        continue;
                    uint32_t c = table_reps(t, id);
                    mx = c > mx ? c : mx;
                    mn = c < mn ? c : mn;
                }
                CU_ASSERT(mx - mn <= 1);
                if (mx - mn > 1)
                    fprintf(stderr, "n=%u dead=%u table %u: site-mates hold %u..%u\n", n, dead,
                            t->id, mn, mx);
            }
            /* deterministic: the same result again, and the eligible set
             * names the dead node or not, the same */
            struct dict again;
            CU_ASSERT_EQUAL_FATAL(dict_clone(&before, &again), 0);
            CU_ASSERT_EQUAL(dict_repair_node(&again, dead, all_but(n, 0), NULL), (int)held);
            uint8_t *ia, *ib;
            size_t la, lb;
            CU_ASSERT_EQUAL_FATAL(dict_encode(&d, &ia, &la), 0);
            CU_ASSERT_EQUAL_FATAL(dict_encode(&again, &ib, &lb), 0);
            CU_ASSERT(la == lb && memcmp(ia, ib, la) == 0);
            free(ia);
            free(ib);
            /* nothing left to move: ENOTFOUND, nothing changes */
            uint64_t v = d.version;
            CU_ASSERT_EQUAL(dict_repair_node(&d, dead, all_but(n, dead), NULL), NINES_ENOTFOUND);
            CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "holds no replica"));
            CU_ASSERT_EQUAL(d.version, v);
            dict_free(&again);
            dict_free(&before);
            dict_free(&d);
        }
    }
}

/* 3 x 3, 18 fragments: node 1's six replicas go three to node 2 and three
 * to node 3, and the survivors' new partners spread (no site-1 node gets
 * both its fragments of node 1 on one new node when two are possible). */
static void test_worked(void)
{
    struct dict d;
    build(&d, 3, 18, 0);
    const struct dict_table *t = d.tables[0];
    uint32_t partner_to[7][7];
    memset(partner_to, 0, sizeof partner_to);
    struct dict before;
    CU_ASSERT_EQUAL_FATAL(dict_clone(&d, &before), 0);
    CU_ASSERT_EQUAL(dict_repair_node(&d, 1, all_but(3, 1), NULL), 6);
    CU_ASSERT_EQUAL(table_reps(t, 2), 9);
    CU_ASSERT_EQUAL(table_reps(t, 3), 9);
    for (uint32_t f = 0; f < t->nfrags; f++) {
        const struct dict_frag *y = &before.tables[0]->frags[f];
        if (y->primary == 1 || y->standby == 1)
            partner_to[t->frags[f].primary][t->frags[f].standby]++;
    }
    for (uint32_t o = 4; o <= 6; o++) /* each shared 2 fragments with node 1 */
        CU_ASSERT(partner_to[o][2] == 1 && partner_to[o][3] == 1);
    dict_free(&before);
    dict_free(&d);
}

/* Building replicas in the roles, marking built, effective primaries. */
static void test_roles(void)
{
    struct dict d;
    build(&d, 2, 8, 0);
    const uint32_t dead = 4; /* site 1: 3, 4 */
    const struct dict_table *t = d.tables[0];
    struct dict before;
    CU_ASSERT_EQUAL_FATAL(dict_clone(&d, &before), 0);
    dict_liveset cur = all_but(2, dead);
    CU_ASSERT_EQUAL(dict_repair_node(&d, dead, cur, NULL), 4);
    const struct dict_live live = {.members = cur, .current = cur};
    uint32_t building = 0;
    for (uint32_t f = 0; f < t->nfrags; f++) {
        const struct dict_frag *fr = &t->frags[f];
        struct dict_roles r, rb;
        CU_ASSERT_EQUAL_FATAL(dict_frag_roles_live(&d, t, f, &live, &r), 0);
        if (fr->standby_state != DICT_REP_BUILDING) {
            CU_ASSERT_EQUAL(r.state, DICT_FRAG_BOTH);
            CU_ASSERT_EQUAL(dict_frag_roles_built(&d, t, f, fr->standby, &live, &rb),
                            NINES_ENOTFOUND);
            continue;
        }
        building++;
        CU_ASSERT_EQUAL(fr->standby, 3);
        /* its node is current, yet the replica is not: ALONE, log copy */
        CU_ASSERT_EQUAL(r.state, DICT_FRAG_ALONE);
        CU_ASSERT_EQUAL(r.primary, fr->primary);
        CU_ASSERT_EQUAL(r.standby, 0);
        CU_ASSERT_EQUAL(r.logcopy, 3);
        /* built, it would be the hot standby; the primary stays */
        CU_ASSERT_EQUAL(dict_frag_roles_built(&d, t, f, 3, &live, &rb), 0);
        CU_ASSERT_EQUAL(rb.state, DICT_FRAG_BOTH);
        CU_ASSERT_EQUAL(rb.primary, r.primary);
        CU_ASSERT_EQUAL(rb.standby, 3);
        /* a building node that is a member, not current: still the log copy */
        const struct dict_live l2 = {.members = cur, .current = cur & ~DICT_LIVE(3)};
        CU_ASSERT_EQUAL(dict_frag_roles_live(&d, t, f, &l2, &r), 0);
        CU_ASSERT_EQUAL(r.state, DICT_FRAG_ALONE);
        CU_ASSERT_EQUAL(r.logcopy, 3);
        /* a building node outside the node set: not the log copy (nobody
         * of its site is current here: none) */
        const struct dict_live l3 = {.members = cur & ~DICT_LIVE(3),
                                     .current = cur & ~DICT_LIVE(3)};
        CU_ASSERT_EQUAL(dict_frag_roles_live(&d, t, f, &l3, &r), 0);
        CU_ASSERT_EQUAL(r.state, DICT_FRAG_ALONE);
        CU_ASSERT_EQUAL(r.logcopy, 0);
        /* the primary gone: DOWN (a building replica never takes over) */
        const struct dict_live l4 = {.members = cur & ~DICT_LIVE(fr->primary),
                                     .current = cur & ~DICT_LIVE(fr->primary)};
        CU_ASSERT_EQUAL(dict_frag_roles_live(&d, t, f, &l4, &r), 0);
        CU_ASSERT_EQUAL(r.state, DICT_FRAG_DOWN);
        uint32_t node;
        CU_ASSERT_EQUAL(dict_effective_primary(t, f, cur & ~DICT_LIVE(fr->primary), &node),
                        NINES_EUNREACHABLE);
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "still being built"));
        CU_ASSERT_EQUAL(dict_switch_roles(&d, t->id, f), NINES_ESTATE);
    }
    CU_ASSERT_EQUAL(building, 4);
    /* the building state survives the file image */
    struct dict c;
    CU_ASSERT_EQUAL_FATAL(dict_clone(&d, &c), 0);
    for (uint32_t f = 0; f < t->nfrags; f++)
        CU_ASSERT_EQUAL(c.tables[0]->frags[f].standby_state, t->frags[f].standby_state);
    dict_free(&c);
    /* mark built: errors, then each one; the roles become BOTH */
    for (uint32_t f = 0; f < t->nfrags; f++) {
        const struct dict_frag *fr = &t->frags[f];
        uint64_t v = d.version;
        if (fr->standby_state != DICT_REP_BUILDING) {
            CU_ASSERT_EQUAL(dict_mark_built(&d, t->id, f, fr->standby), NINES_ESTATE);
            CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "not being built"));
            CU_ASSERT_EQUAL(d.version, v);
            continue;
        }
        CU_ASSERT_EQUAL(dict_mark_built(&d, t->id, f, fr->primary), NINES_ENOTFOUND);
        CU_ASSERT_EQUAL(dict_mark_built(&d, t->id, f, 3), 0);
        CU_ASSERT_EQUAL(d.version, v + 1);
        CU_ASSERT_EQUAL(dict_mark_built(&d, t->id, f, 3), NINES_ESTATE); /* idempotent */
        struct dict_roles r;
        CU_ASSERT_EQUAL(dict_frag_roles_live(&d, t, f, &live, &r), 0);
        CU_ASSERT_EQUAL(r.state, DICT_FRAG_BOTH);
        CU_ASSERT_EQUAL(r.standby, 3);
    }
    CU_ASSERT_EQUAL(dict_mark_built(&d, 99, 0, 3), NINES_ENOTFOUND);
    CU_ASSERT_EQUAL(dict_mark_built(&d, t->id, 8, 3), NINES_ENOTFOUND);
    dict_free(&before);
    dict_free(&d);
}

/* What cannot move: no source (the other replica is not eligible, or is
 * itself building), no target (the whole site gone), one replica. */
static void test_cannot(void)
{
    struct dict d;
    build(&d, 2, 8, 0);
    const struct dict_table *t = d.tables[0];
    /* site 1 = {3, 4}: 4 dead and 3 not eligible: no target */
    struct dict_repair_result res;
    CU_ASSERT_EQUAL(dict_repair_node(&d, 4, DICT_LIVE(1) | DICT_LIVE(2), &res),
                    NINES_EUNREACHABLE);
    CU_ASSERT_EQUAL(res.no_target, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "without a current node of site 1"));
    CU_ASSERT_EQUAL(d.version, 1);
    /* 4 dead, and 1 not eligible: the fragments 4 shares with 1 stay */
    uint32_t shared = 0;
    for (uint32_t f = 0; f < t->nfrags; f++)
        shared += (t->frags[f].primary == 4 && t->frags[f].standby == 1) ||
                  (t->frags[f].primary == 1 && t->frags[f].standby == 4);
    CU_ASSERT_EQUAL(dict_repair_node(&d, 4, DICT_LIVE(2) | DICT_LIVE(3), &res),
                    (int)(4 - shared));
    CU_ASSERT_EQUAL(res.no_source, shared);
    CU_ASSERT_EQUAL(dict_node_replicas(&d, 4), shared);
    /* now 2 dies too: whatever can move moves, and the two-site rule
     * holds throughout */
    struct dict_repair_result r2;
    int rc = dict_repair_node(&d, 2, DICT_LIVE(1) | DICT_LIVE(3), &r2);
    CU_ASSERT(rc > 0);
    CU_ASSERT_EQUAL(dict_node_replicas(&d, 2), r2.no_source); /* partner 4, gone too */
    for (uint32_t f = 0; f < t->nfrags; f++) {
        const struct dict_frag *fr = &t->frags[f];
        if (fr->primary == 2 || fr->standby == 2)
            CU_ASSERT(fr->primary == 4 || fr->standby == 4 ||
                      fr->standby_state == DICT_REP_BUILDING);
        CU_ASSERT_NOT_EQUAL(site(&d, fr->primary), site(&d, fr->standby));
    }
    /* a building replica's node dying when its source is also gone:
     * nothing to copy from (the primary slot was the dead node's and the
     * standby is building) */
    struct dict e;
    build(&e, 2, 8, 0);
    CU_ASSERT_EQUAL(dict_repair_node(&e, 4, all_but(2, 4), NULL), 4);
    uint32_t bf = 8, src = 0;
    for (uint32_t f = 0; f < 8 && bf == 8; f++)
        if (e.tables[0]->frags[f].standby_state == DICT_REP_BUILDING) {
            bf = f;
            src = e.tables[0]->frags[f].primary;
        }
    CU_ASSERT_FATAL(bf < 8);
    memset(&res, 0, sizeof res);
    rc = dict_repair_node(&e, src, all_but(2, src) & ~DICT_LIVE(4), &res);
    CU_ASSERT(rc > 0 || rc == NINES_EUNREACHABLE);
    CU_ASSERT_EQUAL(e.tables[0]->frags[bf].primary, src); /* stays: no source */
    CU_ASSERT(res.no_source >= 1);
    /* unknown node */
    CU_ASSERT_EQUAL(dict_repair_node(&e, 9, all_but(2, 0), NULL), NINES_EINVAL);
    dict_free(&e);
    dict_free(&d);
    /* one replica configured: nothing to copy from */
    struct dict_node nodes[] = {{1, 0}, {2, 1}, {3, 0}, {4, 1}};
    CU_ASSERT_EQUAL_FATAL(dict_init(&d, nodes, 4), 0);
    struct dict_column cols[1] = {{.name = "id", .type = DICT_T_INT64}};
    uint16_t pk[] = {0};
    struct dict_table_def one = {.name = "single", .ncols = 1, .cols = cols, .npk = 1, .pk = pk,
                                 .method = DICT_FRAG_HASH, .nfrags = 4, .replicas = 1};
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&d, &one, NULL), 0);
    CU_ASSERT_EQUAL(dict_repair_node(&d, 1, all_but(2, 1), &res), NINES_EUNREACHABLE);
    CU_ASSERT(res.no_source > 0);
    dict_free(&d);
}

/* Mark every BUILDING standby built. */
static void mark_all(struct dict *d)
{
    for (uint32_t ti = 0; ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++)
            if (t->frags[f].standby_state == DICT_REP_BUILDING)
                CU_ASSERT_EQUAL(dict_mark_built(d, t->id, f, t->frags[f].standby), 0);
    }
}

/* Reintegration (dict/README.md "Reintegration placement"), every layout n
 * x n (n = 2..6), every node as the one that comes back after its
 * replicas were repaired and built elsewhere: one standby at a time moves
 * to it (refused while it builds one), only standbys of its site-mates
 * move, primaries never change, the two-site rule holds, and at the end
 * ("nothing to move") every table's and the total replica counts of its
 * site are within one of each other; each step is a pure function. */
static void test_reint_rules(void)
{
    for (uint32_t n = 2; n <= 6; n++) {
        for (uint32_t back = 1; back <= 2 * n; back++) {
            struct dict d;
            build(&d, n, 2 * n * n, 3 * n + 1);
            uint32_t held0 = dict_node_replicas(&d, back);
            CU_ASSERT(dict_repair_node(&d, back, all_but(n, back), NULL) > 0);
            mark_all(&d);
            CU_ASSERT_EQUAL(dict_node_replicas(&d, back), 0);
            uint32_t moves = 0;
            for (;;) {
                struct dict before, again;
                CU_ASSERT_EQUAL_FATAL(dict_clone(&d, &before), 0);
                struct dict_reint_result res;
                int rc = dict_reintegrate_node(&d, back, all_but(n, 0), &res);
                if (rc == NINES_ENOTFOUND) {
                    CU_ASSERT_EQUAL(d.version, before.version);
                    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "balanced"));
                    CU_ASSERT_EQUAL(res.blocked, 0);
                    dict_free(&before);
                    break;
                }
                CU_ASSERT_EQUAL_FATAL(rc, 1);
                moves++;
                CU_ASSERT_EQUAL(res.moved, 1);
                CU_ASSERT_EQUAL(d.version, before.version + 1);
                CU_ASSERT_EQUAL(site(&d, res.from), site(&d, back));
                CU_ASSERT_NOT_EQUAL(res.from, back);
                /* exactly one slot changed: a READY standby of res.from */
                int changed = 0;
                for (uint32_t ti = 0; ti < d.ntables; ti++) {
                    const struct dict_table *t = d.tables[ti], *b = before.tables[ti];
                    for (uint32_t f = 0; f < t->nfrags; f++) {
                        const struct dict_frag *x = &t->frags[f], *y = &b->frags[f];
                        CU_ASSERT_NOT_EQUAL(site(&d, x->primary), site(&d, x->standby));
                        CU_ASSERT_EQUAL(x->primary, y->primary);
                        if (memcmp(x, y, sizeof *x) == 0)
                            continue;
                        changed++;
                        CU_ASSERT_EQUAL(t->id, res.table);
                        CU_ASSERT_EQUAL(f, res.frag);
                        CU_ASSERT_EQUAL(y->standby, res.from);
                        CU_ASSERT_EQUAL(y->standby_state, DICT_REP_READY);
                        CU_ASSERT_EQUAL(x->standby, back);
                        CU_ASSERT_EQUAL(x->standby_state, DICT_REP_BUILDING);
                    }
                }
                CU_ASSERT_EQUAL(changed, 1);
                /* one at a time: refused while it builds, nothing changes */
                uint64_t v = d.version;
                CU_ASSERT_EQUAL(dict_reintegrate_node(&d, back, all_but(n, 0), NULL),
                                NINES_EAGAIN);
                CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "still building"));
                CU_ASSERT_EQUAL(d.version, v);
                /* pure: the same step from the same dictionary */
                CU_ASSERT_EQUAL_FATAL(dict_clone(&before, &again), 0);
                CU_ASSERT_EQUAL(dict_reintegrate_node(&again, back, all_but(n, 0), NULL), 1);
                uint8_t *ia, *ib;
                size_t la, lb;
                CU_ASSERT_EQUAL_FATAL(dict_encode(&d, &ia, &la), 0);
                CU_ASSERT_EQUAL_FATAL(dict_encode(&again, &ib, &lb), 0);
                CU_ASSERT(la == lb && memcmp(ia, ib, la) == 0);
                free(ia);
                free(ib);
                dict_free(&again);
                dict_free(&before);
                CU_ASSERT_EQUAL(dict_mark_built(&d, res.table, res.frag, back), 0);
                CU_ASSERT_FATAL(moves <= 4 * held0); /* it ends */
            }
            CU_ASSERT(moves > 0);
            /* balanced: per table and in total, within one over the site */
            for (uint32_t ti = 0; ti <= d.ntables; ti++) {
                uint32_t mx = 0, mn = UINT32_MAX;
                for (uint32_t id = 1; id <= 2 * n; id++) {
                    if (site(&d, id) != site(&d, back))
                        continue;
                    uint32_t c = ti < d.ntables ? table_reps(d.tables[ti], id)
                                                : dict_node_replicas(&d, id);
                    mx = c > mx ? c : mx;
                    mn = c < mn ? c : mn;
                }
                CU_ASSERT(mx - mn <= 1);
                if (mx - mn > 1)
                    fprintf(stderr, "n=%u back=%u %s %u: the site holds %u..%u\n", n, back,
                            ti < d.ntables ? "table" : "all tables", ti, mn, mx);
            }
            dict_free(&d);
        }
    }
}

/* 2 x 2: refusals (not current, unknown node, a blocked move) and the
 * building replica through the roles: PRIMARY ALONE with back the log
 * copy, the old holder without a role. */
static void test_reint_refusals(void)
{
    struct dict d;
    build(&d, 2, 8, 0);
    CU_ASSERT_EQUAL(dict_repair_node(&d, 4, all_but(2, 4), NULL), 4);
    struct dict_reint_result res;
    uint64_t v = d.version;
    CU_ASSERT_EQUAL(dict_reintegrate_node(&d, 4, all_but(2, 4), &res), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "not current"));
    CU_ASSERT_EQUAL(dict_reintegrate_node(&d, 9, all_but(2, 0), &res), NINES_EINVAL);
    /* every primary of node 3's standbys away: blocked (nothing changes) */
    CU_ASSERT_EQUAL(dict_reintegrate_node(&d, 4, DICT_LIVE(3) | DICT_LIVE(4), &res),
                    NINES_EAGAIN);
    CU_ASSERT(res.blocked > 0);
    CU_ASSERT_EQUAL(res.moved, 0);
    CU_ASSERT_EQUAL(d.version, v);
    /* node 3's four repaired standbys are still building; one of its own
     * (READY) standbys moves: the roles make it ALONE with node 4 the log
     * copy */
    CU_ASSERT_EQUAL(dict_reintegrate_node(&d, 4, all_but(2, 0), &res), 1);
    CU_ASSERT_EQUAL(res.from, 3);
    CU_ASSERT_EQUAL(res.held, 1);
    CU_ASSERT_EQUAL(res.most, 7);
    const struct dict_table *t = dict_table_by_id(&d, res.table);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    uint64_t since[65] = {0};
    struct dict_live live = {.members = all_but(2, 0), .current = all_but(2, 0),
                             .standby_only = 0, .since = since};
    struct dict_roles ro;
    CU_ASSERT_EQUAL(dict_frag_roles_live(&d, t, res.frag, &live, &ro), 0);
    CU_ASSERT_EQUAL(ro.state, DICT_FRAG_ALONE);
    CU_ASSERT_EQUAL(ro.logcopy, 4);
    CU_ASSERT_EQUAL(ro.primary, t->frags[res.frag].primary);
    CU_ASSERT_NOT_EQUAL(ro.standby, 3);
    /* the image keeps it (format 2) */
    uint8_t *img;
    size_t len;
    struct dict e;
    CU_ASSERT_EQUAL_FATAL(dict_encode(&d, &img, &len), 0);
    CU_ASSERT_EQUAL_FATAL(dict_decode(img, len, &e), 0);
    CU_ASSERT_EQUAL(dict_table_by_id(&e, res.table)->frags[res.frag].standby_state,
                    DICT_REP_BUILDING);
    free(img);
    dict_free(&e);
    dict_free(&d);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"rules", test_rules},
        {"worked", test_worked},
        {"roles", test_roles},
        {"cannot", test_cannot},
        {"reint_rules", test_reint_rules},
        {"reint_refusals", test_reint_refusals},
        {NULL, NULL},
    };
    cu_add_suite("dict_repair", NULL, NULL, cases);
}
