/* The in-memory log of one fragment replica: encoded records in LSN order
 * in a vector of segments; a segment holds consecutive LSNs and an offset
 * per record. Lookup by LSN is a binary search over the segments.
 * README "Log records and CLRs" (in-memory log). */
#include "kern_log.h"

#include "nassert.h"
#include "nines/errors.h"

#include <stdlib.h>
#include <string.h>

struct log_seg {
    uint64_t first_lsn; /* LSN of record 0 */
    uint32_t n;         /* records published */
    uint32_t max_n;     /* capacity of off[] */
    size_t used;        /* bytes published */
    size_t cap;         /* bytes of data[] */
    uint32_t *off;      /* offset of record i in data */
    uint8_t *data;
};

struct kern_log {
    struct log_seg **seg; /* oldest first; never empty */
    size_t nseg, capseg;
    uint64_t next_lsn;
    uint64_t count;
    size_t bytes;
    size_t reserved; /* bytes of the pending reservation at the tail (0: none) */
    kern_log_sink_fn sink; /* kern_log_set_sink */
    void *sink_ctx;
};

static struct log_seg *seg_new(uint64_t first_lsn, size_t cap)
{
    struct log_seg *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->first_lsn = first_lsn;
    s->cap = cap;
    /* the smallest record is a header: no more records than that fit */
    s->max_n = (uint32_t)(cap / KERN_LOG_HDR);
    s->data = malloc(cap);
    s->off = malloc((size_t)s->max_n * sizeof *s->off);
    if (!s->data || !s->off) {
        free(s->data);
        free(s->off);
        free(s);
        return NULL;
    }
    return s;
}

static void seg_free(struct log_seg *s)
{
    if (!s)
        return;
    free(s->data);
    free(s->off);
    free(s);
}

int kern_log_create(uint64_t first_lsn, struct kern_log **out)
{
    if (first_lsn == 0)
        return nines_err(NINES_EINVAL, "log LSNs start at 1, not 0");
    struct kern_log *l = calloc(1, sizeof *l);
    if (!l)
        return nines_err(NINES_ENOMEM, "log header");
    l->capseg = 8;
    l->seg = malloc(l->capseg * sizeof *l->seg);
    if (l->seg)
        l->seg[0] = seg_new(first_lsn, KERN_LOG_SEG);
    if (!l->seg || !l->seg[0]) {
        free(l->seg);
        free(l);
        return nines_err(NINES_ENOMEM, "first log segment");
    }
    l->nseg = 1;
    l->next_lsn = first_lsn;
    *out = l;
    return 0;
}

void kern_log_destroy(struct kern_log *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nseg; i++)
        seg_free(l->seg[i]);
    free(l->seg);
    free(l);
}

uint64_t kern_log_next_lsn(const struct kern_log *l)
{
    return l->next_lsn;
}

uint64_t kern_log_first_lsn(const struct kern_log *l)
{
    return l->seg[0]->first_lsn;
}

uint64_t kern_log_count(const struct kern_log *l)
{
    return l->count;
}

size_t kern_log_bytes(const struct kern_log *l)
{
    return l->bytes;
}

int kern_log_reset(struct kern_log *l, uint64_t next_lsn)
{
    if (l->count)
        return nines_err(NINES_ESTATE, "log reset to LSN %llu with %llu records present",
                         (unsigned long long)next_lsn, (unsigned long long)l->count);
    if (next_lsn == 0)
        return nines_err(NINES_EINVAL, "log LSNs start at 1, not 0");
    N_ASSERT(l->nseg == 1 && l->seg[0]->n == 0);
    l->seg[0]->first_lsn = next_lsn;
    l->next_lsn = next_lsn;
    l->reserved = 0;
    return 0;
}

int kern_log_reserve(struct kern_log *l, size_t len, uint8_t **p)
{
    if (len < KERN_LOG_HDR || len > KERN_LOG_MAX)
        return nines_err(NINES_ETOOBIG, "log record of %zu bytes outside %u..%u", len,
                         KERN_LOG_HDR, KERN_LOG_MAX);
    struct log_seg *t = l->seg[l->nseg - 1];
    if (t->cap - t->used >= len && t->n < t->max_n) {
        *p = t->data + t->used;
        l->reserved = len;
        return 0;
    }
    size_t cap = len > KERN_LOG_SEG ? len : KERN_LOG_SEG;
    struct log_seg *s = seg_new(l->next_lsn, cap);
    if (!s)
        return nines_err(NINES_ENOMEM, "log segment of %zu bytes", cap);
    if (t->n == 0) {
        /* an empty tail (too small for this record) is replaced */
        seg_free(t);
        l->seg[l->nseg - 1] = s;
    } else {
        if (l->nseg == l->capseg) {
            struct log_seg **v = realloc(l->seg, 2 * l->capseg * sizeof *v);
            if (!v) {
                seg_free(s);
                return nines_err(NINES_ENOMEM, "log segment vector of %zu", 2 * l->capseg);
            }
            l->seg = v;
            l->capseg *= 2;
        }
        l->seg[l->nseg++] = s;
    }
    *p = s->data;
    l->reserved = len;
    return 0;
}

void kern_log_publish(struct kern_log *l, size_t len)
{
    struct log_seg *t = l->seg[l->nseg - 1];
    N_ASSERT(l->reserved && len <= l->reserved && len >= KERN_LOG_HDR);
    N_ASSERT(t->n < t->max_n && t->cap - t->used >= len);
    N_ASSERT(t->first_lsn + t->n == l->next_lsn);
    N_DASSERT(memcmp(t->data + t->used + 32, &l->next_lsn, 8) == 0);
    t->off[t->n++] = (uint32_t)t->used;
    t->used += len;
    l->reserved = 0;
    l->next_lsn++;
    l->count++;
    l->bytes += len;
    if (l->sink)
        l->sink(l->sink_ctx, t->data + t->off[t->n - 1], len);
}

void kern_log_set_sink(struct kern_log *l, kern_log_sink_fn fn, void *ctx)
{
    l->sink = fn;
    l->sink_ctx = ctx;
}

int kern_log_append(struct kern_log *l, const struct kern_logrec *r)
{
    if (r->lsn != l->next_lsn)
        return nines_err(NINES_EINVAL, "log append of LSN %llu, the log is at %llu",
                         (unsigned long long)r->lsn, (unsigned long long)l->next_lsn);
    size_t n = kern_logrec_size(r);
    uint8_t *p;
    int rc = kern_log_reserve(l, n, &p);
    if (rc < 0)
        return rc;
    rc = kern_logrec_encode(r, p, n);
    if (rc < 0)
        return rc;
    kern_log_publish(l, n);
    return 0;
}

/* Segment holding `lsn` (first_lsn <= lsn < next_lsn). */
static const struct log_seg *find_seg(const struct kern_log *l, uint64_t lsn)
{
    size_t lo = 0, hi = l->nseg; /* last segment with first_lsn <= lsn */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->seg[mid]->first_lsn <= lsn)
            lo = mid;
        else
            hi = mid;
    }
    return l->seg[lo];
}

int kern_log_get(const struct kern_log *l, uint64_t lsn, const uint8_t **p, size_t *len)
{
    if (lsn >= l->next_lsn)
        return nines_err(NINES_ENOTFOUND, "log LSN %llu not written yet (next is %llu)",
                         (unsigned long long)lsn, (unsigned long long)l->next_lsn);
    if (lsn < kern_log_first_lsn(l))
        return nines_err(NINES_ESTALE, "log LSN %llu truncated (the log starts at %llu)",
                         (unsigned long long)lsn, (unsigned long long)kern_log_first_lsn(l));
    const struct log_seg *s = find_seg(l, lsn);
    uint64_t i = lsn - s->first_lsn;
    N_ASSERT(i < s->n);
    size_t end = i + 1 < s->n ? s->off[i + 1] : s->used;
    *p = s->data + s->off[i];
    *len = end - s->off[i];
    return 0;
}

int kern_log_read(const struct kern_log *l, uint64_t lsn, struct kern_logrec *r)
{
    const uint8_t *p;
    size_t n;
    int rc = kern_log_get(l, lsn, &p, &n);
    if (rc < 0)
        return rc;
    rc = kern_logrec_decode(p, n, r);
    if (rc < 0)
        return rc;
    if (r->lsn != lsn)
        return nines_err(NINES_ECORRUPT, "log slot %llu holds LSN %llu",
                         (unsigned long long)lsn, (unsigned long long)r->lsn);
    return 0;
}

uint64_t kern_log_truncate(struct kern_log *l, uint64_t below)
{
    size_t k = 0;
    uint64_t freed = 0;
    while (k + 1 < l->nseg && l->seg[k]->first_lsn + l->seg[k]->n <= below) {
        freed += l->seg[k]->n;
        l->count -= l->seg[k]->n;
        l->bytes -= l->seg[k]->used;
        seg_free(l->seg[k]);
        k++;
    }
    if (k) {
        memmove(l->seg, l->seg + k, (l->nseg - k) * sizeof *l->seg);
        l->nseg -= k;
    }
    return freed;
}

void kern_log_cursor_init(struct kern_log_cursor *c, const struct kern_log *l, uint64_t from_lsn)
{
    c->log = l;
    c->lsn = from_lsn;
}

int kern_log_cursor_next(struct kern_log_cursor *c, const uint8_t **p, size_t *len)
{
    if (c->lsn >= c->log->next_lsn)
        return NINES_ENOTFOUND;
    int rc = kern_log_get(c->log, c->lsn, p, len);
    if (rc < 0)
        return rc;
    c->lsn++;
    return 0;
}
