/* Logging (internal, common): one line per event on stderr,
 * "2026-11-24T07:30:00.123456Z n3 WARN net: closing peer 2: bad magic". */
#ifndef NINES_NLOG_H
#define NINES_NLOG_H

enum nlog_level { NLOG_DEBUG, NLOG_INFO, NLOG_WARN, NLOG_ERROR };

/* Messages below this level are dropped (default INFO; env NINES_LOG=debug). */
void nlog_set_level(enum nlog_level lvl);
enum nlog_level nlog_get_level(void);

void nlog_at(enum nlog_level lvl, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define NLOG_DEBUG(mod, ...) do { if (nlog_get_level() <= NLOG_DEBUG) nlog_at(NLOG_DEBUG, mod, __VA_ARGS__); } while (0)
#define NLOG_INFO(mod, ...)  nlog_at(NLOG_INFO, mod, __VA_ARGS__)
#define NLOG_WARN(mod, ...)  nlog_at(NLOG_WARN, mod, __VA_ARGS__)
#define NLOG_ERROR(mod, ...) nlog_at(NLOG_ERROR, mod, __VA_ARGS__)

#endif
