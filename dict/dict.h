/* Distribution dictionary (internal, dict): schema catalog, key routing,
 * replica placement (minimum intersecting sets declustering and the
 * circular scheme), the versioned in-memory dictionary and its file.
 * Rules, algorithms, worked examples and the file format: dict/README.md.
 *
 * Everything here is plain data plus pure functions over it; nothing is
 * shared between threads by this module (a caller that shares a struct
 * dict between threads must serialize access itself).
 *
 * Errors: 0 or a non-negative count on success, a negative NINES_E* code
 * on failure with nines_errdetail() naming the problem and the value. */
#ifndef NINES_DICT_H
#define NINES_DICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- limits (all checked, all stated in errors) ---------------------- */
#define DICT_NAME_MAX     63      /* table and column names, bytes */
#define DICT_MAX_COLS     256     /* columns per table */
#define DICT_MAX_PK       16      /* primary key columns */
#define DICT_MAX_FRAGS    4096    /* fragments per table */
#define DICT_MAX_TABLES   4096    /* tables per dictionary */
#define DICT_MAX_COLSIZE  65535   /* n of string(n)/bytes(n), max of var types */
#define DICT_KEY_MAX      2048    /* longest encoded key / split point, bytes */
#define DICT_MAX_NODES    64      /* node ids are 1..DICT_MAX_NODES */
#define DICT_NSITES       2       /* a cluster has two sites, 0 and 1 */
#define DICT_MAX_USERS    1024    /* users per dictionary */
#define DICT_VERIFIER_MAX 255     /* a user's SCRAM verifier text, bytes */

/* ---- schema ---------------------------------------------------------- */
enum dict_type {
    DICT_T_INT32 = 1,
    DICT_T_INT64 = 2,
    DICT_T_DOUBLE = 3,
    DICT_T_STRING = 4,     /* fixed string(n) */
    DICT_T_VARSTRING = 5,  /* varstring(max) */
    DICT_T_BYTES = 6,      /* fixed bytes(n) */
    DICT_T_VARBYTES = 7,   /* varbytes(max) */
    DICT_T_TIMESTAMP = 8,  /* microseconds since the Unix epoch, int64 */
};
#define DICT_T_FIRST DICT_T_INT32
#define DICT_T_LAST  DICT_T_TIMESTAMP

struct dict_column {
    char name[DICT_NAME_MAX + 1];
    uint32_t type;         /* enum dict_type; other values are rejected */
    uint32_t size;         /* n or max for the string/bytes types, else 0 */
    bool nullable;
    /* SQL attributes (file format 3): stored and carried, never
     * interpreted by the cluster (client/README.md "Schema") */
    uint32_t sqltype;      /* a PostgreSQL type oid; 0: derived from type */
    int32_t sqltypmod;     /* its type modifier; -1: none */
    bool hidden;           /* a key column the SQL front end added */
};

enum dict_frag_method { DICT_FRAG_HASH = 1, DICT_FRAG_RANGE = 2 };
enum dict_scheme { DICT_PLACE_MISD = 1, DICT_PLACE_CIRCULAR = 2 };

/* An encoded key (same order-preserving encoding as the kernel's keys). */
struct dict_key {
    const uint8_t *bytes;
    uint32_t len;
};

/* A table definition as a caller supplies it: the arrays are the
 * caller's; dict_create_table copies them. Zero replicas/scheme mean the
 * defaults (2 replicas, MISD). */
struct dict_table_def {
    char name[DICT_NAME_MAX + 1];
    uint32_t ncols;
    const struct dict_column *cols;
    uint32_t npk;
    const uint16_t *pk;            /* column indices, in key order */
    uint32_t method;               /* enum dict_frag_method */
    uint32_t nfrags;               /* HASH: fragment count; RANGE: ignored */
    uint32_t nsplits;              /* RANGE: split points, ascending */
    const struct dict_key *splits; /* RANGE: fragment count = nsplits + 1 */
    uint32_t replicas;             /* 1 or 2 (0 = default 2) */
    uint32_t scheme;               /* enum dict_scheme (0 = default MISD) */
};

/* Type name ("int32", "string", ...) and its inverse. */
const char *dict_type_name(uint32_t type);
int dict_type_parse(const char *name, uint32_t *type);

/* Check a definition; NINES_EINVAL with a detail naming the table, the
 * problem and the value. Does not look at other tables or nodes. */
int dict_table_validate(const struct dict_table_def *def);

/* Fragment count a valid definition yields. */
uint32_t dict_def_nfrags(const struct dict_table_def *def);

/* ---- nodes and placement --------------------------------------------- */
struct dict_node {
    uint32_t id;   /* 1..DICT_MAX_NODES */
    uint32_t site; /* 0 or 1 */
};

/* A replica's state in the dictionary (dict/README.md "Building replicas").
 * Self-repair places a new replica in a fragment's standby slot as
 * BUILDING: it is not a replica yet (never current, never serving, never
 * taking over) but the node that builds it; the dictionary change that
 * marks it built makes it READY, the fragment's hot standby. Only the
 * standby slot can be BUILDING: the primary slot holds the replica the
 * building one is copied from. */
enum dict_rep_state {
    DICT_REP_READY = 0,     /* holds the fragment (current when its node is) */
    DICT_REP_BUILDING = 1,  /* being built by its node from the other replica */
};
const char *dict_rep_state_name(uint32_t st);

/* One fragment's replicas. standby == 0: none (replicas == 1). */
struct dict_frag {
    uint32_t primary;
    uint32_t standby;
    uint32_t standby_state; /* enum dict_rep_state of the standby slot */
};

/* Check a node list: ids 1..64 and unique, sites 0/1, at least one node. */
int dict_nodes_validate(const struct dict_node *nodes, uint32_t n);

/* Place `nfrags` fragments with `replicas` (1 or 2) copies on `nodes` by
 * `scheme` into out[0..nfrags). Pure function of its arguments (the node
 * order given does not matter: nodes are sorted by id per site). */
int dict_place(const struct dict_node *nodes, uint32_t n, uint32_t nfrags, uint32_t replicas,
               uint32_t scheme, struct dict_frag *out);

/* The least possible value of the largest number of fragments shared by
 * two nodes at different sites: ceil(nfrags / (p * q)). */
uint32_t dict_place_min_pair(uint32_t p, uint32_t q, uint32_t nfrags);

/* Counts describing a placement; index i refers to nodes[i] of the
 * sorted node list `node` (site 0 first, then site 1, ids ascending). */
struct dict_place_stats {
    uint32_t nnodes, nsite[DICT_NSITES];
    struct dict_node node[DICT_MAX_NODES];
    uint32_t primaries[DICT_MAX_NODES];
    uint32_t standbys[DICT_MAX_NODES];
    /* dir[i][j]: fragments with primary on node i and standby on node j */
    uint16_t dir[DICT_MAX_NODES][DICT_MAX_NODES];
    uint32_t max_pair;        /* max over cross-site i<j of dir[i][j]+dir[j][i] */
    uint32_t min_pair_bound;  /* dict_place_min_pair for this layout */
    uint32_t same_site;       /* fragments with both replicas at one site */
};
int dict_place_stats(const struct dict_node *nodes, uint32_t n, const struct dict_frag *frags,
                     uint32_t nfrags, struct dict_place_stats *st);

/* Live-node set: bit (id - 1) set when node `id` is in the node set. */
typedef uint64_t dict_liveset;
#define DICT_LIVE(id) ((dict_liveset)1 << ((id) - 1))

/* ---- dictionary ------------------------------------------------------ */
struct dict_table {
    uint32_t id;
    bool readonly;                 /* writes refused by txctl (dict_set_readonly) */
    struct dict_table_def def;     /* arrays owned by the table */
    uint32_t nfrags;
    struct dict_frag *frags;
};

/* ---- users (dict/README.md "Users") --------------------------------- */
/* Ordered: a higher role may do everything a lower one may. */
enum dict_role {
    DICT_ROLE_READER = 1,          /* reads */
    DICT_ROLE_WRITER = 2,          /* reads and writes rows */
    DICT_ROLE_ADMIN = 3,           /* also schema, users, cluster administration */
};
#define DICT_ROLE_FIRST DICT_ROLE_READER
#define DICT_ROLE_LAST  DICT_ROLE_ADMIN

struct dict_user {
    char name[DICT_NAME_MAX + 1];  /* 1..63 bytes of [A-Za-z0-9_.@-] */
    uint32_t role;                 /* enum dict_role */
    /* SCRAM-SHA-256 verifier, PostgreSQL's text form (common/scram.h); never
     * sent to clients (dict_encode_public) */
    char verifier[DICT_VERIFIER_MAX + 1];
};

struct dict {
    uint64_t version;              /* +1 on every change */
    uint32_t next_table_id;        /* ids are never reused */
    uint32_t nnodes;
    struct dict_node nodes[DICT_MAX_NODES];
    uint32_t ntables;
    struct dict_table **tables;    /* sorted by id */
    uint32_t nusers;               /* 0..DICT_MAX_USERS */
    struct dict_user *users;       /* sorted by name (strcmp), names unique */
};

/* Start an empty dictionary (version 0) over `nodes`. */
int dict_init(struct dict *d, const struct dict_node *nodes, uint32_t n);
void dict_free(struct dict *d);

/* Validate, place and add a table; *id_out (may be NULL) gets its id. */
int dict_create_table(struct dict *d, const struct dict_table_def *def, uint32_t *id_out);
int dict_drop_table(struct dict *d, const char *name);
int dict_drop_table_id(struct dict *d, uint32_t id);
const struct dict_table *dict_table_by_name(const struct dict *d, const char *name);
/* In one change (version + 1): drop table `name` and give table `with` its
 * name; `with` keeps its id, fragments and placement (dict/README.md
 * "Schema changes"). NINES_EINVAL (an empty name, name == with),
 * NINES_ENOTFOUND naming whichever table is missing. */
int dict_replace_table(struct dict *d, const char *name, const char *with);
/* Set or clear table `name`'s readonly flag (version + 1, also when it is
 * already so). NINES_EINVAL (empty name), NINES_ENOTFOUND. */
int dict_set_readonly(struct dict *d, const char *name, bool on);
const struct dict_table *dict_table_by_id(const struct dict *d, uint32_t id);

/* Users (dict/README.md "Users"); each successful change is version + 1,
 * a refused one changes nothing. Checks: name 1..63 bytes of letters,
 * digits and "_.@-" (NINES_EINVAL); role 1..3 (NINES_EINVAL); verifier
 * at most 255 bytes that scram_verifier_parse accepts (NINES_EINVAL). */
/* NINES_EEXIST when the name is taken, NINES_EFULL past DICT_MAX_USERS. */
int dict_user_create(struct dict *d, const char *name, uint32_t role, const char *verifier);
/* NINES_ENOTFOUND; NINES_ESTATE when `name` is the last admin. */
int dict_user_drop(struct dict *d, const char *name);
/* role 0: keep; verifier NULL: keep (both kept: NINES_EINVAL, nothing to
 * change). NINES_ENOTFOUND; NINES_ESTATE when it would demote the last
 * admin. */
int dict_user_alter(struct dict *d, const char *name, uint32_t role, const char *verifier);
/* The user named `name`, or NULL (binary search). */
const struct dict_user *dict_user_find(const struct dict *d, const char *name);
/* Check a user name / a verifier text as the functions above do. */
int dict_user_name_check(const char *name);
int dict_verifier_check(const char *user, const char *verifier);
/* "reader", "writer", "admin"; "?" for any other value. */
const char *dict_role_name(uint32_t role);
/* The inverse; NINES_EINVAL naming the text for anything else. */
int dict_role_parse(const char *name, uint32_t *role);
/* Admins in d. */
uint32_t dict_admin_count(const struct dict *d);

/* Move the replica of fragment `frag` held by node `from` to node `to`
 * (self-repair, drain). The two replicas must stay at different sites. */
int dict_move_replica(struct dict *d, uint32_t table_id, uint32_t frag, uint32_t from,
                      uint32_t to);
/* Exchange primary and hot standby of fragment `frag` (switchover). Refused
 * (NINES_ESTATE) while the standby is BUILDING. */
int dict_switch_roles(struct dict *d, uint32_t table_id, uint32_t frag);

/* ---- self-repair (dict/README.md "Self-repair placement") ------------ */
/* What dict_repair_node did. */
struct dict_repair_result {
    uint32_t moved;         /* replicas of the dead node placed elsewhere, BUILDING */
    uint32_t no_source;     /* left: the fragment's other replica is not in `eligible`
                             * (or is itself BUILDING, or the table has one replica) */
    uint32_t no_target;     /* left: no node of the dead node's site in `eligible` */
    uint32_t first_table, first_frag, first_to; /* the first move (logs) */
};
/* Move every replica node `dead` holds to another node of its site: for
 * each fragment (tables by id, fragments ascending) whose other replica's
 * node is in `eligible` (the node set's current nodes), the other replica
 * takes the primary slot and the node of dead's site in `eligible` with
 * the fewest replicas of that table (then: of all tables, then: the fewest
 * fragments of the table shared with the other replica's node, then: the
 * lowest id) takes the standby slot as BUILDING. A pure function of (d,
 * dead, eligible); nothing else moves. The version goes up by one when
 * anything moved. Returns the number moved (> 0); NINES_ENOTFOUND when
 * dead holds no replica; NINES_EUNREACHABLE when it holds some but none
 * can move now (no source or no target; counts in *out). out may be NULL. */
int dict_repair_node(struct dict *d, uint32_t dead, dict_liveset eligible,
                     struct dict_repair_result *out);
/* Mark node's BUILDING replica of (table_id, frag) READY (version + 1):
 * NINES_ENOTFOUND when node holds no replica of it, NINES_ESTATE when that
 * replica is not BUILDING (built already). */
int dict_mark_built(struct dict *d, uint32_t table_id, uint32_t frag, uint32_t node);
/* ---- reintegration (dict/README.md "Reintegration placement") -------- */
/* What dict_reintegrate_node did or found. */
struct dict_reint_result {
    uint32_t moved;         /* 1 when a standby moved to the node, else 0 */
    uint32_t table, frag;   /* the fragment moved */
    uint32_t from;          /* its standby's node before (a site-mate) */
    uint32_t held;          /* replicas the node holds after the change */
    uint32_t most;          /* the most any site-mate holds after it */
    uint32_t blocked;       /* surplus standbys that cannot move now (their node or
                             * their primary not current, or building) */
    uint32_t primaries;     /* surplus replicas that are primaries (never moved here) */
};
/* Move ONE hot standby to node `back` (current, in `eligible`; it came back
 * after self-repair placed its replicas elsewhere) from a site-mate holding
 * more: the candidates are fragments whose standby slot is a READY replica
 * of a site-mate y in `eligible` whose primary is in `eligible`; one moves
 * when y holds at least two more replicas of that table than back, or at
 * least one more of that table and two more of all tables. The chosen one:
 * the largest table surplus, then the largest total surplus, then the
 * fewest fragments of the table back already shares with the primary's
 * node, then tables by id and fragments ascending. It becomes (primary
 * unchanged, standby = back, BUILDING); version + 1. A pure function of
 * (d, back, eligible). Returns 1; NINES_EAGAIN while back has a BUILDING
 * replica (one at a time) or when the only moves are blocked now (counts
 * in *out); NINES_ENOTFOUND when the placement is balanced as far as
 * standbys go ("nothing to move": primaries never move here);
 * NINES_EINVAL when back is not in the node list or not in `eligible`.
 * out may be NULL. */
int dict_reintegrate_node(struct dict *d, uint32_t back, dict_liveset eligible,
                          struct dict_reint_result *out);
/* The replicas (any slot, any state) node `id` holds in the dictionary. */
uint32_t dict_node_replicas(const struct dict *d, uint32_t id);

/* The node executing fragment `frag` given the live set: the primary if it
 * is live, else its hot standby (not one BUILDING); NINES_EUNREACHABLE when
 * neither is. */
int dict_effective_primary(const struct dict_table *t, uint32_t frag, dict_liveset live,
                           uint32_t *node_out);

/* Roles of one fragment in a node set (ClustRa section 4; supervisor/README.md
 * "Roles"): every node computes them from (dictionary, node set) the same
 * way. `current` = the node set's members whose replicas are current.
 *
 *   dictionary primary current, standby current  -> primary P, standby S   (BOTH)
 *   dictionary primary current, standby not      -> primary P, standby 0   (ALONE)
 *   primary not current, standby current         -> primary S, standby 0   (ALONE: takeover)
 *   neither current                              -> primary 0, standby 0   (DOWN)
 *   one replica configured                       -> primary P or 0, standby 0 (SINGLE)
 *
 * ALONE also names the log-copy node (ClustRa's log copy, issue 9 item 5):
 * a current node at the other site from the serving replica, picked among
 * them by (table id, fragment) so one failed node's fragments spread over
 * its site-mates; 0 when no node of the other site is current (then writes
 * to the fragment are refused until the durability issue's disk log). */
enum dict_frag_state {
    DICT_FRAG_BOTH = 1,     /* two replicas serving: 2-safe */
    DICT_FRAG_ALONE,        /* one of two left: PRIMARY ALONE (log copy to the other site) */
    DICT_FRAG_SINGLE,       /* configured with one replica, which serves */
    DICT_FRAG_DOWN,         /* no replica in the node set: unavailable */
};
struct dict_roles {
    uint32_t primary;       /* node executing the fragment (0: DOWN) */
    uint32_t standby;       /* BOTH: the hot standby taking its log (else 0) */
    uint32_t logcopy;       /* ALONE: the other-site node holding a copy of its log (0: none) */
    enum dict_frag_state state;
};
int dict_frag_roles(const struct dict *d, const struct dict_table *t, uint32_t frag,
                    dict_liveset current, struct dict_roles *out);
/* The node set's liveness as roles need it (supervisor/README.md "Node
 * set"): `members` are the node set's member processes, `current` those
 * whose replicas are current, `standby_only` current nodes that came back
 * and hold no primary yet (takeback has not moved primaries to them). */
struct dict_live {
    dict_liveset members, current, standby_only;
    /* indexed by node id (NULL: none): the node-set epoch at which a
     * standby-only node became current; of two standby-only replicas the
     * one current since earlier is primary (it served while the other was
     * rebuilt) */
    const uint64_t *since;
};
/* Roles over a node set (what the services use):
 *   - BOTH with the dictionary primary in standby_only: the roles are
 *     swapped (the standby stays primary until takeback), unless the
 *     standby is standby-only too and became current later (`since`);
 *   - ALONE: the log copy is the fragment's other replica's node when that
 *     node is a member that is not current (it is being rebuilt: the log
 *     stream it holds is what its new replica catches up from, kernel/svc
 *     README "Rebuild"), else a current node of the other site as before.
 * dict_frag_roles(d, t, f, cur, out) is this with members = current = cur
 * and no standby-only node. */
int dict_frag_roles_live(const struct dict *d, const struct dict_table *t, uint32_t frag,
                         const struct dict_live *live, struct dict_roles *out);
/* The roles fragment `frag` would have if node's BUILDING replica of it
 * were READY (what marking it built would do; the kernel service asks for
 * that only when the primary stays the same). NINES_ENOTFOUND when node
 * holds no BUILDING replica of it. */
int dict_frag_roles_built(const struct dict *d, const struct dict_table *t, uint32_t frag,
                          uint32_t node, const struct dict_live *live, struct dict_roles *out);
const char *dict_frag_state_name(enum dict_frag_state st);

/* ---- routing --------------------------------------------------------- */
/* 64-bit FNV-1a, and the routing hash: murmur3's fmix64 over FNV-1a. */
uint64_t dict_fnv1a64(const void *buf, size_t len);
uint64_t dict_hash64(const void *buf, size_t len);
/* Jump consistent hash (Lamping and Veach): bucket in [0, nbuckets). */
uint32_t dict_jump(uint64_t key, uint32_t nbuckets);
/* Fragment of an encoded primary key: >= 0, or NINES_EINVAL. */
int dict_route(const struct dict_table *t, const uint8_t *key, size_t len);
int dict_route_def(const struct dict_table_def *def, const uint8_t *key, size_t len);
/* Encoded-key order: memcmp over the shorter length, then shorter first. */
int dict_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* ---- storage --------------------------------------------------------- */
/* Serialize into a malloc'd buffer (*out, *len); free() it. */
int dict_encode(const struct dict *d, uint8_t **out, size_t *len);
/* The same image without the users (user count 0): what goes to clients
 * (DICT_GET_CONF); verifiers never leave the nodes. Node-to-node transfers
 * (DICT_FETCH_CONF), the file and the digests use dict_encode. */
int dict_encode_public(const struct dict *d, uint8_t **out, size_t *len);
/* Parse a whole file image into a fresh dictionary `d` (on success the
 * caller owns it; on failure `d` is left empty). */
int dict_decode(const uint8_t *buf, size_t len, struct dict *d);
/* Atomic write: PATH.tmp, fsync, rename to PATH, fsync the folder. */
int dict_save(const struct dict *d, const char *path);
/* The same atomic write for an image dict_encode made earlier (the node
 * encodes on its executor and writes on the I/O thread). */
int dict_save_image(const uint8_t *buf, size_t len, const char *path);
int dict_load(const char *path, struct dict *d);
/* Deep copy through the file image (so the copy is validated too). */
int dict_clone(const struct dict *src, struct dict *dst);

/* ---- placement report (ninesctl placement) -------------------------- */
enum dict_report_fmt { DICT_REPORT_TEXT = 1, DICT_REPORT_JSON = 2 };
/* Like snprintf: writes at most cap bytes (NUL-terminated when cap > 0)
 * and returns the full length, or a negative error. */
int dict_report(const struct dict *d, const struct dict_table *t, uint32_t fmt, char *buf,
                size_t cap);
int dict_report_file(const struct dict *d, const struct dict_table *t, uint32_t fmt, FILE *f);
/* The same with the current node set: each fragment also shows the node
 * that executes it now (dict_effective_primary over `live`; "none" / null
 * when both replicas are down) and the report names the live nodes. */
int dict_report_live(const struct dict *d, const struct dict_table *t, uint32_t fmt,
                     dict_liveset live, char *buf, size_t cap);
int dict_report_live_file(const struct dict *d, const struct dict_table *t, uint32_t fmt,
                          dict_liveset live, FILE *f);

#endif
