/* The node's users (supervisor/README.md "Users"): after every dictionary
 * install the dictionary's users go to the network endpoint (native
 * logins) and to the SQL front end (its logins), and with client_auth
 * scram-sha-256 this node's internal login for its own SQL front end is
 * added to the endpoint's list. Runs on the node's runtime thread (the
 * install subscription); the SQL front end copies under its own lock. */
#include "sup_users.h"

#include "net/net.h"
#include "nines/errors.h"
#include "nlog.h"
#include "scram.h"
#include "sql/sql_srv.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

int sup_users_init(struct sup_users *u, struct rt *rt, const struct nines_conf *conf)
{
    memset(u, 0, sizeof *u);
    u->rt = rt;
    u->version = UINT64_MAX;
    if (conf->client_auth != NINES_CLIENT_AUTH_SCRAM)
        return 0;
    /* a name no dictionary user can have (':' is not allowed there) */
    snprintf(u->internal_user, sizeof u->internal_user, "nines:sql-node%u", rt_self(rt));
    uint8_t raw[24];
    if (RAND_bytes(raw, sizeof raw) != 1 ||
        scram_b64_encode(raw, sizeof raw, u->internal_pw, sizeof u->internal_pw) < 0)
        return nines_err(NINES_ESYS, "no random bytes for the SQL front end's login");
    char text[256];
    if (scram_verifier_make(u->internal_pw, strlen(u->internal_pw), NULL, 0, SCRAM_ITERATIONS,
                            text, sizeof text) ||
        scram_verifier_parse(text, &u->internal_v))
        return nines_err(NINES_ESYS, "cannot make the SQL front end's verifier");
    return 0;
}

const char *sup_users_internal_user(const struct sup_users *u)
{
    return u->internal_user[0] ? u->internal_user : NULL;
}

const char *sup_users_internal_password(const struct sup_users *u)
{
    return u->internal_user[0] ? u->internal_pw : NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct net_user *)a)->name, ((const struct net_user *)b)->name);
}

static void publish(struct sup_users *u, const struct dict *d)
{
    size_t n = d->nusers + (u->internal_user[0] ? 1 : 0);
    struct net_user *nu = calloc(n ? n : 1, sizeof *nu);
    struct sql_srv_user *su = calloc(d->nusers ? d->nusers : 1, sizeof *su);
    if (!nu || !su) {
        NLOG_ERROR("sup", "node %u: no memory to give %u users to the logins (the previous "
                   "list stays)", rt_self(u->rt), d->nusers);
        free(nu);
        free(su);
        return;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < d->nusers; i++) {
        const struct dict_user *x = &d->users[i];
        snprintf(su[i].name, sizeof su[i].name, "%s", x->name);
        su[i].role = x->role;
        snprintf(su[i].verifier, sizeof su[i].verifier, "%s", x->verifier);
        /* the dictionary checked every verifier; one that still does not
         * decode cannot log in and is left out (logged) */
        if (scram_verifier_parse(x->verifier, &nu[k].v) != 0) {
            NLOG_ERROR("sup", "node %u: user %s: the verifier does not decode; the user cannot "
                       "log in", rt_self(u->rt), x->name);
            continue;
        }
        snprintf(nu[k].name, sizeof nu[k].name, "%s", x->name);
        nu[k].role = x->role;
        k++;
    }
    if (u->internal_user[0]) {
        snprintf(nu[k].name, sizeof nu[k].name, "%s", u->internal_user);
        nu[k].role = NET_ROLE_ADMIN;
        nu[k].v = u->internal_v;
        k++;
    }
    qsort(nu, k, sizeof *nu, by_name);
    struct net_endpoint *ep = rt_net(u->rt);
    if (ep && net_set_users(ep, nu, k) != 0)
        NLOG_ERROR("sup", "node %u: the endpoint refused the users: %s", rt_self(u->rt),
                   nines_errdetail());
    if (u->sql && sql_srv_set_users(u->sql, su, d->nusers) != 0)
        NLOG_ERROR("sup", "node %u: the SQL front end refused the users: %s", rt_self(u->rt),
                   nines_errdetail());
    memset(nu, 0, (n ? n : 1) * sizeof *nu);
    memset(su, 0, (d->nusers ? d->nusers : 1) * sizeof *su);
    free(nu);
    free(su);
    u->version = d->version;
}

void sup_users_installed(void *ctx, const struct dict *d, bool live_commit)
{
    (void)live_commit;
    struct sup_users *u = ctx;
    if (d->version == u->version)
        return;
    publish(u, d);
}

void sup_users_set_sql(struct sup_users *u, struct sql_srv *sql, const struct dict *d)
{
    u->sql = sql;
    if (d)
        publish(u, d);
}
