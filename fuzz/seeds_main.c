/* Writes the seed corpora of the harnesses (fuzz/README.md "Seeds"):
 * fuzz_seeds OUTDIR writes OUTDIR/<harness>/<name> with a few valid
 * inputs each, made by the same encoders the nodes use. The cluster
 * file's seeds are copies of the tools/ folder's .conf files (made by `make fuzz-seeds`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arbitrator/arb_grant.h"
#include "dict/dict.h"
#include "fuzz_ids.h"
#include "kernel/kern_ckpt.h"
#include "kernel/kern_frag.h"
#include "kernel/kern_log.h"
#include "kernel/svc/ksvc.h"
#include "net/frame.h"
#include "net/net.h"
#include "nines_dict.pb-c.h"
#include "nines_txn.pb-c.h"
#include "nines_net.pb-c.h"
#include "supervisor/sup.h"

static const char *outdir;

static void put(const char *h, const char *name, const void *b, size_t n)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", outdir, h);
    if (mkdir(p, 0755) < 0 && errno != EEXIST) {
        perror(p);
        exit(1);
    }
    snprintf(p, sizeof p, "%s/%s/%s", outdir, h, name);
    FILE *fp = fopen(p, "wb");
    if (!fp || fwrite(b, 1, n, fp) != n || fclose(fp) != 0) {
        perror(p);
        exit(1);
    }
}

#define OK(x)                                                     \
    do {                                                          \
        if ((x) < 0) {                                            \
            fprintf(stderr, "fuzz_seeds: %s failed\n", #x);       \
            exit(1);                                              \
        }                                                         \
    } while (0)

/* A client answer seed: the mode byte (fuzz_client.c), then the body. */
static void put_msg(const char *h, const char *name, uint8_t mode, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n + 1);
    b[0] = mode;
    protobuf_c_message_pack(m, b + 1);
    put(h, name, b, n + 1);
    free(b);
}

static void seeds_client(void)
{
    Nines__DictGetRef r = NINES__DICT_GET_REF__INIT;
    r.error = -3;
    r.reason = "not a member";
    put_msg("client", "dict-get-ref", 1, &r.base);
    Nines__Value v[5];
    Nines__Value *pv[5];
    for (int i = 0; i < 5; i++) {
        nines__value__init(&v[i]);
        pv[i] = &v[i];
    }
    v[0].v_case = NINES__VALUE__V_I64;
    v[0].i64 = -42;
    v[1].v_case = NINES__VALUE__V_F64;
    v[1].f64 = 2.5;
    v[2].v_case = NINES__VALUE__V_STR;
    v[2].str = "abc";
    v[3].v_case = NINES__VALUE__V_RAW;
    v[3].raw.data = (uint8_t *)"\x00\x01\x02";
    v[3].raw.len = 3;
    v[4].v_case = NINES__VALUE__V_IS_NULL;
    v[4].is_null = 1;
    Nines__Row row = NINES__ROW__INIT;
    row.n_values = 5;
    row.values = pv;
    Nines__Row *rows[2] = {&row, &row};
    Nines__OpResult res = NINES__OP_RESULT__INIT;
    res.n_rows = 2;
    res.rows = rows;
    Nines__OpResult *results[1] = {&res};
    Nines__TxnConf conf = NINES__TXN_CONF__INIT;
    conf.req_id = 7;
    conf.n_results = 1;
    conf.results = results;
    put_msg("client", "txn-conf-rows", 2, &conf.base);
}

/* frame: one frame per message table row with an empty body, and all of
 * them in one stream */
static void seeds_frame(void)
{
    size_t cap = 1 << 16, all = 0;
    uint8_t *stream = malloc(cap);
    static const struct {
        uint32_t type;
        const char *name;
        const ProtobufCMessageDescriptor *desc;
    } hello[] = {
        {NINES__MSG_TYPE__HELLO_REQ, "HELLO_REQ", &nines__hello_req__descriptor},
        {NINES__MSG_TYPE__HELLO_CONF, "HELLO_CONF", &nines__hello_conf__descriptor},
        {NINES__MSG_TYPE__HELLO_REF, "HELLO_REF", &nines__hello_ref__descriptor},
        {NINES__MSG_TYPE__HELLO_AUTH, "HELLO_AUTH", &nines__hello_auth__descriptor},
    };
    uint32_t nh = sizeof hello / sizeof hello[0];
    for (uint32_t i = 0; i < nh + sup_msgtab_len; i++) {
        uint32_t t = i < nh ? hello[i].type : i - nh;
        struct rt_msg_entry h = {0};
        const struct rt_msg_entry *e = &sup_msgtab[i < nh ? 0 : t];
        if (i < nh) {
            h.name = hello[i].name;
            h.desc = hello[i].desc;
            h.svc = RT_SVC_SUP;
            e = &h;
        }
        if (e->svc == RT_SVC_NONE || !e->desc)
            continue;
        ProtobufCMessage *m = calloc(1, e->desc->sizeof_message);
        protobuf_c_message_init(e->desc, m);
        size_t bl = protobuf_c_message_get_packed_size(m);
        size_t n = net_env_size(2, 5, t, bl);
        uint8_t *f = malloc(NET_FRAME_HDR + n);
        net_frame_put_len(f, (uint32_t)n);
        net_env_pack(f + NET_FRAME_HDR, 2, 5, t, m, bl);
        put("frame", e->name, f, NET_FRAME_HDR + n);
        if (all + NET_FRAME_HDR + n <= cap) {
            memcpy(stream + all, f, NET_FRAME_HDR + n);
            all += NET_FRAME_HDR + n;
        }
        free(f);
        free(m);
    }
    put("frame", "all-types", stream, all);
    free(stream);
}

static void seeds_dict(void)
{
    static const struct dict_node nodes[] = {{1, 0}, {2, 0}, {3, 1}, {4, 1}};
    struct dict d;
    OK(dict_init(&d, nodes, 4));
    uint8_t *b;
    size_t n;
    OK(dict_encode(&d, &b, &n));
    put("dict", "empty", b, n);
    free(b);
    struct dict_column cols[3] = {
        {.name = "k", .type = DICT_T_STRING, .size = 12},
        {.name = "v", .type = DICT_T_VARBYTES, .size = 300, .nullable = true},
        {.name = "t", .type = DICT_T_TIMESTAMP},
    };
    uint16_t pk[] = {0, 2};
    struct dict_table_def h = {.name = "hashed", .ncols = 3, .cols = cols, .npk = 2, .pk = pk,
                               .method = DICT_FRAG_HASH, .nfrags = 4};
    OK(dict_create_table(&d, &h, NULL));
    struct dict_key sp[] = {{(const uint8_t *)"\x01m", 2}};
    struct dict_table_def r = h;
    snprintf(r.name, sizeof r.name, "ranged");
    r.method = DICT_FRAG_RANGE;
    r.nfrags = 0;
    r.nsplits = 1;
    r.splits = sp;
    OK(dict_create_table(&d, &r, NULL));
    OK(dict_encode(&d, &b, &n));
    put("dict", "two-tables", b, n);
    /* the client's DICT_GET_CONF carrying this image (mode byte 0) */
    Nines__DictGetConf g = NINES__DICT_GET_CONF__INIT;
    g.node_id = 1;
    g.version = d.version;
    g.image.data = b;
    g.image.len = n;
    put_msg("client", "dict-get-conf", 0, &g.base);
    free(b);
    dict_free(&d);
}

/* A primary with a few committed transactions: its checkpoint and its log. */
static void seeds_kern(void)
{
    struct kern_frag_def def = fuzz_frag_def();
    struct kern_frag *p;
    OK(kern_frag_create(&def, KERN_FRAG_PRIMARY, &p));
    for (int t = 0; t < 4; t++) {
        uint64_t txn = 10 + (uint64_t)t;
        for (int i = 0; i < 5; i++) {
            char nm[8];
            int nl = snprintf(nm, sizeof nm, "n%d", t * 5 + i);
            struct kern_val row[4] = {kern_v_i32(i), kern_v_bytes(KERN_T_VBYTES, nm, (uint32_t)nl),
                                      kern_v_i64(t * 100 + i),
                                      i % 2 ? kern_v_null(KERN_T_VSTR)
                                            : kern_v_bytes(KERN_T_VSTR, "note", 4)};
            uint8_t k[64];
            size_t kl;
            struct kern_rec *rec = NULL;
            OK(kern_frag_row(p, row, k, sizeof k, &kl, &rec));
            OK(kern_frag_insert(p, txn, k, kl, rec, NULL));
        }
        if (t == 2)
            OK(kern_frag_abort(p, txn, NULL));
        else
            OK(kern_frag_commit(p, txn, NULL));
    }
    /* the log as one batch, and its first records */
    size_t cap = 1 << 20, all = 0, first = 0;
    uint8_t *batch = malloc(cap);
    struct kern_log_cursor c;
    kern_log_cursor_init(&c, kern_frag_log(p), 1);
    const uint8_t *r;
    size_t n;
    int k = 0;
    while (kern_log_cursor_next(&c, &r, &n) == 0 && all + 2 + n <= cap && n < 65536) {
        batch[all] = (uint8_t)n;
        batch[all + 1] = (uint8_t)(n >> 8);
        memcpy(batch + all + 2, r, n);
        all += 2 + n;
        if (++k == 6)
            first = all;
    }
    put("redo", "whole-log", batch, all);
    if (first)
        put("redo", "first-6", batch, first);
    free(batch);

    struct kern_ckpt *ck;
    OK(kern_ckpt_begin(p, &ck));
    size_t fl = 0;
    uint8_t *file = NULL;
    for (;;) {
        int rc = kern_ckpt_step(ck, 3);
        OK(rc);
        uint8_t *b;
        size_t bl;
        OK(kern_ckpt_take(ck, &b, &bl));
        if (bl) {
            file = realloc(file, fl + bl);
            memcpy(file + fl, b, bl);
            fl += bl;
        }
        free(b);
        if (rc == 0)
            break;
    }
    kern_ckpt_free(ck);
    put("ckpt", "rows", file, fl);
    free(file);
    kern_frag_destroy(p);

    OK(kern_frag_create(&def, KERN_FRAG_PRIMARY, &p));
    OK(kern_ckpt_begin(p, &ck));
    while (kern_ckpt_step(ck, 3) > 0)
        ;
    uint8_t *b;
    size_t bl;
    OK(kern_ckpt_take(ck, &b, &bl));
    put("ckpt", "empty", b, bl);
    free(b);
    kern_ckpt_free(ck);
    kern_frag_destroy(p);
}

static void seeds_files(void)
{
    uint8_t b[1024];
    struct sup_nsf_set s = {.epoch = 42, .members = 0xf, .current = 0x5, .standby_only = 0x4};
    sup_nsf_encode(&s, FUZZ_NODE, FUZZ_CLUSTER, b);
    put("nsf", "set", b, SUP_NSF_BYTES);
    struct sup_nsf_set s0 = {.epoch = 1, .members = 0x3, .current = 0x3};
    sup_nsf_encode(&s0, FUZZ_NODE, FUZZ_CLUSTER, b);
    put("nsf", "first", b, SUP_NSF_BYTES);

    struct sup_gcp_file g = {.gci = 77, .wall_us = 1700000000000000ull,
                             .written_us = 1700000000000100ull, .seq = 3};
    OK(sup_gcp_file_encode(&g, FUZZ_NODE, FUZZ_CLUSTER, b));
    put("gcpfile", "gci77", b, SUP_GCP_FILE_BYTES);

    struct ksvc_rc_bound bd = {.gci = 77, .pos = 123456, .written_us = 1700000000000000ull};
    ksvc_rc_bound_encode(&bd, FUZZ_NODE, FUZZ_CLUSTER, b);
    put("rcbound", "bound", b, KSVC_RC_BOUND_BYTES);

    struct ksvc_ckpt_entry e[3] = {
        {.table = 1, .frag = 0, .redo_start_lsn = 5, .begin_lsn = 5, .dlog_pos = 100,
         .created_us = 1, .bytes = 4096, .records = 10, .file_crc = 0x1234, .role = 1},
        {.table = 1, .frag = 2, .redo_start_lsn = 9, .begin_lsn = 9, .dlog_pos = 200,
         .created_us = 2, .bytes = 8192, .records = 20, .file_crc = 0x5678, .role = 2},
        {.table = 3, .frag = 1, .redo_start_lsn = 1, .begin_lsn = 1, .dlog_pos = 0,
         .created_us = 3, .bytes = 128, .records = 0, .file_crc = 0x9abc, .role = 1},
    };
    struct ksvc_ckpt_manifest m = {.node = FUZZ_NODE, .cluster = FUZZ_CLUSTER, .seq = 4,
                                   .written_us = 1700000000000000ull, .dlog_keep = 50, .n = 3,
                                   .e = e};
    uint8_t *mb;
    size_t ml;
    OK(ksvc_ckpt_manifest_encode(&m, &mb, &ml));
    put("manifest", "three", mb, ml);
    free(mb);
    m.n = 0;
    OK(ksvc_ckpt_manifest_encode(&m, &mb, &ml));
    put("manifest", "empty", mb, ml);
    free(mb);

    struct arb_grant ag = {.epoch = 9, .members = 0xf, .current = 0x7, .prev_members = 0xf,
                           .coordinator = 2, .node = 3, .granted_us = 1700000000000000ull};
    snprintf(ag.cluster, sizeof ag.cluster, "fuzz");
    uint8_t ab[ARB_REC_SIZE];
    arb_rec_encode(&ag, ab);
    put("arbrec", "grant", ab, sizeof ab);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    mkdir(outdir, 0755);
    seeds_frame();
    seeds_dict();
    seeds_kern();
    seeds_files();
    seeds_client();
    return 0;
}
