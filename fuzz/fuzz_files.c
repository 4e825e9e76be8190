/* The small fixed-format files a node reads at start: the node-set file
 * (sup_nsf_decode), the restorable GCP file (sup_gcp_file_decode), the
 * durable bound (ksvc_rc_bound_decode) and the checkpoint manifest
 * (ksvc_ckpt_manifest_decode), and the arbitrator's grant record
 * (arb_rec_decode; cluster "fuzz"). Each input is decoded as it is, then once
 * more with its CRC-32C made right, so the fuzzer gets past the checksum
 * to the fields behind it. The files are read as node FUZZ_NODE of
 * cluster FUZZ_CLUSTER (the seeds are written so). */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "fuzz_ids.h"
#include "arbitrator/arb_grant.h"
#include "kernel/svc/ksvc.h"
#include "supervisor/sup.h"

/* A copy of data with the little-endian CRC-32C at crc_off set to the
 * CRC of bytes [0, crc_off) followed by bytes [tail, len). */
static uint8_t *fixed_copy(const uint8_t *data, size_t len, size_t crc_off, size_t tail)
{
    if (len < crc_off + 4)
        return NULL;
    uint8_t *b = malloc(len);
    if (!b)
        return NULL;
    memcpy(b, data, len);
    uint32_t c = crc32c(0, b, crc_off);
    if (tail < len)
        c = crc32c(c, b + tail, len - tail);
    for (int i = 0; i < 4; i++)
        b[crc_off + (size_t)i] = (uint8_t)(c >> (8 * i));
    return b;
}

int fuzz_nsf(const uint8_t *data, size_t len)
{
    struct sup_nsf_set s;
    (void)sup_nsf_decode(data, len, FUZZ_NODE, FUZZ_CLUSTER, &s);
    uint8_t *b = fixed_copy(data, len, 60, len);
    if (b) {
        (void)sup_nsf_decode(b, len, FUZZ_NODE, FUZZ_CLUSTER, &s);
        free(b);
    }
    return 0;
}

int fuzz_gcpfile(const uint8_t *data, size_t len)
{
    struct sup_gcp_file f;
    (void)sup_gcp_file_decode(data, len, FUZZ_NODE, FUZZ_CLUSTER, &f);
    uint8_t *b = fixed_copy(data, len, 60, len);
    if (b) {
        (void)sup_gcp_file_decode(b, len, FUZZ_NODE, FUZZ_CLUSTER, &f);
        free(b);
    }
    return 0;
}

int fuzz_rcbound(const uint8_t *data, size_t len)
{
    struct ksvc_rc_bound bd;
    (void)ksvc_rc_bound_decode(data, len, FUZZ_NODE, FUZZ_CLUSTER, &bd);
    uint8_t *b = fixed_copy(data, len, 52, len);
    if (b) {
        (void)ksvc_rc_bound_decode(b, len, FUZZ_NODE, FUZZ_CLUSTER, &bd);
        free(b);
    }
    return 0;
}

static void manifest_once(const uint8_t *data, size_t len)
{
    struct ksvc_ckpt_manifest m;
    memset(&m, 0, sizeof m);
    if (ksvc_ckpt_manifest_decode(data, len, FUZZ_NODE, FUZZ_CLUSTER, &m) == 0) {
        uint8_t *out = NULL;
        size_t n = 0;
        if (ksvc_ckpt_manifest_encode(&m, &out, &n) == 0)
            free(out);
        ksvc_ckpt_manifest_free(&m);
    }
}

int fuzz_manifest(const uint8_t *data, size_t len)
{
    manifest_once(data, len);
    uint8_t *b = fixed_copy(data, len, 60, 64);
    if (b) {
        manifest_once(b, len);
        free(b);
    }
    return 0;
}

int fuzz_arbrec(const uint8_t *data, size_t len)
{
    struct arb_grant g;
    (void)arb_rec_decode(data, len, "fuzz", "fuzz.grant", &g);
    uint8_t *b = fixed_copy(data, len, 132, len);
    if (b) {
        (void)arb_rec_decode(b, len, "fuzz", "fuzz.grant", &g);
        free(b);
    }
    return 0;
}
