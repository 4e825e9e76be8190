/* Cluster-key challenge-response: nonces, proofs, constant-time check
 * (OpenSSL libcrypto). net/README.md "Handshake". */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#include "nines/errors.h"

int net_auth_nonce(uint8_t out[NET_NONCE_BYTES])
{
    if (RAND_bytes(out, NET_NONCE_BYTES) != 1)
        return nines_err(NINES_ESYS, "RAND_bytes failed: no random challenge");
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int net_auth_proof(const uint8_t key[NINES_KEY_BYTES], enum net_auth_side side,
                   const char *cluster, uint32_t role, uint32_t connector, uint32_t acceptor,
                   const uint8_t nc[NET_NONCE_BYTES], const uint8_t na[NET_NONCE_BYTES],
                   uint8_t out[NET_PROOF_BYTES])
{
    /* labels include their NUL so neither is a prefix of the other's input */
    static const char lab_a[] = "ninesdb hello acceptor";
    static const char lab_c[] = "ninesdb hello connector";
    uint8_t in[sizeof lab_c + 4 + NINES_NAME_MAX + 12 + 2 * NET_NONCE_BYTES];
    size_t n = 0, cl = strnlen(cluster, NINES_NAME_MAX);
    const char *lab = side == NET_AUTH_ACCEPTOR ? lab_a : lab_c;
    size_t ll = side == NET_AUTH_ACCEPTOR ? sizeof lab_a : sizeof lab_c;
    memcpy(in + n, lab, ll);
    n += ll;
    put_u32(in + n, (uint32_t)cl);
    n += 4;
    memcpy(in + n, cluster, cl);
    n += cl;
    put_u32(in + n, role);
    put_u32(in + n + 4, connector);
    put_u32(in + n + 8, acceptor);
    n += 12;
    memcpy(in + n, nc, NET_NONCE_BYTES);
    n += NET_NONCE_BYTES;
    memcpy(in + n, na, NET_NONCE_BYTES);
    n += NET_NONCE_BYTES;
    unsigned int olen = 0;
    if (!HMAC(EVP_sha256(), key, NINES_KEY_BYTES, in, n, out, &olen) || olen != NET_PROOF_BYTES)
        return nines_err(NINES_ESYS, "HMAC-SHA-256 failed");
    return 0;
}

bool net_auth_check(const uint8_t want[NET_PROOF_BYTES], const uint8_t *got, size_t got_len)
{
    if (!got || got_len != NET_PROOF_BYTES)
        return false;
    return CRYPTO_memcmp(want, got, NET_PROOF_BYTES) == 0;
}
