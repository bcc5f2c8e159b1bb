/* The JSON object of one classification result, as `wanwu classify --json`
 * prints it and `wanwu serve` answers it: one writer so the two cannot
 * drift apart. */
#ifndef WW_CLI_RESULT_JSON_H
#define WW_CLI_RESULT_JSON_H

#include "wanwu.h"

#include <stdio.h>

/* {"file":…,"model":…,"top":[{"class_index","label","prob"}],"ms":{…}}
 * without a trailing newline. `file` NULL leaves the "file" key out. */
void ww_result_json_write(FILE *out, const char *file, const char *model,
                          const wanwu_prediction *top, int top_count, const wanwu_timings *timings);

/* {"file":…,"error":…}; `file` NULL leaves the "file" key out. */
void ww_result_json_write_error(FILE *out, const char *file, const char *message);

#endif
