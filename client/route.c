/* Routing in the client: key -> fragment with the node's own functions.
 * The table definitions come from the connected node (DICT_GET_REQ, the
 * admin read `ninesctl tables` and the benchmark loader use) and are kept
 * per connection; the key values are converted and encoded by conv_key (the
 * node's conversion, conv/) and routed by dict_route: the same functions
 * the node's transaction controller runs (README.md "Routing"). */
#include "cli_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv/conv.h"
#include "dict/dict.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"

/* ---- key encoding ----------------------------------------------------- */

/* The key values as they would travel (cli_val_to_pb, what nines_txn_*
 * sends), then the node's own conversion and encoding (conv_key): a key
 * the client routes is the key the node would compute. */
int cli_key_encode(const struct dict_table *t, const struct nines_value *key, size_t nkey,
                   uint8_t *out, size_t cap)
{
    uint32_t npk = t->def.npk;
    struct conv_col kc[DICT_MAX_PK];
    for (uint32_t i = 0; i < npk && i < DICT_MAX_PK; i++) {
        int rc = conv_col_of(t, t->def.pk[i], &kc[i]);
        if (rc)
            return rc;
    }
    if (nkey != npk) /* conv_key checks the count before it reads a value */
        return conv_key(kc, npk, NULL, nkey, false, "key", out, cap);
    if (!key)
        return nines_err(NINES_EINVAL, "table %s: NULL key array", t->def.name);
    struct arena a;
    arena_init(&a, 4096);
    Nines__Value pv[DICT_MAX_PK];
    Nines__Value *pp[DICT_MAX_PK];
    int rc = 0;
    for (uint32_t i = 0; i < npk && rc == 0; i++) {
        pp[i] = &pv[i];
        if ((rc = cli_val_to_pb(&a, &key[i], &pv[i])) != 0) {
            char why[300];
            snprintf(why, sizeof why, "%s", nines_errdetail());
            rc = nines_err(rc, "table %s column %s: %s", t->def.name, kc[i].name, why);
        }
    }
    if (rc == 0)
        rc = conv_key(kc, npk, pp, npk, false, "key", out, cap);
    arena_destroy(&a);
    return rc;
}

/* ---- dictionary fetch ------------------------------------------------- */

void cli_dict_free(struct nines_conn *c)
{
    cli_schema_free(c); /* the table infos point into the copy */
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

/* DictGetConf.users into c->users (names checked: they are shown and
 * compared as C strings). */
static int take_users(struct nines_conn *c, const Nines__DictGetConf *g)
{
    struct cli_user *u = g->n_users ? calloc(g->n_users, sizeof *u) : NULL;
    if (g->n_users && !u)
        return cli_fail(c, NINES_ENOMEM, "no memory for %zu users", g->n_users);
    for (size_t i = 0; i < g->n_users; i++) {
        const Nines__DictUserInfo *x = g->users[i];
        const char *name = x && x->name ? x->name : "";
        if (!name[0] || strlen(name) >= sizeof u[i].name) {
            free(u);
            return cli_fail(c, NINES_EPROTO, "node %u listed user %zu with a name of %zu bytes",
                            c->node_id, i, strlen(name));
        }
        memcpy(u[i].name, name, strlen(name) + 1);
        u[i].role = x->role;
    }
    free(c->users);
    c->users = u;
    c->nusers = (uint32_t)g->n_users;
    return 0;
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
    } else if (c->dget.users && (rc = take_users(c, g)) != 0) {
        dict_free(d);
        free(d);
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
static int fetch(struct nines_conn *c, bool users)
{
    int rc = cli_ensure_up(c);
    if (rc)
        return rc;
    Nines__DictGetReq req = NINES__DICT_GET_REQ__INIT;
    req.users = users;
    if ((rc = cli_queue(c, NINES__MSG_TYPE__DICT_GET_REQ, &req.base)))
        return rc;
    c->dget = (struct cli_dget){.st = CLI_DGET_WAIT, .users = users, .gen = c->gen};
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

int cli_dict_fetch(struct nines_conn *c) { return fetch(c, false); }

int cli_dict_fetch_users(struct nines_conn *c) { return fetch(c, true); }

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
