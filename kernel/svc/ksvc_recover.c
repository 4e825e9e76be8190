/* Kernel service: a replica recovered from the node's own disk — the
 * newest complete checkpoint the manifest names, then the disk log from
 * the manifest entry's position. README "Recovery from the node's disk".
 * The building block of a whole-cluster restart; not called by the
 * running service yet (a restarted node rebuilds from its peers). */
#include "ksvc_int.h"

#include "kernel/kern_ckpt.h"
#include "kernel/kern_dlog.h"
#include "nines/errors.h"

#include <stdarg.h>
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

/* Load the checkpoint entry `e` names into f (README "Recovery from the
 * node's disk": the file must be the entry's). */
static int rc_load_ckpt(const char *ckpt_dir, const struct ksvc_ckpt_entry *e,
                        struct kern_frag *f, struct ksvc_recover_info *info)
{
    char name[64], path[1024];
    ksvc_ckpt_file_name(e->table, e->frag, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", ckpt_dir, name);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = kern_ckpt_file_read(path, &buf, &len);
    if (rc < 0)
        return rc;
    /* the file is the one the manifest names, or a newer one whose manifest
     * write a crash prevented (the file is renamed first): its redo start
     * is at least the entry's, and the entry's dlog_pos bounds its records
     * too (segments go only after a durable manifest); anything else — an
     * older file, a damaged one — is refused */
    uint32_t crc = 0;
    if (len >= 4)
        memcpy(&crc, buf + len - 4, 4);
    bool named = len == e->bytes && crc == e->file_crc;
    struct kern_ckpt_info ci;
    rc = kern_ckpt_load(f, buf, len, &ci);
    free(buf);
    if (rc < 0)
        return nines_err(rc, "%s: %s%s", path, nines_errdetail(),
                         named ? "" : " (nor is it the file the manifest names)");
    /* a checkpoint of an unchanged replica may repeat the size and the
     * data CRC of the one before: the creation time tells them apart */
    if (named && ci.created_us != e->created_us)
        named = false;
    if (!named) {
        if (ci.created_us > e->created_us && ci.redo_start_lsn >= e->redo_start_lsn) {
            info->redo_start = ci.redo_start_lsn;
            info->records_loaded = ci.records;
            info->newer = true;
            return 0;
        }
        return nines_err(NINES_ECORRUPT, "%s: %zu bytes with file CRC 0x%08x, created %llu, "
                         "redo start %llu; the manifest names %llu bytes with CRC 0x%08x, "
                         "created %llu, redo start %llu: not its checkpoint nor a newer one",
                         path, len, crc, (unsigned long long)ci.created_us,
                         (unsigned long long)ci.redo_start_lsn, (unsigned long long)e->bytes,
                         e->file_crc, (unsigned long long)e->created_us,
                         (unsigned long long)e->redo_start_lsn);
    }
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
    return 0;
}

int ksvc_recover_replica(const char *ckpt_dir, const char *log_dir,
                         const struct kern_dlog_opts *o, const struct ksvc_ckpt_entry *e,
                         struct kern_frag *f, struct ksvc_recover_info *info)
{
    memset(info, 0, sizeof *info);
    int rc = rc_load_ckpt(ckpt_dir, e, f, info);
    if (rc < 0)
        return rc;
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

/* ---- a whole-cluster restart: every replica of the node, one scan ---- */

static void rc_fail(struct ksvc_rc_rep *x, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rc_fail(struct ksvc_rc_rep *x, int rc, const char *fmt, ...)
{
    if (x->rc)
        return; /* the first reason stays */
    x->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why, sizeof x->why, fmt, ap);
    va_end(ap);
}

struct rc_all {
    struct ksvc_rc_rep *reps;
    size_t n;
    uint64_t floor_gci;
    uint64_t from; /* this scan's start */
};

static struct ksvc_rc_rep *rc_find(struct rc_all *a, uint32_t table, uint32_t frag)
{
    size_t lo = 0, hi = a->n; /* reps are sorted by (table, frag) */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        struct ksvc_rc_rep *x = &a->reps[mid];
        if (x->table == table && x->frag == frag)
            return x;
        if (x->table < table || (x->table == table && x->frag < frag))
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int rc_note_late(struct ksvc_rc_rep *x, uint64_t txn, uint64_t last_lsn, uint64_t gci)
{
    if (x->nlate == x->caplate) {
        size_t nc = x->caplate ? 2 * x->caplate : 64;
        struct ksvc_rc_late *nl = realloc(x->late, nc * sizeof *nl);
        if (!nl)
            return nines_err(NINES_ENOMEM, "late commits of table %u fragment %u", x->table,
                             x->frag);
        x->late = nl, x->caplate = nc;
    }
    x->late[x->nlate++] = (struct ksvc_rc_late){txn, last_lsn, gci};
    return 0;
}

static int rc_all_cb(void *arg, const struct kern_dlog_entry *e)
{
    struct rc_all *a = arg;
    struct ksvc_rc_rep *x = rc_find(a, e->table, e->frag);
    if (!x || x->rc || e->pos < x->start)
        return 0;
    switch (e->kind) {
    case KERN_DLOG_CKPT:
        /* a base that is not in this log (a rebuild from a copy) after the
         * position this replica needs the log from: never bridged */
        rc_fail(x, NINES_ESTATE, "table %u fragment %u was rebuilt from a copy after its %s "
                "(disk log position %llu): not recoverable from this disk", x->table, x->frag,
                x->has_entry ? "checkpoint" : "creation", (unsigned long long)e->pos);
        return 0;
    case KERN_DLOG_GAP:
        if (!x->has_entry)
            rc_fail(x, NINES_ESTATE, "table %u fragment %u has no checkpoint and the disk log "
                    "holds a gap at position %llu", x->table, x->frag,
                    (unsigned long long)e->pos);
        return 0;
    case KERN_DLOG_REC:
        break;
    default:
        return 0;
    }
    uint64_t next = kern_log_next_lsn(kern_frag_log(x->f));
    if (e->lsn < next) {
        x->info.redo_skipped++;
        return 0;
    }
    if (e->lsn > next) {
        rc_fail(x, NINES_ECORRUPT, "disk log position %llu: record LSN %llu of table %u "
                "fragment %u follows LSN %llu%s: a record is missing", (unsigned long long)e->pos,
                (unsigned long long)e->lsn, x->table, x->frag, (unsigned long long)(next - 1),
                x->has_entry ? "" : " (no checkpoint: its log must start at LSN 1)");
        return 0;
    }
    int rc = kern_frag_redo_bytes(x->f, e->rec, e->len);
    if (rc < 0) {
        rc_fail(x, rc, "disk log position %llu: redo of table %u fragment %u LSN %llu: %s",
                (unsigned long long)e->pos, x->table, x->frag, (unsigned long long)e->lsn,
                nines_errdetail());
        return 0;
    }
    x->seen = true;
    x->info.redo_applied++;
    struct kern_logrec lr;
    if (kern_logrec_decode(e->rec, e->len, &lr) > 0 && lr.op == KERN_LOG_COMMIT &&
        lr.gci > a->floor_gci && (rc = rc_note_late(x, lr.txn, lr.prev_lsn, lr.gci)) < 0)
        rc_fail(x, rc, "%s", nines_errdetail());
    return 0;
}

static int rc_cmp(const void *pa, const void *pb)
{
    const struct ksvc_rc_rep *a = pa, *b = pb;
    if (a->table != b->table)
        return a->table < b->table ? -1 : 1;
    return a->frag < b->frag ? -1 : a->frag > b->frag;
}

int ksvc_recover_all(const char *ckpt_dir, const char *log_dir, const struct kern_dlog_opts *o,
                     struct ksvc_rc_rep *reps, size_t n, uint64_t floor_gci,
                     uint64_t must_reach)
{
    qsort(reps, n, sizeof *reps, rc_cmp);
    uint64_t from = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        struct ksvc_rc_rep *x = &reps[i];
        x->seen = false, x->nlate = 0;
        memset(&x->info, 0, sizeof x->info);
        x->start = 0;
        if (x->rc || !x->f)
            continue; /* refused before (the caller's reason stays) */
        if (x->has_entry) {
            int rc = rc_load_ckpt(ckpt_dir, &x->e, x->f, &x->info);
            if (rc < 0) {
                rc_fail(x, rc, "%s", nines_errdetail());
                continue;
            }
            x->start = x->e.dlog_pos;
        }
        if (x->start < from)
            from = x->start;
    }
    if (from == UINT64_MAX) {
        if (!must_reach)
            return 0; /* nothing to scan for */
        from = must_reach; /* only the bound to check */
    }
    struct rc_all a = {reps, n, floor_gci, from};
    for (;;) {
        struct kern_dlog_scan_info si;
        int rc = kern_dlog_scan(log_dir, o, a.from, rc_all_cb, &a, &si);
        if (rc < 0) {
            char why[300];
            snprintf(why, sizeof why, "%s", nines_errdetail());
            for (size_t i = 0; i < n; i++)
                rc_fail(&reps[i], rc, "disk log: %s", why);
            return 0;
        }
        for (size_t i = 0; i < n; i++)
            if (si.torn)
                reps[i].info.torn = true;
        if (!si.gap && si.end < must_reach) {
            /* everything below must_reach was durable when an epoch became
             * restorable: a log that ends before it lost acknowledged
             * records (a truncated or replaced file), not a crash's tail */
            for (size_t i = 0; i < n; i++)
                rc_fail(&reps[i], NINES_ECORRUPT, "the disk log ends at position %llu%s, but "
                        "position %llu was durable when an epoch became restorable: the log "
                        "was truncated", (unsigned long long)si.end,
                        si.torn ? " (a torn tail cut)" : "",
                        (unsigned long long)must_reach);
            return 0;
        }
        if (!si.gap)
            break;
        /* a gap: replicas that needed the log from before it are not
         * recoverable; those whose checkpoint lies after it go on */
        uint64_t after = si.gap_pos + KERN_DLOG_ENT_HDR;
        bool more = false;
        for (size_t i = 0; i < n; i++) {
            struct ksvc_rc_rep *x = &reps[i];
            if (x->rc)
                continue;
            if (x->start < after) {
                x->info.gap = true;
                rc_fail(x, NINES_ESTATE, "table %u fragment %u: the disk log has a gap at "
                        "position %llu after its %s (position %llu)", x->table, x->frag,
                        (unsigned long long)si.gap_pos,
                        x->has_entry ? "checkpoint" : "creation",
                        (unsigned long long)x->start);
            } else {
                more = true;
            }
        }
        if (!more)
            break;
        a.from = after;
    }
    for (size_t i = 0; i < n; i++)
        if (!reps[i].rc)
            reps[i].info.last_lsn = kern_log_next_lsn(kern_frag_log(reps[i].f)) - 1;
    return 0;
}

struct rc_loser {
    uint64_t txn, last_lsn;
    bool reopen;
};

static int rc_loser_cmp(const void *pa, const void *pb)
{
    const struct rc_loser *a = pa, *b = pb;
    return a->last_lsn > b->last_lsn ? -1 : a->last_lsn < b->last_lsn;
}

int ksvc_recover_finish(struct kern_frag *f, const struct ksvc_rc_rep *x, uint64_t restorable,
                        uint64_t *undone)
{
    *undone = 0;
    int rc = kern_frag_set_role(f, KERN_FRAG_PROMOTING);
    if (rc == 0)
        rc = kern_frag_set_role(f, KERN_FRAG_PRIMARY);
    if (rc < 0)
        return rc;
    size_t nopen = kern_frag_txns(f, NULL, 0);
    size_t cap = nopen + x->nlate;
    struct rc_loser *l = calloc(cap ? cap : 1, sizeof *l);
    uint64_t *open = calloc(nopen ? nopen : 1, sizeof *open);
    if (!l || !open) {
        free(l);
        free(open);
        return nines_err(NINES_ENOMEM, "losers of table %u fragment %u", x->table, x->frag);
    }
    kern_frag_txns(f, open, nopen);
    size_t nl = 0;
    for (size_t i = 0; i < nopen; i++)
        l[nl++] = (struct rc_loser){open[i], kern_frag_txn_last_lsn(f, open[i]), false};
    for (size_t i = 0; i < x->nlate; i++)
        if (x->late[i].gci > restorable && x->late[i].last_lsn)
            l[nl++] = (struct rc_loser){x->late[i].txn, x->late[i].last_lsn, true};
    free(open);
    /* newest first: a later transaction that changed a row after a loser
     * committed is itself a loser (its epoch is not lower) and is undone
     * before it */
    qsort(l, nl, sizeof *l, rc_loser_cmp);
    for (size_t i = 0; i < nl && rc == 0; i++) {
        if (l[i].reopen && (rc = kern_frag_reopen(f, l[i].txn, l[i].last_lsn)) < 0)
            break;
        rc = kern_frag_abort(f, l[i].txn, NULL);
        if (rc == 0)
            (*undone)++;
    }
    free(l);
    if (rc < 0)
        return nines_err(rc, "table %u fragment %u: undo after recovery: %s", x->table, x->frag,
                         nines_errdetail());
    return 0;
}

void ksvc_rc_rep_clear(struct ksvc_rc_rep *x)
{
    free(x->late);
    x->late = NULL;
    x->nlate = x->caplate = 0;
}
