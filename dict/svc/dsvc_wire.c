/* Dictionary changes on the wire: DictTableDef -> struct dict_table_def
 * (every count and width checked before it is narrowed: the bytes come
 * from the network), and applying a change to a copy of a dictionary. */
#include "dsvc_int.h"

#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsvc_def_free(struct dsvc_def *x)
{
    free(x->cols);
    free(x->pk);
    free(x->splits);
    memset(x, 0, sizeof *x);
}

static int name_copy(char *dst, const char *src, const char *what, const char *table)
{
    if (!src)
        src = "";
    size_t n = strlen(src);
    if (n > DICT_NAME_MAX)
        return nines_err(NINES_EINVAL, "%s '%.40s...' of table '%.40s' is %zu bytes, above %d",
                         what, src, table, n, DICT_NAME_MAX);
    memcpy(dst, src, n + 1);
    return 0;
}

int dsvc_def_from_pb(const Nines__DictTableDef *pb, struct dsvc_def *out)
{
    memset(out, 0, sizeof *out);
    if (!pb)
        return nines_err(NINES_EINVAL, "create table without a table definition");
    int rc = name_copy(out->def.name, pb->name, "table name", pb->name ? pb->name : "");
    if (rc)
        return rc;
    const char *tn = out->def.name;
    if (pb->n_columns > DICT_MAX_COLS)
        return nines_err(NINES_EINVAL, "table '%s': %zu columns, at most %d", tn, pb->n_columns,
                         DICT_MAX_COLS);
    if (pb->n_pk > DICT_MAX_PK)
        return nines_err(NINES_EINVAL, "table '%s': %zu primary key columns, at most %d", tn,
                         pb->n_pk, DICT_MAX_PK);
    if (pb->n_splits >= DICT_MAX_FRAGS)
        return nines_err(NINES_EINVAL, "table '%s': %zu split points, at most %d", tn,
                         pb->n_splits, DICT_MAX_FRAGS - 1);
    out->cols = calloc(pb->n_columns ? pb->n_columns : 1, sizeof *out->cols);
    out->pk = calloc(pb->n_pk ? pb->n_pk : 1, sizeof *out->pk);
    out->splits = calloc(pb->n_splits ? pb->n_splits : 1, sizeof *out->splits);
    if (!out->cols || !out->pk || !out->splits) {
        dsvc_def_free(out);
        return nines_err(NINES_ENOMEM, "no memory for table '%s'", tn);
    }
    for (size_t i = 0; i < pb->n_columns; i++) {
        const Nines__DictColumn *c = pb->columns[i];
        rc = name_copy(out->cols[i].name, c->name, "column name", tn);
        if (rc) {
            dsvc_def_free(out);
            return rc;
        }
        out->cols[i].type = c->type;
        out->cols[i].size = c->size;
        out->cols[i].nullable = c->nullable;
        out->cols[i].sqltype = c->sqltype;
        out->cols[i].sqltypmod = c->sqltype ? c->sqltypmod : -1;
        out->cols[i].hidden = c->hidden;
    }
    for (size_t i = 0; i < pb->n_pk; i++) {
        if (pb->pk[i] >= pb->n_columns) {
            rc = nines_err(NINES_EINVAL, "table '%s': key column %u does not exist (%zu columns)",
                           tn, pb->pk[i], pb->n_columns);
            dsvc_def_free(out);
            return rc;
        }
        out->pk[i] = (uint16_t)pb->pk[i];
    }
    for (size_t i = 0; i < pb->n_splits; i++) {
        out->splits[i].bytes = pb->splits[i].data;
        out->splits[i].len = (uint32_t)(pb->splits[i].len > UINT32_MAX ? UINT32_MAX
                                                                        : pb->splits[i].len);
    }
    out->def.ncols = (uint32_t)pb->n_columns;
    out->def.cols = out->cols;
    out->def.npk = (uint32_t)pb->n_pk;
    out->def.pk = out->pk;
    out->def.method = pb->method;
    out->def.nfrags = pb->nfrags;
    out->def.nsplits = (uint32_t)pb->n_splits;
    out->def.splits = out->splits;
    out->def.replicas = pb->replicas;
    out->def.scheme = pb->scheme;
    return 0;
}

const char *dsvc_change_name(const Nines__DictChange *c, char *buf, size_t n)
{
    if (!c) {
        snprintf(buf, n, "empty change");
        return buf;
    }
    switch (c->op) {
    case NINES__DICT_OP__DICT_OP_CREATE_TABLE:
        snprintf(buf, n, "create table '%.64s'", c->table && c->table->name ? c->table->name : "");
        break;
    case NINES__DICT_OP__DICT_OP_DROP_TABLE:
        snprintf(buf, n, "drop table '%.64s'", c->name ? c->name : "");
        break;
    case NINES__DICT_OP__DICT_OP_REPLACE_TABLE:
        snprintf(buf, n, "replace table '%.64s' with '%.64s'", c->name ? c->name : "",
                 c->with ? c->with : "");
        break;
    case NINES__DICT_OP__DICT_OP_SET_READONLY:
        snprintf(buf, n, "set table '%.64s' %s", c->name ? c->name : "",
                 c->readonly ? "read-only" : "writable");
        break;
    case NINES__DICT_OP__DICT_OP_CREATE_USER:
        snprintf(buf, n, "create user '%.64s' (%s)", c->user && c->user->name ? c->user->name : "",
                 dict_role_name(c->user ? c->user->role : 0));
        break;
    case NINES__DICT_OP__DICT_OP_DROP_USER:
        snprintf(buf, n, "drop user '%.64s'", c->user && c->user->name ? c->user->name : "");
        break;
    case NINES__DICT_OP__DICT_OP_ALTER_USER:
        snprintf(buf, n, "alter user '%.64s'%s%s%s", c->user && c->user->name ? c->user->name : "",
                 c->user && c->user->role ? " role " : "",
                 c->user && c->user->role ? dict_role_name(c->user->role) : "",
                 c->user && c->user->verifier && c->user->verifier[0] ? " password" : "");
        break;
    case NINES__DICT_OP__DICT_OP_REPAIR_NODE:
        snprintf(buf, n, "repair node %u (replicas to %zu eligible nodes)", c->node,
                 c->n_eligible);
        break;
    case NINES__DICT_OP__DICT_OP_REINTEGRATE_NODE:
        snprintf(buf, n, "reintegrate node %u (a standby to it; %zu current nodes)", c->node,
                 c->n_eligible);
        break;
    case NINES__DICT_OP__DICT_OP_MARK_BUILT:
        snprintf(buf, n, "mark built: node %u's replica of table %u fragment %u", c->node,
                 c->table_id, c->frag);
        break;
    default:
        snprintf(buf, n, "operation %d", (int)c->op);
        break;
    }
    return buf;
}

/* CREATE_USER / DROP_USER / ALTER_USER (dict/README.md "Users"). */
static int apply_user(struct dict *next, Nines__DictOp op, const Nines__DictUser *u)
{
    const char *what = op == NINES__DICT_OP__DICT_OP_CREATE_USER ? "create user"
                       : op == NINES__DICT_OP__DICT_OP_DROP_USER ? "drop user"
                                                                  : "alter user";
    if (!u || !u->name || !u->name[0])
        return nines_err(NINES_EINVAL, "%s without a user name", what);
    switch (op) {
    case NINES__DICT_OP__DICT_OP_CREATE_USER:
        return dict_user_create(next, u->name, u->role, u->verifier);
    case NINES__DICT_OP__DICT_OP_DROP_USER:
        return dict_user_drop(next, u->name);
    default:
        return dict_user_alter(next, u->name, u->role,
                               u->verifier && u->verifier[0] ? u->verifier : NULL);
    }
}

int dsvc_apply(const struct dict *base, const Nines__DictChange *change, struct dict *next,
               uint32_t *table_id, uint32_t *moved)
{
    *table_id = 0;
    if (moved)
        *moved = 0;
    if (!change) {
        memset(next, 0, sizeof *next);
        return nines_err(NINES_EINVAL, "dictionary change request without a change");
    }
    int rc = dict_clone(base, next);
    if (rc)
        return rc;
    switch (change->op) {
    case NINES__DICT_OP__DICT_OP_CREATE_TABLE: {
        struct dsvc_def x;
        rc = dsvc_def_from_pb(change->table, &x);
        if (rc == 0) {
            rc = dict_create_table(next, &x.def, table_id);
            dsvc_def_free(&x);
        }
        break;
    }
    case NINES__DICT_OP__DICT_OP_DROP_TABLE:
        if (!change->name || !change->name[0])
            rc = nines_err(NINES_EINVAL, "drop table without a table name");
        else
            rc = dict_drop_table(next, change->name);
        break;
    case NINES__DICT_OP__DICT_OP_REPLACE_TABLE:
        rc = dict_replace_table(next, change->name, change->with);
        break;
    case NINES__DICT_OP__DICT_OP_SET_READONLY:
        rc = dict_set_readonly(next, change->name, change->readonly);
        break;
    case NINES__DICT_OP__DICT_OP_CREATE_USER:
    case NINES__DICT_OP__DICT_OP_DROP_USER:
    case NINES__DICT_OP__DICT_OP_ALTER_USER:
        rc = apply_user(next, change->op, change->user);
        break;
    case NINES__DICT_OP__DICT_OP_REPAIR_NODE:
    case NINES__DICT_OP__DICT_OP_REINTEGRATE_NODE: {
        bool repair = change->op == NINES__DICT_OP__DICT_OP_REPAIR_NODE;
        const char *what = repair ? "repair" : "reintegration";
        dict_liveset eligible = 0;
        for (size_t i = 0; i < change->n_eligible && rc == 0; i++) {
            uint32_t id = change->eligible[i];
            if (id == 0 || id > DICT_MAX_NODES)
                rc = nines_err(NINES_EINVAL, "%s of node %u: eligible node id %u outside "
                               "1..%d", what, change->node, id, DICT_MAX_NODES);
            else
                eligible |= DICT_LIVE(id);
        }
        if (rc == 0 && (change->node == 0 || change->node > DICT_MAX_NODES))
            rc = nines_err(NINES_EINVAL, "%s of node %u: not a node id", what, change->node);
        if (rc == 0 && !repair) {
            rc = dict_reintegrate_node(next, change->node, eligible, NULL);
            if (rc > 0) {
                if (moved)
                    *moved = (uint32_t)rc;
                rc = 0;
            }
        } else if (rc == 0) {
            struct dict_repair_result res;
            rc = dict_repair_node(next, change->node, eligible, &res);
            if (rc > 0) {
                if (moved)
                    *moved = (uint32_t)rc;
                rc = 0;
            }
        }
        break;
    }
    case NINES__DICT_OP__DICT_OP_MARK_BUILT:
        rc = dict_mark_built(next, change->table_id, change->frag, change->node);
        break;
    default:
        rc = nines_err(NINES_EINVAL, "unknown dictionary operation %d", (int)change->op);
        break;
    }
    if (rc == 0 && next->version != base->version + 1)
        rc = nines_err(NINES_ESTATE, "change made version %llu from %llu",
                       (unsigned long long)next->version, (unsigned long long)base->version);
    if (rc)
        dict_free(next);
    return rc;
}
