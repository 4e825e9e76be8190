/* Precompiled procedures (TPC-B, two updates): one TXN_REQ with the
 * procedure and end=COMMIT; blocking and pipelined forms. */
#include "cli_int.h"

#include <stdio.h>
#include <string.h>

struct cli_proc_sync {
    bool done;
    int rc;
    int64_t value;
    char detail[CLI_DETAIL_MAX];
};

static void cli_proc_sync_done(struct nines_conn *c, const struct cli_slot *s, int rc,
                               const Nines__TxnConf *conf, const char *detail)
{
    struct cli_proc_sync *y = s->arg;
    y->done = true;
    y->rc = rc;
    if (rc)
        snprintf(y->detail, sizeof y->detail, "%s", detail ? detail : nines_strerror(rc));
    else
        y->value = conf->value;
}

static void cli_proc_async_done(struct nines_conn *c, const struct cli_slot *s, int rc,
                                const Nines__TxnConf *conf, const char *detail)
{
    s->user_fn(s->user_arg, rc, rc ? 0 : conf->value, rc ? (detail ? detail : "") : "");
}

static int cli_proc_sync(struct nines_conn *c, Nines__TxnReq *req, int64_t *value)
{
    if (c->in_dispatch)
        return cli_fail(c, NINES_ESTATE, "blocking call from a callback of the same connection");
    struct cli_proc_sync y = {0};
    int rc = cli_submit(c, req, cli_proc_sync_done, &y, NULL, NULL);
    if (rc)
        return rc;
    rc = cli_wait(c, &y.done, cli_call_deadline(c));
    if (rc)
        return rc;
    if (y.rc)
        return cli_fail(c, y.rc, "%s", y.detail);
    if (value)
        *value = y.value;
    return 0;
}

int nines_tpcb(nines_conn *c, int64_t aid, int64_t tid, int64_t bid, int64_t delta,
               int64_t *balance)
{
    if (!c)
        return nines_err(NINES_EINVAL, "nines_tpcb: NULL connection");
    Nines__TpcbCall call = NINES__TPCB_CALL__INIT;
    call.aid = aid;
    call.tid = tid;
    call.bid = bid;
    call.delta = delta;
    Nines__TxnReq req = NINES__TXN_REQ__INIT;
    req.end = NINES__TXN_END__TXN_END_COMMIT;
    req.proc_case = NINES__TXN_REQ__PROC_TPCB;
    req.tpcb = &call;
    return cli_proc_sync(c, &req, balance);
}

int nines_two_upd(nines_conn *c, int64_t k1, int64_t k2, int64_t delta)
{
    if (!c)
        return nines_err(NINES_EINVAL, "nines_two_upd: NULL connection");
    Nines__TwoUpdCall call = NINES__TWO_UPD_CALL__INIT;
    call.key1 = k1;
    call.key2 = k2;
    call.delta = delta;
    Nines__TxnReq req = NINES__TXN_REQ__INIT;
    req.end = NINES__TXN_END__TXN_END_COMMIT;
    req.proc_case = NINES__TXN_REQ__PROC_TWO_UPD;
    req.two_upd = &call;
    return cli_proc_sync(c, &req, NULL);
}

int nines_tpcb_async(nines_conn *c, int64_t aid, int64_t tid, int64_t bid, int64_t delta,
                     nines_done_fn fn, void *arg)
{
    if (!c || !fn)
        return nines_err(NINES_EINVAL, "nines_tpcb_async: NULL connection or callback");
    Nines__TpcbCall call = NINES__TPCB_CALL__INIT;
    call.aid = aid;
    call.tid = tid;
    call.bid = bid;
    call.delta = delta;
    Nines__TxnReq req = NINES__TXN_REQ__INIT;
    req.end = NINES__TXN_END__TXN_END_COMMIT;
    req.proc_case = NINES__TXN_REQ__PROC_TPCB;
    req.tpcb = &call;
    return cli_submit(c, &req, cli_proc_async_done, NULL, fn, arg);
}

int nines_two_upd_async(nines_conn *c, int64_t k1, int64_t k2, int64_t delta, nines_done_fn fn,
                        void *arg)
{
    if (!c || !fn)
        return nines_err(NINES_EINVAL, "nines_two_upd_async: NULL connection or callback");
    Nines__TwoUpdCall call = NINES__TWO_UPD_CALL__INIT;
    call.key1 = k1;
    call.key2 = k2;
    call.delta = delta;
    Nines__TxnReq req = NINES__TXN_REQ__INIT;
    req.end = NINES__TXN_END__TXN_END_COMMIT;
    req.proc_case = NINES__TXN_REQ__PROC_TWO_UPD;
    req.two_upd = &call;
    return cli_submit(c, &req, cli_proc_async_done, NULL, fn, arg);
}
