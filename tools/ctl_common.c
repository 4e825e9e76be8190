/* What the ninesctl commands share: asking nodes for STATUS and the node
 * set they report, connecting to a node, one request/answer, fetching the
 * dictionary, JSON strings. */
#include "ctl.h"

#include "nclock.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_dial(const struct nines_conf *c, const struct nines_node_conf *nc,
             struct net_client **out, int timeout_ms)
{
    return net_client_connect_conf(out, c, nc, timeout_ms);
}

/* Ask one node for its status. */
static void ctl_query(const struct nines_conf *c, struct ctl_node_view *v)
{
    struct net_client *cl = NULL;
    v->err = ctl_dial(c, v->nc, &cl, CTL_TIMEOUT_MS);
    if (v->err) {
        snprintf(v->why, sizeof v->why, "%s", nines_errdetail());
        return;
    }
    Nines__StatusReq req = NINES__STATUS_REQ__INIT;
    v->err = net_client_send(cl, NINES__MSG_TYPE__STATUS_REQ, &req.base);
    struct net_msg_in in;
    while (v->err == 0) {
        v->err = net_client_recv(cl, &in, CTL_TIMEOUT_MS);
        if (v->err)
            break;
        if (in.type != NINES__MSG_TYPE__STATUS_CONF)
            continue; /* e.g. a late reply to something else */
        v->st = nines__status_conf__unpack(NULL, in.body_len, in.body);
        if (!v->st)
            v->err = nines_err(NINES_EPROTO, "node %u sent an undecodable STATUS_CONF", v->nc->id);
        break;
    }
    if (v->err)
        snprintf(v->why, sizeof v->why, "%s", nines_errdetail());
    net_client_close(cl);
}

void ctl_views_query(const struct nines_conf *c, struct ctl_node_view *views)
{
    memset(views, 0, c->nnodes * sizeof *views);
    for (uint32_t i = 0; i < c->nnodes; i++) {
        views[i].nc = &c->nodes[i];
        ctl_query(c, &views[i]);
    }
}

void ctl_views_free(const struct nines_conf *c, struct ctl_node_view *views)
{
    for (uint32_t i = 0; i < c->nnodes; i++) {
        nines__status_conf__free_unpacked(views[i].st, NULL);
        views[i].st = NULL;
    }
}

void ctl_nodeset_of(const struct nines_conf *c, const struct ctl_node_view *views,
                    struct ctl_nodeset *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < c->nnodes; i++) {
        const Nines__StatusConf *st = views[i].st;
        if (views[i].err || !st)
            continue;
        uint32_t id = views[i].nc->id;
        out->answered |= (uint64_t)1 << (id - 1);
        const Nines__NodeSet *ns = st->node_set;
        if (!ns || ns->epoch == 0 || (out->installed && ns->epoch <= out->epoch))
            continue;
        out->installed = true;
        out->epoch = ns->epoch;
        out->members = ns->members;
        out->current = ns->current;
        out->standby_only = ns->standby_only;
        ctl_since_of(ns, out->since);
        out->coordinator = ns->coordinator;
        out->from = id;
    }
    out->agreed = out->installed;
    for (uint32_t i = 0; i < c->nnodes && out->installed; i++) {
        const Nines__StatusConf *st = views[i].st;
        if (views[i].err || !st)
            continue;
        const Nines__NodeSet *ns = st->node_set;
        uint64_t since[NINES_MAX_NODES + 1];
        if (ns)
            ctl_since_of(ns, since);
        if (!ns || ns->epoch != out->epoch || ns->members != out->members ||
            ns->current != out->current || ns->standby_only != out->standby_only ||
            memcmp(since, out->since, sizeof since) != 0 || ns->coordinator != out->coordinator)
            out->agreed = false;
    }
}

void ctl_since_of(const Nines__NodeSet *ns, uint64_t *since)
{
    memset(since, 0, (NINES_MAX_NODES + 1) * sizeof *since);
    if (ns->n_standby_since != (size_t)__builtin_popcountll(ns->standby_only))
        return;
    size_t k = 0;
    for (uint32_t id = 1; id <= NINES_MAX_NODES; id++)
        if (ns->standby_only & ((uint64_t)1 << (id - 1)))
            since[id] = ns->standby_since[k++];
}

const char *ctl_standby_str(uint64_t standby_only, const uint64_t *since, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t id = 1; id <= NINES_MAX_NODES && off < n; id++)
        if (standby_only & ((uint64_t)1 << (id - 1)))
            off += (size_t)snprintf(buf + off, n - off, "%s%u (since epoch %llu)", off ? " " : "",
                                    id, (unsigned long long)since[id]);
    if (!buf[0])
        snprintf(buf, n, "-");
    return buf;
}

const char *ctl_since_json(uint64_t standby_only, const uint64_t *since, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t id = 1; id <= NINES_MAX_NODES && off < n; id++)
        if (standby_only & ((uint64_t)1 << (id - 1)))
            off += (size_t)snprintf(buf + off, n - off, "%s%llu", off ? "," : "",
                                    (unsigned long long)since[id]);
    return buf;
}

static int try_connect(const struct nines_conf *c, const struct nines_node_conf *nc,
                       struct net_client **out, uint32_t *used)
{
    if (ctl_dial(c, nc, out, CTL_TIMEOUT_MS))
        return -1;
    *used = nc->id;
    return 0;
}

int ctl_connect(const struct nines_conf *c, uint32_t node, uint64_t prefer, const char *cmd,
                struct net_client **out, uint32_t *used)
{
    if (node) {
        const struct nines_node_conf *nc = nines_conf_node(c, node);
        if (!nc) {
            fprintf(stderr, "ninesctl %s: --node %u is not in %s\n", cmd, node, c->path);
            return 2;
        }
        if (ctl_dial(c, nc, out, CTL_TIMEOUT_MS)) {
            fprintf(stderr, "ninesctl %s: node %u: %s\n", cmd, node, nines_errdetail());
            return 1;
        }
        *used = node;
        return 0;
    }
    char last[320] = "none tried";
    for (int pass = prefer ? 0 : 1; pass < 2; pass++)
        for (uint32_t i = 0; i < c->nnodes; i++) {
            const struct nines_node_conf *nc = &c->nodes[i];
            bool preferred = (prefer >> (nc->id - 1)) & 1;
            if ((pass == 0) != preferred)
                continue;
            if (try_connect(c, nc, out, used) == 0)
                return 0;
            snprintf(last, sizeof last, "node %u: %s", nc->id, nines_errdetail());
        }
    fprintf(stderr, "ninesctl %s: no node of %s answers (last: %s)\n", cmd, c->path, last);
    return 1;
}

int ctl_call(struct net_client *cl, uint32_t type, const ProtobufCMessage *req, uint32_t want1,
             uint32_t want2, int timeout_ms, uint32_t *got, uint8_t **body, size_t *len)
{
    int rc = net_client_send(cl, type, req);
    uint64_t deadline = nclock_ms() + (uint64_t)timeout_ms;
    while (rc == 0) {
        uint64_t now = nclock_ms();
        if (now >= deadline)
            return nines_err(NINES_ETIMEDOUT, "no answer within %d ms", timeout_ms);
        struct net_msg_in in;
        rc = net_client_recv(cl, &in, (int)(deadline - now));
        if (rc)
            break;
        if (in.type != want1 && in.type != want2)
            continue;
        *got = in.type;
        *body = malloc(in.body_len ? in.body_len : 1);
        if (!*body)
            return nines_err(NINES_ENOMEM, "no memory for a %zu-byte answer", in.body_len);
        memcpy(*body, in.body, in.body_len);
        *len = in.body_len;
        return 0;
    }
    return rc;
}

int ctl_get(const struct nines_conf *c, uint32_t node, uint64_t prefer, const char *cmd,
            struct ctl_dict *out)
{
    struct net_client *cl;
    int rc = ctl_connect(c, node, prefer, cmd, &cl, &out->node);
    if (rc)
        return rc;
    Nines__DictGetReq req = NINES__DICT_GET_REQ__INIT;
    uint32_t got;
    uint8_t *body = NULL;
    size_t len = 0;
    rc = ctl_call(cl, NINES__MSG_TYPE__DICT_GET_REQ, &req.base, NINES__MSG_TYPE__DICT_GET_CONF,
                  NINES__MSG_TYPE__DICT_GET_REF, CTL_TIMEOUT_MS * 3, &got, &body, &len);
    net_client_close(cl);
    if (rc) {
        fprintf(stderr, "ninesctl %s: node %u: %s\n", cmd, out->node, nines_errdetail());
        return 1;
    }
    int ret = 1;
    if (got == NINES__MSG_TYPE__DICT_GET_CONF) {
        Nines__DictGetConf *a = nines__dict_get_conf__unpack(NULL, len, body);
        if (!a) {
            fprintf(stderr, "ninesctl %s: node %u sent an undecodable DICT_GET_CONF\n", cmd,
                    out->node);
        } else if (dict_decode(a->image.data, a->image.len, &out->d)) {
            fprintf(stderr, "ninesctl %s: node %u sent a bad dictionary: %s\n", cmd, out->node,
                    nines_errdetail());
        } else {
            out->coordinator = a->coordinator;
            out->live = 0;
            for (size_t i = 0; i < a->n_live; i++)
                if (a->live[i] >= 1 && a->live[i] <= DICT_MAX_NODES)
                    out->live |= DICT_LIVE(a->live[i]);
            ret = 0;
        }
        if (a)
            nines__dict_get_conf__free_unpacked(a, NULL);
    } else {
        Nines__DictGetRef *r = nines__dict_get_ref__unpack(NULL, len, body);
        fprintf(stderr, "ninesctl %s: node %u refused: %s\n", cmd, out->node,
                r ? r->reason : "(undecodable)");
        if (r)
            nines__dict_get_ref__free_unpacked(r, NULL);
    }
    free(body);
    return ret;
}

void ctl_json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

const char *ctl_set_str(uint64_t set, bool json, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t id = 1; id <= 64 && off < n; id++)
        if ((set >> (id - 1)) & 1)
            off += (size_t)snprintf(buf + off, n - off, "%s%u", off ? (json ? "," : " ") : "",
                                    id);
    if (!set && !json)
        snprintf(buf, n, "-");
    return buf;
}
