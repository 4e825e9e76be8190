/* The checkpoint manifest (README "Checkpoints", "Manifest"): per replica
 * the newest complete checkpoint this node wrote and the disk log position
 * its redo scan starts from. Encoder for the writer (ksvc_ckpt.c) and the
 * loader-side validation for recovery and tests. Pure functions; the file
 * I/O is the caller's (kern_ckpt_file_* on the I/O thread). */
#include "ksvc_int.h"

#include "crc32c.h"
#include "kernel/kern_ckpt.h"
#include "nfile.h"
#include "nines/errors.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t mf_magic[8] = {'N', 'I', 'N', 'E', 'S', 'C', 'K', 'M'};

/* Header (README table "Manifest header"). */
struct mf_hdr {
    uint8_t magic[8];
    uint16_t version;
    uint16_t hdr_bytes;
    uint16_t ent_bytes;
    uint16_t rsvd0;
    uint32_t node;
    uint32_t n;
    uint64_t cluster;
    uint64_t seq;
    uint64_t written_us;
    uint64_t dlog_keep;
    uint32_t rsvd1;
    uint32_t crc; /* CRC-32C of bytes 0..60, then of every entry byte */
};
_Static_assert(sizeof(struct mf_hdr) == KSVC_CKPT_MF_HDR, "manifest header is 64 bytes");
_Static_assert(offsetof(struct mf_hdr, node) == 16, "manifest node at 16");
_Static_assert(offsetof(struct mf_hdr, cluster) == 24, "manifest cluster at 24");
_Static_assert(offsetof(struct mf_hdr, dlog_keep) == 48, "manifest dlog_keep at 48");
_Static_assert(offsetof(struct mf_hdr, crc) == 60, "manifest CRC at 60");

/* Entry (README table "Manifest entry"). */
struct mf_ent {
    uint32_t table;
    uint32_t frag;
    uint64_t redo_start_lsn;
    uint64_t begin_lsn;
    uint64_t dlog_pos;
    uint64_t created_us;
    uint64_t bytes;
    uint64_t records;
    uint32_t file_crc;
    uint8_t role;
    uint8_t rsvd[3];
};
_Static_assert(sizeof(struct mf_ent) == KSVC_CKPT_MF_ENT, "manifest entry is 64 bytes");
_Static_assert(offsetof(struct mf_ent, dlog_pos) == 24, "entry dlog_pos at 24");
_Static_assert(offsetof(struct mf_ent, file_crc) == 56, "entry file CRC at 56");
_Static_assert(offsetof(struct mf_ent, role) == 60, "entry role at 60");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the manifest is little-endian");

void ksvc_ckpt_file_name(uint32_t table, uint32_t frag, char *out, size_t cap)
{
    snprintf(out, cap, "t%u-f%u.nck", table, frag);
}

static int ent_cmp(const struct ksvc_ckpt_entry *a, const struct ksvc_ckpt_entry *b)
{
    if (a->table != b->table)
        return a->table < b->table ? -1 : 1;
    return a->frag < b->frag ? -1 : a->frag > b->frag;
}

/* An entry's own consistency (both directions use it). */
static int ent_check(const struct ksvc_ckpt_entry *e, size_t i)
{
    switch (e->role) {
    case KERN_FRAG_PRIMARY:
    case KERN_FRAG_HOT_STANDBY:
        break;
    default:
        return nines_err(NINES_ECORRUPT, "manifest entry %zu (table %u fragment %u): role %u "
                         "is neither primary (%d) nor hot standby (%d)", i, e->table, e->frag,
                         e->role, KERN_FRAG_PRIMARY, KERN_FRAG_HOT_STANDBY);
    }
    if (e->redo_start_lsn == 0 || e->redo_start_lsn > e->begin_lsn)
        return nines_err(NINES_ECORRUPT, "manifest entry %zu (table %u fragment %u): redo start "
                         "LSN %llu, begin LSN %llu", i, e->table, e->frag,
                         (unsigned long long)e->redo_start_lsn,
                         (unsigned long long)e->begin_lsn);
    if (e->bytes < KERN_CKPT_HDR + KERN_CKPT_TRAILER)
        return nines_err(NINES_ECORRUPT, "manifest entry %zu (table %u fragment %u): a "
                         "checkpoint of %llu bytes is shorter than header and trailer (%u)", i,
                         e->table, e->frag, (unsigned long long)e->bytes,
                         KERN_CKPT_HDR + KERN_CKPT_TRAILER);
    return 0;
}

int ksvc_ckpt_manifest_encode(const struct ksvc_ckpt_manifest *m, uint8_t **buf, size_t *len)
{
    for (size_t i = 0; i < m->n; i++) {
        int rc = ent_check(&m->e[i], i);
        if (rc == 0 && i && ent_cmp(&m->e[i - 1], &m->e[i]) >= 0)
            rc = nines_err(NINES_EINVAL, "manifest entry %zu (table %u fragment %u) is not "
                           "after entry %zu (table %u fragment %u)", i, m->e[i].table,
                           m->e[i].frag, i - 1, m->e[i - 1].table, m->e[i - 1].frag);
        if (rc < 0) /* the caller's entries: an argument error, not corruption */
            return nines_err(NINES_EINVAL, "%s", nines_errdetail());
    }
    if (m->n > UINT32_MAX)
        return nines_err(NINES_EINVAL, "manifest of %zu entries", m->n);
    size_t n = KSVC_CKPT_MF_HDR + m->n * KSVC_CKPT_MF_ENT;
    uint8_t *p = malloc(n);
    if (!p)
        return nines_err(NINES_ENOMEM, "manifest of %zu bytes", n);
    struct mf_hdr h = {
        .version = KSVC_CKPT_MF_VERSION,
        .hdr_bytes = KSVC_CKPT_MF_HDR,
        .ent_bytes = KSVC_CKPT_MF_ENT,
        .node = m->node,
        .n = (uint32_t)m->n,
        .cluster = m->cluster,
        .seq = m->seq,
        .written_us = m->written_us,
        .dlog_keep = m->dlog_keep,
    };
    memcpy(h.magic, mf_magic, sizeof h.magic);
    for (size_t i = 0; i < m->n; i++) {
        const struct ksvc_ckpt_entry *e = &m->e[i];
        struct mf_ent w = {
            .table = e->table,
            .frag = e->frag,
            .redo_start_lsn = e->redo_start_lsn,
            .begin_lsn = e->begin_lsn,
            .dlog_pos = e->dlog_pos,
            .created_us = e->created_us,
            .bytes = e->bytes,
            .records = e->records,
            .file_crc = e->file_crc,
            .role = e->role,
        };
        memcpy(p + KSVC_CKPT_MF_HDR + i * KSVC_CKPT_MF_ENT, &w, sizeof w);
    }
    uint32_t crc = crc32c(0, &h, offsetof(struct mf_hdr, crc));
    h.crc = crc32c(crc, p + KSVC_CKPT_MF_HDR, n - KSVC_CKPT_MF_HDR);
    memcpy(p, &h, sizeof h);
    *buf = p;
    *len = n;
    return 0;
}

int ksvc_ckpt_manifest_decode(const uint8_t *buf, size_t len, uint32_t node, uint64_t cluster,
                              struct ksvc_ckpt_manifest *out)
{
    memset(out, 0, sizeof *out);
    struct mf_hdr h;
    if (len < sizeof h)
        return nines_err(NINES_ETRUNC, "manifest of %zu bytes, its header needs %u", len,
                         KSVC_CKPT_MF_HDR);
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, mf_magic, sizeof mf_magic) != 0)
        return nines_err(NINES_ECORRUPT, "not a checkpoint manifest (bad magic at offset 0)");
    if (h.version != KSVC_CKPT_MF_VERSION)
        return nines_err(NINES_EVERSION, "checkpoint manifest format version %u, this build "
                         "reads %u", h.version, KSVC_CKPT_MF_VERSION);
    if (h.hdr_bytes != KSVC_CKPT_MF_HDR || h.ent_bytes != KSVC_CKPT_MF_ENT)
        return nines_err(NINES_ECORRUPT, "manifest header: header %u bytes, entries %u bytes "
                         "(version 1 has %u and %u)", h.hdr_bytes, h.ent_bytes, KSVC_CKPT_MF_HDR,
                         KSVC_CKPT_MF_ENT);
    size_t want = KSVC_CKPT_MF_HDR + (size_t)h.n * KSVC_CKPT_MF_ENT;
    if (len < want)
        return nines_err(NINES_ETRUNC, "manifest of %zu bytes, its %u entries need %zu", len,
                         h.n, want);
    if (len > want)
        return nines_err(NINES_ECORRUPT, "manifest of %zu bytes has %zu bytes after its %u "
                         "entries", len, len - want, h.n);
    uint32_t crc = crc32c(0, &h, offsetof(struct mf_hdr, crc));
    crc = crc32c(crc, buf + KSVC_CKPT_MF_HDR, len - KSVC_CKPT_MF_HDR);
    if (crc != h.crc)
        return nines_err(NINES_ECORRUPT, "manifest of %zu bytes: CRC-32C 0x%08x, stored "
                         "0x%08x", len, crc, h.crc);
    if (h.rsvd0 || h.rsvd1)
        return nines_err(NINES_ECORRUPT, "manifest header: reserved bytes not zero");
    if (h.node != node || h.cluster != cluster)
        return nines_err(NINES_EINVAL, "manifest of node %u cluster 0x%016llx read by node %u "
                         "cluster 0x%016llx", h.node, (unsigned long long)h.cluster, node,
                         (unsigned long long)cluster);
    struct ksvc_ckpt_entry *e = calloc(h.n ? h.n : 1, sizeof *e);
    if (!e)
        return nines_err(NINES_ENOMEM, "manifest of %u entries", h.n);
    for (size_t i = 0; i < h.n; i++) {
        struct mf_ent w;
        size_t off = KSVC_CKPT_MF_HDR + i * KSVC_CKPT_MF_ENT;
        memcpy(&w, buf + off, sizeof w);
        e[i] = (struct ksvc_ckpt_entry){
            .table = w.table,
            .frag = w.frag,
            .redo_start_lsn = w.redo_start_lsn,
            .begin_lsn = w.begin_lsn,
            .dlog_pos = w.dlog_pos,
            .created_us = w.created_us,
            .bytes = w.bytes,
            .records = w.records,
            .file_crc = w.file_crc,
            .role = w.role,
        };
        int rc = 0;
        if (w.rsvd[0] || w.rsvd[1] || w.rsvd[2])
            rc = nines_err(NINES_ECORRUPT, "manifest entry %zu at offset %zu: reserved bytes "
                           "not zero", i, off);
        if (rc == 0)
            rc = ent_check(&e[i], i);
        if (rc == 0 && i && ent_cmp(&e[i - 1], &e[i]) >= 0)
            rc = nines_err(NINES_ECORRUPT, "manifest entry %zu (table %u fragment %u) at "
                           "offset %zu is not after entry %zu (table %u fragment %u)", i,
                           e[i].table, e[i].frag, off, i - 1, e[i - 1].table, e[i - 1].frag);
        if (rc < 0) {
            free(e);
            return rc;
        }
    }
    out->node = h.node;
    out->cluster = h.cluster;
    out->seq = h.seq;
    out->written_us = h.written_us;
    out->dlog_keep = h.dlog_keep;
    out->n = h.n;
    out->e = e;
    return 0;
}

int ksvc_ckpt_manifest_read(const char *dir, uint32_t node, uint64_t cluster,
                            struct ksvc_ckpt_manifest *out)
{
    memset(out, 0, sizeof *out);
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, KSVC_CKPT_MF_NAME) >= (int)sizeof path)
        return nines_err(NINES_EINVAL, "checkpoint folder path of %zu bytes is too long",
                         strlen(dir));
    uint8_t *buf;
    size_t len;
    int rc = nfile_read_all(path, 64u << 20, &buf, &len);
    if (rc < 0)
        return rc;
    rc = ksvc_ckpt_manifest_decode(buf, len, node, cluster, out);
    free(buf);
    if (rc < 0)
        return nines_err(rc, "%s: %s", path, nines_errdetail());
    return 0;
}

void ksvc_ckpt_manifest_free(struct ksvc_ckpt_manifest *m)
{
    if (!m)
        return;
    free(m->e);
    m->e = NULL;
    m->n = 0;
}
