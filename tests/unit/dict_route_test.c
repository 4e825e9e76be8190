/* Routing: hash test vectors, jump hash properties, determinism and
 * distribution of hash routing, range boundaries. */
#include "cu_test.h"
#include "dict/dict.h"
#include "nines/errors.h"

#include <stdio.h>
#include <string.h>

static void test_vectors(void)
{
    /* published FNV-1a 64 vectors */
    CU_ASSERT_EQUAL(dict_fnv1a64("", 0), 0xcbf29ce484222325ULL);
    CU_ASSERT_EQUAL(dict_fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
    CU_ASSERT_EQUAL(dict_fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
    /* routing hash = fmix64(FNV-1a 64): values from an independent
     * implementation, listed in dict/README.md */
    CU_ASSERT_EQUAL(dict_hash64("", 0), 0xefd01f60ba992926ULL);
    CU_ASSERT_EQUAL(dict_hash64("a", 1), 0x82a2a958a9bece5bULL);
    CU_ASSERT_EQUAL(dict_hash64("foobar", 6), 0x2c22194922d1672bULL);
    static const uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    CU_ASSERT_EQUAL(dict_hash64(one, 8), 0x0d4ad0eb39c50357ULL);
    /* jump consistent hash of those values */
    static const uint32_t nb[] = {1, 2, 7, 64, 1000};
    static const uint32_t want[3][5] = {{0, 1, 1, 59, 499}, {0, 1, 5, 24, 723},
                                        {0, 1, 3, 38, 38}};
    const char *keys[] = {"", "a", "foobar"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 5; i++)
            CU_ASSERT_EQUAL(dict_jump(dict_hash64(keys[k], strlen(keys[k])), nb[i]),
                            want[k][i]);
}

/* Growing the bucket count by one moves keys only into the new bucket. */
static void test_jump_monotone(void)
{
    for (uint32_t n = 1; n < 70; n++) {
        uint32_t moved = 0;
        for (uint64_t k = 0; k < 2000; k++) {
            uint64_t h = dict_hash64(&k, sizeof k);
            uint32_t a = dict_jump(h, n), b = dict_jump(h, n + 1);
            CU_ASSERT(a < n);
            if (a != b) {
                CU_ASSERT_EQUAL(b, n);
                moved++;
            }
        }
        /* about 2000/(n+1) move; a generous bound both ways */
        uint32_t expect = 2000 / (n + 1);
        CU_ASSERT(moved <= 2 * expect + 20);
        if (expect >= 20)
            CU_ASSERT(moved >= expect / 2);
    }
}

static void be64(uint64_t v, uint8_t *out)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static const struct dict_column col = {.name = "k", .type = DICT_T_INT64};
static const uint16_t pk0 = 0;

static void test_hash_distribution(void)
{
    struct dict_table_def def = {.name = "t", .ncols = 1, .cols = &col, .npk = 1, .pk = &pk0,
                                 .method = DICT_FRAG_HASH, .nfrags = 64};
    CU_ASSERT_EQUAL_FATAL(dict_table_validate(&def), 0);
    /* two dictionaries (node and client) route identically */
    static const struct dict_node nodes[] = {{1, 0}, {2, 1}};
    struct dict d1, d2;
    uint32_t id1, id2;
    CU_ASSERT_EQUAL_FATAL(dict_init(&d1, nodes, 2), 0);
    CU_ASSERT_EQUAL_FATAL(dict_init(&d2, nodes, 2), 0);
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&d1, &def, &id1), 0);
    CU_ASSERT_EQUAL_FATAL(dict_create_table(&d2, &def, &id2), 0);
    const struct dict_table *t1 = dict_table_by_id(&d1, id1), *t2 = dict_table_by_id(&d2, id2);
    uint32_t count[64] = {0};
    const uint32_t nkeys = 64000;
    for (uint64_t i = 0; i < nkeys; i++) {
        uint8_t k[8];
        be64(i ^ 0x8000000000000000ULL, k); /* like an order-preserving int64 key */
        int f = dict_route(t1, k, 8);
        CU_ASSERT_FATAL(f >= 0 && f < 64);
        CU_ASSERT_EQUAL(dict_route(t2, k, 8), f);
        CU_ASSERT_EQUAL(dict_route_def(&def, k, 8), f);
        count[f]++;
    }
    /* every fragment gets keys, each within 30% of the mean (1000; the
     * standard deviation is about 31) */
    for (int f = 0; f < 64; f++) {
        CU_ASSERT(count[f] > 700 && count[f] < 1300);
        if (count[f] <= 700 || count[f] >= 1300)
            fprintf(stderr, "fragment %d got %u keys\n", f, count[f]);
    }
    /* short string keys over 7 fragments */
    def.nfrags = 7;
    uint32_t c7[7] = {0};
    for (uint32_t i = 0; i < 7000; i++) {
        char k[16];
        int len = snprintf(k, sizeof k, "sub%u", i);
        c7[dict_route_def(&def, (const uint8_t *)k, (size_t)len)]++;
    }
    for (int f = 0; f < 7; f++)
        CU_ASSERT(c7[f] > 700 && c7[f] < 1300);
    /* a single fragment takes everything; bad keys are refused */
    def.nfrags = 1;
    CU_ASSERT_EQUAL(dict_route_def(&def, (const uint8_t *)"x", 1), 0);
    CU_ASSERT_EQUAL(dict_route_def(&def, (const uint8_t *)"x", 0), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "empty key"));
    static uint8_t big[DICT_KEY_MAX + 1];
    CU_ASSERT_EQUAL(dict_route_def(&def, big, sizeof big), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "2049 bytes"));
    def.nfrags = 0;
    CU_ASSERT_EQUAL(dict_route_def(&def, (const uint8_t *)"x", 1), NINES_EINVAL);
    dict_free(&d1);
    dict_free(&d2);
}

#define K(s) (const uint8_t *)(s), sizeof(s) - 1

static void test_range(void)
{
    static const struct dict_key sp[] = {{(const uint8_t *)"g", 1},
                                         {(const uint8_t *)"n", 1},
                                         {(const uint8_t *)"t\x00\x05", 3}};
    struct dict_table_def def = {.name = "r", .ncols = 1, .cols = &col, .npk = 1, .pk = &pk0,
                                 .method = DICT_FRAG_RANGE, .nsplits = 3, .splits = sp};
    CU_ASSERT_EQUAL_FATAL(dict_table_validate(&def), 0);
    CU_ASSERT_EQUAL(dict_route_def(&def, K("\x00")), 0);     /* lowest key */
    CU_ASSERT_EQUAL(dict_route_def(&def, K("a")), 0);        /* below first split */
    CU_ASSERT_EQUAL(dict_route_def(&def, K("f\xff\xff")), 0);
    CU_ASSERT_EQUAL(dict_route_def(&def, K("g")), 1);        /* equal: upper fragment */
    CU_ASSERT_EQUAL(dict_route_def(&def, K("g\x00")), 1);    /* longer sorts after */
    CU_ASSERT_EQUAL(dict_route_def(&def, K("m\xff")), 1);
    CU_ASSERT_EQUAL(dict_route_def(&def, K("n")), 2);
    CU_ASSERT_EQUAL(dict_route_def(&def, K("t")), 2);        /* prefix of a split */
    CU_ASSERT_EQUAL(dict_route_def(&def, K("t\x00\x04\xff")), 2);
    CU_ASSERT_EQUAL(dict_route_def(&def, K("t\x00\x05")), 3); /* equal to last split */
    CU_ASSERT_EQUAL(dict_route_def(&def, K("zzz")), 3);      /* above last split */
    CU_ASSERT_EQUAL(dict_route_def(&def, K("\xff\xff")), 3);
    /* against a linear scan, for many keys */
    for (uint32_t i = 0; i < 256 * 4; i++) {
        uint8_t k[2] = {(uint8_t)(i >> 2), (uint8_t)(i * 64)};
        size_t len = (i & 1) ? 2 : 1;
        int want = 0;
        for (int s = 0; s < 3; s++)
            if (dict_key_cmp(sp[s].bytes, sp[s].len, k, len) <= 0)
                want = s + 1;
        CU_ASSERT_EQUAL(dict_route_def(&def, k, len), want);
    }
    /* no split points: one fragment */
    def.nsplits = 0;
    CU_ASSERT_EQUAL(dict_route_def(&def, K("anything")), 0);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"vectors", test_vectors},
        {"jump_monotone", test_jump_monotone},
        {"hash_distribution", test_hash_distribution},
        {"range", test_range},
        {NULL, NULL},
    };
    cu_add_suite("dict_route", NULL, NULL, cases);
}
