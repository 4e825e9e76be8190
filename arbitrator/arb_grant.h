/* The arbitrator's grant rule and its record on disk (internal to
 * arbitrator/; the unit test uses it directly). README.md "The rule" and
 * "The grant file". */
#ifndef NINES_ARB_GRANT_H
#define NINES_ARB_GRANT_H
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define ARB_FILE_NAME "arbitrator.grant"
#define ARB_LOCK_NAME "arbitrator.lock"
#define ARB_REC_VERSION 1u
#define ARB_REC_SIZE 136u            /* bytes of a version-1 record */
#define ARB_REC_MAGIC "NINESARB"     /* 8 bytes, no NUL */

/* The highest epoch granted and what for (epoch 0: nothing granted). */
struct arb_grant {
    uint64_t epoch;
    uint64_t members, current;
    uint64_t prev_members;     /* the set the granted proposal replaced */
    uint32_t coordinator;      /* the proposal's coordinator */
    uint32_t node;             /* the node that asked first */
    uint64_t granted_us;       /* wall clock of the grant, µs since 1970 */
    char cluster[NINES_NAME_MAX];
};

/* One vote request, as the arbitrator checks it. */
struct arb_req {
    const char *cluster;       /* ArbVoteReq.cluster (may be NULL: empty) */
    uint32_t node;
    uint64_t prev_members;
    int has_proposal;
    uint64_t epoch, members, current;
    uint32_t coordinator;
};

enum arb_verdict {
    ARB_GRANT_NEW = 1,   /* an epoch above every grant: record it, then answer CONF */
    ARB_GRANT_AGAIN,     /* the granted epoch with the granted members: CONF again */
    ARB_REFUSE,          /* REF: error, reason, and the grant it names */
};

struct arb_decision {
    enum arb_verdict verdict;
    int error;                 /* ARB_REFUSE: NINES_E* */
    char reason[240];
    uint64_t epoch;            /* the epoch the answer is about */
    uint64_t members;          /* the set granted for that epoch (0: none) */
    struct arb_grant next;     /* ARB_GRANT_NEW: the record to store before answering */
};

/* The rule. `configured`: bit (id - 1) for every node of the cluster file;
 * `cluster`: this arbitrator's cluster name; `cur`: what is granted so far;
 * `now_us`: wall clock for the record. Pure: no I/O, no state. */
void arb_decide(const struct arb_grant *cur, const char *cluster, uint64_t configured,
                const struct arb_req *req, uint64_t now_us, struct arb_decision *out);

/* Record codec: encode writes exactly ARB_REC_SIZE bytes. decode checks
 * size, magic, version, length, CRC-32C, reserved bytes, the cluster name's
 * termination and that it is `cluster`: NINES_ECORRUPT, NINES_EVERSION or
 * NINES_ECONFIG with a detail naming `name`, the offset and the values. */
void arb_rec_encode(const struct arb_grant *g, uint8_t out[ARB_REC_SIZE]);
int arb_rec_decode(const uint8_t *buf, size_t len, const char *cluster, const char *name,
                   struct arb_grant *out);

/* path = "DIR/arbitrator.grant". Load: a missing file is "nothing granted"
 * (returns 0 with out->epoch 0); a leftover "PATH.tmp" from a crash before
 * its rename is removed (it was never answered). Store: "PATH.tmp", write,
 * fsync, rename, fsync the folder — only then may the answer go out. */
int arb_rec_load(const char *path, const char *cluster, struct arb_grant *out);
int arb_rec_store(const char *path, const struct arb_grant *g);

/* "{1,3}" for members 0b101; "{}" for 0. Returns buf. */
const char *arb_set_str(uint64_t members, char *buf, size_t n);
#endif
