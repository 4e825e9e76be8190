/* Disk log writer: open (check, cut a torn tail), append into a buffer,
 * flush with one pwrite() + one fsync() (group commit), rotate segments,
 * trim old ones. A failed flush keeps the buffer and writes it again at
 * the same offset next time (README "Disk log", crash behaviour). */
#include "kern_dlog_int.h"

#include "kern_log.h"
#include "nassert.h"
#include "nfile.h"
#include "nines/errors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

struct kern_dlog {
    char dir[PATH_MAX - DLOG_NAME_LEN - 8];
    struct kern_dlog_opts o;
    struct dlog_seg *segs; /* on disk, position order; the last is current */
    unsigned nseg, segcap;
    int fd;                /* the current segment */
    uint64_t seg_used;     /* durable entry bytes in it (file = header + seg_used) */
    uint64_t durable;      /* position fsync'ed = current first + seg_used */
    uint8_t *buf;          /* appended, not yet durable */
    size_t blen, bcap;
    bool gap_seg;          /* the buffer starts with a gap marker: a new segment first */
    struct kern_dlog_stats st;
};

static uint64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void seg_path(const struct kern_dlog *l, uint64_t first, char *out, size_t cap)
{
    char name[DLOG_NAME_LEN + 1];
    dlog_seg_name(first, name);
    snprintf(out, cap, "%s/%s", l->dir, name);
}

static int io_err(int e, const char *what, const char *path, uint64_t off, size_t n)
{
    return nines_err(e == ENOSPC ? NINES_EFULL : NINES_EIO, "%s %s at offset %llu (%zu bytes): %s",
                     what, path, (unsigned long long)off, n, strerror(e));
}

/* Write all of p[0..n) at `off` (retrying short writes and EINTR).
 * Fault points (FAULTS builds): kern.dlog.enospc fails before writing,
 * kern.dlog.short writes half and then fails with ENOSPC. */
static int write_at(struct kern_dlog *l, int fd, const uint8_t *p, size_t n, uint64_t off,
                    const char *path)
{
    if (N_FAULT("kern.dlog.enospc"))
        return io_err(ENOSPC, "write", path, off, n);
    int short_fault = n > 1 && N_FAULT("kern.dlog.short");
    while (n) {
        size_t want = short_fault ? n / 2 : n;
        ssize_t w = pwrite(fd, p, want, (off_t)off);
        l->st.writes++;
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) /* 0 for a nonzero count: never loop on it */
            return io_err(w < 0 ? errno : EIO, "write", path, off, n);
        p += w, n -= (size_t)w, off += (uint64_t)w;
        if (short_fault)
            return io_err(ENOSPC, "write", path, off, n);
    }
    return 0;
}

/* Create the segment starting at `first`: "<name>.tmp" with the header,
 * fsync, rename, fsync the folder; then it is the current segment. */
static int new_segment(struct kern_dlog *l, uint64_t first)
{
    char path[PATH_MAX], tmp[PATH_MAX + 4];
    seg_path(l, first, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (l->nseg == l->segcap) {
        unsigned nc = l->segcap ? l->segcap * 2 : 16;
        struct dlog_seg *v = realloc(l->segs, nc * sizeof *v);
        if (!v)
            return nines_err(NINES_ENOMEM, "no memory for %u log segments", nc);
        l->segs = v, l->segcap = nc;
    }
    uint8_t h[KERN_DLOG_SEG_HDR];
    dlog_seg_header(h, &l->o, first, now_us());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return io_err(errno, "create", tmp, 0, 0);
    int rc = 0;
    for (size_t done = 0; done < sizeof h && rc == 0;) {
        ssize_t w = write(fd, h + done, sizeof h - done);
        if (w > 0)
            done += (size_t)w;
        else if (w == 0 || errno != EINTR)
            rc = io_err(w < 0 ? errno : EIO, "write", tmp, done, sizeof h - done);
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = io_err(errno, "fsync", tmp, 0, sizeof h);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = io_err(errno, "rename", tmp, 0, 0);
    if (rc == 0)
        rc = nfile_fsync_dir(path);
    if (rc < 0) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = fd;
    l->segs[l->nseg++] = (struct dlog_seg){first, KERN_DLOG_SEG_HDR};
    l->seg_used = 0;
    l->durable = first;
    l->st.segs_created++;
    return 0;
}

/* Remove leftover "*.tmp" files of segments never renamed. */
static int remove_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return nines_err(NINES_EIO, "open log folder %s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 8 && !memcmp(e->d_name, "log-", 4) && !strcmp(e->d_name + n - 8, ".ndl.tmp") &&
            unlinkat(dirfd(d), e->d_name, 0) < 0)
            rc = nines_err(NINES_EIO, "remove %s/%s: %s", dir, e->d_name, strerror(errno));
    }
    closedir(d);
    return rc;
}

/* Check the existing segments and make the last one current, cutting off
 * its torn tail. */
static int reopen(struct kern_dlog *l)
{
    unsigned bad;
    int rc = dlog_check_chain(l->segs, l->nseg, &bad);
    if (rc < 0)
        return rc;
    char path[PATH_MAX], name[DLOG_NAME_LEN + 1];
    for (unsigned i = 0; i + 1 < l->nseg; i++) { /* headers only; the scan reads entries */
        seg_path(l, l->segs[i].first, path, sizeof path);
        dlog_seg_name(l->segs[i].first, name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return io_err(errno, "open", path, 0, 0);
        uint8_t h[KERN_DLOG_SEG_HDR];
        ssize_t r = pread(fd, h, sizeof h, 0);
        close(fd);
        if (r != (ssize_t)sizeof h)
            return nines_err(NINES_EIO, "read header of %s: %s", path,
                             r < 0 ? strerror(errno) : "short read");
        if ((rc = dlog_seg_check(h, name, l->segs[i].first, &l->o)) < 0)
            return rc;
    }
    struct dlog_seg *cur = &l->segs[l->nseg - 1];
    seg_path(l, cur->first, path, sizeof path);
    dlog_seg_name(cur->first, name);
    uint8_t *buf;
    size_t len;
    if ((rc = nfile_read_all(path, SIZE_MAX, &buf, &len)) < 0)
        return rc;
    struct kern_dlog_scan_info info;
    memset(&info, 0, sizeof info);
    size_t valid = 0;
    if (len < KERN_DLOG_SEG_HDR)
        rc = nines_err(NINES_ECORRUPT, "%s is %zu bytes, shorter than its header", name, len);
    else if ((rc = dlog_seg_check(buf, name, cur->first, &l->o)) == 0)
        rc = dlog_walk(buf, len, name, cur->first, 1, UINT64_MAX, NULL, NULL, &info, &valid);
    free(buf);
    if (rc < 0)
        return rc;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return io_err(errno, "open", path, 0, 0);
    if (valid < len) { /* the torn tail */
        if (ftruncate(fd, (off_t)valid) < 0 || fsync(fd) < 0) {
            rc = io_err(errno, "truncate torn tail of", path, valid, len - valid);
            close(fd);
            return rc;
        }
        l->st.torn_bytes = len - valid;
    }
    l->fd = fd;
    cur->size = valid;
    l->seg_used = valid - KERN_DLOG_SEG_HDR;
    l->durable = cur->first + l->seg_used;
    return 0;
}

int kern_dlog_open(const char *dir, const struct kern_dlog_opts *o, struct kern_dlog **out)
{
    struct kern_dlog *l = calloc(1, sizeof *l);
    if (!l)
        return nines_err(NINES_ENOMEM, "no memory for the disk log");
    l->fd = -1;
    l->o = *o;
    if (!l->o.seg_bytes)
        l->o.seg_bytes = KERN_DLOG_SEG_DFLT;
    if (!l->o.buf_max)
        l->o.buf_max = KERN_DLOG_BUF_DFLT;
    int rc = 0;
    if (snprintf(l->dir, sizeof l->dir, "%s", dir) >= (int)sizeof l->dir)
        rc = nines_err(NINES_EINVAL, "log folder path of %zu bytes is too long", strlen(dir));
    else if (mkdir(dir, 0755) == 0)
        rc = nfile_fsync_dir(dir); /* the new folder's entry in its parent */
    else if (errno != EEXIST)
        rc = nines_err(NINES_EIO, "create log folder %s: %s", dir, strerror(errno));
    if (rc == 0)
        rc = remove_tmp(dir);
    if (rc == 0)
        rc = dlog_list(dir, &l->segs, &l->nseg);
    if (rc == 0) {
        l->segcap = l->nseg;
        rc = l->nseg ? reopen(l) : new_segment(l, 0);
    }
    if (rc < 0) {
        kern_dlog_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

void kern_dlog_close(struct kern_dlog *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->segs);
    free(l->buf);
    free(l);
}

static int put(struct kern_dlog *l, uint8_t kind, uint32_t table, uint32_t frag, uint64_t lsn,
               const uint8_t *payload, size_t len, uint64_t *end)
{
    size_t need = KERN_DLOG_ENT_HDR + len;
    if (l->blen && l->blen + need > l->o.buf_max) /* an empty buffer takes any one entry */
        return nines_err(NINES_EFULL, "disk log buffer holds %zu unflushed bytes, an entry of "
                         "%zu would pass the limit of %llu", l->blen, need,
                         (unsigned long long)l->o.buf_max);
    if (l->blen + need > l->bcap) {
        size_t nc = l->bcap ? l->bcap : 64 * 1024;
        while (nc < l->blen + need)
            nc *= 2;
        uint8_t *nb = realloc(l->buf, nc);
        if (!nb)
            return nines_err(NINES_ENOMEM, "no memory for a disk log buffer of %zu bytes", nc);
        l->buf = nb, l->bcap = nc;
    }
    uint8_t *p = l->buf + l->blen;
    if (len)
        memcpy(p + KERN_DLOG_ENT_HDR, payload, len);
    dlog_ent_header(p, kind, table, frag, lsn, p + KERN_DLOG_ENT_HDR, (uint32_t)len);
    l->blen += need;
    l->st.appends++;
    if (end)
        *end = kern_dlog_end(l);
    return 0;
}

int kern_dlog_append(struct kern_dlog *l, uint32_t table, uint32_t frag, uint64_t lsn,
                     const uint8_t *rec, size_t len, uint64_t *end)
{
    uint32_t rlen, rtab, rfrag;
    uint64_t rlsn;
    if (len < KERN_LOG_HDR || len > KERN_LOG_MAX)
        return nines_err(NINES_EINVAL, "log record of %zu bytes for the disk log", len);
    memcpy(&rlen, rec, 4);
    memcpy(&rtab, rec + 12, 4);
    memcpy(&rfrag, rec + 16, 4);
    memcpy(&rlsn, rec + 32, 8);
    if (rlen != len || rtab != table || rfrag != frag || rlsn != lsn || lsn == 0)
        return nines_err(NINES_EINVAL, "log record (%u bytes, table %u frag %u LSN %llu) "
                         "appended as %zu bytes of table %u frag %u LSN %llu", rlen, rtab, rfrag,
                         (unsigned long long)rlsn, len, table, frag, (unsigned long long)lsn);
    return put(l, KERN_DLOG_REC, table, frag, lsn, rec, len, end);
}

int kern_dlog_append_ckpt(struct kern_dlog *l, uint32_t table, uint32_t frag, uint64_t redo_lsn,
                          uint64_t *end)
{
    if (redo_lsn == 0)
        return nines_err(NINES_EINVAL, "checkpoint marker with redo start LSN 0");
    return put(l, KERN_DLOG_CKPT, table, frag, redo_lsn, NULL, 0, end);
}

int kern_dlog_flush(struct kern_dlog *l)
{
    if (l->blen == 0)
        return 0;
    int rc = 0;
    if ((l->seg_used >= l->o.seg_bytes || (l->gap_seg && l->seg_used > 0)) &&
        (rc = new_segment(l, l->durable)) < 0) {
        l->st.flush_errors++;
        return rc;
    }
    char path[PATH_MAX];
    struct dlog_seg *cur = &l->segs[l->nseg - 1];
    seg_path(l, cur->first, path, sizeof path);
    uint64_t off = KERN_DLOG_SEG_HDR + l->seg_used;
    rc = write_at(l, l->fd, l->buf, l->blen, off, path);
    if (rc == 0) {
        l->st.fsyncs++;
        if (N_FAULT("kern.dlog.fsync"))
            rc = io_err(EIO, "fsync", path, off, l->blen);
        else if (fsync(l->fd) < 0)
            rc = io_err(errno, "fsync", path, off, l->blen);
    }
    if (rc < 0) {
        /* Keep the buffer; cut what reached the file so the segment ends
         * at its durable length (if this fails too, the next flush
         * overwrites the same bytes from the same offset). */
        int save = rc;
        (void)ftruncate(l->fd, (off_t)off);
        l->st.flush_errors++;
        return save;
    }
    l->seg_used += l->blen;
    l->durable += l->blen;
    cur->size = KERN_DLOG_SEG_HDR + l->seg_used;
    l->st.bytes += l->blen;
    l->st.flushes++;
    l->blen = 0;
    l->gap_seg = false;
    return 0;
}

size_t kern_dlog_discard(struct kern_dlog *l)
{
    size_t n = l->blen;
    if (l->gap_seg) /* a marker not yet written is not the caller's entry */
        n -= n < KERN_DLOG_ENT_HDR ? n : KERN_DLOG_ENT_HDR;
    l->blen = 0;
    l->gap_seg = false;
    l->st.discarded += n;
    return n;
}

int kern_dlog_mark_gap(struct kern_dlog *l, uint64_t dropped, uint64_t *end)
{
    (void)kern_dlog_discard(l);
    int rc = put(l, KERN_DLOG_GAP, 0, 0, dropped ? dropped : 1, NULL, 0, end);
    if (rc == 0) {
        l->gap_seg = true;
        l->st.gap_marks++;
    }
    return rc;
}

uint64_t kern_dlog_durable(const struct kern_dlog *l) { return l->durable; }
uint64_t kern_dlog_end(const struct kern_dlog *l) { return l->durable + l->blen; }
size_t kern_dlog_buffered(const struct kern_dlog *l) { return l->blen; }
uint64_t kern_dlog_first(const struct kern_dlog *l) { return l->segs[0].first; }
unsigned kern_dlog_segments(const struct kern_dlog *l) { return l->nseg; }
void kern_dlog_get_stats(const struct kern_dlog *l, struct kern_dlog_stats *s) { *s = l->st; }

int kern_dlog_trim(struct kern_dlog *l, uint64_t pos)
{
    unsigned k = 0;
    int rc = 0;
    char path[PATH_MAX];
    while (k + 1 < l->nseg && l->segs[k + 1].first <= pos) {
        seg_path(l, l->segs[k].first, path, sizeof path);
        if (unlink(path) < 0 && errno != ENOENT) {
            rc = nines_err(NINES_EIO, "remove %s: %s", path, strerror(errno));
            break;
        }
        k++;
    }
    if (k) {
        memmove(l->segs, l->segs + k, (l->nseg - k) * sizeof *l->segs);
        l->nseg -= k;
        l->st.segs_removed += k;
        seg_path(l, l->segs[0].first, path, sizeof path);
        int drc = nfile_fsync_dir(path);
        if (rc == 0)
            rc = drc;
    }
    return rc < 0 ? rc : (int)k;
}
