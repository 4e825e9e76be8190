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
#endif
