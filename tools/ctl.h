/* ninesctl commands kept in their own files, and what they share
 * (internal to tools/). */
#ifndef NINES_CTL_H
#define NINES_CTL_H
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "dict/dict.h"
#include "net/net.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"

#define CTL_TIMEOUT_MS 1000
/* The cluster key ninesctl proves to nodes and the arbitrator (NULL: none). */
#define CTL_KEY(c) ((c)->has_key ? (c)->key : NULL)

/* ninesctl keygen FILE [--force] (ctl_keygen.c): no cluster file needed. */
int ctl_cmd_keygen(int argc, char **argv);

/* ninesctl sql-verifier NAME [--password P] [--iterations N] (ctl_sqlpw.c):
 * prints the cluster-file line `sql_user NAME SCRAM-SHA-256$...`; no
 * cluster file needed. */
int ctl_cmd_sql_verifier(int argc, char **argv);

/* ninesctl user add|drop|passwd|role|list (ctl_user.c): users with roles
 * in the dictionary (dict/README.md "Users"). */
int ctl_cmd_user(const struct nines_conf *c, int argc, char **argv);

/* The password of sql-verifier and user (ctl_sqlpw.c): `arg` (--password)
 * or else the first line of stdin without its line end, into pw (at least
 * CTL_PW_MAX + 2 bytes). NULL, or why there is none (empty, too long). */
#define CTL_PW_MAX 1024
const char *ctl_password(const char *arg, char *pw, size_t n);

/* ---- shared (ctl_common.c) ---- */

/* One node's STATUS_CONF, or why there is none. */
struct ctl_node_view {
    const struct nines_node_conf *nc;
    int err;                    /* 0 = answered */
    char why[160];
    Nines__StatusConf *st;      /* answer (protobuf-c malloc'ed; free with ctl_views_free) */
};
/* Ask every node of c for its status (views[i] for c->nodes[i]). */
void ctl_views_query(const struct nines_conf *c, struct ctl_node_view *views);
void ctl_views_free(const struct nines_conf *c, struct ctl_node_view *views);

/* The node set as the nodes report it (StatusConf.node_set): the one with
 * the highest epoch among the nodes that answered. */
struct ctl_nodeset {
    bool installed;             /* some node reports an epoch > 0 */
    uint64_t epoch, members, current;
    uint64_t standby_only;      /* current nodes that hold no primary until takeback */
    uint64_t since[NINES_MAX_NODES + 1]; /* by node id: the epoch a standby-only node
                                          * became current (dict_live.since) */
    uint32_t coordinator;
    uint32_t from;              /* a node reporting it */
    bool agreed;                /* every node that answered reports that epoch and set */
    uint64_t answered;          /* bit (id - 1): nodes that answered STATUS */
};
void ctl_nodeset_of(const struct nines_conf *c, const struct ctl_node_view *views,
                    struct ctl_nodeset *out);
/* A reported set's standby_since by node id into since[0..NINES_MAX_NODES]
 * (zeros when it has none, or not one per standby-only node). */
void ctl_since_of(const Nines__NodeSet *ns, uint64_t *since);
/* "2 (since epoch 6) 3 (since epoch 9)": the standby-only nodes, into buf. */
const char *ctl_standby_str(uint64_t standby_only, const uint64_t *since, char *buf, size_t n);
/* JSON array body "6,9": the standby-only nodes' epochs, ascending node id. */
const char *ctl_since_json(uint64_t standby_only, const uint64_t *since, char *buf, size_t n);

/* Connect to node `node` (0: the first node of the file that answers; the
 * nodes of `prefer` first when non-zero). Prints the failure; 0, 1 or 2. */
/* Open a link to node nc: with the cluster key when the file has one (an
 * admin link), else logged in as NINES_USER / the file's client_user (its
 * password from NINES_PASSWORD or client_password_file), else plain. */
int ctl_dial(const struct nines_conf *c, const struct nines_node_conf *nc,
             struct net_client **out, int timeout_ms);
int ctl_connect(const struct nines_conf *c, uint32_t node, uint64_t prefer, const char *cmd,
                struct net_client **out, uint32_t *used);
/* Send one request and wait for one of the answer types (want1/want2).
 * The body is returned packed in *body (malloc'd copy). */
int ctl_call(struct net_client *cl, uint32_t type, const ProtobufCMessage *req, uint32_t want1,
             uint32_t want2, int timeout_ms, uint32_t *got, uint8_t **body, size_t *len);

/* Send one dictionary change to node `node` (0: the first that answers)
 * and print the answer (ninesctl_main.c): `done` is the line printed
 * before the version when it committed (NULL: "created table ..." /
 * "dropped table ..." from the change). 0 committed, 1 refused or
 * failed. */
int ctl_change(const struct nines_conf *c, uint32_t node, const char *cmd,
               Nines__DictChange *change, const char *done);

/* A node's dictionary (DICT_GET), decoded here. */
struct ctl_dict {
    uint32_t node, coordinator;
    struct dict d;
    dict_liveset live;
};
/* Prints the failure; 0, 1 or 2. `prefer` as for ctl_connect. */
int ctl_get(const struct nines_conf *c, uint32_t node, uint64_t prefer, const char *cmd,
            struct ctl_dict *out);

/* JSON string (quoted, escaped) on stdout. */
void ctl_json_str(const char *s);
/* Node ids of a set: "1 3 4" (text) or "1,3,4" (JSON array body); "-" for
 * an empty set in text. Into buf; returns buf. */
const char *ctl_set_str(uint64_t set, bool json, char *buf, size_t n);

/* ---- commands ---- */

/* ninesctl status [--json] [--wait-healthy SECONDS] (ctl_status.c). */
int ctl_cmd_status(const struct nines_conf *c, int argc, char **argv);

/* ninesctl replicas [--table ID] [--json] (ctl_replicas.c): per fragment
 * its roles in the node set (dict_frag_roles_live over the reported
 * members, current and standby_only),
 * the digests of primary and standby side by side, the redo lag, and a
 * warning for two nodes claiming the primary role. Exit 0 when every
 * fragment has two replicas with equal digests and no fragment has two
 * primaries, 1 otherwise. */
int ctl_cmd_replicas(const struct nines_conf *c, int argc, char **argv);

/* ninesctl checkpoint [--node ID] [--json] [--timeout SECONDS] (ctl_ckpt.c):
 * a round of checkpoints at every node (or the one named), answered per
 * node with its counts, bytes and duration. Exit 0 when every node
 * answered without an error, 1 otherwise, 2 usage. */
int ctl_cmd_checkpoint(const struct nines_conf *c, int argc, char **argv);
#endif
