/* ninesctl — admin command line for a ninesdb cluster.
 *
 *   ninesctl --config FILE status [--json] [--wait-healthy SECONDS | --wait-current SECONDS | --wait-balanced SECONDS]
 *   ninesctl --config FILE ping --node ID [--count N]
 *   ninesctl --config FILE create-table NAME --columns SPEC --key COLS
 *            [--frags N | --range-splits V1,V2,...] [--scheme misd|circular]
 *            [--replicas 1|2] [--node ID]
 *   ninesctl --config FILE drop-table NAME [--node ID]
 *   ninesctl --config FILE tables [--json] [--node ID]
 *   ninesctl --config FILE placement NAME [--json] [--node ID]
 *   ninesctl --config FILE replicas [--table ID] [--json]
 *   ninesctl --config FILE checkpoint [--node ID] [--json] [--timeout SECONDS]
 *   ninesctl --config FILE user add NAME --role ROLE [--password P] | drop NAME |
 *            passwd NAME [--password P] | role NAME ROLE | list   [--node ID]
 *   ninesctl keygen FILE [--force]
 *   ninesctl sql-verifier NAME [--password P] [--iterations N]
 *
 * The dictionary commands talk to one node (--node, else the first node of
 * the file that answers); a change is forwarded by that node to the
 * dictionary coordinator and committed at every live node
 * (dict/svc/README.md). Exit status of
 * the dictionary commands: 0 done, 1 refused or failed, 2 usage error.
 *
 * status (ctl_status.c) asks every node of the cluster file for its
 * STATUS_CONF and the arbitrator for its status and prints the node set,
 * the arbitrator, and per node sites, reachability (from here), uptime,
 * HA state and what it sees of its peers. Exit status: 0 healthy, 1
 * degraded, 2 usage or configuration error. replicas (ctl_replicas.c):
 * roles, digests and redo lag per fragment. checkpoint (ctl_ckpt.c): a
 * round of checkpoints at every node now. tools/README.md has them all. */
#include "conf.h"
#include "conv/conv.h"
#include "ctl.h"
#include "dict/dict.h"
#include "kernel/kern_key.h"
#include "nclock.h"
#include "net/net.h"
#include "nines/errors.h"
#include "nines_dict.pb-c.h"
#include "nines_net.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static int cmd_ping(const struct nines_conf *c, int argc, char **argv)
{
    uint32_t node = 0;
    long count = 10;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--node") && i + 1 < argc)
            node = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "ninesctl ping: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    const struct nines_node_conf *nc = nines_conf_node(c, node);
    if (!nc || count <= 0) {
        fprintf(stderr, "ninesctl ping: --node %u is not in %s (or --count %ld is not positive)\n",
                node, c->path, count);
        return 2;
    }
    struct net_client *cl;
    if (ctl_dial(c, nc, &cl, CTL_TIMEOUT_MS)) {
        fprintf(stderr, "ninesctl ping: node %u: %s\n", node, nines_errdetail());
        return 1;
    }
    int rc = 0;
    for (long i = 0; i < count && rc == 0; i++) {
        Nines__PingReq req = NINES__PING_REQ__INIT;
        req.seq = (uint64_t)i;
        req.sent_ns = nclock_ns();
        rc = net_client_send(cl, NINES__MSG_TYPE__PING_REQ, &req.base);
        struct net_msg_in in;
        if (rc == 0)
            rc = net_client_recv(cl, &in, CTL_TIMEOUT_MS);
        if (rc == 0)
            printf("reply from node %u: seq %ld time %.1f us\n", node, i,
                   (double)(nclock_ns() - req.sent_ns) / 1000.0);
    }
    if (rc)
        fprintf(stderr, "ninesctl ping: %s\n", nines_errdetail());
    net_client_close(cl);
    return rc ? 1 : 0;
}

/* ---- dictionary commands ---------------------------------------------- */

#define CTL_DICT_TIMEOUT_MS 12000 /* forward (5 s) + the coordinator's budget */


static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v > UINT32_MAX || s[0] == '-')
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* One column "name:type[(n)][:null]". */
static int parse_column(const char *spec, Nines__DictColumn *col, char *err, size_t errn)
{
    char buf[256];
    if (strlen(spec) >= sizeof buf) {
        snprintf(err, errn, "column '%.40s...' is too long", spec);
        return -1;
    }
    strcpy(buf, spec);
    char *name = buf, *type = strchr(buf, ':');
    if (!type) {
        snprintf(err, errn, "column '%s' has no type (expected name:type)", spec);
        return -1;
    }
    *type++ = '\0';
    char *flag = strchr(type, ':');
    if (flag) {
        *flag++ = '\0';
        if (strcmp(flag, "null") != 0 && strcmp(flag, "nullable") != 0) {
            snprintf(err, errn, "column '%s': unknown flag '%s' (only 'null')", spec, flag);
            return -1;
        }
        col->nullable = true;
    }
    uint32_t size = 0;
    char *paren = strchr(type, '(');
    if (paren) {
        char *close = strchr(paren, ')');
        if (!close || close[1]) {
            snprintf(err, errn, "column '%s': size must be written type(n)", spec);
            return -1;
        }
        *close = '\0';
        *paren++ = '\0';
        if (parse_u32(paren, &size)) {
            snprintf(err, errn, "column '%s': size '%s' is not a number", spec, paren);
            return -1;
        }
    }
    uint32_t t;
    if (dict_type_parse(type, &t)) {
        snprintf(err, errn, "column '%s': %s", spec, nines_errdetail());
        return -1;
    }
    col->name = strdup(name);
    col->type = t;
    col->size = size;
    return col->name ? 0 : -1;
}

/* Encode one split value of the first key column: the text as the wire
 * value it reads as (an integer, a number, a string), then the one
 * conversion and key encoding the nodes use (conv_key, conv/README.md). */
static int encode_split(const char *table, const Nines__DictColumn *col, const char *v,
                        ProtobufCBinaryData *out, char *err, size_t errn)
{
    int kt = kern_type_from_dict(col->type);
    struct conv_col cc = {table, col->name, {(uint8_t)(kt < 0 ? 0 : kt), 0, col->size}};
    Nines__Value pv = NINES__VALUE__INIT;
    Nines__Value *pp = &pv;
    char *end;
    errno = 0;
    switch (col->type) {
    case DICT_T_INT32:
    case DICT_T_INT64:
    case DICT_T_TIMESTAMP:
        pv.v_case = NINES__VALUE__V_I64;
        pv.i64 = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            snprintf(err, errn, "split value '%s' is not an integer (key column '%s' is %s)", v,
                     col->name, dict_type_name(col->type));
            return -1;
        }
        break;
    case DICT_T_DOUBLE:
        pv.v_case = NINES__VALUE__V_F64;
        pv.f64 = strtod(v, &end);
        if (errno || end == v || *end) {
            snprintf(err, errn, "split value '%s' is not a number", v);
            return -1;
        }
        break;
    case DICT_T_STRING:
    case DICT_T_VARSTRING:
        pv.v_case = NINES__VALUE__V_STR;
        pv.str = (char *)v;
        break;
    default:
        snprintf(err, errn, "range splits on a %s key column ('%s') are not supported by "
                 "ninesctl (use int32, int64, double, timestamp, string or varstring)",
                 dict_type_name(col->type), col->name);
        return -1;
    }
    uint8_t key[KERN_KEY_MAX];
    int n = conv_key(&cc, 1, &pp, 1, true, "split", key, sizeof key);
    if (n < 0) {
        snprintf(err, errn, "split value '%s': %s", v, nines_errdetail());
        return -1;
    }
    out->data = malloc((size_t)n);
    if (!out->data)
        return -1;
    memcpy(out->data, key, (size_t)n);
    out->len = (size_t)n;
    return 0;
}

/* Split a comma list in place; returns the count (at most max). */
static size_t split_list(char *s, char **parts, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *p = strtok_r(s, ",", &save); p && n < max; p = strtok_r(NULL, ",", &save))
        parts[n++] = p;
    return n;
}

static void free_def(Nines__DictTableDef *t)
{
    for (size_t i = 0; i < t->n_columns; i++) {
        free(t->columns[i]->name);
        free(t->columns[i]);
    }
    free(t->columns);
    free(t->pk);
    for (size_t i = 0; i < t->n_splits; i++)
        free(t->splits[i].data);
    free(t->splits);
}

static void print_ids(const char *label, const uint32_t *ids, size_t n)
{
    printf("%s", label);
    for (size_t i = 0; i < n; i++)
        printf(" %u", ids[i]);
    printf("\n");
}

/* Send a change and print the answer: 0 committed, 1 refused/failed. */
int ctl_change(const struct nines_conf *c, uint32_t node, const char *cmd,
               Nines__DictChange *change, const char *done)
{
    struct net_client *cl;
    uint32_t used;
    int rc = ctl_connect(c, node, 0, cmd, &cl, &used);
    if (rc)
        return rc;
    Nines__DictChangeReq req = NINES__DICT_CHANGE_REQ__INIT;
    req.change = change;
    uint32_t got;
    uint8_t *body = NULL;
    size_t len = 0;
    rc = ctl_call(cl, NINES__MSG_TYPE__DICT_CHANGE_REQ, &req.base,
                  NINES__MSG_TYPE__DICT_CHANGE_CONF, NINES__MSG_TYPE__DICT_CHANGE_REF,
                  CTL_DICT_TIMEOUT_MS, &got, &body, &len);
    net_client_close(cl);
    if (rc) {
        fprintf(stderr, "ninesctl %s: node %u: %s\n", cmd, used, nines_errdetail());
        return 1;
    }
    int ret = 1;
    if (got == NINES__MSG_TYPE__DICT_CHANGE_CONF) {
        Nines__DictChangeConf *a = nines__dict_change_conf__unpack(NULL, len, body);
        if (a) {
            if (done)
                printf("%s: dictionary version %llu, coordinator %u\n", done,
                       (unsigned long long)a->version, a->coordinator);
            else if (change->op == NINES__DICT_OP__DICT_OP_CREATE_TABLE)
                printf("created table '%s' (id %u): dictionary version %llu, coordinator %u\n",
                       change->table->name, a->table_id, (unsigned long long)a->version,
                       a->coordinator);
            else
                printf("dropped table '%s': dictionary version %llu, coordinator %u\n",
                       change->name, (unsigned long long)a->version, a->coordinator);
            print_ids("confirmed by nodes:", a->confirmed, a->n_confirmed);
            if (a->n_missing) {
                print_ids("not confirmed (they catch up when reachable):", a->missing,
                          a->n_missing);
                printf("  (%s)\n", a->note);
            }
            ret = 0;
            nines__dict_change_conf__free_unpacked(a, NULL);
        }
    } else {
        Nines__DictChangeRef *r = nines__dict_change_ref__unpack(NULL, len, body);
        if (r) {
            fprintf(stderr, "ninesctl %s: refused by the dictionary coordinator %u: %s (%s)\n",
                    cmd, r->coordinator, r->reason, nines_strerror(r->error));
            nines__dict_change_ref__free_unpacked(r, NULL);
        }
    }
    free(body);
    return ret;
}

static int cmd_create_table(const struct nines_conf *c, int argc, char **argv)
{
    const char *name = NULL, *cols = NULL, *key = NULL, *frags = NULL, *splits = NULL;
    const char *scheme = NULL, *replicas = NULL;
    uint32_t node = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--columns") && more)
            cols = argv[++i];
        else if (!strcmp(a, "--key") && more)
            key = argv[++i];
        else if (!strcmp(a, "--frags") && more)
            frags = argv[++i];
        else if (!strcmp(a, "--range-splits") && more)
            splits = argv[++i];
        else if (!strcmp(a, "--scheme") && more)
            scheme = argv[++i];
        else if (!strcmp(a, "--replicas") && more)
            replicas = argv[++i];
        else if (!strcmp(a, "--node") && more) {
            if (parse_u32(argv[++i], &node) || node == 0) {
                fprintf(stderr, "ninesctl create-table: --node '%s' is not a node id\n", argv[i]);
                return 2;
            }
        } else if (a[0] != '-' && !name)
            name = a;
        else {
            fprintf(stderr, "ninesctl create-table: unknown or incomplete option '%s'\n", a);
            return 2;
        }
    }
    if (!name || !cols) {
        fprintf(stderr, "ninesctl create-table: need a table NAME and --columns\n");
        return 2;
    }
    if (frags && splits) {
        fprintf(stderr, "ninesctl create-table: give --frags (hash) or --range-splits (range), "
                        "not both\n");
        return 2;
    }
    Nines__DictTableDef t = NINES__DICT_TABLE_DEF__INIT;
    t.name = (char *)name;
    int ret = 2;
    char err[300];
    char *colbuf = strdup(cols), *keybuf = key ? strdup(key) : NULL;
    char *splitbuf = splits ? strdup(splits) : NULL;
    char *parts[DICT_MAX_COLS + 2];
    if (!colbuf || (key && !keybuf) || (splits && !splitbuf))
        goto out;
    size_t n = split_list(colbuf, parts, DICT_MAX_COLS + 1);
    if (n == 0) {
        fprintf(stderr, "ninesctl create-table: --columns '%s' names no column\n", cols);
        goto out;
    }
    t.columns = calloc(n, sizeof *t.columns);
    if (!t.columns)
        goto out;
    for (size_t i = 0; i < n; i++) {
        t.columns[i] = malloc(sizeof **t.columns);
        if (!t.columns[i])
            goto out;
        nines__dict_column__init(t.columns[i]);
        t.n_columns = i + 1;
        t.columns[i]->name = NULL;
        if (parse_column(parts[i], t.columns[i], err, sizeof err)) {
            fprintf(stderr, "ninesctl create-table: --columns: %s\n", err);
            goto out;
        }
    }
    if (keybuf) {
        size_t k = split_list(keybuf, parts, DICT_MAX_PK + 1);
        t.pk = calloc(k ? k : 1, sizeof *t.pk);
        if (!t.pk)
            goto out;
        for (size_t i = 0; i < k; i++) {
            size_t j = 0;
            while (j < t.n_columns && strcmp(t.columns[j]->name, parts[i]) != 0)
                j++;
            if (j == t.n_columns) {
                fprintf(stderr, "ninesctl create-table: --key column '%s' is not in --columns\n",
                        parts[i]);
                goto out;
            }
            t.pk[i] = (uint32_t)j;
        }
        t.n_pk = k;
    }
    t.method = DICT_FRAG_HASH;
    t.nfrags = 0;
    if (frags && parse_u32(frags, &t.nfrags)) {
        fprintf(stderr, "ninesctl create-table: --frags '%s' is not a number\n", frags);
        goto out;
    }
    if (!frags && !splits)
        t.nfrags = c->nnodes * 2; /* default: two primaries per node */
    if (splitbuf) {
        t.method = DICT_FRAG_RANGE;
        if (!t.n_pk) {
            fprintf(stderr, "ninesctl create-table: --range-splits needs --key\n");
            goto out;
        }
        size_t k = split_list(splitbuf, parts, DICT_MAX_FRAGS);
        t.splits = calloc(k ? k : 1, sizeof *t.splits);
        if (!t.splits)
            goto out;
        for (size_t i = 0; i < k; i++) {
            if (encode_split(t.name, t.columns[t.pk[0]], parts[i], &t.splits[i], err,
                             sizeof err)) {
                fprintf(stderr, "ninesctl create-table: --range-splits: %s\n", err);
                goto out;
            }
            t.n_splits = i + 1;
        }
    }
    if (scheme) {
        if (!strcmp(scheme, "misd"))
            t.scheme = DICT_PLACE_MISD;
        else if (!strcmp(scheme, "circular"))
            t.scheme = DICT_PLACE_CIRCULAR;
        else {
            fprintf(stderr, "ninesctl create-table: --scheme '%s' must be misd or circular\n",
                    scheme);
            goto out;
        }
    }
    if (replicas && (parse_u32(replicas, &t.replicas) || t.replicas == 0)) {
        fprintf(stderr, "ninesctl create-table: --replicas '%s' must be 1 or 2\n", replicas);
        goto out;
    }
    Nines__DictChange ch = NINES__DICT_CHANGE__INIT;
    ch.op = NINES__DICT_OP__DICT_OP_CREATE_TABLE;
    ch.table = &t;
    ret = ctl_change(c, node, "create-table", &ch, NULL);
out:
    free_def(&t);
    free(colbuf);
    free(keybuf);
    free(splitbuf);
    return ret;
}

static int cmd_drop_table(const struct nines_conf *c, int argc, char **argv)
{
    const char *name = NULL;
    uint32_t node = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--node") && i + 1 < argc) {
            if (parse_u32(argv[++i], &node) || node == 0) {
                fprintf(stderr, "ninesctl drop-table: --node '%s' is not a node id\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            fprintf(stderr, "ninesctl drop-table: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!name) {
        fprintf(stderr, "ninesctl drop-table: need a table NAME\n");
        return 2;
    }
    Nines__DictChange ch = NINES__DICT_CHANGE__INIT;
    ch.op = NINES__DICT_OP__DICT_OP_DROP_TABLE;
    ch.name = (char *)name;
    return ctl_change(c, node, "drop-table", &ch, NULL);
}


static int dict_cmd_opts(const char *cmd, int argc, char **argv, bool want_name,
                         const char **name, bool *json, uint32_t *node)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            *json = true;
        else if (!strcmp(argv[i], "--node") && i + 1 < argc) {
            if (parse_u32(argv[++i], node) || *node == 0) {
                fprintf(stderr, "ninesctl %s: --node '%s' is not a node id\n", cmd, argv[i]);
                return 2;
            }
        } else if (want_name && argv[i][0] != '-' && !*name)
            *name = argv[i];
        else {
            fprintf(stderr, "ninesctl %s: unknown option '%s'\n", cmd, argv[i]);
            return 2;
        }
    }
    if (want_name && !*name) {
        fprintf(stderr, "ninesctl %s: need a table NAME\n", cmd);
        return 2;
    }
    return 0;
}

static void print_live(dict_liveset live, bool json)
{
    bool first = true;
    for (uint32_t id = 1; id <= DICT_MAX_NODES; id++)
        if (live & DICT_LIVE(id)) {
            printf(json ? "%s%u" : "%s%u", first ? "" : (json ? "," : " "), id);
            first = false;
        }
}

static int cmd_tables(const struct nines_conf *c, int argc, char **argv)
{
    bool json = false;
    uint32_t node = 0;
    const char *unused = NULL;
    int rc = dict_cmd_opts("tables", argc, argv, false, &unused, &json, &node);
    if (rc)
        return rc;
    struct ctl_dict g;
    memset(&g, 0, sizeof g);
    rc = ctl_get(c, node, 0, "tables", &g);
    if (rc)
        return rc;
    const struct dict *d = &g.d;
    if (json) {
        printf("{\"node\":%u,\"version\":%llu,\"coordinator\":%u,\"live\":[", g.node,
               (unsigned long long)d->version, g.coordinator);
        print_live(g.live, true);
        printf("],\"tables\":[");
        for (uint32_t i = 0; i < d->ntables; i++) {
            const struct dict_table *t = d->tables[i];
            printf("%s{\"id\":%u,\"name\":\"%s\",\"method\":\"%s\",\"fragments\":%u,"
                   "\"replicas\":%u,\"scheme\":\"%s\",\"columns\":%u,\"readonly\":%s,"
                   "\"hidden\":[",
                   i ? "," : "", t->id, t->def.name,
                   t->def.method == DICT_FRAG_RANGE ? "range" : "hash", t->nfrags,
                   t->def.replicas, t->def.scheme == DICT_PLACE_CIRCULAR ? "circular" : "misd",
                   t->def.ncols, t->readonly ? "true" : "false");
            for (uint32_t ci = 0, n = 0; ci < t->def.ncols; ci++)
                if (t->def.cols[ci].hidden)
                    printf("%s\"%s\"", n++ ? "," : "", t->def.cols[ci].name);
            printf("]}");
        }
        printf("]}\n");
    } else {
        printf("node %u: dictionary version %llu, %u tables, coordinator %u, live nodes ", g.node,
               (unsigned long long)d->version, d->ntables, g.coordinator);
        print_live(g.live, false);
        printf("\n");
        if (d->ntables)
            printf("%-5s %-24s %-6s %-9s %-8s %-8s %s\n", "ID", "NAME", "METHOD", "FRAGMENTS",
                   "REPLICAS", "SCHEME", "KEY");
        for (uint32_t i = 0; i < d->ntables; i++) {
            const struct dict_table *t = d->tables[i];
            char keys[256] = "";
            size_t off = 0;
            for (uint32_t k = 0; k < t->def.npk && off < sizeof keys - 70; k++)
                off += (size_t)snprintf(keys + off, sizeof keys - off, "%s%s", k ? "," : "",
                                        t->def.cols[t->def.pk[k]].name);
            /* after the key: [read-only], [hidden: columns] (the SQL front
             * end's row keys) */
            char flags[256] = "";
            size_t fo = 0;
            if (t->readonly)
                fo += (size_t)snprintf(flags, sizeof flags, "  [read-only]");
            for (uint32_t ci = 0, n = 0; ci < t->def.ncols && fo < sizeof flags - 70; ci++)
                if (t->def.cols[ci].hidden)
                    fo += (size_t)snprintf(flags + fo, sizeof flags - fo, "%s%s",
                                           n++ ? "," : "  [hidden: ", t->def.cols[ci].name);
            if (fo && strstr(flags, "[hidden: "))
                snprintf(flags + fo, sizeof flags - fo, "]");
            printf("%-5u %-24s %-6s %-9u %-8u %-8s %s%s\n", t->id, t->def.name,
                   t->def.method == DICT_FRAG_RANGE ? "range" : "hash", t->nfrags,
                   t->def.replicas, t->def.scheme == DICT_PLACE_CIRCULAR ? "circular" : "misd",
                   keys, flags);
        }
    }
    dict_free(&g.d);
    return 0;
}

static int cmd_placement(const struct nines_conf *c, int argc, char **argv)
{
    bool json = false;
    uint32_t node = 0;
    const char *name = NULL;
    int rc = dict_cmd_opts("placement", argc, argv, true, &name, &json, &node);
    if (rc)
        return rc;
    struct ctl_dict g;
    memset(&g, 0, sizeof g);
    rc = ctl_get(c, node, 0, "placement", &g);
    if (rc)
        return rc;
    const struct dict_table *t = dict_table_by_name(&g.d, name);
    if (!t) {
        fprintf(stderr, "ninesctl placement: no table '%s' in dictionary version %llu of node %u\n",
                name, (unsigned long long)g.d.version, g.node);
        dict_free(&g.d);
        return 1;
    }
    if (!json)
        printf("(from node %u; effective = the replica executing the fragment with the nodes "
               "node %u reaches now)\n", g.node, g.node);
    rc = dict_report_live_file(&g.d, t, json ? DICT_REPORT_JSON : DICT_REPORT_TEXT, g.live,
                               stdout);
    if (rc)
        fprintf(stderr, "ninesctl placement: %s\n", nines_errdetail());
    dict_free(&g.d);
    return rc ? 1 : 0;
}

static const struct {
    const char *name;
    int (*fn)(const struct nines_conf *c, int argc, char **argv);
    const char *help;
} commands[] = {
    {"status", ctl_cmd_status, "status [--json] [--wait-healthy SECONDS | --wait-current SECONDS | --wait-balanced SECONDS]"},
    {"ping", cmd_ping, "ping --node ID [--count N]"},
    {"create-table", cmd_create_table,
     "create-table NAME --columns \"id:int64,name:varstring(32):null,...\" --key id[,col...]\n"
     "      [--frags N | --range-splits V1,V2,...] [--scheme misd|circular] [--replicas 1|2]\n"
     "      [--node ID]   (types: int32 int64 double timestamp string(n) bytes(n)\n"
     "      varstring(max) varbytes(max); ':null' makes a column nullable;\n"
     "      default --frags: 2 per node; split values are of the first key column)"},
    {"drop-table", cmd_drop_table, "drop-table NAME [--node ID]"},
    {"tables", cmd_tables, "tables [--json] [--node ID]"},
    {"placement", cmd_placement, "placement NAME [--json] [--node ID]"},
    {"replicas", ctl_cmd_replicas,
     "replicas [--table ID] [--json]   (roles, primary vs hot standby digests, redo lag)"},
    {"user", ctl_cmd_user,
     "user add NAME --role reader|writer|admin [--password P] [--node ID]\n"
     "      user drop NAME | user passwd NAME [--password P] | user role NAME ROLE | user list\n"
     "      (users with roles in the dictionary; the password from the first line of stdin\n"
     "      without --password; only its SCRAM verifier is sent)"},
    {"checkpoint", ctl_cmd_checkpoint,
     "checkpoint [--node ID] [--json] [--timeout SECONDS]   (checkpoint every replica now;\n"
     "      answered per node when its round is done; default timeout 600 s)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ninesctl --config FILE COMMAND ...\n"
               "       ninesctl keygen FILE [--force]   (a new cluster key, mode 0600)\n"
               "       ninesctl sql-verifier NAME [--password P] [--iterations N]   (the\n"
               "           cluster-file line sql_user NAME SCRAM-SHA-256$...; the password\n"
               "           from stdin without --password)\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %s\n", commands[i].help);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ninesctl: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i < argc && !strcmp(argv[i], "keygen"))
        return ctl_cmd_keygen(argc - i - 1, argv + i + 1);
    if (i < argc && !strcmp(argv[i], "sql-verifier"))
        return ctl_cmd_sql_verifier(argc - i - 1, argv + i + 1);
    if (!config || i >= argc) {
        usage(stderr);
        return 2;
    }
    static struct nines_conf conf;
    if (nines_conf_load(config, &conf)) {
        fprintf(stderr, "ninesctl: %s\n", nines_errdetail());
        return 2;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (!strcmp(argv[i], commands[k].name))
            return commands[k].fn(&conf, argc - i - 1, argv + i + 1);
    fprintf(stderr, "ninesctl: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return 2;
}
