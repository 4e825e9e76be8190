/* Disk log format: segment names and listing, segment headers, entry
 * framing and the walk over one segment's entries with torn-tail versus
 * corruption classification. Tables: kernel/README.md "Disk log". */
#include "kern_dlog_int.h"

#include "crc32c.h"
#include "kern_log.h"
#include "nines/errors.h"
#include "nle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(SH_CRC + 4 == KERN_DLOG_SEG_HDR, "segment header is 64 bytes, CRC last");
_Static_assert(SH_RSVD + 20 == SH_CRC, "segment header fields are contiguous");
_Static_assert(EH_CRC + 4 == KERN_DLOG_ENT_HDR, "entry header is 32 bytes, CRC last");
_Static_assert(EH_RSVD2 + 4 == EH_CRC, "entry header fields are contiguous");
_Static_assert(sizeof DLOG_MAGIC - 1 == 8, "magic is 8 bytes");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "disk log files are little-endian");
_Static_assert(KERN_DLOG_ENT_HDR + KERN_LOG_MAX < UINT32_MAX, "an entry length fits 4 bytes");


void dlog_seg_name(uint64_t first, char *out)
{
    snprintf(out, DLOG_NAME_LEN + 1, "log-%016llx.ndl", (unsigned long long)first);
}

/* The first position of a segment file name, or -1 for another name. */
static int parse_name(const char *s, uint64_t *first)
{
    if (strlen(s) != DLOG_NAME_LEN || memcmp(s, "log-", 4) || strcmp(s + 20, ".ndl"))
        return -1;
    uint64_t v = 0;
    for (int i = 4; i < 20; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return -1;
        v = v << 4 | d;
    }
    *first = v;
    return 0;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct dlog_seg *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

int dlog_list(const char *dir, struct dlog_seg **segs, unsigned *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return nines_err(NINES_EIO, "open log folder %s: %s", dir, strerror(errno));
    struct dlog_seg *v = NULL;
    unsigned cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t first;
        if (parse_name(e->d_name, &first) < 0)
            continue;
        char path[PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            rc = nines_err(NINES_EINVAL, "log folder path %s is too long", dir);
            break;
        }
        if (stat(path, &st) < 0) {
            rc = nines_err(NINES_EIO, "stat %s: %s", path, strerror(errno));
            break;
        }
        if (cnt == cap) {
            unsigned nc = cap ? cap * 2 : 16;
            struct dlog_seg *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = nines_err(NINES_ENOMEM, "no memory to list %u log segments", nc);
                break;
            }
            v = nv, cap = nc;
        }
        v[cnt].first = first;
        v[cnt].size = (uint64_t)st.st_size;
        cnt++;
    }
    closedir(d);
    if (rc < 0) {
        free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, seg_cmp);
    *segs = v;
    *n = cnt;
    return 0;
}

int dlog_check_chain(const struct dlog_seg *s, unsigned n, unsigned *bad)
{
    char name[DLOG_NAME_LEN + 1];
    for (unsigned i = 0; i < n; i++) {
        *bad = i;
        if (s[i].size < KERN_DLOG_SEG_HDR) {
            dlog_seg_name(s[i].first, name);
            return nines_err(NINES_ECORRUPT, "log segment %s is %llu bytes, shorter than its "
                             "%u-byte header", name, (unsigned long long)s[i].size,
                             KERN_DLOG_SEG_HDR);
        }
        if (i && s[i - 1].first + (s[i - 1].size - KERN_DLOG_SEG_HDR) != s[i].first) {
            dlog_seg_name(s[i].first, name);
            return nines_err(NINES_ECORRUPT, "log segment %s starts at position %llu but the "
                             "segment before it ends at %llu (a gap or overlap)", name,
                             (unsigned long long)s[i].first,
                             (unsigned long long)(s[i - 1].first + s[i - 1].size -
                                                  KERN_DLOG_SEG_HDR));
        }
    }
    return 0;
}

void dlog_seg_header(uint8_t h[KERN_DLOG_SEG_HDR], const struct kern_dlog_opts *o,
                     uint64_t first, uint64_t created_us)
{
    memset(h, 0, KERN_DLOG_SEG_HDR);
    memcpy(h + SH_MAGIC, DLOG_MAGIC, 8);
    nle_put16(h + SH_VERSION, KERN_DLOG_VERSION);
    nle_put16(h + SH_HDRLEN, KERN_DLOG_SEG_HDR);
    nle_put32(h + SH_NODE, o->node);
    nle_put64(h + SH_CLUSTER, o->cluster);
    nle_put64(h + SH_FIRST, first);
    nle_put64(h + SH_CREATED, created_us);
    nle_put32(h + SH_CRC, crc32c(0, h, SH_CRC));
}

int dlog_seg_check(const uint8_t h[KERN_DLOG_SEG_HDR], const char *name, uint64_t first,
                   const struct kern_dlog_opts *o)
{
    if (memcmp(h + SH_MAGIC, DLOG_MAGIC, 8))
        return nines_err(NINES_ECORRUPT, "%s offset 0: bad magic, not a disk log segment", name);
    if (nle_get16(h + SH_VERSION) != KERN_DLOG_VERSION)
        return nines_err(NINES_EVERSION, "%s offset 8: disk log version %u, this build reads %u",
                         name, nle_get16(h + SH_VERSION), KERN_DLOG_VERSION);
    uint32_t crc = crc32c(0, h, SH_CRC);
    if (nle_get32(h + SH_CRC) != crc)
        return nines_err(NINES_ECORRUPT, "%s offset 60: header CRC %08x, computed %08x", name,
                         nle_get32(h + SH_CRC), crc);
    if (nle_get16(h + SH_HDRLEN) != KERN_DLOG_SEG_HDR)
        return nines_err(NINES_ECORRUPT, "%s offset 10: header length %u, expected %u", name,
                         nle_get16(h + SH_HDRLEN), KERN_DLOG_SEG_HDR);
    for (unsigned i = SH_RSVD; i < SH_CRC; i++)
        if (h[i])
            return nines_err(NINES_ECORRUPT, "%s offset %u: reserved byte %u is not zero", name,
                             i, h[i]);
    if (nle_get64(h + SH_FIRST) != first)
        return nines_err(NINES_ECORRUPT, "%s offset 24: first position %llu, the name says %llu",
                         name, (unsigned long long)nle_get64(h + SH_FIRST), (unsigned long long)first);
    if (nle_get32(h + SH_NODE) != o->node || nle_get64(h + SH_CLUSTER) != o->cluster)
        return nines_err(NINES_EINVAL, "%s belongs to node %u of cluster %016llx, this log is "
                         "node %u of cluster %016llx", name, nle_get32(h + SH_NODE),
                         (unsigned long long)nle_get64(h + SH_CLUSTER), o->node,
                         (unsigned long long)o->cluster);
    return 0;
}

static uint32_t ent_crc(const uint8_t *h, const uint8_t *payload, uint32_t len)
{
    return crc32c(crc32c(0, h, EH_CRC), payload, len);
}

void dlog_ent_header(uint8_t h[KERN_DLOG_ENT_HDR], uint8_t kind, uint32_t table, uint32_t frag,
                     uint64_t lsn, const uint8_t *payload, uint32_t len)
{
    memset(h, 0, KERN_DLOG_ENT_HDR);
    nle_put32(h + EH_LEN, KERN_DLOG_ENT_HDR + len);
    h[EH_KIND] = kind;
    nle_put32(h + EH_TABLE, table);
    nle_put32(h + EH_FRAG, frag);
    nle_put64(h + EH_LSN, lsn);
    nle_put32(h + EH_CRC, ent_crc(h, payload, len));
}

/* Check the entry at p[0..avail): 0 and its length in *len when valid;
 * NINES_ECORRUPT with a detail (reason) otherwise. Reads only p[0..avail). */
static int ent_check(const uint8_t *p, size_t avail, uint32_t *len)
{
    if (avail < KERN_DLOG_ENT_HDR)
        return nines_err(NINES_ECORRUPT, "%zu bytes, shorter than an entry header", avail);
    uint32_t n = nle_get32(p + EH_LEN);
    if (n < KERN_DLOG_ENT_HDR || n > KERN_DLOG_ENT_HDR + KERN_LOG_MAX)
        return nines_err(NINES_ECORRUPT, "entry length %u out of range", n);
    if (n > avail)
        return nines_err(NINES_ECORRUPT, "entry of %u bytes, only %zu left", n, avail);
    uint8_t kind = p[EH_KIND];
    if (kind < KERN_DLOG_REC || kind >= KERN_DLOG_KIND_MAX_)
        return nines_err(NINES_ECORRUPT, "unknown entry kind %u", kind);
    if (p[EH_RSVD] | p[EH_RSVD + 1] | p[EH_RSVD + 2] | nle_get32(p + EH_RSVD2))
        return nines_err(NINES_ECORRUPT, "reserved entry bytes not zero");
    uint32_t plen = n - KERN_DLOG_ENT_HDR;
    uint32_t crc = ent_crc(p, p + KERN_DLOG_ENT_HDR, plen);
    if (crc != nle_get32(p + EH_CRC))
        return nines_err(NINES_ECORRUPT, "entry CRC %08x, computed %08x", nle_get32(p + EH_CRC), crc);
    uint64_t lsn = nle_get64(p + EH_LSN);
    if (lsn == 0)
        return nines_err(NINES_ECORRUPT, "entry LSN 0");
    if (kind == KERN_DLOG_CKPT && plen)
        return nines_err(NINES_ECORRUPT, "checkpoint marker with %u payload bytes", plen);
    if (kind == KERN_DLOG_GAP && (plen || nle_get32(p + EH_TABLE) || nle_get32(p + EH_FRAG)))
        return nines_err(NINES_ECORRUPT, "gap marker with %u payload bytes, table %u frag %u",
                         plen, nle_get32(p + EH_TABLE), nle_get32(p + EH_FRAG));
    if (kind == KERN_DLOG_REC) {
        /* The payload is the record kern_logrec_encode wrote: its own
         * length, table, fragment and LSN fields (README "Log records")
         * must agree with the frame; the consumer decodes the rest. */
        const uint8_t *r = p + KERN_DLOG_ENT_HDR;
        if (plen < KERN_LOG_HDR || nle_get32(r) != plen || nle_get32(r + 12) != nle_get32(p + EH_TABLE) ||
            nle_get32(r + 16) != nle_get32(p + EH_FRAG) || nle_get64(r + 32) != lsn)
            return nines_err(NINES_ECORRUPT, "record of %u bytes does not match its frame "
                             "(table %u frag %u LSN %llu)", plen, nle_get32(p + EH_TABLE),
                             nle_get32(p + EH_FRAG), (unsigned long long)lsn);
    }
    *len = n;
    return 0;
}

/* Whether a valid entry starts anywhere in buf[from..len). */
static int valid_after(const uint8_t *buf, size_t len, size_t from)
{
    for (size_t o = from; o + KERN_DLOG_ENT_HDR <= len; o++) {
        const uint8_t *p = buf + o;
        /* cheap filters before the CRC */
        if (p[EH_KIND] < KERN_DLOG_REC || p[EH_KIND] >= KERN_DLOG_KIND_MAX_ || p[EH_RSVD])
            continue;
        uint32_t n = nle_get32(p + EH_LEN);
        if (n < KERN_DLOG_ENT_HDR || n > len - o)
            continue;
        uint32_t got;
        if (ent_check(p, len - o, &got) == 0)
            return 1;
    }
    return 0;
}

int dlog_walk(const uint8_t *buf, size_t len, const char *name, uint64_t first, int last,
              uint64_t from, kern_dlog_cb cb, void *arg, struct kern_dlog_scan_info *info,
              size_t *valid)
{
    size_t o = KERN_DLOG_SEG_HDR;
    *valid = o;
    while (o < len) {
        uint32_t n;
        int rc = ent_check(buf + o, len - o, &n);
        if (rc < 0) {
            char why[160];
            snprintf(why, sizeof why, "%s", nines_errdetail());
            if (info) {
                snprintf(info->file, sizeof info->file, "%s", name);
                info->off = o;
            }
            if (last && !valid_after(buf, len, o + 1)) {
                if (info) {
                    info->torn = 1;
                    info->torn_bytes = len - o;
                }
                return 0;
            }
            return nines_err(NINES_ECORRUPT, "%s offset %zu (position %llu): %s%s", name, o,
                             (unsigned long long)(first + o - KERN_DLOG_SEG_HDR), why,
                             last ? ", and valid entries follow" : "");
        }
        const uint8_t *p = buf + o;
        struct kern_dlog_entry e = {
            .pos = first + o - KERN_DLOG_SEG_HDR,
            .kind = p[EH_KIND],
            .table = nle_get32(p + EH_TABLE),
            .frag = nle_get32(p + EH_FRAG),
            .lsn = nle_get64(p + EH_LSN),
            .rec = n > KERN_DLOG_ENT_HDR ? p + KERN_DLOG_ENT_HDR : NULL,
            .len = n - KERN_DLOG_ENT_HDR,
        };
        o += n;
        *valid = o;
        if (e.pos >= from && cb) {
            if (info)
                info->entries++;
            rc = cb(arg, &e);
            if (rc)
                return rc;
        }
        if (info)
            info->end = first + o - KERN_DLOG_SEG_HDR;
    }
    return 0;
}
