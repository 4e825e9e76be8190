/* SCRAM-SHA-256 server side and verifiers (scram.h; sql/README.md
 * "Authentication"). Written from RFC 5802 section 3 and 7 and RFC 7677:
 *
 *   SaltedPassword  = PBKDF2-HMAC-SHA-256(password, salt, i, 32)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key")
 *   StoredKey       = SHA-256(ClientKey)
 *   ServerKey       = HMAC(SaltedPassword, "Server Key")
 *   AuthMessage     = client-first-message-bare "," server-first-message ","
 *                     client-final-message-without-proof
 *   ClientSignature = HMAC(StoredKey, AuthMessage)
 *   ClientProof     = ClientKey XOR ClientSignature   (the client sends it)
 *   ServerSignature = HMAC(ServerKey, AuthMessage)    (the server sends it)
 *
 * The server recovers ClientKey = ClientProof XOR ClientSignature and
 * checks SHA-256(ClientKey) == StoredKey in constant time. */
#include "scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define SCRAM_RAW_NONCE 18 /* random bytes of the server's nonce part */

int scram_b64_encode(const uint8_t *in, size_t len, char *out, size_t n)
{
    size_t need = (len + 2) / 3 * 4 + 1;
    if (need > n || len > 1u << 20)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

int scram_b64_decode(const char *in, size_t len, uint8_t *out, size_t n)
{
    if (len == 0)
        return 0;
    if (len % 4 || len > 1u << 20)
        return -1;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
        if (ch == '=' && i + 2 >= len)
            pad++;
        else if (!ok || pad)
            return -1;
    }
    size_t bytes = len / 4 * 3;
    uint8_t tmp[SCRAM_MSG_MAX];
    if (bytes > sizeof tmp || bytes - pad > n)
        return -1;
    if (EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len) != (int)bytes)
        return -1;
    memcpy(out, tmp, bytes - pad);
    return (int)(bytes - pad);
}

static int hmac(const uint8_t *key, size_t klen, const void *msg, size_t mlen,
                uint8_t out[SCRAM_KEY_LEN])
{
    unsigned olen = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen) || olen != SCRAM_KEY_LEN)
        return -1;
    return 0;
}

int scram_verifier_parse(const char *text, struct scram_verifier *out)
{
    static const char prefix[] = SCRAM_MECH "$";
    if (strncmp(text, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *it = text + sizeof prefix - 1, *c1 = strchr(it, ':');
    const char *d = c1 ? strchr(c1, '$') : NULL, *c2 = d ? strchr(d, ':') : NULL;
    if (!c1 || !d || !c2 || c1 == it || c1 - it > 9)
        return -1;
    uint32_t iter = 0;
    for (const char *p = it; p < c1; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        iter = iter * 10 + (uint32_t)(*p - '0');
    }
    memset(out, 0, sizeof *out);
    out->iterations = iter;
    int sl = scram_b64_decode(c1 + 1, (size_t)(d - c1 - 1), out->salt, sizeof out->salt);
    if (iter == 0 || sl < 1 ||
        scram_b64_decode(d + 1, (size_t)(c2 - d - 1), out->stored_key, SCRAM_KEY_LEN) !=
            SCRAM_KEY_LEN ||
        scram_b64_decode(c2 + 1, strlen(c2 + 1), out->server_key, SCRAM_KEY_LEN) !=
            SCRAM_KEY_LEN)
        return -1;
    out->salt_len = (size_t)sl;
    return 0;
}

int scram_verifier_make(const char *password, size_t pwlen, const uint8_t *salt,
                        size_t salt_len, uint32_t iterations, char *out, size_t n)
{
    uint8_t rnd[SCRAM_SALT_LEN], salted[SCRAM_KEY_LEN], ck[SCRAM_KEY_LEN];
    uint8_t stored[SCRAM_KEY_LEN], server[SCRAM_KEY_LEN];
    if (!salt) {
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return -1;
        salt = rnd;
        salt_len = sizeof rnd;
    }
    if (salt_len == 0 || salt_len > SCRAM_SALT_MAX || iterations == 0 || pwlen > 1024 ||
        iterations > 100000000)
        return -1;
    int rc = -1;
    if (PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len, (int)iterations,
                          EVP_sha256(), sizeof salted, salted) != 1 ||
        hmac(salted, sizeof salted, "Client Key", 10, ck) ||
        hmac(salted, sizeof salted, "Server Key", 10, server) || !SHA256(ck, sizeof ck, stored))
        goto out;
    char s64[SCRAM_SALT_MAX * 2], k1[64], k2[64];
    if (scram_b64_encode(salt, salt_len, s64, sizeof s64) < 0 ||
        scram_b64_encode(stored, sizeof stored, k1, sizeof k1) < 0 ||
        scram_b64_encode(server, sizeof server, k2, sizeof k2) < 0)
        goto out;
    int w = snprintf(out, n, "%s$%u:%s$%s:%s", SCRAM_MECH, iterations, s64, k1, k2);
    rc = w > 0 && (size_t)w < n ? 0 : -1;
out:
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(ck, sizeof ck);
    return rc;
}

int scram_srv_init(struct scram_srv *s, const struct scram_verifier *v,
                   const uint8_t mock_key[SCRAM_KEY_LEN], const char *user,
                   const char *server_nonce)
{
    memset(s, 0, sizeof *s);
    s->st = SCRAM_ST_INIT;
    if (v) {
        s->v = *v;
    } else {
        /* made-up but stable per user: the shape of a real exchange */
        uint8_t h[SCRAM_KEY_LEN];
        if (hmac(mock_key, SCRAM_KEY_LEN, user, strlen(user), h))
            return SCRAM_ESYS;
        s->doomed = true;
        s->v.iterations = SCRAM_ITERATIONS;
        s->v.salt_len = SCRAM_SALT_LEN;
        memcpy(s->v.salt, h, SCRAM_SALT_LEN);
        memcpy(s->v.stored_key, h, SCRAM_KEY_LEN);
        memcpy(s->v.server_key, h, SCRAM_KEY_LEN);
    }
    if (server_nonce) {
        if (strlen(server_nonce) >= sizeof s->nonce / 2)
            return SCRAM_EPROTO;
        snprintf(s->nonce, sizeof s->nonce, "%s", server_nonce);
        return SCRAM_OK;
    }
    uint8_t raw[SCRAM_RAW_NONCE];
    if (RAND_bytes(raw, sizeof raw) != 1 ||
        scram_b64_encode(raw, sizeof raw, s->nonce, sizeof s->nonce) < 0)
        return SCRAM_ESYS;
    return SCRAM_OK;
}

/* Refuse: the exchange is over. */
static int fail(struct scram_srv *s, int rc, char *why, size_t whyn, const char *msg)
{
    s->st = SCRAM_ST_FAILED;
    snprintf(why, whyn, "%s", msg);
    return rc;
}

/* A printable attribute value (RFC 5802 "printable": 0x21..0x7e but ','). */
static bool printable(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
            return false;
    return n > 0;
}

int scram_srv_first(struct scram_srv *s, const char *in, size_t len, char *out, size_t n,
                    char *why, size_t whyn)
{
    switch (s->st) {
    case SCRAM_ST_INIT:
        break;
    case SCRAM_ST_SENT_FIRST:
    case SCRAM_ST_OK:
    case SCRAM_ST_FAILED:
    default:
        return fail(s, SCRAM_EPROTO, why, whyn, "unexpected SCRAM client-first-message");
    }
    char m[SCRAM_MSG_MAX];
    if (len >= sizeof m || memchr(in, '\0', len))
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM message (too long or a NUL)");
    memcpy(m, in, len);
    m[len] = '\0';
    /* gs2-header: gs2-cbind-flag "," [authzid] "," */
    if (m[0] == 'p')
        return fail(s, SCRAM_EUNSUPPORTED, why, whyn,
                    "channel binding is not supported by this server (use "
                    "channel_binding=disable or prefer)");
    if ((m[0] != 'n' && m[0] != 'y') || m[1] != ',')
        return fail(s, SCRAM_EPROTO, why, whyn,
                    "malformed SCRAM message: expected channel-binding flag n or y");
    if (m[2] == 'a' && m[3] == '=')
        return fail(s, SCRAM_EUNSUPPORTED, why, whyn,
                    "client uses authorization identity, but it is not supported");
    if (m[2] != ',')
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM message: bad gs2 header");
    memcpy(s->gs2, m, 3);
    s->gs2[3] = '\0';
    const char *bare = m + 3;
    if (bare[0] == 'm' && bare[1] == '=')
        return fail(s, SCRAM_EUNSUPPORTED, why, whyn,
                    "client requires an unsupported SCRAM extension");
    if (bare[0] != 'n' || bare[1] != '=')
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM message: expected n=");
    const char *r = strchr(bare + 2, ','); /* the user name is ignored: the startup's counts */
    if (!r || r[1] != 'r' || r[2] != '=')
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM message: expected r=");
    const char *cn = r + 3, *end = strchr(cn, ',');
    size_t cnl = end ? (size_t)(end - cn) : strlen(cn);
    if (!printable(cn, cnl) || cnl + strlen(s->nonce) >= sizeof s->nonce)
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM message: bad client nonce");
    snprintf(s->client_first_bare, sizeof s->client_first_bare, "%s", bare);
    size_t spl = strlen(s->nonce); /* client nonce + server nonce (checked to fit above) */
    memmove(s->nonce + cnl, s->nonce, spl + 1);
    memcpy(s->nonce, cn, cnl);
    char salt[SCRAM_SALT_MAX * 2];
    if (scram_b64_encode(s->v.salt, s->v.salt_len, salt, sizeof salt) < 0)
        return fail(s, SCRAM_ESYS, why, whyn, "cannot encode the salt");
    int w = snprintf(s->server_first, sizeof s->server_first, "r=%s,s=%s,i=%u", s->nonce, salt,
                     s->v.iterations);
    if (w < 0 || (size_t)w >= sizeof s->server_first || (size_t)w >= n)
        return fail(s, SCRAM_EPROTO, why, whyn, "SCRAM server-first-message too long");
    memcpy(out, s->server_first, (size_t)w + 1);
    s->st = SCRAM_ST_SENT_FIRST;
    return SCRAM_OK;
}

int scram_srv_final(struct scram_srv *s, const char *in, size_t len, char *out, size_t n,
                    char *why, size_t whyn)
{
    switch (s->st) {
    case SCRAM_ST_SENT_FIRST:
        break;
    case SCRAM_ST_INIT:
    case SCRAM_ST_OK:
    case SCRAM_ST_FAILED:
    default:
        return fail(s, SCRAM_EPROTO, why, whyn, "unexpected SCRAM client-final-message");
    }
    char m[SCRAM_MSG_MAX];
    if (len >= sizeof m || memchr(in, '\0', len))
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM message (too long or a NUL)");
    memcpy(m, in, len);
    m[len] = '\0';
    /* c=<b64 gs2 header>,r=<nonce>[,ext...],p=<proof> */
    const char *cend = strchr(m, ',');
    if (m[0] != 'c' || m[1] != '=' || !cend)
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM message: expected c=");
    uint8_t cb[64];
    int cbl = scram_b64_decode(m + 2, (size_t)(cend - m - 2), cb, sizeof cb);
    if (cbl != (int)strlen(s->gs2) || memcmp(cb, s->gs2, (size_t)cbl) != 0)
        return fail(s, SCRAM_EPROTO, why, whyn,
                    "SCRAM channel binding check failed (c= does not match the gs2 header)");
    if (cend[1] != 'r' || cend[2] != '=')
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM message: expected r=");
    const char *nn = cend + 3, *nend = strchr(nn, ',');
    if (!nend || (size_t)(nend - nn) != strlen(s->nonce) ||
        memcmp(nn, s->nonce, (size_t)(nend - nn)) != 0)
        return fail(s, SCRAM_EPROTO, why, whyn, "SCRAM nonce mismatch");
    const char *pp = strstr(m, ",p=");
    for (const char *q = pp; q; q = strstr(q + 1, ",p="))
        pp = q; /* the proof is the last attribute */
    if (!pp || pp < nend)
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM message: expected p=");
    uint8_t proof[SCRAM_KEY_LEN];
    if (scram_b64_decode(pp + 3, strlen(pp + 3), proof, sizeof proof) != SCRAM_KEY_LEN)
        return fail(s, SCRAM_EPROTO, why, whyn, "malformed SCRAM proof");
    /* AuthMessage */
    char am[3 * SCRAM_MSG_MAX + 256];
    int al = snprintf(am, sizeof am, "%s,%s,%.*s", s->client_first_bare, s->server_first,
                      (int)(pp - m), m);
    if (al < 0 || (size_t)al >= sizeof am)
        return fail(s, SCRAM_EPROTO, why, whyn, "SCRAM messages too long");
    uint8_t sig[SCRAM_KEY_LEN], ck[SCRAM_KEY_LEN], h[SCRAM_KEY_LEN], ss[SCRAM_KEY_LEN];
    if (hmac(s->v.stored_key, SCRAM_KEY_LEN, am, (size_t)al, sig))
        return fail(s, SCRAM_ESYS, why, whyn, "HMAC failed");
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        ck[i] = proof[i] ^ sig[i];
    if (!SHA256(ck, sizeof ck, h))
        return fail(s, SCRAM_ESYS, why, whyn, "SHA-256 failed");
    bool match = CRYPTO_memcmp(h, s->v.stored_key, SCRAM_KEY_LEN) == 0;
    OPENSSL_cleanse(ck, sizeof ck);
    if (!match || s->doomed)
        return fail(s, SCRAM_EAUTH, why, whyn, s->doomed ? "no such user" : "wrong proof");
    if (hmac(s->v.server_key, SCRAM_KEY_LEN, am, (size_t)al, ss))
        return fail(s, SCRAM_ESYS, why, whyn, "HMAC failed");
    char v64[64];
    if (n < 3 + sizeof v64 || scram_b64_encode(ss, sizeof ss, v64, sizeof v64) < 0)
        return fail(s, SCRAM_ESYS, why, whyn, "output buffer too small");
    snprintf(out, n, "v=%s", v64);
    s->st = SCRAM_ST_OK;
    return SCRAM_OK;
}

/* ---- client side ---------------------------------------------------------- */

static int cfail(struct scram_cli *c, int rc, char *why, size_t whyn, const char *msg)
{
    c->st = SCRAM_CLI_FAILED;
    if (why && whyn)
        snprintf(why, whyn, "%s", msg);
    return rc;
}

int scram_cli_first(struct scram_cli *c, const char *user, const char *client_nonce, char *out,
                    size_t n)
{
    memset(c, 0, sizeof *c);
    c->st = SCRAM_CLI_FAILED;
    if (client_nonce) {
        if (!printable(client_nonce, strlen(client_nonce)) || !client_nonce[0] ||
            strlen(client_nonce) >= sizeof c->nonce)
            return SCRAM_EPROTO;
        snprintf(c->nonce, sizeof c->nonce, "%s", client_nonce);
    } else {
        uint8_t raw[SCRAM_RAW_NONCE];
        if (RAND_bytes(raw, sizeof raw) != 1 ||
            scram_b64_encode(raw, sizeof raw, c->nonce, sizeof c->nonce) < 0)
            return SCRAM_ESYS;
    }
    char esc[3 * 256 + 1];
    size_t k = 0;
    for (const char *p = user; *p; p++) {
        if (k + 4 >= sizeof esc || (unsigned char)*p < 0x20)
            return SCRAM_EPROTO;
        if (*p == '=' || *p == ',') {
            memcpy(esc + k, *p == '=' ? "=3D" : "=2C", 3);
            k += 3;
        } else {
            esc[k++] = *p;
        }
    }
    esc[k] = 0;
    int w = snprintf(c->client_first_bare, sizeof c->client_first_bare, "n=%s,r=%s", esc,
                     c->nonce);
    if (w < 0 || (size_t)w >= sizeof c->client_first_bare || (size_t)w + 4 > n)
        return SCRAM_EPROTO;
    snprintf(out, n, "n,,%s", c->client_first_bare);
    c->st = SCRAM_CLI_SENT_FIRST;
    return SCRAM_OK;
}

int scram_cli_final(struct scram_cli *c, const char *password, size_t pwlen, const char *in,
                    size_t len, char *out, size_t n, char *why, size_t whyn)
{
    switch (c->st) {
    case SCRAM_CLI_SENT_FIRST:
        break;
    case SCRAM_CLI_INIT:
    case SCRAM_CLI_SENT_FINAL:
    case SCRAM_CLI_OK:
    case SCRAM_CLI_FAILED:
    default:
        return cfail(c, SCRAM_EPROTO, why, whyn, "unexpected SCRAM server-first-message");
    }
    char m[SCRAM_MSG_MAX];
    if (len >= sizeof m || memchr(in, '\0', len))
        return cfail(c, SCRAM_EPROTO, why, whyn, "malformed SCRAM message (too long or a NUL)");
    memcpy(m, in, len);
    m[len] = '\0';
    /* r=<nonce>,s=<salt>,i=<iterations>[,ext] */
    const char *s = strstr(m, ",s="), *it = s ? strstr(s + 1, ",i=") : NULL;
    if (m[0] != 'r' || m[1] != '=' || !s || !it)
        return cfail(c, SCRAM_EPROTO, why, whyn, "malformed SCRAM server-first-message");
    size_t nl = (size_t)(s - m - 2), cl = strlen(c->nonce);
    if (nl <= cl || memcmp(m + 2, c->nonce, cl) != 0 || !printable(m + 2, nl))
        return cfail(c, SCRAM_EPROTO, why, whyn, "the server's nonce does not extend ours");
    uint8_t salt[SCRAM_SALT_MAX];
    int sl = scram_b64_decode(s + 3, (size_t)(it - s - 3), salt, sizeof salt);
    if (sl < 1)
        return cfail(c, SCRAM_EPROTO, why, whyn, "malformed SCRAM salt");
    char *end;
    unsigned long iter = strtoul(it + 3, &end, 10);
    if (end == it + 3 || (*end && *end != ','))
        return cfail(c, SCRAM_EPROTO, why, whyn, "malformed SCRAM iteration count");
    if (iter < SCRAM_ITERATIONS || iter > 10000000ul)
        return cfail(c, SCRAM_EPROTO, why, whyn, "the server asks for an iteration count "
                     "outside 4096 .. 10000000");
    if (pwlen > 1024)
        return cfail(c, SCRAM_EPROTO, why, whyn, "password longer than 1024 bytes");
    uint8_t salted[SCRAM_KEY_LEN], ck[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN];
    uint8_t sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
    char without[SCRAM_MSG_MAX + 64], am[3 * SCRAM_MSG_MAX + 256];
    int wl = snprintf(without, sizeof without, "c=biws,r=%.*s", (int)nl, m + 2);
    int al = wl < 0 || (size_t)wl >= sizeof without
                 ? -1
                 : snprintf(am, sizeof am, "%s,%s,%s", c->client_first_bare, m, without);
    if (al < 0 || (size_t)al >= sizeof am)
        return cfail(c, SCRAM_EPROTO, why, whyn, "SCRAM messages too long");
    int rc = SCRAM_ESYS;
    if (PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, sl, (int)iter, EVP_sha256(),
                          sizeof salted, salted) != 1 ||
        hmac(salted, sizeof salted, "Client Key", 10, ck) || !SHA256(ck, sizeof ck, stored) ||
        hmac(stored, sizeof stored, am, (size_t)al, sig) ||
        hmac(salted, sizeof salted, "Server Key", 10, sk) ||
        hmac(sk, sizeof sk, am, (size_t)al, c->server_sig))
        goto out;
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        proof[i] = ck[i] ^ sig[i];
    char p64[64];
    if (scram_b64_encode(proof, sizeof proof, p64, sizeof p64) < 0 ||
        (size_t)snprintf(out, n, "%s,p=%s", without, p64) >= n) {
        rc = SCRAM_EPROTO;
        goto out;
    }
    c->st = SCRAM_CLI_SENT_FINAL;
    rc = SCRAM_OK;
out:
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(ck, sizeof ck);
    OPENSSL_cleanse(sk, sizeof sk);
    if (rc)
        return cfail(c, rc, why, whyn, rc == SCRAM_ESYS ? "the crypto library failed"
                                                        : "SCRAM client-final-message too long");
    return rc;
}

int scram_cli_verify(struct scram_cli *c, const char *in, size_t len, char *why, size_t whyn)
{
    switch (c->st) {
    case SCRAM_CLI_SENT_FINAL:
        break;
    case SCRAM_CLI_INIT:
    case SCRAM_CLI_SENT_FIRST:
    case SCRAM_CLI_OK:
    case SCRAM_CLI_FAILED:
    default:
        return cfail(c, SCRAM_EPROTO, why, whyn, "unexpected SCRAM server-final-message");
    }
    char m[SCRAM_MSG_MAX];
    if (len >= sizeof m || memchr(in, '\0', len))
        return cfail(c, SCRAM_EPROTO, why, whyn, "malformed SCRAM message (too long or a NUL)");
    memcpy(m, in, len);
    m[len] = '\0';
    if (m[0] == 'e' && m[1] == '=') {
        char msg[SCRAM_MSG_MAX + 32];
        snprintf(msg, sizeof msg, "the server refused: %s", m + 2);
        return cfail(c, SCRAM_EAUTH, why, whyn, msg);
    }
    uint8_t v[SCRAM_KEY_LEN];
    if (m[0] != 'v' || m[1] != '=' ||
        scram_b64_decode(m + 2, strlen(m + 2), v, sizeof v) != SCRAM_KEY_LEN)
        return cfail(c, SCRAM_EPROTO, why, whyn, "malformed SCRAM server-final-message");
    if (CRYPTO_memcmp(v, c->server_sig, SCRAM_KEY_LEN) != 0)
        return cfail(c, SCRAM_EAUTH, why, whyn, "the server's SCRAM signature does not match: "
                     "it does not know this user's verifier");
    c->st = SCRAM_CLI_OK;
    return SCRAM_OK;
}
