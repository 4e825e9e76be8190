/* Fuzz harness entry points (fuzz/README.md). Each takes any bytes and must
 * return without crashing, leaking or tripping ASan/UBSan; the return value
 * is 0 (libFuzzer ignores it). Compiled into the libFuzzer binaries (with
 * lf_main.c) and into the regression replay unit test (without it). */
#ifndef NINES_FUZZ_H
#define NINES_FUZZ_H
#include <stddef.h>
#include <stdint.h>

int fuzz_frame(const uint8_t *data, size_t len);    /* received bytes -> frames -> msgtab unpack */
int fuzz_conf(const uint8_t *data, size_t len);     /* cluster file text */
int fuzz_dict(const uint8_t *data, size_t len);     /* dictionary file image */
int fuzz_ckpt(const uint8_t *data, size_t len);     /* checkpoint file, whole and fed in pieces */
int fuzz_redo(const uint8_t *data, size_t len);     /* a log batch redone on a fresh replica */
int fuzz_nsf(const uint8_t *data, size_t len);      /* node-set file */
int fuzz_gcpfile(const uint8_t *data, size_t len);  /* restorable (GCP) file */
int fuzz_rcbound(const uint8_t *data, size_t len);  /* durable bound file */
int fuzz_manifest(const uint8_t *data, size_t len); /* checkpoint manifest */
int fuzz_client(const uint8_t *data, size_t len);   /* the client library's answers */
int fuzz_arbrec(const uint8_t *data, size_t len);   /* the arbitrator's grant record */
int fuzz_sqlstmt(const uint8_t *data, size_t len);  /* SQL text through parse, plan, execute */
int fuzz_pgwmsg(const uint8_t *data, size_t len);   /* a PostgreSQL client's byte stream */

struct fuzz_target {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
};
/* Every harness, by name (the names of fuzz/corpus/ and fuzz/regress/). */
extern const struct fuzz_target fuzz_targets[];
extern const unsigned fuzz_ntargets;
#endif
