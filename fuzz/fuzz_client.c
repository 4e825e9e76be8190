/* The client library's parsing of a node's answers (client/): the first
 * byte picks the answer, the rest is its body.
 *   0: DICT_GET_CONF to a waiting dictionary fetch (cli_dict_on_answer:
 *      unpack, then the dictionary image through dict_decode);
 *   1: DICT_GET_REF to a waiting fetch;
 *   2: TXN_CONF: unpacked, every op result's rows converted as the
 *      synchronous calls do (cli_row_from_pb, client/txn.c);
 *   3: DICT_GET_CONF to no fetch (a late answer: counted stale).
 * A zeroed connection with its answer arena stands for the library's. */
#include "fuzz.h"

#include <stdlib.h>

#include "arena.h"
#include "client/cli_int.h"
#include "nines_net.pb-c.h"
#include "nines_txn.pb-c.h"

int fuzz_client(const uint8_t *data, size_t len)
{
    if (len < 1)
        return 0;
    const uint8_t *body = data + 1;
    size_t blen = len - 1;
    struct nines_conn *c = calloc(1, sizeof *c);
    if (!c)
        return 0;
    arena_init(&c->ans, 4096);
    switch (data[0] & 3) {
    case 0:
    case 1:
    case 3:
        c->dget.st = (data[0] & 3) == 3 ? CLI_DGET_IDLE : CLI_DGET_WAIT;
        (void)cli_dict_on_answer(c,
                                 (data[0] & 3) == 1 ? NINES__MSG_TYPE__DICT_GET_REF
                                                    : NINES__MSG_TYPE__DICT_GET_CONF,
                                 body, blen);
        cli_dict_free(c);
        break;
    case 2: {
        Nines__TxnConf *conf =
            nines__txn_conf__unpack(arena_pb_allocator(&c->ans), blen, body);
        if (!conf)
            break;
        struct arena rows;
        arena_init(&rows, 4096);
        for (size_t i = 0; i < conf->n_results; i++)
            for (size_t j = 0; j < conf->results[i]->n_rows; j++) {
                struct nines_row *r = NULL;
                if (cli_row_from_pb(&rows, conf->results[i]->rows[j], &r) < 0)
                    break;
            }
        arena_destroy(&rows);
        break;
    }
    }
    arena_destroy(&c->ans);
    free(c);
    return 0;
}
