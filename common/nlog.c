/* Logging: timestamped single lines with node context. */
#include "nlog.h"
#include "nassert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int log_level = -1;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void nlog_set_level(enum nlog_level lvl) { log_level = (int)lvl; }

enum nlog_level nlog_get_level(void)
{
    if (log_level < 0) {
        const char *env = getenv("NINES_LOG");
        log_level = NLOG_INFO;
        for (int i = 0; env && i < 4; i++)
            if (strcasecmp(env, level_names[i]) == 0)
                log_level = i;
    }
    return (enum nlog_level)log_level;
}

void nlog_at(enum nlog_level lvl, const char *mod, const char *fmt, ...)
{
    if ((int)lvl < (int)nlog_get_level())
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ n%u %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000, nines_ctx_node, level_names[lvl], mod);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
