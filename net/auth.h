/* Cluster-key challenge-response of the HELLO handshake (module-internal).
 * Message sequence and the exact MAC input: net/README.md "Handshake". */
#ifndef NINES_NET_AUTH_H
#define NINES_NET_AUTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define NET_NONCE_BYTES 32
#define NET_PROOF_BYTES 32

enum net_auth_side { NET_AUTH_ACCEPTOR = 0, NET_AUTH_CONNECTOR = 1 };

/* A fresh random challenge (OpenSSL RAND_bytes). 0 or NINES_ESYS. */
int net_auth_nonce(uint8_t out[NET_NONCE_BYTES]);

/* HMAC-SHA-256(key, label(side) || u32 len(cluster) || cluster || u32 role ||
 * u32 connector id || u32 acceptor id || nc || na), integers little-endian.
 * The two sides' labels differ, so one side's proof never serves as the
 * other's. 0 or NINES_ESYS. */
int net_auth_proof(const uint8_t key[NINES_KEY_BYTES], enum net_auth_side side,
                   const char *cluster, uint32_t role, uint32_t connector, uint32_t acceptor,
                   const uint8_t nc[NET_NONCE_BYTES], const uint8_t na[NET_NONCE_BYTES],
                   uint8_t out[NET_PROOF_BYTES]);

/* Does `got` (got_len bytes, from the network) equal the expected proof?
 * Constant time in the proof's bytes (CRYPTO_memcmp). */
bool net_auth_check(const uint8_t want[NET_PROOF_BYTES], const uint8_t *got, size_t got_len);
#endif
