/* Shared by the drill cluster tests (drill_kill_test.c, drill_partition_test.c):
 * running tools/drill/drill.sh and the switch that makes the failure drills
 * part of the default test command (tools/drill/README.md "In the default
 * test command").
 *
 * The drills assert issue 9's "Done when" behaviour (takeover, fencing,
 * exactly-once failover). Until the takeover work is merged they fail, so
 * the default test command runs only the harness checks (a drill without a
 * fault must pass) and skips the failure drills with a message — unless
 * NINES_DRILLS_REQUIRED=1. When the takeover lands, the lead flips
 * DRILLS_REQUIRED_DEFAULT to 1 (NINES_DRILLS_REQUIRED=0 then turns them
 * off for one run). */
#ifndef NINES_TESTS_DRILL_H
#define NINES_TESTS_DRILL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define DRILLS_REQUIRED_DEFAULT 1

static inline int drills_required(void)
{
    const char *e = getenv("NINES_DRILLS_REQUIRED");
    if (e && *e)
        return strcmp(e, "0") != 0;
    return DRILLS_REQUIRED_DEFAULT;
}

/* The whole-cluster restart drills (tools/drill/drill.sh kill-all,
 * kill-all-bad-log) run by default (NINES_KILLALL_REQUIRED=0 turns them
 * off). */
#define KILLALL_REQUIRED_DEFAULT 1

static inline int killall_required(void)
{
    const char *e = getenv("NINES_KILLALL_REQUIRED");
    if (e && *e)
        return strcmp(e, "0") != 0;
    return KILLALL_REQUIRED_DEFAULT;
}

/* Run "tools/drill/drill.sh NAME" with short load phases; its output goes
 * to out (truncated) and, when it fails, to stdout. Returns the script's
 * exit status (0 pass, 1 a drill failed, 2 setup). SKIP lines pass. */
static inline int drill_run(const char *name, char *out, size_t outn)
{
    char cmd[640];
    /* sanitizer builds run several times slower and their executors stall
     * longer: heartbeats every 30 ms there (the defaults' 10 ms assume a
     * release build) */
    const char *bin = getenv("NINES_BIN");
    const char *hb = bin && (strstr(bin, "asan") || strstr(bin, "tsan")) ? "HEARTBEAT_MS=${HEARTBEAT_MS:-30} " : "";
    snprintf(cmd, sizeof cmd,
             "%sLOAD_S=${LOAD_S:-1} AFTER_S=${AFTER_S:-3} SETTLE_MS=${SETTLE_MS:-4000} "
             "tools/drill/drill.sh %s 2>&1", hb, name);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, outn - 1, p);
    out[n] = '\0';
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0)
        ;
    int st = pclose(p);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc)
        printf("\n%s\n", out);
    return rc;
}

static inline void drill_skip(const char *what, const char *why)
{
    printf("\n  SKIP %s: %s\n", what, why);
}
#endif
