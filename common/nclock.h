/* Monotonic clock helpers (internal, common). */
#ifndef NINES_NCLOCK_H
#define NINES_NCLOCK_H
#include <stdint.h>
#include <time.h>

static inline uint64_t nclock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t nclock_us(void) { return nclock_ns() / 1000u; }
static inline uint64_t nclock_ms(void) { return nclock_ns() / 1000000u; }
#endif
