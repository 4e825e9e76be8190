/* Requests in flight per client connection (txctl/README.md "Requests in
 * flight"): a TXN_REQ takes a slot of its connection when it arrives; the
 * slot is given back when the request is answered (TXN_CONF or TXN_REF,
 * txc_to_client) or the connection closes. A request beyond
 * max_requests_per_connection is answered at once with NINES_EAGAIN.
 *
 * Map: connection address -> count, open addressing with linear probing
 * and backward-shift deletion; an entry lives while its count is above 0,
 * so the map holds at most the connections with requests in flight. */
#include "txc_int.h"

#include "nines/errors.h"

#include <stdlib.h>

static size_t slot_of(net_addr a, size_t cap)
{
    uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static size_t find(const struct txc_inflight *m, net_addr a)
{
    size_t i = slot_of(a, m->cap);
    while (m->keys[i] && m->keys[i] != a)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int grow(struct txc_inflight *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    net_addr *keys = calloc(cap, sizeof *keys);
    uint32_t *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return nines_err(NINES_ENOMEM, "no memory for the in-flight request counts");
    }
    struct txc_inflight n = {.keys = keys, .vals = vals, .cap = cap, .n = m->n};
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t j = find(&n, m->keys[i]);
            n.keys[j] = m->keys[i];
            n.vals[j] = m->vals[i];
        }
    free(m->keys);
    free(m->vals);
    *m = n;
    return 0;
}

static void del_at(struct txc_inflight *m, size_t i)
{
    m->keys[i] = 0;
    m->vals[i] = 0;
    m->n--;
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        size_t home = slot_of(m->keys[j], m->cap);
        /* move j back to i when its home is not in (i, j] (cyclically) */
        bool move = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->keys[j] = 0;
            m->vals[j] = 0;
            i = j;
        }
    }
}

int txc_inflight_take(struct txc *t, net_addr conn, uint32_t *count)
{
    struct txc_inflight *m = &t->inflight;
    size_t i = m->cap ? find(m, conn) : 0;
    if ((!m->cap || !m->keys[i]) && (m->n + 1) * 2 > m->cap) {
        /* a new entry: grow first (on failure conn has no entry, so the
         * answer's put finds none and changes nothing) */
        int rc = grow(m);
        if (rc)
            return rc;
        i = find(m, conn);
    }
    if (!m->keys[i]) {
        m->keys[i] = conn;
        m->n++;
    }
    *count = ++m->vals[i];
    return 0;
}

void txc_inflight_put(struct txc *t, net_addr conn)
{
    struct txc_inflight *m = &t->inflight;
    if (!m->cap || conn < NET_CONN_BASE)
        return;
    size_t i = find(m, conn);
    if (!m->keys[i])
        return; /* its connection closed meanwhile */
    if (--m->vals[i] == 0)
        del_at(m, i);
}

void txc_inflight_drop(struct txc *t, net_addr conn)
{
    struct txc_inflight *m = &t->inflight;
    if (!m->cap)
        return;
    size_t i = find(m, conn);
    if (m->keys[i])
        del_at(m, i);
}

uint32_t txc_inflight_count(const struct txc *t, net_addr conn)
{
    const struct txc_inflight *m = &t->inflight;
    if (!m->cap)
        return 0;
    size_t i = find(m, conn);
    return m->keys[i] ? m->vals[i] : 0;
}

void txc_inflight_fini(struct txc *t)
{
    free(t->inflight.keys);
    free(t->inflight.vals);
    t->inflight = (struct txc_inflight){0};
}
