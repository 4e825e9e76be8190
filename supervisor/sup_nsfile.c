/* The node-set file (supervisor/README.md "Whole-cluster restart"): the
 * last node set this node installed, kept in <data>/nodeset.nns so that a
 * bootstrap after every node stopped knows whose replicas were current.
 * Written on the I/O thread at every install (temp file, fsync, rename,
 * folder fsync; one write in flight, the newest set written next), read at
 * start. Format version 1, little-endian, 64 bytes:
 *
 *   0   8  magic "NINESNNS"
 *   8   2  version 1
 *  10   2  bytes 64
 *  12   4  node
 *  16   8  cluster identity (FNV-1a 64 of the cluster name)
 *  24   8  epoch
 *  32   8  members (bit id - 1)
 *  40   8  current
 *  48   8  standby_only
 *  56   4  reserved, 0
 *  60   4  CRC-32C of bytes 0..60
 */
#include "sup.h"

#include "common/crc32c.h"
#include "common/nfile.h"
#include "common/nle.h"
#include "nines/errors.h"
#include "nlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSF_MAGIC "NINESNNS"
#define NSF_VERSION 1u
enum {
    NSF_OFF_MAGIC = 0,
    NSF_OFF_VERSION = 8,
    NSF_OFF_BYTES = 10,
    NSF_OFF_NODE = 12,
    NSF_OFF_CLUSTER = 16,
    NSF_OFF_EPOCH = 24,
    NSF_OFF_MEMBERS = 32,
    NSF_OFF_CURRENT = 40,
    NSF_OFF_SBONLY = 48,
    NSF_OFF_RSVD = 56,
    NSF_OFF_CRC = 60,
};
_Static_assert(NSF_OFF_CRC + 4 == SUP_NSF_BYTES, "the node-set file is 64 bytes");
_Static_assert(sizeof NSF_MAGIC - 1 == 8, "8-byte magic");

void sup_nsf_encode(const struct sup_nsf_set *v, uint32_t node, uint64_t cluster,
                    uint8_t out[SUP_NSF_BYTES])
{
    memset(out, 0, SUP_NSF_BYTES);
    memcpy(out + NSF_OFF_MAGIC, NSF_MAGIC, 8);
    nle_put16(out + NSF_OFF_VERSION, NSF_VERSION);
    nle_put16(out + NSF_OFF_BYTES, SUP_NSF_BYTES);
    nle_put32(out + NSF_OFF_NODE, node);
    nle_put64(out + NSF_OFF_CLUSTER, cluster);
    nle_put64(out + NSF_OFF_EPOCH, v->epoch);
    nle_put64(out + NSF_OFF_MEMBERS, v->members);
    nle_put64(out + NSF_OFF_CURRENT, v->current);
    nle_put64(out + NSF_OFF_SBONLY, v->standby_only);
    nle_put32(out + NSF_OFF_CRC, crc32c(0, out, NSF_OFF_CRC));
}

int sup_nsf_decode(const uint8_t *b, size_t len, uint32_t node, uint64_t cluster,
                   struct sup_nsf_set *out)
{
    memset(out, 0, sizeof *out);
    if (len < SUP_NSF_BYTES)
        return nines_err(NINES_ETRUNC, "node-set file of %zu bytes, %u expected", len,
                         SUP_NSF_BYTES);
    if (memcmp(b + NSF_OFF_MAGIC, NSF_MAGIC, 8) != 0)
        return nines_err(NINES_ECORRUPT, "node-set file: bad magic");
    uint32_t want = nle_get32(b + NSF_OFF_CRC), got = crc32c(0, b, NSF_OFF_CRC);
    if (want != got)
        return nines_err(NINES_ECORRUPT, "node-set file: CRC-32C 0x%08x, stored 0x%08x", got,
                         want);
    if (nle_get16(b + NSF_OFF_VERSION) != NSF_VERSION)
        return nines_err(NINES_EVERSION, "node-set file version %u, this build reads %u",
                         nle_get16(b + NSF_OFF_VERSION), NSF_VERSION);
    if (nle_get16(b + NSF_OFF_BYTES) != SUP_NSF_BYTES || len != SUP_NSF_BYTES ||
        nle_get32(b + NSF_OFF_RSVD) != 0)
        return nines_err(NINES_ECORRUPT, "node-set file: %zu bytes, header says %u, reserved "
                         "0x%08x", len, nle_get16(b + NSF_OFF_BYTES),
                         nle_get32(b + NSF_OFF_RSVD));
    if (nle_get32(b + NSF_OFF_NODE) != node || nle_get64(b + NSF_OFF_CLUSTER) != cluster)
        return nines_err(NINES_EINVAL, "node-set file of node %u, cluster %016llx; this is "
                         "node %u of cluster %016llx", nle_get32(b + NSF_OFF_NODE),
                         (unsigned long long)nle_get64(b + NSF_OFF_CLUSTER), node,
                         (unsigned long long)cluster);
    out->epoch = nle_get64(b + NSF_OFF_EPOCH);
    out->members = nle_get64(b + NSF_OFF_MEMBERS);
    out->current = nle_get64(b + NSF_OFF_CURRENT);
    out->standby_only = nle_get64(b + NSF_OFF_SBONLY);
    if (!out->epoch || !out->members || (out->current & ~out->members) ||
        (out->standby_only & ~out->current))
        return nines_err(NINES_ECORRUPT, "node-set file: epoch %llu, members %llx, current "
                         "%llx, standby-only %llx do not nest", (unsigned long long)out->epoch,
                         (unsigned long long)out->members, (unsigned long long)out->current,
                         (unsigned long long)out->standby_only);
    return 0;
}

int sup_nsf_read(const char *path, uint32_t node, uint64_t cluster, struct sup_nsf_set *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = nfile_read_all(path, 4096, &buf, &len);
    if (rc < 0)
        return rc;
    rc = sup_nsf_decode(buf, len, node, cluster, out);
    free(buf);
    if (rc < 0)
        return nines_err(rc, "%s: %s", path, nines_errdetail());
    return 0;
}

/* ---- the writer (I/O thread) ---- */

static int nsf_io(void *arg)
{
    struct sup_nsf *w = arg;
    int rc = nfile_replace(w->path, w->img, SUP_NSF_BYTES, 0600);
    if (rc < 0)
        snprintf(w->why, sizeof w->why, "%s", nines_errdetail());
    return rc;
}

static void nsf_submit(struct sup *s)
{
    struct sup_nsf *w = &s->nsf;
    sup_nsf_encode(&w->want, s->self, w->cluster, w->img);
    w->writing = w->want;
    w->dirty = false;
    w->io = (struct rt_io_req){.fn = nsf_io, .arg = w, .svc = RT_SVC_SUP};
    if (rt_io_submit(s->rt, &w->io) < 0) {
        NLOG_ERROR("sup", "node %u: cannot write the node-set file %s: %s", s->self, w->path,
                   nines_errdetail());
        return;
    }
    w->busy = true;
}

void sup_nsf_installed(struct sup *s, const struct sup_nsf_set *v)
{
    struct sup_nsf *w = &s->nsf;
    if (!w->path[0] || v->epoch <= w->want.epoch)
        return;
    w->want = *v;
    w->dirty = true;
    if (!w->busy)
        nsf_submit(s);
}

bool sup_nsf_on_io_done(struct sup *s, struct rt_io_req *req)
{
    struct sup_nsf *w = &s->nsf;
    if (req != &w->io)
        return false;
    w->busy = false;
    if (req->result < 0)
        NLOG_ERROR("sup", "node %u: node-set file %s not written (epoch %llu): %s", s->self,
                   w->path, (unsigned long long)w->writing.epoch, w->why);
    else
        w->saved = w->writing;
    if (w->dirty)
        nsf_submit(s);
    return true;
}

void sup_nsf_init(struct sup *s)
{
    struct sup_nsf *w = &s->nsf;
    memset(w, 0, sizeof *w);
    const struct nines_conf *c = s->conf;
    const struct nines_node_conf *me = c ? nines_conf_node(c, s->self) : NULL;
    if (!me || !me->data_dir[0] || c->disk_log == NINES_DISK_LOG_OFF)
        return; /* nothing of this node outlives its process */
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 of the cluster name, as the disk log */
    for (const char *p = c->cluster; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    w->cluster = h;
    snprintf(w->path, sizeof w->path, "%s/nodeset.nns", me->data_dir);
    int rc = sup_nsf_read(w->path, s->self, w->cluster, &w->found);
    if (rc == NINES_ENOTFOUND) {
        memset(&w->found, 0, sizeof w->found);
        return;
    }
    if (rc < 0) {
        char bad[sizeof w->path + 8];
        snprintf(bad, sizeof bad, "%s.bad", w->path);
        NLOG_ERROR("sup", "node %u: %s; set aside as %s: this node takes no part in a "
                   "whole-cluster restart's choice", s->self, nines_errdetail(), bad);
        (void)rename(w->path, bad);
        memset(&w->found, 0, sizeof w->found);
        return;
    }
    NLOG_INFO("sup", "node %u: the last node set before this process: epoch %llu, members "
              "%llx, current %llx (%s)", s->self, (unsigned long long)w->found.epoch,
              (unsigned long long)w->found.members, (unsigned long long)w->found.current,
              w->path);
}
