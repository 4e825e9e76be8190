/* The fuzz corpora and regression inputs replayed (fuzz/README.md): every
 * file in fuzz/corpus/<harness>/ and fuzz/regress/<harness>/ through the
 * harness body fuzz_<harness>() compiled without libFuzzer, so a crash
 * found once stays fixed (run under ASan/UBSan by asan-test). The folder
 * is ./fuzz (tests run from the top folder) or $NINES_FUZZ_DIR. */
#include "cu_test.h"
#include "fuzz/fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fuzz_dir(void)
{
    const char *e = getenv("NINES_FUZZ_DIR");
    return e && *e ? e : "fuzz";
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, fp);
        n += r;
        if (n < cap)
            break;
        uint8_t *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(fp);
    if (!b)
        return -1;
    *buf = b;
    *len = n;
    return 0;
}

/* Replay every file of dir/kind/name; returns how many, -1 for a read error. */
static int replay(const char *kind, const struct fuzz_target *t)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s/%s", fuzz_dir(), kind, t->name);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (read_file(path, &buf, &len) < 0) {
            fprintf(stderr, "fuzz replay: cannot read %s\n", path);
            n = -1;
            break;
        }
        (void)t->fn(buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static void test_corpus(void)
{
    int total = 0;
    for (unsigned i = 0; i < fuzz_ntargets; i++) {
        int n = replay("corpus", &fuzz_targets[i]);
        CU_ASSERT(n > 0); /* every harness has a seed corpus */
        if (n <= 0)
            fprintf(stderr, "fuzz replay: no seeds for %s in %s/corpus\n",
                    fuzz_targets[i].name, fuzz_dir());
        total += n > 0 ? n : 0;
    }
    printf("fuzz replay: %d corpus inputs\n", total);
}

static void test_regress(void)
{
    int total = 0;
    for (unsigned i = 0; i < fuzz_ntargets; i++) {
        int n = replay("regress", &fuzz_targets[i]);
        CU_ASSERT(n >= 0);
        total += n > 0 ? n : 0;
    }
    printf("fuzz replay: %d regression inputs\n", total);
}

/* Some inputs by hand: empty, one byte, all ones. */
static void test_edges(void)
{
    static uint8_t ones[4096];
    memset(ones, 0xff, sizeof ones);
    for (unsigned i = 0; i < fuzz_ntargets; i++) {
        (void)fuzz_targets[i].fn(ones, 0);
        (void)fuzz_targets[i].fn(ones, 1);
        (void)fuzz_targets[i].fn(ones, sizeof ones);
    }
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"corpus", test_corpus},
        {"regress", test_regress},
        {"edges", test_edges},
        {NULL, NULL},
    };
    cu_add_suite("fuzz_replay", NULL, NULL, cases);
}
