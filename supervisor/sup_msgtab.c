/* The one table mapping each wire message type to its service and handler,
 * and saying who may send it and whether a peer's message of another epoch
 * is refused (supervisor/README.md "The message table"; the runtime checks
 * both where it dispatches, runtime/README.md "Dispatch checks"). A type
 * missing here is unknown: a peer that sends it is disconnected.
 *
 * ROW(type, body descriptor, service, handler, senders, epoch rule)
 *   senders: RT_FROM_CLIENT | RT_FROM_PEER | RT_FROM_LOCAL bits, or
 *            RT_FROM_NODE (peer | local: node-internal service traffic)
 *            and RT_FROM_ANY. Allow a client only what the tools, the
 *            client library and the benchmarks send on client connections.
 *   epoch:   RT_EPOCH_SAME for node-to-node service protocols (refused
 *            from a peer of another epoch), RT_EPOCH_ANY for what must flow
 *            across epochs (the ring, catch-up, probes, client requests).
 * Every row states both: the macro has no defaults. */
#include "sup.h"

#include "dict/svc/dsvc.h"
#include "kernel/svc/ksvc.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"
#include "updchan/upd.h"
#include "nines_txn.pb-c.h"
#include "txctl/txc.h"

#define ROW(T, desc_, svc_, fn_, from_, epoch_) \
    [NINES__MSG_TYPE__##T] = {#T, &desc_, svc_, fn_, from_, epoch_}

/* shorthands for the two columns, to keep rows on one or two lines */
#define CLIENT RT_FROM_CLIENT
#define PEER RT_FROM_PEER
#define LOCAL RT_FROM_LOCAL
#define SAME RT_EPOCH_SAME
#define ANY RT_EPOCH_ANY

const struct rt_msg_entry sup_msgtab[] = {
    /* probes and status: tools, benchmarks (net_rtt pings node to node) */
    ROW(PING_REQ, nines__ping_req__descriptor, RT_SVC_SUP, sup_on_ping_req,
        CLIENT | PEER | LOCAL, ANY),
    ROW(SINK_REQ, nines__sink_req__descriptor, RT_SVC_SUP, sup_on_sink_req, PEER | LOCAL, ANY),
    ROW(STATUS_REQ, nines__status_req__descriptor, RT_SVC_SUP, sup_on_status_req, CLIENT | LOCAL,
        ANY),
    /* the ring must run across epochs: it is how a node-set change starts */
    ROW(I_AM_ALIVE, nines__iam_alive__descriptor, RT_SVC_SUP, sup_on_i_am_alive, PEER | LOCAL,
        ANY),
    /* the node-set protocol (sup_ns.c): it is how epochs change, so it runs
     * across epochs; rounds and ballots carry their own numbering */
    ROW(NS_REPORT_ORD, nines__ns_report_ord__descriptor, RT_SVC_SUP, sup_on_ns_msg, PEER, ANY),
    ROW(NS_BUILD_REQ, nines__ns_build_req__descriptor, RT_SVC_SUP, sup_on_ns_msg, PEER, ANY),
    ROW(NS_BUILD_CONF, nines__ns_build_conf__descriptor, RT_SVC_SUP, sup_on_ns_msg, PEER, ANY),
    ROW(NS_BUILD_REF, nines__ns_build_ref__descriptor, RT_SVC_SUP, sup_on_ns_msg, PEER, ANY),
    ROW(NS_ACCEPT_REQ, nines__ns_accept_req__descriptor, RT_SVC_SUP, sup_on_ns_msg, PEER, ANY),
    ROW(NS_ACCEPT_CONF, nines__ns_accept_conf__descriptor, RT_SVC_SUP, sup_on_ns_msg, PEER,
        ANY),
    ROW(NS_ACCEPT_REF, nines__ns_accept_ref__descriptor, RT_SVC_SUP, sup_on_ns_msg, PEER, ANY),
    ROW(NS_INSTALL_ORD, nines__ns_install_ord__descriptor, RT_SVC_SUP, sup_on_ns_msg, PEER,
        ANY),
    /* distribution dictionary service rows (dict/svc/) */
    ROW(DICT_CHANGE_REQ, nines__dict_change_req__descriptor, RT_SVC_DICT, dsvc_on_change_req,
        CLIENT | PEER | LOCAL, ANY),
    ROW(DICT_CHANGE_CONF, nines__dict_change_conf__descriptor, RT_SVC_DICT, dsvc_on_change_ans,
        PEER | LOCAL, ANY),
    ROW(DICT_CHANGE_REF, nines__dict_change_ref__descriptor, RT_SVC_DICT, dsvc_on_change_ans,
        PEER | LOCAL, ANY),
    ROW(DICT_PREPARE_REQ, nines__dict_prepare_req__descriptor, RT_SVC_DICT,
        dsvc_on_prepare_req, PEER | LOCAL, SAME),
    ROW(DICT_PREPARE_CONF, nines__dict_prepare_conf__descriptor, RT_SVC_DICT,
        dsvc_on_prepare_conf, PEER | LOCAL, SAME),
    ROW(DICT_PREPARE_REF, nines__dict_prepare_ref__descriptor, RT_SVC_DICT,
        dsvc_on_prepare_ref, PEER | LOCAL, SAME),
    ROW(DICT_COMMIT_REQ, nines__dict_commit_req__descriptor, RT_SVC_DICT, dsvc_on_commit_req,
        PEER | LOCAL, SAME),
    ROW(DICT_COMMIT_CONF, nines__dict_commit_conf__descriptor, RT_SVC_DICT,
        dsvc_on_commit_conf, PEER | LOCAL, SAME),
    ROW(DICT_COMMIT_REF, nines__dict_commit_ref__descriptor, RT_SVC_DICT, dsvc_on_commit_ref,
        PEER | LOCAL, SAME),
    ROW(DICT_ABORT_REQ, nines__dict_abort_req__descriptor, RT_SVC_DICT, dsvc_on_abort_req,
        PEER | LOCAL, SAME),
    ROW(DICT_VERSION_REQ, nines__dict_version_req__descriptor, RT_SVC_DICT,
        dsvc_on_version_req, PEER | LOCAL, ANY),
    ROW(DICT_VERSION_CONF, nines__dict_version_conf__descriptor, RT_SVC_DICT,
        dsvc_on_version_conf, PEER | LOCAL, ANY),
    ROW(DICT_FETCH_REQ, nines__dict_fetch_req__descriptor, RT_SVC_DICT, dsvc_on_fetch_req,
        PEER | LOCAL, ANY),
    ROW(DICT_FETCH_CONF, nines__dict_fetch_conf__descriptor, RT_SVC_DICT, dsvc_on_fetch_conf,
        PEER | LOCAL, ANY),
    ROW(DICT_FETCH_REF, nines__dict_fetch_ref__descriptor, RT_SVC_DICT, dsvc_on_fetch_ref,
        PEER | LOCAL, ANY),
    ROW(DICT_GET_REQ, nines__dict_get_req__descriptor, RT_SVC_DICT, dsvc_on_get_req,
        CLIENT | LOCAL, ANY),
    /* transaction controller rows (txctl/) */
    ROW(TXN_REQ, nines__txn_req__descriptor, RT_SVC_TXC, txc_on_txn_req, CLIENT | LOCAL, ANY),
    ROW(KERN_OP_CONF, nines__kern_op_conf__descriptor, RT_SVC_TXC, txc_on_kern_op_conf,
        PEER | LOCAL, SAME),
    ROW(KERN_OP_REF, nines__kern_op_ref__descriptor, RT_SVC_TXC, txc_on_kern_op_ref,
        PEER | LOCAL, SAME),
    ROW(PREPARE_CONF, nines__prepare_conf__descriptor, RT_SVC_TXC, txc_on_prepare_conf,
        PEER | LOCAL, SAME),
    ROW(PREPARE_REF, nines__prepare_ref__descriptor, RT_SVC_TXC, txc_on_prepare_ref,
        PEER | LOCAL, SAME),
    ROW(READY_IND, nines__ready_ind__descriptor, RT_SVC_TXC, txc_on_ready_ind, PEER | LOCAL, SAME),
    ROW(COMMIT_CONF, nines__commit_conf__descriptor, RT_SVC_TXC, txc_on_commit_conf,
        PEER | LOCAL, SAME),
    ROW(ABORT_CONF, nines__abort_conf__descriptor, RT_SVC_TXC, txc_on_abort_conf, PEER | LOCAL,
        SAME),
    ROW(TXC_START_REQ, nines__txc_start_req__descriptor, RT_SVC_TXC, txc_on_start_req,
        PEER | LOCAL, SAME),
    ROW(TXC_READY_CONF, nines__txc_ready_conf__descriptor, RT_SVC_TXC, txc_on_ready_conf,
        PEER | LOCAL, SAME),
    ROW(TXC_FORGET_REQ, nines__txc_forget_req__descriptor, RT_SVC_TXC, txc_on_forget_req,
        PEER | LOCAL, SAME),
    ROW(TXC_ABORT_REQ, nines__txc_abort_req__descriptor, RT_SVC_TXC, txc_on_abort_req,
        PEER | LOCAL, SAME),
    ROW(TXC_ABORT_CONF, nines__txc_abort_conf__descriptor, RT_SVC_TXC, txc_on_abort_conf_hsc,
        PEER | LOCAL, SAME),
    ROW(TXC_OUTCOME_REQ, nines__txc_outcome_req__descriptor, RT_SVC_TXC, txc_on_outcome_req,
        PEER | LOCAL, SAME),
    /* client failover: the client library asks any serving node for the
     * outcome of its request keys; that node asks the others. Any epoch:
     * clients have none, and an answer only reads and fences (refuses
     * later attempts), which is safe in every epoch */
    ROW(TXN_OUTCOME_REQ, nines__txn_outcome_req__descriptor, RT_SVC_TXC, txc_on_txn_outcome_req,
        CLIENT | LOCAL, ANY),
    ROW(TXO_ASK_REQ, nines__txo_ask_req__descriptor, RT_SVC_TXC, txc_on_txo_ask_req,
        PEER | LOCAL, ANY),
    ROW(TXO_ASK_CONF, nines__txo_ask_conf__descriptor, RT_SVC_TXC, txc_on_txo_ask_conf,
        PEER | LOCAL, ANY),
    /* kernel service rows (kernel/svc/) */
    ROW(KERN_OP_REQ, nines__kern_op_req__descriptor, RT_SVC_KERN, ksvc_on_op_req,
        PEER | LOCAL, SAME),
    ROW(PREPARE_REQ, nines__prepare_req__descriptor, RT_SVC_KERN, ksvc_on_prepare_req,
        PEER | LOCAL, SAME),
    ROW(COMMIT_REQ, nines__commit_req__descriptor, RT_SVC_KERN, ksvc_on_commit_req,
        PEER | LOCAL, SAME),
    ROW(ABORT_REQ, nines__abort_req__descriptor, RT_SVC_KERN, ksvc_on_abort_req,
        PEER | LOCAL, SAME),
    /* a controller cannot tell a prepared kernel the outcome (else it re-sends
     * COMMIT_REQ / ABORT_REQ) */
    ROW(TXC_OUTCOME_REF, nines__txc_outcome_ref__descriptor, RT_SVC_KERN, ksvc_on_outcome_ref,
        PEER | LOCAL, SAME),
    /* read-only admin/test digest: ninesctl replicas asks as a client */
    ROW(KERN_DIGEST_REQ, nines__kern_digest_req__descriptor, RT_SVC_KERN, ksvc_on_digest_req,
        CLIENT | PEER | LOCAL, ANY),
    /* rebuild of a replica: the rebuilding node pulls a fuzzy copy from the
     * fragment's primary; both are members of the same node set (a copy
     * outlives no epoch change unchecked: the asker re-asks in the new one) */
    ROW(KERN_COPY_REQ, nines__kern_copy_req__descriptor, RT_SVC_KERN, ksvc_on_copy_req,
        PEER | LOCAL, SAME),
    ROW(KERN_COPY_CONF, nines__kern_copy_conf__descriptor, RT_SVC_KERN, ksvc_on_copy_conf,
        PEER | LOCAL, SAME),
    ROW(KERN_COPY_REF, nines__kern_copy_ref__descriptor, RT_SVC_KERN, ksvc_on_copy_ref,
        PEER | LOCAL, SAME),
    /* admin: a round of checkpoints now (ninesctl checkpoint; a client, or a
     * node's own task). Any epoch: it only writes what the node holds */
    ROW(CKPT_REQ, nines__ckpt_req__descriptor, RT_SVC_KERN, ksvc_on_ckpt_req, CLIENT | LOCAL,
        ANY),
    /* takeback (supervisor/README.md "Takeback"): the node-set coordinator's
     * supervisor asks every current node's kernel service to drain the
     * primaries that move to a standby-only node; the answers go to the
     * coordinator's supervisor. Same epoch: a drain is for one node set,
     * and an install ends it */
    ROW(TAKEBACK_REQ, nines__takeback_req__descriptor, RT_SVC_KERN, ksvc_on_takeback_req,
        PEER | LOCAL, SAME),
    ROW(TAKEBACK_CONF, nines__takeback_conf__descriptor, RT_SVC_SUP, sup_on_takeback_ans,
        PEER | LOCAL, SAME),
    ROW(TAKEBACK_REF, nines__takeback_ref__descriptor, RT_SVC_SUP, sup_on_takeback_ans,
        PEER | LOCAL, SAME),
    /* update channel rows (updchan/) */
    ROW(UPD_LOG_REQ, nines__upd_log_req__descriptor, RT_SVC_UPD, upd_on_log_req, PEER | LOCAL,
        SAME),
    ROW(UPD_LOG_CONF, nines__upd_log_conf__descriptor, RT_SVC_UPD, upd_on_log_conf, PEER | LOCAL,
        SAME),
    /* commit epochs, txctl part (txctl/txc_gcp.c, README "Commit epochs"): the
     * node-set coordinator's supervisor stops every member's stamping, then
     * switches its epoch; answered to the sender's supervisor (RT_SVC_SUP).
     * Same epoch: a round belongs to one node set, an install ends it */
    ROW(GCP_PREPARE_REQ, nines__gcp_prepare_req__descriptor, RT_SVC_TXC, txc_on_gcp_prepare_req,
        PEER | LOCAL, SAME),
    ROW(GCP_COMMIT_REQ, nines__gcp_commit_req__descriptor, RT_SVC_TXC, txc_on_gcp_commit_req,
        PEER | LOCAL, SAME),
    /* commit epochs, the coordinator's part (supervisor/README.md "Global
     * checkpoints", sup_gcp.c): the txctls' answers to the node-set
     * coordinator's supervisor, its GCP_SAVE_REQ to every member's kernel
     * service and the kernels' answers, all of one round and so of one
     * node set (SAME); GCP_SAVED_ORD to every member's supervisor in any
     * epoch: it only raises a restorable epoch (idempotent, max), and one
     * dropped across an install would leave a sync commit waiting a round
     * longer. (The txctl's rows GCP_PREPARE_REQ / GCP_COMMIT_REQ are the
     * txctl's part.) */
    ROW(GCP_PREPARE_CONF, nines__gcp_prepare_conf__descriptor, RT_SVC_SUP, sup_on_gcp_ans,
        PEER | LOCAL, SAME),
    ROW(GCP_COMMIT_CONF, nines__gcp_commit_conf__descriptor, RT_SVC_SUP, sup_on_gcp_ans,
        PEER | LOCAL, SAME),
    ROW(GCP_COMMIT_REF, nines__gcp_commit_ref__descriptor, RT_SVC_SUP, sup_on_gcp_ans,
        PEER | LOCAL, SAME),
    ROW(GCP_SAVE_REQ, nines__gcp_save_req__descriptor, RT_SVC_KERN, ksvc_on_gcp_save_req,
        PEER | LOCAL, SAME),
    ROW(GCP_SAVE_CONF, nines__gcp_save_conf__descriptor, RT_SVC_SUP, sup_on_gcp_ans,
        PEER | LOCAL, SAME),
    ROW(GCP_SAVE_REF, nines__gcp_save_ref__descriptor, RT_SVC_SUP, sup_on_gcp_ans,
        PEER | LOCAL, SAME),
    ROW(GCP_SAVED_ORD, nines__gcp_saved_ord__descriptor, RT_SVC_SUP, sup_on_gcp_saved_ord,
        PEER | LOCAL, ANY),
};
const uint32_t sup_msgtab_len = sizeof sup_msgtab / sizeof sup_msgtab[0];
