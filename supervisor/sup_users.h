/* The node's users for logins (internal, supervisor; sup_users.c and
 * supervisor/README.md "Users"). */
#ifndef NINES_SUP_USERS_H
#define NINES_SUP_USERS_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "dict/svc/dsvc.h" /* the install subscription and its struct dict */
#include "runtime/rt.h"
#include "scram.h"

struct sql_srv;

struct sup_users {
    struct rt *rt;
    struct sql_srv *sql;          /* NULL until the SQL front end runs */
    uint64_t version;             /* the dictionary version last given */
    char internal_user[40];       /* client_auth scram-sha-256: this node's SQL front end's */
    char internal_pw[48];         /* ... login (random, never leaves the process) */
    struct scram_verifier internal_v;
};

/* With client_auth scram-sha-256: make the internal login. */
int sup_users_init(struct sup_users *u, struct rt *rt, const struct nines_conf *conf);
/* The internal login (NULL when there is none: client_auth trust). */
const char *sup_users_internal_user(const struct sup_users *u);
const char *sup_users_internal_password(const struct sup_users *u);
/* dsvc_install_fn: give a changed dictionary's users to the logins. */
void sup_users_installed(void *ctx, const struct dict *d, bool live_commit);
/* The SQL front end is up (sql NULL: none): give it the users of d now. */
void sup_users_set_sql(struct sup_users *u, struct sql_srv *sql, const struct dict *d);

#endif
