/* The cluster file (common/conf.c nines_conf_parse, the body of
 * nines_conf_load): the input as its text, cut at the first zero byte. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "conf.h"

int fuzz_conf(const uint8_t *data, size_t len)
{
    char *text = malloc(len + 1);
    if (!text)
        return 0;
    memcpy(text, data, len);
    text[len] = 0;
    struct nines_conf *c = calloc(1, sizeof *c);
    if (c) {
        (void)nines_conf_parse(text, "fuzz.conf", c);
        free(c);
    }
    free(text);
    return 0;
}
