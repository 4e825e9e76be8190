/* The restorable file DIR/gcp.ncg (supervisor/README.md "Global
 * checkpoints": the file): the newest commit epoch this node knows to be
 * restorable, 64 bytes, versioned, CRC-32C, replaced by temp file + fsync
 * + rename + folder fsync. Encoding, decoding, reading and the write the
 * I/O thread runs (sup_gcp_node.c hands it over). */
#include "sup_gcp.h"

#include "crc32c.h"
#include "nfile.h"
#include "nines/errors.h"
#include "nle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof SUP_GCP_FILE_MAGIC - 1 == 8, "the magic is 8 bytes");
_Static_assert(SUP_GCP_OFF_VERSION == SUP_GCP_OFF_MAGIC + 8, "version after the magic");
_Static_assert(SUP_GCP_OFF_BYTES == SUP_GCP_OFF_VERSION + 2, "bytes after the version");
_Static_assert(SUP_GCP_OFF_NODE == SUP_GCP_OFF_BYTES + 2, "node after bytes");
_Static_assert(SUP_GCP_OFF_CLUSTER == SUP_GCP_OFF_NODE + 4, "cluster after node");
_Static_assert(SUP_GCP_OFF_GCI == SUP_GCP_OFF_CLUSTER + 8, "gci after cluster");
_Static_assert(SUP_GCP_OFF_WALL == SUP_GCP_OFF_GCI + 8, "wall_us after gci");
_Static_assert(SUP_GCP_OFF_WRITTEN == SUP_GCP_OFF_WALL + 8, "written_us after wall_us");
_Static_assert(SUP_GCP_OFF_SEQ == SUP_GCP_OFF_WRITTEN + 8, "seq after written_us");
_Static_assert(SUP_GCP_OFF_RESERVED == SUP_GCP_OFF_SEQ + 8, "reserved after seq");
_Static_assert(SUP_GCP_OFF_CRC == SUP_GCP_OFF_RESERVED + 4, "the CRC after reserved");
_Static_assert(SUP_GCP_FILE_BYTES == SUP_GCP_OFF_CRC + 4, "the CRC ends the file");

int sup_gcp_file_encode(const struct sup_gcp_file *f, uint32_t node, uint64_t cluster,
                        uint8_t out[SUP_GCP_FILE_BYTES])
{
    if (!f || !out || node == 0)
        return nines_err(NINES_EINVAL, "gcp file: nothing to encode, or node 0");
    memset(out, 0, SUP_GCP_FILE_BYTES);
    memcpy(out + SUP_GCP_OFF_MAGIC, SUP_GCP_FILE_MAGIC, 8);
    nle_put16(out + SUP_GCP_OFF_VERSION, SUP_GCP_FILE_VERSION);
    nle_put16(out + SUP_GCP_OFF_BYTES, SUP_GCP_FILE_BYTES);
    nle_put32(out + SUP_GCP_OFF_NODE, node);
    nle_put64(out + SUP_GCP_OFF_CLUSTER, cluster);
    nle_put64(out + SUP_GCP_OFF_GCI, f->gci);
    nle_put64(out + SUP_GCP_OFF_WALL, f->wall_us);
    nle_put64(out + SUP_GCP_OFF_WRITTEN, f->written_us);
    nle_put64(out + SUP_GCP_OFF_SEQ, f->seq);
    nle_put32(out + SUP_GCP_OFF_RESERVED, 0);
    nle_put32(out + SUP_GCP_OFF_CRC, crc32c(0, out, SUP_GCP_OFF_CRC));
    return 0;
}

int sup_gcp_file_decode(const uint8_t *buf, size_t len, uint32_t node, uint64_t cluster,
                        struct sup_gcp_file *out)
{
    if (!buf || len < SUP_GCP_FILE_BYTES)
        return nines_err(NINES_ETRUNC, "gcp file: %zu bytes, a version %u file has %u", len,
                         SUP_GCP_FILE_VERSION, SUP_GCP_FILE_BYTES);
    if (memcmp(buf + SUP_GCP_OFF_MAGIC, SUP_GCP_FILE_MAGIC, 8) != 0)
        return nines_err(NINES_ECORRUPT, "gcp file: bad magic (not a restorable-epoch file)");
    uint32_t crc = crc32c(0, buf, SUP_GCP_OFF_CRC);
    if (nle_get32(buf + SUP_GCP_OFF_CRC) != crc)
        return nines_err(NINES_ECORRUPT, "gcp file: CRC-32C %08x, computed %08x",
                         nle_get32(buf + SUP_GCP_OFF_CRC), crc);
    uint16_t ver = nle_get16(buf + SUP_GCP_OFF_VERSION);
    if (ver != SUP_GCP_FILE_VERSION)
        return nines_err(NINES_EVERSION, "gcp file: version %u, this build reads %u", ver,
                         SUP_GCP_FILE_VERSION);
    uint16_t bytes = nle_get16(buf + SUP_GCP_OFF_BYTES);
    if (bytes != SUP_GCP_FILE_BYTES || len != SUP_GCP_FILE_BYTES)
        return nines_err(NINES_ECORRUPT, "gcp file: %zu bytes, header says %u, version %u has "
                         "%u", len, bytes, SUP_GCP_FILE_VERSION, SUP_GCP_FILE_BYTES);
    if (nle_get32(buf + SUP_GCP_OFF_RESERVED) != 0)
        return nines_err(NINES_ECORRUPT, "gcp file: reserved word is %08x, not 0",
                         nle_get32(buf + SUP_GCP_OFF_RESERVED));
    uint32_t n = nle_get32(buf + SUP_GCP_OFF_NODE);
    uint64_t c = nle_get64(buf + SUP_GCP_OFF_CLUSTER);
    if (n != node || c != cluster)
        return nines_err(NINES_EINVAL, "gcp file: written by node %u of cluster %016llx, this "
                         "is node %u of cluster %016llx", n, (unsigned long long)c, node,
                         (unsigned long long)cluster);
    if (out) {
        out->gci = nle_get64(buf + SUP_GCP_OFF_GCI);
        out->wall_us = nle_get64(buf + SUP_GCP_OFF_WALL);
        out->written_us = nle_get64(buf + SUP_GCP_OFF_WRITTEN);
        out->seq = nle_get64(buf + SUP_GCP_OFF_SEQ);
    }
    return 0;
}

int sup_gcp_file_read(const char *path, uint32_t node, uint64_t cluster,
                      struct sup_gcp_file *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    /* one byte more than the format: a longer file is refused, not cut */
    int rc = nfile_read_all(path, SUP_GCP_SLOTS_FILE + 1, &buf, &len);
    if (rc == NINES_ETOOBIG)
        return nines_err(NINES_ECORRUPT, "%s: longer than the %u bytes of a restorable-epoch "
                         "file", path, SUP_GCP_SLOTS_FILE);
    if (rc)
        return rc; /* NINES_ENOTFOUND: none; detail names the path */
    if (len == SUP_GCP_FILE_BYTES) { /* the first format: one record */
        rc = sup_gcp_file_decode(buf, len, node, cluster, out);
    } else if (len != SUP_GCP_SLOTS_FILE) {
        rc = nines_err(len < SUP_GCP_SLOTS_FILE ? NINES_ETRUNC : NINES_ECORRUPT,
                       "%zu bytes, a restorable-epoch file has %u", len, SUP_GCP_SLOTS_FILE);
    } else {
        struct sup_gcp_file f[2];
        int r[2];
        char first[300] = "";
        for (int i = 0; i < 2; i++) {
            r[i] = sup_gcp_file_decode(buf + i * SUP_GCP_SLOT_BYTES, SUP_GCP_FILE_BYTES, node,
                                       cluster, &f[i]);
            if (r[i] && !first[0])
                snprintf(first, sizeof first, "slot %d: %s", i, nines_errdetail());
        }
        if (r[0] && r[1]) {
            rc = nines_err(r[0] == NINES_EINVAL || r[1] == NINES_EINVAL ? NINES_EINVAL
                           : r[0] == NINES_EVERSION                   ? NINES_EVERSION
                                                                      : NINES_ECORRUPT,
                           "no valid slot (%s)", first);
        } else {
            int pick = r[0] ? 1 : r[1] ? 0 : f[1].seq > f[0].seq ? 1 : 0;
            if (out)
                *out = f[pick];
            rc = 0;
        }
    }
    free(buf);
    if (rc) {
        char d[400];
        snprintf(d, sizeof d, "%s", nines_errdetail());
        return nines_err(rc, "%s: %s", path, d);
    }
    return 0;
}

static int write_all(int fd, const uint8_t *b, size_t n, off_t at, const char *what)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(fd, b + off, n - off, at + (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            return nines_err(e == ENOSPC ? NINES_EFULL : NINES_EIO, "write %s: %s", what,
                             strerror(e));
        }
        off += (size_t)w;
    }
    return 0;
}

/* Make the two-slot file (both slots holding `rec`): temp, fsync, rename,
 * folder fsync — once, or when it is of the first format. */
static int make_file(const char *path, const uint8_t rec[SUP_GCP_FILE_BYTES])
{
    uint8_t img[SUP_GCP_SLOTS_FILE];
    memset(img, 0, sizeof img);
    memcpy(img, rec, SUP_GCP_FILE_BYTES);
    memcpy(img + SUP_GCP_SLOT_BYTES, rec, SUP_GCP_FILE_BYTES);
    return nfile_replace(path, img, sizeof img, 0644);
}

int sup_gcp_file_write(const char *path, const struct sup_gcp_file *f, uint32_t node,
                       uint64_t cluster)
{
    uint8_t rec[SUP_GCP_FILE_BYTES];
    int rc = sup_gcp_file_encode(f, node, cluster, rec);
    if (rc)
        return rc;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return make_file(path, rec);
    if (fd < 0)
        return nines_err(NINES_EIO, "open %s: %s", path, strerror(errno));
    off_t size = lseek(fd, 0, SEEK_END);
    if (size != (off_t)SUP_GCP_SLOTS_FILE) { /* the first format, or damaged: made anew */
        close(fd);
        return make_file(path, rec);
    }
    /* one slot, one fdatasync: the other slot keeps the previous value
     * should this write be torn */
    rc = write_all(fd, rec, sizeof rec, (off_t)((f->seq & 1) * SUP_GCP_SLOT_BYTES), path);
    if (rc == 0 && fdatasync(fd) < 0)
        rc = nines_err(NINES_EIO, "fdatasync %s: %s", path, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = nines_err(NINES_EIO, "close %s: %s", path, strerror(errno));
    return rc;
}
