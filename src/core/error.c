#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *wanwu_status_name(wanwu_status status)
{
    switch (status) {
    case WANWU_OK: return "ok";
    case WANWU_ERR_INVALID_ARGUMENT: return "invalid argument";
    case WANWU_ERR_IO: return "I/O error";
    case WANWU_ERR_FORMAT: return "format error";
    case WANWU_ERR_UNSUPPORTED: return "unsupported";
    case WANWU_ERR_NO_MEMORY: return "out of memory";
    case WANWU_ERR_NOT_FOUND: return "not found";
    case WANWU_ERR_LIMIT: return "limit exceeded";
    }
    return "unknown status";
}

wanwu_status ww_error_set(wanwu_error *err, wanwu_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

wanwu_status ww_error_prefix(wanwu_error *err, const char *fmt, ...)
{
    if (!err) return WANWU_OK;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Truncation of very long messages is acceptable; keep the prefix. */
    char joined[sizeof err->message];
    size_t plen = strnlen(prefix, sizeof joined - 1);
    memcpy(joined, prefix, plen);
    size_t rest = sizeof joined - 1 - plen;
    size_t mlen = strnlen(err->message, rest);
    memcpy(joined + plen, err->message, mlen);
    joined[plen + mlen] = '\0';
    memcpy(err->message, joined, sizeof joined);
    return err->status;
}

void ww_error_clear(wanwu_error *err)
{
    if (err) {
        err->status = WANWU_OK;
        err->message[0] = '\0';
    }
}
