/* Envelope codec: hand-written protobuf wire format for nines.Envelope so
 * the body can be packed straight into the transport's send buffer and
 * parsed back without allocating. Byte-identical to protobuf-c's own
 * packing (proto3: zero scalars and an empty body are omitted; fields in
 * number order). Layout table: net/README.md "Envelope format". */
#include "envelope.h"
#include "net.h"

#include "nassert.h"
#include "nines/errors.h"

/* Field numbers and wire types of nines.Envelope (proto/nines_net.proto). */
enum {
    ENV_F_VERSION = 1,
    ENV_F_SENDER = 2,
    ENV_F_EPOCH = 3,
    ENV_F_TYPE = 4,
    ENV_F_BODY = 5,
};
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

#define ENV_TAG(f, wt) ((uint8_t)(((f) << 3) | (wt)))
#define VARINT_MAX 10u

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Decode a varint at buf[*pos..len). 0 or NINES_EPROTO. */
static int varint_get(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out, const char *what)
{
    uint64_t v = 0;
    size_t i = *pos;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (i >= len)
            return nines_err(NINES_EPROTO, "envelope: %s varint runs past the end at offset %zu",
                             what, i);
        uint8_t b = buf[i++];
        if (shift == 63 && b > 1)
            return nines_err(NINES_EPROTO, "envelope: %s varint overflows 64 bits at offset %zu",
                             what, *pos);
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pos = i;
            *out = v;
            return 0;
        }
    }
    return nines_err(NINES_EPROTO, "envelope: %s varint longer than %u bytes at offset %zu", what,
                     VARINT_MAX, *pos);
}

size_t net_env_size(uint32_t sender, uint64_t epoch, uint32_t type, size_t body_len)
{
    size_t n = 1 + varint_size(NINES__PROTO_VERSION__PROTO_VERSION_CURRENT);
    if (sender)
        n += 1 + varint_size(sender);
    if (epoch)
        n += 1 + varint_size(epoch);
    if (type)
        n += 1 + varint_size(type);
    if (body_len)
        n += 1 + varint_size(body_len) + body_len;
    return n;
}

size_t net_env_pack(uint8_t *out, uint32_t sender, uint64_t epoch, uint32_t type,
                    const ProtobufCMessage *body, size_t body_len)
{
    uint8_t *p = out;
    *p++ = ENV_TAG(ENV_F_VERSION, WT_VARINT);
    p = varint_put(p, NINES__PROTO_VERSION__PROTO_VERSION_CURRENT);
    if (sender) {
        *p++ = ENV_TAG(ENV_F_SENDER, WT_VARINT);
        p = varint_put(p, sender);
    }
    if (epoch) {
        *p++ = ENV_TAG(ENV_F_EPOCH, WT_VARINT);
        p = varint_put(p, epoch);
    }
    if (type) {
        *p++ = ENV_TAG(ENV_F_TYPE, WT_VARINT);
        p = varint_put(p, type);
    }
    if (body_len) {
        N_ASSERT(body != NULL);
        *p++ = ENV_TAG(ENV_F_BODY, WT_LEN);
        p = varint_put(p, body_len);
        size_t got = protobuf_c_message_pack(body, p);
        N_ASSERT(got == body_len);
        p += got;
    }
    size_t n = (size_t)(p - out);
    N_DASSERT(n == net_env_size(sender, epoch, type, body_len));
    return n;
}

/* Skip the value of an unknown field. 0 or NINES_EPROTO. */
static int env_skip(const uint8_t *buf, size_t len, size_t *pos, uint32_t field, unsigned wt)
{
    uint64_t v;
    int rc;
    switch (wt) {
    case WT_VARINT:
        return varint_get(buf, len, pos, &v, "unknown field");
    case WT_I64:
        if (len - *pos < 8)
            return nines_err(NINES_EPROTO, "envelope: field %u (fixed64) truncated at offset %zu",
                             field, *pos);
        *pos += 8;
        return 0;
    case WT_I32:
        if (len - *pos < 4)
            return nines_err(NINES_EPROTO, "envelope: field %u (fixed32) truncated at offset %zu",
                             field, *pos);
        *pos += 4;
        return 0;
    case WT_LEN:
        rc = varint_get(buf, len, pos, &v, "length");
        if (rc)
            return rc;
        if (v > len - *pos)
            return nines_err(NINES_EPROTO,
                             "envelope: field %u length %llu runs past the end (%zu bytes left)",
                             field, (unsigned long long)v, len - *pos);
        *pos += (size_t)v;
        return 0;
    case WT_SGROUP:
    case WT_EGROUP:
        return nines_err(NINES_EPROTO, "envelope: field %u uses group wire type %u", field, wt);
    default:
        return nines_err(NINES_EPROTO, "envelope: field %u has invalid wire type %u", field, wt);
    }
}

int net_env_parse_ver(const uint8_t *buf, size_t len, struct net_msg_in *out, uint32_t *version_out)
{
    uint32_t version = 0;
    out->from = 0;
    out->sender = 0;
    out->epoch = 0;
    out->type = 0;
    out->body = NULL;
    out->body_len = 0;
    size_t pos = 0;
    while (pos < len) {
        uint64_t key, v;
        size_t at = pos;
        int rc = varint_get(buf, len, &pos, &key, "field key");
        if (rc)
            return rc;
        uint64_t field = key >> 3;
        unsigned wt = (unsigned)(key & 7);
        if (field == 0 || field > 0x1fffffff)
            return nines_err(NINES_EPROTO, "envelope: invalid field number %llu at offset %zu",
                             (unsigned long long)field, at);
        switch (field) {
        case ENV_F_VERSION:
        case ENV_F_SENDER:
        case ENV_F_EPOCH:
        case ENV_F_TYPE:
            if (wt != WT_VARINT)
                return nines_err(NINES_EPROTO,
                                 "envelope: field %llu has wire type %u, expected varint",
                                 (unsigned long long)field, wt);
            rc = varint_get(buf, len, &pos, &v, "field value");
            if (rc)
                return rc;
            /* uint32 fields keep the low 32 bits, as protobuf does. */
            if (field == ENV_F_VERSION)
                version = (uint32_t)v;
            else if (field == ENV_F_SENDER)
                out->sender = (uint32_t)v;
            else if (field == ENV_F_EPOCH)
                out->epoch = v;
            else
                out->type = (uint32_t)v;
            break;
        case ENV_F_BODY:
            if (wt != WT_LEN)
                return nines_err(NINES_EPROTO,
                                 "envelope: body has wire type %u, expected length-delimited", wt);
            rc = varint_get(buf, len, &pos, &v, "body length");
            if (rc)
                return rc;
            if (v > len - pos)
                return nines_err(NINES_EPROTO,
                                 "envelope: body length %llu runs past the end (%zu bytes left)",
                                 (unsigned long long)v, len - pos);
            out->body = buf + pos;
            out->body_len = (size_t)v;
            pos += (size_t)v;
            break;
        default:
            rc = env_skip(buf, len, &pos, (uint32_t)field, wt);
            if (rc)
                return rc;
            break;
        }
    }
    *version_out = version;
    return 0;
}

int net_env_parse(const uint8_t *buf, size_t len, struct net_msg_in *out)
{
    uint32_t version;
    int rc = net_env_parse_ver(buf, len, out, &version);
    if (rc)
        return rc;
    if (version != NINES__PROTO_VERSION__PROTO_VERSION_CURRENT)
        return nines_err(NINES_EVERSION, "envelope: protocol version %u, expected %u", version,
                         (unsigned)NINES__PROTO_VERSION__PROTO_VERSION_CURRENT);
    return 0;
}
