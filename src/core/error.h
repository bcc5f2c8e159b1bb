/* Error helpers shared by every layer: functions return a wanwu_status and
 * fill an optional wanwu_error with a printf-style message. */
#ifndef WW_CORE_ERROR_H
#define WW_CORE_ERROR_H

#include "wanwu.h"

#if defined(__GNUC__)
#define WW_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define WW_PRINTF(a, b)
#endif

/* Sets err (if not NULL) and returns `status`, so callers can write
 * `return ww_error_set(err, WANWU_ERR_FORMAT, "...", ...);`. */
wanwu_status ww_error_set(wanwu_error *err, wanwu_status status, const char *fmt, ...)
    WW_PRINTF(3, 4);

/* Prepends context ("loading foo.pth: ") to an existing message. */
wanwu_status ww_error_prefix(wanwu_error *err, const char *fmt, ...) WW_PRINTF(2, 3);

/* Clears err to WANWU_OK with an empty message. */
void ww_error_clear(wanwu_error *err);

#endif
