/* Minimal JSON output helpers (the CLI and the service write JSON; nothing
 * in wanwu parses it). */
#ifndef WW_CORE_JSON_H
#define WW_CORE_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal: quotes, backslashes and control
 * characters escaped; invalid UTF-8 bytes replaced by U+FFFD so the
 * output is always valid JSON. */
void ww_json_write_string(FILE *out, const char *s);

#endif
