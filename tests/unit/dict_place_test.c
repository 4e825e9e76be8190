/* Placement: MISD properties for 1..8 nodes per site and unequal sites,
 * the worked examples of dict/README.md, the circular scheme, effective
 * primaries under failures, and the placement report. */
#include "cu_test.h"
#include "dict/dict.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* p site-0 and q site-1 nodes with scrambled ids, listed in a scrambled
 * order, so the placement cannot depend on either. */
static uint32_t make_nodes(uint32_t p, uint32_t q, struct dict_node *nodes)
{
    uint32_t n = p + q;
    for (uint32_t i = 0; i < n; i++) {
        nodes[i].id = (i * 37 + 11) % 64 + 1; /* distinct: 37 is prime to 64 */
        nodes[i].site = i < p ? 0 : 1;
    }
    for (uint32_t i = 0; i + 1 < n; i += 2) { /* reorder the list */
        struct dict_node x = nodes[i];
        nodes[i] = nodes[n - 1 - i];
        nodes[n - 1 - i] = x;
    }
    return n;
}

static uint32_t u32max(const uint32_t *v, uint32_t lo, uint32_t hi)
{
    uint32_t m = 0;
    for (uint32_t i = lo; i < hi; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

static uint32_t u32min(const uint32_t *v, uint32_t lo, uint32_t hi)
{
    uint32_t m = UINT32_MAX;
    for (uint32_t i = lo; i < hi; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static struct dict_place_stats st;
static struct dict_frag frags[DICT_MAX_FRAGS], frags2[DICT_MAX_FRAGS];

/* Check every MISD property for p + q nodes and nf fragments; returns the
 * number of violated properties (each also reported by CUnit). */
static int check_misd(uint32_t p, uint32_t q, uint32_t nf)
{
    struct dict_node nodes[DICT_MAX_NODES], rev[DICT_MAX_NODES];
    uint32_t n = make_nodes(p, q, nodes);
    int bad = 0;
#define PROP(c)                                                                        \
    do {                                                                               \
        if (!(c)) {                                                                    \
            bad++;                                                                     \
            fprintf(stderr, "p=%u q=%u F=%u: %s fails\n", p, q, nf, #c);                \
        }                                                                              \
        CU_ASSERT(c);                                                                  \
    } while (0)
    PROP(dict_place(nodes, n, nf, 2, DICT_PLACE_MISD, frags) == 0);
    PROP(dict_place_stats(nodes, n, frags, nf, &st) == 0);
    /* pure function: the same result from the node list in another order */
    for (uint32_t i = 0; i < n; i++)
        rev[i] = nodes[n - 1 - i];
    PROP(dict_place(rev, n, nf, 2, DICT_PLACE_MISD, frags2) == 0);
    PROP(memcmp(frags, frags2, nf * sizeof *frags) == 0);
    /* no fragment with both replicas at one site, every standby placed */
    PROP(st.same_site == 0);
    uint32_t nsb = 0;
    for (uint32_t f = 0; f < nf; f++)
        nsb += frags[f].standby != 0;
    PROP(nsb == nf);
    /* primaries balanced over all nodes (+-1) */
    PROP(u32max(st.primaries, 0, n) - u32min(st.primaries, 0, n) <= 1);
    /* hot standbys balanced within each site (+-1) */
    PROP(u32max(st.standbys, 0, p) - u32min(st.standbys, 0, p) <= 1);
    PROP(u32max(st.standbys, p, n) - u32min(st.standbys, p, n) <= 1);
    /* each node's primaries spread evenly over the other site: per-target
     * counts differ by at most one, so min(P, other) distinct targets */
    for (uint32_t x = 0; x < n; x++) {
        uint32_t lo = x < p ? p : 0, hi = x < p ? n : p, mx = 0, mn = UINT32_MAX, distinct = 0;
        for (uint32_t y = lo; y < hi; y++) {
            mx = st.dir[x][y] > mx ? st.dir[x][y] : mx;
            mn = st.dir[x][y] < mn ? st.dir[x][y] : mn;
            distinct += st.dir[x][y] > 0;
        }
        uint32_t want = st.primaries[x] < hi - lo ? st.primaries[x] : hi - lo;
        PROP(mx - mn <= 1);
        PROP(distinct == want);
    }
    /* largest cross-site intersection is the least possible, and every
     * pair holds floor or ceil of F/(p*q) */
    uint32_t bound = dict_place_min_pair(p, q, nf);
    PROP(bound == (nf + p * q - 1) / (p * q));
    PROP(st.max_pair == bound);
    for (uint32_t i = 0; i < p; i++)
        for (uint32_t j = p; j < n; j++)
            PROP((uint32_t)st.dir[i][j] + st.dir[j][i] >= nf / (p * q));
    return bad;
#undef PROP
}

static void test_equal_sites(void)
{
    for (uint32_t nps = 1; nps <= 8; nps++) {
        uint32_t round = 2 * nps * nps;
        for (uint32_t nf = 1; nf <= 2 * round + 2 * nps + 1 && nf <= DICT_MAX_FRAGS; nf++)
            if (check_misd(nps, nps, nf))
                return;
        /* 2n^2 fragments: exactly one per direction per cross-site pair */
        CU_ASSERT_EQUAL_FATAL(check_misd(nps, nps, round), 0);
        for (uint32_t i = 0; i < nps; i++)
            for (uint32_t j = nps; j < 2 * nps; j++) {
                CU_ASSERT_EQUAL(st.dir[i][j], 1);
                CU_ASSERT_EQUAL(st.dir[j][i], 1);
            }
    }
}

static void test_unequal_sites(void)
{
    for (uint32_t p = 1; p <= 8; p++)
        for (uint32_t q = 1; q <= 8; q++) {
            if (p == q)
                continue;
            for (uint32_t nf = 1; nf <= 3 * p * q + p + q; nf++)
                if (check_misd(p, q, nf))
                    return;
        }
    /* larger and extreme layouts */
    static const uint32_t big[][3] = {{8, 8, DICT_MAX_FRAGS}, {3, 5, 4095}, {1, 4, 1000},
                                      {32, 32, 2048}, {31, 33, 4096}, {1, 63, 777},
                                      {12, 9, 1234}};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        CU_ASSERT_EQUAL(check_misd(big[i][0], big[i][1], big[i][2]), 0);
}

/* What is balanced with unequal sites: stated in dict/README.md. */
static void test_unequal_loads(void)
{
    /* 2 + 3 nodes, 30 fragments: 6 primaries each; site 0 holds 30
     * replicas on 2 nodes (15 each), site 1 on 3 nodes (10 each) */
    CU_ASSERT_EQUAL_FATAL(check_misd(2, 3, 30), 0);
    for (uint32_t i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(st.primaries[i], 6);
    for (uint32_t i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(st.primaries[i] + st.standbys[i], 15);
    for (uint32_t i = 2; i < 5; i++)
        CU_ASSERT_EQUAL(st.primaries[i] + st.standbys[i], 10);
    CU_ASSERT_EQUAL(st.max_pair, 5);
}

/* The worked examples printed in dict/README.md. */
static void test_worked_examples(void)
{
    struct dict_node n4[] = {{1, 0}, {2, 0}, {3, 1}, {4, 1}};
    static const struct dict_frag ex2[] = {{1, 3, 0}, {3, 1, 0}, {2, 4, 0}, {4, 2, 0},
                                           {1, 4, 0}, {3, 2, 0}, {2, 3, 0}, {4, 1, 0}};
    CU_ASSERT_EQUAL_FATAL(dict_place(n4, 4, 8, 2, DICT_PLACE_MISD, frags), 0);
    CU_ASSERT_EQUAL(memcmp(frags, ex2, sizeof ex2), 0);
    struct dict_node n6[] = {{1, 0}, {2, 0}, {3, 0}, {4, 1}, {5, 1}, {6, 1}};
    static const struct dict_frag ex3[] = {
        {1, 4, 0}, {4, 1, 0}, {2, 5, 0}, {5, 2, 0}, {3, 6, 0}, {6, 3, 0},
        {1, 5, 0}, {4, 2, 0}, {2, 6, 0}, {5, 3, 0}, {3, 4, 0}, {6, 1, 0},
        {1, 6, 0}, {4, 3, 0}, {2, 4, 0}, {5, 1, 0}, {3, 5, 0}, {6, 2, 0}};
    CU_ASSERT_EQUAL_FATAL(dict_place(n6, 6, 18, 2, DICT_PLACE_MISD, frags), 0);
    CU_ASSERT_EQUAL(memcmp(frags, ex3, sizeof ex3), 0);
    /* 3 x 3 with 9 fragments: each pair shares exactly one */
    CU_ASSERT_EQUAL_FATAL(dict_place(n6, 6, 9, 2, DICT_PLACE_MISD, frags), 0);
    CU_ASSERT_EQUAL(dict_place_stats(n6, 6, frags, 9, &st), 0);
    CU_ASSERT_EQUAL(st.max_pair, 1);
}

static void test_circular(void)
{
    for (uint32_t p = 1; p <= 8; p++)
        for (uint32_t q = 1; q <= 8; q++) {
            struct dict_node nodes[DICT_MAX_NODES];
            uint32_t n = make_nodes(p, q, nodes), nf = 3 * n + 1;
            CU_ASSERT_EQUAL_FATAL(dict_place(nodes, n, nf, 2, DICT_PLACE_CIRCULAR, frags), 0);
            CU_ASSERT_EQUAL_FATAL(dict_place_stats(nodes, n, frags, nf, &st), 0);
            CU_ASSERT_EQUAL(st.same_site, 0);
            CU_ASSERT(u32max(st.primaries, 0, n) - u32min(st.primaries, 0, n) <= 1);
            /* every node's primaries have their standbys on one node */
            for (uint32_t x = 0; x < n; x++) {
                uint32_t targets = 0;
                for (uint32_t y = 0; y < n; y++)
                    targets += st.dir[x][y] > 0;
                CU_ASSERT_EQUAL(targets, 1);
            }
            if (p != q)
                continue;
            /* equal sites: the ring alternates a0 b0 a1 b1 ..., so node k's
             * standby is its successor and every node is someone's target */
            for (uint32_t i = 0; i < p; i++) {
                CU_ASSERT_EQUAL(st.dir[i][p + i], st.primaries[i]);
                CU_ASSERT_EQUAL(st.dir[p + i][(i + 1) % p], st.primaries[p + i]);
            }
        }
    /* 1 + 4: ring a0 b0 b1 b2 b3; every site-1 node skips to a0 */
    struct dict_node n5[] = {{1, 0}, {2, 1}, {3, 1}, {4, 1}, {5, 1}};
    CU_ASSERT_EQUAL_FATAL(dict_place(n5, 5, 5, 2, DICT_PLACE_CIRCULAR, frags), 0);
    CU_ASSERT_EQUAL(frags[0].primary, 1);
    CU_ASSERT_EQUAL(frags[0].standby, 2);
    for (uint32_t f = 1; f < 5; f++) {
        CU_ASSERT_EQUAL(frags[f].primary, f + 1);
        CU_ASSERT_EQUAL(frags[f].standby, 1);
    }
    /* 2 + 3: ring 1 3 2 4 5; node 4 skips node 5 (same site) to node 1 */
    struct dict_node n23[] = {{1, 0}, {2, 0}, {3, 1}, {4, 1}, {5, 1}};
    static const struct dict_frag want[] = {{1, 3, 0}, {3, 2, 0}, {2, 4, 0}, {4, 1, 0}, {5, 1, 0}};
    CU_ASSERT_EQUAL_FATAL(dict_place(n23, 5, 5, 2, DICT_PLACE_CIRCULAR, frags), 0);
    CU_ASSERT_EQUAL(memcmp(frags, want, sizeof want), 0);
}

static void test_place_errors(void)
{
    struct dict_node one_site[] = {{1, 0}, {2, 0}};
    CU_ASSERT_EQUAL(dict_place(one_site, 2, 4, 2, DICT_PLACE_MISD, frags), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "site 1 has none"));
    /* one replica works on one site */
    CU_ASSERT_EQUAL(dict_place(one_site, 2, 4, 1, DICT_PLACE_MISD, frags), 0);
    CU_ASSERT_EQUAL(frags[3].standby, 0);
    struct dict_node dup[] = {{1, 0}, {1, 1}};
    CU_ASSERT_EQUAL(dict_place(dup, 2, 4, 2, DICT_PLACE_MISD, frags), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "node id 1 is listed twice"));
    struct dict_node badsite[] = {{1, 0}, {2, 2}};
    CU_ASSERT_EQUAL(dict_place(badsite, 2, 4, 2, DICT_PLACE_MISD, frags), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "site 2"));
    struct dict_node badid[] = {{65, 0}, {2, 1}};
    CU_ASSERT_EQUAL(dict_place(badid, 2, 4, 2, DICT_PLACE_MISD, frags), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "node id 65"));
    struct dict_node ok[] = {{1, 0}, {2, 1}};
    CU_ASSERT_EQUAL(dict_place(ok, 2, 0, 2, DICT_PLACE_MISD, frags), NINES_EINVAL);
    CU_ASSERT_EQUAL(dict_place(ok, 2, DICT_MAX_FRAGS + 1, 2, DICT_PLACE_MISD, frags),
                    NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "4097"));
    CU_ASSERT_EQUAL(dict_place(ok, 2, 4, 3, DICT_PLACE_MISD, frags), NINES_EINVAL);
    CU_ASSERT_EQUAL(dict_place(ok, 2, 4, 2, 9, frags), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "scheme 9"));
}

/* A 3 + 3 dictionary with one 18-fragment table. */
static struct dict d3;
static const struct dict_table *make_dict3(void)
{
    struct dict_node n6[] = {{1, 0}, {2, 0}, {3, 0}, {4, 1}, {5, 1}, {6, 1}};
    static const struct dict_column cols[] = {{.name = "k", .type = DICT_T_INT64}};
    static const uint16_t pk[] = {0};
    struct dict_table_def def = {.name = "subs", .ncols = 1, .cols = cols, .npk = 1,
                                 .pk = pk, .method = DICT_FRAG_HASH, .nfrags = 18};
    CU_ASSERT_EQUAL(dict_init(&d3, n6, 6), 0);
    uint32_t id = 0;
    CU_ASSERT_EQUAL(dict_create_table(&d3, &def, &id), 0);
    return dict_table_by_id(&d3, id);
}

static void test_effective_primary(void)
{
    const struct dict_table *t = make_dict3();
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    dict_liveset all = 0;
    for (uint32_t id = 1; id <= 6; id++)
        all |= DICT_LIVE(id);
    uint32_t node;
    for (uint32_t f = 0; f < t->nfrags; f++) {
        CU_ASSERT_EQUAL(dict_effective_primary(t, f, all, &node), 0);
        CU_ASSERT_EQUAL(node, t->frags[f].primary);
    }
    /* one node down: its 3 primaries are taken over by 3 different nodes */
    for (uint32_t down = 1; down <= 6; down++) {
        uint32_t takers[7] = {0}, lost = 0;
        for (uint32_t f = 0; f < t->nfrags; f++) {
            CU_ASSERT_EQUAL_FATAL(dict_effective_primary(t, f, all & ~DICT_LIVE(down), &node), 0);
            CU_ASSERT_NOT_EQUAL(node, down);
            if (t->frags[f].primary == down) {
                CU_ASSERT_EQUAL(node, t->frags[f].standby);
                takers[node]++;
                lost++;
            }
        }
        uint32_t distinct = 0;
        for (uint32_t i = 1; i <= 6; i++)
            distinct += takers[i] > 0;
        CU_ASSERT_EQUAL(lost, 3);
        CU_ASSERT_EQUAL(distinct, 3);
    }
    /* two nodes down at different sites: exactly the fragments they share
     * (2 = the pair count) are unavailable, with a clear error */
    dict_liveset live = all & ~DICT_LIVE(2) & ~DICT_LIVE(5);
    uint32_t unavailable = 0;
    for (uint32_t f = 0; f < t->nfrags; f++) {
        int rc = dict_effective_primary(t, f, live, &node);
        if (rc == 0) {
            CU_ASSERT(node != 2 && node != 5);
            continue;
        }
        CU_ASSERT_EQUAL(rc, NINES_EUNREACHABLE);
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "unavailable"));
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "are both down"));
        unavailable++;
    }
    CU_ASSERT_EQUAL(unavailable, 2);
    /* two nodes down at the same site: everything still available */
    live = all & ~DICT_LIVE(1) & ~DICT_LIVE(3);
    for (uint32_t f = 0; f < t->nfrags; f++)
        CU_ASSERT_EQUAL(dict_effective_primary(t, f, live, &node), 0);
    CU_ASSERT_EQUAL(dict_effective_primary(t, 18, all, &node), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "no fragment 18"));
    dict_free(&d3);
}

static int site_of(uint32_t id)
{
    for (uint32_t i = 0; i < d3.nnodes; i++)
        if (d3.nodes[i].id == id)
            return (int)d3.nodes[i].site;
    return -1;
}

/* Roles in a node set: both, alone (either replica left), down; the log
 * copy at the other site, spread, never a non-current node. */
static void test_frag_roles(void)
{
    const struct dict_table *t = make_dict3();
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    dict_liveset all = 0;
    for (uint32_t id = 1; id <= 6; id++)
        all |= DICT_LIVE(id);
    struct dict_roles r;
    for (uint32_t f = 0; f < t->nfrags; f++) {
        CU_ASSERT_EQUAL(dict_frag_roles(&d3, t, f, all, &r), 0);
        CU_ASSERT_EQUAL(r.state, DICT_FRAG_BOTH);
        CU_ASSERT_EQUAL(r.primary, t->frags[f].primary);
        CU_ASSERT_EQUAL(r.standby, t->frags[f].standby);
        CU_ASSERT_EQUAL(r.logcopy, 0);
    }
    for (uint32_t down = 1; down <= 6; down++) {
        uint32_t copies[7] = {0};
        for (uint32_t f = 0; f < t->nfrags; f++) {
            const struct dict_frag *fr = &t->frags[f];
            CU_ASSERT_EQUAL_FATAL(dict_frag_roles(&d3, t, f, all & ~DICT_LIVE(down), &r), 0);
            if (fr->primary != down && fr->standby != down) {
                CU_ASSERT_EQUAL(r.state, DICT_FRAG_BOTH);
                continue;
            }
            CU_ASSERT_EQUAL(r.state, DICT_FRAG_ALONE);
            CU_ASSERT_EQUAL(r.primary, fr->primary == down ? fr->standby : fr->primary);
            CU_ASSERT_EQUAL(r.standby, 0);
            CU_ASSERT(r.logcopy != 0 && r.logcopy != down);
            CU_ASSERT_NOT_EQUAL(site_of(r.logcopy), site_of(r.primary));
            copies[r.logcopy]++;
        }
        uint32_t distinct = 0;
        for (uint32_t i = 1; i <= 6; i++)
            distinct += copies[i] > 0;
        CU_ASSERT(distinct >= 2); /* spread over the dead node's site-mates */
    }
    /* a whole site gone: fragments alone, no log copy possible */
    dict_liveset site0 = 0;
    for (uint32_t id = 1; id <= 6; id++)
        if (site_of(id) == 0)
            site0 |= DICT_LIVE(id);
    for (uint32_t f = 0; f < t->nfrags; f++) {
        CU_ASSERT_EQUAL(dict_frag_roles(&d3, t, f, site0, &r), 0);
        CU_ASSERT_EQUAL(r.state, DICT_FRAG_ALONE);
        CU_ASSERT_EQUAL(site_of(r.primary), 0);
        CU_ASSERT_EQUAL(r.logcopy, 0);
    }
    /* both replicas gone */
    const struct dict_frag *f0 = &t->frags[0];
    CU_ASSERT_EQUAL(dict_frag_roles(&d3, t, 0, all & ~DICT_LIVE(f0->primary) &
                                                  ~DICT_LIVE(f0->standby), &r), 0);
    CU_ASSERT_EQUAL(r.state, DICT_FRAG_DOWN);
    CU_ASSERT_EQUAL(r.primary, 0);
    CU_ASSERT_EQUAL(dict_frag_roles(&d3, t, 18, all, &r), NINES_EINVAL);
    dict_free(&d3);
}

static void test_report(void)
{
    const struct dict_table *t = make_dict3();
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    char small[16];
    int need = dict_report(&d3, t, DICT_REPORT_TEXT, small, sizeof small);
    CU_ASSERT(need > (int)sizeof small);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    char *buf = malloc((size_t)need + 1);
    CU_ASSERT_EQUAL(dict_report(&d3, t, DICT_REPORT_TEXT, buf, (size_t)need + 1), need);
    CU_ASSERT_EQUAL(strlen(buf), (size_t)need);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "table 'subs' (id 1): hash, 18 fragments"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "       0        1        4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "   1     0          3         3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "2 (1/1)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "largest pair count 2, least possible 2"));
    free(buf);
    need = dict_report(&d3, t, DICT_REPORT_JSON, NULL, 0);
    CU_ASSERT_FATAL(need > 0);
    buf = malloc((size_t)need + 1);
    CU_ASSERT_EQUAL(dict_report(&d3, t, DICT_REPORT_JSON, buf, (size_t)need + 1), need);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "{\"table\":\"subs\",\"id\":1,\"dict_version\":1,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "{\"fragment\":0,\"primary\":1,\"standby\":4}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "{\"id\":6,\"site\":1,\"primaries\":3,\"standbys\":3}"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(buf, "{\"a\":1,\"b\":4,\"a_primary\":1,\"b_primary\":1,\"shared\":2}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"max_pair\":2,\"min_pair\":2,\"same_site\":0}"));
    free(buf);
    CU_ASSERT_EQUAL(dict_report(&d3, t, 7, NULL, 0), NINES_EINVAL);
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(dict_report_file(&d3, t, DICT_REPORT_TEXT, f), 0);
    CU_ASSERT_EQUAL(ftell(f), (long)dict_report(&d3, t, DICT_REPORT_TEXT, NULL, 0));
    fclose(f);
    dict_free(&d3);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"equal_sites_1_to_8", test_equal_sites},
        {"unequal_sites", test_unequal_sites},
        {"unequal_loads", test_unequal_loads},
        {"worked_examples", test_worked_examples},
        {"circular", test_circular},
        {"place_errors", test_place_errors},
        {"effective_primary", test_effective_primary},
        {"frag_roles", test_frag_roles},
        {"report", test_report},
        {NULL, NULL},
    };
    cu_add_suite("dict_place", NULL, NULL, cases);
}
