/* Checkpoints of the kernel service (kernel/svc/README.md "Checkpoints") on
 * one node with a disk log (tests/unit/ksvc_rig.h). A checkpoint taken on
 * demand while transactions change the replicas between its slices — one
 * transaction open across it — loads (kern_ckpt_load) into a replica that,
 * after redo of the disk log from the manifest's position, equals the
 * source record by record with state ids; the manifest names the file it
 * lists (size, CRC, creation time); a flipped byte is caught by the CRC
 * (checkpoint and manifest). Disk log segments are removed only once every
 * replica's checkpoint covers them: a replica without a checkpoint pins
 * everything, one whose newest checkpoint is old pins from there. A table
 * dropped in the middle of its checkpoint leaves no file, no temp file, no
 * manifest entry. Scheduled rounds run without a request. */
#include "ksvc_rig.h"

#include "../../kernel/kern_ckpt.h"

#include <sys/stat.h>
#include <unistd.h>

#define SEG_BYTES (64u << 10) /* small disk log segments: removals show */

static const Nines__CkptConf *conf(int i) { return (const void *)W.got[i]->body; }

static struct ksvc_ckpt_status cks(void)
{
    struct ksvc_ckpt_status s;
    ksvc_ckpt_status(W.k, &s);
    return s;
}

static void ask(void)
{
    struct rt_msg *m = rt_msg_new(W.rt, NINES__MSG_TYPE__CKPT_REQ);
    CU_ASSERT_PTR_NOT_NULL_FATAL(RT_BODY(m, Nines__CkptReq, nines__ckpt_req__init));
    CU_ASSERT_EQUAL(rt_send(W.rt, 0, RT_SVC_KERN, m), 0);
}

/* Turn the loop until n answers arrived, calling `each` (may be NULL)
 * between turns; the turns taken. */
static int until_answers(int n, void (*each)(int turn))
{
    int t = 0;
    for (; W.ngot < n && t < MAX_TURNS; t++) {
        rt_step(W.rt, 1);
        if (each)
            each(t);
    }
    CU_ASSERT_EQUAL_FATAL(W.ngot, n);
    return t;
}

/* Ask for a round and wait for its answer (index of the answer). */
static int round_now(void)
{
    int i = W.ngot;
    ask();
    until_answers(i + 1, NULL);
    return i;
}

/* Turn the loop until the checkpointer is idle (a removal may follow an
 * answer) and the disk log has everything. */
static void quiesce(void)
{
    int t = 0;
    for (; t < MAX_TURNS && cks().state != KSVC_CKPT_IDLE; t++)
        rt_step(W.rt, 1);
    CU_ASSERT_FATAL(t < MAX_TURNS);
    for (int i = 0; i < 20; i++)
        rt_step(W.rt, 1); /* a purge or a removal in flight */
    settle();
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void ck_path(uint32_t table, uint32_t frag, const char *suffix, char *out, size_t n)
{
    char name[64];
    ksvc_ckpt_file_name(table, frag, name, sizeof name);
    snprintf(out, n, "%s/%s%s", W.ckdir, name, suffix);
}

/* The manifest's entry for (table, frag); false when there is none. */
static bool mf_entry(uint32_t table, uint32_t frag, struct ksvc_ckpt_entry *out)
{
    struct ksvc_ckpt_manifest m;
    CU_ASSERT_EQUAL_FATAL(ksvc_ckpt_manifest_read(W.ckdir, 1, CLUSTER, &m), 0);
    bool found = false;
    for (size_t i = 0; i < m.n; i++)
        if (m.e[i].table == table && m.e[i].frag == frag) {
            *out = m.e[i];
            found = true;
        }
    ksvc_ckpt_manifest_free(&m);
    return found;
}

/* An empty hot standby with the rig tables' layout. */
static struct kern_frag *standby_of(uint32_t table, uint32_t frag)
{
    static const struct kern_col cols[3] = {
        {KERN_T_INT64, 0, 0}, {KERN_T_INT64, 0, 0}, {KERN_T_VSTR, 1, 32}};
    static const uint16_t pk[1] = {0};
    struct kern_frag_def d = {table, frag, cols, 3, pk, 1};
    struct kern_frag *f = NULL;
    CU_ASSERT_EQUAL_FATAL(kern_frag_create(&d, KERN_FRAG_HOT_STANDBY, &f), 0);
    return f;
}

/* Same keys and record bytes (state ids included) in the same order. */
static bool same_rows(const struct kern_frag *a, const struct kern_frag *b)
{
    struct kern_bt_cursor ca, cb;
    kern_bt_cursor_init(&ca, kern_frag_tree(a));
    kern_bt_cursor_init(&cb, kern_frag_tree(b));
    for (uint64_t n = 0;; n++) {
        int ra = kern_bt_next(&ca), rb = kern_bt_next(&cb);
        if (ra != rb) {
            fprintf(stderr, "same_rows: row %llu on one side only\n", (unsigned long long)n);
            return false;
        }
        if (ra == NINES_ENOTFOUND)
            return true;
        size_t la = kern_rec_bytes(ca.rec), lb = kern_rec_bytes(cb.rec);
        if (kern_key_cmp(ca.key, ca.klen, cb.key, cb.klen) != 0 || la != lb ||
            memcmp(ca.rec, cb.rec, la) != 0) {
            fprintf(stderr, "same_rows: row %llu differs (sid %llu vs %llu)\n",
                    (unsigned long long)n, (unsigned long long)ca.rec->sid,
                    (unsigned long long)cb.rec->sid);
            return false;
        }
    }
}

/* Recovery from the node's disk (ksvc_recover_replica: the manifest's
 * newest checkpoint of (table, frag), checked against its entry, loaded,
 * then the disk log redone from the entry's position): the result equals
 * the replica now. */
static void recover_check(uint32_t table, uint32_t frag)
{
    struct ksvc_ckpt_entry e;
    CU_ASSERT_FATAL(mf_entry(table, frag, &e));
    CU_ASSERT(e.dlog_pos >= dls().first); /* what recovery needs is still on disk */
    struct kern_frag *s = standby_of(table, frag);
    struct kern_dlog_opts o = {.node = 1, .cluster = CLUSTER};
    struct ksvc_recover_info ri;
    int rc = ksvc_recover_replica(W.ckdir, W.dir, &o, &e, s, &ri);
    if (rc < 0)
        fprintf(stderr, "recover %u.%u: %s\n", table, frag, nines_errdetail());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(ri.redo_start, e.redo_start_lsn);
    CU_ASSERT_EQUAL(ri.records_loaded, e.records);
    const struct kern_frag *src = frag_of(table, frag);
    CU_ASSERT_EQUAL(kern_log_next_lsn(kern_frag_log(s)), kern_log_next_lsn(kern_frag_log(src)));
    CU_ASSERT_EQUAL(ri.last_lsn + 1, kern_log_next_lsn(kern_frag_log(src)));
    CU_ASSERT_EQUAL(kern_frag_next_sid(s), kern_frag_next_sid(src));
    CU_ASSERT(same_rows(src, s));
    kern_frag_destroy(s);
}

/* A damaged checkpoint file: recovery refuses it (never loads it in part;
 * the replica is rebuilt from its peer instead) and leaves the target
 * empty; a file the manifest does not name is refused too. */
static void recover_refuses(uint32_t table, uint32_t frag)
{
    struct ksvc_ckpt_entry e;
    CU_ASSERT_FATAL(mf_entry(table, frag, &e));
    char path[256];
    ck_path(table, frag, "", path, sizeof path);
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(kern_ckpt_file_read(path, &buf, &len), 0);
    struct kern_dlog_opts o = {.node = 1, .cluster = CLUSTER};
    struct ksvc_recover_info ri;
    /* a flipped byte in the middle */
    buf[len / 2] ^= 0x20;
    FILE *fp = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    CU_ASSERT_EQUAL(fwrite(buf, 1, len, fp), len);
    fclose(fp);
    struct kern_frag *s = standby_of(table, frag);
    CU_ASSERT_EQUAL(ksvc_recover_replica(W.ckdir, W.dir, &o, &e, s, &ri), NINES_ECORRUPT);
    CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(s)), 0);
    kern_frag_destroy(s);
    /* cut short */
    buf[len / 2] ^= 0x20;
    fp = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    CU_ASSERT_EQUAL(fwrite(buf, 1, len - 100, fp), len - 100);
    fclose(fp);
    s = standby_of(table, frag);
    CU_ASSERT(ksvc_recover_replica(W.ckdir, W.dir, &o, &e, s, &ri) < 0);
    CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(s)), 0);
    kern_frag_destroy(s);
    /* restored: recovers again */
    fp = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    CU_ASSERT_EQUAL(fwrite(buf, 1, len, fp), len);
    fclose(fp);
    free(buf);
    recover_check(table, frag);
}

/* ---- manifest format ---------------------------------------------------- */

static void test_manifest_format(void)
{
    struct ksvc_ckpt_entry e[3] = {
        {1, 0, 5, 9, 1000, 111, 500, 7, 0xabcdef01u, KERN_FRAG_PRIMARY},
        {1, 1, 1, 1, 0, 112, 96, 0, 0x12345678u, KERN_FRAG_HOT_STANDBY},
        {4, 0, 70, 80, 4096, 113, 1 << 20, 900, 0x0badf00du, KERN_FRAG_PRIMARY},
    };
    struct ksvc_ckpt_manifest m = {.node = 3, .cluster = 77, .seq = 12, .written_us = 99,
                                   .dlog_keep = 1000, .n = 3, .e = e};
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(ksvc_ckpt_manifest_encode(&m, &buf, &len), 0);
    CU_ASSERT_EQUAL(len, KSVC_CKPT_MF_HDR + 3 * KSVC_CKPT_MF_ENT);
    struct ksvc_ckpt_manifest d;
    CU_ASSERT_EQUAL_FATAL(ksvc_ckpt_manifest_decode(buf, len, 3, 77, &d), 0);
    CU_ASSERT_EQUAL(d.n, 3);
    CU_ASSERT_EQUAL(d.seq, 12);
    CU_ASSERT_EQUAL(d.dlog_keep, 1000);
    for (int i = 0; i < 3; i++) { /* field by field: padding bytes are not part of it */
        const struct ksvc_ckpt_entry *x = &d.e[i], *y = &e[i];
        CU_ASSERT(x->table == y->table && x->frag == y->frag &&
                  x->redo_start_lsn == y->redo_start_lsn && x->begin_lsn == y->begin_lsn &&
                  x->dlog_pos == y->dlog_pos && x->created_us == y->created_us &&
                  x->bytes == y->bytes && x->records == y->records &&
                  x->file_crc == y->file_crc && x->role == y->role);
    }
    ksvc_ckpt_manifest_free(&d);
    /* every flipped byte is refused, never decoded into something else */
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x20;
        int rc = ksvc_ckpt_manifest_decode(buf, len, 3, 77, &d);
        CU_ASSERT(rc == NINES_ECORRUPT || rc == NINES_EVERSION || rc == NINES_ETRUNC);
        if (rc == 0)
            ksvc_ckpt_manifest_free(&d);
        if (i >= 24 && i < 60) /* cluster, seq, written, keep: only the CRC can tell */
            CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "CRC-32C"));
        if (i >= KSVC_CKPT_MF_HDR) /* an entry byte: the CRC */
            CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "CRC-32C"));
        buf[i] ^= 0x20;
    }
    CU_ASSERT_EQUAL(ksvc_ckpt_manifest_decode(buf, len - 1, 3, 77, &d), NINES_ETRUNC);
    CU_ASSERT_EQUAL(ksvc_ckpt_manifest_decode(buf, 10, 3, 77, &d), NINES_ETRUNC);
    CU_ASSERT_EQUAL(ksvc_ckpt_manifest_decode(buf, len, 4, 77, &d), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "node 3"));
    CU_ASSERT_EQUAL(ksvc_ckpt_manifest_decode(buf, len, 3, 78, &d), NINES_EINVAL);
    free(buf);
    /* the writer refuses entries out of order or inconsistent */
    struct ksvc_ckpt_entry swap[2] = {e[1], e[0]};
    m.e = swap;
    m.n = 2;
    CU_ASSERT_EQUAL(ksvc_ckpt_manifest_encode(&m, &buf, &len), NINES_EINVAL);
    struct ksvc_ckpt_entry bad = e[0];
    bad.redo_start_lsn = bad.begin_lsn + 1;
    m.e = &bad;
    m.n = 1;
    CU_ASSERT_EQUAL(ksvc_ckpt_manifest_encode(&m, &buf, &len), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "redo start"));
    m.n = 0; /* an empty manifest is valid */
    CU_ASSERT_EQUAL_FATAL(ksvc_ckpt_manifest_encode(&m, &buf, &len), 0);
    CU_ASSERT_EQUAL(ksvc_ckpt_manifest_decode(buf, len, 3, 77, &d), 0);
    CU_ASSERT_EQUAL(d.n, 0);
    ksvc_ckpt_manifest_free(&d);
    free(buf);
}

/* ---- a checkpoint on demand under writes -------------------------------- */

static uint32_t T_c1;
static uint64_t X_txn; /* open on fragment 0 when the request comes, committed soon */
static uint64_t churn_seed = 1;

static uint64_t lcg(void)
{
    churn_seed = churn_seed * 6364136223846793005ull + 1442695040888963407ull;
    return churn_seed >> 33;
}

/* A committed transaction of updates, deletes and inserts on (table, frag). */
static void churn(uint32_t table, uint32_t frag)
{
    struct kern_frag *f = frag_of(table, frag);
    uint64_t txn = ++W.txn;
    bool wrote = false;
    for (int i = 0; i < 12; i++) {
        int64_t k = (int64_t)(lcg() % 40000);
        int op = (int)(lcg() % 4);
        if (op == 3)
            k += 1000000; /* new keys */
        struct kern_val row[3] = {kern_v_i64(k), kern_v_i64((int64_t)lcg()),
                                  kern_v_bytes(KERN_T_VSTR, "churned", 7)};
        uint8_t key[KERN_KEY_MAX];
        size_t klen;
        struct kern_rec *rec;
        CU_ASSERT_EQUAL_FATAL(kern_frag_row(f, row, key, KERN_KEY_MAX, &klen, &rec), 0);
        int rc;
        switch (op) {
        case 0:
        case 1:
            rc = kern_frag_update(f, txn, key, klen, rec, NULL);
            break;
        case 2:
            rc = kern_frag_delete(f, txn, key, klen, NULL);
            free(rec);
            rec = NULL;
            break;
        default:
            rc = kern_frag_insert(f, txn, key, klen, rec, NULL);
            break;
        }
        if (rc < 0)
            free(rec); /* absent or present already: nothing changed */
        CU_ASSERT(rc == 0 || rc == NINES_ENOTFOUND || rc == NINES_EEXIST);
        wrote |= rc == 0;
    }
    if (wrote)
        CU_ASSERT_EQUAL(kern_frag_commit(f, txn, NULL), 0);
}

static void churn_turn(int turn)
{
    churn(T_c1, 0);
    churn(T_c1, 1);
    /* the transaction the first replica's begin waits for (its first check
     * is in turn 1: the round starts in turn 0, its timer fires in turn 1) */
    if (turn == 1 && X_txn) {
        CU_ASSERT_EQUAL(kern_frag_commit(frag_of(T_c1, 0), X_txn, NULL), 0);
        X_txn = 0;
    }
}

static void test_fuzzy_on_demand(void)
{
    settle();
    T_c1 = table_new("c1", 2);
    CU_ASSERT_FATAL(T_c1 != 0);
    for (int64_t k = 0; k < 40000; k += 1000) {
        put_rows_t(T_c1, 0, k, k + 1000);
        put_rows_t(T_c1, 1, k, k + 1000);
    }
    X_txn = ++W.txn;
    put_rows_open(T_c1, 0, X_txn, 2000000, 2000050);
    uint64_t y = ++W.txn; /* open on fragment 1 through the whole checkpoint */
    put_rows_open(T_c1, 1, y, 3000000, 3000050);
    ask();
    int turns = until_answers(1, churn_turn);
    CU_ASSERT(turns > 4); /* a slice per turn, writes between them */
    const Nines__CkptConf *a = conf(0);
    CU_ASSERT_EQUAL(a->error, 0);
    CU_ASSERT_EQUAL(a->node, 1);
    CU_ASSERT_EQUAL(a->round, 1);
    CU_ASSERT_EQUAL(a->replicas, 2);
    CU_ASSERT_EQUAL(a->abandoned + a->skipped + a->failed, 0);
    CU_ASSERT(a->records >= 80000);
    CU_ASSERT(a->bytes > a->records * 20);
    CU_ASSERT_EQUAL(kern_frag_commit(frag_of(T_c1, 1), y, NULL), 0);
    for (int i = 0; i < 20; i++)
        churn_turn(100);
    quiesce();
    struct ksvc_ckpt_status st = cks();
    CU_ASSERT_EQUAL(st.rounds, 1);
    CU_ASSERT_EQUAL(st.done, 2);
    CU_ASSERT_EQUAL(st.missing, 0);
    CU_ASSERT_EQUAL(st.error[0], '\0');
    /* fragment 1's redo starts at y's first record, before the checkpoint began */
    struct ksvc_ckpt_entry e0, e1;
    CU_ASSERT_FATAL(mf_entry(T_c1, 0, &e0) && mf_entry(T_c1, 1, &e1));
    CU_ASSERT(e1.redo_start_lsn < e1.begin_lsn);
    /* fragment 0's begin waited for X, open at the round's start, to end:
     * its redo starts where it began, at the position sampled then */
    CU_ASSERT_EQUAL(e0.redo_start_lsn, e0.begin_lsn);
    CU_ASSERT_EQUAL(e0.role, KERN_FRAG_PRIMARY);
    char p[256];
    ck_path(T_c1, 0, ".tmp", p, sizeof p);
    CU_ASSERT_FALSE(exists(p));
    recover_check(T_c1, 0);
    recover_check(T_c1, 1);
    recover_refuses(T_c1, 1);
}

/* A flipped byte of a checkpoint file: the load refuses it (CRC), the
 * replica it was loaded into stays empty. */
static void test_corrupt_checkpoint(void)
{
    char path[256];
    ck_path(T_c1, 0, "", path, sizeof path);
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(kern_ckpt_file_read(path, &buf, &len), 0);
    size_t at[3] = {KERN_CKPT_HDR + 100, len / 2, len - KERN_CKPT_TRAILER + 10};
    for (int i = 0; i < 3; i++) {
        struct kern_frag *s = standby_of(T_c1, 0);
        buf[at[i]] ^= 0x01;
        struct kern_ckpt_info info;
        CU_ASSERT_EQUAL(kern_ckpt_load(s, buf, len, &info), NINES_ECORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "CRC-32C"));
        CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(s)), 0);
        buf[at[i]] ^= 0x01;
        kern_frag_destroy(s);
    }
    free(buf);
}

/* ---- a table dropped mid-checkpoint ------------------------------------- */

static void test_drop_mid_checkpoint(void)
{
    quiesce();
    uint32_t t = table_new("d1", 1);
    CU_ASSERT_FATAL(t != 0);
    for (int64_t k = 0; k < 240000; k += 4000)
        put_rows_t(t, 0, k, k + 4000);
    int first = round_now(); /* a complete checkpoint of it first: a final file exists */
    CU_ASSERT_EQUAL(conf(first)->error, 0);
    quiesce();
    char fin[256], tmp[256];
    ck_path(t, 0, "", fin, sizeof fin);
    ck_path(t, 0, ".tmp", tmp, sizeof tmp);
    CU_ASSERT_FATAL(exists(fin));
    struct ksvc_ckpt_entry e;
    CU_ASSERT_FATAL(mf_entry(t, 0, &e));
    uint64_t abandoned = cks().abandoned;
    ask();
    int turns = 0;
    while (!exists(tmp) && W.ngot == first + 1 && turns++ < MAX_TURNS)
        rt_step(W.rt, 1); /* until its scan wrote the first chunk */
    CU_ASSERT_FATAL(exists(tmp));
    CU_ASSERT_EQUAL(W.ngot, first + 1); /* still running */
    CU_ASSERT_EQUAL(dict_drop_table(&W.d, "d1"), 0);
    ksvc_dict_changed(W.k, &W.d, true);
    until_answers(first + 2, NULL);
    const Nines__CkptConf *a = conf(first + 1);
    CU_ASSERT_EQUAL(a->error, 0);
    CU_ASSERT_EQUAL(a->abandoned, 1);
    quiesce();
    CU_ASSERT_EQUAL(cks().abandoned, abandoned + 1);
    CU_ASSERT_FALSE(exists(tmp));
    CU_ASSERT_FALSE(exists(fin));
    CU_ASSERT_FALSE(mf_entry(t, 0, &e));
    recover_check(T_c1, 0); /* the other table's entries are untouched */
}

static int suite_init(void) { return rig_init("ksvc_ckpt", 0, 0, true, 0); }
static int suite_fini(void) { return rig_fini(); }

/* ---- removal of disk log segments --------------------------------------- */

static uint32_t T_q, T_n;

/* Records of q in many flushes (a segment is started by a flush), a few of n. */
static void fill_q(int64_t from)
{
    for (int64_t k = from; k < from + 20000; k += 1000) {
        put_rows_t(T_q, 0, k, k + 1000);
        settle();
    }
    put_rows_t(T_n, 0, from, from + 10);
    settle();
}

#ifdef NINES_FAULTS
static void test_removal_rule(void)
{
    settle();
    T_q = table_new("q", 1); /* q sorts first in a round: the injected failure hits it */
    T_n = table_new("n", 1);
    CU_ASSERT_FATAL(T_q && T_n && T_q < T_n);
    fill_q(0);
    uint64_t segs = dls().segments;
    CU_ASSERT(segs > 8);
    /* q's checkpoint fails: without one it pins every segment, n's
     * complete checkpoint notwithstanding */
    nines_fault_arm("ksvc.ckpt.write", 1);
    int i = round_now();
    CU_ASSERT_EQUAL(conf(i)->failed, 1);
    CU_ASSERT_EQUAL(conf(i)->replicas, 1);
    CU_ASSERT_EQUAL(conf(i)->error, NINES_EFULL);
    quiesce();
    struct ksvc_ckpt_entry e;
    CU_ASSERT_FALSE(mf_entry(T_q, 0, &e));
    CU_ASSERT_TRUE(mf_entry(T_n, 0, &e));
    CU_ASSERT_EQUAL(cks().missing, 1);
    CU_ASSERT_EQUAL(dls().segs_removed, 0);
    CU_ASSERT_EQUAL(dls().first, 0);
    CU_ASSERT(dls().segments >= segs);
    /* both complete: everything before the round goes */
    i = round_now();
    CU_ASSERT_EQUAL(conf(i)->error, 0);
    CU_ASSERT_EQUAL(conf(i)->replicas, 2);
    quiesce();
    struct ksvc_dlog_status d = dls();
    CU_ASSERT(d.segs_removed >= segs - 2);
    CU_ASSERT(d.segments <= 3);
    CU_ASSERT_EQUAL(cks().missing, 0);
    recover_check(T_q, 0);
    recover_check(T_n, 0);
    struct ksvc_ckpt_entry q2;
    CU_ASSERT_FATAL(mf_entry(T_q, 0, &q2));
    /* more records of q; its next checkpoint fails: its old one pins from
     * its position, n's new one does not free those segments */
    fill_q(100000);
    uint64_t removed = dls().segs_removed;
    nines_fault_arm("ksvc.ckpt.write", 1);
    i = round_now();
    CU_ASSERT_EQUAL(conf(i)->failed, 1);
    quiesce();
    CU_ASSERT_EQUAL(dls().segs_removed, removed);
    CU_ASSERT(dls().first <= q2.dlog_pos);
    CU_ASSERT(dls().segments > 8);
    CU_ASSERT(mf_entry(T_q, 0, &e) && e.created_us == q2.created_us); /* the old one */
    recover_check(T_q, 0); /* from the old checkpoint and the log kept for it */
    /* and once it has a new one, they go */
    i = round_now();
    CU_ASSERT_EQUAL(conf(i)->error, 0);
    quiesce();
    CU_ASSERT(dls().segs_removed > removed + 8);
    CU_ASSERT(dls().first > q2.dlog_pos);
    recover_check(T_q, 0);
    recover_check(T_n, 0);
    struct ksvc_ckpt_status st = cks();
    CU_ASSERT_EQUAL(st.failed, 2);
    CU_ASSERT_EQUAL(st.rounds, 4);
    CU_ASSERT(st.trim_pos > q2.dlog_pos);
    CU_ASSERT_FALSE(st.removal_held);
}

/* A restarted node: until a node set is installed (a whole-cluster
 * restart may still ask it to recover from this disk) no segment is
 * removed. Then q and n are lost here (this process never had their data;
 * no checkpoint of them, no pin; rebuilt from their peers): their manifest
 * entries and files stay, and the new process's checkpoints free the
 * earlier process's segments like any others. */
static void test_restart_keeps_log(void)
{
    quiesce();
    struct ksvc_ckpt_entry q, n, e;
    CU_ASSERT_FATAL(mf_entry(T_q, 0, &q) && mf_entry(T_n, 0, &n));
    uint64_t first = dls().first;
    rig_close();
    W.no_nodeset = true; /* started, no node set yet: the old records are held */
    CU_ASSERT_EQUAL_FATAL(rig_open(0, SEG_BYTES, true, 0), 0);
    W.no_nodeset = false;
    settle();
    CU_ASSERT(cks().removal_held);
    struct rt_nodeset ns = {.epoch = 1, .members = 1, .current = 1, .coordinator = 1,
                            .member = true, .serving = true};
    rt_install_nodeset(W.rt, &ns); /* a set, no recovery asked: this process holds its own */
    for (int i = 0; i < 4; i++)
        rt_step(W.rt, 0);
    CU_ASSERT_FALSE(cks().removal_held);
    uint32_t t = table_new("r", 1);
    CU_ASSERT_FATAL(t != 0);
    for (int64_t k = 0; k < 20000; k += 1000) {
        put_rows_t(t, 0, k, k + 1000);
        settle();
    }
    int i = round_now();
    CU_ASSERT_EQUAL(conf(i)->error, 0);
    CU_ASSERT_EQUAL(conf(i)->replicas, 1); /* q and n are lost here */
    quiesce();
    /* q and n are lost here (rebuilt from their peers): the earlier
     * process's records are no one's any more; r's checkpoint frees what
     * lies before it (the removal runs with the disk log's next flush on
     * the I/O thread: turns until it did, bounded) */
    for (int t2 = 0; t2 < MAX_TURNS && dls().segs_removed == 0; t2++)
        rt_step(W.rt, 1);
    CU_ASSERT(dls().segs_removed > 0);
    CU_ASSERT(dls().first > first);
    CU_ASSERT(mf_entry(T_q, 0, &e) && e.created_us == q.created_us && e.file_crc == q.file_crc);
    CU_ASSERT(mf_entry(T_n, 0, &e) && e.created_us == n.created_us);
    CU_ASSERT(mf_entry(t, 0, &e) && e.dlog_pos > q.dlog_pos);
    char p[256];
    ck_path(T_q, 0, "", p, sizeof p);
    CU_ASSERT(exists(p));
    recover_check(t, 0);
}
#endif

static int trim_init(void) { return rig_init("ksvc_ckpt_trim", 0, SEG_BYTES, true, 0); }

/* ---- resume after a gap (README "Gap and resume") ------------------------ */

#define GAP_BUF (256u << 10) /* the gap suite's buffer bound */

#ifdef NINES_FAULTS
struct gapscan {
    uint64_t recs, gaps;
};

static int gapscan_cb(void *arg, const struct kern_dlog_entry *e)
{
    struct gapscan *g = arg;
    g->recs += e->kind == KERN_DLOG_REC;
    g->gaps += e->kind == KERN_DLOG_GAP;
    return 0;
}

/* Checkpoints of both replicas, then the disk stays full past the buffer
 * bound: GAP, and a checkpoint asked for is refused. The disk comes back:
 * the log resumes by itself after a gap marker at the start of a new
 * segment (RESUMED: both replicas unrecoverable, the old checkpoints'
 * positions lead a scan to the gap and no further), a round runs without
 * a request, then the log is ON; the segments before the gap are removed;
 * each replica recovers from its new checkpoint plus the log after the
 * gap; a second gap and resume work the same. */
static void test_gap_resume(void)
{
    settle();
    uint32_t t = table_new("g1", 2);
    CU_ASSERT_FATAL(t != 0);
    for (int64_t k = 0; k < 4000; k += 500) {
        put_rows_t(t, 0, k, k + 500);
        put_rows_t(t, 1, k, k + 500);
        settle();
    }
    int i = round_now();
    CU_ASSERT_EQUAL(conf(i)->error, 0);
    quiesce();
    recover_check(t, 0);
    struct ksvc_ckpt_entry old0;
    CU_ASSERT_FATAL(mf_entry(t, 0, &old0));
    struct kern_dlog_opts o = {.node = 1, .cluster = CLUSTER};
    for (int g = 1; g <= 2; g++) {
        uint64_t rounds = cks().rounds, removed = dls().segs_removed;
        nines_fault_arm("kern.dlog.enospc", -1);
        put_rows_t(t, 0, 10000000 * g, 10000000 * g + 10);
        until_state(KSVC_DLOG_STOPPED);
        for (int64_t k = 20000; dls().state == KSVC_DLOG_STOPPED && k < 400000; k += 1000)
            put_rows_t(t, 1, 10000000 * g + k, 10000000 * g + k + 1000);
        struct ksvc_dlog_status s = dls();
        CU_ASSERT_EQUAL_FATAL(s.state, KSVC_DLOG_GAP);
        CU_ASSERT_EQUAL(s.gaps, (uint64_t)g);
        CU_ASSERT(s.gap_wall_us > 0 && s.dropped_bytes > 0);
        i = round_now(); /* refused while in the gap */
        CU_ASSERT_EQUAL(conf(i)->error, NINES_ESTATE);
        CU_ASSERT_PTR_NOT_NULL(strstr(conf(i)->detail, "gap"));
        /* a retry while the disk is still full: still a gap */
        CU_ASSERT_EQUAL(rt_fault_advance_clock(W.rt, KSVC_DLOG_RETRY_MS * 1000u), 0);
        for (int n = 0; n < 50; n++)
            rt_step(W.rt, 1);
        CU_ASSERT_EQUAL(dls().state, KSVC_DLOG_GAP);
        CU_ASSERT_EQUAL(dls().resumes, (uint64_t)g - 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(dls().reason, "retrying"));
        put_rows_t(t, 0, 10000000 * g + 100, 10000000 * g + 110); /* dropped */
        /* the disk takes writes again: the next retry resumes */
        nines_fault_arm("kern.dlog.enospc", 0);
        CU_ASSERT_EQUAL(rt_fault_advance_clock(W.rt, KSVC_DLOG_RETRY_MS * 1000u), 0);
        until_state(KSVC_DLOG_RESUMED);
        s = dls();
        CU_ASSERT_EQUAL(s.resumes, (uint64_t)g);
        CU_ASSERT_EQUAL(s.unrecoverable, 2);
        CU_ASSERT(s.resume_wall_us >= s.gap_wall_us);
        CU_ASSERT_PTR_NOT_NULL(strstr(s.reason, "resumed at position"));
        CU_ASSERT_EQUAL(cks().missing, 2); /* the old checkpoints do not count */
        uint64_t gap = s.gap_pos;
        char seg[200];
        snprintf(seg, sizeof seg, "%s/log-%016llx.ndl", W.dir, (unsigned long long)gap);
        CU_ASSERT(exists(seg)); /* the marker opens a new segment */
        if (g == 1) { /* the old checkpoint's position: a scan stops at the gap */
            struct gapscan gs = {0, 0};
            struct kern_dlog_scan_info si;
            CU_ASSERT_EQUAL(kern_dlog_scan(W.dir, &o, old0.dlog_pos, gapscan_cb, &gs, &si), 0);
            CU_ASSERT_EQUAL(si.gap, 1);
            CU_ASSERT_EQUAL(si.gap_pos, gap);
            CU_ASSERT_EQUAL(gs.gaps, 0);
        }
        /* writes go on; the round asked by the resume runs by itself */
        put_rows_t(t, 0, 10000000 * g + 1000, 10000000 * g + 1100);
        put_rows_t(t, 1, 10000000 * g + 1000, 10000000 * g + 1100);
        int turns = 0;
        while (dls().state != KSVC_DLOG_ON && turns++ < MAX_TURNS)
            rt_step(W.rt, 1);
        CU_ASSERT_EQUAL_FATAL(dls().state, KSVC_DLOG_ON);
        CU_ASSERT(cks().rounds > rounds);
        CU_ASSERT_EQUAL(cks().missing, 0);
        CU_ASSERT_EQUAL(dls().unrecoverable, 0);
        CU_ASSERT_EQUAL(dls().reason[0], '\0');
        put_rows_t(t, 0, 10000000 * g + 2000, 10000000 * g + 2100);
        put_rows_t(t, 1, 10000000 * g + 2000, 10000000 * g + 2100);
        quiesce();
        /* the segments wholly before the gap are gone */
        CU_ASSERT(dls().segs_removed > removed);
        CU_ASSERT(dls().first >= gap);
        struct ksvc_ckpt_entry e;
        for (uint32_t f = 0; f < 2; f++) {
            CU_ASSERT_FATAL(mf_entry(t, f, &e));
            CU_ASSERT(e.dlog_pos >= gap + KERN_DLOG_ENT_HDR);
            recover_check(t, f); /* checkpoint + the log after the gap = the replica */
        }
        /* everything on disk now: one run, from the marker on */
        struct gapscan gs = {0, 0};
        struct kern_dlog_scan_info si;
        CU_ASSERT_EQUAL(kern_dlog_scan(W.dir, &o, 0, gapscan_cb, &gs, &si), 0);
        CU_ASSERT_EQUAL(si.gap, 0);
        CU_ASSERT_EQUAL(gs.gaps, 1);
        CU_ASSERT(gs.recs >= 400);
    }
    CU_ASSERT_EQUAL(W.ngot, 3); /* 1 + 2 refused: the resumes' rounds were asked by nobody */
}
#endif

static int gap_init(void) { return rig_init("ksvc_ckpt_gap", GAP_BUF, SEG_BYTES, true, 0); }

/* ---- scheduled rounds --------------------------------------------------- */

#define SCHED_MS 2000u

#ifdef NINES_FAULTS
static void test_scheduled(void)
{
    settle();
    uint32_t t = table_new("s1", 2);
    CU_ASSERT_FATAL(t != 0);
    put_rows_t(t, 0, 0, 1000);
    put_rows_t(t, 1, 0, 1000);
    for (int i = 0; i < 100; i++)
        rt_step(W.rt, 0);
    CU_ASSERT_EQUAL(cks().rounds, 0); /* not due yet */
    for (uint64_t r = 1; r <= 2; r++) {
        CU_ASSERT_EQUAL(rt_fault_advance_clock(W.rt, SCHED_MS * 1000u), 0);
        int turns = 0;
        while (cks().rounds < r && turns++ < MAX_TURNS)
            rt_step(W.rt, 1);
        struct ksvc_ckpt_status st = cks();
        CU_ASSERT_EQUAL(st.rounds, r);
        CU_ASSERT_EQUAL(st.done, 2 * r);
        CU_ASSERT_EQUAL(st.interval_ms, SCHED_MS);
        CU_ASSERT(st.last_age_ms < SCHED_MS);
        put_rows_t(t, 0, (int64_t)r * 1000, (int64_t)r * 1000 + 100);
    }
    CU_ASSERT_EQUAL(W.ngot, 0); /* nobody asked */
    quiesce();
    recover_check(t, 0);
    recover_check(t, 1);
}
#endif

static int sched_init(void) { return rig_init("ksvc_ckpt_sched", 0, 0, true, SCHED_MS); }

/* ---- whole-cluster restart: every replica from this disk ---------------- */

static uint32_t R_a, R_b;

static void commit_gci(uint32_t table, uint32_t frag, uint64_t txn, uint64_t gci)
{
    CU_ASSERT_EQUAL_FATAL(kern_frag_commit_gci(frag_of(table, frag), txn, gci, NULL), 0);
}

static bool has_key(struct kern_frag *f, int64_t k)
{
    struct kern_val row[3] = {kern_v_i64(k), kern_v_i64(0), kern_v_null(KERN_T_VSTR)};
    uint8_t key[KERN_KEY_MAX];
    size_t klen;
    struct kern_rec *rec;
    CU_ASSERT_EQUAL_FATAL(kern_frag_row(f, row, key, KERN_KEY_MAX, &klen, &rec), 0);
    free(rec);
    const struct kern_rec *cur;
    return kern_frag_get(f, key, klen, &cur) == 0;
}

static void del_key(uint32_t table, uint32_t frag, uint64_t txn, int64_t k)
{
    struct kern_frag *f = frag_of(table, frag);
    struct kern_val row[3] = {kern_v_i64(k), kern_v_i64(0), kern_v_null(KERN_T_VSTR)};
    uint8_t key[KERN_KEY_MAX];
    size_t klen;
    struct kern_rec *rec;
    CU_ASSERT_EQUAL_FATAL(kern_frag_row(f, row, key, KERN_KEY_MAX, &klen, &rec), 0);
    free(rec);
    CU_ASSERT_EQUAL_FATAL(kern_frag_delete(f, txn, key, klen, NULL), 0);
}

/* The node's history: commits of epochs 5..9 around a checkpoint, a table
 * made after it (no checkpoint: recovered from the log alone), one
 * transaction without an outcome. The restart keeps epochs up to 6. */
static void restart_history(void)
{
    R_a = table_new("ra", 2);
    CU_ASSERT_FATAL(R_a != 0);
    uint64_t t1 = ++W.txn;
    put_rows_open(R_a, 0, t1, 0, 100);
    commit_gci(R_a, 0, t1, 5);
    uint64_t t1b = ++W.txn;
    put_rows_open(R_a, 1, t1b, 1000, 1050);
    commit_gci(R_a, 1, t1b, 5);
    int i = round_now();
    CU_ASSERT_EQUAL_FATAL(conf(i)->error, 0);
    quiesce();
    uint64_t t2 = ++W.txn; /* after the checkpoint, kept (6) */
    put_rows_open(R_a, 0, t2, 100, 110);
    commit_gci(R_a, 0, t2, 6);
    R_b = table_new("rb", 1); /* never checkpointed */
    CU_ASSERT_FATAL(R_b != 0);
    uint64_t t3 = ++W.txn;
    put_rows_open(R_b, 0, t3, 0, 10);
    commit_gci(R_b, 0, t3, 6);
    uint64_t t4 = ++W.txn; /* epoch 8: not kept */
    put_rows_open(R_a, 0, t4, 200, 210);
    commit_gci(R_a, 0, t4, 8);
    uint64_t t7 = ++W.txn; /* epoch 9, after t4 on its row 200: undone first */
    del_key(R_a, 0, t7, 200);
    commit_gci(R_a, 0, t7, 9);
    uint64_t t5 = ++W.txn; /* no outcome */
    put_rows_open(R_a, 0, t5, 300, 305);
    uint64_t t6 = ++W.txn; /* epoch 9 on the table without a checkpoint */
    put_rows_open(R_b, 0, t6, 10, 12);
    commit_gci(R_b, 0, t6, 9);
    settle();
}

static void test_restart_recovery(void)
{
    restart_history();
    rig_close();
    W.no_nodeset = true; /* the process starts; no set before the restart's */
    CU_ASSERT_EQUAL_FATAL(rig_open(0, 0, true, 0), 0);
    W.no_nodeset = false;
    struct rt_msg *m = rt_msg_new(W.rt, KSVC_MSG_RECOVER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    m->cookie = 5; /* this node's persisted restorable epoch */
    rt_post_local(W.rt, RT_SVC_KERN, m);
    struct ksvc_recovery_info ri;
    int t = 0;
    for (; t < MAX_TURNS; t++) {
        ksvc_recovery(W.k, &ri);
        if (ri.state != KSVC_RC_UNKNOWN)
            break;
        rt_step(W.rt, 1);
    }
    CU_ASSERT_EQUAL_FATAL(ri.state, KSVC_RC_OK);
    CU_ASSERT_EQUAL(ri.replicas, 3);
    CU_ASSERT_EQUAL(ri.recovered, 3);
    CU_ASSERT_EQUAL(ri.rows, 150);   /* the checkpoint's rows */
    CU_ASSERT_EQUAL(ri.late, 5);     /* COMMITs above epoch 5: t2, t4, t7 | t3, t6 */
    CU_ASSERT_PTR_NULL(ksvc_replica(W.k, R_a, 0)); /* nothing served before the set */
    struct rt_nodeset ns = {.epoch = 1, .members = 1, .current = 1, .coordinator = 1,
                            .member = true, .serving = true, .restart = true,
                            .restart_gci = 6};
    rt_install_nodeset(W.rt, &ns);
    for (int i = 0; i < 4; i++)
        rt_step(W.rt, 0);
    ksvc_recovery(W.k, &ri);
    CU_ASSERT_EQUAL(ri.undone, 4); /* t7, t4 (kept epochs end at 6), t5; t6 */
    struct kern_frag *a0 = ksvc_replica(W.k, R_a, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a0);
    CU_ASSERT_EQUAL(kern_frag_role(a0), KERN_FRAG_PRIMARY);
    for (int64_t k = 0; k < 110; k++)
        CU_ASSERT(has_key(a0, k));
    for (int64_t k = 200; k < 210; k++)
        CU_ASSERT(!has_key(a0, k)); /* t4 and t7 undone, in that order's reverse */
    for (int64_t k = 300; k < 305; k++)
        CU_ASSERT(!has_key(a0, k));
    CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(a0)), 110);
    CU_ASSERT_EQUAL(kern_frag_txns(a0, NULL, 0), 0);
    struct kern_frag *a1 = ksvc_replica(W.k, R_a, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a1);
    CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(a1)), 50);
    struct kern_frag *b0 = ksvc_replica(W.k, R_b, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b0);
    CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(b0)), 10); /* t6 (epoch 9) undone */
    /* it serves: a new transaction commits on top */
    put_rows_t(R_a, 0, 500, 501);
    CU_ASSERT(has_key(a0, 500));
    settle();
}

/* A crash between a checkpoint file's rename and the manifest's write: the
 * file is newer than its entry. Recovery takes it (its redo start is at
 * least the entry's, whose log position still bounds its records) and the
 * replica comes back whole. */
static void test_restart_newer_file(void)
{
    int i = round_now();
    CU_ASSERT_EQUAL_FATAL(conf(i)->error, 0);
    quiesce();
    char mf[256], keep[256];
    snprintf(mf, sizeof mf, "%s/manifest.ncm", W.ckdir);
    snprintf(keep, sizeof keep, "%s/manifest.keep", W.ckdir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp %s %s", mf, keep);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    put_rows_t(R_a, 0, 600, 650);
    i = round_now();
    CU_ASSERT_EQUAL_FATAL(conf(i)->error, 0);
    quiesce();
    rig_close();
    CU_ASSERT_EQUAL_FATAL(rename(keep, mf), 0); /* the old manifest: as if its write was lost */
    struct ksvc_ckpt_manifest m;
    CU_ASSERT_EQUAL_FATAL(ksvc_ckpt_manifest_read(W.ckdir, 1, CLUSTER, &m), 0);
    struct ksvc_rc_rep x;
    memset(&x, 0, sizeof x);
    x.table = R_a;
    x.frag = 0;
    x.f = standby_of(R_a, 0);
    for (size_t j = 0; j < m.n; j++)
        if (m.e[j].table == R_a && m.e[j].frag == 0) {
            x.has_entry = true;
            x.e = m.e[j];
        }
    ksvc_ckpt_manifest_free(&m);
    CU_ASSERT_FATAL(x.has_entry);
    struct kern_dlog_opts o = {.node = 1, .cluster = CLUSTER};
    CU_ASSERT_EQUAL(ksvc_recover_all(W.ckdir, W.dir, &o, &x, 1, 0, 0), 0);
    CU_ASSERT_EQUAL(x.rc, 0);
    CU_ASSERT(x.info.newer);
    CU_ASSERT(has_key(x.f, 600) && has_key(x.f, 649) && has_key(x.f, 500));
    kern_frag_destroy(x.f);
    ksvc_rc_rep_clear(&x);
    CU_ASSERT_EQUAL_FATAL(rig_open(0, 0, true, 0), 0);
}

/* Bad disks: a base marker (a rebuild from a copy) after a replica's
 * checkpoint, and a damaged checkpoint, each fail that replica only. */
static void test_restart_refusals(void)
{
    rig_close();
    /* a rebuild of ra.0 from a copy, as the service marks it */
    struct kern_dlog_opts o = {.node = 1, .cluster = CLUSTER};
    struct kern_dlog *l = NULL;
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(W.dir, &o, &l), 0);
    CU_ASSERT_EQUAL(kern_dlog_append_ckpt(l, R_a, 0, 1, NULL), 0);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    kern_dlog_close(l);
    /* a flipped byte in ra.1's checkpoint */
    char path[256];
    ck_path(R_a, 1, "", path, sizeof path);
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(kern_ckpt_file_read(path, &buf, &len), 0);
    buf[len / 2] ^= 0x10;
    FILE *fp = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    CU_ASSERT_EQUAL(fwrite(buf, 1, len, fp), len);
    fclose(fp);
    free(buf);
    struct ksvc_ckpt_manifest mf;
    CU_ASSERT_EQUAL_FATAL(ksvc_ckpt_manifest_read(W.ckdir, 1, CLUSTER, &mf), 0);
    struct ksvc_rc_rep reps[3];
    memset(reps, 0, sizeof reps);
    uint32_t ids[3][2] = {{R_b, 0}, {R_a, 1}, {R_a, 0}};
    for (int i = 0; i < 3; i++) {
        reps[i].table = ids[i][0];
        reps[i].frag = ids[i][1];
        reps[i].f = standby_of(ids[i][0], ids[i][1]);
        for (size_t j = 0; j < mf.n; j++)
            if (mf.e[j].table == reps[i].table && mf.e[j].frag == reps[i].frag) {
                reps[i].has_entry = true;
                reps[i].e = mf.e[j];
            }
    }
    ksvc_ckpt_manifest_free(&mf);
    CU_ASSERT_EQUAL(ksvc_recover_all(W.ckdir, W.dir, &o, reps, 3, 0, 0), 0);
    /* sorted: ra.0, ra.1, rb.0 */
    CU_ASSERT(reps[0].table == R_a && reps[0].frag == 0);
    CU_ASSERT_EQUAL(reps[0].rc, NINES_ESTATE);
    CU_ASSERT(strstr(reps[0].why, "rebuilt from a copy") != NULL);
    CU_ASSERT_EQUAL(reps[1].rc, NINES_ECORRUPT);
    CU_ASSERT_EQUAL(reps[2].rc, 0);
    if (reps[2].rc)
        fprintf(stderr, "rb.0: %s\n", reps[2].why);
    /* rb.0 came back with what the first restart left: its 10 rows, and
     * the undo of t6 (its CLRs and ABORT) redone */
    CU_ASSERT_EQUAL(kern_bt_count(kern_frag_tree(reps[2].f)), 10);
    CU_ASSERT_EQUAL(kern_frag_txns(reps[2].f, NULL, 0), 0);
    for (int i = 0; i < 3; i++) {
        kern_frag_destroy(reps[i].f);
        ksvc_rc_rep_clear(&reps[i]);
    }
    /* a log that ends before a position once durable (the bound file's):
     * truncated, every replica refused; a bound within the log: recovered */
    struct kern_dlog_scan_info si;
    CU_ASSERT_EQUAL_FATAL(kern_dlog_scan(W.dir, &o, 0, NULL, NULL, &si), 0);
    for (int pass = 0; pass < 2; pass++) {
        struct ksvc_rc_rep one;
        memset(&one, 0, sizeof one);
        one.table = R_b;
        one.frag = 0;
        one.f = standby_of(R_b, 0);
        uint64_t bound = pass == 0 ? si.end + 1 : si.end;
        CU_ASSERT_EQUAL(ksvc_recover_all(W.ckdir, W.dir, &o, &one, 1, 0, bound), 0);
        if (pass == 0) {
            CU_ASSERT_EQUAL(one.rc, NINES_ECORRUPT);
            CU_ASSERT(strstr(one.why, "truncated") != NULL);
        } else {
            CU_ASSERT_EQUAL(one.rc, 0);
        }
        kern_frag_destroy(one.f);
        ksvc_rc_rep_clear(&one);
    }
    /* the bound file's format: every flipped bit refused */
    uint8_t bb[KSVC_RC_BOUND_BYTES];
    struct ksvc_rc_bound bd = {.gci = 9, .pos = 12345, .written_us = 77}, got;
    ksvc_rc_bound_encode(&bd, 1, CLUSTER, bb);
    CU_ASSERT_EQUAL(ksvc_rc_bound_decode(bb, sizeof bb, 1, CLUSTER, &got), 0);
    CU_ASSERT(got.gci == 9 && got.pos == 12345 && got.written_us == 77);
    for (size_t i = 0; i < sizeof bb; i++)
        for (int bit = 0; bit < 8; bit++) {
            bb[i] ^= (uint8_t)(1u << bit);
            int rc = ksvc_rc_bound_decode(bb, sizeof bb, 1, CLUSTER, &got);
            CU_ASSERT(rc == NINES_ECORRUPT || rc == NINES_EVERSION);
            bb[i] ^= (uint8_t)(1u << bit);
        }
    CU_ASSERT_EQUAL(ksvc_rc_bound_decode(bb, sizeof bb - 1, 1, CLUSTER, &got), NINES_ETRUNC);
    CU_ASSERT_EQUAL(ksvc_rc_bound_decode(bb, sizeof bb, 2, CLUSTER, &got), NINES_EINVAL);
    CU_ASSERT_EQUAL_FATAL(rig_open(0, 0, true, 0), 0);
}

static int restart_init(void) { return rig_init("ksvc_ckpt_restart", 0, 0, true, 0); }

/* With commit epochs a checkpoint completes only once the newest epoch its
 * replica committed before it began is restorable: a whole-cluster restart
 * could not undo a later one whose records lie before the redo start. */
static void test_ckpt_waits_for_epoch(void)
{
    uint32_t t = table_new("ge", 1);
    CU_ASSERT_FATAL(t != 0);
    uint64_t x = ++W.txn;
    put_rows_open(t, 0, x, 0, 50);
    commit_gci(t, 0, x, 7);
    settle();
    int before = W.ngot;
    ask();
    for (int i = 0; i < 3000 && W.ngot == before; i++)
        rt_step(W.rt, 1);
    CU_ASSERT_EQUAL(W.ngot, before); /* waits in DURABLE for epoch 7 */
    struct ksvc_ckpt_manifest mf;
    CU_ASSERT_EQUAL(ksvc_ckpt_manifest_read(W.ckdir, 1, CLUSTER, &mf), NINES_ENOTFOUND);
    struct ksvc_ckpt_entry e;
    struct rt_msg *m = rt_msg_new(W.rt, RT_MSG_GCP_SAVED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    m->cookie = 7;
    rt_post_local(W.rt, RT_SVC_KERN, m);
    until_answers(before + 1, NULL);
    CU_ASSERT_EQUAL(conf(before)->error, 0);
    quiesce();
    CU_ASSERT(mf_entry(t, 0, &e));
    /* epoch 7 restorable already: the next one does not wait */
    uint64_t y = ++W.txn;
    put_rows_open(t, 0, y, 50, 60);
    commit_gci(t, 0, y, 6);
    settle();
    int i = round_now();
    CU_ASSERT_EQUAL(conf(i)->error, 0);
}

static int epoch_init(void)
{
    W.gcp_on = true; /* kept by rig_init, cleared by rig_fini */
    return rig_init("ksvc_ckpt_epoch", 0, 0, true, 0);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"manifest_format", test_manifest_format},
        {"fuzzy_on_demand", test_fuzzy_on_demand},
        {"corrupt_checkpoint", test_corrupt_checkpoint},
        {"drop_mid_checkpoint", test_drop_mid_checkpoint},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_ckpt", suite_init, suite_fini, cases);
    static const struct cu_case restart[] = {
        {"restart_recovery", test_restart_recovery},
        {"restart_newer_file", test_restart_newer_file},
        {"restart_refusals", test_restart_refusals},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_ckpt_restart", restart_init, suite_fini, restart);
    static const struct cu_case epoch[] = {
        {"ckpt_waits_for_epoch", test_ckpt_waits_for_epoch},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_ckpt_epoch", epoch_init, suite_fini, epoch);
#ifdef NINES_FAULTS
    static const struct cu_case trim[] = {
        {"removal_rule", test_removal_rule},
        {"restart_keeps_log", test_restart_keeps_log},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_ckpt_trim", trim_init, suite_fini, trim);
    static const struct cu_case sched[] = {
        {"scheduled", test_scheduled},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_ckpt_sched", sched_init, suite_fini, sched);
    static const struct cu_case gap[] = {
        {"gap_resume", test_gap_resume},
        {NULL, NULL},
    };
    cu_add_suite("ksvc_ckpt_gap", gap_init, suite_fini, gap);
#else
    (void)gap_init;
    (void)trim_init;
    (void)sched_init;
    (void)fill_q;
#endif
}
