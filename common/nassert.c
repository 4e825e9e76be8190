/* Always-on assert reporting and the fault-injection registry. */
#include "nassert.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Thread_local unsigned nines_ctx_node;

_Noreturn void nines_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "ninesdb: assertion failed on node %u at %s:%d: %s\n",
            nines_ctx_node, file, line, expr);
    fflush(stderr);
    abort();
}

#ifdef NINES_FAULTS
#define FAULT_MAX 64
struct fault {
    char name[48];
    int count;
};
static struct fault faults[FAULT_MAX];
static int nfaults;
static bool env_loaded;
static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
/* Fast path: no point armed (and the environment read) means no lock. */
static _Atomic int fault_any = -1; /* -1: environment not read yet */

static struct fault *fault_find(const char *name, bool create)
{
    for (int i = 0; i < nfaults; i++)
        if (strcmp(faults[i].name, name) == 0)
            return &faults[i];
    if (!create || nfaults == FAULT_MAX)
        return NULL;
    struct fault *f = &faults[nfaults++];
    snprintf(f->name, sizeof f->name, "%s", name);
    f->count = 0;
    return f;
}

/* NINES_FAULTS="name[:count],name2" arms points at first use. */
static void fault_load_env(void)
{
    env_loaded = true;
    const char *env = getenv("NINES_FAULTS");
    if (!env)
        return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", env);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        int count = -1;
        if (colon) {
            *colon = '\0';
            count = atoi(colon + 1);
        }
        struct fault *f = fault_find(tok, true);
        if (f)
            f->count = count;
    }
    fault_any = nfaults > 0;
}

void nines_fault_arm(const char *name, int count)
{
    pthread_mutex_lock(&fault_mu);
    if (!env_loaded)
        fault_load_env();
    struct fault *f = fault_find(name, true);
    if (f)
        f->count = count;
    fault_any = 1;
    pthread_mutex_unlock(&fault_mu);
}

bool nines_fault_hit(const char *name)
{
    if (fault_any == 0)
        return false;
    bool hit = false;
    pthread_mutex_lock(&fault_mu);
    if (!env_loaded)
        fault_load_env();
    struct fault *f = fault_find(name, false);
    if (f && f->count != 0) {
        hit = true;
        if (f->count > 0)
            f->count--;
    }
    pthread_mutex_unlock(&fault_mu);
    return hit;
}
#endif
