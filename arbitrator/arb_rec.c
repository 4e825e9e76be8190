/* The grant record on disk (README.md "The grant file"): one fixed-size,
 * versioned, CRC-checked record, replaced by temp file + fsync + rename +
 * folder fsync. */
#include "arb_grant.h"

#include "crc32c.h"
#include "nassert.h"
#include "nfile.h"
#include "nines/errors.h"
#include "nle.h"
#include "nlog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Offsets of the version-1 record (README.md table). */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 8,
    OFF_LENGTH = 12,
    OFF_EPOCH = 16,
    OFF_MEMBERS = 24,
    OFF_CURRENT = 32,
    OFF_PREV = 40,
    OFF_COORD = 48,
    OFF_NODE = 52,
    OFF_TIME = 56,
    OFF_CLUSTER = 64,      /* NINES_NAME_MAX bytes, NUL-padded */
    OFF_RESERVED = 128,
    OFF_CRC = 132,
};
_Static_assert(OFF_CLUSTER + NINES_NAME_MAX == OFF_RESERVED, "cluster field size");
_Static_assert(OFF_CRC + 4 == ARB_REC_SIZE, "record size");

void arb_rec_encode(const struct arb_grant *g, uint8_t out[ARB_REC_SIZE])
{
    memset(out, 0, ARB_REC_SIZE);
    memcpy(out + OFF_MAGIC, ARB_REC_MAGIC, 8);
    nle_put32(out + OFF_VERSION, ARB_REC_VERSION);
    nle_put32(out + OFF_LENGTH, ARB_REC_SIZE);
    nle_put64(out + OFF_EPOCH, g->epoch);
    nle_put64(out + OFF_MEMBERS, g->members);
    nle_put64(out + OFF_CURRENT, g->current);
    nle_put64(out + OFF_PREV, g->prev_members);
    nle_put32(out + OFF_COORD, g->coordinator);
    nle_put32(out + OFF_NODE, g->node);
    nle_put64(out + OFF_TIME, g->granted_us);
    size_t n = strnlen(g->cluster, NINES_NAME_MAX - 1);
    memcpy(out + OFF_CLUSTER, g->cluster, n);
    nle_put32(out + OFF_CRC, crc32c(0, out, OFF_CRC));
}

int arb_rec_decode(const uint8_t *b, size_t len, const char *cluster, const char *name,
                   struct arb_grant *out)
{
    memset(out, 0, sizeof *out);
    if (len < OFF_LENGTH + 4 || memcmp(b + OFF_MAGIC, ARB_REC_MAGIC, 8) != 0)
        return nines_err(NINES_ECORRUPT, "%s: not an arbitrator grant record (%zu bytes, no "
                         "'%s' at offset 0)", name, len, ARB_REC_MAGIC);
    uint32_t version = nle_get32(b + OFF_VERSION);
    if (version != ARB_REC_VERSION)
        return nines_err(NINES_EVERSION, "%s: grant record format version %u at offset %d; this "
                         "arbitrator reads version %u", name, version, OFF_VERSION,
                         ARB_REC_VERSION);
    uint32_t length = nle_get32(b + OFF_LENGTH);
    if (length != ARB_REC_SIZE || len != ARB_REC_SIZE)
        return nines_err(NINES_ECORRUPT, "%s: record length field %u (offset %d), file %zu "
                         "bytes; a version-1 record is %u bytes", name, length, OFF_LENGTH, len,
                         ARB_REC_SIZE);
    uint32_t stored = nle_get32(b + OFF_CRC), computed = crc32c(0, b, OFF_CRC);
    if (stored != computed)
        return nines_err(NINES_ECORRUPT, "%s: CRC-32C mismatch (stored 0x%08x at offset %d, "
                         "computed 0x%08x over bytes 0..%d)", name, stored, OFF_CRC, computed,
                         OFF_CRC - 1);
    if (nle_get32(b + OFF_RESERVED) != 0)
        return nines_err(NINES_ECORRUPT, "%s: reserved bytes at offset %d are not zero", name,
                         OFF_RESERVED);
    const char *cl = (const char *)b + OFF_CLUSTER;
    size_t cn = strnlen(cl, NINES_NAME_MAX);
    if (cn == NINES_NAME_MAX)
        return nines_err(NINES_ECORRUPT, "%s: cluster name at offset %d is not terminated", name,
                         OFF_CLUSTER);
    memcpy(out->cluster, cl, cn);
    out->cluster[cn] = '\0';
    out->epoch = nle_get64(b + OFF_EPOCH);
    out->members = nle_get64(b + OFF_MEMBERS);
    out->current = nle_get64(b + OFF_CURRENT);
    out->prev_members = nle_get64(b + OFF_PREV);
    out->coordinator = nle_get32(b + OFF_COORD);
    out->node = nle_get32(b + OFF_NODE);
    out->granted_us = nle_get64(b + OFF_TIME);
    if (out->epoch == 0 || out->members == 0)
        return nines_err(NINES_ECORRUPT, "%s: a record with epoch %llu and members 0x%llx "
                         "(both must be non-zero)", name, (unsigned long long)out->epoch,
                         (unsigned long long)out->members);
    if (strcmp(out->cluster, cluster) != 0)
        return nines_err(NINES_ECONFIG, "%s: records grants of cluster '%s'; this arbitrator "
                         "serves cluster '%s' (another cluster's arbitrator folder?)", name,
                         out->cluster, cluster);
    return 0;
}

static int tmp_path(const char *path, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s.tmp", path);
    if (n < 0 || (size_t)n >= cap)
        return nines_err(NINES_EINVAL, "grant record path '%s' is too long", path);
    return 0;
}

int arb_rec_load(const char *path, const char *cluster, struct arb_grant *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->cluster, sizeof out->cluster, "%s", cluster);
    char tmp[PATH_MAX];
    int rc = tmp_path(path, tmp, sizeof tmp);
    if (rc)
        return rc;
    if (unlink(tmp) == 0)
        NLOG_WARN("arb", "removed %s: a grant written but never renamed (the arbitrator stopped "
                  "before answering it)", tmp);
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = nfile_read_all(path, 4096, &buf, &len);
    if (rc == NINES_ENOTFOUND)
        return 0; /* nothing granted yet */
    if (rc == NINES_ETOOBIG)
        return nines_err(NINES_ECORRUPT, "%s: larger than any grant record (%s)", path,
                         nines_errdetail());
    if (rc)
        return rc;
    rc = arb_rec_decode(buf, len, cluster, path, out);
    free(buf);
    return rc;
}

int arb_rec_store(const char *path, const struct arb_grant *g)
{
    char tmp[PATH_MAX];
    int rc = tmp_path(path, tmp, sizeof tmp);
    if (rc)
        return rc;
    uint8_t rec[ARB_REC_SIZE];
    arb_rec_encode(g, rec);
    if (N_FAULT("arb_store"))
        return nines_err(NINES_EIO, "%s: write refused by the fault point arb_store", tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return nines_err(NINES_EIO, "create %s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < sizeof rec) {
        ssize_t w = write(fd, rec + off, sizeof rec - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return nines_err(e == ENOSPC ? NINES_EFULL : NINES_EIO, "write %s: %s", tmp,
                             strerror(e));
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0) {
        rc = nines_err(NINES_EIO, "fsync %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (close(fd) < 0) {
        rc = nines_err(NINES_EIO, "close %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return rc;
    }
    if (N_FAULT("arb_store_rename"))
        return nines_err(NINES_EIO, "rename %s: refused by the fault point arb_store_rename", tmp);
    if (rename(tmp, path) < 0) {
        rc = nines_err(NINES_EIO, "rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return nfile_fsync_dir(path);
}
