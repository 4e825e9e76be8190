/* Kernel service: a replica recovered from the node's own disk — the
 * newest complete checkpoint the manifest names, then the disk log from
 * the manifest entry's position. README "Recovery from the node's disk".
 * The building block of a whole-cluster restart; not called by the
 * running service yet (a restarted node rebuilds from its peers). */
#include "ksvc_int.h"

#include "kernel/kern_ckpt.h"
#include "kernel/kern_dlog.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rc_redo {
    struct kern_frag *f;
    uint32_t table, frag;
    struct ksvc_recover_info *info;
};

static int rc_redo_cb(void *arg, const struct kern_dlog_entry *e)
{
    struct rc_redo *r = arg;
    if (e->kind != KERN_DLOG_REC || e->table != r->table || e->frag != r->frag)
        return 0;
    uint64_t next = kern_log_next_lsn(kern_frag_log(r->f));
    if (e->lsn < next) {
        r->info->redo_skipped++; /* in the checkpoint already (below its log's end) */
        return 0;
    }
    if (e->lsn > next)
        return nines_err(NINES_ECORRUPT, "disk log position %llu: record LSN %llu of table %u "
                         "fragment %u follows LSN %llu: a record is missing",
                         (unsigned long long)e->pos, (unsigned long long)e->lsn, r->table,
                         r->frag, (unsigned long long)(next - 1));
    int rc = kern_frag_redo_bytes(r->f, e->rec, e->len);
    if (rc < 0)
        return nines_err(rc, "disk log position %llu: redo of table %u fragment %u LSN %llu: "
                         "%s", (unsigned long long)e->pos, r->table, r->frag,
                         (unsigned long long)e->lsn, nines_errdetail());
    r->info->redo_applied++;
    return 0;
}

int ksvc_recover_replica(const char *ckpt_dir, const char *log_dir,
                         const struct kern_dlog_opts *o, const struct ksvc_ckpt_entry *e,
                         struct kern_frag *f, struct ksvc_recover_info *info)
{
    memset(info, 0, sizeof *info);
    char name[64], path[1024];
    ksvc_ckpt_file_name(e->table, e->frag, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", ckpt_dir, name);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = kern_ckpt_file_read(path, &buf, &len);
    if (rc < 0)
        return rc;
    /* the file must be the one the manifest names (a newer file that is
     * not in the manifest yet, or an older one, is not its checkpoint) */
    uint32_t crc = 0;
    if (len >= 4)
        memcpy(&crc, buf + len - 4, 4);
    if (len != e->bytes || crc != e->file_crc) {
        free(buf);
        return nines_err(NINES_ECORRUPT, "%s: %zu bytes with file CRC 0x%08x; the manifest "
                         "names %llu bytes with CRC 0x%08x", path, len, crc,
                         (unsigned long long)e->bytes, e->file_crc);
    }
    struct kern_ckpt_info ci;
    rc = kern_ckpt_load(f, buf, len, &ci);
    free(buf);
    if (rc < 0)
        return nines_err(rc, "%s: %s", path, nines_errdetail());
    if (ci.created_us != e->created_us || ci.redo_start_lsn != e->redo_start_lsn ||
        ci.records != e->records)
        return nines_err(NINES_ECORRUPT, "%s: created %llu, redo start %llu, %llu records; the "
                         "manifest names %llu, %llu, %llu", path,
                         (unsigned long long)ci.created_us,
                         (unsigned long long)ci.redo_start_lsn, (unsigned long long)ci.records,
                         (unsigned long long)e->created_us,
                         (unsigned long long)e->redo_start_lsn, (unsigned long long)e->records);
    info->redo_start = ci.redo_start_lsn;
    info->records_loaded = ci.records;
    struct rc_redo r = {f, e->table, e->frag, info};
    struct kern_dlog_scan_info si;
    rc = kern_dlog_scan(log_dir, o, e->dlog_pos, rc_redo_cb, &r, &si);
    if (rc < 0)
        return rc;
    info->gap = si.gap != 0;
    info->torn = si.torn != 0;
    info->last_lsn = kern_log_next_lsn(kern_frag_log(f)) - 1;
    return 0;
}
