/* Schema changes on existing tables: replace one table by another under
 * its name, and the readonly flag (dict/README.md "Schema changes"). */
#include "dict.h"
#include "dict_int.h"

#include "nines/errors.h"

#include <stdlib.h>
#include <string.h>

/* Index of table `name` in d->tables, or -1. */
static int index_of(const struct dict *d, const char *name)
{
    for (uint32_t i = 0; i < d->ntables; i++)
        if (strncmp(d->tables[i]->def.name, name, sizeof d->tables[i]->def.name) == 0)
            return (int)i;
    return -1;
}

static int name_given(const char *what, const char *name)
{
    if (!name || !name[0])
        return nines_err(NINES_EINVAL, "%s: no table name", what);
    return 0;
}

int dict_replace_table(struct dict *d, const char *name, const char *with)
{
    int rc = name_given("replace table", name);
    if (rc == 0)
        rc = name_given("replace table: the replacement", with);
    if (rc)
        return rc;
    if (strcmp(name, with) == 0)
        return nines_err(NINES_EINVAL, "replace table '%s' with itself", name);
    int gone = index_of(d, name), keep = index_of(d, with);
    if (gone < 0)
        return nines_err(NINES_ENOTFOUND, "replace table '%s': no table named '%s'", name, name);
    if (keep < 0)
        return nines_err(NINES_ENOTFOUND, "replace table '%s' with '%s': no table named '%s'",
                         name, with, with);
    struct dict_table *k = d->tables[keep];
    /* the name fits: it is the name of a table of this dictionary */
    memcpy(k->def.name, d->tables[gone]->def.name, sizeof k->def.name);
    dict_table_free(d->tables[gone]);
    memmove(&d->tables[gone], &d->tables[gone + 1],
            (d->ntables - (uint32_t)gone - 1) * sizeof *d->tables);
    d->ntables--;
    d->version++;
    return 0;
}

int dict_set_readonly(struct dict *d, const char *name, bool on)
{
    int rc = name_given(on ? "set table read-only" : "set table writable", name);
    if (rc)
        return rc;
    int i = index_of(d, name);
    if (i < 0)
        return nines_err(NINES_ENOTFOUND, "set table '%s' %s: no such table", name,
                         on ? "read-only" : "writable");
    d->tables[i]->readonly = on;
    d->version++;
    return 0;
}
