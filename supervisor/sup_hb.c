/* The I-am-alive thread: UDP datagrams to every other configured node, on
 * a thread of its own (sup_hb.h; supervisor/README.md "I-am-alive"). */
#include "sup_hb.h"

#include "conf.h"
#include "crc32c.h"
#include "nassert.h"
#include "nclock.h"
#include "nines/errors.h"
#include "nle.h"
#include "nlog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

_Static_assert(SUP_HB_SIZE == 52, "heartbeat datagram layout (sup_hb.h)");

struct sup_hb {
    struct rt *rt;
    const struct nines_conf *conf;
    uint32_t self, cluster_id;
    uint64_t incarnation, interval_us, stall_us;
    _Atomic uint64_t seq;
    int fd;
    pthread_t th;
    bool started;
    atomic_bool stop;
    _Atomic uint64_t adv_epoch, adv_ballot; /* adv_ballot: round << 32 | coord */
    _Atomic uint64_t loop_us;
    _Atomic uint64_t resumed_us; /* the thread last ran again after not running for
                                  * more than two intervals */
    atomic_bool adv_serving;
    bool withholding;
    /* the lease rule: written by the executor under rule_mu, read by the
     * thread with a try-lock (it never waits for the executor: busy, it
     * keeps the lease as it is) */
    pthread_mutex_t rule_mu;
    struct ns_lease_rule rule;
    _Atomic uint64_t window_us;
    _Atomic uint64_t lease_until;  /* the lease granted: never shortened (a lease once
                                    * granted holds until it ends, Fencing) */
    _Atomic uint64_t lease_fresh;  /* the lease the latest confirmations give */
    struct sockaddr_in addr[NINES_MAX_NODES + 1];
    bool have_addr[NINES_MAX_NODES + 1];
    struct sup_hb_peer peer[NINES_MAX_NODES + 1];
    struct sup_hb_stats st;
};


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

static void build(struct sup_hb *h, uint8_t *b)
{
    nle_put32(b, SUP_HB_MAGIC);
    nle_put16(b + 4, SUP_HB_VERSION);
    nle_put16(b + 6, atomic_load(&h->adv_serving) ? 1 : 0);
    nle_put32(b + 8, h->cluster_id);
    nle_put32(b + 12, h->self);
    nle_put64(b + 16, h->incarnation);
    /* the ballot first: the executor writes the epoch last (advertise) */
    uint64_t ballot = atomic_load(&h->adv_ballot), epoch = atomic_load(&h->adv_epoch);
    if (ballot != atomic_load(&h->adv_ballot))
        epoch = 0; /* changed meanwhile: advertise nothing this once */
    nle_put64(b + 24, epoch);
    nle_put32(b + 32, (uint32_t)(ballot >> 32));
    nle_put32(b + 36, (uint32_t)ballot);
    nle_put64(b + 40, atomic_fetch_add(&h->seq, 1) + 1);
    nle_put32(b + 48, crc32c(0, b, 48));
}

/* One datagram to `id`. With IP_RECVERR an ICMP error for an earlier
 * datagram (to a dead node) is reported by the next send, whichever peer
 * it goes to, and that datagram is not sent: send it again once. */
static void send_one(struct sup_hb *h, uint32_t id, const uint8_t *b)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (sendto(h->fd, b, SUP_HB_SIZE, MSG_DONTWAIT, (struct sockaddr *)&h->addr[id],
                   sizeof h->addr[id]) >= 0) {
            atomic_fetch_add(&h->st.sent, 1);
            return;
        }
        if (errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH &&
            errno != EHOSTDOWN)
            break;
    }
    atomic_fetch_add(&h->st.send_errors, 1);
}

static void send_all(struct sup_hb *h)
{
    uint8_t b[SUP_HB_SIZE];
    build(h, b);
    for (uint32_t id = 1; id <= NINES_MAX_NODES; id++)
        if (h->have_addr[id] && id != h->self)
            send_one(h, id, b);
}

void sup_hb_probe(struct sup_hb *h, uint32_t node)
{
    if (!h || node < 1 || node > NINES_MAX_NODES || node == h->self || !h->have_addr[node])
        return;
    uint8_t b[SUP_HB_SIZE];
    build(h, b);
    send_one(h, node, b);
}

/* ICMP errors for datagrams this socket sent (IP_RECVERR): a "port
 * unreachable" from a node's address means no process holds its port. */
static void receive_errors(struct sup_hb *h)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in to;
        uint8_t data[SUP_HB_SIZE];
        union {
            char buf[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
        struct msghdr msg = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov,
                             .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof ctl.buf};
        if (recvmsg(h->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_RECVERR)
                continue;
            struct sock_extended_err ee;
            memcpy(&ee, CMSG_DATA(c), sizeof ee);
            if (ee.ee_origin != SO_EE_ORIGIN_ICMP || ee.ee_type != 3 || ee.ee_code != 3 ||
                msg.msg_namelen < sizeof to)
                continue;
            for (uint32_t id = 1; id <= NINES_MAX_NODES; id++)
                if (h->have_addr[id] && id != h->self &&
                    h->addr[id].sin_addr.s_addr == to.sin_addr.s_addr &&
                    h->addr[id].sin_port == to.sin_port) {
                    atomic_store(&h->peer[id].unreach_us, nclock_us());
                    atomic_fetch_add(&h->st.unreachable, 1);
                }
        }
    }
}

static void receive(struct sup_hb *h)
{
    uint8_t b[SUP_HB_SIZE + 1];
    for (;;) {
        struct sockaddr_in src;
        socklen_t slen = sizeof src;
        ssize_t n = recvfrom(h->fd, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&src, &slen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            continue; /* the pending error of an ICMP message (on the error queue) */
        }
        if (n != SUP_HB_SIZE || nle_get32(b) != SUP_HB_MAGIC || nle_get16(b + 4) != SUP_HB_VERSION ||
            nle_get32(b + 48) != crc32c(0, b, 48) || nle_get32(b + 8) != h->cluster_id) {
            atomic_fetch_add(&h->st.bad, 1);
            continue;
        }
        uint32_t from = nle_get32(b + 12);
        /* from the address the cluster file gives that node (it sends from
         * the port it binds): a process of another cluster, or a stale one
         * of an earlier run, is not the node it names */
        if (from < 1 || from > NINES_MAX_NODES || from == h->self || !h->have_addr[from] ||
            slen < sizeof src || src.sin_family != AF_INET ||
            src.sin_addr.s_addr != h->addr[from].sin_addr.s_addr ||
            src.sin_port != h->addr[from].sin_port) {
            atomic_fetch_add(&h->st.bad, 1);
            continue;
        }
        struct sup_hb_peer *p = &h->peer[from];
        atomic_fetch_add(&p->seq, 1); /* odd: writing */
        atomic_store(&p->inc, nle_get64(b + 16));
        atomic_store(&p->epoch, nle_get64(b + 24));
        atomic_store(&p->round, nle_get32(b + 32));
        atomic_store(&p->coord, nle_get32(b + 36));
        atomic_store(&p->last_us, nclock_us());
        atomic_fetch_add(&p->seq, 1);
        atomic_fetch_add(&h->st.received, 1);
    }
}

/* The thread: the lease from what it heard, under the executor's rule. */
static void update_lease(struct sup_hb *h, uint64_t now)
{
    struct ns_lease_rule r;
    if (pthread_mutex_trylock(&h->rule_mu) != 0)
        return; /* the executor is writing a new rule: keep the lease as it is */
    memcpy(&r, &h->rule, sizeof r);
    pthread_mutex_unlock(&h->rule_mu);
    uint64_t window = atomic_load(&h->window_us);
    uint64_t t[NINES_MAX_NODES + 1];
    unsigned k = 0;
    for (uint32_t id = 1; id <= NINES_MAX_NODES; id++) {
        if (!(r.members & NS_BIT(id)))
            continue;
        if (id == h->self) {
            if (r.mine.epoch && r.inc[id] == h->incarnation)
                t[k++] = now;
            continue;
        }
        const struct sup_hb_peer *p = &h->peer[id];
        uint64_t last = atomic_load(&p->last_us);
        struct ns_ballot adv = {atomic_load(&p->epoch), atomic_load(&p->round),
                                atomic_load(&p->coord)};
        if (last && ns_rule_confirms(&r, id, atomic_load(&p->inc), &adv))
            t[k++] = last > now ? now : last;
    }
    unsigned q = ns_popcount(r.members) / 2 + 1;
    uint64_t until = 0;
    if (r.members && k >= q) {
        for (unsigned i = 0; i < k; i++) /* descending */
            for (unsigned j = i + 1; j < k; j++)
                if (t[j] > t[i]) {
                    uint64_t x = t[i];
                    t[i] = t[j];
                    t[j] = x;
                }
        until = t[q - 1] + window;
    }
    atomic_store(&h->lease_fresh, until);
    if (until > atomic_load(&h->lease_until))
        atomic_store(&h->lease_until, until);
}

void sup_hb_set_rule(struct sup_hb *h, const struct ns_lease_rule *r, uint64_t window_us)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->rule_mu);
    memcpy(&h->rule, r, sizeof *r);
    atomic_store(&h->window_us, window_us);
    pthread_mutex_unlock(&h->rule_mu);
}

uint64_t sup_hb_lease(const struct sup_hb *h)
{
    return atomic_load(&((struct sup_hb *)h)->lease_fresh);
}

const _Atomic uint64_t *sup_hb_lease_src(const struct sup_hb *h) { return &h->lease_until; }

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
        now = nclock_us();
        uint64_t prev = atomic_load(&h->loop_us);
        if (prev && now > prev && now - prev > 2 * h->interval_us)
            atomic_store(&h->resumed_us, now); /* it did not run: it heard nothing */
        atomic_store(&h->loop_us, now);
        int wait_ms = next > now ? (int)((next - now + 999) / 1000) : 0;
        struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
        int r = poll(&pfd, 1, wait_ms);
        if (r > 0 && (pfd.revents & POLLERR))
            receive_errors(h);
        if (r > 0 && (pfd.revents & POLLIN))
            receive(h);
        update_lease(h, nclock_us());
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
    pthread_mutex_init(&h->rule_mu, NULL);
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
    int on = 1;
    if (setsockopt(h->fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on) < 0)
        NLOG_WARN("sup", "node %u: no ICMP errors on the heartbeat socket (%s): a killed "
                  "node is confirmed by silence only", h->self, strerror(errno));
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
    pthread_mutex_destroy(&h->rule_mu);
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
    pthread_mutex_destroy(&h->rule_mu);
    free(h);
}

void sup_hb_advertise(struct sup_hb *h, uint64_t epoch, uint32_t round, uint32_t coord,
                       bool serving)
{
    uint64_t ballot = (uint64_t)round << 32 | coord;
    if (atomic_load(&h->adv_ballot) != ballot || atomic_load(&h->adv_epoch) != epoch) {
        /* never a new epoch with an old ballot: clear, ballot, then epoch */
        atomic_store(&h->adv_epoch, 0);
        atomic_store(&h->adv_ballot, ballot);
        atomic_store(&h->adv_epoch, epoch);
    }
    atomic_store(&h->adv_serving, serving);
}

const struct sup_hb_peer *sup_hb_peer(const struct sup_hb *h, uint32_t node)
{
    return node >= 1 && node <= NINES_MAX_NODES ? &h->peer[node] : NULL;
}

bool sup_hb_read(const struct sup_hb *h, uint32_t node, struct sup_hb_heard *out)
{
    memset(out, 0, sizeof *out);
    if (node < 1 || node > NINES_MAX_NODES)
        return false;
    struct sup_hb_peer *p = (struct sup_hb_peer *)&h->peer[node];
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t s0 = atomic_load(&p->seq);
        if (s0 & 1)
            continue;
        out->inc = atomic_load(&p->inc);
        out->epoch = atomic_load(&p->epoch);
        out->round = atomic_load(&p->round);
        out->coord = atomic_load(&p->coord);
        out->last_us = atomic_load(&p->last_us);
        if (atomic_load(&p->seq) == s0)
            return true;
    }
    /* the thread was stopped in the middle of a write (its CPU was taken
     * away): nothing is known this time — not "never heard" */
    memset(out, 0, sizeof *out);
    return false;
}

const struct sup_hb_stats *sup_hb_stats(const struct sup_hb *h) { return &h->st; }

uint64_t sup_hb_loop_us(const struct sup_hb *h)
{
    return atomic_load(&((struct sup_hb *)h)->loop_us);
}

uint64_t sup_hb_resumed_us(const struct sup_hb *h)
{
    return atomic_load(&((struct sup_hb *)h)->resumed_us);
}
