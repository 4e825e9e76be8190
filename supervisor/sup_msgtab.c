/* The one table mapping each wire message type to its service and handler.
 * A type missing here is unknown: a peer that sends it is disconnected. */
#include "sup.h"

#include "dict/svc/dsvc.h"
#include "kernel/svc/ksvc.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "updchan/upd.h"
#include "nines_txn.pb-c.h"
#include "txctl/txc.h"

#define ROW(T, desc_, svc_, fn_) [NINES__MSG_TYPE__##T] = {#T, &desc_, svc_, fn_}

const struct rt_msg_entry sup_msgtab[] = {
    ROW(PING_REQ, nines__ping_req__descriptor, RT_SVC_SUP, sup_on_ping_req),
    ROW(SINK_REQ, nines__sink_req__descriptor, RT_SVC_SUP, sup_on_sink_req),
    ROW(STATUS_REQ, nines__status_req__descriptor, RT_SVC_SUP, sup_on_status_req),
    ROW(I_AM_ALIVE, nines__iam_alive__descriptor, RT_SVC_SUP, sup_on_i_am_alive),
    /* distribution dictionary service rows (dict/svc/) */
    ROW(DICT_CHANGE_REQ, nines__dict_change_req__descriptor, RT_SVC_DICT, dsvc_on_change_req),
    ROW(DICT_CHANGE_CONF, nines__dict_change_conf__descriptor, RT_SVC_DICT, dsvc_on_change_ans),
    ROW(DICT_CHANGE_REF, nines__dict_change_ref__descriptor, RT_SVC_DICT, dsvc_on_change_ans),
    ROW(DICT_PREPARE_REQ, nines__dict_prepare_req__descriptor, RT_SVC_DICT, dsvc_on_prepare_req),
    ROW(DICT_PREPARE_CONF, nines__dict_prepare_conf__descriptor, RT_SVC_DICT, dsvc_on_prepare_conf),
    ROW(DICT_PREPARE_REF, nines__dict_prepare_ref__descriptor, RT_SVC_DICT, dsvc_on_prepare_ref),
    ROW(DICT_COMMIT_REQ, nines__dict_commit_req__descriptor, RT_SVC_DICT, dsvc_on_commit_req),
    ROW(DICT_COMMIT_CONF, nines__dict_commit_conf__descriptor, RT_SVC_DICT, dsvc_on_commit_conf),
    ROW(DICT_COMMIT_REF, nines__dict_commit_ref__descriptor, RT_SVC_DICT, dsvc_on_commit_ref),
    ROW(DICT_ABORT_REQ, nines__dict_abort_req__descriptor, RT_SVC_DICT, dsvc_on_abort_req),
    ROW(DICT_VERSION_REQ, nines__dict_version_req__descriptor, RT_SVC_DICT, dsvc_on_version_req),
    ROW(DICT_VERSION_CONF, nines__dict_version_conf__descriptor, RT_SVC_DICT, dsvc_on_version_conf),
    ROW(DICT_FETCH_REQ, nines__dict_fetch_req__descriptor, RT_SVC_DICT, dsvc_on_fetch_req),
    ROW(DICT_FETCH_CONF, nines__dict_fetch_conf__descriptor, RT_SVC_DICT, dsvc_on_fetch_conf),
    ROW(DICT_FETCH_REF, nines__dict_fetch_ref__descriptor, RT_SVC_DICT, dsvc_on_fetch_ref),
    ROW(DICT_GET_REQ, nines__dict_get_req__descriptor, RT_SVC_DICT, dsvc_on_get_req),
    /* transaction controller rows (txctl/) */
    ROW(TXN_REQ, nines__txn_req__descriptor, RT_SVC_TXC, txc_on_txn_req),
    ROW(KERN_OP_CONF, nines__kern_op_conf__descriptor, RT_SVC_TXC, txc_on_kern_op_conf),
    ROW(KERN_OP_REF, nines__kern_op_ref__descriptor, RT_SVC_TXC, txc_on_kern_op_ref),
    ROW(PREPARE_CONF, nines__prepare_conf__descriptor, RT_SVC_TXC, txc_on_prepare_conf),
    ROW(PREPARE_REF, nines__prepare_ref__descriptor, RT_SVC_TXC, txc_on_prepare_ref),
    ROW(READY_IND, nines__ready_ind__descriptor, RT_SVC_TXC, txc_on_ready_ind),
    ROW(COMMIT_CONF, nines__commit_conf__descriptor, RT_SVC_TXC, txc_on_commit_conf),
    ROW(ABORT_CONF, nines__abort_conf__descriptor, RT_SVC_TXC, txc_on_abort_conf),
    ROW(TXC_START_REQ, nines__txc_start_req__descriptor, RT_SVC_TXC, txc_on_start_req),
    ROW(TXC_READY_CONF, nines__txc_ready_conf__descriptor, RT_SVC_TXC, txc_on_ready_conf),
    ROW(TXC_FORGET_REQ, nines__txc_forget_req__descriptor, RT_SVC_TXC, txc_on_forget_req),
    ROW(TXC_ABORT_REQ, nines__txc_abort_req__descriptor, RT_SVC_TXC, txc_on_abort_req),
    ROW(TXC_ABORT_CONF, nines__txc_abort_conf__descriptor, RT_SVC_TXC, txc_on_abort_conf_hsc),
    ROW(TXC_OUTCOME_REQ, nines__txc_outcome_req__descriptor, RT_SVC_TXC, txc_on_outcome_req),
    /* kernel service rows (kernel/svc/) */
    ROW(KERN_OP_REQ, nines__kern_op_req__descriptor, RT_SVC_KERN, ksvc_on_op_req),
    ROW(PREPARE_REQ, nines__prepare_req__descriptor, RT_SVC_KERN, ksvc_on_prepare_req),
    ROW(COMMIT_REQ, nines__commit_req__descriptor, RT_SVC_KERN, ksvc_on_commit_req),
    ROW(ABORT_REQ, nines__abort_req__descriptor, RT_SVC_KERN, ksvc_on_abort_req),
    ROW(KERN_DIGEST_REQ, nines__kern_digest_req__descriptor, RT_SVC_KERN, ksvc_on_digest_req),
    /* update channel rows (updchan/) */
    ROW(UPD_LOG_REQ, nines__upd_log_req__descriptor, RT_SVC_UPD, upd_on_log_req),
    ROW(UPD_LOG_CONF, nines__upd_log_conf__descriptor, RT_SVC_UPD, upd_on_log_conf),
};
const uint32_t sup_msgtab_len = sizeof sup_msgtab / sizeof sup_msgtab[0];
