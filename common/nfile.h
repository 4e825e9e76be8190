/* Whole-file reads for the small files nodes load at start (dictionary,
 * checkpoints) (internal, common). */
#ifndef NINES_NFILE_H
#define NINES_NFILE_H
#include <stddef.h>
#include <stdint.h>

/* Read all of `path` into a malloc'd buffer (*buf, *len; the caller frees).
 * NINES_ENOTFOUND (no such file), NINES_ETOOBIG (longer than max),
 * NINES_ETRUNC (the file shrank while read), NINES_EIO, NINES_ENOMEM — each
 * with a detail naming the path. */
int nfile_read_all(const char *path, size_t max, uint8_t **buf, size_t *len);

/* fsync the folder holding `path`, making a rename into it durable (the
 * last step of every temp-file + fsync + rename write). NINES_EIO or
 * NINES_EINVAL (path too long) with a detail naming the folder. */
int nfile_fsync_dir(const char *path);

/* Replace `path` with `len` bytes at `buf`, atomically and durably: a temp
 * file `path`.tmp (mode), fsync, rename, folder fsync — the small files
 * nodes keep (node set, durable bound, restorable epoch). NINES_EFULL
 * (ENOSPC), NINES_EIO, NINES_EINVAL (path too long), with a detail naming
 * the file; the temp file is removed on failure. For the I/O thread. */
int nfile_replace(const char *path, const void *buf, size_t len, int mode);
#endif
