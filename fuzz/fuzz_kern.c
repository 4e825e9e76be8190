/* The kernel's inputs from other nodes and from disk, each into a fresh
 * HOT_STANDBY replica of table 7 fragment 3 (fuzz_ids.h):
 *   fuzz_ckpt: a checkpoint file, whole (kern_ckpt_load) and fed in pieces
 *              of varying size (kern_ckpt_loader_*, as a rebuild copy
 *              arrives); once as it is, once with its CRCs made right;
 *   fuzz_redo: a log batch, records framed as [u16 le length][record],
 *              each through kern_frag_redo_bytes as a hot standby redoes
 *              what its primary ships. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "fuzz_ids.h"
#include "kernel/kern_ckpt.h"
#include "kernel/kern_frag.h"

static struct kern_frag *fresh(void)
{
    struct kern_frag_def d = fuzz_frag_def();
    struct kern_frag *f = NULL;
    if (kern_frag_create(&d, KERN_FRAG_HOT_STANDBY, &f) < 0)
        return NULL;
    return f;
}

static void ckpt_once(const uint8_t *data, size_t len)
{
    struct kern_frag *f = fresh();
    if (!f)
        return;
    struct kern_ckpt_info info;
    (void)kern_ckpt_load(f, data, len, &info);
    kern_frag_destroy(f);

    f = fresh();
    if (!f)
        return;
    struct kern_ckpt_loader *l = NULL;
    if (kern_ckpt_loader_begin(f, &l) == 0) {
        size_t off = 0, step = 1;
        int rc = 0;
        while (off < len && rc >= 0) {
            size_t n = len - off < step ? len - off : step;
            rc = kern_ckpt_loader_feed(l, data + off, n);
            off += n;
            step = step * 3 % 1021 + 1;
        }
        if (rc >= 0)
            (void)kern_ckpt_loader_end(l, &info);
        kern_ckpt_loader_free(l);
    }
    kern_frag_destroy(f);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* As it is, then with the header CRC (bytes 60..64 over 0..60) and the
 * file CRC (the last 4 bytes, over all before) made right, so mutations
 * reach the blocks and the trailer's counts. */
int fuzz_ckpt(const uint8_t *data, size_t len)
{
    ckpt_once(data, len);
    if (len < KERN_CKPT_HDR + 4)
        return 0;
    uint8_t *b = malloc(len);
    if (!b)
        return 0;
    memcpy(b, data, len);
    put32(b + 60, crc32c(0, b, 60));
    put32(b + len - 4, crc32c(0, b, len - 4));
    ckpt_once(b, len);
    free(b);
    return 0;
}

int fuzz_redo(const uint8_t *data, size_t len)
{
    struct kern_frag *f = fresh();
    if (!f)
        return 0;
    size_t off = 0;
    while (len - off >= 2) {
        size_t n = (size_t)data[off] | (size_t)data[off + 1] << 8;
        off += 2;
        if (n > len - off)
            n = len - off;
        (void)kern_frag_redo_bytes(f, data + off, n);
        off += n;
    }
    kern_frag_destroy(f);
    return 0;
}
