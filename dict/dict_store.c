/* Dictionary file: encode, decode with full validation, atomic save and
 * load (dict/README.md "File format", "Crash behaviour"). */
#include "nfile.h"
#include "dict.h"
#include "dict_int.h"

#include "crc32c.h"
#include "nassert.h"
#include "nines/errors.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DICT_FILE_MAGIC   0x4349444eU /* "NDIC" as bytes on disk */
#define DICT_FILE_VERSION 4    /* written; 1 (no replica states), 2 (no SQL
                                * attributes, no table flags) and 3 (no users)
                                * are still read */
#define DICT_FILE_VERSION_MIN 1
#define DICT_HDR_SIZE     32
#define DICT_FILE_MAX     (64u << 20)

/* On-disk header; all fields little-endian, written byte by byte. */
struct dict_file_hdr {
    uint32_t magic;
    uint16_t format;
    uint16_t hdr_size;
    uint64_t version;
    uint32_t payload_len;
    uint32_t payload_crc;
    uint32_t reserved;
    uint32_t hdr_crc; /* CRC-32C of bytes 0..27 */
};
_Static_assert(sizeof(struct dict_file_hdr) == DICT_HDR_SIZE, "header layout");
_Static_assert(offsetof(struct dict_file_hdr, version) == 8, "header layout");
_Static_assert(offsetof(struct dict_file_hdr, payload_len) == 16, "header layout");
_Static_assert(offsetof(struct dict_file_hdr, payload_crc) == 20, "header layout");
_Static_assert(offsetof(struct dict_file_hdr, hdr_crc) == 28, "header layout");

/* Table flags (the byte after `replicas`, format 3; 0 before) and column
 * flags (bit 1 from format 3). */
#define DICT_TFLAG_READONLY 0x01u
#define DICT_CFLAG_NULLABLE 0x01u
#define DICT_CFLAG_HIDDEN   0x02u  /* format 3 */

/* A column record after its name (dict/README.md "File format"), format 3;
 * format 1 and 2 records end after `size` (6 bytes). Written field by
 * field; the struct pins the offsets the README table states. */
struct dict_file_col {
    uint8_t type;
    uint8_t flags;
    uint8_t size[4];
    uint8_t sqltype[4];   /* format 3 */
    uint8_t sqltypmod[4]; /* format 3, two's complement */
};
_Static_assert(sizeof(struct dict_file_col) == 14, "column record layout");
_Static_assert(offsetof(struct dict_file_col, size) == 2, "column record layout");
_Static_assert(offsetof(struct dict_file_col, sqltype) == 6, "column record layout");
_Static_assert(offsetof(struct dict_file_col, sqltypmod) == 10, "column record layout");

/* A user record after its name (dict/README.md "File format", format 4):
 * role, reserved byte, verifier length, then the verifier's bytes. */
struct dict_file_user {
    uint8_t role;
    uint8_t reserved;     /* 0 */
    uint8_t vlen[2];
};
_Static_assert(sizeof(struct dict_file_user) == 4, "user record layout");
_Static_assert(offsetof(struct dict_file_user, reserved) == 1, "user record layout");
_Static_assert(offsetof(struct dict_file_user, vlen) == 2, "user record layout");

/* ---- little-endian writer ------------------------------------------- */
struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

static void w_bytes(struct wbuf *w, const void *b, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n > w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 4096;
        while (nc < w->len + n)
            nc *= 2;
        uint8_t *np = realloc(w->p, nc);
        if (np == NULL) {
            w->oom = true;
            return;
        }
        w->p = np;
        w->cap = nc;
    }
    memcpy(w->p + w->len, b, n);
    w->len += n;
}

static void w_le(struct wbuf *w, uint64_t v, unsigned n)
{
    uint8_t b[8];
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, n);
}
#define W8(w, v)  w_le(w, v, 1)
#define W16(w, v) w_le(w, v, 2)
#define W32(w, v) w_le(w, v, 4)
#define W64(w, v) w_le(w, v, 8)

static void w_name(struct wbuf *w, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    W8(w, n);
    w_bytes(w, s, n);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int encode(const struct dict *d, bool with_users, uint8_t **out, size_t *len)
{
    struct wbuf w = {0};
    w_bytes(&w, (uint8_t[DICT_HDR_SIZE]){0}, DICT_HDR_SIZE);
    W32(&w, d->next_table_id);
    W32(&w, d->nnodes);
    for (uint32_t i = 0; i < d->nnodes; i++) {
        W32(&w, d->nodes[i].id);
        W32(&w, d->nodes[i].site);
    }
    W32(&w, d->ntables);
    for (uint32_t i = 0; i < d->ntables; i++) {
        const struct dict_table *t = d->tables[i];
        W32(&w, t->id);
        w_name(&w, t->def.name, sizeof t->def.name);
        W8(&w, t->def.method);
        W8(&w, t->def.scheme);
        W8(&w, t->def.replicas);
        W8(&w, t->readonly ? DICT_TFLAG_READONLY : 0); /* format 3 */
        W32(&w, t->nfrags);
        W16(&w, t->def.ncols);
        for (uint32_t c = 0; c < t->def.ncols; c++) {
            const struct dict_column *col = &t->def.cols[c];
            w_name(&w, col->name, sizeof col->name);
            W8(&w, col->type);
            W8(&w, (col->nullable ? DICT_CFLAG_NULLABLE : 0) |
                       (col->hidden ? DICT_CFLAG_HIDDEN : 0));
            W32(&w, col->size);
            W32(&w, col->sqltype);                 /* format 3 */
            W32(&w, (uint32_t)col->sqltypmod);
        }
        W8(&w, t->def.npk);
        for (uint32_t k = 0; k < t->def.npk; k++)
            W16(&w, t->def.pk[k]);
        W32(&w, t->def.nsplits);
        for (uint32_t s = 0; s < t->def.nsplits; s++) {
            W16(&w, t->def.splits[s].len);
            w_bytes(&w, t->def.splits[s].bytes, t->def.splits[s].len);
        }
        for (uint32_t f = 0; f < t->nfrags; f++) {
            W32(&w, t->frags[f].primary);
            W32(&w, t->frags[f].standby);
            W8(&w, t->frags[f].standby_state); /* format 2 */
            W8(&w, 0);
            W16(&w, 0);
        }
    }
    /* format 4: the users (none in the public image) */
    uint32_t nu = with_users ? d->nusers : 0;
    W32(&w, nu);
    for (uint32_t i = 0; i < nu; i++) {
        const struct dict_user *u = &d->users[i];
        w_name(&w, u->name, sizeof u->name);
        W8(&w, u->role);
        W8(&w, 0);
        size_t vl = strnlen(u->verifier, sizeof u->verifier);
        W16(&w, vl);
        w_bytes(&w, u->verifier, vl);
    }
    if (w.oom) {
        free(w.p);
        return nines_err(NINES_ENOMEM, "no memory to encode the dictionary");
    }
    if (w.len - DICT_HDR_SIZE > DICT_FILE_MAX) {
        free(w.p);
        return nines_err(NINES_ETOOBIG, "dictionary encodes to %zu bytes, above %u", w.len,
                         DICT_FILE_MAX);
    }
    uint32_t plen = (uint32_t)(w.len - DICT_HDR_SIZE);
    uint8_t *h = w.p;
    put_le(h + 0, DICT_FILE_MAGIC, 4);
    put_le(h + 4, DICT_FILE_VERSION, 2);
    put_le(h + 6, DICT_HDR_SIZE, 2);
    put_le(h + 8, d->version, 8);
    put_le(h + 16, plen, 4);
    put_le(h + 20, crc32c(0, h + DICT_HDR_SIZE, plen), 4);
    put_le(h + 24, 0, 4);
    put_le(h + 28, crc32c(0, h, 28), 4);
    *out = w.p;
    *len = w.len;
    return 0;
}

int dict_encode(const struct dict *d, uint8_t **out, size_t *len)
{
    return encode(d, true, out, len);
}

int dict_encode_public(const struct dict *d, uint8_t **out, size_t *len)
{
    return encode(d, false, out, len);
}

/* ---- bounds-checked reader ------------------------------------------ */
struct rbuf {
    const uint8_t *p;
    size_t len, off;
    bool bad;
    uint32_t format;            /* the file's format version */
};

static uint64_t r_le(struct rbuf *r, unsigned n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return 0;
    }
    uint64_t v = get_le(r->p + r->off, n);
    r->off += n;
    return v;
}
#define R8(r)  ((uint32_t)r_le(r, 1))
#define R16(r) ((uint32_t)r_le(r, 2))
#define R32(r) ((uint32_t)r_le(r, 4))

static const uint8_t *r_bytes(struct rbuf *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static void r_name(struct rbuf *r, char *out, size_t cap)
{
    uint32_t n = R8(r);
    const uint8_t *b = r_bytes(r, n);
    if (b == NULL || n >= cap) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, b, n);
    out[n] = '\0';
}

/* Read one table into *out; structural problems set r->bad, semantic ones
 * return NINES_ECORRUPT with a detail. */
static int read_table(struct rbuf *r, const struct dict *d, struct dict_table **out)
{
    struct dict_table_def def;
    memset(&def, 0, sizeof def);
    uint32_t id = R32(r);
    r_name(r, def.name, sizeof def.name);
    def.method = R8(r);
    def.scheme = R8(r);
    def.replicas = R8(r);
    uint32_t tflags = R8(r);
    uint32_t tflags_ok = r->format >= 3 ? DICT_TFLAG_READONLY : 0;
    uint32_t nfrags = R32(r);
    def.ncols = R16(r);
    if (r->bad)
        return NINES_ECORRUPT;
    if (tflags & ~tflags_ok)
        return nines_err(NINES_ECORRUPT, "table %u: unknown table flags 0x%x (format %u)", id,
                         tflags, r->format);
    if (def.ncols > DICT_MAX_COLS || nfrags > DICT_MAX_FRAGS || nfrags == 0)
        return nines_err(NINES_ECORRUPT, "table %u: %u columns / %u fragments out of range", id,
                         def.ncols, nfrags);
    struct dict_column cols[DICT_MAX_COLS];
    uint16_t pk[DICT_MAX_PK];
    memset(cols, 0, def.ncols * sizeof *cols);
    for (uint32_t c = 0; c < def.ncols; c++) {
        r_name(r, cols[c].name, sizeof cols[c].name);
        cols[c].type = R8(r);
        uint32_t flags = R8(r);
        cols[c].nullable = flags & DICT_CFLAG_NULLABLE;
        cols[c].hidden = flags & DICT_CFLAG_HIDDEN;
        cols[c].size = R32(r);
        cols[c].sqltypmod = -1;
        if (r->format >= 3) {
            cols[c].sqltype = R32(r);
            cols[c].sqltypmod = (int32_t)R32(r);
        }
        uint32_t known = DICT_CFLAG_NULLABLE | (r->format >= 3 ? DICT_CFLAG_HIDDEN : 0);
        if (flags & ~known)
            return nines_err(NINES_ECORRUPT, "table %u column %u: unknown flags 0x%x (format %u)",
                             id, c, flags, r->format);
    }
    def.cols = cols;
    def.npk = R8(r);
    if (def.npk > DICT_MAX_PK)
        return nines_err(NINES_ECORRUPT, "table %u: %u primary key columns", id, def.npk);
    for (uint32_t k = 0; k < def.npk; k++)
        pk[k] = (uint16_t)R16(r);
    def.pk = pk;
    def.nsplits = R32(r);
    if (r->bad)
        return NINES_ECORRUPT;
    if (def.nsplits >= DICT_MAX_FRAGS)
        return nines_err(NINES_ECORRUPT, "table %u: %u split points", id, def.nsplits);
    struct dict_key *sp = def.nsplits ? calloc(def.nsplits, sizeof *sp) : NULL;
    if (def.nsplits && sp == NULL)
        return nines_err(NINES_ENOMEM, "no memory for split points of table %u", id);
    for (uint32_t s = 0; s < def.nsplits; s++) {
        sp[s].len = R16(r);
        sp[s].bytes = r_bytes(r, sp[s].len);
    }
    def.splits = sp;
    def.nfrags = nfrags;
    int rc = r->bad ? NINES_ECORRUPT : dict_table_validate(&def);
    if (rc == NINES_EINVAL)
        rc = dict_err_prefix(NINES_ECORRUPT, "table %u fails validation", id);
    if (rc == 0 && dict_def_nfrags(&def) != nfrags)
        rc = nines_err(NINES_ECORRUPT, "table '%s': %u fragments recorded, definition gives %u",
                       def.name, nfrags, dict_def_nfrags(&def));
    if (rc == 0 && (def.replicas == 0 || def.scheme == 0))
        rc = nines_err(NINES_ECORRUPT, "table '%s': replicas %u / scheme %u not filled in",
                       def.name, def.replicas, def.scheme);
    struct dict_table *t = NULL;
    if (rc == 0 && (t = dict_table_copy(&def)) == NULL)
        rc = nines_err(NINES_ENOMEM, "no memory for table '%s'", def.name);
    free(sp);
    if (rc < 0)
        return rc;
    t->id = id;
    t->readonly = tflags & DICT_TFLAG_READONLY;
    for (uint32_t f = 0; f < nfrags && rc == 0; f++) {
        t->frags[f].primary = R32(r);
        t->frags[f].standby = R32(r);
        uint32_t sst = DICT_REP_READY, pad = 0;
        if (r->format >= 2) {
            sst = R8(r);
            pad = R8(r);
            pad |= R16(r) << 8;
        }
        if (r->bad) {
            rc = NINES_ECORRUPT;
            break;
        }
        if (pad || (sst != DICT_REP_READY && sst != DICT_REP_BUILDING) ||
            (sst == DICT_REP_BUILDING && !t->frags[f].standby)) {
            rc = nines_err(NINES_ECORRUPT, "table '%s' fragment %u: standby state %u (reserved "
                           "0x%x) is not valid for standby node %u", t->def.name, f, sst, pad,
                           t->frags[f].standby);
            break;
        }
        t->frags[f].standby_state = sst;
        int ps = -1, ss = -1;
        for (uint32_t i = 0; i < d->nnodes; i++) {
            if (d->nodes[i].id == t->frags[f].primary)
                ps = (int)d->nodes[i].site;
            if (d->nodes[i].id == t->frags[f].standby)
                ss = (int)d->nodes[i].site;
        }
        bool want_sb = t->def.replicas == 2;
        if (ps < 0 || (want_sb && (ss < 0 || ss == ps)) || (!want_sb && t->frags[f].standby))
            rc = nines_err(NINES_ECORRUPT,
                           "table '%s' fragment %u: replicas on nodes %u and %u are not "
                           "valid for %u replicas at different sites",
                           t->def.name, f, t->frags[f].primary, t->frags[f].standby,
                           t->def.replicas);
    }
    if (rc < 0) {
        dict_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* The users section (format 4): count, then records ascending by name,
 * each checked as dict_user_create checks it. */
static int read_users(struct rbuf *r, struct dict *d)
{
    uint32_t nu = R32(r);
    if (r->bad)
        return NINES_ECORRUPT;
    if (nu > DICT_MAX_USERS)
        return nines_err(NINES_ECORRUPT, "user count %u above %d", nu, DICT_MAX_USERS);
    if (nu == 0)
        return 0;
    d->users = calloc(nu, sizeof *d->users);
    if (!d->users)
        return nines_err(NINES_ENOMEM, "no memory for %u users", nu);
    for (uint32_t i = 0; i < nu; i++) {
        struct dict_user *u = &d->users[i];
        r_name(r, u->name, sizeof u->name);
        u->role = R8(r);
        uint32_t reserved = R8(r);
        uint32_t vl = R16(r);
        const uint8_t *v = r_bytes(r, vl);
        if (r->bad)
            return NINES_ECORRUPT;
        d->nusers = i + 1; /* freed with d from here on */
        if (vl > DICT_VERIFIER_MAX || reserved)
            return nines_err(NINES_ECORRUPT, "user %u '%s': verifier of %u bytes (at most %d), "
                             "reserved byte 0x%x", i, u->name, vl, DICT_VERIFIER_MAX, reserved);
        memcpy(u->verifier, v, vl);
        u->verifier[vl] = '\0';
        int rc = dict_user_name_check(u->name);
        if (rc == 0 && (u->role < DICT_ROLE_FIRST || u->role > DICT_ROLE_LAST))
            rc = nines_err(NINES_EINVAL, "role %u is not a role", u->role);
        if (rc == 0 && strlen(u->verifier) != vl)
            rc = nines_err(NINES_EINVAL, "verifier holds a NUL byte");
        if (rc == 0)
            rc = dict_verifier_check(u->name, u->verifier);
        if (rc == 0 && i > 0 && strcmp(d->users[i - 1].name, u->name) >= 0)
            rc = nines_err(NINES_EINVAL, "name '%s' does not sort after '%s'", u->name,
                           d->users[i - 1].name);
        if (rc < 0)
            return dict_err_prefix(NINES_ECORRUPT, "user %u", i);
    }
    return 0;
}

static int decode_payload(struct rbuf *r, struct dict *d)
{
    d->next_table_id = R32(r);
    uint32_t nn = R32(r);
    if (r->bad)
        return NINES_ECORRUPT;
    if (nn == 0 || nn > DICT_MAX_NODES)
        return nines_err(NINES_ECORRUPT, "node count %u outside 1..%d", nn, DICT_MAX_NODES);
    for (uint32_t i = 0; i < nn; i++) {
        d->nodes[i].id = R32(r);
        d->nodes[i].site = R32(r);
    }
    d->nnodes = nn;
    if (r->bad)
        return NINES_ECORRUPT;
    int rc = dict_nodes_validate(d->nodes, nn);
    if (rc < 0)
        return dict_err_prefix(NINES_ECORRUPT, "node list");
    uint32_t nt = R32(r);
    if (r->bad)
        return NINES_ECORRUPT;
    if (nt > DICT_MAX_TABLES)
        return nines_err(NINES_ECORRUPT, "table count %u above %d", nt, DICT_MAX_TABLES);
    for (uint32_t i = 0; i < nt; i++) {
        struct dict_table *t = NULL;
        if ((rc = read_table(r, d, &t)) < 0)
            return rc;
        if (t->id == 0 || t->id >= d->next_table_id) {
            rc = nines_err(NINES_ECORRUPT, "table '%s' id %u not below next id %u", t->def.name,
                           t->id, d->next_table_id);
        } else if ((rc = dict_insert_table(d, t)) < 0) {
            rc = dict_err_prefix(NINES_ECORRUPT, "table %u", t->id);
        }
        if (rc < 0) {
            dict_table_free(t);
            return rc;
        }
    }
    if (r->format >= 4 && (rc = read_users(r, d)) < 0)
        return rc;
    if (r->off != r->len)
        return nines_err(NINES_ECORRUPT, "%zu unexpected bytes after the last %s",
                         r->len - r->off, r->format >= 4 ? "user" : "table");
    return 0;
}

int dict_decode(const uint8_t *buf, size_t len, struct dict *d)
{
    memset(d, 0, sizeof *d);
    if (len < DICT_HDR_SIZE)
        return nines_err(NINES_ETRUNC, "dictionary file is %zu bytes, shorter than its %d-byte "
                         "header", len, DICT_HDR_SIZE);
    if (get_le(buf, 4) != DICT_FILE_MAGIC)
        return nines_err(NINES_ECORRUPT, "not a dictionary file: magic 0x%08x, expected 0x%08x",
                         (unsigned)get_le(buf, 4), DICT_FILE_MAGIC);
    uint32_t hcrc = (uint32_t)get_le(buf + 28, 4), want = crc32c(0, buf, 28);
    if (hcrc != want)
        return nines_err(NINES_ECORRUPT, "dictionary header checksum 0x%08x, computed 0x%08x",
                         hcrc, want);
    uint32_t fmt = (uint32_t)get_le(buf + 4, 2), hsz = (uint32_t)get_le(buf + 6, 2);
    if (fmt < DICT_FILE_VERSION_MIN || fmt > DICT_FILE_VERSION)
        return nines_err(NINES_EVERSION, "dictionary file format %u, this build reads %d..%d",
                         fmt, DICT_FILE_VERSION_MIN, DICT_FILE_VERSION);
    if (hsz != DICT_HDR_SIZE || get_le(buf + 24, 4) != 0)
        return nines_err(NINES_ECORRUPT, "dictionary header size %u / reserved field invalid",
                         hsz);
    uint64_t plen = get_le(buf + 16, 4);
    if (plen > DICT_FILE_MAX)
        return nines_err(NINES_ECORRUPT, "dictionary payload length %llu above %u",
                         (unsigned long long)plen, DICT_FILE_MAX);
    if (len - DICT_HDR_SIZE < plen)
        return nines_err(NINES_ETRUNC, "dictionary payload is %zu bytes of the %llu recorded",
                         len - DICT_HDR_SIZE, (unsigned long long)plen);
    if (len - DICT_HDR_SIZE > plen)
        return nines_err(NINES_ECORRUPT, "dictionary file has %zu bytes after its payload",
                         (size_t)(len - DICT_HDR_SIZE - plen));
    uint32_t pcrc = (uint32_t)get_le(buf + 20, 4);
    want = crc32c(0, buf + DICT_HDR_SIZE, plen);
    if (pcrc != want)
        return nines_err(NINES_ECORRUPT, "dictionary payload checksum 0x%08x, computed 0x%08x",
                         pcrc, want);
    struct rbuf r = {.p = buf + DICT_HDR_SIZE, .len = plen, .format = fmt};
    int rc = decode_payload(&r, d);
    if (rc == NINES_ECORRUPT && r.bad)
        rc = nines_err(NINES_ECORRUPT, "dictionary payload ends inside a record at byte %zu",
                       r.off);
    if (rc < 0) {
        dict_free(d);
        return rc;
    }
    d->version = get_le(buf + 8, 8);
    return 0;
}

/* ---- files ------------------------------------------------------------ */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int dict_save_image(const uint8_t *buf, size_t len, const char *path)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return nines_err(NINES_EINVAL, "path '%.64s...' too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return nines_err(NINES_ESYS, "create '%s': %s", tmp, strerror(errno));
    /* A crash anywhere before the rename leaves PATH untouched. */
    int e;
    if (N_FAULT("dict.save.short_write")) /* device full half way */
        e = write_all(fd, buf, len / 2) ? -EIO : -ENOSPC;
    else
        e = write_all(fd, buf, len);
    if (e == 0 && fsync(fd) < 0)
        e = -errno;
    if (close(fd) < 0 && e == 0)
        e = -errno;
    if (e == 0 && N_FAULT("dict.save.before_rename"))
        return nines_err(NINES_EIO, "fault dict.save.before_rename: '%s' left behind", tmp);
    if (e != 0) {
        unlink(tmp);
        return nines_err(NINES_EIO, "write '%s': %s", tmp, strerror(-e));
    }
    if (rename(tmp, path) < 0) {
        int rc = nines_err(NINES_ESYS, "rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return nfile_fsync_dir(path);
}

int dict_save(const struct dict *d, const char *path)
{
    uint8_t *buf;
    size_t len;
    int rc = dict_encode(d, &buf, &len);
    if (rc < 0)
        return rc;
    rc = dict_save_image(buf, len, path);
    free(buf);
    return rc;
}

int dict_clone(const struct dict *src, struct dict *dst)
{
    uint8_t *buf;
    size_t len;
    memset(dst, 0, sizeof *dst);
    int rc = dict_encode(src, &buf, &len);
    if (rc < 0)
        return rc;
    rc = dict_decode(buf, len, dst);
    free(buf);
    return rc;
}

int dict_load(const char *path, struct dict *d)
{
    memset(d, 0, sizeof *d);
    uint8_t *buf;
    size_t len;
    int rc = nfile_read_all(path, DICT_FILE_MAX + DICT_HDR_SIZE, &buf, &len);
    if (rc < 0)
        return rc;
    rc = dict_decode(buf, len, d);
    free(buf);
    if (rc < 0)
        return dict_err_prefix(rc, "'%s'", path);
    return 0;
}
