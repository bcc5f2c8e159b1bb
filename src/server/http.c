/* The HTTP side of `wanwu serve` (libmicrohttpd): routing, uploads, answers.
 *
 * A classify request is buffered completely in memory here, checked (size,
 * media type, image header, pixel count), then handed to the worker pool;
 * its connection is suspended until a worker or the timeout answers, so
 * the HTTP threads never wait for inference. */
#include "cli/cli.h"
#include "cli/result_json.h"
#include "core/json.h"
#include "image/image.h"
#include "server/server.h"
#include "server/web_assets.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Raw bytes a client may keep sending after its upload was refused before
 * the connection is dropped (an honest client gets its 413 first). */
#define WW_DISCARD_LIMIT_FACTOR 2
#define WW_UPLOAD_RESERVE_MAX ((size_t)4 << 20)

typedef struct request {
    ww_server *server;
    struct MHD_Connection *connection;
    ww_route route;
    double started_ms;
    int responded;

    /* classify */
    int model_index; /* -1 until the model is known */
    int top_k;
    int multipart;
    struct MHD_PostProcessor *post;
    uint8_t *body;
    size_t body_size, body_capacity;
    uint64_t received; /* raw request body bytes */
    char *file_name;   /* multipart: the upload's file name */
    int image_started, image_done;
    int failed_status; /* an error found while the body was arriving */
    char failed_message[256];
    ww_job *job;
} request;

static int draining(const ww_server *s)
{
    return atomic_load(&s->phase) == WW_PHASE_DRAINING;
}

/* ---- answers ----------------------------------------------------------- */

/* Queues `response` with the headers every answer carries. */
static enum MHD_Result send_response(request *r, int status, struct MHD_Response *response)
{
    if (!response) return MHD_NO;
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    if (draining(r->server)) MHD_add_response_header(response, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(r->connection, (unsigned)status, response);
    MHD_destroy_response(response);
    r->responded = 1;
    ww_metrics_count_request(&r->server->metrics, r->route, status);
    if (r->route == WW_ROUTE_CLASSIFY && r->model_index >= 0)
        ww_metrics_observe_latency(&r->server->metrics, r->model_index,
                                   (ww_cli_now_ms() - r->started_ms) / 1e3);
    return ok;
}

static struct MHD_Response *json_response(char *body, size_t size)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(size, body, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(body);
        return NULL;
    }
    MHD_add_response_header(response, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(response, "Cache-Control", "no-store");
    return response;
}

/* {"error":"..."} with `status`; `extra_header`/`extra_value` may be NULL. */
static enum MHD_Result send_error(request *r, int status, const char *extra_header,
                                  const char *extra_value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static enum MHD_Result send_error(request *r, int status, const char *extra_header,
                                  const char *extra_value, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    char *body = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&body, &size);
    if (!out) return MHD_NO;
    ww_result_json_write_error(out, NULL, message);
    if (fclose(out) != 0) {
        free(body);
        return MHD_NO;
    }
    struct MHD_Response *response = json_response(body, size);
    if (response && extra_header) MHD_add_response_header(response, extra_header, extra_value);
    return send_response(r, status, response);
}

static enum MHD_Result send_method_not_allowed(request *r, const char *method, const char *allow)
{
    return send_error(r, 405, "Allow", allow, "method %s is not allowed here; use %s", method,
                      allow);
}

/* ---- routes without a body ------------------------------------------- */

static enum MHD_Result send_asset(request *r, const ww_web_asset *asset)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(asset->size, (void *)asset->data, MHD_RESPMEM_PERSISTENT);
    if (!response) return MHD_NO;
    MHD_add_response_header(response, "Content-Type", asset->content_type);
    MHD_add_response_header(response, "Cache-Control", "no-cache");
    /* Everything the page needs comes from this server. */
    MHD_add_response_header(response, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' blob: data:; "
                            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
    MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
    return send_response(r, 200, response);
}

static const ww_web_asset *find_asset(const char *url)
{
    if (strcmp(url, "/") == 0) url = "/index.html";
    for (const ww_web_asset *a = ww_web_assets; a->path; a++)
        if (strcmp(a->path, url) == 0) return a;
    return NULL;
}

static enum MHD_Result send_healthz(request *r)
{
    ww_phase phase = (ww_phase)atomic_load(&r->server->phase);
    const char *state = phase == WW_PHASE_READY      ? "ok"
                        : phase == WW_PHASE_STARTING ? "starting"
                                                     : "draining";
    char *body = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&body, &size);
    if (!out) return MHD_NO;
    fprintf(out, "{\"status\":\"%s\"}", state);
    if (fclose(out) != 0) {
        free(body);
        return MHD_NO;
    }
    struct MHD_Response *response = json_response(body, size);
    if (response && phase != WW_PHASE_READY) MHD_add_response_header(response, "Retry-After", "1");
    return send_response(r, phase == WW_PHASE_READY ? 200 : 503, response);
}

static enum MHD_Result send_metrics(request *r)
{
    ww_server *s = r->server;
    int ready = atomic_load(&s->phase) != WW_PHASE_STARTING;
    ww_metrics_snapshot snap = {
        .in_flight = atomic_load(&s->in_flight),
        .queue_depth = ready ? ww_pool_queue_depth(s->pool) : 0,
        .queue_capacity = s->options.queue_capacity,
        .workers = ready ? s->options.workers : 0,
        .busy_workers = ready ? ww_pool_busy_workers(s->pool) : 0,
        .ready = ready,
        .draining = draining(s),
        .model_count = ready ? s->model_count : 0,
        .model_names = s->model_names,
        .model_load_seconds = s->model_load_seconds,
    };
    char *body = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&body, &size);
    if (!out) return MHD_NO;
    ww_metrics_render(&s->metrics, &snap, out);
    if (fclose(out) != 0) {
        free(body);
        return MHD_NO;
    }
    struct MHD_Response *response =
        MHD_create_response_from_buffer(size, body, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(response, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(response, "Cache-Control", "no-store");
    return send_response(r, 200, response);
}

static enum MHD_Result send_models(request *r)
{
    ww_server *s = r->server;
    char *body = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&body, &size);
    if (!out) return MHD_NO;
    fputs("{\"default\":", out);
    ww_json_write_string(out, s->models[0].name);
    fputs(",\"models\":[", out);
    for (int i = 0; i < s->model_count; i++) {
        const ww_served_model *m = &s->models[i];
        fputs(i ? ",{\"name\":" : "{\"name\":", out);
        ww_json_write_string(out, m->name);
        fputs(",\"arch\":", out);
        ww_json_write_string(out, wanwu_model_arch(m->model));
        fputs(",\"file\":", out);
        ww_json_write_string(out, m->file);
        fprintf(out,
                ",\"input_size\":%d,\"num_classes\":%d,\"params\":%lld,\"load_ms\":%.3f,"
                "\"default\":%s}",
                wanwu_model_input_size(m->model), wanwu_model_num_classes(m->model),
                (long long)wanwu_model_num_params(m->model), m->load_seconds * 1e3,
                i == 0 ? "true" : "false");
    }
    fprintf(out, "],\"workers\":%d,\"max_upload_bytes\":%zu,\"max_pixels\":%lld}",
            s->options.workers, s->options.max_upload_bytes, (long long)s->options.max_pixels);
    if (fclose(out) != 0) {
        free(body);
        return MHD_NO;
    }
    return send_response(r, 200, json_response(body, size));
}

/* ---- authentication ---------------------------------------------------- */

/* Compares in time independent of where the strings differ. */
static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

static int authorized(request *r)
{
    const char *token = r->server->options.token;
    if (!token) return 1;
    const char *header =
        MHD_lookup_connection_value(r->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) return 0;
    header += 7;
    while (*header == ' ')
        header++;
    return same_secret(header, token);
}

/* ---- classify: the upload ---------------------------------------------- */

static void fail_upload(request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error met while the body arrives; the answer is sent
 * once the body is complete (libmicrohttpd answers only then). */
static void fail_upload(request *r, int status, const char *fmt, ...)
{
    if (r->failed_status) return;
    r->failed_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failed_message, sizeof r->failed_message, fmt, ap);
    va_end(ap);
    free(r->body);
    r->body = NULL;
    r->body_size = r->body_capacity = 0;
}

static int append_body(request *r, const char *data, size_t size)
{
    size_t limit = r->server->options.max_upload_bytes;
    if (size > limit - r->body_size) {
        fail_upload(r, 413, "the upload is larger than the limit of %zu bytes", limit);
        return 0;
    }
    if (r->body_size + size > r->body_capacity) {
        size_t capacity = r->body_capacity ? r->body_capacity : 64 * 1024;
        while (capacity < r->body_size + size)
            capacity *= 2;
        if (capacity > limit) capacity = limit;
        uint8_t *grown = realloc(r->body, capacity);
        if (!grown) {
            fail_upload(r, 503, "out of memory receiving the upload");
            return 0;
        }
        r->body = grown;
        r->body_capacity = capacity;
    }
    memcpy(r->body + r->body_size, data, size);
    r->body_size += size;
    return 1;
}

/* Multipart parts: keeps the first field named "image". */
static enum MHD_Result on_form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data,
                                     uint64_t offset, size_t size)
{
    (void)kind, (void)content_type, (void)transfer_encoding;
    request *r = cls;
    if (r->failed_status) return MHD_YES;
    if (!key || strcmp(key, "image") != 0) {
        if (r->image_started) r->image_done = 1;
        return MHD_YES;
    }
    if (r->image_done || (r->image_started && offset == 0)) { /* a second "image" */
        r->image_done = 1;
        return MHD_YES;
    }
    r->image_started = 1;
    if (filename && *filename && !r->file_name) {
        r->file_name = strdup(filename);
        if (!r->file_name) fail_upload(r, 503, "out of memory receiving the upload");
    }
    if (size > 0) append_body(r, data, size);
    return MHD_YES;
}

static enum MHD_Result receive_upload(request *r, const char *data, size_t size)
{
    size_t limit = r->server->options.max_upload_bytes;
    r->received += size;
    if (r->failed_status) {
        /* Swallow the rest so the client reads its answer, within reason. */
        return r->received > (uint64_t)limit * WW_DISCARD_LIMIT_FACTOR + (1u << 20) ? MHD_NO
                                                                                    : MHD_YES;
    }
    if (r->received > limit) {
        fail_upload(r, 413, "the upload is larger than the limit of %zu bytes", limit);
        return MHD_YES;
    }
    if (r->multipart) {
        if (MHD_post_process(r->post, data, size) != MHD_YES)
            fail_upload(r, 400, "the multipart/form-data body is malformed");
    } else {
        append_body(r, data, size);
    }
    return MHD_YES;
}

static void on_job_answered(void *ctx)
{
    request *r = ctx;
    MHD_resume_connection(r->connection);
}

/* The whole body is here: check it and hand it to a worker. */
static enum MHD_Result finish_classify(request *r)
{
    ww_server *s = r->server;
    if (r->job) {
        /* Resumed. A job that was never submitted left its reason in
         * failed_status; otherwise the pool answered. */
        if (r->failed_status) goto failed;
        size_t size;
        const char *body = ww_job_body(r->job, &size);
        if (!body) return send_error(r, 503, NULL, NULL, "out of memory writing the answer");
        struct MHD_Response *response =
            MHD_create_response_from_buffer(size, (void *)body, MHD_RESPMEM_MUST_COPY);
        if (!response) return MHD_NO;
        MHD_add_response_header(response, "Content-Type", "application/json; charset=utf-8");
        MHD_add_response_header(response, "Cache-Control", "no-store");
        int status = ww_job_http_status(r->job);
        if (status == 503) MHD_add_response_header(response, "Retry-After", "1");
        return send_response(r, status, response);
    }
    if (r->multipart && !r->failed_status) {
        enum MHD_Result complete = MHD_destroy_post_processor(r->post);
        r->post = NULL;
        if (complete != MHD_YES)
            fail_upload(r, 400, "the multipart/form-data body is cut off or malformed");
        else if (!r->image_started)
            fail_upload(r, 400, "the multipart/form-data body has no field named 'image'");
    }
    if (r->failed_status) goto failed;
    if (r->body_size == 0)
        return send_error(r, 400, NULL, NULL,
                          "the request has no image: send the image file as the body, or as "
                          "the multipart/form-data field 'image'");

    int width, height;
    wanwu_error err;
    if (ww_image_probe(r->body, r->body_size, &width, &height, &err) != WANWU_OK)
        return send_error(r, 400, NULL, NULL, "not an image wanwu can read (JPEG or PNG): %s",
                          err.message);
    if ((int64_t)width * height > s->options.max_pixels)
        return send_error(r, 413, NULL, NULL,
                          "the image is %d x %d = %lld pixels, more than the limit of %lld", width,
                          height, (long long)width * height, (long long)s->options.max_pixels);

    r->job = ww_job_create(r->body, r->body_size, r->file_name, r->model_index, r->top_k,
                           on_job_answered, r);
    r->body = NULL;
    r->body_size = r->body_capacity = 0;
    r->file_name = NULL;
    if (!r->job) return send_error(r, 503, "Retry-After", "1", "out of memory");

    /* Suspend before submitting: a worker may answer (and resume) at once. */
    MHD_suspend_connection(r->connection);
    ww_submit_result submitted = ww_pool_submit(s->pool, r->job);
    if (submitted != WW_SUBMIT_OK) {
        if (submitted == WW_SUBMIT_QUEUE_FULL)
            fail_upload(r, 503, "all %d workers are busy and %d requests are waiting; retry soon",
                        s->options.workers, s->options.queue_capacity);
        else
            fail_upload(r, 503, "the server is shutting down");
        MHD_resume_connection(r->connection);
    }
    return MHD_YES;

failed:
    return send_error(r, r->failed_status, r->failed_status == 503 ? "Retry-After" : NULL,
                      r->failed_status == 503 ? "1" : NULL, "%s", r->failed_message);
}

static int parse_top(const char *text, int *top)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < 1 || v > 1000) return 0;
    *top = (int)v;
    return 1;
}

static int media_type_is(const char *content_type, const char *type)
{
    size_t n = strlen(type);
    return strncasecmp(content_type, type, n) == 0;
}

/* The headers of POST /api/v1/classify: everything that can be refused
 * before reading the body is refused here. */
static enum MHD_Result begin_classify(request *r)
{
    ww_server *s = r->server;
    struct MHD_Connection *c = r->connection;

    const char *model = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
    if (!model || !*model) {
        r->model_index = 0;
    } else {
        for (int i = 0; i < s->model_count; i++)
            if (strcmp(s->models[i].name, model) == 0) r->model_index = i;
        if (r->model_index < 0) {
            char known[1024] = "";
            size_t used = 0;
            for (int i = 0; i < s->model_count && used < sizeof known; i++)
                used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                         s->models[i].name);
            return send_error(r, 404, NULL, NULL, "unknown model '%s'; this server has: %s", model,
                              known);
        }
    }

    r->top_k = 5;
    const char *top = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "top");
    if (top && !parse_top(top, &r->top_k))
        return send_error(r, 400, NULL, NULL, "top must be a whole number from 1 to 1000, not '%s'",
                          top);
    int classes = wanwu_model_num_classes(s->models[r->model_index].model);
    if (r->top_k > classes) r->top_k = classes;

    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (type && media_type_is(type, "multipart/form-data")) {
        r->multipart = 1;
        r->post = MHD_create_post_processor(c, 16 * 1024, on_form_field, r);
        if (!r->post)
            return send_error(r, 400, NULL, NULL,
                              "multipart/form-data needs a boundary in its Content-Type");
    } else if (type && *type && !media_type_is(type, "image/") &&
               !media_type_is(type, "application/octet-stream")) {
        return send_error(r, 415, "Accept-Post",
                          "image/jpeg, image/png, application/octet-stream, multipart/form-data",
                          "unsupported Content-Type '%s': send the image bytes as image/* or "
                          "application/octet-stream, or as the multipart/form-data field 'image'",
                          type);
    }

    const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (length) {
        char *end;
        unsigned long long n = strtoull(length, &end, 10);
        if (end != length && *end == '\0' && n > s->options.max_upload_bytes)
            return send_error(r, 413, NULL, NULL,
                              "the upload is %llu bytes, more than the limit of %zu bytes", n,
                              s->options.max_upload_bytes);
        /* Reserve up front, but not so much that idle clients can tie
         * up memory by announcing large bodies. */
        if (!r->multipart && end != length && *end == '\0' && n > 0) {
            size_t reserve = n < WW_UPLOAD_RESERVE_MAX ? (size_t)n : WW_UPLOAD_RESERVE_MAX;
            r->body = malloc(reserve);
            if (r->body) r->body_capacity = reserve;
        }
    }
    return MHD_YES;
}

/* ---- dispatch ---------------------------------------------------------- */

static int is_get(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static ww_route route_of(const char *url)
{
    if (strcmp(url, "/api/v1/classify") == 0) return WW_ROUTE_CLASSIFY;
    if (strcmp(url, "/api/v1/models") == 0) return WW_ROUTE_MODELS;
    if (strcmp(url, "/healthz") == 0) return WW_ROUTE_HEALTHZ;
    if (strcmp(url, "/metrics") == 0) return WW_ROUTE_METRICS;
    if (strncmp(url, "/api/", 5) != 0 && find_asset(url)) return WW_ROUTE_PAGE;
    return WW_ROUTE_OTHER;
}

/* The refusals every API route shares (starting, token); 1 when it refused. */
static int api_refused(request *r, enum MHD_Result *answer)
{
    if (atomic_load(&r->server->phase) == WW_PHASE_STARTING) {
        *answer = send_error(r, 503, "Retry-After", "1", "the server is still loading its models");
        return 1;
    }
    if (!authorized(r)) {
        *answer = send_error(r, 401, "WWW-Authenticate", "Bearer realm=\"wanwu\"",
                             "this server needs the header 'Authorization: Bearer <token>' with "
                             "the token it was started with");
        return 1;
    }
    return 0;
}

/* First call for a request, headers only. A classify request that can be
 * refused from its headers is refused now, before its body is read (the
 * connection is then closed). Everything else is answered once the
 * request is complete, which keeps the connection reusable. */
static enum MHD_Result begin_request(request *r, const char *method)
{
    if (r->route != WW_ROUTE_CLASSIFY) return MHD_YES;
    if (strcmp(method, "POST") != 0) return send_method_not_allowed(r, method, "POST");
    enum MHD_Result answer;
    if (api_refused(r, &answer)) return answer;
    if (draining(r->server))
        return send_error(r, 503, "Retry-After", "1", "the server is shutting down");
    return begin_classify(r);
}

/* The request is complete: answer it. */
static enum MHD_Result answer_request(request *r, const char *url, const char *method)
{
    enum MHD_Result answer;
    switch (r->route) {
    case WW_ROUTE_CLASSIFY: return finish_classify(r);
    case WW_ROUTE_PAGE:
        if (!is_get(method)) return send_method_not_allowed(r, method, "GET, HEAD");
        return send_asset(r, find_asset(url));
    case WW_ROUTE_HEALTHZ:
        if (!is_get(method)) return send_method_not_allowed(r, method, "GET, HEAD");
        return send_healthz(r);
    case WW_ROUTE_METRICS:
        if (!is_get(method)) return send_method_not_allowed(r, method, "GET, HEAD");
        return send_metrics(r);
    case WW_ROUTE_MODELS:
        if (!is_get(method)) return send_method_not_allowed(r, method, "GET, HEAD");
        if (api_refused(r, &answer)) return answer;
        return send_models(r);
    default: return send_error(r, 404, NULL, NULL, "no such page: %s", url);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    ww_server *s = cls;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->server = s;
        r->connection = connection;
        r->started_ms = ww_cli_now_ms();
        r->model_index = -1;
        *con_cls = r;
        r->route = route_of(url);
        atomic_fetch_add(&s->in_flight, 1);
        return begin_request(r, method);
    }
    if (*upload_data_size > 0) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (r->responded || r->route != WW_ROUTE_CLASSIFY) return MHD_YES; /* ignored */
        return receive_upload(r, upload_data, size);
    }
    if (r->responded) return MHD_YES;
    return answer_request(r, url, method);
}

static void on_request_done(void *cls, struct MHD_Connection *connection, void **con_cls,
                            enum MHD_RequestTerminationCode why)
{
    (void)connection, (void)why;
    ww_server *s = cls;
    request *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->post) MHD_destroy_post_processor(r->post);
    if (r->job) ww_job_release(s->pool, r->job);
    free(r->body);
    free(r->file_name);
    free(r);
    atomic_fetch_sub(&s->in_flight, 1);
}

/* ---- the daemon ---------------------------------------------------------- */

wanwu_status ww_http_start(ww_server *s, wanwu_error *err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->options.port);
    struct addrinfo hints = {0}, *addrs = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(s->options.host, port, &hints, &addrs);
    if (rc != 0) {
        err->status = WANWU_ERR_INVALID_ARGUMENT;
        snprintf(err->message, sizeof err->message, "cannot use host '%s': %s", s->options.host,
                 gai_strerror(rc));
        return err->status;
    }
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (addrs->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* Two threads read uploads and write answers; inference is elsewhere. */
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->options.port, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, addrs->ai_addr, MHD_OPTION_NOTIFY_COMPLETED,
                                 on_request_done, s, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned int)s->options.client_timeout_s,
                                 MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_END);
    freeaddrinfo(addrs);
    if (!s->daemon) {
        err->status = WANWU_ERR_IO;
        snprintf(err->message, sizeof err->message,
                 "cannot listen on %s port %d (in use, or not an address of this machine?)",
                 s->options.host, s->options.port);
        return err->status;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->bound_port = info ? info->port : s->options.port;
    return WANWU_OK;
}

void ww_http_stop_accepting(ww_server *s)
{
    if (!s->daemon) return;
    MHD_socket listener = MHD_quiesce_daemon(s->daemon);
    if (listener != MHD_INVALID_SOCKET) close(listener);
}

void ww_http_stop(ww_server *s)
{
    if (!s->daemon) return;
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
