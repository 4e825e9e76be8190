/* The node-set file (supervisor/sup_nsfile.c; supervisor/README.md
 * "Whole-cluster restart"): what a node writes at each install and reads at
 * start. Decoding never trusts the bytes: every flipped byte, a cut or
 * longer file, another node's or cluster's file is refused. */
#include "cu_test.h"
#include "nines/errors.h"
#include "supervisor/sup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct sup_nsf_set V = {.epoch = 42, .members = 0xf, .current = 0x5,
                                     .standby_only = 0x4};

static void test_roundtrip(void)
{
    uint8_t b[SUP_NSF_BYTES];
    sup_nsf_encode(&V, 3, 0xabcdefull, b);
    struct sup_nsf_set d;
    CU_ASSERT_EQUAL_FATAL(sup_nsf_decode(b, sizeof b, 3, 0xabcdefull, &d), 0);
    CU_ASSERT_EQUAL(d.epoch, 42);
    CU_ASSERT_EQUAL(d.members, 0xf);
    CU_ASSERT_EQUAL(d.current, 0x5);
    CU_ASSERT_EQUAL(d.standby_only, 0x4);
    /* the encoding is deterministic */
    uint8_t b2[SUP_NSF_BYTES];
    sup_nsf_encode(&d, 3, 0xabcdefull, b2);
    CU_ASSERT(memcmp(b, b2, sizeof b) == 0);
}

static void test_refusals(void)
{
    uint8_t b[SUP_NSF_BYTES + 1];
    sup_nsf_encode(&V, 3, 7, b);
    struct sup_nsf_set d;
    for (size_t i = 0; i < SUP_NSF_BYTES; i++)
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            int rc = sup_nsf_decode(b, SUP_NSF_BYTES, 3, 7, &d);
            CU_ASSERT(rc == NINES_ECORRUPT || rc == NINES_EVERSION);
            b[i] ^= (uint8_t)(1u << bit);
        }
    for (size_t n = 0; n < SUP_NSF_BYTES; n++)
        CU_ASSERT_EQUAL(sup_nsf_decode(b, n, 3, 7, &d), NINES_ETRUNC);
    b[SUP_NSF_BYTES] = 0;
    CU_ASSERT_EQUAL(sup_nsf_decode(b, SUP_NSF_BYTES + 1, 3, 7, &d), NINES_ECORRUPT);
    CU_ASSERT_EQUAL(sup_nsf_decode(b, SUP_NSF_BYTES, 4, 7, &d), NINES_EINVAL);
    CU_ASSERT_EQUAL(sup_nsf_decode(b, SUP_NSF_BYTES, 3, 8, &d), NINES_EINVAL);
    /* sets that do not nest, with a valid CRC */
    struct sup_nsf_set bad = V;
    bad.current = 0x30; /* not members */
    sup_nsf_encode(&bad, 3, 7, b);
    CU_ASSERT_EQUAL(sup_nsf_decode(b, SUP_NSF_BYTES, 3, 7, &d), NINES_ECORRUPT);
    bad = V;
    bad.epoch = 0;
    sup_nsf_encode(&bad, 3, 7, b);
    CU_ASSERT_EQUAL(sup_nsf_decode(b, SUP_NSF_BYTES, 3, 7, &d), NINES_ECORRUPT);
}

static void test_read(void)
{
    char path[] = "/tmp/sup_nsf_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t b[SUP_NSF_BYTES];
    sup_nsf_encode(&V, 1, 9, b);
    CU_ASSERT_EQUAL(write(fd, b, sizeof b), (ssize_t)sizeof b);
    close(fd);
    struct sup_nsf_set d;
    CU_ASSERT_EQUAL(sup_nsf_read(path, 1, 9, &d), 0);
    CU_ASSERT_EQUAL(d.epoch, 42);
    CU_ASSERT_EQUAL(truncate(path, 30), 0);
    CU_ASSERT_EQUAL(sup_nsf_read(path, 1, 9, &d), NINES_ETRUNC);
    unlink(path);
    CU_ASSERT_EQUAL(sup_nsf_read(path, 1, 9, &d), NINES_ENOTFOUND);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"roundtrip", test_roundtrip},
        {"refusals", test_refusals},
        {"read", test_read},
        {NULL, NULL},
    };
    cu_add_suite("sup_nsfile", NULL, NULL, cases);
}
