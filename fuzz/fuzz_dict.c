/* The dictionary file (dict/dict_store.c dict_decode, the body of
 * dict_load): decoded as it is, then once more with the payload length,
 * payload CRC and header CRC made right so the fuzzer reaches the payload
 * records; a decoded dictionary is encoded again and freed. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "dict/dict.h"

#define HDR 32u /* DICT_HDR_SIZE */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void decode_once(const uint8_t *data, size_t len)
{
    struct dict d;
    if (dict_decode(data, len, &d) == 0) {
        uint8_t *out = NULL;
        size_t n = 0;
        if (dict_encode(&d, &out, &n) == 0)
            free(out);
        dict_free(&d);
    }
}

int fuzz_dict(const uint8_t *data, size_t len)
{
    decode_once(data, len);
    if (len < HDR)
        return 0;
    uint8_t *b = malloc(len);
    if (!b)
        return 0;
    memcpy(b, data, len);
    put32(b + 16, (uint32_t)(len - HDR));
    put32(b + 20, crc32c(0, b + HDR, len - HDR));
    put32(b + 28, crc32c(0, b, 28));
    decode_once(b, len);
    free(b);
    return 0;
}
