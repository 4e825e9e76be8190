/* Cluster configuration file parser. Grammar (one item per line, '#'
 * starts a comment, blank lines ignored):
 *
 *   cluster NAME
 *   node ID site S HOST:PORT [data DIR] [sql HOST:PORT]
 *   arbitrator HOST:PORT [data DIR]
 *   client_auth trust|scram-sha-256
 *   client_user NAME, client_password_file PATH
 *   sql_auth trust|scram-sha-256
 *   sql_user NAME VERIFIER  (repeatable)
 *   KNOB VALUE            (heartbeat_ms, heartbeat_misses, reconnect_min_ms,
 *                          reconnect_max_ms, max_frame_bytes,
 *                          send_queue_bytes, max_client_connections,
 *                          max_requests_per_connection, memory_budget_mb,
 *                          poll_us, lock_timeout_ms,
 *                          txn_timeout_ms, transport, disk_log,
 *                          disk_log_buffer_mb, checkpoint_interval_ms,
 *                          repair_after_ms, takeback_ms N|off,
 *                          gcp_interval_ms, sql_max_connections,
 *                          sql_max_message_bytes)
 *
 * Every problem is reported as "FILE:LINE: what, with which value". */
#include "conf.h"

#include "nines/errors.h"

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_MAX_BYTES (1u << 20)

struct knob {
    const char *name;
    size_t offset;
    uint32_t min, max;
};

static const struct knob knobs[] = {
    {"heartbeat_ms", offsetof(struct nines_conf, heartbeat_ms), 1, 60000},
    {"heartbeat_misses", offsetof(struct nines_conf, heartbeat_misses), 1, 100},
    {"reconnect_min_ms", offsetof(struct nines_conf, reconnect_min_ms), 1, 60000},
    {"reconnect_max_ms", offsetof(struct nines_conf, reconnect_max_ms), 1, 600000},
    {"max_frame_bytes", offsetof(struct nines_conf, max_frame_bytes), 1024, 64u << 20},
    {"send_queue_bytes", offsetof(struct nines_conf, send_queue_bytes), 4096, 1u << 30},
    {"max_client_connections", offsetof(struct nines_conf, max_client_connections), 1, 1000000},
    {"handshake_ms", offsetof(struct nines_conf, handshake_ms), 10, 3600000},
    {"max_requests_per_connection", offsetof(struct nines_conf, max_requests_per_connection), 1,
     1000000},
    {"memory_budget_mb", offsetof(struct nines_conf, memory_budget_mb), 0, 16u << 20},
    {"poll_us", offsetof(struct nines_conf, poll_us), 0, 100000},
    {"lock_timeout_ms", offsetof(struct nines_conf, lock_timeout_ms), 1, 600000},
    {"txn_timeout_ms", offsetof(struct nines_conf, txn_timeout_ms), 1, 600000},
    {"disk_log_buffer_mb", offsetof(struct nines_conf, disk_log_buffer_mb), 1, 4096},
    {"repair_after_ms", offsetof(struct nines_conf, repair_after_ms), 0, 86400000},
    {"sql_max_connections", offsetof(struct nines_conf, sql_max_connections), 1, 100000},
    {"sql_max_message_bytes", offsetof(struct nines_conf, sql_max_message_bytes), 4096,
     1u << 30},
};

static void conf_defaults(struct nines_conf *c)
{
    memset(c, 0, sizeof *c);
    c->heartbeat_ms = 10;      /* takeover in tens of ms (supervisor/README.md "I-am-alive") */
    c->heartbeat_misses = 5;
    c->reconnect_min_ms = 10;
    c->reconnect_max_ms = 1000;
    c->max_frame_bytes = 4u << 20;
    c->send_queue_bytes = 16u << 20;
    c->max_client_connections = 1024;      /* net/README.md "Limits" */
    c->handshake_ms = 10000;               /* net/README.md "Limits" */
    c->max_requests_per_connection = 256;  /* txctl/README.md "Requests in flight" */
    c->poll_us = 0;
    c->lock_timeout_ms = 1000;
    c->txn_timeout_ms = 2000;
    snprintf(c->transport, sizeof c->transport, "tcp");
    c->disk_log = NINES_DISK_LOG_OFF; /* kernel/svc/README.md "Disk logging": its TPC-B cost */
    c->checkpoint_interval_ms = 60000; /* kernel/svc/README.md "Checkpoints" */
    c->disk_log_buffer_mb = 64;        /* KSVC_DLOG_BUF_MAX */
    c->repair_after_ms = 60000;        /* supervisor/README.md "Self-repair" */
    c->takeback = true;                /* supervisor/README.md "Takeback" */
    c->takeback_ms = 1000;
    c->gcp_interval_ms = 100;          /* supervisor/README.md "Global checkpoints" */
    c->sql_auth = NINES_SQL_AUTH_TRUST; /* sql/README.md "Authentication" */
    c->sql_max_connections = 100;
    c->sql_max_message_bytes = 16u << 20;
}

const char *nines_disk_log_name(enum nines_disk_log v)
{
    switch (v) {
    case NINES_DISK_LOG_OFF: return "off";
    case NINES_DISK_LOG_ASYNC: return "async";
    case NINES_DISK_LOG_SYNC: return "sync";
    }
    return "?";
}

/* Parse a decimal uint32 in [min,max]; 0 or -1. */
static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "host:port" -> host, port (1..65535). 0 or -1. */
static int parse_hostport(const char *s, char *host, size_t hostsz, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= hostsz)
        return -1;
    uint32_t p;
    if (parse_u32(colon + 1, 1, 65535, &p))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* Split line into at most max whitespace-separated words (in place). */
static int split_words(char *line, char **w, int max)
{
    int n = 0;
    char *p = line;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (n == max)
            return max + 1;
        w[n++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (*p)
            *p++ = '\0';
    }
    return n;
}

static int parse_node(struct nines_conf *c, char **w, int nw, const char *name, int ln)
{
    /* node ID site S HOST:PORT [data DIR] [sql HOST:PORT] */
    if (nw != 5 && nw != 7 && nw != 9)
        return nines_err(NINES_ECONFIG,
                         "%s:%d: expected 'node ID site S HOST:PORT [data DIR] [sql HOST:PORT]', "
                         "got %d words", name, ln, nw);
    struct nines_node_conf n = {0};
    if (parse_u32(w[1], 1, NINES_MAX_NODES, &n.id))
        return nines_err(NINES_ECONFIG, "%s:%d: node id '%s' is not a number in 1..%d", name,
                         ln, w[1], NINES_MAX_NODES);
    if (strcmp(w[2], "site") != 0)
        return nines_err(NINES_ECONFIG, "%s:%d: expected 'site' after node id, got '%s'", name,
                         ln, w[2]);
    if (parse_u32(w[3], 0, 1, &n.site))
        return nines_err(NINES_ECONFIG, "%s:%d: site '%s' must be 0 or 1", name, ln, w[3]);
    if (parse_hostport(w[4], n.host, sizeof n.host, &n.port))
        return nines_err(NINES_ECONFIG, "%s:%d: address '%s' is not HOST:PORT with port 1..65535",
                         name, ln, w[4]);
    bool has_data = false;
    for (int i = 5; i + 1 < nw; i += 2) {
        if (strcmp(w[i], "data") == 0 && !has_data) {
            if (strlen(w[i + 1]) >= sizeof n.data_dir)
                return nines_err(NINES_ECONFIG, "%s:%d: data folder '%s' is longer than %zu "
                                 "bytes", name, ln, w[i + 1], sizeof n.data_dir - 1);
            snprintf(n.data_dir, sizeof n.data_dir, "%s", w[i + 1]);
            has_data = true;
        } else if (strcmp(w[i], "sql") == 0 && !n.has_sql) {
            if (parse_hostport(w[i + 1], n.sql_host, sizeof n.sql_host, &n.sql_port))
                return nines_err(NINES_ECONFIG, "%s:%d: sql address '%s' is not HOST:PORT with "
                                 "port 1..65535", name, ln, w[i + 1]);
            n.has_sql = true;
        } else {
            return nines_err(NINES_ECONFIG, "%s:%d: expected 'data DIR' or 'sql HOST:PORT' "
                             "(each at most once), got '%s'", name, ln, w[i]);
        }
    }
    for (uint32_t i = 0; i < c->nnodes; i++) {
        if (c->nodes[i].id == n.id)
            return nines_err(NINES_ECONFIG, "%s:%d: node id %u is defined twice", name, ln, n.id);
        if (c->nodes[i].port == n.port && strcmp(c->nodes[i].host, n.host) == 0)
            return nines_err(NINES_ECONFIG, "%s:%d: address %s:%u is already used by node %u",
                             name, ln, n.host, n.port, c->nodes[i].id);
    }
    if (c->nnodes == NINES_MAX_NODES)
        return nines_err(NINES_ECONFIG, "%s:%d: more than %d nodes", name, ln, NINES_MAX_NODES);
    c->nodes[c->nnodes++] = n;
    return 0;
}

static int parse_arbitrator(struct nines_conf *c, char **w, int nw, const char *name, int ln)
{
    /* arbitrator HOST:PORT [data DIR] */
    if (nw != 2 && nw != 4)
        return nines_err(NINES_ECONFIG,
                         "%s:%d: expected 'arbitrator HOST:PORT [data DIR]', got %d words", name,
                         ln, nw);
    if (c->has_arbitrator)
        return nines_err(NINES_ECONFIG, "%s:%d: a second 'arbitrator' line (one arbitrator per "
                         "cluster)", name, ln);
    if (parse_hostport(w[1], c->arbitrator_host, sizeof c->arbitrator_host, &c->arbitrator_port))
        return nines_err(NINES_ECONFIG,
                         "%s:%d: arbitrator address '%s' is not HOST:PORT with port 1..65535",
                         name, ln, w[1]);
    if (nw == 4) {
        if (strcmp(w[2], "data") != 0)
            return nines_err(NINES_ECONFIG, "%s:%d: expected 'data DIR' after the arbitrator "
                             "address, got '%s'", name, ln, w[2]);
        if (strlen(w[3]) >= sizeof c->arbitrator_data)
            return nines_err(NINES_ECONFIG, "%s:%d: data folder '%s' is longer than %zu bytes",
                             name, ln, w[3], sizeof c->arbitrator_data - 1);
        snprintf(c->arbitrator_data, sizeof c->arbitrator_data, "%s", w[3]);
    }
    c->has_arbitrator = true;
    return 0;
}

/* Base64 (RFC 4648, padded) of [s, s+len): its decoded length, -1 when
 * it is not well formed. */
static int b64_len(const char *s, size_t len)
{
    if (len == 0 || len % 4)
        return -1;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '=') {
            if (i + 2 < len)
                return -1;
            pad++;
        } else if (pad || !(isalnum(ch) || ch == '+' || ch == '/')) {
            return -1;
        }
    }
    return (int)(len / 4 * 3 - pad);
}

/* PostgreSQL's SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY; 0 or -1 with why. */
static int sql_verifier_shape(const char *v, const char **why)
{
    static const char prefix[] = "SCRAM-SHA-256$";
    if (strncmp(v, prefix, sizeof prefix - 1) != 0) {
        *why = "does not start with SCRAM-SHA-256$ (a plain password is never accepted)";
        return -1;
    }
    const char *it = v + sizeof prefix - 1, *colon1 = strchr(it, ':');
    const char *dollar = colon1 ? strchr(colon1, '$') : NULL;
    const char *colon2 = dollar ? strchr(dollar, ':') : NULL;
    if (!colon1 || !dollar || !colon2) {
        *why = "is not SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>";
        return -1;
    }
    char num[16];
    uint32_t iter;
    if ((size_t)(colon1 - it) >= sizeof num) {
        *why = "has an iteration count that is not a number in 1..100000000";
        return -1;
    }
    memcpy(num, it, (size_t)(colon1 - it));
    num[colon1 - it] = '\0';
    if (parse_u32(num, 1, 100000000, &iter)) {
        *why = "has an iteration count that is not a number in 1..100000000";
        return -1;
    }
    int salt = b64_len(colon1 + 1, (size_t)(dollar - colon1 - 1));
    if (salt < 1 || salt > 64) {
        *why = "has a salt that is not base64 of 1..64 bytes";
        return -1;
    }
    if (b64_len(dollar + 1, (size_t)(colon2 - dollar - 1)) != 32 ||
        b64_len(colon2 + 1, strlen(colon2 + 1)) != 32) {
        *why = "has a StoredKey or ServerKey that is not base64 of 32 bytes";
        return -1;
    }
    return 0;
}

static int parse_sql_user(struct nines_conf *c, char **w, int nw, const char *name, int ln)
{
    /* sql_user NAME VERIFIER */
    if (nw != 3)
        return nines_err(NINES_ECONFIG, "%s:%d: expected 'sql_user NAME VERIFIER' (the line "
                         "ninesctl sql-verifier NAME prints), got %d words", name, ln, nw);
    if (strlen(w[1]) >= sizeof c->sql_users[0].name)
        return nines_err(NINES_ECONFIG, "%s:%d: sql_user name '%s' is longer than %zu bytes",
                         name, ln, w[1], sizeof c->sql_users[0].name - 1);
    const char *why = NULL;
    if (strlen(w[2]) >= sizeof c->sql_users[0].verifier)
        why = "is too long";
    else
        (void)sql_verifier_shape(w[2], &why);
    if (why) /* the value may be a password typed by mistake: never echoed */
        return nines_err(NINES_ECONFIG, "%s:%d: sql_user %s: the verifier %s (make the line "
                         "with ninesctl sql-verifier %s)", name, ln, w[1], why, w[1]);
    if (nines_conf_sql_user(c, w[1]))
        return nines_err(NINES_ECONFIG, "%s:%d: sql_user %s is defined twice", name, ln, w[1]);
    if (c->sql_nusers == NINES_SQL_USERS_MAX)
        return nines_err(NINES_ECONFIG, "%s:%d: more than %d sql_user lines", name, ln,
                         NINES_SQL_USERS_MAX);
    struct nines_sql_user *u = &c->sql_users[c->sql_nusers++];
    snprintf(u->name, sizeof u->name, "%s", w[1]);
    snprintf(u->verifier, sizeof u->verifier, "%s", w[2]);
    return 0;
}

static int parse_line(struct nines_conf *c, char *line, const char *name, int ln)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *w[10];
    int nw = split_words(line, w, 9);
    if (nw == 0)
        return 0;
    if (nw > 9)
        return nines_err(NINES_ECONFIG, "%s:%d: too many words", name, ln);
    if (strcmp(w[0], "node") == 0)
        return parse_node(c, w, nw, name, ln);
    if (strcmp(w[0], "arbitrator") == 0)
        return parse_arbitrator(c, w, nw, name, ln);
    if (strcmp(w[0], "sql_user") == 0)
        return parse_sql_user(c, w, nw, name, ln);
    if (nw != 2)
        return nines_err(NINES_ECONFIG, "%s:%d: '%s' takes exactly one value, got %d", name, ln,
                         w[0], nw - 1);
    if (strcmp(w[0], "cluster") == 0) {
        if (strlen(w[1]) >= sizeof c->cluster)
            return nines_err(NINES_ECONFIG, "%s:%d: cluster name '%s' is longer than %zu bytes",
                             name, ln, w[1], sizeof c->cluster - 1);
        snprintf(c->cluster, sizeof c->cluster, "%s", w[1]);
        return 0;
    }
    if (strcmp(w[0], "cluster_key") == 0) {
        if (strlen(w[1]) >= sizeof c->key_path)
            return nines_err(NINES_ECONFIG, "%s:%d: cluster_key path '%s' is longer than %zu "
                             "bytes", name, ln, w[1], sizeof c->key_path - 1);
        snprintf(c->key_path, sizeof c->key_path, "%s", w[1]);
        return 0;
    }
    if (strcmp(w[0], "client_auth") == 0) {
        if (strcmp(w[1], "trust") == 0)
            c->client_auth = NINES_CLIENT_AUTH_TRUST;
        else if (strcmp(w[1], "scram-sha-256") == 0)
            c->client_auth = NINES_CLIENT_AUTH_SCRAM;
        else
            return nines_err(NINES_ECONFIG, "%s:%d: client_auth '%s' must be trust or "
                             "scram-sha-256", name, ln, w[1]);
        return 0;
    }
    if (strcmp(w[0], "tls_cert") == 0 || strcmp(w[0], "tls_key") == 0 ||
        strcmp(w[0], "tls_ca") == 0) {
        char *dst = w[0][4] == 'c' && w[0][5] == 'e' ? c->tls_cert
                    : w[0][4] == 'k'                 ? c->tls_key
                                                     : c->tls_ca;
        if (strlen(w[1]) >= sizeof c->tls_cert)
            return nines_err(NINES_ECONFIG, "%s:%d: %s path '%s' is longer than %zu bytes", name,
                             ln, w[0], w[1], sizeof c->tls_cert - 1);
        snprintf(dst, sizeof c->tls_cert, "%s", w[1]);
        return 0;
    }
    if (strcmp(w[0], "sql_tls") == 0) {
        if (strcmp(w[1], "off") == 0)
            c->sql_tls = NINES_TLS_OFF;
        else if (strcmp(w[1], "prefer") == 0)
            c->sql_tls = NINES_TLS_PREFER;
        else if (strcmp(w[1], "require") == 0)
            c->sql_tls = NINES_TLS_REQUIRE;
        else
            return nines_err(NINES_ECONFIG, "%s:%d: sql_tls '%s' must be off, prefer or "
                             "require", name, ln, w[1]);
        c->sql_tls_set = true;
        return 0;
    }
    if (strcmp(w[0], "client_user") == 0) {
        if (strlen(w[1]) >= sizeof c->client_user)
            return nines_err(NINES_ECONFIG, "%s:%d: client_user '%s' is longer than %zu bytes",
                             name, ln, w[1], sizeof c->client_user - 1);
        snprintf(c->client_user, sizeof c->client_user, "%s", w[1]);
        return 0;
    }
    if (strcmp(w[0], "client_password_file") == 0) {
        if (strlen(w[1]) >= sizeof c->client_password_file)
            return nines_err(NINES_ECONFIG, "%s:%d: client_password_file path '%s' is longer "
                             "than %zu bytes", name, ln, w[1], sizeof c->client_password_file - 1);
        snprintf(c->client_password_file, sizeof c->client_password_file, "%s", w[1]);
        return 0;
    }
    if (strcmp(w[0], "sql_auth") == 0) {
        if (strcmp(w[1], "trust") == 0)
            c->sql_auth = NINES_SQL_AUTH_TRUST;
        else if (strcmp(w[1], "scram-sha-256") == 0)
            c->sql_auth = NINES_SQL_AUTH_SCRAM;
        else
            return nines_err(NINES_ECONFIG, "%s:%d: sql_auth '%s' must be trust or "
                             "scram-sha-256", name, ln, w[1]);
        return 0;
    }
    if (strcmp(w[0], "transport") == 0) {
        if (strcmp(w[1], "tcp") != 0 && strcmp(w[1], "rdma") != 0)
            return nines_err(NINES_ECONFIG, "%s:%d: transport '%s' must be tcp or rdma", name, ln,
                             w[1]);
        snprintf(c->transport, sizeof c->transport, "%s", w[1]);
        return 0;
    }
    if (strcmp(w[0], "disk_log") == 0) {
        if (strcmp(w[1], "off") == 0)
            c->disk_log = NINES_DISK_LOG_OFF;
        else if (strcmp(w[1], "async") == 0 || strcmp(w[1], "on") == 0) /* on: older files */
            c->disk_log = NINES_DISK_LOG_ASYNC;
        else if (strcmp(w[1], "sync") == 0)
            c->disk_log = NINES_DISK_LOG_SYNC;
        else
            return nines_err(NINES_ECONFIG, "%s:%d: disk_log '%s' must be off, async (or on) "
                             "or sync", name, ln, w[1]);
        return 0;
    }
    if (strcmp(w[0], "checkpoint_interval_ms") == 0) {
        uint32_t v;
        if (parse_u32(w[1], 0, UINT32_MAX, &v) ||
            (v && (v < NINES_CKPT_INTERVAL_MIN_MS || v > NINES_CKPT_INTERVAL_MAX_MS)))
            return nines_err(NINES_ECONFIG, "%s:%d: checkpoint_interval_ms '%s' must be 0 (only "
                             "on demand: ninesctl checkpoint) or a number of milliseconds in "
                             "%u..%u", name, ln, w[1], NINES_CKPT_INTERVAL_MIN_MS,
                             NINES_CKPT_INTERVAL_MAX_MS);
        c->checkpoint_interval_ms = v;
        return 0;
    }
    if (strcmp(w[0], "gcp_interval_ms") == 0) {
        uint32_t v;
        if (parse_u32(w[1], 0, UINT32_MAX, &v) ||
            (v && (v < NINES_GCP_INTERVAL_MIN_MS || v > NINES_GCP_INTERVAL_MAX_MS)))
            return nines_err(NINES_ECONFIG, "%s:%d: gcp_interval_ms '%s' must be 0 (off: no "
                             "commit epochs) or a number of milliseconds in %u..%u", name, ln,
                             w[1], NINES_GCP_INTERVAL_MIN_MS, NINES_GCP_INTERVAL_MAX_MS);
        c->gcp_interval_ms = v;
        return 0;
    }
    if (strcmp(w[0], "takeback_ms") == 0) {
        uint32_t v;
        if (strcmp(w[1], "off") == 0) {
            c->takeback = false;
            return 0;
        }
        if (parse_u32(w[1], 0, 3600000, &v))
            return nines_err(NINES_ECONFIG, "%s:%d: takeback_ms '%s' must be off or a number "
                             "in 0..3600000", name, ln, w[1]);
        c->takeback = true;
        c->takeback_ms = v;
        return 0;
    }
    for (size_t k = 0; k < sizeof knobs / sizeof knobs[0]; k++) {
        if (strcmp(w[0], knobs[k].name) != 0)
            continue;
        uint32_t v;
        if (parse_u32(w[1], knobs[k].min, knobs[k].max, &v))
            return nines_err(NINES_ECONFIG, "%s:%d: %s '%s' must be a number in %u..%u", name, ln,
                             w[0], w[1], knobs[k].min, knobs[k].max);
        memcpy((char *)c + knobs[k].offset, &v, sizeof v);
        return 0;
    }
    return nines_err(NINES_ECONFIG, "%s:%d: unknown setting '%s'", name, ln, w[0]);
}

/* Whole-file checks after every line parsed. */
static int conf_validate(const struct nines_conf *c, const char *name)
{
    if (!c->cluster[0])
        return nines_err(NINES_ECONFIG, "%s: no 'cluster NAME' line", name);
    if (c->nnodes == 0)
        return nines_err(NINES_ECONFIG, "%s: no 'node' lines", name);
    unsigned per_site[2] = {0, 0};
    for (uint32_t i = 0; i < c->nnodes; i++)
        per_site[c->nodes[i].site]++;
    for (int s = 0; s < 2; s++)
        if (per_site[s] == 0)
            return nines_err(NINES_ECONFIG,
                             "%s: site %d has no nodes (every fragment needs a replica at each "
                             "of the two sites)", name, s);
    for (uint32_t i = 0; c->has_arbitrator && i < c->nnodes; i++)
        if (c->nodes[i].port == c->arbitrator_port &&
            strcmp(c->nodes[i].host, c->arbitrator_host) == 0)
            return nines_err(NINES_ECONFIG, "%s: arbitrator address %s:%u is node %u's address "
                             "(the arbitrator is a process of its own, outside both sites)",
                             name, c->arbitrator_host, c->arbitrator_port, c->nodes[i].id);
    for (uint32_t i = 0; c->disk_log == NINES_DISK_LOG_SYNC && i < c->nnodes; i++)
        if (!c->nodes[i].data_dir[0])
            return nines_err(NINES_ECONFIG, "%s: disk_log sync, but node %u has no data folder "
                             "for its disk log (every commit waits for the fsync at each "
                             "primary it wrote: add 'data DIR' to the node line)", name,
                             c->nodes[i].id);
    for (uint32_t i = 0; i < c->nnodes; i++) {
        const struct nines_node_conf *a = &c->nodes[i];
        if (!a->has_sql)
            continue;
        if (c->has_arbitrator && a->sql_port == c->arbitrator_port &&
            strcmp(a->sql_host, c->arbitrator_host) == 0)
            return nines_err(NINES_ECONFIG, "%s: node %u's sql address %s:%u is the arbitrator's "
                             "address", name, a->id, a->sql_host, a->sql_port);
        for (uint32_t j = 0; j < c->nnodes; j++) {
            const struct nines_node_conf *b = &c->nodes[j];
            if (b->port == a->sql_port && strcmp(b->host, a->sql_host) == 0)
                return nines_err(NINES_ECONFIG, "%s: node %u's sql address %s:%u is node %u's "
                                 "node address", name, a->id, a->sql_host, a->sql_port, b->id);
            if (j > i && b->has_sql && b->sql_port == a->sql_port &&
                strcmp(b->sql_host, a->sql_host) == 0)
                return nines_err(NINES_ECONFIG, "%s: sql address %s:%u is used by nodes %u and "
                                 "%u", name, a->sql_host, a->sql_port, a->id, b->id);
        }
    }
    if (c->sql_tls != NINES_TLS_OFF && (!c->tls_cert[0] || !c->tls_key[0]))
        return nines_err(NINES_ECONFIG, "%s: sql_tls %s needs tls_cert and tls_key (the node's "
                         "certificate chain and private key, PEM)", name,
                         c->sql_tls == NINES_TLS_REQUIRE ? "require" : "prefer");
    if (c->reconnect_min_ms > c->reconnect_max_ms)
        return nines_err(NINES_ECONFIG, "%s: reconnect_min_ms %u is above reconnect_max_ms %u",
                         name, c->reconnect_min_ms, c->reconnect_max_ms);
    if (c->send_queue_bytes < c->max_frame_bytes)
        return nines_err(NINES_ECONFIG,
                         "%s: send_queue_bytes %u must be at least max_frame_bytes %u", name,
                         c->send_queue_bytes, c->max_frame_bytes);
    return 0;
}

int nines_conf_parse(const char *text, const char *name, struct nines_conf *out)
{
    conf_defaults(out);
    snprintf(out->path, sizeof out->path, "%s", name);
    int ln = 0;
    const char *p = text;
    while (*p) {
        ln++;
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024];
        if (len >= sizeof line)
            return nines_err(NINES_ECONFIG, "%s:%d: line longer than %zu bytes", name, ln,
                             sizeof line - 1);
        memcpy(line, p, len);
        line[len] = '\0';
        int rc = parse_line(out, line, name, ln);
        if (rc)
            return rc;
        p += len + (eol ? 1 : 0);
    }
    if (!out->sql_tls_set) /* the default: offered when there is a certificate */
        out->sql_tls = out->tls_cert[0] ? NINES_TLS_PREFER : NINES_TLS_OFF;
    int rc = conf_validate(out, name);
    if (rc)
        return rc;
    if (out->key_path[0]) {
        rc = nines_key_load(out->key_path, out->key);
        if (rc) {
            char why[400];
            snprintf(why, sizeof why, "%s", nines_errdetail());
            return nines_err(rc, "%s: cluster_key: %s", name, why);
        }
        out->has_key = true;
    }
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int nines_key_load(const char *path, uint8_t key[NINES_KEY_BYTES])
{
    /* O_NONBLOCK: a FIFO named here is refused below, not waited on */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return nines_err(errno == ELOOP ? NINES_ECONFIG : NINES_EIO,
                         "key file %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return nines_err(NINES_EIO, "key file %s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return nines_err(NINES_ECONFIG, "key file %s is not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return nines_err(NINES_ECONFIG, "key file %s has mode %04o: it must be readable by its "
                         "owner only (chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
    }
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return nines_err(NINES_EIO, "key file %s: read error: %s", path, strerror(e));
    if ((size_t)n >= sizeof buf - 1)
        return nines_err(NINES_ECONFIG, "key file %s is larger than a key file", path);
    buf[n] = '\0';
    size_t hl = strlen(NINES_KEY_HEADER);
    if (strncmp(buf, NINES_KEY_HEADER, hl) != 0 || (buf[hl] != '\n' && buf[hl] != '\r'))
        return nines_err(NINES_ECONFIG, "key file %s: first line is not '%s' (make one with "
                         "ninesctl keygen)", path, NINES_KEY_HEADER);
    const char *p = buf + hl;
    while (*p == '\r' || *p == '\n')
        p++;
    uint8_t k[NINES_KEY_BYTES];
    for (size_t i = 0; i < NINES_KEY_BYTES; i++) {
        int hi = hexval(p[2 * i]), lo = hi < 0 ? -1 : hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return nines_err(NINES_ECONFIG, "key file %s: second line is not %d hex digits",
                             path, 2 * NINES_KEY_BYTES);
        k[i] = (uint8_t)(hi << 4 | lo);
    }
    p += 2 * NINES_KEY_BYTES;
    while (*p == '\r' || *p == '\n' || *p == ' ' || *p == '\t')
        p++;
    if (*p)
        return nines_err(NINES_ECONFIG, "key file %s: text after the key line", path);
    memcpy(key, k, sizeof k);
    memset(k, 0, sizeof k);
    memset(buf, 0, sizeof buf);
    return 0;
}

void nines_key_format(const uint8_t key[NINES_KEY_BYTES], char *out, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    char line[2 * NINES_KEY_BYTES + 1];
    for (size_t i = 0; i < NINES_KEY_BYTES; i++) {
        line[2 * i] = hx[key[i] >> 4];
        line[2 * i + 1] = hx[key[i] & 15];
    }
    line[2 * NINES_KEY_BYTES] = '\0';
    snprintf(out, n, "%s\n%s\n", NINES_KEY_HEADER, line);
}

int nines_conf_load(const char *path, struct nines_conf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nines_err(NINES_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(CONF_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return nines_err(NINES_ENOMEM, "%s: no memory to read it", path);
    }
    size_t n = fread(buf, 1, CONF_MAX_BYTES + 1, f);
    int rd_err = ferror(f);
    fclose(f);
    int rc;
    if (rd_err)
        rc = nines_err(NINES_EIO, "%s: read error", path);
    else if (n > CONF_MAX_BYTES)
        rc = nines_err(NINES_ECONFIG, "%s: file larger than %u bytes", path, CONF_MAX_BYTES);
    else if (memchr(buf, '\0', n))
        rc = nines_err(NINES_ECONFIG, "%s: contains a NUL byte (not a text file)", path);
    else {
        buf[n] = '\0';
        rc = nines_conf_parse(buf, path, out);
    }
    free(buf);
    return rc;
}

const struct nines_sql_user *nines_conf_sql_user(const struct nines_conf *c, const char *name)
{
    for (uint32_t i = 0; i < c->sql_nusers; i++)
        if (strcmp(c->sql_users[i].name, name) == 0)
            return &c->sql_users[i];
    return NULL;
}

const struct nines_node_conf *nines_conf_node(const struct nines_conf *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].id == id)
            return &c->nodes[i];
    return NULL;
}

/* The first line of an owner-only file (a client's password file). */
int nines_read_password_file(const char *path, char *out, size_t n)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return nines_err(NINES_ECONFIG, "password file %s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = nines_err(NINES_ECONFIG, "password file %s is not a regular file", path);
    else if (st.st_mode & 077)
        rc = nines_err(NINES_ECONFIG, "password file %s has mode %04o: it must be readable by "
                       "its owner only (chmod 600 %s)", path, (unsigned)(st.st_mode & 07777),
                       path);
    ssize_t r = rc ? 0 : read(fd, out, n - 1);
    close(fd);
    if (rc)
        return rc;
    if (r < 0)
        return nines_err(NINES_ECONFIG, "password file %s: %s", path, strerror(errno));
    out[r] = 0;
    out[strcspn(out, "\r\n")] = 0;
    if (!out[0])
        return nines_err(NINES_ECONFIG, "password file %s: the first line is empty", path);
    return 0;
}

int nines_conf_login(const struct nines_conf *cf, char *user, size_t un, char *pw, size_t pn)
{
    user[0] = pw[0] = 0;
    const char *u = getenv("NINES_USER"), *p = getenv("NINES_PASSWORD");
    if ((!u || !u[0]) && cf && cf->client_user[0])
        u = cf->client_user;
    if (!u || !u[0])
        return 0;
    if (strlen(u) >= un)
        return nines_err(NINES_EINVAL, "user name of %zu bytes (at most %zu)", strlen(u),
                         un - 1);
    if ((!p || !p[0]) && cf && u == cf->client_user && cf->client_password_file[0]) {
        int rc = nines_read_password_file(cf->client_password_file, pw, pn);
        if (rc)
            return rc;
        p = pw;
    }
    if (!p || !p[0])
        return nines_err(NINES_EINVAL, "user \"%s\" has no password: give one (NINES_PASSWORD, "
                         "or the cluster file's client_password_file)", u);
    if (p != pw) {
        if (strlen(p) >= pn)
            return nines_err(NINES_EINVAL, "password of %zu bytes (at most %zu)", strlen(p),
                             pn - 1);
        snprintf(pw, pn, "%s", p);
    }
    snprintf(user, un, "%s", u);
    return 0;
}
