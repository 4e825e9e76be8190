/* Disk logging of the kernel service (kernel/svc/README.md "Disk logging")
 * on one node without a network: the runtime (with its I/O thread), the
 * update channel and the kernel service with a disk log folder, a
 * dictionary built here with single-replica tables, transactions run
 * straight on the replicas. Every record a fragment publishes must reach
 * the disk log once, in publication order, equal to the fragment's bytes;
 * the records of one executor turn go in one flush; an injected ENOSPC
 * stops disk logging without failing a transaction and the retry resumes
 * it with nothing lost; past the buffer bound the log gets a gap, and once
 * the disk takes writes again it resumes after a gap marker that no scan
 * crosses. Waits are counted in loop turns, never timed. */
#include "ksvc_rig.h"

#define BUF_MAX (1u << 20) /* the test's bound on bytes buffered for the disk */

/* Scan: every record entry equals the fragment's record of that LSN, and
 * per fragment the LSNs run 1, 2, 3, ... without a hole or a repeat. */
struct cmp {
    uint64_t next[2];
    uint64_t got, bad;
};

static int compare(void *arg, const struct kern_dlog_entry *e)
{
    struct cmp *c = arg;
    const uint8_t *p;
    size_t len;
    if (e->kind != KERN_DLOG_REC || e->table != W.t1 || e->frag > 1 ||
        e->lsn != c->next[e->frag] ||
        kern_log_get(kern_frag_log(frag_of(e->table, e->frag)), e->lsn, &p, &len) != 0 ||
        len != e->len || memcmp(p, e->rec, len) != 0)
        c->bad++;
    else
        c->next[e->frag]++;
    c->got++;
    return 0;
}

/* The disk log holds exactly the records both fragments published. */
static void check_disk(void)
{
    struct cmp c = {.next = {1, 1}};
    struct kern_dlog_opts o = {.node = 1, .cluster = CLUSTER};
    struct kern_dlog_scan_info info;
    CU_ASSERT_EQUAL(kern_dlog_scan(W.dir, &o, 0, compare, &c, &info), 0);
    CU_ASSERT_EQUAL(c.bad, 0);
    CU_ASSERT_EQUAL(info.torn, 0);
    for (uint32_t f = 0; f < 2; f++)
        CU_ASSERT_EQUAL(c.next[f], kern_log_next_lsn(kern_frag_log(frag_of(W.t1, f))));
    CU_ASSERT_EQUAL(info.end, dls().durable);
}

static int suite_init(void)
{
    if (rig_init("ksvc_dlog", BUF_MAX, 0, false, 0))
        return 1;
    W.t1 = table_new("t1", 2);
    if (!W.t1 || ksvc_nreplicas(W.k) != 2)
        return 1;
    return 0;
}

static int suite_fini(void) { return rig_fini(); }

/* Records published by both fragments reach the disk log, equal to the
 * fragments' own bytes, in LSN order, each once. */
static void test_records_reach_disk(void)
{
    settle(); /* the open */
    CU_ASSERT_EQUAL(dls().state, KSVC_DLOG_ON);
    put_rows(0, 0, 100);
    put_rows(1, 100, 150);
    put_rows(0, 150, 160);
    settle();
    struct ksvc_dlog_status s = dls();
    CU_ASSERT_EQUAL(s.records, 100 + 1 + 50 + 1 + 10 + 1); /* inserts and COMMITs */
    CU_ASSERT_EQUAL(s.buffered, 0);
    CU_ASSERT_EQUAL(s.flush_errors, 0);
    CU_ASSERT_EQUAL(s.dropped, 0);
    CU_ASSERT(s.durable > 0);
    CU_ASSERT_EQUAL(s.fsyncs, s.flushes);
    check_disk();
}

/* Records published within one executor turn go to disk in one flush. */
static void test_one_flush_per_turn(void)
{
    settle();
    struct ksvc_dlog_status a = dls();
    for (int64_t i = 0; i < 10; i++) /* ten transactions, one turn */
        put_rows((uint32_t)(i % 2), 1000 + i * 100, 1000 + i * 100 + 100);
    settle();
    struct ksvc_dlog_status b = dls();
    CU_ASSERT_EQUAL(b.records - a.records, 10 * 101);
    CU_ASSERT_EQUAL(b.submits - a.submits, 1);
    CU_ASSERT_EQUAL(b.flushes - a.flushes, 1);
    CU_ASSERT_EQUAL(b.fsyncs - a.fsyncs, 1);
    check_disk();
}

#ifdef NINES_FAULTS
/* An injected ENOSPC stops disk logging; transactions go on; the retry a
 * second later (the executor's clock moved, not waited for) writes all
 * that was buffered, and disk logging is on again with nothing lost. */
static void test_enospc_stops_and_resumes(void)
{
    settle();
    uint64_t durable = dls().durable;
    nines_fault_arm("kern.dlog.enospc", 1);
    put_rows(0, 5000, 5100);
    until_state(KSVC_DLOG_STOPPED);
    struct ksvc_dlog_status s = dls();
    CU_ASSERT_PTR_NOT_NULL(strstr(s.reason, "No space left"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.reason, ".ndl"));
    CU_ASSERT_EQUAL(s.flush_errors, 1);
    CU_ASSERT_EQUAL(s.durable, durable);
    put_rows(1, 5100, 5200); /* committed while the disk log is stopped */
    for (int i = 0; i < 10; i++)
        rt_step(W.rt, 0);
    s = dls();
    CU_ASSERT_EQUAL(s.state, KSVC_DLOG_STOPPED); /* no retry before its time */
    CU_ASSERT_EQUAL(s.durable, durable);
    CU_ASSERT(s.buffered > 0);
    CU_ASSERT_EQUAL(rt_fault_advance_clock(W.rt, KSVC_DLOG_RETRY_MS * 1000u), 0);
    settle();
    s = dls();
    CU_ASSERT_EQUAL(s.state, KSVC_DLOG_ON);
    CU_ASSERT_EQUAL(s.reason[0], '\0');
    CU_ASSERT_EQUAL(s.dropped, 0);
    check_disk();
}

/* Scan after a gap: the marker is not crossed; the run after it holds,
 * per fragment, every record from `from[f]` on, equal to the fragment's. */
struct gcmp {
    uint64_t next[2];
    uint64_t got, bad, gaps;
};

static int gcompare(void *arg, const struct kern_dlog_entry *e)
{
    struct gcmp *c = arg;
    const uint8_t *p;
    size_t len;
    if (e->kind == KERN_DLOG_GAP) {
        c->gaps++;
        return 0;
    }
    if (e->kind != KERN_DLOG_REC || e->table != W.t1 || e->frag > 1 ||
        e->lsn != c->next[e->frag] ||
        kern_log_get(kern_frag_log(frag_of(e->table, e->frag)), e->lsn, &p, &len) != 0 ||
        len != e->len || memcmp(p, e->rec, len) != 0)
        c->bad++;
    else
        c->next[e->frag]++;
    c->got++;
    return 0;
}

/* A disk that stays full: once the bound is passed the buffer is dropped
 * and the log has a gap (no more memory held); transactions still commit;
 * retries while the disk is full leave it in the gap. Once the disk takes
 * writes, the next retry writes a gap marker at the start of a new segment
 * and the log is written again (no checkpoints here: ON at once); a scan
 * from before the gap stops at the marker, the run after it holds every
 * record published since the resume. */
static void test_gap_past_the_bound(void)
{
    settle();
    nines_fault_arm("kern.dlog.enospc", -1);
    put_rows(0, 10000, 10010);
    until_state(KSVC_DLOG_STOPPED);
    for (int64_t k = 20000; dls().state == KSVC_DLOG_STOPPED && k < 200000; k += 1000)
        put_rows(1, k, k + 1000);
    struct ksvc_dlog_status s = dls();
    CU_ASSERT_EQUAL(s.state, KSVC_DLOG_GAP);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.reason, "gap after position"));
    CU_ASSERT(s.dropped > 0);
    CU_ASSERT_EQUAL(s.gaps, 1);
    CU_ASSERT(s.dropped_bytes > 0);
    uint64_t before = s.durable;
    for (int i = 0; i < 10; i++)
        rt_step(W.rt, 10);
    CU_ASSERT_EQUAL(rt_fault_advance_clock(W.rt, KSVC_DLOG_RETRY_MS * 1000u), 0);
    for (int i = 0; i < 20; i++)
        rt_step(W.rt, 10);
    s = dls();
    CU_ASSERT_EQUAL(s.state, KSVC_DLOG_GAP); /* the disk still full: the retry failed */
    CU_ASSERT_EQUAL(s.resumes, 0);
    CU_ASSERT_EQUAL(s.durable, before);
    nines_fault_arm("kern.dlog.enospc", 0);
    uint64_t dropped = s.dropped;
    put_rows(0, 300000, 300010);
    CU_ASSERT_EQUAL(dls().dropped, dropped + 11); /* 10 rows and the commit */
    CU_ASSERT(dls().buffered <= KERN_DLOG_ENT_HDR); /* no record held: at most the marker */
    uint64_t from[2];
    for (uint32_t f = 0; f < 2; f++)
        from[f] = kern_log_next_lsn(kern_frag_log(frag_of(W.t1, f)));
    CU_ASSERT_EQUAL(rt_fault_advance_clock(W.rt, KSVC_DLOG_RETRY_MS * 1000u), 0);
    until_state(KSVC_DLOG_ON);
    s = dls();
    CU_ASSERT_EQUAL(s.resumes, 1);
    CU_ASSERT_EQUAL(s.gap_pos, before);
    CU_ASSERT_EQUAL(s.durable, before + KERN_DLOG_ENT_HDR);
    CU_ASSERT(s.resume_wall_us >= s.gap_wall_us);
    CU_ASSERT_EQUAL(s.reason[0], '\0');
    put_rows(0, 400000, 400100);
    put_rows(1, 400000, 400100);
    settle();
    s = dls();
    struct kern_dlog_opts o = {.node = 1, .cluster = CLUSTER};
    struct kern_dlog_scan_info info;
    struct gcmp c = {.next = {1, 1}};
    CU_ASSERT_EQUAL(kern_dlog_scan(W.dir, &o, 0, gcompare, &c, &info), 0);
    CU_ASSERT_EQUAL(info.gap, 1); /* never across the gap */
    CU_ASSERT_EQUAL(info.gap_pos, s.gap_pos);
    CU_ASSERT_EQUAL(c.gaps, 0);
    CU_ASSERT_EQUAL(c.bad, 0);
    memset(&c, 0, sizeof c);
    c.next[0] = from[0];
    c.next[1] = from[1];
    CU_ASSERT_EQUAL(kern_dlog_scan(W.dir, &o, s.gap_pos + KERN_DLOG_ENT_HDR, gcompare, &c, &info),
                    0);
    CU_ASSERT_EQUAL(c.bad, 0);
    CU_ASSERT_EQUAL(info.gap, 0);
    CU_ASSERT_EQUAL(info.end, s.durable);
    for (uint32_t f = 0; f < 2; f++)
        CU_ASSERT_EQUAL(c.next[f], kern_log_next_lsn(kern_frag_log(frag_of(W.t1, f))));
    CU_ASSERT(c.got >= 200);
    char seg[200];
    snprintf(seg, sizeof seg, "%s/log-%016llx.ndl", W.dir, (unsigned long long)s.gap_pos);
    FILE *fp = fopen(seg, "rb");
    CU_ASSERT_PTR_NOT_NULL(fp); /* the marker opens a segment */
    if (fp)
        fclose(fp);
}
#endif

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"records_reach_disk", test_records_reach_disk},
        {"one_flush_per_turn", test_one_flush_per_turn},
#ifdef NINES_FAULTS
        {"enospc_stops_and_resumes", test_enospc_stops_and_resumes},
        {"gap_past_the_bound", test_gap_past_the_bound},
#endif
        {NULL, NULL},
    };
    cu_add_suite("ksvc_dlog", suite_init, suite_fini, cases);
}
