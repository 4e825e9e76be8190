/* arbitrator — the tie-breaker of the node-set protocol (module API, used by
 * the supervisor, tools and tests). arbitrator/README.md has the rule, the
 * message sequences, the grant file and what a crash leaves.
 *
 * Client side (any thread; no shared state):
 *   arb_vote    ask the configured arbitrator to grant `proposal` for its
 *               epoch (ARB_VOTE_REQ -> ARB_VOTE_CONF | ARB_VOTE_REF)
 *   arb_status  its last grant and counters (STATUS_REQ -> STATUS_CONF)
 * Server side (one owner thread): arb_srv_* — the `ninesarb` process. */
#ifndef NINES_ARB_H
#define NINES_ARB_H
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "nines_net.pb-c.h"

struct arb_answer {
    bool granted;        /* ARB_VOTE_CONF for exactly the proposal's epoch and members */
    uint64_t epoch;      /* granted: the proposal's epoch; refused: the epoch the refusal
                            names (the asked one, or the higher one granted: stale) */
    uint64_t members;    /* the set granted for `epoch` (0: none recorded) */
    int error;           /* refused: the arbitrator's NINES_E* code; else 0 */
    char reason[256];    /* refused or failed: why, in words */
};

/* Ask the arbitrator of `c` to grant `proposal` (epoch, members, current,
 * coordinator) that replaces `prev_members`, on behalf of node `self`.
 * Blocks at most timeout_ms in total (connect, send, answer) — provided the
 * arbitrator's host is a numeric address (a name is resolved by
 * getaddrinfo, which takes no deadline).
 * Returns 0 when the arbitrator answered: out->granted says whether it
 * granted (out->error / out->reason say why not). Negative when there is
 * no answer to act on, with out->reason = the detail: NINES_ECONFIG (no
 * arbitrator in the cluster file, bad arguments), NINES_ETIMEDOUT,
 * NINES_EUNREACHABLE, NINES_ECLOSED (connection refused or closed),
 * NINES_EPROTO (an answer that does not decode, or a grant of another
 * epoch or set than asked: never taken for a grant). */
int arb_vote(const struct nines_conf *c, uint32_t self, uint64_t prev_members,
             const Nines__NodeSet *proposal, int timeout_ms, struct arb_answer *out);

struct arb_status {
    uint64_t uptime_ms;
    uint64_t epoch;        /* highest epoch granted (0: none) */
    uint64_t members, current;
    uint32_t coordinator;
    uint64_t votes;        /* ARB_VOTE_REQ answered since start */
    uint64_t grants;       /* new epochs granted (recorded) since start */
    uint64_t refusals;     /* votes refused since start */
};
/* STATUS_REQ to the configured arbitrator, within timeout_ms in total
 * (same proviso as arb_vote). 0, or negative with a detail. */
int arb_status(const struct nines_conf *c, int timeout_ms, struct arb_status *out);

/* ---- server (ninesarb) -------------------------------------------------- */
struct arb_srv;
/* Open the grant record in data_dir (created if missing; locked against a
 * second arbitrator on the same folder) and listen on the cluster file's
 * arbitrator address. A corrupt record, a record of another cluster or of
 * an unknown format version refuses to start (detail names the file and
 * what is wrong). */
int arb_srv_open(struct arb_srv **out, const struct nines_conf *c, const char *data_dir);
/* Serve for up to timeout_ms (-1: until woken): 0 or negative. */
int arb_srv_poll(struct arb_srv *s, int timeout_ms);
void arb_srv_wake(struct arb_srv *s);   /* any thread, async-signal-safe */
void arb_srv_close(struct arb_srv *s);
/* The grant file's path ("DIR/arbitrator.grant"). */
const char *arb_srv_path(const struct arb_srv *s);
#endif
