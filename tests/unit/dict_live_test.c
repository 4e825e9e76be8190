/* The dictionary pieces the node's dictionary service uses: dict_clone
 * (a deep, validated copy), dict_save_image (the atomic write of an image
 * encoded earlier) and the placement report with the current node set
 * (dict_report_live). */
#include "cu_test.h"
#include "dict/dict.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct dict_node nodes[] = {{1, 0}, {2, 1}, {3, 0}, {4, 1}};

static void build(struct dict *d)
{
    CU_ASSERT_EQUAL_FATAL(dict_init(d, nodes, 4), 0);
    struct dict_column cols[2] = {{.name = "id", .type = DICT_T_INT64},
                                  {.name = "v", .type = DICT_T_VARSTRING, .size = 20}};
    uint16_t pk[] = {0};
    struct dict_table_def t = {.name = "subs", .ncols = 2, .cols = cols, .npk = 1, .pk = pk,
                               .method = DICT_FRAG_HASH, .nfrags = 8};
    CU_ASSERT_EQUAL_FATAL(dict_create_table(d, &t, NULL), 0);
}

static void same_image(const struct dict *a, const struct dict *b)
{
    uint8_t *ia, *ib;
    size_t la, lb;
    CU_ASSERT_EQUAL_FATAL(dict_encode(a, &ia, &la), 0);
    CU_ASSERT_EQUAL_FATAL(dict_encode(b, &ib, &lb), 0);
    CU_ASSERT_EQUAL(la, lb);
    CU_ASSERT(la == lb && memcmp(ia, ib, la) == 0);
    free(ia);
    free(ib);
}

static void test_clone(void)
{
    struct dict d, c;
    build(&d);
    CU_ASSERT_EQUAL_FATAL(dict_clone(&d, &c), 0);
    same_image(&d, &c);
    /* independent: a change to the copy leaves the original alone */
    CU_ASSERT_EQUAL(dict_drop_table(&c, "subs"), 0);
    CU_ASSERT_EQUAL(c.version, 2);
    CU_ASSERT_EQUAL(d.version, 1);
    CU_ASSERT_PTR_NOT_NULL(dict_table_by_name(&d, "subs"));
    CU_ASSERT_PTR_NULL(dict_table_by_name(&c, "subs"));
    dict_free(&c);
    dict_free(&d);
}

static void test_save_image(void)
{
    struct dict d, l;
    build(&d);
    char path[] = "/tmp/dict_live_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    uint8_t *img;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(dict_encode(&d, &img, &len), 0);
    CU_ASSERT_EQUAL(dict_save_image(img, len, path), 0);
    CU_ASSERT_EQUAL_FATAL(dict_load(path, &l), 0);
    same_image(&d, &l);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0);
    /* a flipped byte in the image is refused at load */
    img[40] ^= 0x01;
    CU_ASSERT_EQUAL(dict_save_image(img, len, path), 0);
    dict_free(&l);
    CU_ASSERT_EQUAL(dict_load(path, &l), NINES_ECORRUPT);
    CU_ASSERT_EQUAL(l.ntables, 0);
    free(img);
    /* a folder that does not exist: an error naming the path */
    CU_ASSERT_EQUAL(dict_save_image((const uint8_t *)"x", 1, "/nonexistent/dir/f"), NINES_ESYS);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "/nonexistent/dir/f.tmp"));
    unlink(path);
    dict_free(&d);
}

static void test_report_live(void)
{
    struct dict d;
    build(&d);
    const struct dict_table *t = dict_table_by_name(&d, "subs");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    char buf[8192];
    /* all up: effective = primary */
    dict_liveset all = DICT_LIVE(1) | DICT_LIVE(2) | DICT_LIVE(3) | DICT_LIVE(4);
    int n = dict_report_live(&d, t, DICT_REPORT_JSON, all, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"live\":[1,2,3,4]"));
    for (uint32_t f = 0; f < t->nfrags; f++) {
        char want[96];
        snprintf(want, sizeof want, "{\"fragment\":%u,\"primary\":%u,\"standby\":%u,"
                 "\"effective\":%u}", f, t->frags[f].primary, t->frags[f].standby,
                 t->frags[f].primary);
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, want));
    }
    /* node 1 down: its fragments run on their standbys */
    dict_liveset no1 = all & ~DICT_LIVE(1);
    n = dict_report_live(&d, t, DICT_REPORT_JSON, no1, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"live\":[2,3,4]"));
    CU_ASSERT_PTR_NULL(strstr(buf, "\"effective\":1"));
    for (uint32_t f = 0; f < t->nfrags; f++) {
        char want[96];
        uint32_t eff = t->frags[f].primary == 1 ? t->frags[f].standby : t->frags[f].primary;
        snprintf(want, sizeof want, "{\"fragment\":%u,\"primary\":%u,\"standby\":%u,"
                 "\"effective\":%u}", f, t->frags[f].primary, t->frags[f].standby, eff);
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, want));
    }
    /* nodes 1 and 2 down: the fragment they share is unavailable */
    dict_liveset no12 = DICT_LIVE(3) | DICT_LIVE(4);
    n = dict_report_live(&d, t, DICT_REPORT_JSON, no12, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"effective\":null"));
    n = dict_report_live(&d, t, DICT_REPORT_TEXT, no12, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "live nodes: 3 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "fragment  primary  standby  effective"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "none"));
    /* the plain report is unchanged: no effective column */
    n = dict_report(&d, t, DICT_REPORT_JSON, buf, sizeof buf);
    CU_ASSERT(n > 0);
    CU_ASSERT_PTR_NULL(strstr(buf, "effective"));
    CU_ASSERT_PTR_NULL(strstr(buf, "\"live\""));
    /* snprintf semantics also with the live set */
    int need = dict_report_live(&d, t, DICT_REPORT_TEXT, all, NULL, 0);
    CU_ASSERT(need > 0);
    CU_ASSERT_EQUAL(dict_report_live(&d, t, DICT_REPORT_TEXT, all, buf, 10), need);
    CU_ASSERT_EQUAL(strlen(buf), 9);
    dict_free(&d);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"clone is a deep, equal copy", test_clone},
        {"save an encoded image atomically", test_save_image},
        {"placement report with the live node set", test_report_live},
        {NULL, NULL},
    };
    cu_add_suite("dict_live", NULL, NULL, cases);
}
