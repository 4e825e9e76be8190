/* Distribution dictionary service (API for supervisor/ and tests): the
 * node's copy of the distribution dictionary, its file, the two-phase
 * dictionary transaction, catch-up from peers and the admin requests. Its
 * own task, RT_SVC_DICT. dict/svc/README.md.
 *
 * Other services never see its state: they read the served dictionary
 * through the published accessor dsvc_current (or dsvc_current_fn, the
 * same as a callback) and hear of a new one through an install
 * subscription. Everything runs on the node's executor thread. */
#ifndef NINES_DSVC_H
#define NINES_DSVC_H
#include "dict/dict.h"
#include "runtime/rt.h"

#include <stdbool.h>

struct dsvc;

/* Create the service for rt's node (the dictionary over the cluster file's
 * node list, version 0, until START loads the file), register its task
 * RT_SVC_DICT and subscribe it to peer up/down events. */
int dsvc_create(struct dsvc **out, struct rt *rt);
/* After rt_destroy (no save is running then). NULL is allowed. */
void dsvc_destroy(struct dsvc *d);

/* The published accessor: the dictionary this node serves now (never
 * NULL). Read it afresh on every request; the pointer is valid until the
 * next install (today an install replaces the content at the same
 * address, but readers must not rely on that). */
const struct dict *dsvc_current(const struct dsvc *d);
/* The same, shaped as the accessor callback other services are given
 * (txc_config.dict, ksvc_config.dict): ctx is the struct dsvc. */
const struct dict *dsvc_current_fn(void *ctx);

/* Install subscription: fn(ctx, d, live_commit) runs on the executor
 * right after a dictionary was installed — at START (the loaded file,
 * live_commit false), after a dictionary commit this node took part in
 * (live_commit true) and after a catch-up from a peer (false) — before
 * the new version is saved or confirmed to anyone. The supervisor wires
 * the kernel service's ksvc_dict_changed here. */
typedef void (*dsvc_install_fn)(void *ctx, const struct dict *d, bool live_commit);
#define DSVC_SUBS_MAX 4
int dsvc_subscribe_install(struct dsvc *d, dsvc_install_fn fn, void *ctx);

/* The answer to a change a task of this node sent with DictChangeReq.reply_svc
 * set (a local message to that task; never on the wire): cookie = the
 * request's ref; err = 0 (committed) or the NINES_E* refusal; body = a
 * Nines__DictChangeConf (version, moved, note) or Nines__DictChangeRef
 * (error, reason), valid during the handler. */
enum { DSVC_MSG_CHANGE_DONE = 0x40000 };

/* The dictionary coordinator in this node's view: the lowest id among this
 * node and the peers it reaches now. */
uint32_t dsvc_coordinator(const struct dsvc *d);
/* This node plus the peers it reaches now. */
dict_liveset dsvc_live(const struct dsvc *d);

/* Handlers named in sup_msgtab. */
void dsvc_on_change_req(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_change_ans(struct rt *rt, void *st, struct rt_msg *m); /* CONF and REF */
void dsvc_on_prepare_req(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_prepare_conf(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_prepare_ref(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_commit_req(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_commit_conf(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_commit_ref(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_abort_req(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_version_req(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_version_conf(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_fetch_req(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_fetch_conf(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_fetch_ref(struct rt *rt, void *st, struct rt_msg *m);
void dsvc_on_get_req(struct rt *rt, void *st, struct rt_msg *m);
#endif
