/* ninesdb — the project-wide error space (public).
 *
 * Every function that can fail returns 0 (or a non-negative count) on
 * success and one of the negative codes below on failure. nines_strerror()
 * names a code; nines_errdetail() gives the thread's last detailed message
 * ("unknown column type 'blob' at line 7"), set with nines_err().
 */
#ifndef NINES_ERRORS_H
#define NINES_ERRORS_H

/* X(name, value, text) — values are stable: they travel on the wire. */
#define NINES_ERRORS(X)                                                     \
    X(NINES_EINVAL,       -1,  "invalid argument")                         \
    X(NINES_ENOMEM,       -2,  "out of memory")                            \
    X(NINES_EIO,          -3,  "I/O error")                                \
    X(NINES_ENOTFOUND,    -4,  "not found")                                \
    X(NINES_EEXIST,       -5,  "already exists (duplicate key)")           \
    X(NINES_EAGAIN,       -6,  "resource temporarily unavailable")         \
    X(NINES_ETIMEDOUT,    -7,  "timed out")                                \
    X(NINES_EPROTO,       -8,  "protocol error")                           \
    X(NINES_EVERSION,     -9,  "unsupported protocol or format version")  \
    X(NINES_ETOOBIG,      -10, "too large")                                \
    X(NINES_ECORRUPT,     -11, "corrupt data (checksum or structure)")     \
    X(NINES_ECONFIG,      -12, "configuration error")                      \
    X(NINES_ECLOSED,      -13, "connection closed")                        \
    X(NINES_EDEADLOCK,    -14, "deadlock victim")                          \
    X(NINES_ELOCKTIMEOUT, -15, "lock wait timed out")                      \
    X(NINES_EABORTED,     -16, "transaction aborted")                      \
    X(NINES_ENOTPRIMARY,  -17, "replica is not primary")                   \
    X(NINES_ESTALE,       -18, "stale epoch or version")                   \
    X(NINES_EUNREACHABLE, -19, "node unreachable")                         \
    X(NINES_ENODEV,       -20, "no such device")                           \
    X(NINES_ESTATE,       -21, "operation not allowed in this state")      \
    X(NINES_ETYPE,        -22, "wrong type")                               \
    X(NINES_ESYS,         -23, "system call failed")                       \
    X(NINES_ETRUNC,       -24, "truncated data")                           \
    X(NINES_EFULL,        -25, "no space left")                            \
    X(NINES_EUNKNOWN_MSG, -26, "unknown message type")                   \
    X(NINES_EINDOUBT,     -27, "outcome unknown: the transaction may have committed") \
    X(NINES_ENOTMEMBER,   -28, "node is not in the installed node set") \
    X(NINES_EAUTH,        -29, "authentication failed")                    \
    X(NINES_EPERM,        -30, "permission denied (the user's role)")

enum nines_err {
    NINES_OK = 0,
#define NINES_ERR_ENUM_(name, val, text) name = (val),
    NINES_ERRORS(NINES_ERR_ENUM_)
#undef NINES_ERR_ENUM_
    NINES_ERR_MIN_ = -30
};

/* Name of an error code; never NULL. */
const char *nines_strerror(int err);

/* Set the calling thread's detailed message for `err` and return `err`,
 * so callers can write `return nines_err(NINES_EINVAL, "bad port %d", p);`. */
int nines_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's last detailed message, or nines_strerror() of the
 * last code if none was given. Empty string when nothing failed yet. */
const char *nines_errdetail(void);

#endif
