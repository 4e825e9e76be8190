/* ninesctl keygen FILE [--force]: a new random cluster key, written to FILE
 * with mode 0600 (README.md "SECURITY", tools/README.md). */
#include "conf.h"
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ctl_cmd_keygen(int argc, char **argv)
{
    const char *path = NULL;
    bool force = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--force"))
            force = true;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "ninesctl keygen: unexpected argument '%s'\n"
                            "usage: ninesctl keygen FILE [--force]\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: ninesctl keygen FILE [--force]\n");
        return 2;
    }
    uint8_t key[NINES_KEY_BYTES];
    size_t got = 0;
    while (got < sizeof key) {
        ssize_t r = getrandom(key + got, sizeof key - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "ninesctl keygen: getrandom: %s\n", strerror(errno));
            return 1;
        }
        got += (size_t)r;
    }
    char text[160];
    nines_key_format(key, text, sizeof text);
    memset(key, 0, sizeof key);
    /* Without --force the file must not exist (O_EXCL); with it, a new file
     * is written beside it and renamed over it, so the old one's mode or
     * owner never carries over. */
    char tmp[512];
    const char *target = path;
    if (force) {
        if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
            fprintf(stderr, "ninesctl keygen: path '%s' is too long\n", path);
            return 2;
        }
        target = tmp;
    }
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST && !force)
            fprintf(stderr, "ninesctl keygen: %s exists: not overwritten (--force replaces "
                            "it; every node and tool of the cluster then needs the new key)\n",
                    path);
        else
            fprintf(stderr, "ninesctl keygen: cannot create %s: %s\n", target, strerror(errno));
        memset(text, 0, sizeof text);
        return 1;
    }
    int rc = fchmod(fd, 0600) || write_all(fd, text, strlen(text)) || fsync(fd);
    int e = errno;
    memset(text, 0, sizeof text);
    if (close(fd) != 0 && !rc) {
        rc = 1;
        e = errno;
    }
    if (!rc && force && rename(tmp, path) != 0) {
        rc = 1;
        e = errno;
    }
    if (rc) {
        fprintf(stderr, "ninesctl keygen: cannot write %s: %s\n", path, strerror(e));
        (void)unlink(target);
        return 1;
    }
    printf("ninesctl keygen: wrote a new cluster key to %s (mode 0600); name it in the cluster "
           "file: cluster_key %s\n", path, path);
    return 0;
}
