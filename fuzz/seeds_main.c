/* Writes the seed corpora of the harnesses (fuzz/README.md "Seeds"):
 * fuzz_seeds OUTDIR writes OUTDIR/<harness>/<name> with a few valid
 * inputs each, made by the same encoders the nodes use. The cluster
 * file's seeds are copies of the tools/ folder's .conf files (made by `make fuzz-seeds`). */
#include <errno.h>
#include <stdbool.h>
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
#include "scram.h"
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
    /* format 4's users section: an admin and a reader */
    char v[256];
    OK(scram_verifier_make("pw-admin", 8, (const uint8_t *)"0123456789abcdef", 16, 4096, v,
                           sizeof v));
    OK(dict_user_create(&d, "admin", DICT_ROLE_ADMIN, v));
    OK(scram_verifier_make("pw-reader", 9, (const uint8_t *)"fedcba9876543210", 16, 4096, v,
                           sizeof v));
    OK(dict_user_create(&d, "ops.reader", DICT_ROLE_READER, v));
    OK(dict_encode(&d, &b, &n));
    put("dict", "users", b, n);
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


/* ---- the SQL front end (fuzz_sql.c) ---- */

/* sqlstmt: SQL text; after a NUL byte, Bind's data: [k][k oid indices of
 * fuzz_sql.c's table][values separated by NUL bytes] */
static void put_sql(const char *name, const char *sql, const void *tail, size_t tl)
{
    size_t n = strlen(sql);
    uint8_t *b = malloc(n + 1 + tl);
    memcpy(b, sql, n);
    b[n] = 0;
    if (tl)
        memcpy(b + n + 1, tail, tl);
    put("sqlstmt", name, b, tl ? n + 1 + tl : n);
    free(b);
}

static const char dt_query[] =
    "SELECT n.nspname as \"Schema\",\n  c.relname as \"Name\",\n  CASE c.relkind WHEN 'r' "
    "THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN "
    "'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign "
    "table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "
    "\"Type\",\n  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"\nFROM "
    "pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = "
    "c.relnamespace\n     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam\nWHERE "
    "c.relkind IN ('r','p','')\n      AND n.nspname <> 'pg_catalog'\n      AND n.nspname !~ "
    "'^pg_toast'\n      AND n.nspname <> 'information_schema'\n  AND "
    "pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 1,2;";

static const char *const sql_seeds[][2] = {
    {"create-tables",
     "drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, "
     "pgbench_tellers;\ncreate table pgbench_history(tid int,bid int,aid    int,delta "
     "int,mtime timestamp,filler char(22));\ncreate table pgbench_tellers(tid int not "
     "null,bid int,tbalance int,filler char(84)) with (fillfactor=100);\ncreate table "
     "pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84)) with "
     "(fillfactor=100);\ncreate table pgbench_branches(bid int not null,bbalance int,filler "
     "char(88)) with (fillfactor=100)"},
    {"create-with", "CREATE TABLE IF NOT EXISTS s (imsi bigint, slot smallint, name "
     "varchar(16) NOT NULL, b bytea, t text, ts timestamptz, ok boolean, PRIMARY KEY (imsi, "
     "slot)) WITH (fragments = 8, partition = range, splits = '100,200', replicas = 2, "
     "scheme = circular)"},
    {"add-pk", "alter table pgbench_branches add primary key (bid)"},
    {"truncate", "truncate table pgbench_accounts, pgbench_branches, pgbench_history, "
     "pgbench_tellers"},
    {"insert-branches", "insert into pgbench_branches(bid,bbalance) values(1,0)"},
    {"insert-history", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES "
     "($1, $2, $3, $4, CURRENT_TIMESTAMP);"},
    {"update-accounts", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"},
    {"update-tellers", "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;"},
    {"select-abalance", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"},
    {"tpcb-simple",
     "BEGIN;\nUPDATE pgbench_accounts SET abalance = abalance + -4112 WHERE aid = 71;\n"
     "SELECT abalance FROM pgbench_accounts WHERE aid = 71;\nUPDATE pgbench_tellers SET "
     "tbalance = tbalance + -4112 WHERE tid = 3;\nUPDATE pgbench_branches SET bbalance = "
     "bbalance + -4112 WHERE bid = 1;\nINSERT INTO pgbench_history (tid, bid, aid, delta, "
     "mtime) VALUES (3, 1, 71, -4112, CURRENT_TIMESTAMP);\nEND;"},
    {"copy", "copy pgbench_accounts from stdin with (freeze on)"},
    {"copy-cols", "COPY t (k1, k2, v, tx) FROM STDIN WITH (FORMAT text, DELIMITER ',', NULL "
     "'\\N')"},
    {"select-count", "select count(*) from pgbench_branches"},
    {"select-where", "SELECT k1, k2, v || 'x', lower(tx), length(by), coalesce(d, r, 0) * 2 "
     "FROM t WHERE k1 = 5 AND k2 BETWEEN 1 AND 3 AND v LIKE 'a%' ORDER BY k2 DESC LIMIT 10 "
     "OFFSET 1"},
    {"select-in", "select * from t where k1 in (1, 2, 3) and not b is null"},
    {"select-const", "SELECT 1, 'a'::text, 2.5::float8, now(), version(), "
     "current_database(), current_user, abs(-3), 7 % 3, 1 / 2, upper('x'), "
     "'2026-12-04 10:00:00'::timestamp, '\\x41'::bytea, true, NULL IS NULL"},
    {"delete", "delete from pgbench_history where tid = 3 or delta < 0"},
    {"vacuum", "vacuum pgbench_branches; analyze pgbench_tellers; discard all"},
    {"set-show", "SET application_name = 'pgbench'; SHOW application_name; RESET ALL; SHOW "
     "transaction_isolation; SET extra_float_digits = 3; set local nines.defer_updates to "
     "on; show all"},
    {"begin-rollback", "START TRANSACTION ISOLATION LEVEL REPEATABLE READ; select 1/0; "
     "select 2; rollback; commit"},
    {"dt", dt_query},
    {"d-attr", "SELECT a.attname,\n  pg_catalog.format_type(a.atttypid, a.atttypmod),\n  "
     "a.attnotnull, a.attnum\nFROM pg_catalog.pg_attribute a\nWHERE a.attrelid = '16389' "
     "AND a.attnum > 0 AND NOT a.attisdropped\nORDER BY a.attnum;"},
    {"d-class", "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     "
     "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relname "
     "OPERATOR(pg_catalog.~) '^(pgbench_accounts)$' COLLATE pg_catalog.default\n  AND "
     "pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 2, 3;"},
    {"partstrat", "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from "
     "pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = "
     "c.relnamespace) cross join lateral (select pg_catalog.array_position"
     "(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join "
     "pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join "
     "pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = "
     "'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1"},
    {"is-columns", "select column_name, data_type, is_nullable from "
     "information_schema.columns where table_name = 't' order by ordinal_position"},
    {"index", "SELECT c2.relname, i.indisprimary, pg_catalog.pg_get_indexdef(i.indexrelid, "
     "0, true) FROM pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_index i "
     "WHERE c.oid = '16385' AND c.oid = i.indrelid AND i.indexrelid = c2.oid"},
    {"syntax-error", "SELEC 1; select * from nowhere"},
    {"empty", ""},
};

static void seeds_sql(void)
{
    for (size_t i = 0; i < sizeof sql_seeds / sizeof sql_seeds[0]; i++)
        put_sql(sql_seeds[i][0], sql_seeds[i][1], NULL, 0);
    /* Parse with declared types (int4, int4), Bind text values */
    static const uint8_t upd[] = {2, 6, 6, '-', '4', '1', '1', '2', 0, '7', '1'};
    put_sql("update-accounts-bind", "UPDATE pgbench_accounts SET abalance = abalance + $1 "
            "WHERE aid = $2", upd, sizeof upd);
    /* no types declared: inferred; the values' count and a NULL */
    static const uint8_t ins[] = {0, '3', 0, '1', 0, '7', 0, 0xff};
    put_sql("insert-history-bind", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
            "VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)", ins, sizeof ins);
    /* a no-FROM SELECT run with its parameters: int8, text, timestamptz, bytea */
    static const uint8_t sel[] = {4, 4, 7, 15, 2, '9', '9', 0, 'h', 'i', 0, '2', '0', '2', '6',
                                  '-', '1', '2', '-', '0', '4', 0, '\\', 'x', '4', '1'};
    put_sql("select-params-bind", "SELECT $1 + 1, $2 || 'x', $3, $4", sel, sizeof sel);
}

/* pgwmsg: a client's bytes. */
struct mb {
    uint8_t b[8192];
    size_t n;
    size_t at;  /* the message being built */
};
static void mb_raw(struct mb *m, const void *p, size_t n)
{
    memcpy(m->b + m->n, p, n);
    m->n += n;
}
static void mb_i32(struct mb *m, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    mb_raw(m, x, 4);
}
static void mb_i16(struct mb *m, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    mb_raw(m, x, 2);
}
static void mb_str(struct mb *m, const char *s) { mb_raw(m, s, strlen(s) + 1); }
static void mb_begin(struct mb *m, char type)
{
    if (type)
        mb_raw(m, &type, 1);
    m->at = m->n;
    mb_i32(m, 0);
}
static void mb_end(struct mb *m)
{
    uint32_t l = (uint32_t)(m->n - m->at);
    m->b[m->at] = (uint8_t)(l >> 24);
    m->b[m->at + 1] = (uint8_t)(l >> 16);
    m->b[m->at + 2] = (uint8_t)(l >> 8);
    m->b[m->at + 3] = (uint8_t)l;
}
static void mb_startup(struct mb *m, bool ssl)
{
    if (ssl) {
        mb_begin(m, 0);
        mb_i32(m, 80877103);
        mb_end(m);
    }
    mb_begin(m, 0);
    mb_i32(m, 196608);
    mb_str(m, "user");
    mb_str(m, "fuzz");
    mb_str(m, "database");
    mb_str(m, "fuzzdb");
    mb_str(m, "application_name");
    mb_str(m, "pgbench");
    mb_str(m, "client_encoding");
    mb_str(m, "UTF8");
    mb_raw(m, "", 1);
    mb_end(m);
}
static void mb_query(struct mb *m, const char *sql)
{
    mb_begin(m, 'Q');
    mb_str(m, sql);
    mb_end(m);
}
static void mb_simple(struct mb *m, char t)
{
    mb_begin(m, t);
    mb_end(m);
}
static void mb_parse(struct mb *m, const char *name, const char *sql, int n, const uint32_t *oids)
{
    mb_begin(m, 'P');
    mb_str(m, name);
    mb_str(m, sql);
    mb_i16(m, (uint16_t)n);
    for (int i = 0; i < n; i++)
        mb_i32(m, oids[i]);
    mb_end(m);
}
static void mb_bind(struct mb *m, const char *portal, const char *stmt, int n,
                    const char *const *vals, int bin_result)
{
    mb_begin(m, 'B');
    mb_str(m, portal);
    mb_str(m, stmt);
    mb_i16(m, 0); /* all parameters text */
    mb_i16(m, (uint16_t)n);
    for (int i = 0; i < n; i++) {
        if (!vals[i]) {
            mb_i32(m, 0xffffffffu);
            continue;
        }
        mb_i32(m, (uint32_t)strlen(vals[i]));
        mb_raw(m, vals[i], strlen(vals[i]));
    }
    mb_i16(m, bin_result ? 1 : 0);
    if (bin_result)
        mb_i16(m, 1);
    mb_end(m);
}
static void mb_named(struct mb *m, char t, char sub, const char *name)
{
    mb_begin(m, t);
    if (sub)
        mb_raw(m, &sub, 1);
    mb_str(m, name);
    if (t == 'E')
        mb_i32(m, 0);
    mb_end(m);
}

static void seeds_pgw(void)
{
    struct mb *m = calloc(1, sizeof *m);
    /* startup + Query + Parse/Bind/Describe/Execute/Sync + Terminate */
    mb_startup(m, true);
    mb_query(m, "SET application_name = 'x'; SELECT 1, 'a'::text; BEGIN; SELECT 2; END");
    static const uint32_t i4[2] = {23, 23};
    mb_parse(m, "P0_1", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
             2, i4);
    static const char *const v2[2] = {"-4112", "71"};
    mb_bind(m, "", "P0_1", 2, v2, 0);
    mb_named(m, 'D', 'P', "");
    mb_named(m, 'E', 0, "");
    mb_simple(m, 'S');
    mb_parse(m, "", "SELECT $1::int8 + 1, $2", 0, NULL);
    static const char *const v3[2] = {"41", NULL};
    mb_named(m, 'D', 'S', "");
    mb_bind(m, "p", "", 2, v3, 1);
    mb_named(m, 'D', 'P', "p");
    mb_named(m, 'E', 0, "p");
    mb_named(m, 'C', 'P', "p");
    mb_named(m, 'C', 'S', "P0_1");
    mb_simple(m, 'H');
    mb_simple(m, 'S');
    mb_simple(m, 'X');
    put("pgwmsg", "startup-query-extended", m->b, m->n);

    /* COPY: refused without the cluster; the CopyData that follows is dropped */
    m->n = 0;
    mb_startup(m, false);
    mb_query(m, "copy pgbench_accounts from stdin with (freeze on)");
    mb_begin(m, 'd');
    mb_raw(m, "1\t1\t0\t\n2\t1\t0\t\n", 16);
    mb_end(m);
    mb_simple(m, 'c');
    mb_begin(m, 'f');
    mb_str(m, "aborted");
    mb_end(m);
    mb_query(m, "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN "
             "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN "
             "('r','p','') ORDER BY 1,2;");
    mb_query(m, "");
    mb_begin(m, 'F');
    mb_i32(m, 1);
    mb_end(m);
    mb_simple(m, 'X');
    put("pgwmsg", "startup-copy-catalog", m->b, m->n);

    /* an extended-protocol error: discarded up to Sync */
    m->n = 0;
    mb_startup(m, false);
    mb_parse(m, "s", "SELEC 1", 0, NULL);
    mb_bind(m, "", "s", 0, NULL, 0);
    mb_named(m, 'E', 0, "");
    mb_simple(m, 'S');
    mb_parse(m, "s", "BEGIN", 0, NULL);
    mb_bind(m, "", "s", 0, NULL, 0);
    mb_named(m, 'E', 0, "");
    mb_named(m, 'E', 0, "");
    mb_simple(m, 'S');
    put("pgwmsg", "ext-error", m->b, m->n);

    /* binary parameters of every type with a binary form, results in binary */
    m->n = 0;
    mb_startup(m, false);
    static const uint32_t bo[10] = {16, 21, 23, 20, 700, 701, 1114, 1700, 17, 1184};
    mb_parse(m, "b", "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10", 10, bo);
    mb_begin(m, 'B');
    mb_str(m, "");
    mb_str(m, "b");
    mb_i16(m, 1);
    mb_i16(m, 1); /* every parameter binary */
    mb_i16(m, 10);
    static const uint8_t pv[] = {
        0, 0, 0, 1, 1,                                   /* bool t */
        0, 0, 0, 2, 0xff, 0xfe,                          /* int2 -2 */
        0, 0, 0, 4, 0, 0, 0x30, 0x39,                    /* int4 12345 */
        0, 0, 0, 8, 0x80, 0, 0, 0, 0, 0, 0, 0,           /* int8 min */
        0, 0, 0, 4, 0x3f, 0xc0, 0, 0,                    /* float4 1.5 */
        0, 0, 0, 8, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, /* float8 pi */
        0, 0, 0, 8, 0, 0x02, 0x0b, 0x36, 0x4f, 0x9c, 0xa0, 0, /* timestamp */
        0, 0, 0, 10, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x04, 0xd2, /* numeric -1234 */
        0, 0, 0, 3, 0, 1, 2,                             /* bytea */
        0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* timestamptz */
    };
    mb_raw(m, pv, sizeof pv);
    mb_i16(m, 1);
    mb_i16(m, 1); /* every result binary */
    mb_end(m);
    mb_named(m, 'D', 'P', "");
    mb_named(m, 'E', 0, "");
    mb_simple(m, 'S');
    put("pgwmsg", "binary-params", m->b, m->n);

    /* CancelRequest (never answered) */
    m->n = 0;
    mb_begin(m, 0);
    mb_i32(m, 80877102);
    mb_i32(m, 12345);
    mb_i32(m, 0x5eed);
    mb_end(m);
    put("pgwmsg", "cancel", m->b, m->n);

    /* protocol 3.1 with a _pq_ option: NegotiateProtocolVersion; GSSENCRequest first */
    m->n = 0;
    mb_begin(m, 0);
    mb_i32(m, 80877104);
    mb_end(m);
    mb_begin(m, 0);
    mb_i32(m, 196609);
    mb_str(m, "user");
    mb_str(m, "fuzz");
    mb_str(m, "_pq_.compression");
    mb_str(m, "on");
    mb_str(m, "options");
    mb_str(m, "-c search_path=public --DateStyle=ISO");
    mb_raw(m, "", 1);
    mb_end(m);
    mb_query(m, "show search_path");
    put("pgwmsg", "negotiate", m->b, m->n);
    free(m);
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
    seeds_sql();
    seeds_pgw();
    return 0;
}
