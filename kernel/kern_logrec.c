/* Log record codec: fixed 80-byte little-endian header (length, CRC-32C,
 * version, op, ids, LSNs), then key, before image, after image. An ADD
 * record keeps its column in the reserved word (offset 28) and its delta in
 * the undo-next word (offset 64), which only CLRs use otherwise. Table:
 * kernel/README.md "Log records and CLRs". */
#include "kern_log.h"

#include "crc32c.h"
#include "kern_key.h"
#include "kern_rec.h"
#include "nines/errors.h"
#include "nle.h"

#include <string.h>

/* Header field offsets (README table). */
enum {
    OFF_LEN = 0,
    OFF_CRC = 4,
    OFF_VERSION = 8,
    OFF_OP = 9,
    OFF_KLEN = 10,
    OFF_TABLE = 12,
    OFF_FRAG = 16,
    OFF_BLEN = 20,
    OFF_ALEN = 24,
    OFF_RSVD = 28, /* ADD: column; else reserved, 0 */
    OFF_LSN = 32,
    OFF_TXN = 40,
    OFF_SID = 48,
    OFF_PREV = 56,
    OFF_UNDO_NEXT = 64, /* CLR: undo-next LSN; ADD: delta; COMMIT: gci; else 0 */
    OFF_COMP = 72,
    OFF_BODY = 80,
};
_Static_assert(OFF_BODY == KERN_LOG_HDR, "log record header is 80 bytes");
_Static_assert(OFF_COMP + 8 == OFF_BODY, "header fields are contiguous");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "log records are little-endian");
_Static_assert(KERN_KEY_MAX <= UINT16_MAX, "key length fits its 2-byte field");
_Static_assert(KERN_LOG_MAX < (1u << 31), "a record length fits an int");
_Static_assert(sizeof(struct kern_rec) == 16, "images start with the 16-byte record header");


const char *kern_log_op_name(unsigned op)
{
    switch (op) {
    case KERN_LOG_INSERT:
        return "insert";
    case KERN_LOG_UPDATE:
        return "update";
    case KERN_LOG_DELETE:
        return "delete";
    case KERN_LOG_CLR_INSERT:
        return "clr-insert";
    case KERN_LOG_CLR_UPDATE:
        return "clr-update";
    case KERN_LOG_CLR_DELETE:
        return "clr-delete";
    case KERN_LOG_COMMIT:
        return "commit";
    case KERN_LOG_ABORT:
        return "abort";
    case KERN_LOG_ADD:
        return "add";
    default:
        return "?";
    }
}

size_t kern_logrec_size(const struct kern_logrec *r)
{
    return (size_t)KERN_LOG_HDR + r->klen + r->blen + r->alen;
}

/* Which parts an op carries. */
struct shape {
    int key, before, after, sid, clr;
};

static int op_shape(unsigned op, struct shape *s)
{
    switch (op) {
    case KERN_LOG_INSERT:
        *s = (struct shape){1, 0, 1, 1, 0};
        return 0;
    case KERN_LOG_UPDATE:
    case KERN_LOG_ADD:
        *s = (struct shape){1, 1, 1, 1, 0};
        return 0;
    case KERN_LOG_DELETE:
        *s = (struct shape){1, 1, 0, 1, 0};
        return 0;
    case KERN_LOG_CLR_INSERT:
    case KERN_LOG_CLR_UPDATE:
        *s = (struct shape){1, 0, 1, 1, 1};
        return 0;
    case KERN_LOG_CLR_DELETE:
        *s = (struct shape){1, 0, 0, 1, 1};
        return 0;
    case KERN_LOG_COMMIT:
    case KERN_LOG_ABORT:
        *s = (struct shape){0, 0, 0, 0, 0};
        return 0;
    default:
        return -1;
    }
}

/* Image `img` of `len` bytes: a record header whose len matches. */
static int check_image(int err, const char *what, const uint8_t *img, uint32_t len,
                       uint64_t lsn)
{
    if (len < sizeof(struct kern_rec))
        return nines_err(err, "log record LSN %llu: %s image of %u bytes is shorter than a "
                         "record header", (unsigned long long)lsn, what, len);
    uint32_t body = nle_get32(img + 8);
    if (body != len - sizeof(struct kern_rec) || body > KERN_REC_MAX)
        return nines_err(err, "log record LSN %llu: %s image of %u bytes holds a record "
                         "of body length %u", (unsigned long long)lsn, what, len, body);
    if (img[12] != KERN_REC_VERSION)
        return nines_err(err, "log record LSN %llu: %s image has record version %u",
                         (unsigned long long)lsn, what, img[12]);
    return 0;
}

/* Structural rules of a record (README): `err` is NINES_EINVAL when
 * encoding, NINES_ECORRUPT when decoding. */
static int check(int err, const struct kern_logrec *r)
{
    unsigned long long lsn = (unsigned long long)r->lsn;
    struct shape s;
    if (op_shape(r->op, &s) < 0)
        return nines_err(err, "log record LSN %llu: unknown op %u", lsn, r->op);
    const char *op = kern_log_op_name(r->op);
    if (r->lsn == 0)
        return nines_err(err, "%s log record with LSN 0", op);
    if (r->txn == 0)
        return nines_err(err, "%s log record LSN %llu: transaction id 0", op, lsn);
    if (r->prev_lsn >= r->lsn)
        return nines_err(err, "%s log record LSN %llu: previous LSN %llu not below it", op, lsn,
                         (unsigned long long)r->prev_lsn);
    if (s.key ? (r->klen == 0 || r->klen > KERN_KEY_MAX) : r->klen != 0)
        return nines_err(err, "%s log record LSN %llu: key of %u bytes", op, lsn, r->klen);
    if (!s.before && r->blen)
        return nines_err(err, "%s log record LSN %llu: unexpected before image", op, lsn);
    if (!s.after && r->alen)
        return nines_err(err, "%s log record LSN %llu: unexpected after image", op, lsn);
    if (s.sid ? r->sid == 0 : r->sid != 0)
        return nines_err(err, "%s log record LSN %llu: state id %llu", op, lsn,
                         (unsigned long long)r->sid);
    if (s.clr) {
        if (r->comp_lsn == 0 || r->comp_lsn >= r->lsn)
            return nines_err(err, "%s log record LSN %llu: compensated LSN %llu", op, lsn,
                             (unsigned long long)r->comp_lsn);
        if (r->undo_next_lsn >= r->comp_lsn)
            return nines_err(err, "%s log record LSN %llu: undo-next LSN %llu not below the "
                             "compensated %llu", op, lsn, (unsigned long long)r->undo_next_lsn,
                             (unsigned long long)r->comp_lsn);
    } else if (r->comp_lsn || r->undo_next_lsn) {
        return nines_err(err, "%s log record LSN %llu: CLR fields set", op, lsn);
    }
    if (r->op == KERN_LOG_ADD) {
        if (r->column > UINT16_MAX)
            return nines_err(err, "add log record LSN %llu: column %u", lsn, r->column);
    } else if (r->column || r->delta) {
        return nines_err(err, "%s log record LSN %llu: ADD fields set (column %u, delta %lld)",
                         op, lsn, r->column, (long long)r->delta);
    }
    if (r->gci && r->op != KERN_LOG_COMMIT)
        return nines_err(err, "%s log record LSN %llu: commit epoch %llu set", op, lsn,
                         (unsigned long long)r->gci);
    int rc;
    if (s.before) {
        if ((rc = check_image(err, "before", r->before, r->blen, r->lsn)) < 0)
            return rc;
        if (nle_get64(r->before) >= r->sid)
            return nines_err(err, "%s log record LSN %llu: before image state id %llu not "
                             "below the new %llu", op, lsn,
                             (unsigned long long)nle_get64(r->before), (unsigned long long)r->sid);
    }
    if (s.after && (rc = check_image(err, "after", r->after, r->alen, r->lsn)) < 0)
        return rc;
    return 0;
}

int kern_logrec_check(const struct kern_logrec *r)
{
    if ((r->klen && !r->key) || (r->blen && !r->before) || (r->alen && !r->after))
        return nines_err(NINES_EINVAL, "log record LSN %llu: length without data",
                         (unsigned long long)r->lsn);
    if (kern_logrec_size(r) > KERN_LOG_MAX)
        return nines_err(NINES_ETOOBIG, "log record LSN %llu of %zu bytes, maximum %u",
                         (unsigned long long)r->lsn, kern_logrec_size(r), KERN_LOG_MAX);
    return check(NINES_EINVAL, r);
}

int kern_logrec_encode(const struct kern_logrec *r, uint8_t *out, size_t cap)
{
    int rc = kern_logrec_check(r);
    if (rc < 0)
        return rc;
    size_t n = kern_logrec_size(r);
    if (n > KERN_LOG_MAX || n > cap)
        return nines_err(NINES_ETOOBIG, "log record LSN %llu of %zu bytes, room for %zu",
                         (unsigned long long)r->lsn, n, cap < KERN_LOG_MAX ? cap : KERN_LOG_MAX);
    nle_put32(out + OFF_LEN, (uint32_t)n);
    out[OFF_VERSION] = KERN_LOG_VERSION;
    out[OFF_OP] = r->op;
    nle_put16(out + OFF_KLEN, (uint16_t)r->klen);
    nle_put32(out + OFF_TABLE, r->table);
    nle_put32(out + OFF_FRAG, r->frag);
    nle_put32(out + OFF_BLEN, r->blen);
    nle_put32(out + OFF_ALEN, r->alen);
    nle_put32(out + OFF_RSVD, r->op == KERN_LOG_ADD ? r->column : 0);
    nle_put64(out + OFF_LSN, r->lsn);
    nle_put64(out + OFF_TXN, r->txn);
    nle_put64(out + OFF_SID, r->sid);
    nle_put64(out + OFF_PREV, r->prev_lsn);
    nle_put64(out + OFF_UNDO_NEXT, r->op == KERN_LOG_ADD      ? (uint64_t)r->delta
                                   : r->op == KERN_LOG_COMMIT ? r->gci
                                                              : r->undo_next_lsn);
    nle_put64(out + OFF_COMP, r->comp_lsn);
    uint8_t *p = out + OFF_BODY;
    if (r->klen)
        memcpy(p, r->key, r->klen);
    p += r->klen;
    if (r->blen)
        memcpy(p, r->before, r->blen);
    p += r->blen;
    if (r->alen) {
        memcpy(p, r->after, r->alen);
        nle_put64(p, r->sid); /* the after image carries the record's new state id */
    }
    nle_put32(out + OFF_CRC, crc32c(0, out + OFF_VERSION, n - OFF_VERSION));
    return (int)n;
}

int kern_logrec_decode(const uint8_t *buf, size_t avail, struct kern_logrec *r)
{
    if (avail < OFF_VERSION)
        return nines_err(NINES_ETRUNC, "log record: %zu bytes, the length and CRC need %u",
                         avail, (unsigned)OFF_VERSION);
    uint32_t n = nle_get32(buf + OFF_LEN);
    if (n < KERN_LOG_HDR || n > KERN_LOG_MAX)
        return nines_err(NINES_ECORRUPT, "log record length %u outside %u..%u", n,
                         KERN_LOG_HDR, KERN_LOG_MAX);
    if (n > avail)
        return nines_err(NINES_ETRUNC, "log record of %u bytes, only %zu present", n, avail);
    uint32_t want = nle_get32(buf + OFF_CRC), got = crc32c(0, buf + OFF_VERSION, n - OFF_VERSION);
    if (want != got)
        return nines_err(NINES_ECORRUPT, "log record of %u bytes: CRC-32C 0x%08x, stored "
                         "0x%08x", n, got, want);
    if (buf[OFF_VERSION] != KERN_LOG_VERSION)
        return nines_err(NINES_EVERSION, "log record format version %u, this build reads %u",
                         buf[OFF_VERSION], KERN_LOG_VERSION);
    memset(r, 0, sizeof *r);
    r->op = buf[OFF_OP];
    r->klen = nle_get16(buf + OFF_KLEN);
    r->table = nle_get32(buf + OFF_TABLE);
    r->frag = nle_get32(buf + OFF_FRAG);
    r->blen = nle_get32(buf + OFF_BLEN);
    r->alen = nle_get32(buf + OFF_ALEN);
    r->lsn = nle_get64(buf + OFF_LSN);
    r->txn = nle_get64(buf + OFF_TXN);
    r->sid = nle_get64(buf + OFF_SID);
    r->prev_lsn = nle_get64(buf + OFF_PREV);
    r->comp_lsn = nle_get64(buf + OFF_COMP);
    if (r->op == KERN_LOG_ADD) {
        r->column = nle_get32(buf + OFF_RSVD);
        r->delta = (int64_t)nle_get64(buf + OFF_UNDO_NEXT);
    } else if (r->op == KERN_LOG_COMMIT) {
        r->gci = nle_get64(buf + OFF_UNDO_NEXT);
        if (nle_get32(buf + OFF_RSVD) != 0)
            return nines_err(NINES_ECORRUPT, "log record LSN %llu: reserved bytes not zero",
                             (unsigned long long)r->lsn);
    } else {
        r->undo_next_lsn = nle_get64(buf + OFF_UNDO_NEXT);
        if (nle_get32(buf + OFF_RSVD) != 0)
            return nines_err(NINES_ECORRUPT, "log record LSN %llu: reserved bytes not zero",
                             (unsigned long long)r->lsn);
    }
    /* the three lengths must add up to the record (64-bit sum: no wrap) */
    if ((uint64_t)KERN_LOG_HDR + r->klen + r->blen + r->alen != n)
        return nines_err(NINES_ECORRUPT, "log record LSN %llu: key %u + before %u + after %u "
                         "bytes do not fill its %u bytes", (unsigned long long)r->lsn, r->klen,
                         r->blen, r->alen, n);
    const uint8_t *p = buf + OFF_BODY;
    r->key = r->klen ? p : NULL;
    p += r->klen;
    r->before = r->blen ? p : NULL;
    p += r->blen;
    r->after = r->alen ? p : NULL;
    int rc = check(NINES_ECORRUPT, r);
    if (rc < 0)
        return rc;
    if (r->alen && nle_get64(r->after) != r->sid)
        return nines_err(NINES_ECORRUPT, "log record LSN %llu: after image state id %llu, "
                         "record says %llu", (unsigned long long)r->lsn,
                         (unsigned long long)nle_get64(r->after), (unsigned long long)r->sid);
    return (int)n;
}
