/* Fuzzy checkpoint writer (resumable scan, bytes into a pending buffer)
 * and loader (validate everything into a fresh tree, then hand over).
 * README "Fuzzy checkpoints". */
#include "kern_ckpt.h"
#include "kern_ckpt_int.h"

#include "crc32c.h"
#include "kern_frag_int.h"
#include "nassert.h"
#include "nines/errors.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const uint8_t ck_magic[8] = {'N', 'I', 'N', 'E', 'S', 'C', 'K', 'P'};
enum ck_state { CK_SCAN = 1, CK_DONE };

struct kern_ckpt {
    struct kern_frag *f;
    int state;            /* enum ck_state */
    int resume;           /* rkey was reached but not written: restart the step there */
    struct kern_ckpt_info info;
    uint32_t crc;         /* over every byte produced so far */
    uint8_t *out;         /* pending output */
    size_t len, cap;
    struct kern_bt_cursor cur;
    size_t rklen;
    uint8_t rkey[KERN_KEY_MAX];
};

static int out_grow(struct kern_ckpt *ck, size_t more)
{
    if (ck->cap - ck->len >= more)
        return 0;
    size_t cap = ck->cap ? ck->cap : 64 * 1024;
    while (cap - ck->len < more)
        cap *= 2;
    uint8_t *p = realloc(ck->out, cap);
    if (!p)
        return nines_err(NINES_ENOMEM, "checkpoint output buffer of %zu bytes", cap);
    ck->out = p;
    ck->cap = cap;
    return 0;
}

/* Append bytes already reserved by out_grow, extending the running CRC. */
static void out_put(struct kern_ckpt *ck, const void *p, size_t n)
{
    memcpy(ck->out + ck->len, p, n);
    ck->crc = crc32c(ck->crc, p, n);
    ck->len += n;
}

int kern_ckpt_begin(struct kern_frag *f, struct kern_ckpt **out)
{
    struct kern_ckpt *ck = calloc(1, sizeof *ck);
    if (!ck)
        return nines_err(NINES_ENOMEM, "checkpoint writer");
    ck->f = f;
    ck->state = CK_SCAN;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ck->info = (struct kern_ckpt_info){
        .table = f->table,
        .frag = f->id,
        .schema_hash = f->schema_hash,
        .ncols = f->ncols,
        .begin_lsn = kern_log_next_lsn(f->log),
        .redo_start_lsn = kern_frag_undo_floor(f),
        .created_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u,
    };
    struct ck_hdr h = {
        .version = KERN_CKPT_VERSION,
        .hdr_bytes = KERN_CKPT_HDR,
        .table = f->table,
        .frag = f->id,
        .schema_hash = f->schema_hash,
        .ncols = f->ncols,
        .redo_start_lsn = ck->info.redo_start_lsn,
        .begin_lsn = ck->info.begin_lsn,
        .created_us = ck->info.created_us,
    };
    memcpy(h.magic, ck_magic, sizeof h.magic);
    h.hdr_crc = crc32c(0, &h, offsetof(struct ck_hdr, hdr_crc));
    int rc = out_grow(ck, sizeof h);
    if (rc < 0) {
        free(ck);
        return rc;
    }
    out_put(ck, &h, sizeof h);
    kern_bt_cursor_init(&ck->cur, f->bt);
    *out = ck;
    return 0;
}

static int finish(struct kern_ckpt *ck)
{
    int rc = out_grow(ck, sizeof(struct ck_end));
    if (rc < 0)
        return rc;
    ck->info.next_sid = ck->f->next_sid;
    struct ck_end e = {.kind = END_KIND, .records = ck->info.records,
                       .next_sid = ck->info.next_sid};
    out_put(ck, &e, offsetof(struct ck_end, crc));
    e.crc = ck->crc;
    out_put(ck, &e.crc, sizeof e.crc);
    ck->state = CK_DONE;
    return 0;
}

int kern_ckpt_step(struct kern_ckpt *ck, unsigned max_records)
{
    switch (ck->state) {
    case CK_SCAN:
        break;
    case CK_DONE:
        return 0;
    default:
        return nines_err(NINES_ESTATE, "checkpoint in unknown state %d", ck->state);
    }
    if (max_records == 0)
        return nines_err(NINES_EINVAL, "checkpoint step of 0 records");
    struct kern_bt_cursor *c = &ck->cur;
    size_t blk = ck->len; /* block header goes here once the entries are known */
    int rc = out_grow(ck, sizeof(struct ck_blk));
    if (rc < 0)
        return rc;
    ck->len += sizeof(struct ck_blk);
    uint32_t nrec = 0;
    const void *leaf = NULL;
    int end = 0;
    while (nrec < max_records) {
        if (ck->resume) {
            rc = kern_bt_seek_ge(c, ck->rkey, ck->rklen);
            ck->resume = 0;
        } else {
            rc = kern_bt_next(c);
        }
        if (rc == NINES_ENOTFOUND) {
            end = 1;
            break;
        }
        if (rc < 0)
            break;
        /* the cursor caches the leaf of its current entry: stop at a leaf
         * boundary and resume from this key (or its successor) next step */
        if (nrec && c->leaf != leaf) {
            memcpy(ck->rkey, c->key, c->klen);
            ck->rklen = c->klen;
            ck->resume = 1;
            break;
        }
        leaf = c->leaf;
        size_t rlen = kern_rec_bytes(c->rec);
        if ((rc = out_grow(ck, KERN_CKPT_ENTHDR + c->klen + rlen)) < 0)
            break;
        uint8_t eh[KERN_CKPT_ENTHDR];
        uint16_t kl = (uint16_t)c->klen;
        uint32_t rl = (uint32_t)rlen;
        memcpy(eh, &kl, 2);
        memcpy(eh + 2, &rl, 4);
        memcpy(ck->out + ck->len, eh, sizeof eh);
        memcpy(ck->out + ck->len + sizeof eh, c->key, c->klen);
        memcpy(ck->out + ck->len + sizeof eh + c->klen, c->rec, rlen);
        ck->len += sizeof eh + c->klen + rlen;
        nrec++;
    }
    if (rc < 0 && rc != NINES_ENOTFOUND) {
        /* out of memory: drop this step's entries and re-read them from the
         * step's first key (or the key the cursor stands on) next time */
        if (nrec) {
            const uint8_t *e = ck->out + blk + sizeof(struct ck_blk);
            uint16_t kl;
            memcpy(&kl, e, 2);
            memcpy(ck->rkey, e + KERN_CKPT_ENTHDR, kl);
            ck->rklen = kl;
            ck->resume = 1;
        } else if (c->rec) {
            memcpy(ck->rkey, c->key, c->klen);
            ck->rklen = c->klen;
            ck->resume = 1;
        }
        ck->len = blk;
        return rc;
    }
    if (nrec) {
        struct ck_blk b = {.kind = BLK_KIND, .nrec = nrec,
                           .bytes = (uint32_t)(ck->len - blk - sizeof b)};
        memcpy(ck->out + blk, &b, sizeof b);
        ck->crc = crc32c(ck->crc, ck->out + blk, ck->len - blk);
        ck->info.records += nrec;
    } else {
        ck->len = blk;
    }
    if (end) {
        if ((rc = finish(ck)) < 0)
            return rc;
        return 0;
    }
    return 1;
}

size_t kern_ckpt_pending(const struct kern_ckpt *ck)
{
    return ck->len;
}

int kern_ckpt_take(struct kern_ckpt *ck, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (!ck->len)
        return 0;
    *buf = ck->out;
    *len = ck->len;
    ck->out = NULL;
    ck->len = ck->cap = 0;
    return 0;
}

void kern_ckpt_get_info(const struct kern_ckpt *ck, struct kern_ckpt_info *info)
{
    *info = ck->info;
}

void kern_ckpt_free(struct kern_ckpt *ck)
{
    if (!ck)
        return;
    free(ck->out);
    free(ck);
}

/* ---- loader ---- */

int kern_ckpt_header(const uint8_t *buf, size_t len, struct kern_ckpt_info *info)
{
    struct ck_hdr h;
    if (len < sizeof h)
        return nines_err(NINES_ETRUNC, "checkpoint of %zu bytes, its header needs %u", len,
                         KERN_CKPT_HDR);
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, ck_magic, sizeof ck_magic) != 0)
        return nines_err(NINES_ECORRUPT, "not a checkpoint file (bad magic)");
    if (h.version != KERN_CKPT_VERSION)
        return nines_err(NINES_EVERSION, "checkpoint format version %u, this build reads %u",
                         h.version, KERN_CKPT_VERSION);
    uint32_t crc = crc32c(0, &h, offsetof(struct ck_hdr, hdr_crc));
    if (crc != h.hdr_crc)
        return nines_err(NINES_ECORRUPT, "checkpoint header CRC-32C 0x%08x, stored 0x%08x",
                         crc, h.hdr_crc);
    if (h.hdr_bytes != KERN_CKPT_HDR || h.rsvd0 || h.rsvd1)
        return nines_err(NINES_ECORRUPT, "checkpoint header: size %u or reserved fields wrong",
                         h.hdr_bytes);
    if (h.redo_start_lsn == 0 || h.redo_start_lsn > h.begin_lsn)
        return nines_err(NINES_ECORRUPT, "checkpoint header: redo start LSN %llu, begin LSN "
                         "%llu", (unsigned long long)h.redo_start_lsn,
                         (unsigned long long)h.begin_lsn);
    *info = (struct kern_ckpt_info){
        .table = h.table,
        .frag = h.frag,
        .schema_hash = h.schema_hash,
        .ncols = h.ncols,
        .redo_start_lsn = h.redo_start_lsn,
        .begin_lsn = h.begin_lsn,
        .created_us = h.created_us,
    };
    return 0;
}

