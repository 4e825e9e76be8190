/* Identities and the fragment schema the harnesses and their seeds share. */
#ifndef NINES_FUZZ_IDS_H
#define NINES_FUZZ_IDS_H
#include "kernel/kern_frag.h"

#define FUZZ_NODE 1u
#define FUZZ_CLUSTER 0x1122334455667788ull

/* table 7, fragment 3: grp int32 | name vbytes(24) | val int64 | note vstr(64) NULL;
 * key (grp, name) (the schema of tests/unit/kern_frag_test_util.h) */
static const struct kern_col fuzz_cols[] = {
    {KERN_T_INT32, 0, 0},
    {KERN_T_VBYTES, 0, 24},
    {KERN_T_INT64, 0, 0},
    {KERN_T_VSTR, 1, 64},
};
static const uint16_t fuzz_pk[] = {0, 1};
static inline struct kern_frag_def fuzz_frag_def(void)
{
    struct kern_frag_def d = {7, 3, fuzz_cols, 4, fuzz_pk, 2};
    return d;
}
#endif
