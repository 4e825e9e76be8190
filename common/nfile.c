/* Whole-file reads (nfile.h). */
#include "nfile.h"

#include "nines/errors.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int nfile_read_all(const char *path, size_t max, uint8_t **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nines_err(errno == ENOENT ? NINES_ENOTFOUND : NINES_EIO, "open %s: %s", path,
                         strerror(errno));
    struct stat st;
    int rc = 0;
    uint8_t *p = NULL;
    size_t n = 0, got = 0;
    if (fstat(fd, &st) < 0) {
        rc = nines_err(NINES_EIO, "stat %s: %s", path, strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size > (uint64_t)max) {
        rc = nines_err(NINES_ETOOBIG, "%s is %lld bytes, above %zu", path, (long long)st.st_size,
                       max);
        goto out;
    }
    n = (size_t)st.st_size;
    p = malloc(n ? n : 1);
    if (!p) {
        rc = nines_err(NINES_ENOMEM, "no memory to read %s (%zu bytes)", path, n);
        goto out;
    }
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = nines_err(NINES_EIO, "read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0) {
            rc = nines_err(NINES_ETRUNC, "%s shrank to %zu bytes while read", path, got);
            goto out;
        }
        got += (size_t)r;
    }
out:
    close(fd);
    if (rc) {
        free(p);
        return rc;
    }
    *buf = p;
    *len = n;
    return 0;
}

int nfile_fsync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            return nines_err(NINES_EINVAL, "folder of '%.64s...' is too long", path);
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return nines_err(NINES_EIO, "open folder %s: %s", dir, strerror(errno));
    int rc = 0;
    if (fsync(d) < 0)
        rc = nines_err(NINES_EIO, "fsync folder %s: %s", dir, strerror(errno));
    close(d);
    return rc;
}

int nfile_replace(const char *path, const void *buf, size_t len, int mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return nines_err(NINES_EINVAL, "path '%.64s...' is too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return nines_err(errno == ENOSPC ? NINES_EFULL : NINES_EIO, "create %s: %s", tmp,
                         strerror(errno));
    int rc = 0;
    const uint8_t *p = buf;
    size_t off = 0;
    while (rc == 0 && off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            rc = nines_err(e == ENOSPC ? NINES_EFULL : NINES_EIO, "write %s: %s", tmp,
                           strerror(e));
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = nines_err(errno == ENOSPC ? NINES_EFULL : NINES_EIO, "fsync %s: %s", tmp,
                       strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = nines_err(NINES_EIO, "close %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) < 0)
        rc = nines_err(NINES_EIO, "rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc) {
        unlink(tmp);
        return rc;
    }
    return nfile_fsync_dir(path);
}
