/* SCRAM-SHA-256 (RFC 5802, RFC 7677), the server side of PostgreSQL's
 * SASL exchange and its verifiers (common: the SQL front end and the native client handshake; sql/README.md
 * "Authentication"). OpenSSL libcrypto: HMAC, SHA-256, PBKDF2, RAND_bytes,
 * base64.
 *
 * A verifier is PostgreSQL's text form
 *   SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
 * Passwords are used as their bytes: no SASLprep (an ASCII password is the
 * same either way; libpq applies SASLprep, so use ASCII passwords).
 *
 * The exchange is a state machine (enum scram_state): INIT --client-first-->
 * SENT_FIRST --client-final--> OK | FAILED; anything else is refused. A
 * server exchange for an unknown user runs the same steps against a made-up
 * verifier (salt derived from a per-server secret and the user name, so the
 * same user gets the same salt every time) and fails at the proof, exactly
 * as a wrong password does. */
#ifndef NINES_SCRAM_H
#define NINES_SCRAM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 32
#define SCRAM_SALT_MAX 64
#define SCRAM_SALT_LEN 16           /* new verifiers */
#define SCRAM_ITERATIONS 4096       /* new verifiers (PostgreSQL's default) */
#define SCRAM_MSG_MAX 1024          /* a longer client message is refused */
#define SCRAM_MECH "SCRAM-SHA-256"

/* Results of the exchange steps. */
enum scram_rc {
    SCRAM_OK = 0,
    SCRAM_EPROTO = -1,       /* a malformed message (SQLSTATE 08P01) */
    SCRAM_EUNSUPPORTED = -2, /* channel binding, authzid, extensions (0A000) */
    SCRAM_EAUTH = -3,        /* wrong proof or unknown user (28P01) */
    SCRAM_ESYS = -4,         /* the crypto library failed */
};

struct scram_verifier {
    uint32_t iterations;
    size_t salt_len;
    uint8_t salt[SCRAM_SALT_MAX];
    uint8_t stored_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
};

/* Decode a verifier's text; 0 or -1. */
int scram_verifier_parse(const char *text, struct scram_verifier *out);
/* A verifier for password with salt (random SCRAM_SALT_LEN bytes when salt
 * is NULL) and iterations, as text into out; 0 or -1 (out too small, or the
 * crypto library failed). */
int scram_verifier_make(const char *password, size_t pwlen, const uint8_t *salt,
                        size_t salt_len, uint32_t iterations, char *out, size_t n);

/* Base64 (RFC 4648 with padding): encode returns the text length or -1
 * when out is too small; decode returns the byte count, -1 when in is not
 * well-formed base64 or out is too small. */
int scram_b64_encode(const uint8_t *in, size_t len, char *out, size_t n);
int scram_b64_decode(const char *in, size_t len, uint8_t *out, size_t n);

enum scram_state {
    SCRAM_ST_INIT = 1,       /* waiting for client-first-message */
    SCRAM_ST_SENT_FIRST,     /* server-first-message sent; waiting for client-final */
    SCRAM_ST_OK,             /* proof verified */
    SCRAM_ST_FAILED,         /* any refusal: the exchange is over */
};

struct scram_srv {
    enum scram_state st;
    bool doomed;             /* unknown user: always SCRAM_EAUTH at the proof */
    struct scram_verifier v;
    char gs2[8];             /* "n,," or "y,," */
    char nonce[2 * SCRAM_MSG_MAX / 3];
    char client_first_bare[SCRAM_MSG_MAX];
    char server_first[SCRAM_MSG_MAX + 128];
};

/* Start an exchange. v NULL: an unknown user (mock_key, a per-server
 * secret, and user make its stable made-up salt). server_nonce NULL: a
 * fresh random one (tests pass RFC 7677's). */
int scram_srv_init(struct scram_srv *s, const struct scram_verifier *v,
                   const uint8_t mock_key[SCRAM_KEY_LEN], const char *user,
                   const char *server_nonce);
/* client-first-message in -> server-first-message (NUL-terminated) in out.
 * On failure why (NUL-terminated) says what was wrong. */
int scram_srv_first(struct scram_srv *s, const char *in, size_t len, char *out, size_t n,
                    char *why, size_t whyn);
/* client-final-message in -> server-final-message ("v=...") in out. */
int scram_srv_final(struct scram_srv *s, const char *in, size_t len, char *out, size_t n,
                    char *why, size_t whyn);

/* ---- the client side (the native protocol's HELLO, tests) -------------
 * INIT --scram_cli_first--> SENT_FIRST --scram_cli_final--> SENT_FINAL
 * --scram_cli_verify--> OK; any failure: FAILED. The client proves the
 * password and checks the server's signature (mutual authentication). */
enum scram_cli_state {
    SCRAM_CLI_INIT = 1,
    SCRAM_CLI_SENT_FIRST,
    SCRAM_CLI_SENT_FINAL,
    SCRAM_CLI_OK,
    SCRAM_CLI_FAILED,
};
struct scram_cli {
    enum scram_cli_state st;
    char client_first_bare[SCRAM_MSG_MAX];
    char nonce[SCRAM_MSG_MAX];           /* the client's part */
    uint8_t server_sig[SCRAM_KEY_LEN];   /* what server-final must carry */
};
/* client-first-message for user (escaped as RFC 5802 wants: "=" -> "=3D",
 * "," -> "=2C") into out; client_nonce NULL: a fresh random one. */
int scram_cli_first(struct scram_cli *c, const char *user, const char *client_nonce, char *out,
                    size_t n);
/* server-first-message in -> client-final-message (with the proof of
 * password) in out; the server's nonce must extend ours, the iteration
 * count must be 4096 .. 10000000 (a server asking for fewer is refused:
 * it could be harvesting cheap guesses). */
int scram_cli_final(struct scram_cli *c, const char *password, size_t pwlen, const char *in,
                    size_t len, char *out, size_t n, char *why, size_t whyn);
/* server-final-message: "v=<signature>" must match; "e=<error>" is the
 * server's refusal (SCRAM_EAUTH with its text in why). */
int scram_cli_verify(struct scram_cli *c, const char *in, size_t len, char *why, size_t whyn);
#endif
