/* Asserts in levels and fault-injection points (internal, common).
 *
 *  N_ASSERT(c)     cheap invariant, always on. On failure prints file, line,
 *                  node id and the expression, then aborts. Only for states
 *                  the process created itself, never for input.
 *  N_DASSERT(c)    expensive check, only in debug builds (MODE=debug).
 *  N_FAULT(name)   true when the fault point `name` is armed (test builds
 *                  with FAULTS=1, armed by nines_fault_arm or the
 *                  NINES_FAULTS environment variable "name[:count],...");
 *                  always false otherwise.
 */
#ifndef NINES_NASSERT_H
#define NINES_NASSERT_H

#include <stdbool.h>

/* Node id printed in assert and log context (0 = not a node process). */
extern _Thread_local unsigned nines_ctx_node;

_Noreturn void nines_assert_fail(const char *expr, const char *file, int line);

#define N_ASSERT(c) \
    ((c) ? (void)0 : nines_assert_fail(#c, __FILE__, __LINE__))

#ifdef NINES_DEBUG
#define N_DASSERT(c) N_ASSERT(c)
#else
#define N_DASSERT(c) ((void)0)
#endif

#ifdef NINES_FAULTS
bool nines_fault_hit(const char *name);
/* Arm `name` for the next `count` hits (count < 0: forever; 0 disarms). */
void nines_fault_arm(const char *name, int count);
#define N_FAULT(name) nines_fault_hit(name)
#else
#define N_FAULT(name) false
#endif

#endif
