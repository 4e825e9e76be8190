/* Deadlock detection on the wait-for graph (see kernel/README.md "Record locks").
 *
 * The graph is not stored: the edges of a waiting transaction W, whose one
 * pending request w sits in the queue of head H, are derived from H:
 *   W -> every other holder of H whose granted mode conflicts with w's mode,
 *   W -> every request ahead of w in H's queue whose mode conflicts with w's.
 * A transaction waits for at most one request, so all its edges come from
 * one head. A request behind a shield has no edges (it waits for redo, not
 * for a transaction). */
#include "kern_lock_int.h"

#include "nassert.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LK_KEY_SHOW 16 /* key bytes shown in messages */

const char *kern_lock_mode_name(unsigned mode)
{
    switch (mode) {
    case KERN_LOCK_S:
        return "S";
    case KERN_LOCK_X:
        return "X";
    case KERN_LOCK_INC:
        return "INC";
    default:
        return "-";
    }
}

void kern_lock_dl_app(char *buf, size_t cap, size_t *off, const char *fmt, ...)
{
    if (*off + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, cap - *off, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= cap - *off) {
        *off = cap - 1;
        if (cap > 4)
            memcpy(buf + cap - 4, "...", 4);
        return;
    }
    *off += (size_t)n;
}

void kern_lock_dl_name(char *buf, size_t cap, size_t *off, const struct lk_head *h)
{
    kern_lock_dl_app(buf, cap, off, "table %" PRIu32 " fragment %" PRIu32 " key ", h->table, h->frag);
    if (h->keylen == 0)
        kern_lock_dl_app(buf, cap, off, "(empty)");
    uint32_t show = h->keylen < LK_KEY_SHOW ? h->keylen : LK_KEY_SHOW;
    for (uint32_t i = 0; i < show; i++)
        kern_lock_dl_app(buf, cap, off, "%02x", h->key[i]);
    if (show < h->keylen)
        kern_lock_dl_app(buf, cap, off, "..(%" PRIu32 " bytes)", h->keylen);
}

struct lk_txn *kern_lock_dl_next(struct lk_dlframe *f)
{
    const struct lk_req *w = f->txn->wait;
    if (!w || w->wstate != LK_W_QUEUED)
        return NULL;
    for (;;) {
        switch (f->phase) {
        case 0: /* holders */
            while (f->cur) {
                struct lk_req *g = f->cur;
                f->cur = g->g_next;
                if (g != w && !lk_compat(g->granted, w->want))
                    return g->txn;
            }
            f->phase = 1;
            f->cur = w->head->wq_first;
            break;
        case 1: /* requests ahead in the queue */
            while (f->cur && f->cur != w) {
                struct lk_req *q = f->cur;
                f->cur = q->w_next;
                if (!lk_compat(q->want, w->want))
                    return q->txn;
            }
            f->phase = 2;
            return NULL;
        default:
            return NULL;
        }
    }
}

static void dl_push(struct kern_lock_mgr *m, size_t *sp, struct lk_txn *t)
{
    N_ASSERT(*sp < m->dlcap);
    struct lk_dlframe *f = &m->dl[(*sp)++];
    f->txn = t;
    f->phase = 0;
    f->cur = t->wait->head->granted;
}

/* Depth-first search from t with per-search visit marks: every transaction
 * is expanded at most once, so the cost is O(transactions reached + edges
 * scanned). A node already expanded in this search without having led back
 * to t cannot lead back to t later, so skipping it loses no cycle. The stack
 * is the current path t -> ... -> top; an edge from top to t closes a cycle. */
struct lk_txn *kern_lock_dl_find(struct kern_lock_mgr *m, struct lk_txn *t, char *buf, size_t cap)
{
    N_ASSERT(t->wait && t->wait->wstate == LK_W_QUEUED);
    uint64_t epoch = ++m->dl_epoch;
    size_t sp = 0;
    m->st.dl_searches++;
    t->dl_mark = epoch;
    m->st.dl_visits++;
    dl_push(m, &sp, t);
    while (sp) {
        struct lk_txn *n = kern_lock_dl_next(&m->dl[sp - 1]);
        if (!n) {
            sp--;
            continue;
        }
        if (n == t)
            break;
        if (n->dl_mark == epoch)
            continue;
        n->dl_mark = epoch;
        m->st.dl_visits++;
        if (n->wait && n->wait->wstate == LK_W_QUEUED)
            dl_push(m, &sp, n);
    }
    if (!sp)
        return NULL;

    /* Cycle: dl[0].txn (= t) -> dl[1].txn -> ... -> dl[sp-1].txn -> t. */
    struct lk_txn *victim = t;
    for (size_t i = 1; i < sp; i++)
        if (m->dl[i].txn->id > victim->id)
            victim = m->dl[i].txn;
    size_t off = 0;
    buf[0] = '\0';
    kern_lock_dl_app(buf, cap, &off,
                     "deadlock (cycle of %zu, victim txn %" PRIu64 ", the youngest): ", sp,
                     victim->id);
    for (size_t i = 0; i < sp; i++) {
        const struct lk_txn *a = m->dl[i].txn;
        const struct lk_txn *b = m->dl[(i + 1) % sp].txn;
        kern_lock_dl_app(buf, cap, &off, "%stxn %" PRIu64 " waits for txn %" PRIu64 " (%s on ",
                         i ? "; " : "", a->id, b->id, kern_lock_mode_name(a->wait->want));
        kern_lock_dl_name(buf, cap, &off, a->wait->head);
        kern_lock_dl_app(buf, cap, &off, ")");
    }
    return victim;
}
