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

#define CTL_PW_MAX 1024

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
    if (pw_arg) {
        if (strlen(pw_arg) > CTL_PW_MAX)
            return usage_err("the password is longer than 1024 bytes");
        snprintf(pw, sizeof pw, "%s", pw_arg);
    } else if (!fgets(pw, sizeof pw, stdin)) {
        return usage_err("no password on stdin");
    } else {
        size_t n = strlen(pw);
        if (n > CTL_PW_MAX && pw[n - 1] != '\n') {
            explicit_bzero(pw, sizeof pw);
            return usage_err("the password is longer than 1024 bytes");
        }
        while (n && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
            pw[--n] = '\0';
    }
    if (!pw[0])
        return usage_err("the password is empty");
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
