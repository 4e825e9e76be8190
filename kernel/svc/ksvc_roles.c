/* Kernel service: this node's replicas and their roles, computed from the
 * dictionary and the installed node set (dict_frag_roles) on every node-set
 * install and every dictionary install — never from sockets, never from
 * the dictionary's primary/standby alone. README "Roles from the node set". */
#include "ksvc_int.h"

#include "nassert.h"
#include "nines/errors.h"
#include "nlog.h"

#include <stdio.h>
#include <string.h>

/* The node a primary replica's log goes to: its standby (BOTH), the
 * log-copy node (ALONE; 0 when the other site has no current node), none
 * (SINGLE). */
static uint32_t sk_ship_to(const struct dict_roles *ro)
{
    switch (ro->state) {
    case DICT_FRAG_BOTH:
        return ro->standby;
    case DICT_FRAG_ALONE:
        return ro->logcopy;
    case DICT_FRAG_SINGLE:
    case DICT_FRAG_DOWN:
        return 0;
    default:
        return 0;
    }
}

int sk_write_allowed(const struct ksvc *k, const struct sk_rep *r)
{
    char why[256];
    if (r->ro.state == DICT_FRAG_ALONE && r->ro.logcopy == 0 &&
        !sk_dlog_sole_ok(k, why, sizeof why)) /* else commits wait for the local fsync */
        return nines_err(NINES_EUNREACHABLE, "not committed: table %s fragment %u is "
                         "primary-alone on node %u and no node of the other site is in the "
                         "node set (epoch %llu), and %s; writes to it are refused until a node "
                         "of the other site is back", r->tname, r->frag, k->self,
                         (unsigned long long)r->ro_epoch, why);
    return 0;
}

/* A primary replica ships to `to`: a new target (the standby left, the
 * log-copy node changed) releases the confirmations that waited for the
 * old one, as when a standby is dropped (README "Roles"). */
static int sk_ship_target(struct ksvc *k, struct sk_rep *r, uint32_t to)
{
    if (!r->ship) {
        int rc = upd_ship_add(k->u, r->f, to, &r->ship);
        if (rc)
            return rc;
    } else if (upd_ship_standby(r->ship) != to) {
        uint32_t old = upd_ship_standby(r->ship);
        if (to)
            NLOG_INFO("kern", "table %s fragment %u (%s in node set %llu): its log goes to node "
                      "%u (was %u)", r->tname, r->frag, dict_frag_state_name(r->ro.state),
                      (unsigned long long)r->ro_epoch, to, old);
        else
            NLOG_WARN("kern", "table %s fragment %u (%s in node set %llu): its log goes to no "
                      "node (was %u)%s", r->tname, r->frag, dict_frag_state_name(r->ro.state),
                      (unsigned long long)r->ro_epoch, old,
                      r->ro.state != DICT_FRAG_ALONE ? ""
                      : sk_write_allowed(k, r) == 0
                          ? ": no node of the other site is in the node set, commits wait for "
                            "this node's disk log"
                          : ": no node of the other site is in the node set, writes are refused");
        upd_ship_set_standby(k->u, r->ship, to);
        if (old)
            sk_pend_flush(k, r); /* nobody to wait for any more on the old node */
        if (to)
            sk_remark_prepared(k, r); /* the new target holds every mark (README "Rebuild") */
    }
    r->standby = upd_ship_standby(r->ship);
    return 0;
}

/* This node has no role for r any more (it is not current, or the
 * fragment's roles moved): r stops being served and takes no records. Its
 * tree and log are kept (nothing is destroyed that a rebuild might use),
 * but it is out of service until rebuilt (the durability issue): a standby
 * that missed records holds nothing current, and a former primary is no
 * longer the fragment's truth. Its waiting confirmations are dropped, not
 * sent: whoever holds the fragment now answers for it. */
static void sk_rep_no_role(struct ksvc *k, struct sk_rep *r)
{
    if (r->oos[0])
        return;
    int have = kern_frag_role(r->f);
    if (have == KERN_FRAG_PROMOTING)
        sk_promote_call_off(k, r);
    sk_rep_out_of_service(k, r, "node %u has no role for it in node set %llu (fragment %s, "
                          "primary node %u); its data is kept but not served until it is "
                          "rebuilt", k->self, (unsigned long long)r->ro_epoch,
                          dict_frag_state_name(r->ro.state), r->ro.primary);
    if (r->ship) {
        upd_ship_remove(k->u, r->ship);
        r->ship = NULL;
    }
    r->pn = 0;
    sk_marks_drop(k, r);
    upd_recv_forget(k->u, r->table, r->frag);
    k->st.roles_lost++;
}

/* Make existing replica r what the node set says (`want`: a kernel role, or
 * 0 for none). */
static void sk_rep_apply(struct ksvc *k, struct sk_rep *r, int want)
{
    if (r->oos[0])
        return; /* out of service until rebuilt, whatever the roles say */
    if (!want) {
        sk_rep_no_role(k, r);
        return;
    }
    int have = kern_frag_role(r->f);
    int rc = 0;
    switch (want) {
    case KERN_FRAG_PRIMARY:
        switch (have) {
        case KERN_FRAG_PRIMARY:
            rc = sk_ship_target(k, r, sk_ship_to(&r->ro));
            break;
        case KERN_FRAG_PROMOTING:
            break; /* the takeover in progress ends with UPD_MSG_BARRIER_DONE */
        case KERN_FRAG_HOT_STANDBY:
            sk_promote_begin(k, r, r->prev_primary);
            break;
        default:
            rc = nines_err(NINES_ESTATE, "replica in unknown role %d", have);
            break;
        }
        break;
    case KERN_FRAG_HOT_STANDBY:
        switch (have) {
        case KERN_FRAG_HOT_STANDBY:
            break;
        case KERN_FRAG_PROMOTING:
            sk_promote_call_off(k, r);
            break;
        case KERN_FRAG_PRIMARY:
            /* a takeback (or a dictionary switchover): a hot standby of the
             * new primary when drained, else out of service (ksvc_takeback.c) */
            sk_tb_demote(k, r);
            break;
        default:
            rc = nines_err(NINES_ESTATE, "replica in unknown role %d", have);
            break;
        }
        break;
    default:
        rc = nines_err(NINES_EINVAL, "role %d", want);
        break;
    }
    if (rc)
        NLOG_ERROR("kern", "table %s fragment %u: cannot change role %s -> %s: %s", r->tname,
                   r->frag, kern_frag_role_name(have), kern_frag_role_name(want),
                   nines_errdetail());
    r->role = kern_frag_role(r->f);
}

/* A new replica of (t, frag) in role `role` (non-zero). */
static int sk_rep_create(struct ksvc *k, const struct dict_table *t, uint32_t frag, int role,
                         const struct dict_roles *ro, uint64_t epoch, bool live_commit)
{
    struct sk_rep *r = NULL;
    int rc = sk_rep_new(t, frag, role, &r);
    if (rc == 0) {
        sk_dlog_attach(k, r); /* its records feed the disk log (README "Disk logging") */
        r->ro = *ro;
        r->ro_epoch = epoch;
        if (role == KERN_FRAG_PRIMARY)
            rc = sk_ship_target(k, r, sk_ship_to(ro));
    }
    if (rc == 0)
        rc = kern_lock_set_role(k->locks, t->id, frag,
                                role == KERN_FRAG_PRIMARY ? KERN_LOCK_PRIMARY : KERN_LOCK_STANDBY);
    if (rc) {
        NLOG_ERROR("kern", "cannot create the replica of table %s fragment %u: %s", t->def.name,
                   frag, nines_errdetail());
        if (r && r->ship)
            upd_ship_remove(k->u, r->ship);
        sk_rep_free(r);
        return rc;
    }
    r->seen = true;
    /* Only a table created by a dictionary commit this node took part in
     * starts truly empty. A replica made for a table loaded from disk at
     * start, fetched from a peer, or that this node gets a role for only
     * now (a node-set install) stands for data this process never had:
     * refuse it until recovery rebuilds it (the recovery issue) instead of
     * serving it empty. */
    r->lost = !live_commit;
    if (r->lost)
        NLOG_WARN("kern", "replica of table %s fragment %u (%s) has no data on this node: "
                  "marked lost until it is rebuilt", t->def.name, frag,
                  kern_frag_role_name(role));
    sk_map_put(&k->reps, &r->node);
    return 0;
}

/* A hot standby r that dictionary d no longer places here (reintegration
 * moved it to another node): keep it for KSVC_LEAVE_MS, as it is, while
 * the node set and its fragment's primary stay the same. The primary
 * switches its stream to the new node only at its own install of the
 * same dictionary; records it ships here until then (and those in flight)
 * are still redone here and their READY_INDs sent — the transaction
 * controllers wait for this node's, named in the primary's READY_IND —
 * instead of dropped with the replica. True: kept (r->leave_at_us set). */
static bool sk_leaving(struct ksvc *k, const struct dict *d, struct sk_rep *r, uint64_t epoch)
{
    uint64_t now = rt_now_us(k->rt);
    if (r->leave_at_us && now >= r->leave_at_us)
        return false;
    if (r->rb || r->oos[0] || !r->f || kern_frag_role(r->f) != KERN_FRAG_HOT_STANDBY ||
        r->ro_epoch != epoch)
        return false;
    const struct dict_table *t = dict_table_by_id(d, r->table);
    if (!t || r->frag >= t->nfrags || t->frags[r->frag].primary != r->ro.primary)
        return false;
    if (!r->leave_at_us) {
        r->leave_at_us = now + KSVC_LEAVE_MS * 1000u;
        NLOG_INFO("kern", "table %s fragment %u: the dictionary (version %llu) places this hot "
                  "standby on node %u now; it takes node %u's stream %u ms more, then goes",
                  r->tname, r->frag, (unsigned long long)d->version, t->frags[r->frag].standby,
                  r->ro.primary, KSVC_LEAVE_MS);
    }
    if (!k->leave_armed &&
        rt_timer_add(k->rt, RT_SVC_KERN, r->leave_at_us > now ? r->leave_at_us - now : 0,
                     SK_TIMER_LEAVE) > 0)
        k->leave_armed = true;
    return true;
}

void sk_leave_due(struct ksvc *k)
{
    uint64_t now = rt_now_us(k->rt), next = 0;
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    {
        struct sk_rep *r = (struct sk_rep *)nd;
        if (!r->leave_at_us)
            continue;
        if (now >= r->leave_at_us)
            sk_rep_drop(k, r);
        else if (!next || r->leave_at_us < next)
            next = r->leave_at_us;
    }
    if (next && !k->leave_armed &&
        rt_timer_add(k->rt, RT_SVC_KERN, next - now, SK_TIMER_LEAVE) > 0)
        k->leave_armed = true;
}

void sk_reconcile(struct ksvc *k, const struct dict *d, bool live_commit)
{
    const struct rt_nodeset *ns = rt_nodeset(k->rt);
    if (ns->epoch == 0) {
        /* joining: no roles before the first node set (the supervisor
         * installs one before the services start, so this is a test rig) */
        if (!k->nodeset_logged)
            NLOG_WARN("kern", "no node set installed yet: replicas wait for one");
        k->nodeset_logged = true;
        return;
    }
    struct dict_live live = sk_live(k);
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    ((struct sk_rep *)nd)->seen = false;
    uint32_t created = 0;
    for (uint32_t ti = 0; ti < d->ntables; ti++) {
        const struct dict_table *t = d->tables[ti];
        for (uint32_t f = 0; f < t->nfrags; f++) {
            if (t->frags[f].primary != k->self && t->frags[f].standby != k->self)
                continue; /* no copy of it is placed here */
            struct dict_roles ro;
            if (dict_frag_roles_live(d, t, f, &live, &ro)) {
                NLOG_ERROR("kern", "table %s fragment %u: no roles: %s", t->def.name, f,
                           nines_errdetail());
                continue;
            }
            int role = ro.primary == k->self   ? KERN_FRAG_PRIMARY
                       : ro.standby == k->self ? KERN_FRAG_HOT_STANDBY
                                               : 0;
            struct sk_rep *r = sk_rep_get(k, t->id, f);
            if (r) {
                r->leave_at_us = 0; /* placed here (again) */
                /* a replace (DICT_OP_REPLACE_TABLE) renames a table: same
                 * id, same replica, the new name in messages */
                snprintf(r->tname, sizeof r->tname, "%s", t->def.name);
            }
            if (r && r->rb) {
                /* being rebuilt: its roles are the rebuild's (ksvc_rebuild.c) */
                if (!sk_rb_reconcile_rep(k, r, &ro, ns->epoch))
                    r->seen = false; /* cannot go on: dropped below */
                continue;
            }
            if (r) {
                r->seen = true;
                /* the primary it took records from, if it takes over now */
                if (kern_frag_role(r->f) == KERN_FRAG_HOT_STANDBY)
                    r->prev_primary = r->ro.primary;
                r->ro = ro;
                r->ro_epoch = ns->epoch;
                sk_rep_apply(k, r, role);
                continue;
            }
            if (!role)
                continue; /* nothing to serve or hold here in this node set */
            if (sk_rep_create(k, t, f, role, &ro, ns->epoch, live_commit) == 0)
                created++;
        }
    }
    uint32_t dropped = 0;
    SK_MAP_FOREACH(&k->reps, i, nd, nx)
    {
        struct sk_rep *r = (struct sk_rep *)nd;
        if (!r->seen && sk_leaving(k, d, r, ns->epoch))
            continue;
        if (!r->seen) {
            sk_rep_drop(k, r);
            dropped++;
        }
    }
    if (created || dropped)
        NLOG_INFO("kern", "dictionary version %llu, node set %llu: %u replicas created, %u "
                  "dropped, %zu held", (unsigned long long)d->version,
                  (unsigned long long)ns->epoch, created, dropped, k->reps.n);
}
