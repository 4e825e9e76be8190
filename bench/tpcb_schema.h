/* TPC-B and two-update tables (txctl/README.md "Procedures") and the
 * admin requests tpcb_load and tpcb use: DICT_GET to see whether a table
 * exists with the right shape, DICT_CHANGE_REQ(CREATE_TABLE) — the same
 * request `ninesctl create-table` sends — and STATUS_REQ for message
 * counters. Included by bench/tpcb_load_main.c and bench/tpcb_main.c. */
#ifndef NINES_BENCH_TPCB_SCHEMA_H
#define NINES_BENCH_TPCB_SCHEMA_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dict/dict.h"
#include "nclock.h"
#include "net/net.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"

#define TPCB_ACCOUNTS_PER_BRANCH 100000
#define TPCB_TELLERS_PER_BRANCH 10
#define TPCB_ADMIN_TIMEOUT_MS 12000

struct tpcb_col { const char *name; uint32_t type, size; };
struct tpcb_tab {
    const char *name;
    uint32_t scheme;            /* enum dict_scheme */
    uint32_t ncols;
    struct tpcb_col cols[8];    /* key = column 0 */
};

static const struct tpcb_tab tpcb_tables[] = {
    {"branch", DICT_PLACE_MISD, 3,
     {{"bid", DICT_T_INT64, 0}, {"balance", DICT_T_INT64, 0}, {"filler", DICT_T_STRING, 88}}},
    {"teller", DICT_PLACE_MISD, 4,
     {{"tid", DICT_T_INT64, 0}, {"bid", DICT_T_INT64, 0}, {"balance", DICT_T_INT64, 0},
      {"filler", DICT_T_STRING, 84}}},
    {"account", DICT_PLACE_MISD, 4,
     {{"aid", DICT_T_INT64, 0}, {"bid", DICT_T_INT64, 0}, {"balance", DICT_T_INT64, 0},
      {"filler", DICT_T_STRING, 84}}},
    {"history", DICT_PLACE_MISD, 7,
     {{"hid", DICT_T_INT64, 0}, {"aid", DICT_T_INT64, 0}, {"tid", DICT_T_INT64, 0},
      {"bid", DICT_T_INT64, 0}, {"delta", DICT_T_INT64, 0}, {"ts", DICT_T_TIMESTAMP, 0},
      {"filler", DICT_T_STRING, 22}}},
};
static const struct tpcb_tab tpcb_two_tables[] = {
    {"t1", DICT_PLACE_CIRCULAR, 3,
     {{"k", DICT_T_INT64, 0}, {"v", DICT_T_INT64, 0}, {"filler", DICT_T_STRING, 92}}},
    {"t2", DICT_PLACE_CIRCULAR, 3,
     {{"k", DICT_T_INT64, 0}, {"v", DICT_T_INT64, 0}, {"filler", DICT_T_STRING, 92}}},
};

/* Send one admin request to the first node that answers and wait for one
 * of two answer types; the packed answer is malloc'd into *body. */
static inline int tpcb_admin_call(const struct nines_conf *cf, uint32_t type,
                                  const ProtobufCMessage *req, uint32_t want1, uint32_t want2,
                                  uint32_t *got, uint8_t **body, size_t *len)
{
    int rc = NINES_EUNREACHABLE;
    for (uint32_t i = 0; i < cf->nnodes; i++) {
        struct net_client *cl;
        const struct nines_node_conf *nc = &cf->nodes[i];
        rc = net_client_connect_conf(&cl, cf, nc, 1000);
        if (rc)
            continue;
        rc = net_client_send(cl, type, req);
        uint64_t deadline = nclock_ms() + TPCB_ADMIN_TIMEOUT_MS;
        while (rc == 0) {
            uint64_t now = nclock_ms();
            if (now >= deadline) {
                rc = nines_err(NINES_ETIMEDOUT, "node %u: no answer within %d ms", nc->id,
                               TPCB_ADMIN_TIMEOUT_MS);
                break;
            }
            struct net_msg_in in;
            rc = net_client_recv(cl, &in, (int)(deadline - now));
            if (rc || (in.type != want1 && in.type != want2))
                continue;
            *got = in.type;
            *body = malloc(in.body_len ? in.body_len : 1);
            if (!*body) {
                rc = nines_err(NINES_ENOMEM, "answer of %zu bytes", in.body_len);
                break;
            }
            memcpy(*body, in.body, in.body_len);
            *len = in.body_len;
            break;
        }
        net_client_close(cl);
        if (rc == 0)
            return 0;
    }
    char last[300];
    snprintf(last, sizeof last, "%s", nines_errdetail());
    return nines_err(rc, "no node of %s answered (last: %s)", cf->path, last);
}

/* Does `t` have the shape of `want`? 0, or NINES_ECONFIG naming the difference. */
static inline int tpcb_check_shape(const struct dict_table *t, const struct tpcb_tab *want)
{
    if (t->def.ncols != want->ncols)
        return nines_err(NINES_ECONFIG, "table '%s' exists with %u columns, expected %u",
                         want->name, t->def.ncols, want->ncols);
    for (uint32_t i = 0; i < want->ncols; i++)
        if (t->def.cols[i].type != want->cols[i].type || t->def.cols[i].size != want->cols[i].size)
            return nines_err(NINES_ECONFIG, "table '%s' column %u ('%s') is %s(%u), expected "
                             "%s(%u)", want->name, i, t->def.cols[i].name,
                             dict_type_name(t->def.cols[i].type), t->def.cols[i].size,
                             dict_type_name(want->cols[i].type), want->cols[i].size);
    if (t->def.npk != 1 || t->def.pk[0] != 0)
        return nines_err(NINES_ECONFIG, "table '%s' exists with a key other than column 0",
                         want->name);
    return 0;
}

/* Create the tables that do not exist; reuse those with the right shape.
 * Prints what it did. 0 or a negative code (detail set). */
static inline int tpcb_ensure_tables(const struct nines_conf *cf, const struct tpcb_tab *tabs,
                                     size_t ntabs)
{
    Nines__DictGetReq gq = NINES__DICT_GET_REQ__INIT;
    uint32_t got = 0;
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = tpcb_admin_call(cf, NINES__MSG_TYPE__DICT_GET_REQ, &gq.base,
                             NINES__MSG_TYPE__DICT_GET_CONF, NINES__MSG_TYPE__DICT_GET_REF, &got,
                             &body, &len);
    if (rc)
        return rc;
    struct dict d;
    memset(&d, 0, sizeof d);
    if (got != NINES__MSG_TYPE__DICT_GET_CONF) {
        free(body);
        return nines_err(NINES_EPROTO, "DICT_GET refused");
    }
    Nines__DictGetConf *gc = nines__dict_get_conf__unpack(NULL, len, body);
    free(body);
    if (!gc)
        return nines_err(NINES_EPROTO, "DICT_GET_CONF does not decode");
    rc = dict_decode(gc->image.data, gc->image.len, &d);
    nines__dict_get_conf__free_unpacked(gc, NULL);
    if (rc)
        return rc;
    uint32_t per_site = cf->nnodes / 2 ? cf->nnodes / 2 : 1;
    for (size_t k = 0; k < ntabs && rc == 0; k++) {
        const struct tpcb_tab *w = &tabs[k];
        const struct dict_table *t = dict_table_by_name(&d, w->name);
        if (t) {
            rc = tpcb_check_shape(t, w);
            if (rc == 0)
                printf("table %-8s exists (id %u, %u fragments): reused\n", w->name, t->id,
                       t->nfrags);
            continue;
        }
        Nines__DictColumn cols[8], *pcols[8];
        for (uint32_t i = 0; i < w->ncols; i++) {
            nines__dict_column__init(&cols[i]);
            cols[i].name = (char *)w->cols[i].name;
            cols[i].type = w->cols[i].type;
            cols[i].size = w->cols[i].size;
            pcols[i] = &cols[i];
        }
        uint32_t pk = 0;
        Nines__DictTableDef def = NINES__DICT_TABLE_DEF__INIT;
        def.name = (char *)w->name;
        def.columns = pcols;
        def.n_columns = w->ncols;
        def.pk = &pk;
        def.n_pk = 1;
        def.method = DICT_FRAG_HASH;
        def.nfrags = 2 * per_site * per_site;
        def.scheme = w->scheme;
        Nines__DictChange ch = NINES__DICT_CHANGE__INIT;
        ch.op = NINES__DICT_OP__DICT_OP_CREATE_TABLE;
        ch.table = &def;
        Nines__DictChangeReq req = NINES__DICT_CHANGE_REQ__INIT;
        req.change = &ch;
        rc = tpcb_admin_call(cf, NINES__MSG_TYPE__DICT_CHANGE_REQ, &req.base,
                             NINES__MSG_TYPE__DICT_CHANGE_CONF, NINES__MSG_TYPE__DICT_CHANGE_REF,
                             &got, &body, &len);
        if (rc)
            break;
        if (got == NINES__MSG_TYPE__DICT_CHANGE_CONF) {
            Nines__DictChangeConf *a = nines__dict_change_conf__unpack(NULL, len, body);
            printf("table %-8s created (id %u, %u fragments)\n", w->name, a ? a->table_id : 0,
                   def.nfrags);
            if (a)
                nines__dict_change_conf__free_unpacked(a, NULL);
        } else {
            Nines__DictChangeRef *r = nines__dict_change_ref__unpack(NULL, len, body);
            rc = nines_err(r && r->error < 0 ? r->error : NINES_EPROTO,
                           "create table '%s' refused: %s", w->name,
                           r ? r->reason : "(undecodable DICT_CHANGE_REF)");
            if (r)
                nines__dict_change_ref__free_unpacked(r, NULL);
        }
        free(body);
    }
    dict_free(&d);
    return rc;
}
#endif
