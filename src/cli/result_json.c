#include "cli/result_json.h"

#include "core/json.h"

void ww_result_json_write(FILE *out, const char *file, const char *model,
                          const wanwu_prediction *top, int top_count, const wanwu_timings *timings)
{
    fputc('{', out);
    if (file) {
        fputs("\"file\":", out);
        ww_json_write_string(out, file);
        fputc(',', out);
    }
    fputs("\"model\":", out);
    ww_json_write_string(out, model);
    fputs(",\"top\":[", out);
    for (int k = 0; k < top_count; k++) {
        char fallback[32];
        snprintf(fallback, sizeof fallback, "class %d", top[k].class_index);
        fprintf(out, "%s{\"class_index\":%d,\"label\":", k ? "," : "", top[k].class_index);
        ww_json_write_string(out, top[k].label ? top[k].label : fallback);
        fprintf(out, ",\"prob\":%.7f}", (double)top[k].prob);
    }
    fprintf(out, "],\"ms\":{\"decode\":%.3f,\"preprocess\":%.3f,\"inference\":%.3f}}",
            timings->decode_ms, timings->preprocess_ms, timings->inference_ms);
}

void ww_result_json_write_error(FILE *out, const char *file, const char *message)
{
    fputc('{', out);
    if (file) {
        fputs("\"file\":", out);
        ww_json_write_string(out, file);
        fputc(',', out);
    }
    fputs("\"error\":", out);
    ww_json_write_string(out, message);
    fputc('}', out);
}
