/* ninesctl sql-verifier NAME [--password PASSWORD] [--iterations N]: the
 * cluster-file line `sql_user NAME SCRAM-SHA-256$...` for a SQL user
 * (sql/README.md "Authentication", common/README.md). The password is read
 * from the first line of stdin unless --password gives it (which leaves
 * it in the shell's history and the process list: stdin is better). Only
 * the verifier is printed: the server never stores the password. */
#include "conf.h"
#include "ctl.h"
#include "scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ctl_password(const char *arg, char *pw, size_t n)
{
    if (n < CTL_PW_MAX + 2)
        return "internal: password buffer too small";
    if (arg) {
        if (strlen(arg) > CTL_PW_MAX)
            return "the password is longer than 1024 bytes";
        snprintf(pw, n, "%s", arg);
    } else if (!fgets(pw, (int)n, stdin)) {
        return "no password on stdin";
    } else {
        size_t len = strlen(pw);
        if (len > CTL_PW_MAX && pw[len - 1] != '\n') {
            explicit_bzero(pw, n);
            return "the password is longer than 1024 bytes";
        }
        while (len && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
            pw[--len] = '\0';
    }
    if (!pw[0])
        return "the password is empty";
    return NULL;
}

static int usage_err(const char *why)
{
    fprintf(stderr, "ninesctl sql-verifier: %s\nusage: ninesctl sql-verifier NAME "
                    "[--password PASSWORD] [--iterations N]   (the password from stdin "
                    "otherwise)\n", why);
    return 2;
}

int ctl_cmd_sql_verifier(int argc, char **argv)
{
    const char *name = NULL, *pw_arg = NULL;
    unsigned long iter = SCRAM_ITERATIONS;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--password") && i + 1 < argc) {
            pw_arg = argv[++i];
        } else if (!strcmp(argv[i], "--iterations") && i + 1 < argc) {
            char *end;
            iter = strtoul(argv[++i], &end, 10);
            if (*end || iter < 1 || iter > 100000000)
                return usage_err("--iterations must be a number in 1..100000000");
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            fprintf(stderr, "ninesctl sql-verifier: unexpected argument '%s'\n", argv[i]);
            return usage_err("see usage");
        }
    }
    if (!name)
        return usage_err("need a user NAME");
    if (strlen(name) >= NINES_NAME_MAX || strpbrk(name, " \t\r\n#"))
        return usage_err("NAME must be shorter than 64 bytes, without blanks or '#'");
    char pw[CTL_PW_MAX + 2];
    const char *why = ctl_password(pw_arg, pw, sizeof pw);
    if (why)
        return usage_err(why);
    char v[NINES_SQL_VERIFIER_MAX];
    int rc = scram_verifier_make(pw, strlen(pw), NULL, 0, (uint32_t)iter, v, sizeof v);
    explicit_bzero(pw, sizeof pw);
    if (rc) {
        fprintf(stderr, "ninesctl sql-verifier: cannot make the verifier (crypto library)\n");
        return 1;
    }
    printf("sql_user %s %s\n", name, v);
    return 0;
}
