/* Placement report for `ninesctl placement`: per-fragment replicas,
 * per-node counts and the cross-site pair matrix, as text or JSON
 * (dict/README.md "Placement report"). */
#include "dict.h"
#include "dict_int.h"

#include "nines/errors.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Output to a caller buffer (snprintf semantics) or a FILE. */
struct sink {
    char *buf;
    size_t cap, len;
    FILE *f;
    bool ioerr;
    bool show_live;     /* add the effective primary over `live` */
    dict_liveset live;
};

__attribute__((format(printf, 2, 3))) static void out(struct sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (s->f) {
        if (vfprintf(s->f, fmt, ap) < 0)
            s->ioerr = true;
    } else {
        char *dst = s->len < s->cap ? s->buf + s->len : NULL;
        size_t room = s->len < s->cap ? s->cap - s->len : 0;
        int n = vsnprintf(dst, room, fmt, ap);
        if (n > 0)
            s->len += (size_t)n;
    }
    va_end(ap);
}

static const char *method_name(uint32_t m)
{
    switch (m) {
    case DICT_FRAG_HASH:
        return "hash";
    case DICT_FRAG_RANGE:
        return "range";
    default:
        return "?";
    }
}

static const char *scheme_name(uint32_t s)
{
    switch (s) {
    case DICT_PLACE_MISD:
        return "misd";
    case DICT_PLACE_CIRCULAR:
        return "circular";
    default:
        return "?";
    }
}

static void text(struct sink *s, const struct dict *d, const struct dict_table *t,
                 const struct dict_place_stats *st)
{
    out(s, "table '%s' (id %u): %s, %u fragments, %u replicas, scheme %s, dictionary version "
        "%llu\n\n", t->def.name, t->id, method_name(t->def.method), t->nfrags, t->def.replicas,
        scheme_name(t->def.scheme), (unsigned long long)d->version);
    if (s->show_live) {
        out(s, "live nodes:");
        for (uint32_t i = 0; i < d->nnodes; i++)
            if (s->live & DICT_LIVE(d->nodes[i].id))
                out(s, " %u", d->nodes[i].id);
        out(s, "\n\n");
    }
    out(s, "fragment  primary  standby%s\n", s->show_live ? "  effective" : "");
    for (uint32_t f = 0; f < t->nfrags; f++) {
        char sb[24] = "-", eff[16] = "";
        if (t->frags[f].standby)
            snprintf(sb, sizeof sb, "%u%s", t->frags[f].standby,
                     t->frags[f].standby_state == DICT_REP_BUILDING ? " (building)" : "");
        if (s->show_live) {
            uint32_t node;
            if (dict_effective_primary(t, f, s->live, &node) == 0)
                snprintf(eff, sizeof eff, "  %9u", node);
            else
                snprintf(eff, sizeof eff, "  %9s", "none");
        }
        out(s, "%8u  %7u  %7s%s\n", f, t->frags[f].primary, sb, eff);
    }
    out(s, "\nnode  site  primaries  standbys\n");
    for (uint32_t i = 0; i < st->nnodes; i++)
        out(s, "%4u  %4u  %9u  %8u\n", st->node[i].id, st->node[i].site, st->primaries[i],
            st->standbys[i]);
    uint32_t p = st->nsite[0], n = st->nnodes;
    if (t->def.replicas < 2 || p == 0 || p == n) {
        out(s, "\n(no hot standbys: no pair matrix)\n");
        return;
    }
    out(s, "\nfragments shared per cross-site pair: total (site-0 node primary / site-1 node "
        "primary)\nsite0\\site1");
    for (uint32_t j = p; j < n; j++)
        out(s, " %10u", st->node[j].id);
    out(s, "\n");
    for (uint32_t i = 0; i < p; i++) {
        out(s, "%11u", st->node[i].id);
        for (uint32_t j = p; j < n; j++) {
            char cell[32];
            snprintf(cell, sizeof cell, "%u (%u/%u)", st->dir[i][j] + st->dir[j][i],
                     st->dir[i][j], st->dir[j][i]);
            out(s, " %10s", cell);
        }
        out(s, "\n");
    }
    out(s, "\nlargest pair count %u, least possible %u; fragments with both replicas at one "
        "site: %u\n", st->max_pair, st->min_pair_bound, st->same_site);
}

static void json(struct sink *s, const struct dict *d, const struct dict_table *t,
                 const struct dict_place_stats *st)
{
    /* names are identifiers (dict_name_check), so they need no escaping */
    out(s, "{\"table\":\"%s\",\"id\":%u,\"dict_version\":%llu,\"method\":\"%s\","
        "\"scheme\":\"%s\",\"replicas\":%u,\"fragments\":[", t->def.name, t->id,
        (unsigned long long)d->version, method_name(t->def.method),
        scheme_name(t->def.scheme), t->def.replicas);
    for (uint32_t f = 0; f < t->nfrags; f++) {
        out(s, "%s{\"fragment\":%u,\"primary\":%u,\"standby\":", f ? "," : "", f,
            t->frags[f].primary);
        if (t->frags[f].standby)
            out(s, "%u", t->frags[f].standby);
        else
            out(s, "null");
        if (t->frags[f].standby_state == DICT_REP_BUILDING)
            out(s, ",\"standby_state\":\"building\"");
        uint32_t node;
        if (s->show_live && dict_effective_primary(t, f, s->live, &node) == 0)
            out(s, ",\"effective\":%u}", node);
        else
            out(s, s->show_live ? ",\"effective\":null}" : "}");
    }
    out(s, "],\"nodes\":[");
    for (uint32_t i = 0; i < st->nnodes; i++)
        out(s, "%s{\"id\":%u,\"site\":%u,\"primaries\":%u,\"standbys\":%u}", i ? "," : "",
            st->node[i].id, st->node[i].site, st->primaries[i], st->standbys[i]);
    out(s, "],\"pairs\":[");
    uint32_t p = st->nsite[0], n = st->nnodes;
    bool first = true;
    for (uint32_t i = 0; i < p && t->def.replicas == 2; i++)
        for (uint32_t j = p; j < n; j++) {
            out(s, "%s{\"a\":%u,\"b\":%u,\"a_primary\":%u,\"b_primary\":%u,\"shared\":%u}",
                first ? "" : ",", st->node[i].id, st->node[j].id, st->dir[i][j], st->dir[j][i],
                st->dir[i][j] + st->dir[j][i]);
            first = false;
        }
    out(s, "],\"max_pair\":%u,\"min_pair\":%u,\"same_site\":%u", st->max_pair,
        st->min_pair_bound, st->same_site);
    if (s->show_live) {
        out(s, ",\"live\":[");
        first = true;
        for (uint32_t i = 0; i < d->nnodes; i++)
            if (s->live & DICT_LIVE(d->nodes[i].id)) {
                out(s, "%s%u", first ? "" : ",", d->nodes[i].id);
                first = false;
            }
        out(s, "]");
    }
    out(s, "}\n");
}

static int report(const struct dict *d, const struct dict_table *t, uint32_t fmt,
                  struct sink *s)
{
    struct dict_place_stats *st = malloc(sizeof *st);
    if (st == NULL)
        return nines_err(NINES_ENOMEM, "no memory for placement statistics");
    int rc = dict_place_stats(d->nodes, d->nnodes, t->frags, t->nfrags, st);
    if (rc == 0) {
        switch (fmt) {
        case DICT_REPORT_TEXT:
            text(s, d, t, st);
            break;
        case DICT_REPORT_JSON:
            json(s, d, t, st);
            break;
        default:
            rc = nines_err(NINES_EINVAL, "unknown report format %u", fmt);
        }
    }
    free(st);
    if (rc < 0)
        return rc;
    if (s->ioerr)
        return nines_err(NINES_EIO, "writing the placement report failed");
    if (s->len > (size_t)INT32_MAX)
        return nines_err(NINES_ETOOBIG, "placement report of %zu bytes", s->len);
    return (int)s->len;
}

int dict_report(const struct dict *d, const struct dict_table *t, uint32_t fmt, char *buf,
                size_t cap)
{
    struct sink s = {.buf = buf, .cap = cap};
    if (cap)
        buf[0] = '\0';
    return report(d, t, fmt, &s);
}

int dict_report_file(const struct dict *d, const struct dict_table *t, uint32_t fmt, FILE *f)
{
    struct sink s = {.f = f};
    int rc = report(d, t, fmt, &s);
    return rc < 0 ? rc : 0;
}

int dict_report_live(const struct dict *d, const struct dict_table *t, uint32_t fmt,
                     dict_liveset live, char *buf, size_t cap)
{
    struct sink s = {.buf = buf, .cap = cap, .show_live = true, .live = live};
    if (cap)
        buf[0] = '\0';
    return report(d, t, fmt, &s);
}

int dict_report_live_file(const struct dict *d, const struct dict_table *t, uint32_t fmt,
                          dict_liveset live, FILE *f)
{
    struct sink s = {.f = f, .show_live = true, .live = live};
    int rc = report(d, t, fmt, &s);
    return rc < 0 ? rc : 0;
}
