/* Checkpoint loader: validates a checkpoint's bytes as they come, in
 * order and in pieces of any size, into a fresh tree, and hands the tree
 * to the replica only when everything — header, every block, the trailer
 * and the whole-file CRC — validated. kern_ckpt_load is this over one
 * buffer. README "Fuzzy checkpoints" (loader), kernel/svc/README.md
 * "Rebuild" (a copy loaded as its chunks arrive). */
#include "kern_ckpt.h"
#include "kern_ckpt_int.h"

#include "crc32c.h"
#include "kern_frag_int.h"
#include "nassert.h"
#include "nines/errors.h"

#include <stdlib.h>
#include <string.h>

enum ld_state {
    LD_HDR = 1,     /* waiting for the 64-byte header */
    LD_BLOCKS,      /* record blocks, or the trailer */
    LD_DONE,        /* the trailer arrived: nothing may follow */
    LD_FAILED,      /* an error was returned: only free */
};

struct kern_ckpt_loader {
    struct kern_frag *f;
    struct kern_bt *t;          /* the fresh tree */
    enum ld_state st;
    struct kern_ckpt_info info;
    uint8_t *pend;              /* bytes received, not yet consumed (an incomplete block) */
    size_t npend, cappend;
    const uint8_t *w;           /* ld_run's window: the bytes being parsed ... */
    size_t nw;                  /* ... and how many */
    uint64_t pos;               /* file offset of w[0] */
    uint32_t crc;               /* CRC-32C of every consumed byte */
    bool crc_checked;           /* kern_ckpt_load checked the whole file's CRC already */
    uint64_t count, max_sid;
    uint8_t prev[KERN_KEY_MAX]; /* the last key loaded */
    size_t prevlen;
    struct ck_end end;
};

static int ld_fail(struct kern_ckpt_loader *l, int rc)
{
    l->st = LD_FAILED;
    return rc;
}

int kern_ckpt_loader_begin(struct kern_frag *f, struct kern_ckpt_loader **out)
{
    switch (f->role) {
    case KERN_FRAG_HOT_STANDBY:
        break;
    case KERN_FRAG_PRIMARY:
    case KERN_FRAG_PROMOTING:
        return nines_err(NINES_ESTATE, "checkpoint load into fragment %u.%u, a %s replica",
                         f->table, f->id, kern_frag_role_name(f->role));
    default:
        return nines_err(NINES_ESTATE, "fragment %u.%u in unknown role %d", f->table, f->id,
                         f->role);
    }
    struct kern_ckpt_loader *l = calloc(1, sizeof *l);
    if (!l)
        return nines_err(NINES_ENOMEM, "checkpoint loader");
    int rc = kern_bt_create(&l->t);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->f = f;
    l->st = LD_HDR;
    *out = l;
    return 0;
}

void kern_ckpt_loader_free(struct kern_ckpt_loader *l)
{
    if (!l)
        return;
    if (l->t)
        kern_bt_destroy(l->t);
    free(l->pend);
    free(l);
}

/* Consume n bytes from the front of the window (into the CRC). */
static void ld_consume(struct kern_ckpt_loader *l, size_t n)
{
    if (!l->crc_checked)
        l->crc = crc32c(l->crc, l->w, n);
    l->w += n;
    l->nw -= n;
    l->pos += n;
}

static int ld_header(struct kern_ckpt_loader *l)
{
    struct kern_frag *f = l->f;
    int rc = kern_ckpt_header(l->w, l->nw, &l->info);
    if (rc < 0)
        return rc;
    if (l->info.table != f->table || l->info.frag != f->id)
        return nines_err(NINES_EINVAL, "checkpoint of fragment %u.%u loaded into %u.%u",
                         l->info.table, l->info.frag, f->table, f->id);
    if (l->info.schema_hash != f->schema_hash || l->info.ncols != f->ncols)
        return nines_err(NINES_EINVAL, "checkpoint of fragment %u.%u has another schema "
                         "(hash 0x%08x, %u columns; replica 0x%08x, %u columns)", f->table,
                         f->id, l->info.schema_hash, l->info.ncols, f->schema_hash, f->ncols);
    ld_consume(l, KERN_CKPT_HDR);
    l->st = LD_BLOCKS;
    return 0;
}

/* One block whose header and entries are all in pend: into the tree. */
static int ld_block(struct kern_ckpt_loader *l, const struct ck_blk *b)
{
    struct kern_frag *f = l->f;
    const uint8_t *buf = l->w;
    size_t off = sizeof *b, bend = sizeof *b + b->bytes;
    for (uint32_t i = 0; i < b->nrec; i++) {
        uint64_t at = l->pos + off;
        if (bend - off < KERN_CKPT_ENTHDR)
            return nines_err(NINES_ECORRUPT, "checkpoint offset %llu: entry %u of its block runs "
                             "past the block", (unsigned long long)at, i);
        uint16_t kl;
        uint32_t rl;
        memcpy(&kl, buf + off, 2);
        memcpy(&rl, buf + off + 2, 4);
        off += KERN_CKPT_ENTHDR;
        if (kl == 0 || kl > KERN_KEY_MAX || rl < sizeof(struct kern_rec) ||
            rl - sizeof(struct kern_rec) > KERN_REC_MAX || bend - off < (size_t)kl + rl)
            return nines_err(NINES_ECORRUPT, "checkpoint offset %llu: entry of key %u and record "
                             "%u bytes does not fit its block", (unsigned long long)at, kl, rl);
        const uint8_t *key = buf + off;
        int rc = frag_key_check(f, key, kl);
        if (rc < 0)
            return nines_err(NINES_ECORRUPT, "checkpoint offset %llu: key: %s",
                             (unsigned long long)at, nines_errdetail());
        if (l->prevlen && kern_key_cmp(l->prev, l->prevlen, key, kl) >= 0)
            return nines_err(NINES_ECORRUPT, "checkpoint offset %llu: keys out of order",
                             (unsigned long long)at);
        struct kern_rec *r = malloc(rl);
        if (!r)
            return nines_err(NINES_ENOMEM, "checkpoint record of %u bytes", rl);
        memcpy(r, buf + off + kl, rl);
        if ((rc = frag_rec_check(f, r, rl)) < 0 || r->sid == 0) {
            free(r);
            return nines_err(NINES_ECORRUPT, "checkpoint offset %llu: record: %s",
                             (unsigned long long)at,
                             rc < 0 ? nines_errdetail() : "state id 0");
        }
        if (r->sid > l->max_sid)
            l->max_sid = r->sid;
        if ((rc = kern_bt_insert(l->t, key, kl, r)) < 0) {
            free(r);
            return rc;
        }
        memcpy(l->prev, key, kl);
        l->prevlen = kl;
        off += (size_t)kl + rl;
        l->count++;
    }
    if (off != bend)
        return nines_err(NINES_ECORRUPT, "checkpoint offset %llu: %zu bytes after the block's %u "
                         "entries", (unsigned long long)(l->pos + off), bend - off, b->nrec);
    ld_consume(l, bend);
    return 0;
}

/* Consume what the window holds whole: the header, blocks, the trailer. */
static int ld_run(struct kern_ckpt_loader *l)
{
    for (;;) {
        switch (l->st) {
        case LD_HDR:
            if (l->nw < KERN_CKPT_HDR)
                return 0;
            {
                int rc = ld_header(l);
                if (rc < 0)
                    return rc;
            }
            break;
        case LD_BLOCKS: {
            if (l->nw < sizeof(uint32_t))
                return 0;
            uint32_t kind;
            memcpy(&kind, l->w, sizeof kind);
            if (kind == END_KIND) {
                if (l->nw < sizeof l->end)
                    return 0;
                memcpy(&l->end, l->w, sizeof l->end);
                if (l->nw > sizeof l->end)
                    return nines_err(NINES_ECORRUPT, "checkpoint: %zu bytes after the trailer "
                                     "at offset %llu", l->nw - sizeof l->end,
                                     (unsigned long long)l->pos);
                if (!l->crc_checked)
                    l->crc = crc32c(l->crc, l->w, sizeof l->end - sizeof l->end.crc);
                l->w += sizeof l->end;
                l->nw = 0;
                l->pos += sizeof l->end;
                l->st = LD_DONE;
                return 0;
            }
            struct ck_blk b;
            if (l->nw < sizeof b)
                return 0;
            memcpy(&b, l->w, sizeof b);
            if (b.kind != BLK_KIND || b.nrec == 0 ||
                b.bytes > KERN_CKPT_BLOCK_MAX)
                return nines_err(NINES_ECORRUPT, "checkpoint offset %llu: bad block header (kind "
                                 "0x%08x, %u records, %u bytes)", (unsigned long long)l->pos,
                                 b.kind, b.nrec, b.bytes);
            if (l->nw < sizeof b + b.bytes)
                return 0;
            int rc = ld_block(l, &b);
            if (rc < 0)
                return rc;
            break;
        }
        case LD_DONE:
            if (l->nw)
                return nines_err(NINES_ECORRUPT, "checkpoint: %zu bytes after the trailer",
                                 l->nw);
            return 0;
        case LD_FAILED:
            return nines_err(NINES_ESTATE, "checkpoint loader fed after an error");
        default:
            return nines_err(NINES_ESTATE, "checkpoint loader in unknown state %d", (int)l->st);
        }
    }
}

int kern_ckpt_loader_feed(struct kern_ckpt_loader *l, const uint8_t *buf, size_t len)
{
    if (l->st == LD_FAILED)
        return nines_err(NINES_ESTATE, "checkpoint loader fed after an error");
    if (l->st == LD_DONE && len)
        return ld_fail(l, nines_err(NINES_ECORRUPT, "checkpoint: %zu bytes after the trailer",
                                    len));
    if (l->npend) { /* an incomplete block waits: append, parse from the buffer */
        if (l->npend + len > l->cappend) {
            size_t cap = l->cappend;
            while (cap < l->npend + len)
                cap *= 2;
            uint8_t *np = realloc(l->pend, cap);
            if (!np)
                return ld_fail(l, nines_err(NINES_ENOMEM, "checkpoint loader buffer of %zu "
                                            "bytes", cap));
            l->pend = np;
            l->cappend = cap;
        }
        memcpy(l->pend + l->npend, buf, len);
        l->npend += len;
        l->w = l->pend;
        l->nw = l->npend;
    } else { /* parse straight from the caller's bytes */
        l->w = buf;
        l->nw = len;
    }
    int rc = ld_run(l);
    if (rc < 0)
        return ld_fail(l, rc);
    /* keep what is left (an incomplete header, block or trailer) */
    if (l->nw && l->w != l->pend) {
        if (l->nw > l->cappend) {
            size_t cap = l->cappend ? l->cappend : 64u << 10;
            while (cap < l->nw)
                cap *= 2;
            uint8_t *np = realloc(l->pend, cap);
            if (!np)
                return ld_fail(l, nines_err(NINES_ENOMEM, "checkpoint loader buffer of %zu "
                                            "bytes", cap));
            l->pend = np;
            l->cappend = cap;
        }
        memmove(l->pend, l->w, l->nw);
    } else if (l->nw) {
        memmove(l->pend, l->w, l->nw);
    }
    l->npend = l->nw;
    l->w = NULL;
    l->nw = 0;
    return 0;
}

int kern_ckpt_loader_end(struct kern_ckpt_loader *l, struct kern_ckpt_info *out)
{
    struct kern_frag *f = l->f;
    switch (l->st) {
    case LD_DONE:
        break;
    case LD_HDR:
        return ld_fail(l, nines_err(NINES_ETRUNC, "checkpoint of %llu bytes, its header needs %u",
                                    (unsigned long long)(l->pos + l->npend), KERN_CKPT_HDR));
    case LD_BLOCKS:
        return ld_fail(l, nines_err(NINES_ETRUNC, "checkpoint of %llu bytes ends without a "
                                    "trailer (truncated or unfinished)",
                                    (unsigned long long)(l->pos + l->npend)));
    case LD_FAILED:
        return nines_err(NINES_ESTATE, "checkpoint loader ended after an error");
    default:
        return nines_err(NINES_ESTATE, "checkpoint loader in unknown state %d", (int)l->st);
    }
    const struct ck_end *e = &l->end;
    if (!l->crc_checked && l->crc != e->crc)
        return ld_fail(l, nines_err(NINES_ECORRUPT, "checkpoint of %llu bytes: CRC-32C 0x%08x, "
                                    "trailer says 0x%08x", (unsigned long long)l->pos, l->crc,
                                    e->crc));
    if (e->rsvd0 || e->rsvd1 || e->next_sid == 0)
        return ld_fail(l, nines_err(NINES_ECORRUPT, "checkpoint trailer: reserved fields or "
                                    "state-id counter wrong"));
    if (l->count != e->records)
        return ld_fail(l, nines_err(NINES_ECORRUPT, "checkpoint holds %llu records, its trailer "
                                    "says %llu", (unsigned long long)l->count,
                                    (unsigned long long)e->records));
    if (l->max_sid >= e->next_sid)
        return ld_fail(l, nines_err(NINES_ECORRUPT, "checkpoint: a record's state id %llu is "
                                    "not below the counter %llu", (unsigned long long)l->max_sid,
                                    (unsigned long long)e->next_sid));
    if (f->role != KERN_FRAG_HOT_STANDBY || kern_bt_count(f->bt) || kern_log_count(f->log) ||
        f->ntx)
        return ld_fail(l, nines_err(NINES_ESTATE, "checkpoint load into fragment %u.%u, which "
                                    "is not an empty hot standby (%s, %llu records, %llu log "
                                    "records)", f->table, f->id, kern_frag_role_name(f->role),
                                    (unsigned long long)kern_bt_count(f->bt),
                                    (unsigned long long)kern_log_count(f->log)));
    l->info.records = e->records;
    l->info.next_sid = e->next_sid;
    int rc = kern_log_reset(f->log, l->info.redo_start_lsn);
    N_ASSERT(rc == 0); /* the log is empty */
    kern_bt_destroy(f->bt);
    f->bt = l->t;
    l->t = NULL;
    f->next_sid = l->info.next_sid;
    if (out)
        *out = l->info;
    l->st = LD_FAILED; /* used up: only free */
    return 0;
}

uint64_t kern_ckpt_loader_records(const struct kern_ckpt_loader *l) { return l->count; }

int kern_ckpt_load(struct kern_frag *f, const uint8_t *buf, size_t len,
                   struct kern_ckpt_info *out)
{
    if (kern_bt_count(f->bt) || kern_log_count(f->log) || f->ntx)
        return nines_err(NINES_ESTATE, "checkpoint load into fragment %u.%u, which is not "
                         "empty (%llu records, %llu log records)", f->table, f->id,
                         (unsigned long long)kern_bt_count(f->bt),
                         (unsigned long long)kern_log_count(f->log));
    /* a whole file: its CRC first, so a damaged file is reported as such
     * (the blocks' own checks would otherwise name the first symptom) */
    struct kern_ckpt_info hi;
    int rc = kern_ckpt_header(buf, len, &hi);
    if (rc < 0)
        return rc;
    struct ck_end e;
    bool checked = false;
    if (len >= KERN_CKPT_HDR + sizeof e) {
        memcpy(&e, buf + len - sizeof e, sizeof e);
        uint32_t crc = crc32c(0, buf, len - sizeof e.crc);
        if (e.kind == END_KIND && crc != e.crc)
            return nines_err(NINES_ECORRUPT, "checkpoint of %zu bytes: CRC-32C 0x%08x, trailer "
                             "says 0x%08x", len, crc, e.crc);
        checked = e.kind == END_KIND; /* the loader need not compute it again */
    }
    struct kern_ckpt_loader *l;
    rc = kern_ckpt_loader_begin(f, &l);
    if (rc < 0)
        return rc;
    l->crc_checked = checked;
    rc = kern_ckpt_loader_feed(l, buf, len);
    if (rc == 0)
        rc = kern_ckpt_loader_end(l, out);
    kern_ckpt_loader_free(l);
    return rc;
}
