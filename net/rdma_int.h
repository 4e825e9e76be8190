/* RDMA transport internals shared by rdma.c, rdma_data.c, rdma_conn.c
 * and rdma_qp.c (queue-pair setup, connection-manager messages). net/README.md (RDMA transport) has
 * the formats and the message sequence. */
#ifndef NINES_NET_RDMA_INT_H
#define NINES_NET_RDMA_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "conf.h"
#include "rdma_verbs.h"

/* ---- connection-manager (side channel) message, version 1 ---- */
#define RDMA_CM_MAGIC 0x4d43524eu   /* "NRCM" read as little-endian u32 */
#define RDMA_CM_VERSION 1u
#define RDMA_CM_MSG_BYTES 56u
#define RDMA_CM_PORT_OFFSET 1000u   /* side channel listens on node port + this */

enum net_rdma_cm_type { RDMA_CM_REQ = 1, RDMA_CM_REP = 2, RDMA_CM_RTU = 3, RDMA_CM_REJ = 4 };

struct net_rdma_cm_msg {
    uint16_t type;          /* enum net_rdma_cm_type */
    uint32_t node;          /* sender's node id */
    uint32_t qpn;           /* sender's QP number */
    uint32_t psn;           /* sender's initial send PSN (24 bits) */
    uint16_t lid;
    uint8_t mtu;            /* enum ibv_mtu of the sender's port */
    uint8_t flags;          /* RDMA_CM_F_* */
    uint8_t gid[16];
    uint32_t recv_slots;    /* receive slots the sender posted = initial credits */
    uint32_t slot_bytes;
    uint32_t cluster_crc;   /* crc32c of the cluster name */
    int32_t err;            /* REJ: negative nines code; else 0 */
};
#define RDMA_CM_F_GRH 1u    /* sender's port needs a global route header (RoCE) */

void net_rdma_cm_pack(uint8_t out[RDMA_CM_MSG_BYTES], const struct net_rdma_cm_msg *m);
/* NINES_EPROTO / NINES_EVERSION with detail on a malformed message. */
int net_rdma_cm_parse(const uint8_t in[RDMA_CM_MSG_BYTES], struct net_rdma_cm_msg *m);

/* ---- slot message header, version 1 (8 bytes at the start of every send) ---- */
#define RDMA_SLOT_HDR 8u
#define RDMA_SLOT_VERSION 1u
enum net_rdma_slot_kind { RDMA_SLOT_FRAMES = 1, RDMA_SLOT_CONT = 2, RDMA_SLOT_CREDIT = 3 };
static inline void net_rdma_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t net_rdma_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void net_rdma_slot_hdr(uint8_t *p, uint32_t credits, enum net_rdma_slot_kind kind)
{
    net_rdma_put32(p, credits);
    p[4] = (uint8_t)kind;
    p[5] = RDMA_SLOT_VERSION;
    p[6] = p[7] = 0;
}

/* ---- the local HCA port ---- */
struct net_rdma_local {
    uint8_t port;
    uint16_t lid;
    int gid_index;
    bool grh;               /* Ethernet link layer: route by GID */
    union ibv_gid gid;
    enum ibv_mtu mtu;
};

/* ---- one connection's verbs objects ---- */
struct net_rdma_qp {
    struct ibv_cq *cq;      /* sends and receives of this QP; cq_context = owner */
    struct ibv_qp *qp;
    struct ibv_mr *mr;      /* buf: receive slots, then the credit-message ring */
    uint8_t *buf;
    size_t buf_len;
    uint32_t psn;
    enum ibv_qp_state state;   /* as far as we moved it */
};

/* Create CQ, QP (RESET) and register a buffer of buf_len bytes. On failure
 * everything created is released and a negative code returned. */
int net_rdma_qp_open(const struct net_verbs_ops *v, struct ibv_context *ctx, struct ibv_pd *pd,
                 struct ibv_comp_channel *ch, void *cq_ctx, uint32_t sq_depth, uint32_t rq_depth,
                 size_t buf_len, uint32_t psn, struct net_rdma_qp *q);
/* RESET -> INIT -> (post receives) -> RTR -> RTS: each checks the current state. */
int net_rdma_qp_to_init(const struct net_verbs_ops *v, struct net_rdma_qp *q, const struct net_rdma_local *l);
int net_rdma_qp_to_rtr(const struct net_verbs_ops *v, struct net_rdma_qp *q, const struct net_rdma_local *l,
                   const struct net_rdma_cm_msg *remote);
int net_rdma_qp_to_rts(const struct net_verbs_ops *v, struct net_rdma_qp *q);
/* Destroy the QP only (first step of teardown; the CQ waits for its events
 * to be acknowledged, see net_rdma_qp_free). */
void net_rdma_qp_destroy_qp(const struct net_verbs_ops *v, struct net_rdma_qp *q);
/* Destroy CQ, deregister and free the buffer. */
void net_rdma_qp_free(const struct net_verbs_ops *v, struct net_rdma_qp *q);
/* Describe the local port (query_port + query_gid). NINES_ENODEV if unusable. */
int net_rdma_local_query(const struct net_verbs_ops *v, struct ibv_context *ctx, const char *devname,
                     uint8_t port, int gid_index, struct net_rdma_local *out);

/* ---- transport state ---- */
#define RD_RECV_TAG (UINT64_C(1) << 63)
#define RD_HANDSHAKE_MS 3000u
#define RD_WC_BATCH 16
#define RD_POST_BATCH 32
#define RD_DEFAULT_SLOT_BYTES (64u << 10)
#define RD_DEFAULT_RECV_SLOTS 32u
#define RD_DEFAULT_POOL_CAP 512u
#define RD_DEFAULT_SIGNAL_EVERY 16u
#define RD_MAX_RECV_SLOTS 4096u

/* epoll tags; connections are tagged with their address (never < 8). */
enum { RD_TAG_WAKE = 1, RD_TAG_CHANNEL = 2, RD_TAG_LISTEN = 3, RD_TAG_WATCH = 4 };

/* A FIFO of pool slots (linked through t->slot_next). */
struct net_rdma_slotq {
    int32_t head, tail;
    uint32_t n;
};

enum net_rdma_state {
    RD_DIALING,      /* outbound: TCP connect in progress */
    RD_REQ_SENT,     /* outbound: QP in INIT, REQ sent, waiting for REP */
    RD_ACCEPTING,    /* inbound: waiting for REQ */
    RD_REP_SENT,     /* inbound: QP in RTS, REP sent, waiting for RTU or first receive */
    RD_ESTABLISHED,  /* announced to the owner with on_connect */
    RD_CLOSED        /* resources released at the next reap */
};

struct net_rdma_tr;

struct net_rdma_conn {
    struct net_rdma_tr *t;
    struct net_rdma_conn *next;
    enum net_rdma_state st;
    bool outbound;
    bool rtu_seen;
    net_addr addr;              /* node id (dialled or bound) or conn id */
    uint32_t node;              /* peer node id once known to the owner, else 0 */
    uint32_t claimed_node;      /* node id the peer gave in REQ/REP */
    int fd;                     /* side channel */
    uint64_t deadline_ms;       /* handshake deadline */
    uint8_t cm_in[RDMA_CM_MSG_BYTES];
    uint32_t cm_have;
    uint8_t cm_out[2 * RDMA_CM_MSG_BYTES];
    uint32_t cm_out_len;
    bool qp_open;
    struct net_rdma_qp q;
    struct net_rdma_slotq own;        /* queue of an unbound accepted connection */
    struct net_rdma_slotq *sendq;     /* &own, or the peer's queue */
    uint32_t peer_slots;        /* peer's receive slots */
    uint32_t credits;           /* sends we may still post */
    uint32_t pending_return;    /* our reposted receive slots not yet reported */
    uint32_t sq_depth;
    int32_t *sq_slot;           /* [seq % sq_depth]: pool slot of that send, -1 = credit message */
    uint64_t sq_head, sq_next;  /* oldest unretired send, next sequence */
    uint32_t unsignaled;        /* sends since the last signaled one */
    uint32_t unsig_slots;       /* of those, data sends (holding pool slots) */
    uint32_t remote_qpn;
    uint32_t out_slots;         /* pool slots posted and not yet retired */
    uint8_t *asm_buf;           /* reassembly of a frame larger than a slot */
    uint32_t asm_len, asm_have;
};

struct net_rdma_peer {
    bool configured;
    bool dial;                  /* we dial it (its id is higher, as tcp.c) */
    struct sockaddr_in sa;      /* its side-channel address */
    struct net_rdma_slotq q;          /* frames for it, kept while it is not connected */
    struct net_rdma_conn *conn;       /* established connection, or NULL */
    struct net_rdma_conn *pending;    /* our dial in progress */
    uint64_t next_dial_ms;
    uint32_t backoff_ms;
    bool dial_failed_logged;
};

struct net_rdma_res {
    bool active;
    bool big;
    net_addr to;
    int32_t slot;
    size_t len;
};

struct net_rdma_tr {
    struct net_transport base;
    const struct net_verbs_ops *v;
    struct nines_conf cfg;
    uint32_t self;
    uint32_t cluster_crc;
    struct net_rdma_params p;
    uint32_t cap;               /* payload bytes per slot */
    char devname[64];
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_comp_channel *ch;
    struct net_rdma_local local;
    /* send slot pool */
    uint8_t *pool;
    struct ibv_mr *pool_mr;
    int32_t *slot_next;
    uint32_t *slot_used;
    uint8_t *slot_kind;
    int32_t free_head;
    uint32_t free_n;
    struct net_rdma_peer peers[NINES_MAX_NODES + 1];
    struct net_rdma_conn *conns;
    uint64_t next_conn_id;
    int epfd, wakefd, lfd;
    int watchfd;                /* net_rdma_watch_fd, or -1 */
    bool watch_ready;           /* it was readable during this poll */
    bool started;
    int depth;                  /* poll nesting (upcalls) */
    struct net_rdma_res res;
    uint8_t *stage;
    size_t stage_cap;
    uint64_t nev;               /* upcalls made (poll's return value) */
    struct net_rdma_stats st;
};

static inline struct net_rdma_tr *net_rdma_tr_of(struct net_transport *bt)
{
    return (struct net_rdma_tr *)bt;
}

/* ---- shared between rdma.c (ops, poll, creation), rdma_data.c (slots,
 * send and receive paths) and rdma_conn.c (side channel, lifecycle) ---- */
/* rdma_data.c */
void net_rdma_pool_put(struct net_rdma_tr *t, int32_t s);
void net_rdma_q_append(struct net_rdma_tr *t, struct net_rdma_slotq *front, struct net_rdma_slotq *back);
void net_rdma_q_free_all(struct net_rdma_tr *t, struct net_rdma_slotq *q);
uint32_t net_rdma_big_slots(const struct net_rdma_tr *t, size_t len);
const char *net_rdma_addr_str(net_addr a, char *buf, size_t n);
struct net_rdma_conn *net_rdma_find_conn_id(struct net_rdma_tr *t, net_addr a);
void *net_rdma_reserve(struct net_transport *bt, net_addr to, size_t len, int *err);
void net_rdma_commit(struct net_transport *bt, net_addr to, size_t len);
int net_rdma_flush(struct net_transport *bt);
void net_rdma_conn_post(struct net_rdma_conn *c);
int net_rdma_post_recv(struct net_rdma_conn *c, uint32_t slot);
void net_rdma_drain(struct net_rdma_conn *c);
void net_rdma_drain_all(struct net_rdma_tr *t);
void net_rdma_channel_drain(struct net_rdma_tr *t);
/* rdma_conn.c */
void net_rdma_close(struct net_rdma_conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void net_rdma_establish(struct net_rdma_conn *c);
void net_rdma_sock_event(struct net_rdma_conn *c, uint32_t ev);
void net_rdma_accept(struct net_rdma_tr *t);
void net_rdma_timers(struct net_rdma_tr *t, uint64_t now);
int net_rdma_next_timer(struct net_rdma_tr *t, uint64_t now);
void net_rdma_reap(struct net_rdma_tr *t);
#endif
