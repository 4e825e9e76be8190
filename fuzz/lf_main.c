/* The libFuzzer wrapper: built once per harness with -DFUZZ_ENTRY=fuzz_<name>
 * (Makefile target `fuzz`). Not part of the replay test. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    (void)FUZZ_ENTRY(data, len);
    return 0;
}
