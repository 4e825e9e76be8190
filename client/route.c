/* Routing in the client: key -> fragment with the node's own functions.
 * The table definitions come from the connected node (DICT_GET_REQ, the
 * admin read `ninesctl tables` and the benchmark loader use) and are kept
 * per connection; the key is encoded by kern_key_encode over the columns
 * kern_type_from_dict gives, and routed by dict_route: the same three functions
 * the node's transaction controller runs (README.md "Routing"). */
#include "cli_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict/dict.h"
#include "kernel/kern_key.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"

/* ---- key encoding ----------------------------------------------------- */

static const char *vtype_name(enum nines_vtype t)
{
    switch (t) {
    case NINES_V_NULL:
        return "NULL";
    case NINES_V_INT64:
        return "an int64 value";
    case NINES_V_DOUBLE:
        return "a double value";
    case NINES_V_STRING:
        return "a string value";
    case NINES_V_BYTES:
        return "a bytes value";
    default:
        return "an unknown value type";
    }
}

/* Value v for key column ci of t -> typed kernel value. The accepted
 * value types per column type are the node's (txctl/txc_route.c to_kval):
 * int32/int64/timestamp take NINES_V_INT64 (int32 in range), double takes
 * NINES_V_DOUBLE, string/varstring NINES_V_STRING without NUL bytes,
 * bytes/varbytes NINES_V_BYTES, NULL only a nullable column. */
static int key_val(const struct dict_table *t, uint32_t ci, const struct nines_value *v,
                   struct kern_col *kc, struct kern_val *out)
{
    const struct dict_column *col = &t->def.cols[ci];
    int kt = kern_type_from_dict(col->type);
    if (kt < 0)
        return nines_err(NINES_ETYPE, "table %s column %s has unknown type code %u",
                         t->def.name, col->name, col->type);
    kc->type = (uint8_t)kt;
    kc->nullable = col->nullable;
    kc->size = col->size;
    if (v->type == NINES_V_NULL) {
        if (!col->nullable)
            return nines_err(NINES_ETYPE, "table %s column %s (%s) is NOT NULL but got NULL",
                             t->def.name, col->name, dict_type_name(col->type));
        *out = kern_v_null(kc->type);
        return 0;
    }
    bool ok = false;
    switch (kc->type) {
    case KERN_T_INT32:
        if (v->type == NINES_V_INT64) {
            if (v->u.i64 < INT32_MIN || v->u.i64 > INT32_MAX)
                return nines_err(NINES_ETYPE, "table %s column %s (int32): %" PRId64
                                 " is out of range", t->def.name, col->name, v->u.i64);
            *out = kern_v_i32((int32_t)v->u.i64);
            ok = true;
        }
        break;
    case KERN_T_INT64:
    case KERN_T_TS:
        if (v->type == NINES_V_INT64) {
            *out = kc->type == KERN_T_TS ? kern_v_ts(v->u.i64) : kern_v_i64(v->u.i64);
            ok = true;
        }
        break;
    case KERN_T_DOUBLE:
        if (v->type == NINES_V_DOUBLE) {
            *out = kern_v_dbl(v->u.f64);
            ok = true;
        }
        break;
    case KERN_T_FSTR:
    case KERN_T_VSTR:
    case KERN_T_FBYTES:
    case KERN_T_VBYTES: {
        bool str = kc->type == KERN_T_FSTR || kc->type == KERN_T_VSTR;
        if (v->type != (str ? NINES_V_STRING : NINES_V_BYTES))
            break;
        if (v->u.s.len && !v->u.s.p)
            return nines_err(NINES_EINVAL, "table %s column %s: value of %zu bytes with a NULL "
                             "pointer", t->def.name, col->name, v->u.s.len);
        if (v->u.s.len > UINT32_MAX)
            return nines_err(NINES_ETYPE, "table %s column %s: value of %zu bytes is too long",
                             t->def.name, col->name, v->u.s.len);
        /* the wire carries strings NUL-terminated: the node would see a
         * shorter string, so refuse as nines_txn_* does */
        if (str && v->u.s.len && memchr(v->u.s.p, 0, v->u.s.len))
            return nines_err(NINES_EINVAL, "table %s column %s: string value of %zu bytes "
                             "contains a NUL byte", t->def.name, col->name, v->u.s.len);
        *out = kern_v_bytes(kc->type, v->u.s.p, (uint32_t)v->u.s.len);
        ok = true;
        break;
    }
    default:
        break;
    }
    if (!ok)
        return nines_err(NINES_ETYPE, "table %s column %s is %s but got %s", t->def.name,
                         col->name, dict_type_name(col->type), vtype_name(v->type));
    if (kern_val_check(kc, ci, out)) {
        char why[300];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        return nines_err(NINES_ETYPE, "table %s column %s (%s): %s", t->def.name, col->name,
                         dict_type_name(col->type), why);
    }
    return 0;
}

int cli_key_encode(const struct dict_table *t, const struct nines_value *key, size_t nkey,
                   uint8_t *out, size_t cap)
{
    uint32_t npk = t->def.npk;
    if (nkey != npk) {
        /* name the first column without a value, or the last one that has one */
        uint32_t ci = t->def.pk[nkey < npk ? nkey : npk - 1];
        return nines_err(NINES_ETYPE, "table %s has %u key column%s but %zu key value%s given "
                         "(column %s %s)", t->def.name, npk, npk == 1 ? "" : "s", nkey,
                         nkey == 1 ? " was" : "s were", t->def.cols[ci].name,
                         nkey < npk ? "has no value" : "is the last key column");
    }
    if (!key)
        return nines_err(NINES_EINVAL, "table %s: NULL key array", t->def.name);
    struct kern_col kc[DICT_MAX_PK];
    struct kern_val kv[DICT_MAX_PK];
    for (uint32_t i = 0; i < npk; i++) {
        int rc = key_val(t, t->def.pk[i], &key[i], &kc[i], &kv[i]);
        if (rc)
            return rc;
    }
    int len = kern_key_encode(kc, npk, kv, out, cap);
    if (len < 0) {
        char why[300];
        snprintf(why, sizeof why, "%s", nines_errdetail());
        return nines_err(len, "table %s key: %s", t->def.name, why);
    }
    return len;
}

/* ---- dictionary fetch ------------------------------------------------- */

void cli_dict_free(struct nines_conn *c)
{
    if (c->dict) {
        dict_free(c->dict);
        free(c->dict);
        c->dict = NULL;
    }
}

void cli_dict_on_lost(struct nines_conn *c, uint64_t gen, int rc)
{
    if (c->dget.st == CLI_DGET_WAIT && c->dget.gen == gen) {
        c->dget.st = CLI_DGET_IDLE;
        c->dget.done = true;
        c->dget.rc = rc;
    }
}

int cli_dict_on_answer(struct nines_conn *c, uint32_t type, const uint8_t *body, size_t len)
{
    ProtobufCAllocator *al = arena_pb_allocator(&c->ans);
    if (type == NINES__MSG_TYPE__DICT_GET_REF) {
        Nines__DictGetRef *r = nines__dict_get_ref__unpack(al, len, body);
        if (!r)
            return cli_fail(c, NINES_EPROTO, "DICT_GET_REF of %zu bytes does not decode", len);
        if (c->dget.st != CLI_DGET_WAIT) {
            c->stale++;
            return 0;
        }
        int err = r->error < 0 && r->error >= NINES_ERR_MIN_ ? r->error : NINES_EPROTO;
        cli_fail(c, err, "node %u refused DICT_GET: %s", c->node_id,
                 r->reason && r->reason[0] ? r->reason : nines_strerror(err));
        c->dget = (struct cli_dget){.st = CLI_DGET_IDLE, .done = true, .rc = err};
        return 0;
    }
    Nines__DictGetConf *g = nines__dict_get_conf__unpack(al, len, body);
    if (!g)
        return cli_fail(c, NINES_EPROTO, "DICT_GET_CONF of %zu bytes does not decode", len);
    if (c->dget.st != CLI_DGET_WAIT) { /* answer to a fetch that timed out */
        c->stale++;
        return 0;
    }
    struct dict *d = calloc(1, sizeof *d);
    int rc = d ? dict_decode(g->image.data, g->image.len, d) : NINES_ENOMEM;
    if (rc) {
        char why[300];
        snprintf(why, sizeof why, "%s", d ? nines_errdetail() : "no memory");
        free(d);
        cli_fail(c, rc, "dictionary image of %zu bytes from node %u: %s", g->image.len,
                 c->node_id, why);
    } else {
        cli_dict_free(c);
        c->dict = d;
        c->dict_from = c->node_id;
    }
    c->dget = (struct cli_dget){.st = CLI_DGET_IDLE, .done = true, .rc = rc};
    return 0;
}

/* Send DICT_GET_REQ on the connection and wait for the answer; on success
 * c->dict is the node's current dictionary. */
static int cli_dict_fetch(struct nines_conn *c)
{
    int rc = cli_ensure_up(c);
    if (rc)
        return rc;
    Nines__DictGetReq req = NINES__DICT_GET_REQ__INIT;
    if ((rc = cli_queue(c, NINES__MSG_TYPE__DICT_GET_REQ, &req.base)))
        return rc;
    c->dget = (struct cli_dget){.st = CLI_DGET_WAIT, .gen = c->gen};
    rc = cli_wait(c, &c->dget.done, cli_now_ms() + (uint64_t)c->timeout_ms);
    if (rc) {
        /* timed out: a late answer is counted as stale and dropped */
        c->dget.st = CLI_DGET_IDLE;
        return cli_fail(c, rc, "no dictionary from node %u (%s) within %d ms", c->node_id,
                        c->addrs[c->cur], c->timeout_ms);
    }
    /* refusal, bad image or lost connection: c->detail says which */
    return c->dget.rc ? cli_fail(c, c->dget.rc, "dictionary fetch: %s", c->detail) : 0;
}

/* ---- public ----------------------------------------------------------- */

int nines_key_fragment(nines_conn *c, const char *table, const struct nines_value *key,
                       size_t nkey, uint32_t *frag, uint32_t *primary_node,
                       uint32_t *standby_node)
{
    if (!c)
        return nines_err(NINES_EINVAL, "nines_key_fragment: NULL connection");
    if (!table || !table[0])
        return cli_fail(c, NINES_EINVAL, "nines_key_fragment: empty table name");
    if (c->in_dispatch)
        return cli_fail(c, NINES_ESTATE, "nines_key_fragment called from a callback");
    const struct dict_table *t = c->dict ? dict_table_by_name(c->dict, table) : NULL;
    if (!t) { /* first call, or a table created since the last fetch */
        int rc = cli_dict_fetch(c);
        if (rc)
            return rc;
        t = dict_table_by_name(c->dict, table);
        if (!t)
            return cli_fail(c, NINES_ENOTFOUND, "table '%s' not found (dictionary version %"
                            PRIu64 " from node %u)", table, c->dict->version, c->dict_from);
    }
    uint8_t buf[KERN_KEY_MAX];
    int len = cli_key_encode(t, key, nkey, buf, sizeof buf);
    if (len < 0)
        return cli_fail(c, len, "%s", nines_errdetail());
    int f = dict_route(t, buf, (size_t)len);
    if (f < 0)
        return cli_fail(c, f, "%s", nines_errdetail());
    if (frag)
        *frag = (uint32_t)f;
    if (primary_node)
        *primary_node = t->frags[f].primary;
    if (standby_node)
        *standby_node = t->frags[f].standby;
    return 0;
}
