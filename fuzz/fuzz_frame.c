/* A peer's bytes as a node receives them: the length-prefixed frame
 * decoder (net/frame.c, fed in pieces of varying size like reads), the
 * Envelope parse (net/envelope.c) and, for a type in the node's message
 * table (supervisor/sup_msgtab.c), the body unpacked with that row's
 * descriptor into a per-message arena, as runtime/rt_sched.c rt_on_msg
 * does. The handshake's bodies (HELLO_REQ/CONF/REF/AUTH), which the
 * endpoint unpacks itself before a connection is a node's or a client's
 * (net/endpoint.c), are unpacked with their descriptors. An unpacked body
 * is packed again (what a forwarding task does). */
#include "fuzz.h"

#include <stdlib.h>

#include "arena.h"
#include "nines_net.pb-c.h"
#include "net/frame.h"
#include "net/net.h"
#include "runtime/rt.h"
#include "supervisor/sup.h"

static int on_frame(void *ctx, const uint8_t *f, size_t len)
{
    (void)ctx;
    struct net_msg_in in = {0};
    if (net_env_parse(f, len, &in) < 0)
        return 0;
    const ProtobufCMessageDescriptor *desc = NULL;
    switch (in.type) {
    case NINES__MSG_TYPE__HELLO_REQ: desc = &nines__hello_req__descriptor; break;
    case NINES__MSG_TYPE__HELLO_CONF: desc = &nines__hello_conf__descriptor; break;
    case NINES__MSG_TYPE__HELLO_REF: desc = &nines__hello_ref__descriptor; break;
    case NINES__MSG_TYPE__HELLO_AUTH: desc = &nines__hello_auth__descriptor; break;
    default:
        if (in.type < sup_msgtab_len && sup_msgtab[in.type].svc != RT_SVC_NONE)
            desc = sup_msgtab[in.type].desc;
    }
    if (!desc)
        return 0;
    struct arena a;
    arena_init(&a, 4096);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(desc, arena_pb_allocator(&a), in.body_len, in.body);
    if (m) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *out = malloc(n ? n : 1);
        if (out) {
            (void)protobuf_c_message_pack(m, out);
            free(out);
        }
    }
    arena_destroy(&a);
    return 0;
}

int fuzz_frame(const uint8_t *data, size_t len)
{
    struct net_fdec d;
    net_fdec_init(&d, 1u << 20);
    /* read sizes vary: 1, 2, 3, ... 64, then again */
    size_t off = 0, step = 1;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        if (net_fdec_feed(&d, data + off, n, on_frame, NULL) != 0)
            break;
        off += n;
        step = step % 64 + 1;
    }
    (void)net_fdec_eof(&d);
    net_fdec_free(&d);
    return 0;
}
