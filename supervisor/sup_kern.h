/* Kernel service (internal, supervisor): the message face of this node's
 * database kernel — its fragment replicas (kernel/kern_frag.h), created
 * from the distribution dictionary, and its record lock manager
 * (kernel/kern_lock.h). Task RT_SVC_KERN. supervisor/README.md "Kernel
 * service". */
#ifndef NINES_SUP_KERN_H
#define NINES_SUP_KERN_H
#include "dict/dict.h"
#include "runtime/rt.h"

#include <stddef.h>

struct sup;
struct upd;
struct sup_kern;

#define SUP_KERN_LOCK_TIMEOUT_MS 2000 /* a lock wait longer than this aborts */
#define SUP_KERN_TICK_MS 50           /* lock timeout check while waits exist */
#define SUP_KERN_SCAN_DEFAULT 1000    /* SCAN rows when limit is 0 */
#define SUP_KERN_SCAN_MAX 10000       /* SCAN rows at most */

/* Create the service for s's node, register its task, and attach it to s
 * (s->kern) so dictionary changes reach it. u: the node's update channel. */
int sup_kern_init(struct sup_kern **out, struct sup *s, struct upd *u);
/* After rt_destroy. */
void sup_kern_fini(struct sup_kern *k);

/* The dictionary now served is d: create the replicas placed on this node
 * that do not exist yet, drop those of tables no longer there. k may be
 * NULL (no kernel service on this node). */
/* live_commit: the change is a dictionary commit this node took part in
 * (new replicas are empty and correct); false at start (loaded file) and
 * after a catch-up from a peer (new replicas are marked lost). */
void sup_kern_dict_changed(struct sup_kern *k, const struct dict *d, bool live_commit);

/* Introspection (tests, status). */
size_t sup_kern_nreplicas(const struct sup_kern *k);
size_t sup_kern_ntxns(const struct sup_kern *k);

/* Handlers named in sup_msgtab. */
void sup_kern_on_event(struct rt *rt, void *st, struct rt_msg *m);
void sup_kern_on_op_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_kern_on_prepare_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_kern_on_commit_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_kern_on_abort_req(struct rt *rt, void *st, struct rt_msg *m);
void sup_kern_on_digest_req(struct rt *rt, void *st, struct rt_msg *m);
#endif
