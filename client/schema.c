/* Schema in the client (README.md "Schema"): table changes as dictionary
 * changes (DICT_CHANGE_REQ on the connection, the call ninesctl's
 * create-table makes), and the tables of the connection's dictionary copy
 * (route.c's fetch) as struct nines_table_info. */
#include "cli_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conv/conv.h"
#include "dict/dict.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"

/* A dictionary change waits at least this long (a two-phase change on
 * every node; ninesctl waits as long). */
#define CLI_DDL_TIMEOUT_MS 12000
/* After a change, the connected node's copy is fetched until it shows the
 * committed version: this many times, this far apart. */
#define CLI_DDL_REFETCH_TRIES 40
#define CLI_DDL_REFETCH_MS 25

/* The arrays nines_table_info points at, one set per table of c->dict. */
struct cli_schema_tab {
    struct nines_column *cols;
    uint32_t *pk;
    struct nines_value *splits;
    uint8_t *sbuf;             /* unescaped variable-length split values */
};

struct cli_schema {
    uint32_t n;
    struct cli_schema_tab *tabs;  /* parallel to c->dict->tables */
};

void cli_schema_free(struct nines_conn *c)
{
    struct cli_schema *s = c->schema;
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n; i++) {
        free(s->tabs[i].cols);
        free(s->tabs[i].pk);
        free(s->tabs[i].splits);
        free(s->tabs[i].sbuf);
    }
    free(s->tabs);
    free(s);
    c->schema = NULL;
}

/* ---- answers ---------------------------------------------------------- */

void cli_schema_on_lost(struct nines_conn *c, uint64_t gen, int rc)
{
    if (c->dchg.wait && c->dchg.gen == gen) {
        c->dchg.wait = false;
        c->dchg.done = true;
        c->dchg.rc = rc;
    }
}

int cli_schema_on_answer(struct nines_conn *c, uint32_t type, const uint8_t *body, size_t len)
{
    ProtobufCAllocator *al = arena_pb_allocator(&c->ans);
    if (type == NINES__MSG_TYPE__DICT_CHANGE_REF) {
        Nines__DictChangeRef *r = nines__dict_change_ref__unpack(al, len, body);
        if (!r)
            return cli_fail(c, NINES_EPROTO, "DICT_CHANGE_REF of %zu bytes does not decode", len);
        if (!c->dchg.wait) { /* answer to a change that timed out */
            c->stale++;
            return 0;
        }
        int err = r->error < 0 && r->error >= NINES_ERR_MIN_ ? r->error : NINES_EPROTO;
        cli_fail(c, err, "%s", r->reason && r->reason[0] ? r->reason : nines_strerror(err));
        c->dchg = (struct cli_dchg){.done = true, .rc = err};
        return 0;
    }
    Nines__DictChangeConf *a = nines__dict_change_conf__unpack(al, len, body);
    if (!a)
        return cli_fail(c, NINES_EPROTO, "DICT_CHANGE_CONF of %zu bytes does not decode", len);
    if (!c->dchg.wait) {
        c->stale++;
        return 0;
    }
    c->dchg = (struct cli_dchg){.done = true, .table_id = a->table_id, .version = a->version};
    return 0;
}

/* ---- changes ---------------------------------------------------------- */

static int enter(nines_conn *c, const char *fn)
{
    if (!c)
        return nines_err(NINES_EINVAL, "%s: NULL connection", fn);
    if (c->in_dispatch)
        return cli_fail(c, NINES_ESTATE, "%s called from a callback", fn);
    return 0;
}

/* Fetch the node's copy until it shows `version` (the node that forwarded
 * the change has committed it before the answer comes back; the retries
 * cover a node that saves it a moment later). On failure the copy is
 * dropped (the next nines_tables fetches again); the change stands. */
static void refetch(nines_conn *c, uint64_t version)
{
    for (int i = 0; i < CLI_DDL_REFETCH_TRIES; i++) {
        if (cli_dict_fetch(c) != 0)
            break;
        if (c->dict->version >= version)
            return;
        struct timespec ts = {0, CLI_DDL_REFETCH_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    cli_dict_free(c);
}

/* Send one dictionary change and wait for its answer; DICT_CHANGE_REF's
 * code and reason come back as they are. */
int cli_dict_change(nines_conn *c, const char *fn, Nines__DictChange *ch, uint32_t *table_id)
{
    int rc = cli_ensure_up(c);
    if (rc)
        return rc;
    if (c->dchg.wait)
        return cli_fail(c, NINES_ESTATE, "%s: a dictionary change is in progress", fn);
    Nines__DictChangeReq req = NINES__DICT_CHANGE_REQ__INIT;
    req.change = ch;
    if ((rc = cli_queue(c, NINES__MSG_TYPE__DICT_CHANGE_REQ, &req.base)))
        return rc;
    c->dchg = (struct cli_dchg){.wait = true, .gen = c->gen};
    int ms = c->timeout_ms > CLI_DDL_TIMEOUT_MS ? c->timeout_ms : CLI_DDL_TIMEOUT_MS;
    rc = cli_wait(c, &c->dchg.done, cli_now_ms() + (uint64_t)ms);
    if (rc) {
        /* The node's answer carries nothing to match it by (DictChangeConf
         * .ref is not echoed to clients): the connection goes, so that a
         * late answer cannot be taken for the next change's. */
        c->dchg.wait = false;
        uint32_t node = c->node_id;
        cli_lost(c, NINES_ETIMEDOUT, "no answer to a dictionary change");
        return cli_fail(c, NINES_ETIMEDOUT, "%s: no answer to the dictionary change from node "
                        "%u (%s) within %d ms; it may still be committed (the connection was "
                        "closed)", fn, node, c->addrs[c->cur], ms);
    }
    if (c->dchg.rc) /* the refusal's reason (or the loss) is the detail, as it is */
        return nines_err(c->dchg.rc, "%s", c->detail);
    if (table_id)
        *table_id = c->dchg.table_id;
    refetch(c, c->dchg.version);
    return 0;
}

/* Split value i of a range table: the wire value it travels as, then the
 * nodes' conversion and key encoding of the first key column (conv_key,
 * as ninesctl's --range-splits). */
static int encode_split(nines_conn *c, struct arena *a, const struct nines_table_def *def,
                        uint32_t i, ProtobufCBinaryData *out)
{
    const struct nines_column *col = &def->cols[def->pk[0]];
    int kt = kern_type_from_dict(col->type);
    if (kt < 0)
        return cli_fail(c, NINES_EINVAL, "table %s: key column %s has type %u, not a column "
                        "type", def->name, col->name, col->type);
    struct conv_col cc = {def->name, col->name, {(uint8_t)kt, 0, col->size}};
    Nines__Value pv;
    Nines__Value *pp = &pv;
    int rc = cli_val_to_pb(a, &def->splits[i], &pv);
    uint8_t key[KERN_KEY_MAX];
    int n = rc ? rc : conv_key(&cc, 1, &pp, 1, true, "split", key, sizeof key);
    if (n < 0)
        return cli_fail(c, n, "table %s: split point %u: %s", def->name, i, nines_errdetail());
    if (n == 0)
        return cli_fail(c, NINES_EINVAL, "table %s: split point %u is empty", def->name, i);
    out->data = arena_alloc(a, (size_t)n);
    if (!out->data)
        return cli_fail(c, NINES_ENOMEM, "no memory for split point %u", i);
    memcpy(out->data, key, (size_t)n);
    out->len = (size_t)n;
    return 0;
}

/* def -> DictTableDef (arrays from a); checks what the conversion needs,
 * the nodes validate the rest (dict_table_validate). */
static int def_to_pb(nines_conn *c, struct arena *a, const struct nines_table_def *def,
                     Nines__DictTableDef *t)
{
    const char *tn = def->name ? def->name : "";
    if (!tn[0])
        return cli_fail(c, NINES_EINVAL, "nines_table_create: no table name");
    if (def->ncols == 0 || def->ncols > DICT_MAX_COLS || !def->cols)
        return cli_fail(c, NINES_EINVAL, "table %s: %u columns (1..%d, cols %s)", tn,
                        def->ncols, DICT_MAX_COLS, def->cols ? "given" : "NULL");
    if (def->npk == 0 || def->npk > DICT_MAX_PK || !def->pk)
        return cli_fail(c, NINES_EINVAL, "table %s: %u key columns (1..%d, pk %s)", tn, def->npk,
                        DICT_MAX_PK, def->pk ? "given" : "NULL");
    uint32_t method = def->method ? def->method : DICT_FRAG_HASH;
    if (method != DICT_FRAG_HASH && method != DICT_FRAG_RANGE)
        return cli_fail(c, NINES_EINVAL, "table %s: method %u (1 hash, 2 range)", tn, method);
    if (method == DICT_FRAG_HASH && def->nsplits)
        return cli_fail(c, NINES_EINVAL, "table %s: %u split points for a hash table", tn,
                        def->nsplits);
    if (def->nsplits >= DICT_MAX_FRAGS || (def->nsplits && !def->splits))
        return cli_fail(c, NINES_EINVAL, "table %s: %u split points (below %d, splits %s)", tn,
                        def->nsplits, DICT_MAX_FRAGS, def->splits ? "given" : "NULL");
    t->name = (char *)tn;
    t->columns = arena_alloc(a, def->ncols * sizeof *t->columns);
    Nines__DictColumn *cols = arena_alloc(a, def->ncols * sizeof *cols);
    t->pk = arena_alloc(a, def->npk * sizeof *t->pk);
    if (!t->columns || !cols || !t->pk)
        return cli_fail(c, NINES_ENOMEM, "no memory for table %s", tn);
    for (uint32_t i = 0; i < def->ncols; i++) {
        const struct nines_column *nc = &def->cols[i];
        if (!nc->name || !nc->name[0])
            return cli_fail(c, NINES_EINVAL, "table %s: column %u has no name", tn, i);
        nines__dict_column__init(&cols[i]);
        cols[i].name = (char *)nc->name;
        cols[i].type = nc->type;
        cols[i].size = nc->size;
        cols[i].nullable = nc->nullable != 0;
        cols[i].sqltype = nc->sqltype;
        cols[i].sqltypmod = nc->sqltypmod;
        cols[i].hidden = nc->hidden != 0;
        t->columns[i] = &cols[i];
    }
    t->n_columns = def->ncols;
    for (uint32_t i = 0; i < def->npk; i++) {
        if (def->pk[i] >= def->ncols)
            return cli_fail(c, NINES_EINVAL, "table %s: key column %u does not exist (%u "
                            "columns)", tn, def->pk[i], def->ncols);
        t->pk[i] = def->pk[i];
    }
    t->n_pk = def->npk;
    t->method = method;
    t->replicas = def->replicas;
    t->scheme = def->scheme;
    if (method == DICT_FRAG_HASH) {
        t->nfrags = def->nfrags;
        if (!t->nfrags) { /* one per node of the cluster */
            if (!c->dict) {
                int rc = cli_dict_fetch(c);
                if (rc)
                    return rc;
            }
            t->nfrags = c->dict->nnodes;
        }
        return 0;
    }
    if (def->nsplits) {
        t->splits = arena_alloc(a, def->nsplits * sizeof *t->splits);
        if (!t->splits)
            return cli_fail(c, NINES_ENOMEM, "no memory for %u split points", def->nsplits);
    }
    for (uint32_t i = 0; i < def->nsplits; i++) {
        int rc = encode_split(c, a, def, i, &t->splits[i]);
        if (rc)
            return rc;
    }
    t->n_splits = def->nsplits;
    return 0;
}

int nines_table_create(nines_conn *c, const struct nines_table_def *def, uint32_t *id_out)
{
    int rc = enter(c, "nines_table_create");
    if (rc)
        return rc;
    if (!def)
        return cli_fail(c, NINES_EINVAL, "nines_table_create: NULL definition");
    struct arena a;
    arena_init(&a, 4096);
    Nines__DictTableDef t = NINES__DICT_TABLE_DEF__INIT;
    Nines__DictChange ch = NINES__DICT_CHANGE__INIT;
    ch.op = NINES__DICT_OP__DICT_OP_CREATE_TABLE;
    ch.table = &t;
    uint32_t id = 0;
    rc = def_to_pb(c, &a, def, &t);
    if (rc == 0)
        rc = cli_dict_change(c, "nines_table_create", &ch, &id);
    arena_destroy(&a);
    if (rc == 0 && id_out)
        *id_out = id;
    return rc;
}

static int name_op(nines_conn *c, const char *fn, Nines__DictOp op, const char *name,
                   const char *with, bool on)
{
    int rc = enter(c, fn);
    if (rc)
        return rc;
    if (!name || !name[0])
        return cli_fail(c, NINES_EINVAL, "%s: no table name", fn);
    Nines__DictChange ch = NINES__DICT_CHANGE__INIT;
    ch.op = op;
    ch.name = (char *)name;
    ch.with = (char *)(with ? with : "");
    ch.readonly = on;
    return cli_dict_change(c, fn, &ch, NULL);
}

int nines_table_drop(nines_conn *c, const char *name)
{
    return name_op(c, "nines_table_drop", NINES__DICT_OP__DICT_OP_DROP_TABLE, name, NULL, false);
}

int nines_table_replace(nines_conn *c, const char *name, const char *with)
{
    int rc = enter(c, "nines_table_replace");
    if (rc)
        return rc;
    if (!with || !with[0])
        return cli_fail(c, NINES_EINVAL, "nines_table_replace: no replacement table name");
    return name_op(c, "nines_table_replace", NINES__DICT_OP__DICT_OP_REPLACE_TABLE, name, with,
                   false);
}

int nines_table_set_readonly(nines_conn *c, const char *name, int on)
{
    return name_op(c, "nines_table_set_readonly", NINES__DICT_OP__DICT_OP_SET_READONLY, name,
                   NULL, on != 0);
}

/* ---- listing ---------------------------------------------------------- */

/* Split point values of range table t (decoded from its split keys). */
static int build_splits(const struct dict_table *t, struct cli_schema_tab *x)
{
    uint32_t ns = t->def.nsplits;
    if (!ns)
        return 0;
    struct conv_col cc;
    int rc = conv_col_of(t, t->def.pk[0], &cc);
    if (rc)
        return rc;
    size_t total = 0;
    for (uint32_t i = 0; i < ns; i++)
        total += t->def.splits[i].len;
    x->splits = calloc(ns, sizeof *x->splits);
    x->sbuf = malloc(total ? total : 1);
    if (!x->splits || !x->sbuf)
        return nines_err(NINES_ENOMEM, "no memory for the split points of table %s",
                         t->def.name);
    size_t off = 0;
    for (uint32_t i = 0; i < ns; i++) {
        const struct dict_key *k = &t->def.splits[i];
        struct kern_val kv;
        rc = kern_key_decode(&cc.kc, 1, k->bytes, k->len, &kv, x->sbuf + off, total - off);
        if (rc)
            return rc;
        struct nines_value *v = &x->splits[i];
        if (kv.null) {
            *v = nines_v_null();
        } else {
            switch (kv.type) {
            case KERN_T_INT32:
                *v = nines_v_int64(kv.u.i32);
                break;
            case KERN_T_INT64:
            case KERN_T_TS:
                *v = nines_v_int64(kv.u.i64);
                break;
            case KERN_T_DOUBLE:
                *v = nines_v_double(kv.u.d);
                break;
            case KERN_T_FSTR:
            case KERN_T_VSTR:
                *v = nines_v_string(kv.u.p, kv.len);
                break;
            default:
                *v = nines_v_bytes(kv.u.p, kv.len);
                break;
            }
        }
        off += k->len;
    }
    return 0;
}

static int build_tab(const struct dict_table *t, struct cli_schema_tab *x)
{
    const struct dict_table_def *d = &t->def;
    x->cols = calloc(d->ncols ? d->ncols : 1, sizeof *x->cols);
    x->pk = calloc(d->npk ? d->npk : 1, sizeof *x->pk);
    if (!x->cols || !x->pk)
        return nines_err(NINES_ENOMEM, "no memory for the columns of table %s", d->name);
    for (uint32_t i = 0; i < d->ncols; i++) {
        const struct dict_column *dc = &d->cols[i];
        x->cols[i] = (struct nines_column){
            .name = dc->name, .type = dc->type, .size = dc->size, .nullable = dc->nullable,
            .sqltype = dc->sqltype, .sqltypmod = dc->sqltypmod, .hidden = dc->hidden};
    }
    for (uint32_t i = 0; i < d->npk; i++)
        x->pk[i] = d->pk[i];
    return build_splits(t, x);
}

/* The connection's copy (fetched when asked or missing) with its arrays. */
static int have_schema(nines_conn *c, int refresh)
{
    if (refresh || !c->dict) {
        int rc = cli_dict_fetch(c);
        if (rc)
            return rc;
    }
    if (c->schema)
        return 0;
    struct cli_schema *s = calloc(1, sizeof *s);
    if (s)
        s->tabs = calloc(c->dict->ntables ? c->dict->ntables : 1, sizeof *s->tabs);
    if (!s || !s->tabs) {
        free(s);
        return cli_fail(c, NINES_ENOMEM, "no memory for the table list");
    }
    c->schema = s;
    for (uint32_t i = 0; i < c->dict->ntables; i++) {
        s->n = i + 1;
        int rc = build_tab(c->dict->tables[i], &s->tabs[i]);
        if (rc) {
            cli_schema_free(c);
            return cli_fail(c, rc, "%s", nines_errdetail());
        }
    }
    return 0;
}

static void fill_info(const struct dict *d, uint32_t i, const struct cli_schema_tab *x,
                      struct nines_table_info *out)
{
    const struct dict_table *t = d->tables[i];
    memset(out, 0, sizeof *out);
    out->id = t->id;
    out->version = d->version;
    out->readonly = t->readonly;
    out->def = (struct nines_table_def){
        .name = t->def.name, .ncols = t->def.ncols, .cols = x->cols, .npk = t->def.npk,
        .pk = x->pk, .method = t->def.method, .nfrags = t->nfrags, .nsplits = t->def.nsplits,
        .splits = x->splits, .replicas = t->def.replicas, .scheme = t->def.scheme};
}

int nines_tables(nines_conn *c, int refresh, nines_table_fn fn, void *arg)
{
    int rc = enter(c, "nines_tables");
    if (rc)
        return rc;
    if (!fn)
        return cli_fail(c, NINES_EINVAL, "nines_tables: NULL callback");
    if ((rc = have_schema(c, refresh)))
        return rc;
    const struct dict *d = c->dict;
    for (uint32_t i = 0; i < d->ntables; i++) {
        struct nines_table_info info;
        fill_info(d, i, &c->schema->tabs[i], &info);
        if ((rc = fn(arg, &info)) != 0)
            return rc;
    }
    return 0;
}

int nines_table_get(nines_conn *c, const char *name, int refresh, struct nines_table_info *out)
{
    int rc = enter(c, "nines_table_get");
    if (rc)
        return rc;
    if (!name || !out)
        return cli_fail(c, NINES_EINVAL, "nines_table_get: NULL %s", name ? "out" : "name");
    if ((rc = have_schema(c, refresh)))
        return rc;
    const struct dict *d = c->dict;
    for (uint32_t i = 0; i < d->ntables; i++)
        if (!strcmp(d->tables[i]->def.name, name)) {
            fill_info(d, i, &c->schema->tabs[i], out);
            return 0;
        }
    return cli_fail(c, NINES_ENOTFOUND, "table '%s' not found (dictionary version %" PRIu64
                    " from node %u)", name, d->version, c->dict_from);
}
