/* ninesdb — public client API.
 *
 * A connection (nines_conn) talks to one node of a cluster at a time and
 * fails over to the next listed node when it loses the connection. Every
 * function returns 0 (or a non-negative count) or a negative NINES_E* code
 * from nines/errors.h; nines_conn_errdetail() says what was wrong, with
 * which value. Handles are opaque.
 *
 * Threading: a connection and everything made from it (transactions,
 * rows) is used by one thread at a time. Different connections are
 * independent. Callbacks run inside the call that dispatched them
 * (nines_poll or any blocking call on the same connection).
 *
 * Overview and example: client/README.md. */
#ifndef NINES_NINES_H
#define NINES_NINES_H
#include <stddef.h>
#include <stdint.h>

#include "nines/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nines_conn nines_conn;
typedef struct nines_txn nines_txn;
typedef struct nines_row nines_row;

/* ---- values ---------------------------------------------------------- */

enum nines_vtype {
    NINES_V_NULL = 0,
    NINES_V_INT64 = 1,   /* int32, int64 and timestamp columns (µs) */
    NINES_V_DOUBLE = 2,
    NINES_V_STRING = 3,  /* string / varstring columns */
    NINES_V_BYTES = 4,   /* bytes / varbytes columns */
};

/* A column value. Strings and bytes are not owned: `p` points at the
 * caller's memory (or, in a row, at the row's memory). */
struct nines_value {
    enum nines_vtype type;
    union {
        int64_t i64;
        double f64;
        struct { const void *p; size_t len; } s;
    } u;
};

static inline struct nines_value nines_v_null(void)
{
    struct nines_value v = {.type = NINES_V_NULL};
    return v;
}
static inline struct nines_value nines_v_int64(int64_t x)
{
    struct nines_value v = {.type = NINES_V_INT64, .u.i64 = x};
    return v;
}
static inline struct nines_value nines_v_double(double x)
{
    struct nines_value v = {.type = NINES_V_DOUBLE, .u.f64 = x};
    return v;
}
static inline struct nines_value nines_v_string(const char *p, size_t len)
{
    struct nines_value v = {.type = NINES_V_STRING, .u.s = {p, len}};
    return v;
}
static inline struct nines_value nines_v_bytes(const void *p, size_t len)
{
    struct nines_value v = {.type = NINES_V_BYTES, .u.s = {p, len}};
    return v;
}

/* ---- connections ----------------------------------------------------- */

/* Connect to a node of addrs ("host:port" each) with cluster name
 * `cluster`: the first try goes to a node picked by spreading
 * (client/README.md "Spreading": a per-process random start, then round
 * robin over the process's connections), then the next ones in list order,
 * wrapping, until one accepts. timeout_ms (> 0) bounds every blocking call
 * on the connection and the life of every request. */
int nines_connect(nines_conn **out, const char *const *addrs, size_t naddrs, const char *cluster,
                  int timeout_ms);
/* Same, with the nodes, cluster name and max_frame_bytes of a cluster
 * file (common/README.md); timeout 2000 ms. */
int nines_connect_config(nines_conn **out, const char *path);

/* Where the first connect starts (client/README.md "Spreading"). */
#define NINES_CONNECT_FIRST_NODE 1u  /* addrs in the order given: the first that accepts */
struct nines_connect_opts {
    unsigned flags;   /* NINES_CONNECT_FIRST_NODE, or 0: spread */
    uint64_t seed;    /* spread: 0 = from the process id; else this seed (reproducible) */
    /* A login (client/README.md "Users"): NULL user: the environment's
     * NINES_USER / NINES_PASSWORD, then (nines_connect_config) the cluster
     * file's client_user and client_password_file; no user at all: no
     * login, which only a client_auth trust cluster takes. */
    const char *user;
    const char *password;
};
/* Roles of users (README.md "SECURITY"): each may do what the ones below
 * it may. */
enum nines_role {
    NINES_ROLE_READER = 1,  /* reads: GET, SCAN */
    NINES_ROLE_WRITER = 2,  /* and writes: INSERT, UPDATE, DELETE, ADD */
    NINES_ROLE_ADMIN = 3,   /* and schema changes, users, cluster operations */
};
/* The role this connection acts with (NINES_ROLE_ADMIN on a client_auth
 * trust cluster); 0 when not connected. */
uint32_t nines_conn_role(const nines_conn *c);
/* nines_connect / nines_connect_config with options (o NULL: defaults). */
int nines_connect_with(nines_conn **out, const char *const *addrs, size_t naddrs,
                       const char *cluster, int timeout_ms, const struct nines_connect_opts *o);
int nines_connect_config_with(nines_conn **out, const char *path,
                              const struct nines_connect_opts *o);
/* The index in addrs of the node a spread connect tries first:
 * (fmix64(seed) mod naddrs + k) mod naddrs, the process id standing for a
 * seed of 0, k counting the process's spread connects. Exposed for tests
 * and tools. */
size_t nines_spread_start(uint64_t seed, uint64_t k, size_t naddrs);
/* Close; requests still in flight get NINES_ECLOSED through their
 * callbacks; open transactions must be ended first (else they are freed
 * here and the server aborts them when the connection closes). */
void nines_close(nines_conn *c);

/* Last error detail of this connection ("" when nothing failed yet). */
const char *nines_conn_errdetail(const nines_conn *c);
/* The node currently connected (0: none), and its "host:port". */
uint32_t nines_conn_node(const nines_conn *c);
const char *nines_conn_addr(const nines_conn *c);
/* Requests sent or queued and not yet answered. */
size_t nines_conn_inflight(const nines_conn *c);

/* ---- failover with exactly-once outcomes (client/README.md "Failover") --
 * Every request carries a request key (this connection's random client
 * id, a growing sequence number). With failover on (off by default), a
 * lost connection — EOF, a socket error, a request's timeout, a node that
 * says it is not in the node set — does not fail the requests in flight:
 * the connection reconnects to another listed node (random order, the
 * lost one last), asks the cluster for the outcome of each, and completes
 * it: committed (rc 0 and the value as the cluster recorded it), aborted
 * (the abort's code), or NINES_EINDOUBT when the cluster cannot tell or
 * the answer did not come within window_ms. A procedure call that never
 * ran (or aborted because of the failure) is sent again under the same
 * key: the nodes never run one key twice. A commit of an interactive
 * transaction is asked about, not re-sent; requests inside an open
 * interactive transaction fail as without failover (the transaction is
 * aborted with its node). window_ms 0: 4 x the connection's timeout. */
int nines_conn_set_failover(nines_conn *c, int on, int window_ms);
struct nines_failover_stats {
    uint64_t failovers;       /* connections lost with requests to resolve */
    uint64_t questions;       /* TXN_OUTCOME_REQs sent */
    uint64_t committed;       /* lost requests found committed */
    uint64_t aborted;         /* ... found aborted (reported with their code) */
    uint64_t resent;          /* procedure calls sent again (a new attempt) */
    uint64_t in_doubt;        /* ... reported NINES_EINDOUBT */
};
void nines_conn_failover_stats(const nines_conn *c, struct nines_failover_stats *out);
/* The answer dispatched last (inside a nines_done_fn: this one; after a
 * blocking call: its own): the transaction id (0 when none ran or it is not known), its request key
 * and how it was resolved. For journals: "key K committed as txn T". */
struct nines_answer_info {
    uint64_t txn;
    uint64_t key_client, key_seq;
    uint32_t attempts;        /* attempts sent under the key (1 without failover) */
    int via_failover;         /* resolved by asking after its connection was lost */
};
int nines_conn_answer_info(const nines_conn *c, struct nines_answer_info *out);

/* ---- transactions ---------------------------------------------------- */

int nines_txn_begin(nines_conn *c, nines_txn **out);
/* Row of `table` with primary key key[0..nkey); NINES_ENOTFOUND if absent.
 * *row stays valid until the transaction ends. */
int nines_txn_get(nines_txn *t, const char *table, const struct nines_value *key, size_t nkey,
                  nines_row **row);
/* Every column in table order. Buffered: sent with the next call that needs
 * an answer, or at commit; its error then comes from that call. */
int nines_txn_insert(nines_txn *t, const char *table, const struct nines_value *vals, size_t n);
int nines_txn_update(nines_txn *t, const char *table, const struct nines_value *vals, size_t n);
int nines_txn_delete(nines_txn *t, const char *table, const struct nines_value *key, size_t nkey);
/* int64 column += delta on the row with that key; *row (may be NULL) gets
 * the new row. */
int nines_txn_add(nines_txn *t, const char *table, const struct nines_value *key, size_t nkey,
                  uint32_t column, int64_t delta, nines_row **row);
/* The same increment, buffered like a write and taken as a commutative
 * increment (escrow: an INC lock, compatible with other transactions'
 * increments of the row): no row comes back, and a row that does not
 * exist aborts the transaction, reported by the call that sends it (the
 * next get / add / scan / flush, or the commit) as NINES_ENOTFOUND. */
int nines_txn_add_deferred(nines_txn *t, const char *table, const struct nines_value *key,
                           size_t nkey, uint32_t column, int64_t delta);
/* Rows with lo <= key <= hi (nlo 0: from the start, nhi 0: to the end), at
 * most `limit` (0: the server's default page) in one request; fn gets each
 * row (valid during the call) and returns non-zero to stop. Returns the
 * number of rows delivered. */
typedef int (*nines_row_fn)(void *arg, const nines_row *row);
int nines_txn_scan(nines_txn *t, const char *table, const struct nines_value *lo, size_t nlo,
                   const struct nines_value *hi, size_t nhi, uint32_t limit, nines_row_fn fn,
                   void *arg);
/* A scan cursor: the rows of lo <= key <= hi (nlo 0: from the start, nhi
 * 0: to the end; a bound may give the leading key columns only) in key
 * order (NINES_SCAN_REVERSE: descending), page by page, each page one
 * round trip. Filters, all of which a row must satisfy, are compared at
 * the kernels, so rows that fail them never travel: column index (table
 * order), comparison, and a value of the column's type (not NULL; a NULL
 * column satisfies only NINES_CMP_IS_NULL). Integers and timestamps
 * compare numerically, doubles as PostgreSQL does (NaN above every number,
 * equal to itself), strings and byte strings bytewise. Rows read are
 * share-locked until the transaction ends, whether or not they matched. */
enum nines_cmp {
    NINES_CMP_EQ = 1,
    NINES_CMP_NE,
    NINES_CMP_LT,
    NINES_CMP_LE,
    NINES_CMP_GT,
    NINES_CMP_GE,
    NINES_CMP_IS_NULL,      /* value unused */
    NINES_CMP_IS_NOT_NULL,  /* value unused */
};
struct nines_filter {
    uint32_t column;
    enum nines_cmp cmp;
    struct nines_value value;
};
#define NINES_SCAN_REVERSE 1u
#define NINES_SCAN_FILTERS_MAX 32
typedef struct nines_scan nines_scan;
/* The cursor (bounds and filters copied: the caller's may go). */
int nines_scan_open(nines_txn *t, const char *table, const struct nines_value *lo, size_t nlo,
                    const struct nines_value *hi, size_t nhi, const struct nines_filter *filters,
                    size_t nfilters, unsigned flags, nines_scan **out);
/* The next page: at most `limit` rows (0: the server's default page) to
 * fn, which returns non-zero to stop (the cursor still moves past the
 * whole page). Returns the number of rows delivered, which may be 0 while
 * rows remain (a page that examined many rows and matched none): the
 * range is done when nines_scan_done says so. */
int nines_scan_next(nines_scan *sc, uint32_t limit, nines_row_fn fn, void *arg);
int nines_scan_done(const nines_scan *sc);
/* Free the cursor (the transaction goes on). */
void nines_scan_close(nines_scan *sc);
/* Send the buffered writes now (one round trip) and wait for their
 * outcome: a duplicate key or a missing row is reported here, not by the
 * next call. 0 when nothing is buffered. The handle stays usable after a
 * per-op failure (its earlier ops stay done); a refusal ends it. */
int nines_txn_flush(nines_txn *t);
/* Buffered writes not sent yet. */
size_t nines_txn_buffered(const nines_txn *t);
/* End the transaction and free the handle (also on error). */
int nines_txn_commit(nines_txn *t);
int nines_txn_rollback(nines_txn *t);
/* Server transaction id (0 until the first round trip). */
uint64_t nines_txn_id(const nines_txn *t);

size_t nines_row_ncols(const nines_row *r);
/* Column i, or a NULL value when i is out of range. */
struct nines_value nines_row_value(const nines_row *r, size_t i);

/* ---- routing --------------------------------------------------------- */

/* Fragment of `table` that holds primary key key[0..nkey), and the nodes
 * the dictionary places its primary and hot standby on (*standby_node 0:
 * one replica); any out pointer may be NULL. The same function the nodes
 * route with (client/README.md "Routing"): the key is encoded with the
 * nodes' order-preserving key encoding and routed by hash or range split
 * points. The table definitions are fetched from the connected node on
 * the first call and kept with the connection; a table not in them makes
 * one more fetch. NINES_ENOTFOUND: no such table; NINES_ETYPE: wrong
 * number of key values or a value that does not fit its column (the
 * detail names the column); NINES_ESTATE from a callback. */
int nines_key_fragment(nines_conn *c, const char *table, const struct nines_value *key,
                       size_t nkey, uint32_t *frag, uint32_t *primary_node,
                       uint32_t *standby_node);

/* ---- schema (client/README.md "Schema") -------------------------------
 * Tables as the cluster's replicated dictionary holds them, and the schema
 * changes a client may ask for. Every change is one dictionary version,
 * committed on every reachable node before the call returns. */

/* Column types (the dictionary's; values travel as enum nines_vtype). */
enum nines_coltype {
    NINES_T_INT32 = 1,
    NINES_T_INT64 = 2,
    NINES_T_DOUBLE = 3,
    NINES_T_STRING = 4,     /* fixed string(size): values of exactly size bytes */
    NINES_T_VARSTRING = 5,  /* varstring(size): at most size bytes */
    NINES_T_BYTES = 6,      /* fixed bytes(size) */
    NINES_T_VARBYTES = 7,   /* varbytes(size) */
    NINES_T_TIMESTAMP = 8,  /* microseconds since the Unix epoch (NINES_V_INT64) */
};

struct nines_column {
    const char *name;
    uint32_t type;          /* enum nines_coltype */
    uint32_t size;          /* n / max of the string and bytes types, else 0 */
    int nullable;
    /* What the SQL front end shows (sql/README.md "Types"); the cluster
     * stores them and never looks at them: */
    uint32_t sqltype;       /* a PostgreSQL type oid; 0: derived from type */
    int32_t sqltypmod;      /* its type modifier (-1: none) */
    int hidden;             /* a row key the front end added: not shown */
};

struct nines_table_def {
    const char *name;
    uint32_t ncols;
    const struct nines_column *cols;
    uint32_t npk;           /* 1..16 */
    const uint32_t *pk;     /* column indices, in key order */
    uint32_t method;        /* 1 hash (default when 0), 2 range */
    uint32_t nfrags;        /* hash: fragment count (0: one per node of the cluster) */
    uint32_t nsplits;       /* range: split points, ascending; fragments = nsplits + 1 */
    const struct nines_value *splits;  /* range: each a value of the first key column */
    uint32_t replicas;      /* 1 or 2 (0: 2) */
    uint32_t scheme;        /* 1 minimum intersecting sets (default when 0), 2 circular */
};

struct nines_table_info {
    uint32_t id;            /* never reused by the cluster */
    uint64_t version;       /* the dictionary version this was read from */
    int readonly;           /* writes are refused (nines_table_set_readonly) */
    struct nines_table_def def;  /* pointers into the connection's dictionary copy */
};

/* Create a table. NINES_EEXIST when the name is taken, NINES_EINVAL naming
 * the bad part of def; *id_out (may be NULL) gets the new table's id. */
int nines_table_create(nines_conn *c, const struct nines_table_def *def, uint32_t *id_out);
/* Drop a table and its rows. NINES_ENOTFOUND when there is none. */
int nines_table_drop(nines_conn *c, const char *name);
/* In one dictionary version: drop table `name` and give table `with` its
 * name (TRUNCATE, re-keying: build the new table under a scratch name,
 * then switch). NINES_ENOTFOUND naming whichever is missing. */
int nines_table_replace(nines_conn *c, const char *name, const char *with);
/* on 1: every write to `name` is refused with NINES_ESTATE ("table T is
 * read-only: ...") until on 0; reads go on. */
int nines_table_set_readonly(nines_conn *c, const char *name, int on);

/* The connection's copy of the dictionary, fetched from the connected node
 * when refresh is non-zero or no copy is held yet. nines_tables calls fn
 * for every table in id order (fn returns non-zero to stop; that value is
 * returned); nines_table_get fills *out for one table (NINES_ENOTFOUND).
 * Pointers in the infos stay valid until the next call on c that fetches
 * or changes the schema (nines_tables/nines_table_get with refresh, any
 * nines_table_* change, nines_key_fragment's fetch). */
typedef int (*nines_table_fn)(void *arg, const struct nines_table_info *t);
int nines_tables(nines_conn *c, int refresh, nines_table_fn fn, void *arg);
int nines_table_get(nines_conn *c, const char *name, int refresh, struct nines_table_info *out);

/* ---- users (client/README.md "Users") -------------------------------- */
/* Roles: enum nines_role (with nines_connect_opts above). */
/* Create a user (a dictionary change on every node). The library makes
 * the SCRAM-SHA-256 verifier from the password (random salt, 4096
 * iterations); the password itself is never sent. name: 1..63 bytes of
 * letters, digits and "_.@-"; password: 1..1024 bytes. NINES_EEXIST when
 * the name is taken, NINES_EINVAL naming the bad argument. */
int nines_user_create(nines_conn *c, const char *name, int role, const char *password);
/* NINES_ENOTFOUND; NINES_ESTATE when it is the last admin. */
int nines_user_drop(nines_conn *c, const char *name);
/* Change the role (0: keep) and/or the password (NULL: keep; a new
 * verifier is made as for create). NINES_ESTATE when it would demote the
 * last admin. */
int nines_user_alter(nines_conn *c, const char *name, int role, const char *password);
struct nines_user_info {
    const char *name;       /* valid during the callback */
    uint32_t role;          /* enum nines_role */
};
/* Every user, by name, as the connected node knows them (names and roles
 * only: verifiers never leave the nodes). fn returns non-zero to stop;
 * that value is returned. */
typedef int (*nines_user_fn)(void *arg, const struct nines_user_info *u);
int nines_users(nines_conn *c, nines_user_fn fn, void *arg);

/* ---- procedures ------------------------------------------------------ */

/* TPC-B: account aid, teller tid, branch bid balance += delta, history
 * row; *balance (may be NULL) = the account's new balance. */
int nines_tpcb(nines_conn *c, int64_t aid, int64_t tid, int64_t bid, int64_t delta,
               int64_t *balance);
/* Scale-up test: t1[k1].v += delta, t2[k2].v += delta. */
int nines_two_upd(nines_conn *c, int64_t k1, int64_t k2, int64_t delta);

/* ---- asynchronous (pipelined) requests ------------------------------- */

/* Called once per request: rc 0 and the procedure's value, or a negative
 * code and a detail (valid during the call). May submit new requests; must
 * not call blocking functions on the same connection. */
typedef void (*nines_done_fn)(void *arg, int rc, int64_t value, const char *detail);

/* Queue a request (0, or an error: nothing queued, callback not called).
 * Queued requests are written by nines_poll, batched into one write. */
int nines_tpcb_async(nines_conn *c, int64_t aid, int64_t tid, int64_t bid, int64_t delta,
                     nines_done_fn fn, void *arg);
int nines_two_upd_async(nines_conn *c, int64_t k1, int64_t k2, int64_t delta, nines_done_fn fn,
                        void *arg);
/* Write what is queued, wait up to timeout_ms (0: do not wait) for
 * answers, dispatch every answer that arrived and every request that timed
 * out or was lost with the connection. Returns the number of callbacks
 * made (>= 0), or NINES_EINVAL / NINES_ESTATE (called from a callback).
 * Reconnecting happens in the next submit, which returns
 * NINES_EUNREACHABLE when no node accepts. */
int nines_poll(nines_conn *c, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
