/* Users in the client (README.md "Users"): create, drop and alter as
 * dictionary changes (DICT_CHANGE_REQ, as schema.c's table changes), the
 * list through DICT_GET_REQ with users. The SCRAM-SHA-256 verifier is made
 * here, from the password and a random salt: the password never leaves
 * the process. */
#include "cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict/dict.h"
#include "scram.h"

#define CLI_PASSWORD_MAX 1024

static int enter(nines_conn *c, const char *fn, const char *name)
{
    if (!c)
        return nines_err(NINES_EINVAL, "%s: NULL connection", fn);
    if (c->in_dispatch)
        return cli_fail(c, NINES_ESTATE, "%s called from a callback", fn);
    if (!name)
        return cli_fail(c, NINES_EINVAL, "%s: NULL user name", fn);
    if (dict_user_name_check(name))
        return cli_fail(c, NINES_EINVAL, "%s: %s", fn, nines_errdetail());
    return 0;
}

static int role_ok(nines_conn *c, const char *fn, const char *name, int role, bool zero_ok)
{
    if ((zero_ok && role == 0) || (role >= NINES_ROLE_READER && role <= NINES_ROLE_ADMIN))
        return 0;
    return cli_fail(c, NINES_EINVAL, "%s: user '%s': role %d is not a role (1 reader, 2 writer, "
                    "3 admin%s)", fn, name, role, zero_ok ? ", 0 keep" : "");
}

/* The verifier for password into out (DICT_VERIFIER_MAX + 1 bytes). */
static int make_verifier(nines_conn *c, const char *fn, const char *name, const char *password,
                         char *out, size_t n)
{
    size_t len = strnlen(password, CLI_PASSWORD_MAX + 1);
    if (len == 0)
        return cli_fail(c, NINES_EINVAL, "%s: user '%s': the password is empty", fn, name);
    if (len > CLI_PASSWORD_MAX)
        return cli_fail(c, NINES_EINVAL, "%s: user '%s': the password is longer than %d bytes",
                        fn, name, CLI_PASSWORD_MAX);
    if (scram_verifier_make(password, len, NULL, 0, SCRAM_ITERATIONS, out, n) != 0)
        return cli_fail(c, NINES_ESYS, "%s: user '%s': cannot make the SCRAM verifier (crypto "
                        "library)", fn, name);
    return 0;
}

static int user_change(nines_conn *c, const char *fn, Nines__DictOp op, const char *name,
                       int role, const char *verifier)
{
    Nines__DictUser u = NINES__DICT_USER__INIT;
    u.name = (char *)name;
    u.role = (uint32_t)role;
    u.verifier = (char *)(verifier ? verifier : "");
    Nines__DictChange ch = NINES__DICT_CHANGE__INIT;
    ch.op = op;
    ch.user = &u;
    return cli_dict_change(c, fn, &ch, NULL);
}

int nines_user_create(nines_conn *c, const char *name, int role, const char *password)
{
    const char *fn = "nines_user_create";
    int rc = enter(c, fn, name);
    if (rc == 0)
        rc = role_ok(c, fn, name, role, false);
    if (rc == 0 && !password)
        rc = cli_fail(c, NINES_EINVAL, "%s: user '%s': NULL password", fn, name);
    char v[DICT_VERIFIER_MAX + 1];
    if (rc == 0)
        rc = make_verifier(c, fn, name, password, v, sizeof v);
    if (rc == 0)
        rc = user_change(c, fn, NINES__DICT_OP__DICT_OP_CREATE_USER, name, role, v);
    return rc;
}

int nines_user_drop(nines_conn *c, const char *name)
{
    const char *fn = "nines_user_drop";
    int rc = enter(c, fn, name);
    return rc ? rc : user_change(c, fn, NINES__DICT_OP__DICT_OP_DROP_USER, name, 0, NULL);
}

int nines_user_alter(nines_conn *c, const char *name, int role, const char *password)
{
    const char *fn = "nines_user_alter";
    int rc = enter(c, fn, name);
    if (rc == 0)
        rc = role_ok(c, fn, name, role, true);
    if (rc == 0 && role == 0 && !password)
        rc = cli_fail(c, NINES_EINVAL, "%s: user '%s': neither a role nor a password to change",
                      fn, name);
    char v[DICT_VERIFIER_MAX + 1] = "";
    if (rc == 0 && password)
        rc = make_verifier(c, fn, name, password, v, sizeof v);
    if (rc == 0)
        rc = user_change(c, fn, NINES__DICT_OP__DICT_OP_ALTER_USER, name, role,
                         password ? v : NULL);
    return rc;
}

int nines_users(nines_conn *c, nines_user_fn fn, void *arg)
{
    if (!c)
        return nines_err(NINES_EINVAL, "nines_users: NULL connection");
    if (c->in_dispatch)
        return cli_fail(c, NINES_ESTATE, "nines_users called from a callback");
    if (!fn)
        return cli_fail(c, NINES_EINVAL, "nines_users: NULL callback");
    int rc = cli_dict_fetch_users(c);
    if (rc)
        return rc;
    /* a copy: the callback may call into c (another fetch replaces c->users) */
    uint32_t n = c->nusers;
    struct cli_user *u = n ? malloc(n * sizeof *u) : NULL;
    if (n && !u)
        return cli_fail(c, NINES_ENOMEM, "no memory for %u users", n);
    if (n)
        memcpy(u, c->users, n * sizeof *u);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        struct nines_user_info info = {.name = u[i].name, .role = u[i].role};
        rc = fn(arg, &info);
    }
    free(u);
    return rc;
}
