/* Virtual node-set protocol (internal, supervisor): one state machine per
 * node that decides which nodes form the node set of each epoch. Pure: no
 * sockets, no clock, no runtime — inputs are calls (messages, suspicions,
 * the quorum lease, time), outputs go through struct ns_ops. The supervisor
 * wires it to the runtime (sup_node.c); tests drive several instances over
 * a simulated network (tests/unit/sup_ns_test.c). supervisor/README.md
 * "Node set" has the algorithm, the rules and the message sequences. */
#ifndef NINES_SUP_NS_H
#define NINES_SUP_NS_H
#include "nines_net.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

#define NS_MAX_NODES 64
#define NS_BIT(id) ((uint64_t)1 << ((id) - 1))

struct ns_view {
    uint64_t epoch;         /* 0: none */
    uint64_t members;       /* bit (id - 1) */
    uint64_t current;       /* members whose replicas are current */
    uint64_t standby_only;  /* current members that came back (rebuilt) and hold no
                             * primary until takeback; a subset of current, itself a
                             * subset of members (view_ok) */
    uint32_t coordinator;   /* first member in the line of succession */
    uint64_t inc[NS_MAX_NODES + 1]; /* each member's incarnation (0 for non-members) */
    uint64_t since[NS_MAX_NODES + 1]; /* each standby-only node's epoch of becoming
                                       * current (0 for the others; rt_nodeset.since) */
    bool restart;           /* the first set after a whole-cluster restart: its current
                             * nodes recover from their disks (rt_nodeset.restart) */
    uint64_t restart_gci;   /* ... keeping the commits of epochs up to this one */
};

/* Rounds are ordered by (epoch, round, coord). */
struct ns_ballot {
    uint64_t epoch;
    uint32_t round, coord;
};

/* This node's HA state. */
enum ns_ha {
    NS_HA_JOINING = 1,  /* no set installed yet: serves nothing, asks to join */
    NS_HA_ACTIVE,       /* member of the installed set and hears a quorum: serves */
    NS_HA_ISOLATED,     /* member, but has not heard a quorum of the members
                         * lately: serves nothing until it does again or a new
                         * set is installed */
    NS_HA_OUT,          /* the installed set does not contain it: serves
                         * nothing, asks to rejoin */
};

/* The coordinator's round. */
enum ns_round {
    NS_R_IDLE = 0,
    NS_R_BUILD,         /* phase 1: NS_BUILD_REQ sent, collecting promises */
    NS_R_REASK,         /* phase 1 again for the silent nodes, once */
    NS_R_CONFIRM,       /* a node that answered is suspected by another that answered:
                         * wait two intervals (a stalled node's heartbeats resume) */
    NS_R_RECHECK,       /* then ask the suspecters again: do they still suspect it? */
    NS_R_ARB,           /* exactly half of the members: waiting for the arbitrator */
    NS_R_ACCEPT,        /* phase 2: NS_ACCEPT_REQ sent, collecting acceptances */
};

struct ns_ops {
    /* send a node-set message to node `to` (never this node) */
    void (*send)(void *ctx, uint32_t to, uint32_t type, const ProtobufCMessage *body);
    /* a set was installed, or only `serving` changed (same epoch) */
    void (*install)(void *ctx, const struct ns_view *v, bool serving, const char *reason);
    /* ask the arbitrator (asynchronous: the answer comes back by ns_on_arb) */
    void (*arb_ask)(void *ctx, uint64_t prev_members, const struct ns_view *proposal);
    /* whole-cluster restart: recover this node's replicas from its disk
     * (asynchronous: the outcome comes back by ns_set_recovery); NULL: none */
    void (*recover)(void *ctx);
};

struct ns_config {
    uint32_t self;
    uint64_t configured;    /* every node of the cluster file */
    uint64_t incarnation;
    bool has_arbitrator;
    uint64_t ask_us;        /* phase 1: wait for promises, then re-ask the silent once
                             * and wait as long again; phase 2 waits this long */
    uint64_t report_us;     /* a suspicion reported but no new set after this long:
                             * report again (to the next coordinator when the first is
                             * suspected by then) */
    uint64_t join_us;       /* JOINING / OUT: join request period */
    uint64_t boot_us;       /* bootstrap: wait this long for every configured node
                             * before forming epoch 1 with a majority of them */
    uint64_t arb_us;        /* the arbitrator's answer timeout */
    uint64_t backoff_us;    /* after a failed or pre-empted round */
    /* Whole-cluster restart (supervisor/README.md "Whole-cluster restart"):
     * the last set this node installed before its process started (epoch
     * 0: none; only epoch, members and current are kept on disk), how long
     * a bootstrap waits for every member of the newest such set, and each
     * node's site. */
    struct ns_view persisted;
    uint64_t restart_wait_us;
    uint32_t site[NS_MAX_NODES + 1];
    uint64_t lease_us;      /* a node that stopped hearing a quorum stops serving within
                             * this long (the heartbeat path's lease window): a round
                             * that removes a node it cannot reach in phase 2 waits
                             * this long before it installs */
};

struct ns_stats {
    uint64_t rounds;        /* rounds this node started as coordinator */
    uint64_t installs;      /* sets installed here */
    uint64_t suspicions;    /* suspicions raised here (ring or connection) */
    uint64_t reports_in, reports_out;
    uint64_t no_quorum;     /* rounds that found no quorum */
    uint64_t preempted;     /* rounds given up for a higher ballot */
    uint64_t arb_refused;
    uint64_t unconfirmed;   /* suspicions of answering nodes that did not hold two
                             * intervals later (no one was removed for them) */
    uint64_t rebuilt_current;  /* rebuilt members this coordinator made current */
    uint64_t rebuilt_deferred; /* rebuilt members a round here left not current
                                * because a member left in that round */
    uint64_t takebacks;        /* standby-only bits of nodes staying current cleared by
                                * sets this coordinator decided (takeback) */
    uint64_t takeback_deferred; /* takeback rounds that could not clear it (a member left
                                 * in that round, or an accepted proposal came first) */
};

struct ns_answer {
    bool promised;
    uint64_t incarnation;
    uint64_t suspects;
    bool current;
    uint64_t inst_epoch;
    bool rebuilt;           /* it claims its replicas are rebuilt (NsBuildConf.rebuilt) */
    /* bootstrap of a whole-cluster restart: what it found on its disk */
    uint64_t p_epoch, p_members, p_current; /* its persisted set (p_epoch 0: none) */
    uint64_t restorable;
    uint32_t recovery;      /* enum ns_recovery */
    char detail[160];
};
/* A node's recovery from its own disk (NsBuildConf.recovery; the kernel
 * service's enum ksvc_recovery). */
enum ns_recovery {
    NS_RC_UNKNOWN = 0, NS_RC_OK = 1, NS_RC_FAILED = 2, NS_RC_NOTHING = 3,
};

struct ns {
    struct ns_config cfg;
    const struct ns_ops *ops;
    void *ctx;
    uint64_t now, start;
    enum ns_ha ha;
    uint64_t lease_until;           /* the heartbeat path's lease: a quorum of members
                                     * confirmed this node's epoch until then */
    char reason[160];               /* !serving: why */
    uint64_t isolated_since;        /* entered NS_HA_ISOLATED at */
    struct ns_view inst;            /* installed set (epoch 0: none) */
    struct ns_ballot promised;      /* highest ballot promised */
    struct ns_ballot acc_ballot;    /* a proposal accepted (acc_ballot.epoch 0: none) */
    bool excluded;                  /* accepted a proposal without this node: serves
                                     * nothing until a set is installed */
    struct ns_view acc;
    uint64_t suspects;              /* nodes this node does not hear */
    uint64_t heard;                 /* nodes heard from (bootstrap candidates) */
    uint64_t joiners;               /* nodes that asked to join (coordinator) */
    uint64_t reported;              /* suspects reported to this coordinator */
    uint64_t stuck;                 /* members that reported they serve nothing */
    uint64_t rebuilt;               /* members not current that reported they are
                                     * rebuilt for the installed epoch (coordinator) */
    uint64_t rebuilt_epoch;         /* this node's claim (ns_set_rebuilt): its replicas
                                     * are rebuilt in the set of this epoch (0: none;
                                     * any install clears it) */
    /* whole-cluster restart (this node's side) */
    uint64_t restorable;            /* its persisted restorable epoch (ns_set_restorable) */
    uint32_t recovery;              /* enum ns_recovery (ns_set_recovery) */
    char recovery_detail[160];
    bool recover_asked;             /* ops->recover called */
    uint64_t boot_epoch;            /* the newest persisted epoch heard at bootstrap */
    uint64_t restart_log_us;        /* the last "waiting" line */
    uint64_t restart_since;         /* the first restart round's start */
    uint32_t tb_node;               /* coordinator: the next proposal built on the set of
                                     * tb_epoch clears this node's standby-only bit
                                     * (ns_takeback; 0: none; consumed by that proposal,
                                     * cleared by any install) */
    uint64_t tb_epoch;
    /* coordinator round */
    enum ns_round rs;
    struct ns_ballot b;
    struct ns_view base;            /* the set the round replaces */
    struct ns_view proposal;
    uint64_t asked, promised_by, answered, accepted_by;
    bool confirmed;                 /* this round's suspicions were confirmed once */
    uint64_t recheck;               /* NS_R_RECHECK: suspecters not answered again yet */
    uint64_t accept_start;
    uint64_t quorum_at;             /* phase 2 reached a quorum at this time */
    uint64_t down;                  /* nodes whose host closed their connections */
    struct ns_answer ans[NS_MAX_NODES + 1];
    struct ns_ballot best_acc;      /* highest accepted ballot among the promises */
    struct ns_view best_view;
    bool arb_granted;
    uint32_t max_round;             /* highest round number seen for epochs above inst */
    uint64_t round_deadline;
    uint64_t idle_until;            /* backoff: no new round before this */
    /* reports and joins */
    uint64_t report_deadline;
    uint32_t reported_to;
    uint64_t join_deadline;
    uint64_t behind_until;          /* ns_peer_epoch: no second question before this */
    struct ns_stats st;
};

void ns_init(struct ns *ns, const struct ns_config *cfg, const struct ns_ops *ops, void *ctx,
             uint64_t now);
/* Time passes: fire whatever is due. */
void ns_tick(struct ns *ns, uint64_t now);
/* The earliest time ns_tick has something to do (0: nothing pending). */
uint64_t ns_deadline(const struct ns *ns);

/* Liveness inputs from the heartbeat path and the connections. */
void ns_suspect(struct ns *ns, uint32_t node, uint64_t now);
/* Heard from node's process `inc` (0: unknown): it is alive. A member's
 * node heard with another incarnation restarted: its member is gone. */
void ns_hear(struct ns *ns, uint32_t node, uint64_t inc, uint64_t now);
/* The node's host closed its connections (EOF or reset, not a timeout):
 * its process is gone. Suspects it and spares a round that removes it the
 * lease wait (supervisor/README.md "Fencing"). */
void ns_down(struct ns *ns, uint32_t node, uint64_t now);
/* The lease: the latest confirmations (ns_confirms) by a quorum of the
 * installed members give it until `until`. The lease granted is the
 * latest end ever given (never shortened: a lease once granted holds
 * until it ends); serving needs it, and coming back from ISOLATED needs
 * `until` itself to hold. */
void ns_lease(struct ns *ns, uint64_t until, uint64_t now);
/* What this node advertises in its heartbeats: its installed epoch (round
 * and coord 0), or the ballot of a proposal it accepted that includes it;
 * epoch 0 (nothing) while it is outside its installed set. */
struct ns_ballot ns_adv(const struct ns *ns);
/* The lease rule (ns_confirms) as a snapshot the I-am-alive thread can
 * apply on its own (sup_hb.c keeps the lease in real time). */
struct ns_lease_rule {
    uint64_t inst_epoch;
    uint64_t members;                /* the installed set's members: the voters */
    uint64_t inc[NS_MAX_NODES + 1];
    struct ns_ballot mine;           /* ns_adv: epoch 0 = confirms nothing */
};
void ns_lease_rule(const struct ns *ns, struct ns_lease_rule *out);
bool ns_rule_confirms(const struct ns_lease_rule *r, uint32_t node, uint64_t inc,
                      const struct ns_ballot *adv);
/* Does node `node` (process `inc`) advertising `adv` confirm this node's
 * membership (its lease)? Only a member of the installed set, and only
 * while that member has not accepted anything this node has not: when this
 * node accepted a proposal for the next epoch, a member advertising the
 * same ballot; otherwise a member advertising an epoch no newer than the
 * installed one. supervisor/README.md "Fencing". */
bool ns_confirms(const struct ns *ns, uint32_t node, uint64_t inc, const struct ns_ballot *adv);
/* A peer's heartbeat or message carries `epoch`: a newer one means this
 * node missed an install; it asks that peer for the set. */
void ns_peer_epoch(struct ns *ns, uint32_t node, uint64_t epoch, uint64_t now);

/* The kernel service says every replica placed on this node is rebuilt
 * and takes its primary's live stream in the node set of `epoch`
 * (KSVC_MSG_REBUILT). The claim holds only while this process is a member
 * of the installed set of that very epoch and not current; any new install
 * clears it (the kernel service claims again for the new set). While it
 * holds, the node answers NS_BUILD_CONF with rebuilt and sends
 * NS_REPORT_ORD(rebuilt) to its coordinator, again every report_us; a
 * round where no member leaves makes it current and standby-only
 * (supervisor/README.md "Node set"). 0 = taken (also when already held);
 * NINES_ESTALE: `epoch` is not the installed set's; NINES_ENOTMEMBER: this
 * process is not a member of it; NINES_ESTATE: it is current already. */
int ns_set_rebuilt(struct ns *ns, uint64_t epoch, uint64_t now);
/* The claim holds (ns_set_rebuilt, not yet cleared). */
bool ns_rebuilt(const struct ns *ns);

/* Takeback (supervisor/README.md "Takeback"): this coordinator runs a round
 * whose proposal clears standby-only node `node`'s bit (and its epoch of
 * becoming current), built on the installed set of `epoch` — after the
 * supervisor had every current node drain the primaries that move to it.
 * As for rebuilt members, only in a round where no member process leaves
 * and no current member stops being current; else the bit stays and the
 * request is dropped (the supervisor tries again). 0 = a round is asked for;
 * NINES_ESTALE: `epoch` is not the installed set's; NINES_ESTATE: this node
 * does not coordinate it, or `node` is not standby-only in it. */
int ns_takeback(struct ns *ns, uint32_t node, uint64_t epoch, uint64_t now);
/* This node accepted a proposal for an epoch after `epoch` that it has not
 * installed (the kernel service holds a takeback drain while it has). */
bool ns_accepted_after(const struct ns *ns, uint64_t epoch);

/* Whole-cluster restart: this node's persisted restorable epoch, and the
 * outcome of its recovery (ops->recover). */
void ns_set_restorable(struct ns *ns, uint64_t gci);
void ns_set_recovery(struct ns *ns, uint32_t state, const char *detail, uint64_t now);

/* Messages (from = the sending node). */
void ns_on_report(struct ns *ns, uint32_t from, const Nines__NsReportOrd *r, uint64_t now);
void ns_on_build_req(struct ns *ns, uint32_t from, const Nines__NsBuildReq *r, uint64_t now);
void ns_on_build_conf(struct ns *ns, uint32_t from, const Nines__NsBuildConf *r, uint64_t now);
void ns_on_build_ref(struct ns *ns, uint32_t from, const Nines__NsBuildRef *r, uint64_t now);
void ns_on_accept_req(struct ns *ns, uint32_t from, const Nines__NsAcceptReq *r, uint64_t now);
void ns_on_accept_conf(struct ns *ns, uint32_t from, const Nines__NsAcceptConf *r, uint64_t now);
void ns_on_accept_ref(struct ns *ns, uint32_t from, const Nines__NsAcceptRef *r, uint64_t now);
void ns_on_install(struct ns *ns, uint32_t from, const Nines__NsInstallOrd *r, uint64_t now);
/* The arbitrator's answer to ops->arb_ask (granted; else refused or no answer). */
void ns_on_arb(struct ns *ns, bool granted, const char *why, uint64_t now);

/* Serving: ACTIVE and the lease holds at `now`. */
bool ns_serving_at(const struct ns *ns, uint64_t now);
bool ns_serving(const struct ns *ns);
/* Is node `id` with incarnation `inc` a member of v? */
bool ns_is_member(const struct ns_view *v, uint32_t id, uint64_t inc);
const char *ns_ha_name(enum ns_ha ha);
const char *ns_round_name(enum ns_round r);
unsigned ns_popcount(uint64_t x);
#endif
