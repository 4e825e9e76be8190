/* Project-wide error space: names and per-thread detail messages. */
#include "nines/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_detail[512];

const char *nines_strerror(int err)
{
    switch (err) {
    case NINES_OK:
        return "success";
#define NINES_ERR_CASE_(name, val, text) case name: return text;
        NINES_ERRORS(NINES_ERR_CASE_)
#undef NINES_ERR_CASE_
    default:
        return "unknown error code";
    }
}

int nines_err(int err, const char *fmt, ...)
{
    /* format into a scratch buffer first: callers often pass the previous
     * detail (nines_errdetail()) as an argument to wrap it */
    char tmp[sizeof err_detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(err_detail, tmp, sizeof err_detail);
    return err;
}

const char *nines_errdetail(void)
{
    return err_detail;
}
