/* The grant rule (README.md "The rule"): one set per epoch, never an epoch
 * below the highest granted. Pure function over (record, request). */
#include "arb_grant.h"

#include "nines/errors.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const char *arb_set_str(uint64_t members, char *buf, size_t n)
{
    size_t off = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    off += (size_t)snprintf(buf, n, "{");
    bool first = true;
    for (uint32_t id = 1; id <= 64 && off < n; id++) {
        if (!(members & ((uint64_t)1 << (id - 1))))
            continue;
        off += (size_t)snprintf(buf + off, n - off, "%s%u", first ? "" : ",", id);
        first = false;
    }
    if (off < n)
        snprintf(buf + off, n - off, "}");
    return buf;
}

static void refuse(struct arb_decision *out, int error, uint64_t epoch, uint64_t members,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void refuse(struct arb_decision *out, int error, uint64_t epoch, uint64_t members,
                   const char *fmt, ...)
{
    out->verdict = ARB_REFUSE;
    out->error = error;
    out->epoch = epoch;
    out->members = members;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

/* The request's shape, before the rule: 0, or refused into out. */
static int check_request(const struct arb_grant *cur, const char *cluster, uint64_t configured,
                         const struct arb_req *r, struct arb_decision *out)
{
    char a[200], b[200];
    uint64_t same = cur->epoch == r->epoch ? cur->members : 0;
    const char *asked = r->cluster ? r->cluster : "";
    if (strcmp(asked, cluster) != 0) {
        refuse(out, NINES_ECONFIG, r->epoch, same,
               "cluster '%.64s' asked; this arbitrator serves cluster '%s'", asked, cluster);
        return -1;
    }
    if (!r->has_proposal) {
        refuse(out, NINES_EINVAL, 0, 0, "the vote request carries no proposal");
        return -1;
    }
    if (r->node < 1 || r->node > 64 || !(configured & ((uint64_t)1 << (r->node - 1)))) {
        refuse(out, NINES_EINVAL, r->epoch, same, "node %u is not a node of cluster '%s'",
               r->node, cluster);
        return -1;
    }
    if (r->epoch == 0) {
        refuse(out, NINES_EINVAL, 0, 0, "node %u proposes epoch 0 (epochs start at 1)", r->node);
        return -1;
    }
    if (r->members == 0 || (r->members & ~configured)) {
        refuse(out, NINES_EINVAL, r->epoch, same,
               "node %u proposes members %s: empty or naming unconfigured nodes (configured %s)",
               r->node, arb_set_str(r->members, a, sizeof a), arb_set_str(configured, b, sizeof b));
        return -1;
    }
    if (r->prev_members == 0 || (r->prev_members & ~configured)) {
        refuse(out, NINES_EINVAL, r->epoch, same,
               "node %u names previous members %s: empty or naming unconfigured nodes", r->node,
               arb_set_str(r->prev_members, a, sizeof a));
        return -1;
    }
    if (r->current & ~r->members) {
        refuse(out, NINES_EINVAL, r->epoch, same,
               "node %u proposes current %s, not a subset of members %s", r->node,
               arb_set_str(r->current, a, sizeof a), arb_set_str(r->members, b, sizeof b));
        return -1;
    }
    uint64_t cbit = r->coordinator >= 1 && r->coordinator <= 64
                        ? (uint64_t)1 << (r->coordinator - 1) : 0;
    if (!(r->members & cbit) || !(r->members & ((uint64_t)1 << (r->node - 1)))) {
        refuse(out, NINES_EINVAL, r->epoch, same,
               "node %u proposes members %s with coordinator %u: the asking node and the "
               "coordinator must both be members", r->node, arb_set_str(r->members, a, sizeof a),
               r->coordinator);
        return -1;
    }
    int kept = __builtin_popcountll(r->members & r->prev_members);
    int prev = __builtin_popcountll(r->prev_members);
    if (2 * kept < prev) {
        refuse(out, NINES_EINVAL, r->epoch, same,
               "node %u proposes members %s keeping %d of the %d previous members %s: less than "
               "half, no tie to break", r->node, arb_set_str(r->members, a, sizeof a), kept, prev,
               arb_set_str(r->prev_members, b, sizeof b));
        return -1;
    }
    return 0;
}

void arb_decide(const struct arb_grant *cur, const char *cluster, uint64_t configured,
                const struct arb_req *r, uint64_t now_us, struct arb_decision *out)
{
    memset(out, 0, sizeof *out);
    if (check_request(cur, cluster, configured, r, out))
        return;
    char a[200], b[200];
    if (cur->epoch == 0 || r->epoch > cur->epoch) {
        out->verdict = ARB_GRANT_NEW;
        out->epoch = r->epoch;
        out->members = r->members;
        out->next = (struct arb_grant){
            .epoch = r->epoch,
            .members = r->members,
            .current = r->current,
            .prev_members = r->prev_members,
            .coordinator = r->coordinator,
            .node = r->node,
            .granted_us = now_us,
        };
        snprintf(out->next.cluster, sizeof out->next.cluster, "%s", cluster);
        return;
    }
    if (r->epoch == cur->epoch) {
        if (r->members == cur->members) {
            out->verdict = ARB_GRANT_AGAIN;
            out->epoch = cur->epoch;
            out->members = cur->members;
            return;
        }
        refuse(out, NINES_ESTATE, cur->epoch, cur->members,
               "epoch %llu is already granted to members %s (asked by node %u); node %u asks "
               "for %s", (unsigned long long)cur->epoch, arb_set_str(cur->members, a, sizeof a),
               cur->node, r->node, arb_set_str(r->members, b, sizeof b));
        return;
    }
    refuse(out, NINES_ESTALE, cur->epoch, cur->members,
           "epoch %llu is stale: epoch %llu is already granted to members %s; node %u asks for "
           "%s", (unsigned long long)r->epoch, (unsigned long long)cur->epoch,
           arb_set_str(cur->members, a, sizeof a), r->node, arb_set_str(r->members, b, sizeof b));
}
