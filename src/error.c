/* Error codes and messages. */
#include <stdarg.h>
#include <stdio.h>

#include "common.h"

const char *pl_status_name(pl_status code)
{
    switch (code) {
    case PL_OK: return "ok";
    case PL_ERR_ARG: return "bad argument";
    case PL_ERR_NOMEM: return "out of memory";
    case PL_ERR_NOT_FOUND: return "not found";
    case PL_ERR_IO: return "I/O error";
    case PL_ERR_NOT_FILE: return "not a regular file";
    case PL_ERR_EMPTY: return "empty file";
    case PL_ERR_MAGIC: return "bad magic number";
    case PL_ERR_DIMS: return "bad dimensions";
    case PL_ERR_TRUNCATED: return "truncated";
    case PL_ERR_TRAILING: return "trailing bytes";
    case PL_ERR_MISMATCH: return "mismatch";
    case PL_ERR_LABEL: return "label out of range";
    case PL_ERR_CORRUPT: return "corrupt data";
    case PL_ERR_VERSION: return "unsupported version";
    case PL_ERR_TOO_LARGE: return "too large";
    case PL_ERR_THREAD: return "thread error";
    case PL_ERR_NONFINITE: return "non-finite value";
    case PL_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}

pl_status pl_fail(pl_error *err, pl_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
