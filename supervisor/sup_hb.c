/* The I-am-alive thread: UDP datagrams to every other configured node, on
 * a thread of its own (sup_hb.h; supervisor/README.md "I-am-alive"). */
#include "sup_hb.h"

#include "conf.h"
#include "crc32c.h"
#include "nassert.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nlog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

_Static_assert(SUP_HB_SIZE == 44, "heartbeat datagram layout (sup_hb.h)");

struct sup_hb {
    struct rt *rt;
    const struct nines_conf *conf;
    uint32_t self, cluster_id;
    uint64_t incarnation, interval_us, stall_us, seq;
    int fd;
    pthread_t th;
    bool started;
    atomic_bool stop;
    _Atomic uint64_t adv_epoch;
    _Atomic uint64_t loop_us;
    atomic_bool adv_serving;
    bool withholding;
    struct sockaddr_in addr[NINES_MAX_NODES + 1];
    bool have_addr[NINES_MAX_NODES + 1];
    struct sup_hb_peer peer[NINES_MAX_NODES + 1];
    struct sup_hb_stats st;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int resolve(const struct nines_node_conf *n, struct sockaddr_in *out)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons(n->port);
    if (inet_pton(AF_INET, n->host, &out->sin_addr) == 1)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *res = NULL;
    if (getaddrinfo(n->host, NULL, &hints, &res) != 0 || !res)
        return nines_err(NINES_ECONFIG, "node %u: cannot resolve host '%s' for heartbeats",
                         n->id, n->host);
    out->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

static void send_all(struct sup_hb *h)
{
    uint8_t b[SUP_HB_SIZE];
    put32(b, SUP_HB_MAGIC);
    put16(b + 4, SUP_HB_VERSION);
    put16(b + 6, atomic_load(&h->adv_serving) ? 1 : 0);
    put32(b + 8, h->cluster_id);
    put32(b + 12, h->self);
    put64(b + 16, h->incarnation);
    put64(b + 24, atomic_load(&h->adv_epoch));
    put64(b + 32, ++h->seq);
    put32(b + 40, crc32c(0, b, 40));
    for (uint32_t id = 1; id <= NINES_MAX_NODES; id++) {
        if (!h->have_addr[id] || id == h->self)
            continue;
        if (sendto(h->fd, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&h->addr[id],
                   sizeof h->addr[id]) < 0)
            atomic_fetch_add(&h->st.send_errors, 1);
        else
            atomic_fetch_add(&h->st.sent, 1);
    }
}

static void receive(struct sup_hb *h)
{
    uint8_t b[SUP_HB_SIZE + 1];
    for (;;) {
        ssize_t n = recv(h->fd, b, sizeof b, MSG_DONTWAIT);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error of an earlier send: nothing to read */
        if (n != SUP_HB_SIZE || get32(b) != SUP_HB_MAGIC || get16(b + 4) != SUP_HB_VERSION ||
            get32(b + 40) != crc32c(0, b, 40) || get32(b + 8) != h->cluster_id) {
            atomic_fetch_add(&h->st.bad, 1);
            continue;
        }
        uint32_t from = get32(b + 12);
        if (from < 1 || from > NINES_MAX_NODES || from == h->self || !h->have_addr[from]) {
            atomic_fetch_add(&h->st.bad, 1);
            continue;
        }
        struct sup_hb_peer *p = &h->peer[from];
        atomic_store(&p->inc, get64(b + 16));
        atomic_store(&p->epoch, get64(b + 24));
        atomic_store(&p->last_us, nclock_us());
        atomic_fetch_add(&h->st.received, 1);
    }
}

static void *hb_main(void *arg)
{
    struct sup_hb *h = arg;
    nines_ctx_node = h->self;
    /* a real-time priority where the system allows it: a busy machine must
     * not delay heartbeats (no error when refused: an ordinary thread) */
    struct sched_param sp = {.sched_priority = 10};
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) != 0)
        NLOG_DEBUG("sup", "heartbeat thread stays at normal priority");
    uint64_t next = nclock_us();
    while (!atomic_load(&h->stop)) {
        uint64_t now = nclock_us();
        if (now >= next) {
            uint64_t busy = rt_busy_since_us(h->rt);
            bool stuck = busy && now > busy && now - busy > h->stall_us;
            if (stuck != h->withholding) {
                if (stuck)
                    NLOG_ERROR("sup", "node %u: the executor has been in one turn for %llu ms: "
                               "heartbeats withheld, the node leaves the node set",
                               h->self, (unsigned long long)(now - busy) / 1000);
                else
                    NLOG_WARN("sup", "node %u: the executor turns again: heartbeats resume",
                              h->self);
                h->withholding = stuck;
            }
            if (stuck)
                atomic_fetch_add(&h->st.withheld, 1);
            else
                send_all(h);
            next += h->interval_us;
            if (next <= now)
                next = now + h->interval_us;
            /* no post to the executor: a post takes the runtime's inbox lock,
             * which a preempted executor may hold, and this thread must never
             * wait for the executor (the supervisor reads what it recorded on
             * its own timer) */
        }
        atomic_store(&h->loop_us, nclock_us());
        now = nclock_us();
        int wait_ms = next > now ? (int)((next - now + 999) / 1000) : 0;
        struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
        int r = poll(&pfd, 1, wait_ms);
        if (r > 0)
            receive(h);
    }
    return NULL;
}

int sup_hb_start(struct sup_hb **out, struct rt *rt, uint64_t incarnation, uint64_t interval_us,
                 uint64_t stall_us)
{
    const struct nines_conf *c = rt_conf(rt);
    if (!c)
        return nines_err(NINES_EINVAL, "heartbeats need a cluster file");
    struct sup_hb *h = calloc(1, sizeof *h);
    if (!h)
        return nines_err(NINES_ENOMEM, "heartbeat state");
    h->rt = rt;
    h->conf = c;
    h->self = rt_self(rt);
    h->incarnation = incarnation;
    h->interval_us = interval_us ? interval_us : 10000;
    h->stall_us = stall_us;
    h->cluster_id = crc32c(0, c->cluster, strlen(c->cluster));
    h->fd = -1;
    int rc = 0;
    for (uint32_t i = 0; i < c->nnodes && !rc; i++) {
        const struct nines_node_conf *n = &c->nodes[i];
        rc = resolve(n, &h->addr[n->id]);
        h->have_addr[n->id] = rc == 0;
    }
    if (rc)
        goto fail;
    h->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0) {
        rc = nines_err(NINES_ESYS, "heartbeat socket: %s", strerror(errno));
        goto fail;
    }
    struct sockaddr_in me = h->addr[h->self];
    if (bind(h->fd, (struct sockaddr *)&me, sizeof me) < 0) {
        rc = nines_err(NINES_ESYS, "node %u: cannot bind UDP %s:%u for heartbeats: %s", h->self,
                       inet_ntoa(me.sin_addr), ntohs(me.sin_port), strerror(errno));
        goto fail;
    }
    if (pthread_create(&h->th, NULL, hb_main, h) != 0) {
        rc = nines_err(NINES_ESYS, "heartbeat thread: %s", strerror(errno));
        goto fail;
    }
    h->started = true;
    *out = h;
    return 0;
fail:
    if (h->fd >= 0)
        close(h->fd);
    free(h);
    return rc;
}

void sup_hb_stop(struct sup_hb *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    if (h->started)
        pthread_join(h->th, NULL);
    close(h->fd);
    free(h);
}

void sup_hb_advertise(struct sup_hb *h, uint64_t epoch, bool serving)
{
    atomic_store(&h->adv_epoch, epoch);
    atomic_store(&h->adv_serving, serving);
}

const struct sup_hb_peer *sup_hb_peer(const struct sup_hb *h, uint32_t node)
{
    return node >= 1 && node <= NINES_MAX_NODES ? &h->peer[node] : NULL;
}

const struct sup_hb_stats *sup_hb_stats(const struct sup_hb *h) { return &h->st; }

uint64_t sup_hb_loop_us(const struct sup_hb *h)
{
    return atomic_load(&((struct sup_hb *)h)->loop_us);
}
