/* Checkpoint file I/O: plain blocking functions meant for an I/O thread.
 * Write "<path>.tmp", fsync it, rename it over `path`, fsync the
 * directory (README "Fuzzy checkpoints", crash behaviour). */
#include "nfile.h"
#include "kern_ckpt.h"

#include "nines/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int tmp_path(const char *path, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s.tmp", path);
    if (n < 0 || (size_t)n >= cap)
        return nines_err(NINES_EINVAL, "checkpoint path of %zu bytes is too long",
                         strlen(path));
    return 0;
}

int kern_ckpt_file_create(const char *path, int *fd)
{
    char tmp[PATH_MAX];
    int rc = tmp_path(path, tmp, sizeof tmp);
    if (rc < 0)
        return rc;
    int x = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (x < 0)
        return nines_err(NINES_EIO, "create %s: %s", tmp, strerror(errno));
    *fd = x;
    return 0;
}

int kern_ckpt_file_write(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return nines_err(errno == ENOSPC ? NINES_EFULL : NINES_EIO,
                             "checkpoint write of %zu bytes: %s", len, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int kern_ckpt_file_finish(int fd, const char *path)
{
    char tmp[PATH_MAX];
    int rc = tmp_path(path, tmp, sizeof tmp);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (fsync(fd) < 0) {
        rc = nines_err(NINES_EIO, "fsync %s: %s", tmp, strerror(errno));
        close(fd);
        return rc;
    }
    if (close(fd) < 0)
        return nines_err(NINES_EIO, "close %s: %s", tmp, strerror(errno));
    if (rename(tmp, path) < 0)
        return nines_err(NINES_EIO, "rename %s to %s: %s", tmp, path, strerror(errno));
    return nfile_fsync_dir(path);
}

void kern_ckpt_file_discard(int fd, const char *path)
{
    char tmp[PATH_MAX];
    if (fd >= 0)
        close(fd);
    if (tmp_path(path, tmp, sizeof tmp) == 0)
        unlink(tmp);
}

int kern_ckpt_file_read(const char *path, uint8_t **buf, size_t *len)
{
    return nfile_read_all(path, SIZE_MAX, buf, len);
}
