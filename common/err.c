/* Project-wide error space: names and per-thread detail messages. */
#include "nines/errors.h"

#include <stdarg.h>
#include <stdio.h>

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
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_detail, sizeof err_detail, fmt, ap);
    va_end(ap);
    return err;
}

const char *nines_errdetail(void)
{
    return err_detail;
}
