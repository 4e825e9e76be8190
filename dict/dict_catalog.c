/* The in-memory dictionary: tables by name and id, placement at create
 * time, replica moves and role switches; every change bumps the version
 * (dict/README.md "Catalog rules", "Versioned dictionary"). */
#include "dict.h"
#include "dict_int.h"

#include "nassert.h"
#include "nines/errors.h"

#include <stdlib.h>
#include <string.h>

int dict_init(struct dict *d, const struct dict_node *nodes, uint32_t n)
{
    memset(d, 0, sizeof *d);
    int rc = dict_nodes_validate(nodes, n);
    if (rc < 0)
        return rc;
    d->nnodes = n;
    memcpy(d->nodes, nodes, n * sizeof *nodes);
    d->next_table_id = 1;
    return 0;
}

void dict_table_free(struct dict_table *t)
{
    if (t == NULL)
        return;
    if (t->def.splits) {
        for (uint32_t i = 0; i < t->def.nsplits; i++)
            free((void *)t->def.splits[i].bytes);
        free((void *)t->def.splits);
    }
    free((void *)t->def.cols);
    free((void *)t->def.pk);
    free(t->frags);
    free(t);
}

void dict_free(struct dict *d)
{
    for (uint32_t i = 0; i < d->ntables; i++)
        dict_table_free(d->tables[i]);
    free(d->tables);
    free(d->users);
    memset(d, 0, sizeof *d);
}

struct dict_table *dict_table_copy(const struct dict_table_def *def)
{
    struct dict_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->def = *def;
    t->def.cols = NULL;
    t->def.pk = NULL;
    t->def.splits = NULL;
    t->def.nsplits = 0;
    if (t->def.replicas == 0)
        t->def.replicas = 2;
    if (t->def.scheme == 0)
        t->def.scheme = DICT_PLACE_MISD;
    t->nfrags = dict_def_nfrags(def);
    if (def->method == DICT_FRAG_RANGE)
        t->def.nfrags = t->nfrags;
    struct dict_column *cols = calloc(def->ncols, sizeof *cols);
    uint16_t *pk = calloc(def->npk, sizeof *pk);
    struct dict_key *sp = def->nsplits ? calloc(def->nsplits, sizeof *sp) : NULL;
    t->frags = calloc(t->nfrags, sizeof *t->frags);
    t->def.cols = cols;
    t->def.pk = pk;
    t->def.splits = sp;
    if (!cols || !pk || (def->nsplits && !sp) || !t->frags) {
        dict_table_free(t);
        return NULL;
    }
    memcpy(cols, def->cols, def->ncols * sizeof *cols);
    memcpy(pk, def->pk, def->npk * sizeof *pk);
    for (uint32_t i = 0; i < def->nsplits; i++) {
        uint8_t *b = malloc(def->splits[i].len);
        if (b == NULL) {
            dict_table_free(t);
            return NULL;
        }
        memcpy(b, def->splits[i].bytes, def->splits[i].len);
        sp[i].bytes = b;
        sp[i].len = def->splits[i].len;
        t->def.nsplits = i + 1;
    }
    return t;
}

int dict_insert_table(struct dict *d, struct dict_table *t)
{
    if (d->ntables >= DICT_MAX_TABLES)
        return nines_err(NINES_EFULL, "dictionary holds %u tables, the maximum",
                         d->ntables);
    if (dict_table_by_name(d, t->def.name))
        return nines_err(NINES_EEXIST, "table '%s' already exists", t->def.name);
    if (dict_table_by_id(d, t->id))
        return nines_err(NINES_EEXIST, "table id %u already exists", t->id);
    struct dict_table **nt = realloc(d->tables, (d->ntables + 1) * sizeof *nt);
    if (nt == NULL)
        return nines_err(NINES_ENOMEM, "no memory for table '%s'", t->def.name);
    d->tables = nt;
    uint32_t i = d->ntables;
    while (i > 0 && d->tables[i - 1]->id > t->id) {
        d->tables[i] = d->tables[i - 1];
        i--;
    }
    d->tables[i] = t;
    d->ntables++;
    return 0;
}

int dict_create_table(struct dict *d, const struct dict_table_def *def, uint32_t *id_out)
{
    int rc = dict_table_validate(def);
    if (rc < 0)
        return rc;
    if (dict_table_by_name(d, def->name))
        return nines_err(NINES_EEXIST, "table '%s' already exists", def->name);
    if (d->next_table_id == UINT32_MAX)
        return nines_err(NINES_EFULL, "table ids exhausted");
    struct dict_table *t = dict_table_copy(def);
    if (t == NULL)
        return nines_err(NINES_ENOMEM, "no memory for table '%s'", def->name);
    rc = dict_place(d->nodes, d->nnodes, t->nfrags, t->def.replicas, t->def.scheme, t->frags);
    if (rc < 0) {
        dict_table_free(t);
        return dict_err_prefix(rc, "table '%s'", def->name);
    }
    t->id = d->next_table_id;
    if ((rc = dict_insert_table(d, t)) < 0) {
        dict_table_free(t);
        return rc;
    }
    d->next_table_id++;
    d->version++;
    if (id_out)
        *id_out = t->id;
    return 0;
}

static int find_id(const struct dict *d, uint32_t id)
{
    uint32_t lo = 0, hi = d->ntables;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->tables[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->ntables && d->tables[lo]->id == id ? (int)lo : -1;
}

const struct dict_table *dict_table_by_id(const struct dict *d, uint32_t id)
{
    int i = find_id(d, id);
    return i < 0 ? NULL : d->tables[i];
}

const struct dict_table *dict_table_by_name(const struct dict *d, const char *name)
{
    for (uint32_t i = 0; i < d->ntables; i++)
        if (strncmp(d->tables[i]->def.name, name, sizeof d->tables[i]->def.name) == 0)
            return d->tables[i];
    return NULL;
}

int dict_drop_table_id(struct dict *d, uint32_t id)
{
    int i = find_id(d, id);
    if (i < 0)
        return nines_err(NINES_ENOTFOUND, "no table with id %u", id);
    dict_table_free(d->tables[i]);
    memmove(&d->tables[i], &d->tables[i + 1], (d->ntables - (uint32_t)i - 1) * sizeof *d->tables);
    d->ntables--;
    d->version++;
    return 0;
}

int dict_drop_table(struct dict *d, const char *name)
{
    const struct dict_table *t = dict_table_by_name(d, name);
    if (t == NULL)
        return nines_err(NINES_ENOTFOUND, "no table named '%s'", name);
    return dict_drop_table_id(d, t->id);
}

static int site_of(const struct dict *d, uint32_t id)
{
    for (uint32_t i = 0; i < d->nnodes; i++)
        if (d->nodes[i].id == id)
            return (int)d->nodes[i].site;
    return -1;
}

static int frag_of(struct dict *d, uint32_t table_id, uint32_t frag, struct dict_frag **out)
{
    int i = find_id(d, table_id);
    if (i < 0)
        return nines_err(NINES_ENOTFOUND, "no table with id %u", table_id);
    struct dict_table *t = d->tables[i];
    if (frag >= t->nfrags)
        return nines_err(NINES_EINVAL, "table '%s' has %u fragments, no fragment %u",
                         t->def.name, t->nfrags, frag);
    *out = &t->frags[frag];
    return 0;
}

int dict_move_replica(struct dict *d, uint32_t table_id, uint32_t frag, uint32_t from,
                      uint32_t to)
{
    struct dict_frag *fr = NULL;
    int rc = frag_of(d, table_id, frag, &fr);
    if (rc < 0)
        return rc;
    int to_site = site_of(d, to);
    if (to_site < 0)
        return nines_err(NINES_EINVAL, "node %u is not in the dictionary's node list", to);
    uint32_t *slot, other;
    if (fr->primary == from) {
        slot = &fr->primary;
        other = fr->standby;
    } else if (fr->standby == from && from != 0) {
        slot = &fr->standby;
        other = fr->primary;
    } else {
        return nines_err(NINES_EINVAL,
                         "table %u fragment %u has no replica on node %u (primary %u, standby "
                         "%u)",
                         table_id, frag, from, fr->primary, fr->standby);
    }
    if (to == from)
        return nines_err(NINES_EINVAL, "table %u fragment %u: node %u already holds this replica",
                         table_id, frag, to);
    if (to == other)
        return nines_err(NINES_EINVAL,
                         "table %u fragment %u: node %u already holds the other replica",
                         table_id, frag, to);
    if (other != 0 && site_of(d, other) == to_site)
        return nines_err(NINES_EINVAL,
                         "table %u fragment %u: node %u is at site %d, the same site as the "
                         "other replica on node %u",
                         table_id, frag, to, to_site, other);
    *slot = to;
    d->version++;
    return 0;
}

int dict_switch_roles(struct dict *d, uint32_t table_id, uint32_t frag)
{
    struct dict_frag *fr = NULL;
    int rc = frag_of(d, table_id, frag, &fr);
    if (rc < 0)
        return rc;
    if (fr->standby == 0)
        return nines_err(NINES_ESTATE, "table %u fragment %u has no hot standby to switch to",
                         table_id, frag);
    if (fr->standby_state == DICT_REP_BUILDING)
        return nines_err(NINES_ESTATE, "table %u fragment %u: the replica on node %u is still "
                         "being built, it cannot be primary", table_id, frag, fr->standby);
    uint32_t x = fr->primary;
    fr->primary = fr->standby;
    fr->standby = x;
    d->version++;
    return 0;
}
