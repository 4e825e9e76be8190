/* ninesctl commands kept in their own files (internal to tools/). */
#ifndef NINES_CTL_H
#define NINES_CTL_H
#include "conf.h"

/* ninesctl replicas [--table ID] [--json]: every fragment's primary and
 * hot-standby digests side by side; exit 0 when all pairs are equal and
 * every fragment has two replicas, 1 otherwise. */
int ctl_cmd_replicas(const struct nines_conf *c, int argc, char **argv);
#endif
