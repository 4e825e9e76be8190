/* Disk log: round trip across segments with checkpoint markers; group
 * commit (N appends, one flush = one write + one fsync); a torn tail at
 * every byte of the last entry (cut or zeroed) ends the scan cleanly and
 * reopening cuts it and appends go on; a flipped byte in the middle, a gap
 * between segments and bad or foreign headers are refused with the file
 * and offset and nothing after the damage is delivered; injected ENOSPC,
 * short write and fsync failure followed by a retry lose and duplicate
 * nothing; trim removes exactly the segments wholly before a position. */
#include "cu_test.h"

#include "kernel/kern_dlog.h"
#include "kernel/kern_log.h"
#include "kernel/kern_rec.h"
#include "nassert.h"
#include "nines/errors.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];
static int ncase;

static int setup(void)
{
    snprintf(root, sizeof root, "/tmp/kern_dlog_test.XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh (not yet existing) log folder for one test. */
static void fresh(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/log%d", root, ++ncase);
}

static const struct kern_dlog_opts OPTS = {.node = 3, .cluster = 0xC1u};

/* Encoded insert record of (table, frag, lsn) whose after image body is
 * `body` bytes derived from lsn. */
static size_t mkrec(uint32_t table, uint32_t frag, uint64_t lsn, uint32_t body, uint8_t *out,
                    size_t cap)
{
    static uint8_t img[16 + 4096];
    static const uint8_t key[] = {1, 0x80, 0, 0, 5, 1, 'k', 0, 0};
    uint64_t sid = lsn + 1000;
    memcpy(img, &sid, 8);
    memcpy(img + 8, &body, 4);
    img[12] = KERN_REC_VERSION;
    img[13] = img[14] = img[15] = 0;
    for (uint32_t i = 0; i < body; i++)
        img[16 + i] = (uint8_t)(i * 7 + lsn);
    struct kern_logrec r = {.lsn = lsn, .txn = 42, .sid = sid, .table = table, .frag = frag,
                            .op = KERN_LOG_INSERT, .key = key, .klen = sizeof key,
                            .after = img, .alen = 16 + body};
    int n = kern_logrec_encode(&r, out, cap);
    CU_ASSERT_FATAL(n > 0);
    return (size_t)n;
}

/* Entry i of the test stream: every 50th a checkpoint marker, the rest
 * records of 3 fragments with bodies of 0..299 bytes. */
#define TAB 7
static uint32_t frag_of(unsigned i) { return i % 3; }
static uint64_t lsn_of(unsigned i) { return i + 1; }
static uint32_t body_of(unsigned i) { return (i * 37) % 300; }
static int is_ckpt(unsigned i) { return i % 50 == 49; }

static uint64_t append_i(struct kern_dlog *l, unsigned i)
{
    uint8_t buf[1024];
    uint64_t end = 0;
    if (is_ckpt(i)) {
        CU_ASSERT_EQUAL(kern_dlog_append_ckpt(l, TAB, frag_of(i), lsn_of(i), &end), 0);
    } else {
        size_t n = mkrec(TAB, frag_of(i), lsn_of(i), body_of(i), buf, sizeof buf);
        CU_ASSERT_EQUAL(kern_dlog_append(l, TAB, frag_of(i), lsn_of(i), buf, n, &end), 0);
    }
    return end;
}

/* Scan collector: checks each entry is entry `next` of the test stream. */
struct coll {
    unsigned next; /* index of the next expected entry */
    unsigned got;
    int bad;
    uint64_t pos[4096];
};

static int collect(void *arg, const struct kern_dlog_entry *e)
{
    struct coll *c = arg;
    unsigned i = c->next;
    uint8_t buf[1024];
    if (e->table != TAB || e->frag != frag_of(i) || e->lsn != lsn_of(i))
        c->bad++;
    else if (is_ckpt(i)) {
        if (e->kind != KERN_DLOG_CKPT || e->rec || e->len)
            c->bad++;
    } else {
        size_t n = mkrec(TAB, frag_of(i), lsn_of(i), body_of(i), buf, sizeof buf);
        struct kern_logrec r;
        if (e->kind != KERN_DLOG_REC || e->len != n || memcmp(e->rec, buf, n) ||
            kern_logrec_decode(e->rec, e->len, &r) != (int)n)
            c->bad++;
    }
    if (i < 4096)
        c->pos[i] = e->pos;
    c->next++;
    c->got++;
    return 0;
}

static unsigned count_segs(const char *dir)
{
    DIR *d = opendir(dir);
    unsigned n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, "log-", 4) == 0;
    if (d)
        closedir(d);
    return n;
}

/* Path of the segment starting at `first`. */
static void seg_file(const char *dir, uint64_t first, char *out, size_t cap)
{
    snprintf(out, cap, "%s/log-%016llx.ndl", dir, (unsigned long long)first);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, p, n) == (ssize_t)n);
    close(fd);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    struct stat st;
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0 && p);
    CU_ASSERT_FATAL(read(fd, p, (size_t)st.st_size) == st.st_size);
    close(fd);
    *n = (size_t)st.st_size;
    return p;
}

static void flip(const char *path, size_t off)
{
    size_t n;
    uint8_t *p = read_file(path, &n);
    CU_ASSERT_FATAL(off < n);
    p[off] ^= 0x40;
    write_file(path, p, n);
    free(p);
}

/* Write entries [0, n) flushing every `every`, return the log (open). */
static struct kern_dlog *make_log(const char *dir, uint64_t seg_bytes, unsigned n, unsigned every)
{
    struct kern_dlog_opts o = OPTS;
    o.seg_bytes = seg_bytes;
    struct kern_dlog *l;
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &o, &l), 0);
    for (unsigned i = 0; i < n; i++) {
        append_i(l, i);
        if ((i + 1) % every == 0 || i + 1 == n)
            CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    }
    return l;
}

static void test_roundtrip(void)
{
    char dir[128];
    fresh(dir, sizeof dir);
    const unsigned N = 2000;
    struct kern_dlog *l = make_log(dir, 8192, N, 7);
    uint64_t end = kern_dlog_end(l);
    CU_ASSERT_EQUAL(kern_dlog_durable(l), end);
    CU_ASSERT_EQUAL(kern_dlog_buffered(l), 0);
    CU_ASSERT(kern_dlog_segments(l) > 5);
    CU_ASSERT_EQUAL(count_segs(dir), kern_dlog_segments(l));
    struct kern_dlog_stats st;
    kern_dlog_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.appends, N);
    CU_ASSERT_EQUAL(st.bytes, end);
    CU_ASSERT_EQUAL(st.segs_created, kern_dlog_segments(l));
    kern_dlog_close(l);

    static struct coll c;
    memset(&c, 0, sizeof c);
    struct kern_dlog_scan_info info;
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, &info), 0);
    CU_ASSERT_EQUAL(c.got, N);
    CU_ASSERT_EQUAL(c.bad, 0);
    CU_ASSERT_EQUAL(info.entries, N);
    CU_ASSERT_EQUAL(info.end, end);
    CU_ASSERT_EQUAL(info.torn, 0);
    CU_ASSERT_EQUAL(info.segments, count_segs(dir));

    /* from a position in the middle: that entry on */
    static struct coll c2;
    memset(&c2, 0, sizeof c2);
    c2.next = 1234;
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, c.pos[1234], collect, &c2, &info), 0);
    CU_ASSERT_EQUAL(c2.got, N - 1234);
    CU_ASSERT_EQUAL(c2.bad, 0);
    CU_ASSERT(info.segments < count_segs(dir));

    /* reopen: continues at the end */
    struct kern_dlog_opts o = OPTS;
    o.seg_bytes = 8192;
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &o, &l), 0);
    CU_ASSERT_EQUAL(kern_dlog_durable(l), end);
    kern_dlog_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.torn_bytes, 0);
    for (unsigned i = N; i < N + 100; i++)
        append_i(l, i);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    kern_dlog_close(l);
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, &info), 0);
    CU_ASSERT_EQUAL(c.got, N + 100);
    CU_ASSERT_EQUAL(c.bad, 0);
}

static void test_group_commit(void)
{
    char dir[128];
    fresh(dir, sizeof dir);
    struct kern_dlog *l;
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &OPTS, &l), 0);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0); /* nothing buffered: no I/O */
    uint64_t last = 0;
    for (unsigned i = 0; i < 500; i++) {
        uint64_t e = append_i(l, i);
        CU_ASSERT(e > last);
        last = e;
    }
    CU_ASSERT_EQUAL(kern_dlog_durable(l), 0);
    CU_ASSERT_EQUAL(kern_dlog_end(l), last);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    struct kern_dlog_stats st;
    kern_dlog_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.appends, 500);
    CU_ASSERT_EQUAL(st.flushes, 1);
    CU_ASSERT_EQUAL(st.writes, 1);
    CU_ASSERT_EQUAL(st.fsyncs, 1);
    CU_ASSERT_EQUAL(kern_dlog_durable(l), last);
    kern_dlog_close(l);
}

/* Expect a clean scan of `want` entries ending in a torn tail (or not). */
static void expect_torn(const char *dir, unsigned want, int torn, uint64_t end)
{
    static struct coll c;
    memset(&c, 0, sizeof c);
    struct kern_dlog_scan_info info;
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, &info), 0);
    CU_ASSERT_EQUAL(c.got, want);
    CU_ASSERT_EQUAL(c.bad, 0);
    CU_ASSERT_EQUAL(info.torn, torn);
    CU_ASSERT_EQUAL(info.end, end);
}

static void test_torn_tail(void)
{
    char dir[128], path[256];
    fresh(dir, sizeof dir);
    const unsigned N = 9; /* entry 8 is a record of 8*37 % 300 = 296 body bytes */
    struct kern_dlog *l = make_log(dir, 0, N, 3);
    uint64_t end = kern_dlog_end(l);
    kern_dlog_close(l);
    static struct coll c;
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL_FATAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, NULL), 0);
    uint64_t last = c.pos[N - 1]; /* position of the last entry */
    seg_file(dir, 0, path, sizeof path);
    size_t flen;
    uint8_t *full = read_file(path, &flen);
    CU_ASSERT_EQUAL_FATAL(flen, KERN_DLOG_SEG_HDR + end);
    size_t L = KERN_DLOG_SEG_HDR + last;
    uint8_t *z = malloc(flen);
    for (size_t cut = L; cut < flen; cut++) {
        /* (a) the file ends inside the last entry */
        write_file(path, full, cut);
        expect_torn(dir, N - 1, cut > L, last);
        /* (b) zeros from `cut` to the full length */
        memcpy(z, full, cut);
        memset(z + cut, 0, flen - cut);
        write_file(path, z, flen);
        expect_torn(dir, N - 1, 1, last);
        /* reopening cuts the tail; appends go on after entry N-2 */
        CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &OPTS, &l), 0);
        struct kern_dlog_stats st;
        kern_dlog_get_stats(l, &st);
        CU_ASSERT_EQUAL(st.torn_bytes, flen - L);
        CU_ASSERT_EQUAL(kern_dlog_durable(l), last);
        append_i(l, N - 1);
        CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
        CU_ASSERT_EQUAL(kern_dlog_durable(l), end);
        kern_dlog_close(l);
        expect_torn(dir, N, 0, end);
    }
    /* garbage (not zeros) after the last entry is a torn tail too */
    memcpy(z, full, flen);
    for (size_t i = L + 5; i < flen; i++)
        z[i] = (uint8_t)(i * 13 + 1);
    write_file(path, z, flen);
    expect_torn(dir, N - 1, 1, last);
    free(z);
    free(full);
}

/* A crash right after a new segment was renamed into place (header only)
 * or inside its first entry: the previous segments stand, appends go on. */
static void test_torn_after_rotation(void)
{
    char dir[128], path[256];
    fresh(dir, sizeof dir);
    struct kern_dlog_opts o = OPTS;
    o.seg_bytes = 1024;
    struct kern_dlog *l = make_log(dir, 1024, 40, 1);
    /* one entry per flush until a flush starts a new segment: entry n is
     * then alone in the newest segment */
    unsigned n = 40, nseg;
    uint64_t before;
    for (;; n++) {
        nseg = kern_dlog_segments(l);
        before = kern_dlog_durable(l);
        append_i(l, n);
        CU_ASSERT_EQUAL_FATAL(kern_dlog_flush(l), 0);
        if (kern_dlog_segments(l) > nseg)
            break;
    }
    CU_ASSERT_FATAL(nseg >= 3);
    uint64_t end = kern_dlog_end(l);
    kern_dlog_close(l);
    seg_file(dir, before, path, sizeof path);
    size_t flen;
    uint8_t *full = read_file(path, &flen);
    CU_ASSERT_EQUAL_FATAL(flen, KERN_DLOG_SEG_HDR + end - before);
    for (size_t cut = KERN_DLOG_SEG_HDR; cut < flen; cut++) {
        write_file(path, full, cut);
        expect_torn(dir, n, cut > KERN_DLOG_SEG_HDR, before);
        CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &o, &l), 0);
        CU_ASSERT_EQUAL(kern_dlog_durable(l), before);
        CU_ASSERT_EQUAL(kern_dlog_segments(l), nseg + 1);
        append_i(l, n);
        CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
        kern_dlog_close(l);
        expect_torn(dir, n + 1, 0, end);
    }
    free(full);
}

static void test_corrupt_middle(void)
{
    char dir[128], path[256];
    fresh(dir, sizeof dir);
    const unsigned N = 600;
    struct kern_dlog *l = make_log(dir, 8192, N - 30, 5);
    for (unsigned i = N - 30; i < N; i++) /* one flush: the last segment holds >= 30 */
        append_i(l, i);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    unsigned nseg = kern_dlog_segments(l);
    kern_dlog_close(l);
    CU_ASSERT_FATAL(nseg >= 4);
    static struct coll c;
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL_FATAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, NULL), 0);
    uint64_t pos[N];
    memcpy(pos, c.pos, sizeof pos);
    /* (1) a byte of entry k (middle of the last segment) flipped */
    unsigned k = N - 10;
    DIR *d;
    uint64_t lastfirst = 0;
    struct dirent *e;
    d = opendir(dir);
    while ((e = readdir(d))) {
        unsigned long long f;
        if (sscanf(e->d_name, "log-%16llx.ndl", &f) == 1 && f > lastfirst)
            lastfirst = f;
    }
    closedir(d);
    CU_ASSERT_FATAL(pos[k] > lastfirst);
    seg_file(dir, lastfirst, path, sizeof path);
    size_t off = KERN_DLOG_SEG_HDR + (pos[k] - lastfirst);
    flip(path, off + KERN_DLOG_ENT_HDR + 40);
    memset(&c, 0, sizeof c);
    struct kern_dlog_scan_info info;
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, &info), NINES_ECORRUPT);
    CU_ASSERT_EQUAL(c.got, k); /* nothing at or after the bad entry */
    CU_ASSERT_EQUAL(c.bad, 0);
    CU_ASSERT_EQUAL(info.off, off);
    CU_ASSERT_PTR_NOT_NULL(strstr(path, info.file));
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "CRC"));
    CU_ASSERT_EQUAL(kern_dlog_open(dir, &OPTS, &l), NINES_ECORRUPT); /* never appends to it */
    flip(path, off + KERN_DLOG_ENT_HDR + 40);                           /* repaired */

    /* (2) the length field of an entry in an older segment */
    k = 20;
    CU_ASSERT_FATAL(pos[k] < lastfirst);
    uint64_t first0 = 0; /* entry 20 is in the first segment (8 KiB) */
    CU_ASSERT_FATAL(pos[k] < 8192);
    seg_file(dir, first0, path, sizeof path);
    off = KERN_DLOG_SEG_HDR + pos[k];
    flip(path, off + 1);
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, &info), NINES_ECORRUPT);
    CU_ASSERT_EQUAL(c.got, k);
    CU_ASSERT_EQUAL(info.off, off);
    flip(path, off + 1);
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, &info), 0);
    CU_ASSERT_EQUAL(c.got, N);

    /* (3) a gap: the second segment removed */
    uint64_t second = UINT64_MAX;
    d = opendir(dir);
    while ((e = readdir(d))) {
        unsigned long long f;
        if (sscanf(e->d_name, "log-%16llx.ndl", &f) == 1 && f > 0 && f < second)
            second = f;
    }
    closedir(d);
    seg_file(dir, second, path, sizeof path);
    size_t slen;
    uint8_t *saved = read_file(path, &slen);
    CU_ASSERT_EQUAL_FATAL(unlink(path), 0);
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, &info), NINES_ECORRUPT);
    CU_ASSERT_EQUAL(c.got, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "gap"));
    CU_ASSERT_EQUAL(strncmp(info.file, "log-", 4), 0); /* the segment after the gap */
    CU_ASSERT(strcmp(info.file, "log-0000000000000000.ndl") > 0);
    CU_ASSERT_EQUAL(kern_dlog_open(dir, &OPTS, &l), NINES_ECORRUPT);
    /* (4) a segment cut short (not the last): also a gap */
    write_file(path, saved, slen - 3);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, NULL, NULL, &info), NINES_ECORRUPT);
    write_file(path, saved, slen);
    free(saved);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, NULL, NULL, &info), 0);
}

static void test_bad_header(void)
{
    char dir[128], path[256];
    fresh(dir, sizeof dir);
    struct kern_dlog *l = make_log(dir, 0, 10, 10);
    kern_dlog_close(l);
    seg_file(dir, 0, path, sizeof path);
    struct kern_dlog_scan_info info;
    /* another node's or cluster's log */
    struct kern_dlog_opts other = OPTS;
    other.node = 4;
    CU_ASSERT_EQUAL(kern_dlog_open(dir, &other, &l), NINES_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "node 3"));
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &other, 0, NULL, NULL, &info), NINES_EINVAL);
    other = OPTS;
    other.cluster = 0xC2;
    CU_ASSERT_EQUAL(kern_dlog_open(dir, &other, &l), NINES_EINVAL);
    /* magic, version, CRC, reserved byte */
    static const struct { size_t off; int err; const char *what; } cases[] = {
        {0, NINES_ECORRUPT, "magic"},
        {8, NINES_EVERSION, "version"},
        {24, NINES_ECORRUPT, "CRC"},
        {61, NINES_ECORRUPT, "CRC"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        flip(path, cases[i].off);
        CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, NULL, NULL, &info), cases[i].err);
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), cases[i].what));
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "log-0000000000000000.ndl"));
        CU_ASSERT_EQUAL(kern_dlog_open(dir, &OPTS, &l), cases[i].err);
        flip(path, cases[i].off);
    }
    /* a file renamed to another position than its header says */
    char other_path[256];
    seg_file(dir, 0x10, other_path, sizeof other_path);
    CU_ASSERT_EQUAL_FATAL(rename(path, other_path), 0);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, NULL, NULL, &info), NINES_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "first position"));
    CU_ASSERT_EQUAL_FATAL(rename(other_path, path), 0);
    /* a header cut short */
    size_t n;
    uint8_t *p = read_file(path, &n);
    write_file(path, p, 40);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, NULL, NULL, &info), NINES_ECORRUPT);
    CU_ASSERT_EQUAL(kern_dlog_open(dir, &OPTS, &l), NINES_ECORRUPT);
    write_file(path, p, n);
    free(p);
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &OPTS, &l), 0);
    kern_dlog_close(l);
    /* a leftover temp segment is removed on open */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/log-00000000000fffff.ndl.tmp", dir);
    write_file(tmp, (const uint8_t *)"x", 1);
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &OPTS, &l), 0);
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    kern_dlog_close(l);
}

static void test_append_checks(void)
{
    char dir[128];
    fresh(dir, sizeof dir);
    struct kern_dlog_opts o = OPTS;
    o.buf_max = 4096;
    struct kern_dlog *l;
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &o, &l), 0);
    uint8_t buf[1024];
    size_t n = mkrec(TAB, 1, 5, 100, buf, sizeof buf);
    CU_ASSERT_EQUAL(kern_dlog_append(l, TAB, 1, 6, buf, n, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_dlog_append(l, TAB, 2, 5, buf, n, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_dlog_append(l, TAB + 1, 1, 5, buf, n, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_dlog_append(l, TAB, 1, 5, buf, n - 1, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_dlog_append(l, TAB, 1, 5, buf, 10, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_dlog_append_ckpt(l, TAB, 1, 0, NULL), NINES_EINVAL);
    CU_ASSERT_EQUAL(kern_dlog_buffered(l), 0);
    /* the buffer limit: NINES_EFULL, nothing appended */
    unsigned k = 0;
    int rc;
    while ((rc = kern_dlog_append(l, TAB, 1, 5, buf, n, NULL)) == 0)
        k++;
    CU_ASSERT_EQUAL(rc, NINES_EFULL);
    CU_ASSERT_EQUAL(kern_dlog_buffered(l), k * (KERN_DLOG_ENT_HDR + n));
    CU_ASSERT(kern_dlog_buffered(l) <= 4096);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    CU_ASSERT_EQUAL(kern_dlog_append(l, TAB, 1, 5, buf, n, NULL), 0);
    kern_dlog_close(l);
}

static void test_trim(void)
{
    char dir[128];
    fresh(dir, sizeof dir);
    const unsigned N = 1000;
    struct kern_dlog *l = make_log(dir, 4096, N, 4);
    unsigned nseg = kern_dlog_segments(l);
    CU_ASSERT_FATAL(nseg >= 8);
    /* the segments' first positions, in order */
    uint64_t firsts[256];
    unsigned m = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long f;
        if (sscanf(e->d_name, "log-%16llx.ndl", &f) == 1 && m < 256)
            firsts[m++] = f;
    }
    closedir(d);
    CU_ASSERT_EQUAL_FATAL(m, nseg);
    for (unsigned i = 0; i < m; i++) /* sort */
        for (unsigned j = i + 1; j < m; j++)
            if (firsts[j] < firsts[i]) {
                uint64_t t = firsts[i];
                firsts[i] = firsts[j], firsts[j] = t;
            }
    CU_ASSERT_EQUAL(kern_dlog_first(l), 0);
    /* a position inside segment 0: nothing */
    CU_ASSERT_EQUAL(kern_dlog_trim(l, firsts[1] - 1), 0);
    /* exactly the start of segment 3: segments 0, 1, 2 */
    CU_ASSERT_EQUAL(kern_dlog_trim(l, firsts[3]), 3);
    CU_ASSERT_EQUAL(kern_dlog_first(l), firsts[3]);
    CU_ASSERT_EQUAL(count_segs(dir), nseg - 3);
    /* one past it: nothing more */
    CU_ASSERT_EQUAL(kern_dlog_trim(l, firsts[3] + 1), 0);
    struct kern_dlog_scan_info info;
    static struct coll c;
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, firsts[1], collect, &c, &info), NINES_ESTALE);
    /* from 0: everything still on disk, starting at segment 3 */
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, NULL, NULL, &info), 0);
    CU_ASSERT_EQUAL(info.end, kern_dlog_end(l));
    /* beyond the end: all but the current segment */
    CU_ASSERT_EQUAL(kern_dlog_trim(l, UINT64_MAX), (int)(nseg - 4));
    CU_ASSERT_EQUAL(kern_dlog_segments(l), 1);
    CU_ASSERT_EQUAL(count_segs(dir), 1);
    CU_ASSERT_EQUAL(kern_dlog_first(l), firsts[m - 1]);
    struct kern_dlog_stats st;
    kern_dlog_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.segs_removed, nseg - 1);
    /* appends go on; the log reopens */
    append_i(l, N);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    uint64_t end = kern_dlog_end(l);
    kern_dlog_close(l);
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &OPTS, &l), 0);
    CU_ASSERT_EQUAL(kern_dlog_durable(l), end);
    CU_ASSERT_EQUAL(kern_dlog_first(l), firsts[m - 1]);
    kern_dlog_close(l);
}

/* kern_dlog_discard drops the unflushed buffer only: what was durable
 * stays, the next append starts at the durable position, and a scan sees
 * the durable entries and then the ones appended after the discard. */
static void test_discard(void)
{
    char dir[256];
    fresh(dir, sizeof dir);
    struct kern_dlog *l;
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &OPTS, &l), 0);
    for (unsigned i = 0; i < 10; i++)
        append_i(l, i);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    uint64_t durable = kern_dlog_durable(l);
    for (unsigned i = 10; i < 20; i++)
        append_i(l, i);
    size_t buffered = kern_dlog_buffered(l);
    CU_ASSERT(buffered > 0);
    CU_ASSERT_EQUAL(kern_dlog_discard(l), buffered);
    CU_ASSERT_EQUAL(kern_dlog_buffered(l), 0);
    CU_ASSERT_EQUAL(kern_dlog_end(l), durable);
    CU_ASSERT_EQUAL(kern_dlog_discard(l), 0);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0); /* nothing to write */
    for (unsigned i = 20; i < 25; i++)
        append_i(l, i);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    struct kern_dlog_stats st;
    kern_dlog_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.discarded, buffered);
    CU_ASSERT_EQUAL(st.flushes, 2);
    kern_dlog_close(l);
    static struct coll c;
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, NULL), 0);
    CU_ASSERT_EQUAL(c.got, 15);
    CU_ASSERT_EQUAL(c.bad, 5); /* entries 20..24 arrive where 10..14 were expected */
    CU_ASSERT_EQUAL(c.pos[10], durable);
}

/* Scan collector of a gap test: entries by kind, the gap markers' positions. */
struct gcoll {
    unsigned recs, ckpts, gaps;
    uint64_t first_lsn, last_lsn, gap_at;
};
static int gcollect(void *arg, const struct kern_dlog_entry *e)
{
    struct gcoll *c = arg;
    if (e->kind == KERN_DLOG_GAP) {
        c->gaps++;
        c->gap_at = e->pos;
        CU_ASSERT(e->table == 0 && e->frag == 0 && e->len == 0 && e->rec == NULL);
        return 0;
    }
    if (e->kind == KERN_DLOG_REC)
        c->recs++;
    else
        c->ckpts++;
    if (!c->first_lsn)
        c->first_lsn = e->lsn;
    c->last_lsn = e->lsn;
    return 0;
}

/* A gap: entries 0..29 durable, 30..39 dropped (mark_gap discards them),
 * a first flush of the marker fails (injected ENOSPC) and a second mark
 * replaces the marker, 40..59 after it. The marker starts a new segment;
 * a scan from 0, from before the gap or from the marker itself stops at
 * the gap (info.gap, gap_pos), a scan from the marker's end delivers
 * 40..59, one from further on only what follows; reopening keeps
 * it all; once the segments before the gap are trimmed a scan from 0
 * starts at the marker and reads the run after it. */
static void test_gap(void)
{
    char dir[256], path[300];
    fresh(dir, sizeof dir);
    struct kern_dlog *l;
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &OPTS, &l), 0);
    for (unsigned i = 0; i < 30; i++)
        append_i(l, i);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    uint64_t gap = kern_dlog_durable(l);
    for (unsigned i = 30; i < 40; i++)
        append_i(l, i);
    size_t dropped = kern_dlog_buffered(l);
    uint64_t after = 0;
    CU_ASSERT_EQUAL(kern_dlog_mark_gap(l, 10, &after), 0);
    CU_ASSERT_EQUAL(after, gap + KERN_DLOG_ENT_HDR);
    CU_ASSERT_EQUAL(kern_dlog_buffered(l), KERN_DLOG_ENT_HDR);
#ifdef NINES_FAULTS
    nines_fault_arm("kern.dlog.enospc", 1);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), NINES_EFULL);
    CU_ASSERT_EQUAL(kern_dlog_durable(l), gap);
#endif
    CU_ASSERT_EQUAL(kern_dlog_mark_gap(l, 10, &after), 0); /* the retry: replaced, not doubled */
    CU_ASSERT_EQUAL(after, gap + KERN_DLOG_ENT_HDR);
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    CU_ASSERT_EQUAL(kern_dlog_durable(l), after);
    CU_ASSERT_EQUAL(kern_dlog_segments(l), 2); /* the marker opened a new segment */
    seg_file(dir, gap, path, sizeof path);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(path, &sb), 0);
    uint64_t post = 0;
    for (unsigned i = 40; i < 60; i++) {
        uint64_t e = append_i(l, i);
        if (i == 49)
            post = e; /* after entry 49: a replica's redo start past the gap */
    }
    CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
    struct kern_dlog_stats st;
    kern_dlog_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.discarded, dropped);
    CU_ASSERT_EQUAL(st.gap_marks, 2);
    kern_dlog_close(l);
    for (int reopen = 0; reopen < 2; reopen++) {
        struct gcoll c;
        struct kern_dlog_scan_info info;
        memset(&c, 0, sizeof c);
        CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, gcollect, &c, &info), 0);
        CU_ASSERT_EQUAL(c.recs + c.ckpts, 30); /* 0..29: never across the gap */
        CU_ASSERT_EQUAL(c.last_lsn, lsn_of(29));
        CU_ASSERT_EQUAL(c.gaps, 0);
        CU_ASSERT_EQUAL(info.gap, 1);
        CU_ASSERT_EQUAL(info.gap_pos, gap);
        CU_ASSERT_EQUAL(info.end, gap);
        CU_ASSERT_EQUAL(info.entries, 30);
        memset(&c, 0, sizeof c); /* from a position before the gap: stops there too */
        CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, gap - 1, gcollect, &c, &info), 0);
        CU_ASSERT_EQUAL(info.gap, 1);
        CU_ASSERT_EQUAL(c.recs + c.ckpts, 0);
        memset(&c, 0, sizeof c); /* from the marker itself: what it stands for is lost */
        CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, gap, gcollect, &c, &info), 0);
        CU_ASSERT_EQUAL(info.gap, 1);
        CU_ASSERT_EQUAL(info.gap_pos, gap);
        CU_ASSERT_EQUAL(c.recs + c.ckpts + c.gaps, 0);
        memset(&c, 0, sizeof c); /* the run after it */
        CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, gap + KERN_DLOG_ENT_HDR, gcollect, &c, &info),
                        0);
        CU_ASSERT_EQUAL(info.gap, 0);
        CU_ASSERT_EQUAL(c.gaps, 0);
        CU_ASSERT_EQUAL(c.recs + c.ckpts, 20);
        CU_ASSERT_EQUAL(c.first_lsn, lsn_of(40));
        CU_ASSERT_EQUAL(c.last_lsn, lsn_of(59));
        memset(&c, 0, sizeof c); /* from a redo start after the gap */
        CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, post, gcollect, &c, &info), 0);
        CU_ASSERT_EQUAL(c.gaps, 0);
        CU_ASSERT_EQUAL(c.first_lsn, lsn_of(50));
        CU_ASSERT_EQUAL(c.recs + c.ckpts, 10);
        if (!reopen) { /* open cuts nothing; appends go on after the run */
            CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &OPTS, &l), 0);
            CU_ASSERT_EQUAL(kern_dlog_segments(l), 2);
            kern_dlog_close(l);
        }
    }
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &OPTS, &l), 0);
    CU_ASSERT_EQUAL(kern_dlog_trim(l, gap), 1); /* the segment wholly before the gap */
    kern_dlog_close(l);
    struct gcoll c;
    struct kern_dlog_scan_info info;
    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, gcollect, &c, &info), 0);
    CU_ASSERT_EQUAL(info.gap, 0);
    CU_ASSERT_EQUAL(c.gaps, 1); /* the run starts at the marker */
    CU_ASSERT_EQUAL(c.recs + c.ckpts, 20);
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, gap - 1, gcollect, &c, &info), NINES_ESTALE);
}

#ifdef NINES_FAULTS
/* Injected ENOSPC, short write and fsync failure: the flush fails with a
 * clear code, the buffer is kept, the retry writes it; every entry is on
 * disk exactly once. */
static void test_faults(void)
{
    char dir[128], path[256];
    fresh(dir, sizeof dir);
    struct kern_dlog_opts o = OPTS;
    o.seg_bytes = 8192;
    struct kern_dlog *l;
    CU_ASSERT_EQUAL_FATAL(kern_dlog_open(dir, &o, &l), 0);
    static const struct { const char *point; int err; } f[] = {
        {"kern.dlog.enospc", NINES_EFULL},
        {"kern.dlog.short", NINES_EFULL},
        {"kern.dlog.fsync", NINES_EIO},
    };
    unsigned i = 0;
    for (unsigned round = 0; round < 30; round++) {
        unsigned which = round % 3;
        for (unsigned j = 0; j < 20; j++, i++)
            append_i(l, i);
        uint64_t durable = kern_dlog_durable(l);
        size_t buffered = kern_dlog_buffered(l);
        nines_fault_arm(f[which].point, 1);
        CU_ASSERT_EQUAL(kern_dlog_flush(l), f[which].err);
        CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), ".ndl"));
        CU_ASSERT_EQUAL(kern_dlog_durable(l), durable);
        CU_ASSERT_EQUAL(kern_dlog_buffered(l), buffered);
        /* the segment was cut back to its durable length */
        unsigned long long first = 0;
        DIR *d = opendir(dir);
        struct dirent *e;
        while ((e = readdir(d))) {
            unsigned long long x;
            if (sscanf(e->d_name, "log-%16llx.ndl", &x) == 1 && x > first)
                first = x;
        }
        closedir(d);
        seg_file(dir, first, path, sizeof path);
        struct stat st;
        CU_ASSERT_EQUAL(stat(path, &st), 0);
        CU_ASSERT_EQUAL((uint64_t)st.st_size, KERN_DLOG_SEG_HDR + durable - first);
        /* more appends meanwhile, then the retry */
        if (which == 1)
            for (unsigned j = 0; j < 5; j++, i++)
                append_i(l, i);
        CU_ASSERT_EQUAL(kern_dlog_flush(l), 0);
        CU_ASSERT_EQUAL(kern_dlog_durable(l), kern_dlog_end(l));
    }
    struct kern_dlog_stats st;
    kern_dlog_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.flush_errors, 30);
    CU_ASSERT_EQUAL(st.flushes, 30);
    CU_ASSERT(kern_dlog_segments(l) > 2);
    kern_dlog_close(l);
    static struct coll c;
    memset(&c, 0, sizeof c);
    struct kern_dlog_scan_info info;
    CU_ASSERT_EQUAL(kern_dlog_scan(dir, &OPTS, 0, collect, &c, &info), 0);
    CU_ASSERT_EQUAL(c.got, i); /* each once, in order (collect checks the sequence) */
    CU_ASSERT_EQUAL(c.bad, 0);
    CU_ASSERT_EQUAL(info.torn, 0);
}
#endif

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"roundtrip", test_roundtrip},
        {"group_commit", test_group_commit},
        {"torn_tail", test_torn_tail},
        {"torn_after_rotation", test_torn_after_rotation},
        {"corrupt_middle", test_corrupt_middle},
        {"bad_header", test_bad_header},
        {"append_checks", test_append_checks},
        {"trim", test_trim},
        {"discard", test_discard},
        {"gap", test_gap},
#ifdef NINES_FAULTS
        {"faults", test_faults},
#endif
        {NULL, NULL},
    };
    cu_add_suite("kern_dlog", setup, teardown, cases);
}
