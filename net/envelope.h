/* Envelope codec internals (internal to net/). */
#ifndef NINES_NET_ENVELOPE_H
#define NINES_NET_ENVELOPE_H
#include <stddef.h>
#include <stdint.h>

#include "nines_net.pb-c.h"
#include "net.h"

/* Like net_env_parse() but accepts any Envelope.version and returns it in
 * *version (0 when absent), so the handshake can refuse a wrong version
 * with HELLO_REF instead of treating it as garbage. net_env_parse() itself
 * returns NINES_EVERSION for a version other than PROTO_VERSION_CURRENT. */
int net_env_parse_ver(const uint8_t *buf, size_t len, struct net_msg_in *out, uint32_t *version);
#endif
