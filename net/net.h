/* net — the node's messaging endpoint (internal API used by runtime/,
 * supervisor/, client/, tools/ and bench/).
 *
 * An endpoint owns one transport (tcp, rdma or test) and speaks the
 * Envelope protocol on top of it (proto/nines_net.proto):
 *  - every connection starts with HELLO_REQ -> HELLO_CONF | HELLO_REF;
 *    the dialling node sends HELLO_REQ(role NODE, its id, cluster name),
 *    clients send HELLO_REQ(role CLIENT); with a cluster key (cfg.has_key)
 *    HELLO_REQ carries a challenge, HELLO_CONF the acceptor's challenge and
 *    proof, and the connector's HELLO_AUTH its proof, before anything else
 *    of that connection is delivered (net/README.md "The cluster key");
 *  - after the handshake each frame's Envelope is checked: version equal to
 *    PROTO_VERSION_CURRENT, sender equal to the node bound to the connection
 *    (0 for clients), type known to the owner. Any violation closes that
 *    connection with a logged reason; the endpoint keeps serving others.
 *  - on_msg gets the body still packed: the owner unpacks it with the
 *    descriptor its message table names (arena allocator), and decides by
 *    its table whether that sender may send that type in that epoch
 *    (runtime/README.md "Dispatch checks").
 *  - every frame we send carries our epoch (net_set_epoch); node HELLOs
 *    carry the process's incarnation, so a peer that restarted is told
 *    apart from one that reconnected (on_peer_up's `restarted`).
 * Envelopes are packed straight into the transport's send buffer (fields
 * written by hand in protobuf wire format, body packed in place): no copy.
 *
 * Threading: one owner thread calls everything except net_wake().
 */
#ifndef NINES_NET_H
#define NINES_NET_H
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "net_transport.h"
#include "scram.h"

struct net_endpoint;

struct net_msg_in {
    net_addr from;          /* node id, or client connection (>= NET_CONN_BASE) */
    uint32_t sender;        /* Envelope.sender */
    uint64_t epoch;         /* Envelope.epoch */
    uint32_t type;          /* Envelope.type */
    const uint8_t *body;    /* packed body; valid during the call only */
    size_t body_len;
};

struct net_handlers {
    void *ctx;
    /* A message after a completed handshake. Return 0, or negative to close
     * the connection (reason: nines_errdetail()). Must not block. */
    int (*on_msg)(void *ctx, const struct net_msg_in *m);
    /* Is `type` a message type this node handles? (unknown -> close) */
    bool (*known_type)(void *ctx, uint32_t type);
    /* Handshake with node done. restarted: its HELLO carried another
     * incarnation than its previous connection's (a new process, not a
     * reconnect); false on first contact or when either number is 0. */
    void (*on_peer_up)(void *ctx, uint32_t node, bool restarted);   /* may be NULL */
    void (*on_peer_down)(void *ctx, uint32_t node, int err);   /* may be NULL */
    void (*on_client_close)(void *ctx, net_addr conn);         /* may be NULL */
};

/* Create the transport named by cfg->transport for node `self` and open an
 * endpoint on it: "tcp", or "rdma" = node peers over RDMA and clients on a
 * TCP listener at the node's host:port ("rdma+tcp", net/dual.c); without a
 * usable device "rdma" falls back to tcp with one logged message. */
int net_endpoint_open(struct net_endpoint **out, const struct nines_conf *cfg, uint32_t self,
                      const struct net_handlers *h);
/* Same, on a transport the caller built (tests: the test transport). */
int net_endpoint_open_on(struct net_endpoint **out, const struct nines_conf *cfg, uint32_t self,
                         struct net_transport *t, const struct net_handlers *h);
void net_endpoint_close(struct net_endpoint *ep);

/* Queue one message (packed into the transport's buffer now, written at the
 * next flush/poll). 0, NINES_EAGAIN (queue at its bound), NINES_EUNREACHABLE,
 * NINES_ETOOBIG, NINES_EINVAL (unknown destination). */
int net_send(struct net_endpoint *ep, net_addr to, uint32_t type, const ProtobufCMessage *body);
int net_flush(struct net_endpoint *ep);
/* Flush, then wait up to timeout_ms for input and dispatch it. */
int net_poll(struct net_endpoint *ep, int timeout_ms);
void net_wake(struct net_endpoint *ep);

/* The epoch written into every Envelope we send from now on (0 until set;
 * the node's supervisor sets it). The endpoint does not check received
 * epochs: the owner does, per message type. */
void net_set_epoch(struct net_endpoint *ep, uint64_t epoch);
/* With a cluster key (cfg.has_key): also refuse client HELLOs that do not
 * prove it (the arbitrator: every peer of it is a node or an admin tool).
 * Nodes leave it off: plain clients are not authenticated yet. */
void net_require_client_key(struct net_endpoint *ep, bool on);
/* Did addr's connection prove the cluster key (a node link of a keyed
 * endpoint, or a keyed client connection)? */
bool net_conn_keyed(const struct net_endpoint *ep, net_addr addr);

/* ---- users (net/README.md "Users") ----
 * With client_auth scram-sha-256 a plain client logs in as a user: SCRAM-
 * SHA-256 in its HELLO. The endpoint checks it against the users its owner
 * gave it (the node: the dictionary's users, given again on every change);
 * a connection keeps the role it logged in with. */
#define NET_USER_NAME_MAX 63
enum net_role { NET_ROLE_READER = 1, NET_ROLE_WRITER = 2, NET_ROLE_ADMIN = 3 };
struct net_user {
    char name[NET_USER_NAME_MAX + 1];
    uint32_t role;                 /* enum net_role */
    struct scram_verifier v;
};
/* Replace the users (copied; sorted by name, else NINES_EINVAL). */
int net_set_users(struct net_endpoint *ep, const struct net_user *users, size_t n);
/* The role a client connection acts with: NET_ROLE_ADMIN for a client of a
 * client_auth trust node and for a keyed admin link, the user's role for a
 * login; 0 for a node or an unknown connection. */
uint32_t net_conn_role(const struct net_endpoint *ep, net_addr addr);
uint64_t net_epoch(const struct net_endpoint *ep);
/* This process's incarnation, sent in our node HELLOs: the wall clock in µs
 * when the endpoint was opened, and more than any incarnation handed out
 * earlier in this process. Assumes the wall clock does not go back across
 * a restart of the node by more than the restart took. */
uint64_t net_incarnation(const struct net_endpoint *ep);
/* node's incarnation from its last HELLO (kept while it is down; 0 = never
 * connected, or it sent none). */
uint64_t net_peer_incarnation(const struct net_endpoint *ep, uint32_t node);
/* The remote address of a node's or client's connection for log lines
 * ("127.0.0.1:41234"; the test transport says "test node N"); "unknown
 * address" when the transport cannot tell. Returns buf. */
const char *net_peer_name(struct net_endpoint *ep, net_addr addr, char *buf, size_t n);
const char *net_transport_name(const struct net_endpoint *ep);
/* Handshake done and the connection is up. */
bool net_peer_reachable(const struct net_endpoint *ep, uint32_t node);
/* Monotonic ms of the last frame received from node (0 = never). */
uint64_t net_peer_last_heard_ms(const struct net_endpoint *ep, uint32_t node);
/* Close one node or client connection (logged at INFO with the reason; a
 * node is redialled as after any close). Not for use inside on_msg for the
 * connection being delivered: return negative from on_msg instead. */
void net_close_conn(struct net_endpoint *ep, net_addr addr, int err, const char *reason);

struct net_stats {
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out, writes, conns_closed_bad;
    uint64_t clients;          /* plain client connections now (max_client_connections) */
    uint64_t clients_refused;  /* client HELLOs refused with NINES_EFULL for that limit */
    uint64_t slow_closed;      /* client connections closed: their send queue stayed full */
    uint64_t logins_refused;   /* user logins refused: wrong password or no such user */
    uint64_t handshakes_timed_out; /* closed: no finished handshake within handshake_ms */
    uint64_t handshakes_refused;   /* closed at accept: max_client_connections wait already */
};
void net_get_stats(const struct net_endpoint *ep, struct net_stats *out);

/* ---- envelope codec (envelope.c), shared with the blocking client ---- */
/* Packed size of an Envelope around a body of body_len bytes. */
size_t net_env_size(uint32_t sender, uint64_t epoch, uint32_t type, size_t body_len);
/* Write Envelope fields then pack `body` in place; returns bytes written
 * (== net_env_size(...)). `out` must hold that many bytes. */
size_t net_env_pack(uint8_t *out, uint32_t sender, uint64_t epoch, uint32_t type,
                    const ProtobufCMessage *body, size_t body_len);
/* Parse an Envelope without allocating; body points into buf.
 * NINES_EPROTO on malformed input (detail set). */
int net_env_parse(const uint8_t *buf, size_t len, struct net_msg_in *out);

/* ---- blocking client connection (client.c), for tools and clients ---- */
struct net_client;
/* Connect to host:port, send HELLO_REQ(role CLIENT), wait HELLO_CONF. */
int net_client_connect(struct net_client **out, const char *host, uint16_t port,
                       const char *cluster, int timeout_ms);
/* The same, proving the cluster key when key is not NULL (an admin tool, a
 * node at the arbitrator; net/README.md "Handshake"): the node's proof is
 * checked before ours is sent; a mismatch is NINES_EAUTH. */
int net_client_connect_key(struct net_client **out, const char *host, uint16_t port,
                           const char *cluster, const uint8_t *key, int timeout_ms);
/* The same, logging in as user with password (client_auth scram-sha-256;
 * net/README.md "Users"); user NULL or "": no login. NINES_EAUTH for a
 * refused login ("password authentication failed for user ..."). */
int net_client_connect_as(struct net_client **out, const char *host, uint16_t port,
                          const char *cluster, const uint8_t *key, const char *user,
                          const char *password, int timeout_ms);
/* Connect to node nc of cf as a tool does: with the cluster key when cf
 * has one (an admin link), else logged in as NINES_USER / cf's client_user
 * (password from NINES_PASSWORD / cf's client_password_file), else plain. */
int net_client_connect_conf(struct net_client **out, const struct nines_conf *cf,
                            const struct nines_node_conf *nc, int timeout_ms);
/* The role the node gave this connection (enum net_role). */
uint32_t net_client_role(const struct net_client *c);
int net_client_send(struct net_client *c, uint32_t type, const ProtobufCMessage *body);
/* Wait for the next message; m->body valid until the next call. */
int net_client_recv(struct net_client *c, struct net_msg_in *m, int timeout_ms);
void net_client_close(struct net_client *c);
#endif
