/* Client library internals (module-internal to client/). See README.md. */
#ifndef NINES_CLI_INT_H
#define NINES_CLI_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "nines/nines.h"
#include "nines_dict.pb-c.h"
#include "nines_txn.pb-c.h"

#define CLI_DETAIL_MAX 512
#define CLI_ADDR_MAX 96
#define CLI_SLOT_BITS 20             /* req_id = counter << 20 | slot */
#define CLI_SLOT_MAX (1u << CLI_SLOT_BITS)
#define CLI_DEFAULT_MAX_FRAME (4u << 20)  /* common/conf.c default */

/* Answer to one request: rc 0 + conf, or rc < 0 + detail (conf NULL).
 * Runs inside the dispatch; conf lives in the connection's answer arena
 * until the callback returns. */
struct cli_slot;
typedef void (*cli_answer_fn)(struct nines_conn *c, const struct cli_slot *s, int rc,
                              const Nines__TxnConf *conf, const char *detail);

enum cli_slot_state {
    CLI_SLOT_FREE = 0,
    CLI_SLOT_PENDING,  /* queued or written; waiting for TXN_CONF / TXN_REF */
    /* failover (README "Failover"): its connection was lost, outcome unknown */
    CLI_SLOT_LOST,     /* to be asked about on the next connection */
    CLI_SLOT_ASKING,   /* in the TXN_OUTCOME_REQ outstanding (c->ask) */
    CLI_SLOT_WAITING,  /* the cluster said "in progress": asked again at retry_ms */
};

/* What a request is, for failover: a procedure call can be sent again
 * under its key; a commit is only asked about; the rest fails at once. */
enum cli_req_kind { CLI_REQ_PLAIN = 0, CLI_REQ_COMMIT, CLI_REQ_PROC };

struct cli_slot {
    enum cli_slot_state st;
    uint64_t req_id;
    uint64_t gen;              /* connection generation it was sent (or asked) on */
    uint64_t deadline_ms;
    cli_answer_fn fn;
    void *arg;
    nines_done_fn user_fn;     /* procedures: the public callback */
    void *user_arg;
    uint32_t next_free;
    /* its request key and where it went (README "Failover") */
    enum cli_req_kind kind;
    uint64_t key_seq;
    uint32_t attempt;          /* attempts sent (the key's highest attempt) */
    uint64_t sent_to;          /* bit (id - 1): nodes an attempt was sent to */
    uint64_t first_ms;         /* first attempt sent */
    uint64_t give_up_ms;       /* lost: unresolved by then -> NINES_EINDOUBT */
    uint64_t retry_ms;         /* waiting: ask again at */
    int proc;                  /* CLI_REQ_PROC: Nines__TxnReq__ProcCase */
    int64_t p[4];              /*   its arguments */
};

/* The one TXN_OUTCOME_REQ a connection may have outstanding. */
struct cli_ask {
    bool busy;
    uint64_t gen, req_id;
    uint32_t *slots;           /* the slots asked about, in key order */
    uint32_t n, cap;
};

/* The one DICT_GET_REQ a connection may have outstanding (route.c). */
enum cli_dget_state {
    CLI_DGET_IDLE = 0,
    CLI_DGET_WAIT,     /* DICT_GET_REQ queued or written; waiting for CONF / REF */
};

struct cli_dget {
    enum cli_dget_state st;
    bool users;                /* DictGetReq.users: keep the answer's user list */
    uint64_t gen;              /* connection generation it was sent on */
    bool done;                 /* answer, refusal or connection loss arrived */
    int rc;
};

/* The one DICT_CHANGE_REQ a connection may have outstanding (schema.c). */
struct cli_dchg {
    bool wait;                 /* queued or written; waiting for CONF / REF */
    uint64_t gen;              /* connection generation it was sent on */
    bool done;                 /* answer, refusal or connection loss arrived */
    int rc;
    uint32_t table_id;         /* CREATE_TABLE: the new table's id */
    uint64_t version;          /* the committed dictionary version */
};

/* A user as DictGetConf.users lists it (users.c). */
struct cli_user {
    char name[64];
    uint32_t role;
};

struct dict;
struct dict_table;
struct cli_schema;

enum cli_conn_state {
    CLI_DOWN = 0,      /* no socket; the next request dials */
    CLI_UP,            /* handshake done */
};

struct nines_conn {
    enum cli_conn_state st;
    char (*addrs)[CLI_ADDR_MAX];
    size_t naddrs;
    size_t cur;                /* index of the address in use (or last used) */
    size_t start;              /* the first connect starts here (README "Spreading") */
    char cluster[64];
    char user[64];             /* "" : no login (a client_auth trust cluster) */
    char password[1025];       /* the login's password (zeroed on close) */
    uint32_t role;             /* the role the node gave us (enum nines_role) */
    int timeout_ms;
    uint32_t max_frame;
    int fd;
    uint32_t node_id;
    uint64_t gen;              /* bumped on every new connection */
    /* output: frames waiting to be written, [woff, wlen) */
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
    /* input: bytes read, not yet parsed, [roff, rlen) */
    uint8_t *rbuf;
    size_t rlen, roff, rcap;
    /* requests in flight */
    struct cli_slot *slots;
    uint32_t nslots, free_head, inflight;
    uint64_t counter;          /* request counter (high bits of req_id) */
    uint64_t ncallbacks;       /* answers dispatched, ever */
    uint64_t stale;            /* answers matching no pending request */
    uint64_t next_scan_ms;     /* next timeout scan */
    struct arena ans;          /* answer unpacking, reset per answer */
    struct arena req;          /* request building, reset per request */
    bool in_dispatch;
    char detail[CLI_DETAIL_MAX];
    /* routing: the dictionary last fetched (NULL until the first
     * nines_key_fragment) and the fetch in progress */
    struct dict *dict;
    uint32_t dict_from;        /* node that sent it */
    struct cli_dget dget;
    /* users (users.c): names and roles from the last DICT_GET with users */
    struct cli_user *users;
    uint32_t nusers;
    /* schema (schema.c): the change in progress, and the table infos' arrays
     * built from `dict` (freed with it) */
    struct cli_dchg dchg;
    struct cli_schema *schema;
    /* request keys and failover (README "Failover") */
    uint64_t client_id;        /* random, never 0 */
    uint64_t key_seq;          /* last seq given out */
    bool failover;
    int failover_ms;           /* a lost request is resolved within this, else EINDOUBT */
    uint64_t next_dial_ms;     /* failover: no reconnect attempt before */
    uint32_t lost_node;        /* the node of the connection lost last (dialled last) */
    unsigned rnd;
    uint64_t ask_counter;
    struct cli_ask ask;
    struct nines_failover_stats fst;
    struct nines_answer_info ans_info;  /* of the answer being dispatched */
};

/* conn.c */
int cli_fail(struct nines_conn *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cli_ensure_up(struct nines_conn *c);
/* Pack a TXN_REQ (req_id set here) into the write buffer; registers the
 * answer callback. NINES_ETOOBIG when it exceeds max_frame. */
int cli_submit(struct nines_conn *c, Nines__TxnReq *req, cli_answer_fn fn, void *arg,
               nines_done_fn user_fn, void *user_arg);
/* A new request key seq (req->key unset in cli_submit: one is given). */
uint64_t cli_new_seq(struct nines_conn *c);
/* How long a blocking call waits for one request (failover included). */
uint64_t cli_call_deadline(const struct nines_conn *c);
/* Pack one message of `type` with no request slot into the write buffer
 * (the admin read DICT_GET_REQ). NINES_ETOOBIG above max_frame. */
int cli_queue(struct nines_conn *c, uint32_t type, const ProtobufCMessage *msg);
/* Run the loop until *done turns true or the deadline passes. */
int cli_wait(struct nines_conn *c, const bool *done, uint64_t deadline_ms);
uint64_t cli_now_ms(void);

/* failover.c */
/* Connection generation `gen` lost: requests that may be resolved are kept
 * (LOST); true when the slot was kept. */
bool cli_fo_keep(struct nines_conn *c, uint32_t i, uint64_t gen, uint64_t now);
/* One loop turn's failover work: reconnect, ask, re-ask, give up. */
void cli_fo_turn(struct nines_conn *c, uint64_t now);
/* TXN_OUTCOME_CONF / TXN_OUTCOME_REF. Negative: drop the connection. */
int cli_fo_on_answer(struct nines_conn *c, uint32_t type, const uint8_t *body, size_t len);
/* Slots still being resolved (not PENDING on the wire). */
bool cli_fo_busy(const struct nines_conn *c);
/* Free the slot, set the answer info, call its callback (conn.c). */
void cli_complete(struct nines_conn *c, uint32_t i, int rc, const Nines__TxnConf *conf,
                  const char *detail);
/* Pack the slot's request again (a procedure, attempt + 1) and send it. */
int cli_pack_req(struct nines_conn *c, Nines__TxnReq *req, uint64_t req_id);
void cli_lost(struct nines_conn *c, int rc, const char *why);

/* route.c */
/* DICT_GET_CONF / DICT_GET_REF from the server. Negative: the connection
 * must be dropped (undecodable body). */
int cli_dict_on_answer(struct nines_conn *c, uint32_t type, const uint8_t *body, size_t len);
/* Connection generation `gen` lost: a fetch waiting on it fails with rc. */
void cli_dict_on_lost(struct nines_conn *c, uint64_t gen, int rc);
void cli_dict_free(struct nines_conn *c);
/* Send DICT_GET_REQ and wait; on success c->dict is the node's current
 * dictionary (the old copy and its schema arrays are freed). */
int cli_dict_fetch(struct nines_conn *c);
/* The same asking for the users too (DictGetReq.users): on success
 * c->users / c->nusers hold their names and roles as well. */
int cli_dict_fetch_users(struct nines_conn *c);
/* Encode key[0..nkey) of table t with the node's order-preserving key
 * encoding (kern_key_encode, column types by kern_type_from_dict). Returns the
 * length (>= 1) or NINES_ETYPE (arity, type, range, NOT NULL, size) /
 * NINES_EINVAL (NUL in a string) naming the column. */
int cli_key_encode(const struct dict_table *t, const struct nines_value *key, size_t nkey,
                   uint8_t *out, size_t cap);

/* schema.c */
/* DICT_CHANGE_CONF / DICT_CHANGE_REF. Negative: drop the connection. */
int cli_schema_on_answer(struct nines_conn *c, uint32_t type, const uint8_t *body, size_t len);
/* Connection generation `gen` lost: a change waiting on it fails with rc. */
void cli_schema_on_lost(struct nines_conn *c, uint64_t gen, int rc);
/* Free the table infos' arrays (with the dictionary copy they point into). */
void cli_schema_free(struct nines_conn *c);
/* Send one dictionary change (DICT_CHANGE_REQ) and wait for its answer;
 * the node's refusal comes back as its code and reason. */
int cli_dict_change(struct nines_conn *c, const char *fn, Nines__DictChange *ch,
                    uint32_t *table_id);

/* value.c */
int cli_val_to_pb(struct arena *a, const struct nines_value *v, Nines__Value *out);
int cli_vals_to_pb(struct arena *a, const struct nines_value *v, size_t n, Nines__Value ***out);
/* Copy one wire row into a nines_row allocated from `a`. */
int cli_row_from_pb(struct arena *a, const Nines__Row *r, struct nines_row **out);
#endif
