/* Users with roles in the dictionary (dict/README.md "Users"): create,
 * drop, alter, find; the last-admin rule. The array d->users is kept
 * sorted by name (strcmp) so that lookups are binary searches and the file
 * image is canonical (every node encodes the same bytes). */
#include "dict.h"
#include "dict_int.h"

#include "nines/errors.h"
#include "scram.h"

#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = {
    [DICT_ROLE_READER] = "reader",
    [DICT_ROLE_WRITER] = "writer",
    [DICT_ROLE_ADMIN] = "admin",
};

const char *dict_role_name(uint32_t role)
{
    if (role < DICT_ROLE_FIRST || role > DICT_ROLE_LAST)
        return "?";
    return role_names[role];
}

int dict_role_parse(const char *name, uint32_t *role)
{
    for (uint32_t r = DICT_ROLE_FIRST; r <= DICT_ROLE_LAST; r++)
        if (name && strcmp(name, role_names[r]) == 0) {
            *role = r;
            return 0;
        }
    return nines_err(NINES_EINVAL, "unknown role '%.64s' (reader, writer or admin)",
                     name ? name : "(null)");
}

int dict_user_name_check(const char *name)
{
    if (!name || !name[0])
        return nines_err(NINES_EINVAL, "user name is empty");
    size_t len = strnlen(name, DICT_NAME_MAX + 1);
    if (len > DICT_NAME_MAX)
        return nines_err(NINES_EINVAL, "user name '%.20s...' is longer than %d bytes", name,
                         DICT_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '@' || c == '-';
        if (!ok)
            return nines_err(NINES_EINVAL, "user name '%s': character %zu (0x%02x) is not "
                             "allowed (letters, digits, '_', '.', '@', '-')", name, i,
                             (unsigned char)c);
    }
    return 0;
}

static int role_check(const char *user, uint32_t role)
{
    if (role < DICT_ROLE_FIRST || role > DICT_ROLE_LAST)
        return nines_err(NINES_EINVAL, "user '%s': role %u is not a role (1 reader, 2 writer, "
                         "3 admin)", user, role);
    return 0;
}

int dict_verifier_check(const char *user, const char *verifier)
{
    if (!verifier || !verifier[0])
        return nines_err(NINES_EINVAL, "user '%s': no verifier", user);
    size_t len = strnlen(verifier, DICT_VERIFIER_MAX + 1);
    if (len > DICT_VERIFIER_MAX)
        return nines_err(NINES_EINVAL, "user '%s': verifier is longer than %d bytes", user,
                         DICT_VERIFIER_MAX);
    struct scram_verifier v;
    if (scram_verifier_parse(verifier, &v) != 0)
        return nines_err(NINES_EINVAL, "user '%s': verifier '%.24s...' is not a "
                         "SCRAM-SHA-256$iterations:salt$storedkey:serverkey verifier", user,
                         verifier);
    return 0;
}

/* Index of `name` in d->users, or -(insertion point) - 1. */
static long search(const struct dict *d, const char *name)
{
    long lo = 0, hi = (long)d->nusers - 1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        int c = strcmp(d->users[mid].name, name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

const struct dict_user *dict_user_find(const struct dict *d, const char *name)
{
    if (!d || !name || d->nusers == 0)
        return NULL;
    long i = search(d, name);
    return i >= 0 ? &d->users[i] : NULL;
}

uint32_t dict_admin_count(const struct dict *d)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->nusers; i++)
        n += d->users[i].role == DICT_ROLE_ADMIN;
    return n;
}

int dict_user_create(struct dict *d, const char *name, uint32_t role, const char *verifier)
{
    int rc = dict_user_name_check(name);
    if (rc == 0)
        rc = role_check(name, role);
    if (rc == 0)
        rc = dict_verifier_check(name, verifier);
    if (rc)
        return rc;
    long i = search(d, name);
    if (i >= 0)
        return nines_err(NINES_EEXIST, "user '%s' already exists (role %s)", name,
                         dict_role_name(d->users[i].role));
    if (d->nusers >= DICT_MAX_USERS)
        return nines_err(NINES_EFULL, "user '%s': the dictionary holds %u users already, the "
                         "most it may", name, d->nusers);
    struct dict_user *nu = realloc(d->users, (d->nusers + 1) * sizeof *nu);
    if (!nu)
        return nines_err(NINES_ENOMEM, "no memory for user '%s'", name);
    d->users = nu;
    size_t at = (size_t)(-i - 1);
    memmove(&nu[at + 1], &nu[at], (d->nusers - at) * sizeof *nu);
    memset(&nu[at], 0, sizeof *nu);
    memcpy(nu[at].name, name, strlen(name));
    nu[at].role = role;
    memcpy(nu[at].verifier, verifier, strlen(verifier));
    d->nusers++;
    d->version++;
    return 0;
}

int dict_user_drop(struct dict *d, const char *name)
{
    int rc = dict_user_name_check(name);
    if (rc)
        return rc;
    long i = search(d, name);
    if (i < 0)
        return nines_err(NINES_ENOTFOUND, "drop user '%s': no such user", name);
    if (d->users[i].role == DICT_ROLE_ADMIN && dict_admin_count(d) == 1)
        return nines_err(NINES_ESTATE, "drop user '%s': user %s is the last admin", name, name);
    memmove(&d->users[i], &d->users[i + 1], (d->nusers - (size_t)i - 1) * sizeof *d->users);
    if (--d->nusers == 0) {
        free(d->users);
        d->users = NULL;
    }
    d->version++;
    return 0;
}

int dict_user_alter(struct dict *d, const char *name, uint32_t role, const char *verifier)
{
    int rc = dict_user_name_check(name);
    if (rc == 0 && role != 0)
        rc = role_check(name, role);
    if (rc == 0 && verifier)
        rc = dict_verifier_check(name, verifier);
    if (rc)
        return rc;
    if (role == 0 && !verifier)
        return nines_err(NINES_EINVAL, "alter user '%s': neither a role nor a verifier to "
                         "change", name);
    long i = search(d, name);
    if (i < 0)
        return nines_err(NINES_ENOTFOUND, "alter user '%s': no such user", name);
    struct dict_user *u = &d->users[i];
    if (role && role < DICT_ROLE_ADMIN && u->role == DICT_ROLE_ADMIN && dict_admin_count(d) == 1)
        return nines_err(NINES_ESTATE, "alter user '%s' to %s: user %s is the last admin", name,
                         dict_role_name(role), name);
    if (role)
        u->role = role;
    if (verifier) {
        memset(u->verifier, 0, sizeof u->verifier);
        memcpy(u->verifier, verifier, strlen(verifier));
    }
    d->version++;
    return 0;
}
