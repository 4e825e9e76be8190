/* ninesctl user ... (tools/README.md "Users"): users with roles in the
 * replicated dictionary (dict/README.md "Users").
 *
 *   user add NAME --role reader|writer|admin [--password P]
 *   user drop NAME
 *   user passwd NAME [--password P]
 *   user role NAME reader|writer|admin
 *   user list                       (name and role per line)
 *   each with [--node ID]
 *
 * The password comes from the first line of stdin unless --password gives
 * it; ninesctl makes the SCRAM-SHA-256 verifier (random salt, 4096
 * iterations) and sends only that, as the client library's
 * nines_user_create does. Exit status: 0 done, 1 refused or failed, 2
 * usage. */
#include "conf.h"
#include "ctl.h"
#include "dict/dict.h"
#include "net/net.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_USER_TIMEOUT_MS 3000

static int usage_err(const char *sub, const char *why)
{
    fprintf(stderr, "ninesctl user%s%s: %s\nusage: ninesctl --config FILE user add NAME --role "
                    "reader|writer|admin [--password P]\n"
                    "       ninesctl --config FILE user drop NAME\n"
                    "       ninesctl --config FILE user passwd NAME [--password P]\n"
                    "       ninesctl --config FILE user role NAME reader|writer|admin\n"
                    "       ninesctl --config FILE user list\n"
                    "       (each with [--node ID]; the password from the first line of stdin "
                    "without --password)\n", sub ? " " : "", sub ? sub : "", why);
    return 2;
}

struct user_args {
    const char *sub, *name, *role_s, *pw;
    uint32_t role, node;
    bool has_pw;
};

static int parse(int argc, char **argv, struct user_args *a)
{
    memset(a, 0, sizeof *a);
    if (argc < 1)
        return usage_err(NULL, "need a subcommand");
    a->sub = argv[0];
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--password") && i + 1 < argc) {
            a->pw = argv[++i];
            a->has_pw = true;
        } else if (!strcmp(argv[i], "--role") && i + 1 < argc) {
            a->role_s = argv[++i];
        } else if (!strcmp(argv[i], "--node") && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v == 0 || v > NINES_MAX_NODES)
                return usage_err(a->sub, "--node needs a node id");
            a->node = (uint32_t)v;
        } else if (argv[i][0] != '-' && npos < 2) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "ninesctl user %s: unexpected argument '%s'\n", a->sub, argv[i]);
            return usage_err(a->sub, "see usage");
        }
    }
    bool list = !strcmp(a->sub, "list"), role = !strcmp(a->sub, "role");
    int want = list ? 0 : role ? 2 : 1;
    if (npos != want)
        return usage_err(a->sub, list ? "takes no NAME" : role ? "needs NAME and ROLE"
                                                             : "needs one user NAME");
    a->name = pos[0];
    if (role)
        a->role_s = pos[1];
    if (a->name && dict_user_name_check(a->name))
        return usage_err(a->sub, nines_errdetail());
    if (a->role_s && dict_role_parse(a->role_s, &a->role))
        return usage_err(a->sub, nines_errdetail());
    return 0;
}

/* The verifier of the password from --password or stdin into v. */
static int verifier(const struct user_args *a, char *v, size_t n)
{
    char pw[CTL_PW_MAX + 2];
    const char *why = ctl_password(a->has_pw ? a->pw : NULL, pw, sizeof pw);
    if (why)
        return usage_err(a->sub, why);
    int rc = scram_verifier_make(pw, strlen(pw), NULL, 0, SCRAM_ITERATIONS, v, n);
    explicit_bzero(pw, sizeof pw);
    if (rc) {
        fprintf(stderr, "ninesctl user %s: cannot make the verifier (crypto library)\n", a->sub);
        return 1;
    }
    return 0;
}

static int list(const struct nines_conf *c, const struct user_args *a)
{
    struct net_client *cl;
    uint32_t used;
    int rc = ctl_connect(c, a->node, 0, "user list", &cl, &used);
    if (rc)
        return rc;
    Nines__DictGetReq req = NINES__DICT_GET_REQ__INIT;
    req.users = true;
    uint32_t got;
    uint8_t *body = NULL;
    size_t len = 0;
    rc = ctl_call(cl, NINES__MSG_TYPE__DICT_GET_REQ, &req.base, NINES__MSG_TYPE__DICT_GET_CONF,
                  NINES__MSG_TYPE__DICT_GET_REF, CTL_USER_TIMEOUT_MS, &got, &body, &len);
    net_client_close(cl);
    if (rc) {
        fprintf(stderr, "ninesctl user list: node %u: %s\n", used, nines_errdetail());
        return 1;
    }
    int ret = 1;
    if (got == NINES__MSG_TYPE__DICT_GET_CONF) {
        Nines__DictGetConf *g = nines__dict_get_conf__unpack(NULL, len, body);
        if (!g) {
            fprintf(stderr, "ninesctl user list: node %u sent an undecodable DICT_GET_CONF\n",
                    used);
        } else {
            for (size_t i = 0; i < g->n_users; i++)
                printf("%s %s\n", g->users[i]->name, dict_role_name(g->users[i]->role));
            ret = 0;
            nines__dict_get_conf__free_unpacked(g, NULL);
        }
    } else {
        Nines__DictGetRef *r = nines__dict_get_ref__unpack(NULL, len, body);
        fprintf(stderr, "ninesctl user list: node %u refused: %s\n", used,
                r && r->reason ? r->reason : "(undecodable answer)");
        if (r)
            nines__dict_get_ref__free_unpacked(r, NULL);
    }
    free(body);
    return ret;
}

int ctl_cmd_user(const struct nines_conf *c, int argc, char **argv)
{
    struct user_args a;
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    if (!strcmp(a.sub, "list"))
        return list(c, &a);
    Nines__DictUser u = NINES__DICT_USER__INIT;
    u.name = (char *)a.name;
    Nines__DictChange ch = NINES__DICT_CHANGE__INIT;
    ch.user = &u;
    char v[DICT_VERIFIER_MAX + 1], done[160];
    if (!strcmp(a.sub, "add")) {
        if (!a.role_s)
            return usage_err(a.sub, "needs --role reader|writer|admin");
        if ((rc = verifier(&a, v, sizeof v)))
            return rc;
        ch.op = NINES__DICT_OP__DICT_OP_CREATE_USER;
        u.role = a.role;
        u.verifier = v;
        snprintf(done, sizeof done, "created user '%s' (%s)", a.name, dict_role_name(a.role));
    } else if (!strcmp(a.sub, "drop")) {
        if (a.role_s || a.has_pw)
            return usage_err(a.sub, "takes no role or password");
        ch.op = NINES__DICT_OP__DICT_OP_DROP_USER;
        snprintf(done, sizeof done, "dropped user '%s'", a.name);
    } else if (!strcmp(a.sub, "passwd")) {
        if (a.role_s)
            return usage_err(a.sub, "takes no role (user role NAME ROLE)");
        if ((rc = verifier(&a, v, sizeof v)))
            return rc;
        ch.op = NINES__DICT_OP__DICT_OP_ALTER_USER;
        u.verifier = v;
        snprintf(done, sizeof done, "changed the password of user '%s'", a.name);
    } else if (!strcmp(a.sub, "role")) {
        if (a.has_pw)
            return usage_err(a.sub, "takes no password (user passwd NAME)");
        ch.op = NINES__DICT_OP__DICT_OP_ALTER_USER;
        u.role = a.role;
        snprintf(done, sizeof done, "user '%s' is now %s", a.name, dict_role_name(a.role));
    } else {
        return usage_err(NULL, "unknown subcommand (add, drop, passwd, role, list)");
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "user %s", a.sub);
    rc = ctl_change(c, a.node, cmd, &ch, done);
    explicit_bzero(v, sizeof v);
    return rc;
}
