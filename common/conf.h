/* Cluster configuration file (internal, common). Format and keys are
 * documented in common/README.md; tools/local4.conf is the example.
 *
 * Errors: nines_conf_load/parse return NINES_ECONFIG (or NINES_EIO when the
 * file cannot be read) with nines_errdetail() = "FILE:LINE: problem". */
#ifndef NINES_CONF_H
#define NINES_CONF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NINES_MAX_NODES 64        /* node ids are 1..NINES_MAX_NODES */
#define NINES_HOST_MAX 64
#define NINES_NAME_MAX 64
#define NINES_GCP_INTERVAL_MIN_MS 10u        /* gcp_interval_ms: 0 (off) or in min..max */
#define NINES_GCP_INTERVAL_MAX_MS 60000u
#define NINES_CKPT_INTERVAL_MIN_MS 1000u      /* checkpoint_interval_ms: 0 or at least this */
#define NINES_CKPT_INTERVAL_MAX_MS 86400000u  /* ... and at most a day */
#define NINES_KEY_BYTES 32                   /* the cluster key (cluster_key PATH) */
#define NINES_KEY_HEADER "# ninesdb cluster key v1"
#define NINES_SQL_USERS_MAX 32              /* sql_user lines */
#define NINES_SQL_VERIFIER_MAX 256          /* a SCRAM-SHA-256 verifier's text, with NUL */

/* The cluster file's `disk_log` setting (common/README.md). */
enum nines_disk_log {
    NINES_DISK_LOG_OFF = 0,       /* no disk log */
    NINES_DISK_LOG_ASYNC,         /* `async` (or `on`): off the commit path, except that a
                                   * PRIMARY ALONE fragment's commits wait for the fsync */
    NINES_DISK_LOG_SYNC,          /* `sync`: every commit waits for the local fsync at every
                                   * primary it wrote */
};
const char *nines_disk_log_name(enum nines_disk_log v);

/* The cluster file's `client_auth` setting (README.md "SECURITY"). */
enum nines_client_auth {
    NINES_CLIENT_AUTH_TRUST = 0,  /* `trust`: a plain client is an admin (no users) */
    NINES_CLIENT_AUTH_SCRAM,      /* `scram-sha-256`: users of the dictionary, by role */
};

/* The cluster file's `sql_tls` setting (README.md "SECURITY"). */
enum nines_tls_mode {
    NINES_TLS_OFF = 0,            /* `off`: SSLRequest answered 'N' */
    NINES_TLS_PREFER,             /* `prefer`: TLS when the client asks, plain otherwise */
    NINES_TLS_REQUIRE,            /* `require`: a client that does not ask is refused */
};

/* The cluster file's `sql_auth` setting (common/README.md, sql/README.md
 * "Authentication"). */
enum nines_sql_auth {
    NINES_SQL_AUTH_TRUST = 0,     /* `trust`: every user name is accepted */
    NINES_SQL_AUTH_SCRAM,         /* `scram-sha-256`: the sql_user lines and their verifiers */
};

/* `sql_user NAME VERIFIER`: VERIFIER in PostgreSQL's text form
 * SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
 * (`ninesctl sql-verifier NAME` prints the line), checked for its shape
 * here, decoded by sql/scram.c. */
struct nines_sql_user {
    char name[NINES_NAME_MAX];
    char verifier[NINES_SQL_VERIFIER_MAX];
};

struct nines_node_conf {
    uint32_t id;                  /* 1..NINES_MAX_NODES, unique */
    uint32_t site;                /* 0 or 1 */
    char host[NINES_HOST_MAX];    /* IPv4 address or host name */
    uint16_t port;
    char data_dir[256];           /* per-node disk folder ("" = none) */
    bool has_sql;                 /* `sql HOST:PORT` on the node line: its PostgreSQL
                                   * protocol listener (sql/README.md); none without it */
    char sql_host[NINES_HOST_MAX];
    uint16_t sql_port;
};

struct nines_conf {
    char path[256];               /* file it was read from */
    char cluster[NINES_NAME_MAX];
    uint32_t nnodes;
    struct nines_node_conf nodes[NINES_MAX_NODES];
    bool has_arbitrator;
    char arbitrator_host[NINES_HOST_MAX];
    uint16_t arbitrator_port;
    char arbitrator_data[256];    /* the arbitrator's folder for its grant record ("" = none) */
    /* timing and sizing knobs (defaults in conf.c) */
    uint32_t heartbeat_ms;        /* I-am-alive interval */
    uint32_t heartbeat_misses;    /* missed intervals before suspicion */
    uint32_t reconnect_min_ms;    /* first reconnect backoff */
    uint32_t reconnect_max_ms;    /* backoff ceiling */
    uint32_t max_frame_bytes;     /* larger length prefix closes the connection */
    uint32_t send_queue_bytes;    /* per-peer bound on queued output */
    uint32_t max_client_connections; /* client connections a node holds at once (limits) */
    uint32_t handshake_ms;        /* a connection's HELLO (and proof) within this (10000) */
    uint32_t max_requests_per_connection; /* TXN_REQs in flight per client connection */
    uint32_t memory_budget_mb;    /* table data per node; writes past it refused (0: none) */
    uint32_t poll_us;             /* busy-poll this long before sleeping (0 = never) */
    uint32_t lock_timeout_ms;     /* a record lock wait longer than this aborts */
    uint32_t txn_timeout_ms;      /* a transaction not decided by then aborts */
    char transport[16];           /* "tcp" or "rdma" (rdma falls back to tcp) */
    enum nines_disk_log disk_log; /* append every fragment log record to <data>/log, and
                                   * when commits wait for it (kernel/svc/README.md "Disk
                                   * logging"); default off */
    uint32_t disk_log_buffer_mb;  /* with the disk log: MiB of records buffered while the disk
                                   * is failing or slow before they are dropped (a gap;
                                   * kernel/svc/README.md "Gap and resume"); default 64 */
    uint32_t checkpoint_interval_ms; /* with the disk log: a round of checkpoints of every
                                   * replica this often (0: only on demand;
                                   * kernel/svc/README.md "Checkpoints") */
    uint32_t repair_after_ms;     /* self-repair: a node outside the node set this long has
                                   * its replicas rebuilt on its site-mates (0: never;
                                   * supervisor/README.md "Self-repair") */
    bool takeback;                /* a rebuilt standby-only node takes its dictionary
                                   * primaries back (supervisor/README.md "Takeback");
                                   * default on; `takeback_ms off` turns it off */
    uint32_t takeback_ms;         /* ... after it has been current this long (settle) */
    /* `cluster_key PATH` (common/README.md, README.md "SECURITY"): node,
     * arbitrator and admin links prove this key in their HELLO
     * (net/README.md "Handshake"). Read at load; never logged or sent. */
    char key_path[256];           /* "" = no key */
    bool has_key;
    uint8_t key[NINES_KEY_BYTES];
    uint32_t gcp_interval_ms;     /* with the disk log: a commit-epoch round (global
                                   * checkpoint) this often (0: off, no epochs; default
                                   * 100; supervisor/README.md "Global checkpoints") */
    /* native clients (README.md "SECURITY", net/README.md "Users") */
    enum nines_client_auth client_auth; /* default trust */
    char client_user[64];         /* a client program's user (nines_connect_config) */
    char client_password_file[256]; /* ... and the file holding its password */
    /* TLS for client connections: the node's certificate chain and key
     * (PEM), and the CA file clients verify nodes against */
    char tls_cert[256], tls_key[256], tls_ca[256];
    enum nines_tls_mode sql_tls;  /* default: prefer with tls_cert, else off */
    bool sql_tls_set;
    /* the PostgreSQL protocol front end (sql/README.md) */
    enum nines_sql_auth sql_auth; /* default trust */
    uint32_t sql_nusers;
    struct nines_sql_user sql_users[NINES_SQL_USERS_MAX];
    uint32_t sql_max_connections; /* sessions a node's SQL listener holds (default 100) */
    uint32_t sql_max_message_bytes; /* a longer protocol message closes its session (16 MiB) */
};

int nines_conf_load(const char *path, struct nines_conf *out);
/* The first line of a password file (client_password_file) into out:
 * refused (NINES_ECONFIG naming the path) unless it is a regular file
 * readable by its owner only, or when the line is empty. */
int nines_read_password_file(const char *path, char *out, size_t n);
/* The login a client program uses when it was given none: NINES_USER and
 * NINES_PASSWORD from the environment, else cf's client_user with the
 * first line of its client_password_file (cf NULL: the environment only).
 * user "" : no login. NINES_EINVAL for a user without a password or a
 * value longer than its buffer; the file's refusals as above. */
int nines_conf_login(const struct nines_conf *cf, char *user, size_t un, char *pw, size_t pn);
/* Parse text; `name` is used in error messages in place of a file name. */
int nines_conf_parse(const char *text, const char *name, struct nines_conf *out);
/* Read a cluster key file (NINES_KEY_HEADER, then 64 hex digits) into key.
 * Refused (NINES_ECONFIG, naming the path) when the file is not a regular
 * file, is readable or writable by group or others (mode & 077), or is
 * malformed; NINES_EIO when it cannot be read. The key is never in a
 * message. */
int nines_key_load(const char *path, uint8_t key[NINES_KEY_BYTES]);
/* Format key as a key file's text (header line, hex line): out >= 128 bytes. */
void nines_key_format(const uint8_t key[NINES_KEY_BYTES], char *out, size_t n);
/* The sql_user line of name, or NULL. */
const struct nines_sql_user *nines_conf_sql_user(const struct nines_conf *c, const char *name);
/* Node by id, or NULL. */
const struct nines_node_conf *nines_conf_node(const struct nines_conf *c, uint32_t id);
#endif
