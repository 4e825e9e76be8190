/* Disk log recovery scan: every segment in position order, headers and
 * chain checked, every entry verified before it is delivered; a torn tail
 * of the last segment ends the scan cleanly, anything else bad is
 * NINES_ECORRUPT naming the file and offset (README "Disk log"). */
#include "kern_dlog_int.h"

#include "nfile.h"
#include "nines/errors.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest segment the scan reads whole: a segment holds seg_bytes plus at
 * most one flush (the buffer limit), and both are far below this. */
#define SCAN_SEG_MAX ((size_t)1 << 34)

/* The caller's callback behind the gap rule: a gap marker at or after
 * `from` ends the scan (the entries `from` asks for include some that were
 * dropped), except the first entry on disk of a scan of everything. */
struct scan_run {
    kern_dlog_cb cb;
    void *arg;
    int all;            /* from = 0: everything on disk */
    uint64_t first;     /* the first position on disk */
    int stopped;        /* a gap marker ended it */
    uint64_t gap_pos;
};

static int scan_run_cb(void *arg, const struct kern_dlog_entry *e)
{
    struct scan_run *s = arg;
    if (e->kind == KERN_DLOG_GAP && !(s->all && e->pos == s->first)) {
        s->stopped = 1;
        s->gap_pos = e->pos;
        return 1;
    }
    return s->cb ? s->cb(s->arg, e) : 0;
}

int kern_dlog_scan(const char *dir, const struct kern_dlog_opts *o, uint64_t from,
                   kern_dlog_cb cb, void *arg, struct kern_dlog_scan_info *info)
{
    struct kern_dlog_scan_info dummy;
    if (!info)
        info = &dummy;
    memset(info, 0, sizeof *info);
    struct dlog_seg *segs;
    unsigned n;
    int rc = dlog_list(dir, &segs, &n);
    if (rc < 0)
        return rc;
    if (n == 0) {
        free(segs);
        return from ? nines_err(NINES_ESTALE, "log %s is empty, position %llu requested", dir,
                                (unsigned long long)from)
                    : 0;
    }
    unsigned bad;
    if ((rc = dlog_check_chain(segs, n, &bad)) < 0) {
        dlog_seg_name(segs[bad].first, info->file);
        goto out;
    }
    info->end = segs[0].first;
    if (from && from < segs[0].first) {
        rc = nines_err(NINES_ESTALE, "log %s starts at position %llu, position %llu was trimmed",
                       dir, (unsigned long long)segs[0].first, (unsigned long long)from);
        goto out;
    }
    struct scan_run run = {.cb = cb, .arg = arg, .all = from == 0, .first = segs[0].first};
    for (unsigned i = 0; i < n; i++) {
        int last = i + 1 == n;
        if (!last && segs[i + 1].first <= from) {
            info->end = segs[i + 1].first; /* wholly before `from`: not read */
            continue;
        }
        char name[DLOG_NAME_LEN + 1], path[PATH_MAX];
        dlog_seg_name(segs[i].first, name);
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
            rc = nines_err(NINES_EINVAL, "log folder path %s is too long", dir);
            goto out;
        }
        uint8_t *buf;
        size_t len;
        if ((rc = nfile_read_all(path, SCAN_SEG_MAX, &buf, &len)) < 0)
            goto out;
        info->segments++;
        if (len < KERN_DLOG_SEG_HDR)
            rc = nines_err(NINES_ECORRUPT, "%s is %zu bytes, shorter than its header", name, len);
        else if (!last && len != segs[i].size)
            rc = nines_err(NINES_ECORRUPT, "%s changed size while read (%llu, then %zu bytes)",
                           name, (unsigned long long)segs[i].size, len);
        else
            rc = dlog_seg_check(buf, name, segs[i].first, o);
        if (rc < 0) {
            snprintf(info->file, sizeof info->file, "%s", name);
            info->off = 0;
        } else {
            size_t valid;
            info->end = segs[i].first;
            rc = dlog_walk(buf, len, name, segs[i].first, last, from, scan_run_cb, &run, info,
                           &valid);
        }
        free(buf);
        if (run.stopped) { /* the gap: entries after it belong to another run */
            info->entries--; /* counted by the walk, not delivered */
            info->gap = 1;
            info->gap_pos = info->end = run.gap_pos;
            info->file[0] = '\0';
            info->off = 0;
            rc = 0;
            goto out;
        }
        if (rc)
            goto out;
    }
out:
    free(segs);
    return rc;
}
