/* ninesctl status: every node's STATUS_CONF (reachability from here,
 * uptime, epoch, peers), the node set the nodes report (epoch, members,
 * current, standby-only, coordinator, each node's HA state), and the
 * arbitrator (reached from here with STATUS_REQ: its last grant and
 * uptime). tools/README.md "ninesctl status" has the output and the JSON
 * keys. */
#include "ctl.h"

#include "arbitrator/arb.h"
#include "nclock.h"
#include "nines/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct arb_view {
    bool configured;
    int err;                  /* 0 = answered */
    char why[200];
    struct arb_status st;
};

/* Healthy: every node answered and sees all its peers; when a node set is
 * reported, every node reports the same one and serves. */
static bool ctl_healthy(const struct nines_conf *c, const struct ctl_node_view *v,
                        const struct ctl_nodeset *ns)
{
    for (uint32_t i = 0; i < c->nnodes; i++) {
        if (v[i].err || !v[i].st)
            return false;
        for (size_t p = 0; p < v[i].st->n_peers; p++)
            if (!v[i].st->peers[p]->reachable)
                return false;
        if (ns->installed && !v[i].st->serving)
            return false;
    }
    return !ns->installed || ns->agreed;
}

static void fmt_uptime(char *buf, size_t n, uint64_t ms)
{
    if (ms < 60000)
        snprintf(buf, n, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(buf, n, "%llum%02llus", (unsigned long long)(ms / 60000),
                 (unsigned long long)(ms / 1000 % 60));
    else
        snprintf(buf, n, "%lluh%02llum", (unsigned long long)(ms / 3600000),
                 (unsigned long long)(ms / 60000 % 60));
}

/* A node's place in the node set: current / member (not current) / out. */
/* A wall clock in µs as "HH:MM:SS UTC" ("?" for 0). */
static void ctl_wall_str(uint64_t us, char *buf, size_t n)
{
    if (!us) {
        snprintf(buf, n, "?");
        return;
    }
    time_t t = (time_t)(us / 1000000u);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%H:%M:%S UTC", &tm))
        snprintf(buf, n, "%llu us", (unsigned long long)us);
}

static const char *set_place(const struct ctl_nodeset *ns, uint32_t id)
{
    if (!ns->installed)
        return "-";
    uint64_t bit = (uint64_t)1 << (id - 1);
    if (ns->current & bit)
        return "current";
    if (ns->members & bit)
        return "member";
    return "out";
}

static void print_nodeset_line(const struct ctl_nodeset *ns)
{
    char m[200], cur[200];
    if (!ns->installed) {
        printf("node set: no node set installed (no node reports one)\n");
        return;
    }
    printf("node set: epoch %llu, members %s, current %s", (unsigned long long)ns->epoch,
           ctl_set_str(ns->members, false, m, sizeof m),
           ctl_set_str(ns->current, false, cur, sizeof cur));
    if (ns->standby_only)
        printf(", standby-only %s", ctl_standby_str(ns->standby_only, ns->since, m, sizeof m));
    printf(", coordinator %u", ns->coordinator);
    if (ns->agreed)
        printf(" (every node that answered reports it)\n");
    else
        printf(" (reported by node %u; NOT every node agrees, see below)\n", ns->from);
}

static void print_arb_line(const struct nines_conf *c, const struct arb_view *a)
{
    if (!a->configured) {
        printf("arbitrator: none configured (a tie between two halves cannot be broken)\n");
        return;
    }
    printf("arbitrator: %s:%u ", c->arbitrator_host, c->arbitrator_port);
    if (a->err) {
        printf("UNREACHABLE from here (%s)\n", a->why);
        return;
    }
    char up[32], m[200];
    fmt_uptime(up, sizeof up, a->st.uptime_ms);
    printf("reachable from here, up %s, ", up);
    if (a->st.epoch)
        printf("last grant: epoch %llu to members %s", (unsigned long long)a->st.epoch,
               ctl_set_str(a->st.members, false, m, sizeof m));
    else
        printf("nothing granted yet");
    printf(" (since start: %llu votes, %llu grants, %llu refused)\n",
           (unsigned long long)a->st.votes, (unsigned long long)a->st.grants,
           (unsigned long long)a->st.refusals);
}

static void print_table(const struct nines_conf *c, const struct ctl_node_view *v,
                        const struct ctl_nodeset *ns, const struct arb_view *a)
{
    printf("cluster %s: %u nodes in 2 sites\n", c->cluster, c->nnodes);
    print_nodeset_line(ns);
    print_arb_line(c, a);
    printf("%-5s %-4s %-22s %-12s %-9s %-6s %-8s %-12s %-9s %s\n", "NODE", "SITE", "ADDRESS",
           "STATE", "UPTIME", "EPOCH", "SET", "HA-STATE", "TRANSPORT",
           "PEERS (reachable from that node)");
    for (uint32_t i = 0; i < c->nnodes; i++) {
        char addr[96], up[32] = "-", peers[256] = "-", epoch[24] = "-";
        snprintf(addr, sizeof addr, "%s:%u", v[i].nc->host, v[i].nc->port);
        const char *state = "unreachable";
        const char *tr = "-", *ha = "-";
        const Nines__StatusConf *st = v[i].st;
        if (!v[i].err && st) {
            state = "up";
            fmt_uptime(up, sizeof up, st->uptime_ms);
            snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)st->epoch);
            tr = st->transport;
            if (st->ha_state && st->ha_state[0])
                ha = st->ha_state;
            size_t off = 0;
            peers[0] = '\0';
            for (size_t p = 0; p < st->n_peers && off < sizeof peers - 16; p++) {
                const Nines__PeerStatus *ps = st->peers[p];
                off += (size_t)snprintf(peers + off, sizeof peers - off, "%s%u:%s", p ? " " : "",
                                        ps->node_id, ps->reachable ? "up" : "DOWN");
            }
        }
        printf("%-5u %-4u %-22s %-12s %-9s %-6s %-8s %-12s %-9s %s\n", v[i].nc->id,
               v[i].nc->site, addr, state, up, epoch, set_place(ns, v[i].nc->id), ha, tr, peers);
        if (v[i].err) {
            printf("      (%s)\n", v[i].why);
            continue;
        }
        if (!st)
            continue;
        if (st->refused_sender || st->refused_epoch)
            printf("      (refused messages: %llu by sender class, %llu by epoch)\n",
                   (unsigned long long)st->refused_sender,
                   (unsigned long long)st->refused_epoch);
        if (st->clients_refused || st->clients_slow_closed || st->refused_inflight)
            printf("      (clients: %llu connected of max %u; refused %llu at "
                   "max_client_connections, %llu requests at max_requests_per_connection %u; "
                   "%llu closed for not reading)\n",
                   (unsigned long long)st->clients, st->max_client_connections,
                   (unsigned long long)st->clients_refused,
                   (unsigned long long)st->refused_inflight, st->max_requests_per_connection,
                   (unsigned long long)st->clients_slow_closed);
        if (st->refused_budget)
            printf("      (table data %llu MiB of memory_budget_mb %u: %llu writes refused)\n",
                   (unsigned long long)(st->table_bytes >> 20), st->memory_budget_mb,
                   (unsigned long long)st->refused_budget);
        const Nines__NodeSet *mine = st->node_set;
        if (ns->installed && (!mine || mine->epoch == 0))
            printf("      (reports no node set)\n");
        else if (ns->installed) {
            uint64_t since[NINES_MAX_NODES + 1];
            ctl_since_of(mine, since);
            if (mine->epoch != ns->epoch || mine->members != ns->members ||
                mine->current != ns->current || mine->standby_only != ns->standby_only ||
                memcmp(since, ns->since, sizeof since) != 0 ||
                mine->coordinator != ns->coordinator) {
                char m[200], cur[200], sb[400];
                printf("      (its node set differs: epoch %llu, members %s, current %s, "
                       "standby-only %s, coordinator %u)\n", (unsigned long long)mine->epoch,
                       ctl_set_str(mine->members, false, m, sizeof m),
                       ctl_set_str(mine->current, false, cur, sizeof cur),
                       ctl_standby_str(mine->standby_only, since, sb, sizeof sb),
                       mine->coordinator);
            }
        }
        if (ns->installed && !st->serving)
            printf("      (NOT SERVING: %s)\n", st->reason && st->reason[0] ? st->reason
                                                                          : "no reason given");
        if (st->ns_rounds || st->ns_installs || st->suspicions)
            printf("      (node set here: %llu rounds coordinated, %llu sets installed, %llu "
                   "suspicions raised)\n", (unsigned long long)st->ns_rounds,
                   (unsigned long long)st->ns_installs, (unsigned long long)st->suspicions);
        if (st->hb_bad || st->hb_withheld || st->hb_unreachable)
            printf("      (heartbeats: %llu sent, %llu received, %llu refused, %llu withheld by "
                   "the watchdog, %llu port-unreachable answers)\n",
                   (unsigned long long)st->hb_sent, (unsigned long long)st->hb_received,
                   (unsigned long long)st->hb_bad, (unsigned long long)st->hb_withheld,
                   (unsigned long long)st->hb_unreachable);
        if (st->dlog_state && st->dlog_state[0] && strcmp(st->dlog_state, "off") != 0) {
            printf("      (disk log %s: durable %llu, buffered %llu bytes, %llu records, %llu "
                   "flushes, %llu fsyncs", st->dlog_state, (unsigned long long)st->dlog_durable,
                   (unsigned long long)st->dlog_buffered, (unsigned long long)st->dlog_records,
                   (unsigned long long)st->dlog_flushes, (unsigned long long)st->dlog_fsyncs);
            if (st->dlog_errors || st->dlog_dropped)
                printf(", %llu failed flushes, %llu records dropped",
                       (unsigned long long)st->dlog_errors, (unsigned long long)st->dlog_dropped);
            if (st->dlog_reason && st->dlog_reason[0])
                printf(": %s", st->dlog_reason);
            printf(")\n");
            if (st->dlog_gaps) {
                char since[32] = "?", back[32] = "not yet";
                ctl_wall_str(st->dlog_gap_wall_us, since, sizeof since);
                if (st->dlog_resumes)
                    ctl_wall_str(st->dlog_resume_wall_us, back, sizeof back);
                printf("      (disk log gaps: %llu, resumed %llu times, %.1f MB dropped; last "
                       "gap since %s, resumed %s at position %llu", 
                       (unsigned long long)st->dlog_gaps, (unsigned long long)st->dlog_resumes,
                       (double)st->dlog_dropped_bytes / 1e6, since, back,
                       (unsigned long long)st->dlog_gap_pos);
                if (st->dlog_unrecoverable)
                    printf("; %u replicas without a checkpoint after it", st->dlog_unrecoverable);
                printf(")\n");
            }
            if (st->dlog_policy && st->dlog_policy[0])
                printf("      (disk log policy %s: %llu commits waited for the fsync, mean %llu "
                       "us, max %llu us; %llu refused, %llu waiting)\n", st->dlog_policy,
                       (unsigned long long)st->dlog_waits,
                       (unsigned long long)(st->dlog_released
                                                ? st->dlog_wait_sum_us / st->dlog_released
                                                : 0),
                       (unsigned long long)st->dlog_wait_max_us,
                       (unsigned long long)st->dlog_refused,
                       (unsigned long long)st->dlog_waiting);
        } else if (st->dlog_state && st->dlog_state[0]) {
            printf("      (disk log off)\n");
        }
        if (st->dlog_segments)
            printf("      (disk log files: %llu segments, %.1f MB from position %llu, %llu "
                   "removed after checkpoints)\n", (unsigned long long)st->dlog_segments,
                   (double)st->dlog_disk_bytes / 1e6, (unsigned long long)st->dlog_first,
                   (unsigned long long)st->dlog_segs_removed);
        if (st->rc_state && st->rc_state[0]) {
            /* a whole-cluster restart recovered this node's disk (or tried) */
            printf("      (restart from disk: %s, %u of %u replicas recovered", st->rc_state,
                   st->rc_recovered, st->rc_replicas);
            if (st->rc_recovered)
                printf(", %llu rows from checkpoints, %llu records redone, in %llu ms",
                       (unsigned long long)st->rc_rows, (unsigned long long)st->rc_redone,
                       (unsigned long long)st->rc_ms);
            if (st->rc_restart_gci || st->rc_undone)
                printf("; commits of epochs up to %llu kept, %llu transactions undone",
                       (unsigned long long)st->rc_restart_gci,
                       (unsigned long long)st->rc_undone);
            if (st->rc_failed && st->rc_detail && st->rc_detail[0])
                printf("; %u not recovered, the first: %s", st->rc_failed, st->rc_detail);
            printf(")\n");
        }
        if (st->ckpt_state && st->ckpt_state[0] && strcmp(st->ckpt_state, "off") != 0) {
            char every[48];
            if (st->ckpt_interval_ms)
                snprintf(every, sizeof every, "every %.1f s", st->ckpt_interval_ms / 1e3);
            else
                snprintf(every, sizeof every, "on demand only");
            printf("      (checkpoints %s, %s: %llu rounds, %llu replica checkpoints",
                   st->ckpt_state, every, (unsigned long long)st->ckpt_rounds,
                   (unsigned long long)st->ckpt_done);
            if (st->ckpt_rounds)
                printf("; last %.1f s ago, %.1f MB, %llu records in %llu ms",
                       st->ckpt_last_age_ms / 1e3, (double)st->ckpt_last_bytes / 1e6,
                       (unsigned long long)st->ckpt_last_records,
                       (unsigned long long)st->ckpt_last_duration_ms);
            if (st->ckpt_missing)
                printf("; %u replicas without one yet", st->ckpt_missing);
            else if (st->ckpt_done)
                printf("; oldest %.1f s", st->ckpt_oldest_age_ms / 1e3);
            if (st->ckpt_abandoned || st->ckpt_failed)
                printf("; %llu abandoned, %llu failed", (unsigned long long)st->ckpt_abandoned,
                       (unsigned long long)st->ckpt_failed);
            if (st->ckpt_error && st->ckpt_error[0])
                printf("; last error: %s", st->ckpt_error);
            printf(")\n");
            if (st->ckpt_removal_held)
                printf("      (disk log segments are all kept: they hold records of an earlier "
                       "process of this node, which no recovery has taken over)\n");
        }
        /* commit epochs (supervisor/README.md "Global checkpoints") */
        if (st->gcp_state && st->gcp_state[0] &&
            (strcmp(st->gcp_state, "off") != 0 || st->gcp_restorable)) {
            printf("      commit epochs: restorable %llu (%llu ms old), %llu rounds, %llu failed",
                   (unsigned long long)st->gcp_restorable,
                   (unsigned long long)st->gcp_restorable_age_ms,
                   (unsigned long long)st->gcp_rounds, (unsigned long long)st->gcp_failed);
            if (st->gcp_failure && st->gcp_failure[0])
                printf(" (%s)", st->gcp_failure);
            printf(", last round %llu us", (unsigned long long)st->gcp_last_us);
            if (strcmp(st->gcp_state, "off") == 0)
                printf(" [off]");
            else
                printf(" [epoch %llu, %s]", (unsigned long long)st->gcp_gci, st->gcp_state);
            if (st->gcp_file_errors)
                printf(" [%llu restorable-file writes failed]",
                       (unsigned long long)st->gcp_file_errors);
            printf("\n");
        }
        /* takeback (supervisor/README.md "Takeback"): the coordinator's
         * attempts, and this node's drains as an interim primary */
        bool tb_busy = st->tb_state && st->tb_state[0] && strcmp(st->tb_state, "idle") != 0 &&
                       strcmp(st->tb_state, "static") != 0 && strcmp(st->tb_state, "off") != 0;
        if (tb_busy || st->tb_done || st->tb_retried) {
            printf("      (takeback: %s", st->tb_state ? st->tb_state : "?");
            if (st->tb_node)
                printf(" node %u, attempt %llu", st->tb_node, (unsigned long long)st->tb_attempt);
            printf("; %llu done, %llu attempts retried", (unsigned long long)st->tb_done,
                   (unsigned long long)st->tb_retried);
            if (st->tb_done)
                printf("; the last moved %u fragments in %.1f ms", st->tb_last_frags,
                       (double)st->tb_last_us / 1000.0);
            if (st->tb_detail && st->tb_detail[0])
                printf("; last failure: %s", st->tb_detail);
            printf(")\n");
        }
        /* self-repair and reintegration (supervisor/README.md "Self-repair",
         * "Reintegration"): nodes away or back, and this coordinator's moves */
        if ((st->rp_nodes && st->rp_nodes[0]) || st->rp_repaired || st->rp_reintegrated) {
            printf("      (self-repair: %s; %llu replicas rebuilt elsewhere, %llu moved back, "
                   "%llu nodes reintegrated", st->rp_nodes && st->rp_nodes[0] ? st->rp_nodes
                                                                          : "every node present",
                   (unsigned long long)st->rp_repaired, (unsigned long long)st->rp_reintegrated,
                   (unsigned long long)st->rp_reint_done);
            if (st->rp_last && st->rp_last[0])
                printf("; last: %s", st->rp_last);
            printf(")\n");
        }
        if (st->tb_draining || st->tb_drains_conf || st->tb_drains_ref || st->tb_refused)
            printf("      (takeback drains here: %u fragments draining now, %llu drained, %llu "
                   "not in time, %llu new transactions told to retry)\n", st->tb_draining,
                   (unsigned long long)st->tb_drains_conf, (unsigned long long)st->tb_drains_ref,
                   (unsigned long long)st->tb_refused);
    }
    printf("health: %s\n", ctl_healthy(c, v, ns) ? "all nodes up, all links up" : "DEGRADED");
}

static void json_set(const char *key, uint64_t set)
{
    char b[256];
    printf(",\"%s\":[%s]", key, ctl_set_str(set, true, b, sizeof b));
}

static void json_nodeset(const struct ctl_nodeset *ns)
{
    printf("{\"installed\":%s", ns->installed ? "true" : "false");
    if (ns->installed) {
        printf(",\"epoch\":%llu", (unsigned long long)ns->epoch);
        json_set("members", ns->members);
        json_set("current", ns->current);
        printf(",\"coordinator\":%u,\"reported_by\":%u,\"agreed\":%s", ns->coordinator, ns->from,
               ns->agreed ? "true" : "false");
        json_set("standby_only", ns->standby_only);
        char b[800];
        printf(",\"standby_since\":[%s]", ctl_since_json(ns->standby_only, ns->since, b, sizeof b));
    }
    printf("}");
}

static void json_arb(const struct nines_conf *c, const struct arb_view *a)
{
    printf("{\"configured\":%s", a->configured ? "true" : "false");
    if (a->configured) {
        printf(",\"address\":\"%s:%u\",\"reachable\":%s", c->arbitrator_host,
               c->arbitrator_port, a->err ? "false" : "true");
        if (a->err) {
            printf(",\"error\":");
            ctl_json_str(a->why);
        } else {
            printf(",\"uptime_ms\":%llu,\"epoch\":%llu", (unsigned long long)a->st.uptime_ms,
                   (unsigned long long)a->st.epoch);
            json_set("members", a->st.members);
            printf(",\"votes\":%llu,\"grants\":%llu,\"refusals\":%llu",
                   (unsigned long long)a->st.votes, (unsigned long long)a->st.grants,
                   (unsigned long long)a->st.refusals);
        }
    }
    printf("}");
}

static void print_json(const struct nines_conf *c, const struct ctl_node_view *v,
                       const struct ctl_nodeset *ns, const struct arb_view *a)
{
    printf("{\"cluster\":");
    ctl_json_str(c->cluster);
    printf(",\"healthy\":%s,\"node_set\":", ctl_healthy(c, v, ns) ? "true" : "false");
    json_nodeset(ns);
    printf(",\"arbitrator\":");
    json_arb(c, a);
    printf(",\"nodes\":[");
    for (uint32_t i = 0; i < c->nnodes; i++) {
        printf("%s{\"id\":%u,\"site\":%u,\"address\":\"%s:%u\",\"reachable\":%s", i ? "," : "",
               v[i].nc->id, v[i].nc->site, v[i].nc->host, v[i].nc->port,
               v[i].err ? "false" : "true");
        if (v[i].err) {
            printf(",\"error\":");
            ctl_json_str(v[i].why);
        } else {
            const Nines__StatusConf *s = v[i].st;
            printf(",\"uptime_ms\":%llu,\"epoch\":%llu,\"transport\":",
                   (unsigned long long)s->uptime_ms, (unsigned long long)s->epoch);
            ctl_json_str(s->transport);
            printf(",\"msgs_in\":%llu,\"msgs_out\":%llu,\"incarnation\":%llu,"
                   "\"refused_sender\":%llu,\"refused_epoch\":%llu,\"clients\":%llu,"
                   "\"clients_refused\":%llu,\"clients_slow_closed\":%llu,"
                   "\"refused_inflight\":%llu,\"max_client_connections\":%u,"
                   "\"max_requests_per_connection\":%u,\"table_bytes\":%llu,"
                   "\"memory_budget_mb\":%u,\"refused_budget\":%llu,\"peers\":[",
                   (unsigned long long)s->msgs_in, (unsigned long long)s->msgs_out,
                   (unsigned long long)s->incarnation, (unsigned long long)s->refused_sender,
                   (unsigned long long)s->refused_epoch, (unsigned long long)s->clients,
                   (unsigned long long)s->clients_refused,
                   (unsigned long long)s->clients_slow_closed,
                   (unsigned long long)s->refused_inflight, s->max_client_connections,
                   s->max_requests_per_connection, (unsigned long long)s->table_bytes,
                   s->memory_budget_mb, (unsigned long long)s->refused_budget);
            for (size_t p = 0; p < s->n_peers; p++) {
                const Nines__PeerStatus *ps = s->peers[p];
                printf("%s{\"id\":%u,\"site\":%u,\"reachable\":%s", p ? "," : "", ps->node_id,
                       ps->site, ps->reachable ? "true" : "false");
                if (ps->ever_heard)
                    printf(",\"last_heard_ms\":%llu", (unsigned long long)ps->last_heard_ms);
                printf(",\"incarnation\":%llu,\"restarts\":%llu",
                       (unsigned long long)ps->incarnation, (unsigned long long)ps->restarts);
                printf("}");
            }
            printf("],\"node_set\":");
            const Nines__NodeSet *mine = s->node_set;
            if (mine && mine->epoch) {
                printf("{\"epoch\":%llu", (unsigned long long)mine->epoch);
                json_set("members", mine->members);
                json_set("current", mine->current);
                printf(",\"coordinator\":%u", mine->coordinator);
                json_set("standby_only", mine->standby_only);
                uint64_t since[NINES_MAX_NODES + 1];
                char b[800];
                ctl_since_of(mine, since);
                printf(",\"standby_since\":[%s]}",
                       ctl_since_json(mine->standby_only, since, b, sizeof b));
            } else {
                printf("null");
            }
            printf(",\"set\":\"%s\",\"ha_state\":", set_place(ns, v[i].nc->id));
            ctl_json_str(s->ha_state);
            printf(",\"serving\":%s,\"reason\":", s->serving ? "true" : "false");
            ctl_json_str(s->reason);
            printf(",\"arbitrator\":");
            ctl_json_str(s->arbitrator);
            printf(",\"ns_rounds\":%llu,\"ns_installs\":%llu,\"suspicions\":%llu",
                   (unsigned long long)s->ns_rounds, (unsigned long long)s->ns_installs,
                   (unsigned long long)s->suspicions);
            printf(",\"heartbeats\":{\"sent\":%llu,\"received\":%llu,\"refused\":%llu,"
                   "\"withheld\":%llu,\"unreachable\":%llu}",
                   (unsigned long long)s->hb_sent, (unsigned long long)s->hb_received,
                   (unsigned long long)s->hb_bad, (unsigned long long)s->hb_withheld,
                   (unsigned long long)s->hb_unreachable);
            printf(",\"disk_log\":{\"state\":");
            ctl_json_str(s->dlog_state);
            printf(",\"reason\":");
            ctl_json_str(s->dlog_reason);
            printf(",\"durable\":%llu,\"buffered\":%llu,\"records\":%llu,\"flushes\":%llu,"
                   "\"fsyncs\":%llu,\"errors\":%llu,\"dropped\":%llu,\"policy\":",
                   (unsigned long long)s->dlog_durable, (unsigned long long)s->dlog_buffered,
                   (unsigned long long)s->dlog_records, (unsigned long long)s->dlog_flushes,
                   (unsigned long long)s->dlog_fsyncs, (unsigned long long)s->dlog_errors,
                   (unsigned long long)s->dlog_dropped);
            ctl_json_str(s->dlog_policy);
            printf(",\"waits\":%llu,\"released\":%llu,\"wait_sum_us\":%llu,"
                   "\"wait_max_us\":%llu,\"refused\":%llu,\"waiting\":%llu}",
                   (unsigned long long)s->dlog_waits, (unsigned long long)s->dlog_released,
                   (unsigned long long)s->dlog_wait_sum_us,
                   (unsigned long long)s->dlog_wait_max_us,
                   (unsigned long long)s->dlog_refused, (unsigned long long)s->dlog_waiting);
            printf(",\"disk_log_gaps\":{\"gaps\":%llu,\"resumes\":%llu,\"dropped_bytes\":%llu,"
                   "\"gap_wall_us\":%llu,\"resume_wall_us\":%llu,\"gap_pos\":%llu,"
                   "\"unrecoverable\":%u}", (unsigned long long)s->dlog_gaps,
                   (unsigned long long)s->dlog_resumes, (unsigned long long)s->dlog_dropped_bytes,
                   (unsigned long long)s->dlog_gap_wall_us,
                   (unsigned long long)s->dlog_resume_wall_us,
                   (unsigned long long)s->dlog_gap_pos, s->dlog_unrecoverable);
            printf(",\"disk_log_files\":{\"segments\":%llu,\"first\":%llu,\"bytes\":%llu,"
                   "\"removed\":%llu}", (unsigned long long)s->dlog_segments,
                   (unsigned long long)s->dlog_first, (unsigned long long)s->dlog_disk_bytes,
                   (unsigned long long)s->dlog_segs_removed);
            if (s->rc_state && s->rc_state[0]) {
                printf(",\"restart_recovery\":{\"state\":");
                ctl_json_str(s->rc_state);
                printf(",\"replicas\":%u,\"recovered\":%u,\"failed\":%u,\"rows\":%llu,"
                       "\"redone\":%llu,\"undone\":%llu,\"ms\":%llu,\"restart_gci\":%llu,"
                       "\"detail\":", s->rc_replicas, s->rc_recovered, s->rc_failed,
                       (unsigned long long)s->rc_rows, (unsigned long long)s->rc_redone,
                       (unsigned long long)s->rc_undone, (unsigned long long)s->rc_ms,
                       (unsigned long long)s->rc_restart_gci);
                ctl_json_str(s->rc_detail);
                printf("}");
            }
            printf(",\"checkpoints\":{\"state\":");
            ctl_json_str(s->ckpt_state);
            printf(",\"interval_ms\":%llu,\"rounds\":%llu,\"done\":%llu,\"abandoned\":%llu,"
                   "\"failed\":%llu,\"bytes\":%llu,\"last_age_ms\":%llu,"
                   "\"last_duration_ms\":%llu,\"last_bytes\":%llu,\"last_records\":%llu,"
                   "\"oldest_age_ms\":%llu,\"missing\":%u,\"removal_held\":%s,\"error\":",
                   (unsigned long long)s->ckpt_interval_ms, (unsigned long long)s->ckpt_rounds,
                   (unsigned long long)s->ckpt_done, (unsigned long long)s->ckpt_abandoned,
                   (unsigned long long)s->ckpt_failed, (unsigned long long)s->ckpt_bytes,
                   (unsigned long long)s->ckpt_last_age_ms,
                   (unsigned long long)s->ckpt_last_duration_ms,
                   (unsigned long long)s->ckpt_last_bytes,
                   (unsigned long long)s->ckpt_last_records,
                   (unsigned long long)s->ckpt_oldest_age_ms, s->ckpt_missing,
                   s->ckpt_removal_held ? "true" : "false");
            ctl_json_str(s->ckpt_error);
            printf("}");
            printf(",\"takeback\":{\"state\":");
            ctl_json_str(s->tb_state);
            printf(",\"node\":%u,\"attempt\":%llu,\"done\":%llu,\"retried\":%llu,"
                   "\"last_us\":%llu,\"last_frags\":%u,\"last_failure\":", s->tb_node,
                   (unsigned long long)s->tb_attempt, (unsigned long long)s->tb_done,
                   (unsigned long long)s->tb_retried, (unsigned long long)s->tb_last_us,
                   s->tb_last_frags);
            ctl_json_str(s->tb_detail);
            printf(",\"draining\":%u,\"drains_conf\":%llu,\"drains_ref\":%llu,"
                   "\"refused\":%llu}", s->tb_draining, (unsigned long long)s->tb_drains_conf,
                   (unsigned long long)s->tb_drains_ref, (unsigned long long)s->tb_refused);
            printf(",\"commit_epochs\":{\"state\":");
            ctl_json_str(s->gcp_state);
            printf(",\"gci\":%llu,\"restorable\":%llu,\"restorable_age_ms\":%llu,"
                   "\"rounds\":%llu,\"failed\":%llu,\"last_failure\":",
                   (unsigned long long)s->gcp_gci, (unsigned long long)s->gcp_restorable,
                   (unsigned long long)s->gcp_restorable_age_ms,
                   (unsigned long long)s->gcp_rounds, (unsigned long long)s->gcp_failed);
            ctl_json_str(s->gcp_failure);
            printf(",\"last_round_us\":%llu,\"file_errors\":%llu}",
                   (unsigned long long)s->gcp_last_us, (unsigned long long)s->gcp_file_errors);
            printf(",\"repair\":{\"nodes\":");
            ctl_json_str(s->rp_nodes);
            printf(",\"repaired\":%llu,\"reintegrated\":%llu,\"reint_done\":%llu,\"last\":",
                   (unsigned long long)s->rp_repaired, (unsigned long long)s->rp_reintegrated,
                   (unsigned long long)s->rp_reint_done);
            ctl_json_str(s->rp_last);
            printf("}");
        }
        printf("}");
    }
    printf("]}\n");
}

int ctl_cmd_status(const struct nines_conf *c, int argc, char **argv)
{
    bool json = false, want_current = false, want_balanced = false;
    double wait_s = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--wait-healthy") && i + 1 < argc)
            wait_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--wait-current") && i + 1 < argc) {
            wait_s = atof(argv[++i]);
            want_current = true;
        } else if (!strcmp(argv[i], "--wait-balanced") && i + 1 < argc) {
            wait_s = atof(argv[++i]);
            want_current = want_balanced = true;
        }
        else {
            fprintf(stderr, "ninesctl status: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    static struct ctl_node_view v[NINES_MAX_NODES];
    struct ctl_nodeset ns;
    uint64_t deadline = nclock_ms() + (uint64_t)(wait_s * 1000);
    bool ok;
    for (;;) {
        ctl_views_query(c, v);
        ctl_nodeset_of(c, v, &ns);
        ok = ctl_healthy(c, v, &ns);
        if (ok && want_current) {
            /* and every configured node's replicas are current (a returning
             * node is a member, not current, until it has rebuilt them) */
            for (uint32_t i = 0; i < c->nnodes; i++)
                if (!(ns.current & ((uint64_t)1 << (c->nodes[i].id - 1))))
                    ok = false;
            /* --wait-balanced: and no node standby-only any more (each took
             * its dictionary primaries back: supervisor/README.md "Takeback") */
            if (want_balanced && ns.standby_only)
                ok = false;
        }
        if (ok || nclock_ms() >= deadline)
            break;
        ctl_views_free(c, v);
        usleep(100 * 1000); /* poll interval of an interactive wait */
    }
    struct arb_view a = {.configured = c->has_arbitrator};
    if (a.configured) {
        a.err = arb_status(c, CTL_TIMEOUT_MS, &a.st);
        if (a.err)
            snprintf(a.why, sizeof a.why, "%s", nines_errdetail());
    }
    if (json)
        print_json(c, v, &ns, &a);
    else
        print_table(c, v, &ns, &a);
    ctl_views_free(c, v);
    return ok ? 0 : 1;
}
