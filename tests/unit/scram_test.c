/* SCRAM-SHA-256 client side (common/scram.c): RFC 7677's example exchange
 * byte for byte, full exchanges against the server side (right password,
 * wrong password, unknown user, a name with '=' and ','), and every
 * refusal of a bad server message: a nonce that does not extend ours, too
 * few iterations, a forged signature, an "e=" error, out-of-order calls. */
#include "scram.h"

#include "cu_test.h"

#include <stdio.h>
#include <string.h>


static void test_rfc7677(void)
{
    struct scram_cli c;
    char out[2048], why[256];
    CU_ASSERT_EQUAL_FATAL(scram_cli_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof out),
                          SCRAM_OK);
    CU_ASSERT_STRING_EQUAL(out, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    static const char sfirst[] = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                 "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    CU_ASSERT_EQUAL_FATAL(scram_cli_final(&c, "pencil", 6, sfirst, strlen(sfirst), out,
                                          sizeof out, why, sizeof why), SCRAM_OK);
    CU_ASSERT_STRING_EQUAL(out, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    static const char sfinal[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    CU_ASSERT_EQUAL(scram_cli_verify(&c, sfinal, strlen(sfinal), why, sizeof why), SCRAM_OK);
    CU_ASSERT_EQUAL(c.st, SCRAM_CLI_OK);
    /* over: nothing more is taken */
    CU_ASSERT_EQUAL(scram_cli_verify(&c, sfinal, strlen(sfinal), why, sizeof why),
                    SCRAM_EPROTO);
}

/* a whole exchange between the two sides: the client's and server's rc */
static void exchange(const char *user, const char *verifier_pw, const char *pw, int *cli_rc,
                     int *srv_rc)
{
    char vtext[256];
    struct scram_verifier v;
    CU_ASSERT_EQUAL_FATAL(scram_verifier_make(verifier_pw, strlen(verifier_pw), NULL, 0, 4096,
                                              vtext, sizeof vtext), 0);
    CU_ASSERT_EQUAL_FATAL(scram_verifier_parse(vtext, &v), 0);
    static const uint8_t mock[SCRAM_KEY_LEN] = {1, 2, 3};
    struct scram_srv s;
    struct scram_cli c;
    char a[2048], b[2048], why[256];
    CU_ASSERT_EQUAL_FATAL(scram_srv_init(&s, user ? &v : NULL, mock, user ? user : "ghost", NULL),
                          0);
    CU_ASSERT_EQUAL_FATAL(scram_cli_first(&c, user ? user : "ghost", NULL, a, sizeof a), 0);
    CU_ASSERT_EQUAL_FATAL(scram_srv_first(&s, a, strlen(a), b, sizeof b, why, sizeof why), 0);
    CU_ASSERT_EQUAL_FATAL(scram_cli_final(&c, pw, strlen(pw), b, strlen(b), a, sizeof a, why,
                                          sizeof why), 0);
    *srv_rc = scram_srv_final(&s, a, strlen(a), b, sizeof b, why, sizeof why);
    *cli_rc = *srv_rc ? SCRAM_EAUTH : scram_cli_verify(&c, b, strlen(b), why, sizeof why);
}

static void test_against_server(void)
{
    int crc, src;
    exchange("alice", "s3cret", "s3cret", &crc, &src);
    CU_ASSERT_EQUAL(src, SCRAM_OK);
    CU_ASSERT_EQUAL(crc, SCRAM_OK);
    exchange("alice", "s3cret", "s3creT", &crc, &src);
    CU_ASSERT_EQUAL(src, SCRAM_EAUTH);
    exchange(NULL, "x", "x", &crc, &src); /* unknown user: refused at the proof */
    CU_ASSERT_EQUAL(src, SCRAM_EAUTH);
    exchange("we=ird,name", "pw", "pw", &crc, &src);
    CU_ASSERT_EQUAL(src, SCRAM_OK);
    CU_ASSERT_EQUAL(crc, SCRAM_OK);
    struct scram_cli c;
    char out[256];
    CU_ASSERT_EQUAL(scram_cli_first(&c, "we=ird,name", "abc", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "n,,n=we=3Dird=2Cname,r=abc");
}

static void test_bad_server(void)
{
    struct scram_cli c;
    char out[2048], why[256];
    static const char *bad[] = {
        "r=XXXXrOprNGfwEbeRWgbNEkqO1,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /* not our nonce */
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",      /* no server part */
        "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",       /* cheap guesses */
        "r=rOprNGfwEbeRWgbNEkqOx,s=!!!!,i=4096",                        /* bad salt */
        "r=rOprNGfwEbeRWgbNEkqOx,i=4096",                               /* no salt */
        "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=40x6",    /* bad count */
        "",
    };
    static const char *need[] = {"extend", "extend", "iteration", "salt", "malformed",
                                 "iteration", "malformed"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(scram_cli_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out,
                                              sizeof out), 0);
        why[0] = 0;
        int rc = scram_cli_final(&c, "pencil", 6, bad[i], strlen(bad[i]), out, sizeof out, why,
                                 sizeof why);
        if (rc != SCRAM_EPROTO || !strstr(why, need[i]))
            printf("\n  case %zu: rc %d why '%s'\n", i, rc, why);
        CU_ASSERT_EQUAL(rc, SCRAM_EPROTO);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, need[i]));
        CU_ASSERT_EQUAL(c.st, SCRAM_CLI_FAILED);
    }
    /* a forged or refused server-final */
    static const char sfirst[] = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                 "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    CU_ASSERT_EQUAL(scram_cli_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof out), 0);
    CU_ASSERT_EQUAL(scram_cli_final(&c, "pencil", 6, sfirst, strlen(sfirst), out, sizeof out,
                                    why, sizeof why), 0);
    static const char forged[] = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    CU_ASSERT_EQUAL(scram_cli_verify(&c, forged, strlen(forged), why, sizeof why), SCRAM_EAUTH);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "signature"));
    CU_ASSERT_EQUAL(scram_cli_first(&c, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof out), 0);
    CU_ASSERT_EQUAL(scram_cli_final(&c, "pencil", 6, sfirst, strlen(sfirst), out, sizeof out,
                                    why, sizeof why), 0);
    CU_ASSERT_EQUAL(scram_cli_verify(&c, "e=invalid-proof", 15, why, sizeof why), SCRAM_EAUTH);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "invalid-proof"));
    /* out of order */
    CU_ASSERT_EQUAL(scram_cli_first(&c, "user", NULL, out, sizeof out), 0);
    CU_ASSERT_EQUAL(scram_cli_verify(&c, "v=AAAA", 6, why, sizeof why), SCRAM_EPROTO);
    CU_ASSERT_EQUAL(scram_cli_first(&c, "bad\nname", NULL, out, sizeof out), SCRAM_EPROTO);
}

void cu_register(void)
{
    static const struct cu_case c[] = {
        {"rfc7677", test_rfc7677},
        {"against_server", test_against_server},
        {"bad_server", test_bad_server},
        {NULL, NULL}};
    cu_add_suite("scram_cli", NULL, NULL, c);
}
