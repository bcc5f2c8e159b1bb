#include "cli/batch_classify.h"

#include "cli/bench_dataset.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/result_json.h"
#include "core/fileio.h"
#include "core/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const batch_options[] = {"--recursive", "--output", "--resume", "--jobs"};

int ww_classify_wants_batch(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return 0;
        for (size_t k = 0; k < sizeof batch_options / sizeof batch_options[0]; k++) {
            size_t n = strlen(batch_options[k]);
            if (strncmp(argv[i], batch_options[k], n) == 0 && (!argv[i][n] || argv[i][n] == '='))
                return 1;
        }
    }
    return 0;
}

static void print_help(FILE *out)
{
    fprintf(
        out,
        "usage: wanwu classify --recursive DIR [--recursive DIR2 ...] [IMAGE...]\n"
        "                      [--output results.jsonl [--resume]] [--jobs N]\n"
        "                      [--model PATH|NAME] [--arch NAME] [--top K] [--threads N] [--exif]\n"
        "\n"
        "Classifies every JPEG and PNG file under DIR (sorted; hidden files and folders\n"
        "skipped, symbolic links not followed) and the IMAGE files given, writing one JSON\n"
        "line per image in the format of 'wanwu classify --json' (an {\"file\",\"error\"} line\n"
        "for an image that failed) to --output, or to stdout without it.\n"
        "\n"
        "  --output FILE   append each line with one write() as soon as the image is done,\n"
        "                  so an interrupted run (even kill -9) keeps every finished line\n"
        "                  and tears none. FILE must not exist yet unless --resume is given.\n"
        "  --resume        continue FILE: drop an incomplete last line, skip every image\n"
        "                  that already has a line, classify the rest\n"
        "  --jobs N        N images at a time, each job with its own session (default 1);\n"
        "                  lines are then in completion order\n"
        "  --threads N     threads per job for one inference (default 1)\n"
        "A progress bar (done/total, rate, ETA) is drawn on stderr when it is a terminal.\n"
        "Exit status: 0, 1 if any image failed, 2 on usage errors.\n");
}

/* ---- the image list ------------------------------------------------------ */

typedef struct path_list {
    char **paths;
    size_t count, cap;
} path_list;

static int path_list_push(path_list *l, char *path)
{
    if (!path) return -1;
    if (l->count == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        char **n = realloc(l->paths, ncap * sizeof *n);
        if (!n) {
            free(path);
            return -1;
        }
        l->paths = n;
        l->cap = ncap;
    }
    l->paths[l->count++] = path;
    return 0;
}

static void path_list_free(path_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->paths[i]);
    free(l->paths);
    memset(l, 0, sizeof *l);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return p;
}

/* Adds every image file under dir. Returns 0, or -1 with a message printed. */
static int collect_images(const char *dir, path_list *out, int depth)
{
    if (depth > 64) {
        fprintf(stderr, "wanwu classify: %s: folders nested too deep\n", dir);
        return -1;
    }
    DIR *dh = opendir(dir);
    if (!dh) {
        fprintf(stderr, "wanwu classify: cannot open folder %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dh))) {
        if (e->d_name[0] == '.') continue;
        char *path = join(dir, e->d_name);
        if (!path) {
            rc = -1;
            break;
        }
        struct stat st;
        if (lstat(path, &st) != 0) {
            free(path);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = collect_images(path, out, depth + 1);
            free(path);
        } else if ((S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) &&
                   ww_is_image_file_name(e->d_name)) {
            if (path_list_push(out, path)) rc = -1;
        } else {
            free(path);
        }
    }
    closedir(dh);
    if (rc && errno == ENOMEM) fprintf(stderr, "wanwu classify: out of memory\n");
    return rc;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- resuming -------------------------------------------------------------- */

/* The JSON-encoded form (without quotes) of a file name, as the result
 * writer prints it: lines in the output are matched on this form. */
static char *encode_file_name(const char *path)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&buf, &size);
    if (!m) return NULL;
    ww_json_write_string(m, path);
    if (fclose(m) != 0 || size < 2) {
        free(buf);
        return NULL;
    }
    memmove(buf, buf + 1, size - 2); /* drop the quotes */
    buf[size - 2] = '\0';
    return buf;
}

/* The raw value of the leading "file" key of a result line, or NULL. */
static char *line_file_value(const char *line, size_t len)
{
    static const char prefix[] = "{\"file\":\"";
    size_t plen = sizeof prefix - 1;
    if (len < plen || memcmp(line, prefix, plen) != 0) return NULL;
    size_t i = plen;
    while (i < len && line[i] != '"')
        i += line[i] == '\\' ? 2 : 1;
    if (i >= len) return NULL;
    return strndup(line + plen, i - plen);
}

/* Reads the existing output: truncates an incomplete last line away and
 * collects the file names already done (sorted). Returns 0 or -1. */
static int load_done(int fd, const char *output, path_list *done)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fprintf(stderr, "wanwu classify: cannot read %s: %s\n", output, strerror(errno));
        return -1;
    }
    size_t size = (size_t)st.st_size;
    char *data = malloc(size + 1);
    if (!data) {
        fprintf(stderr, "wanwu classify: out of memory reading %s\n", output);
        return -1;
    }
    size_t got = ww_pread_full(fd, data, size, 0);
    if (got != size) {
        fprintf(stderr, "wanwu classify: cannot read %s: %s\n", output,
                got < size && errno ? strerror(errno) : "it changed while being read");
        free(data);
        return -1;
    }
    size_t keep = size;
    while (keep > 0 && data[keep - 1] != '\n')
        keep--;
    if (keep < size) {
        fprintf(stderr, "wanwu classify: %s: dropping an incomplete last line (%zu bytes)\n",
                output, size - keep);
        if (ftruncate(fd, (off_t)keep) != 0) {
            fprintf(stderr, "wanwu classify: cannot truncate %s: %s\n", output, strerror(errno));
            free(data);
            return -1;
        }
    }
    int rc = 0, line_no = 0;
    for (size_t start = 0; start < keep && rc == 0;) {
        char *nl = memchr(data + start, '\n', keep - start);
        size_t len = (size_t)(nl - (data + start));
        line_no++;
        if (len > 0) {
            char *value = line_file_value(data + start, len);
            if (value)
                rc = path_list_push(done, value);
            else
                fprintf(stderr, "wanwu classify: %s:%d: not a result line, ignored\n", output,
                        line_no);
        }
        start += len + 1;
    }
    free(data);
    if (rc) {
        fprintf(stderr, "wanwu classify: out of memory reading %s\n", output);
        return -1;
    }
    if (done->count) qsort(done->paths, done->count, sizeof *done->paths, compare_strings);
    return 0;
}

/* ---- the workers ------------------------------------------------------------ */

typedef struct batch_state {
    const wanwu_model *model;
    const char *arch_name;
    int top, threads;
    wanwu_image_options image_options;
    char **todo;
    size_t todo_count;

    pthread_mutex_t lock; /* guards everything below */
    size_t next;
    long done, failures;
    int out_fd;
    int write_failed;
    ww_progress progress;
} batch_state;

static int write_line(batch_state *s, const char *line, size_t len)
{
    return ww_write_full(s->out_fd, line, len) == len ? 0 : -1;
}

static void *worker(void *arg)
{
    batch_state *s = arg;
    wanwu_session *session = NULL;
    wanwu_error err;
    wanwu_session_options sopts = {s->threads};
    wanwu_prediction *preds = calloc((size_t)s->top, sizeof *preds);
    int setup_ok = preds && wanwu_session_create(s->model, &sopts, &session, &err) == WANWU_OK;
    if (!setup_ok) {
        pthread_mutex_lock(&s->lock);
        if (!s->write_failed)
            fprintf(stderr, "wanwu classify: %s\n", preds ? err.message : "out of memory");
        s->write_failed = 1;
        pthread_mutex_unlock(&s->lock);
        free(preds);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&s->lock);
        size_t i = s->next < s->todo_count && !s->write_failed ? s->next++ : s->todo_count;
        pthread_mutex_unlock(&s->lock);
        if (i >= s->todo_count) break;
        const char *file = s->todo[i];
        wanwu_timings t;
        wanwu_status st =
            wanwu_classify_file(session, file, &s->image_options, s->top, preds, &t, &err);
        char *line = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&line, &len);
        if (m) {
            if (st == WANWU_OK)
                ww_result_json_write(m, file, s->arch_name, preds, s->top, &t);
            else
                ww_result_json_write_error(m, file, err.message);
            fputc('\n', m);
        }
        int formatted = m && fclose(m) == 0;
        pthread_mutex_lock(&s->lock);
        if (!formatted || write_line(s, line, len) != 0) {
            if (!s->write_failed)
                fprintf(stderr, "wanwu classify: cannot write the result of %s: %s\n", file,
                        formatted ? strerror(errno) : "out of memory");
            s->write_failed = 1;
        } else {
            s->done++;
            if (st != WANWU_OK) {
                s->failures++;
                if (s->out_fd != STDOUT_FILENO) {
                    ww_progress_finish(&s->progress);
                    fprintf(stderr, "wanwu classify: %s\n", err.message);
                }
            }
            ww_progress_update(&s->progress, s->done);
        }
        pthread_mutex_unlock(&s->lock);
        free(line);
    }
    free(preds);
    wanwu_session_free(session);
    return NULL;
}

/* ---- the command ------------------------------------------------------------- */

int ww_cmd_classify_batch(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"model", required_argument, NULL, 'm'},
        {"arch", required_argument, NULL, 'a'},
        {"top", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"threads", required_argument, NULL, 't'},
        {"exif", no_argument, NULL, 'e'},
        {"recursive", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'},
        {"resume", no_argument, NULL, 'R'},
        {"jobs", required_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_spec = NULL, *arch = NULL, *output = NULL;
    int top = 5, threads = 1, jobs = 1, resume = 0;
    wanwu_image_options image_options = {0};
    path_list dirs = {0}, images = {0}, done = {0};
    int status = 2;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'm': model_spec = optarg; break;
        case 'a': arch = optarg; break;
        case 'k':
            if ((top = ww_cli_parse_int("--top", optarg, 1, 1000)) < 0) goto out;
            break;
        case 'j': break; /* output is always JSON lines */
        case 't':
            if ((threads = ww_cli_parse_int("--threads", optarg, 1, 256)) < 0) goto out;
            break;
        case 'e': image_options.apply_exif_orientation = 1; break;
        case 'r':
            if (path_list_push(&dirs, strdup(optarg))) goto oom;
            break;
        case 'o': output = optarg; break;
        case 'R': resume = 1; break;
        case 'J':
            if ((jobs = ww_cli_parse_int("--jobs", optarg, 1, 256)) < 0) goto out;
            break;
        case 'h':
            print_help(stdout);
            status = 0;
            goto out;
        default: fprintf(stderr, "see 'wanwu classify --help'\n"); goto out;
        }
    }
    if (resume && !output) {
        fprintf(stderr, "wanwu classify: --resume needs --output FILE\n");
        goto out;
    }
    status = 1;
    for (size_t i = 0; i < dirs.count; i++)
        if (collect_images(dirs.paths[i], &images, 0)) goto out;
    for (int i = optind; i < argc; i++)
        if (path_list_push(&images, strdup(argv[i]))) goto oom;
    if (images.count == 0) {
        fprintf(stderr, "wanwu classify: no JPEG or PNG files found\n");
        status = dirs.count ? 1 : 2;
        goto out;
    }
    qsort(images.paths, images.count, sizeof *images.paths, compare_strings);

    int fd = STDOUT_FILENO;
    if (output) {
        int flags = O_APPEND | O_CREAT | O_CLOEXEC | (resume ? O_RDWR : O_WRONLY | O_EXCL);
        fd = open(output, flags, 0644);
        if (fd < 0 && !resume && errno == EEXIST) {
            fprintf(stderr,
                    "wanwu classify: %s already exists: add --resume to continue it, or remove "
                    "it to start over\n",
                    output);
            goto out;
        }
        if (fd < 0) {
            fprintf(stderr, "wanwu classify: cannot open %s: %s\n", output, strerror(errno));
            goto out;
        }
        if (resume && load_done(fd, output, &done)) {
            close(fd);
            goto out;
        }
    }

    /* what is left to do, in sorted order */
    size_t todo_count = 0;
    for (size_t i = 0; i < images.count; i++) {
        char *encoded = encode_file_name(images.paths[i]);
        if (!encoded) {
            if (fd != STDOUT_FILENO) close(fd);
            goto oom;
        }
        int already = done.count && bsearch(&encoded, done.paths, done.count, sizeof *done.paths,
                                            compare_strings) != NULL;
        free(encoded);
        if (already) {
            free(images.paths[i]);
        } else {
            images.paths[todo_count++] = images.paths[i];
        }
    }
    size_t skipped = images.count - todo_count;
    images.count = todo_count;
    if (resume && skipped)
        fprintf(stderr, "wanwu classify: %zu of %zu images already in %s\n", skipped,
                skipped + todo_count, output);

    wanwu_model *model = NULL;
    if (todo_count) model = ww_cli_load_model(model_spec, arch, NULL);
    if (todo_count && !model) {
        if (fd != STDOUT_FILENO) close(fd);
        goto out;
    }
    batch_state s = {0};
    s.model = model;
    s.arch_name = model ? wanwu_model_arch(model) : "";
    s.top = model && top > wanwu_model_num_classes(model) ? wanwu_model_num_classes(model) : top;
    s.threads = threads;
    s.image_options = image_options;
    s.todo = images.paths;
    s.todo_count = todo_count;
    s.out_fd = fd;
    pthread_mutex_init(&s.lock, NULL);
    ww_progress_start(&s.progress, "classify", (long)todo_count);
    if (jobs > (int)todo_count) jobs = (int)todo_count;
    pthread_t tids[256];
    int started = 0;
    for (int j = 1; j < jobs; j++) {
        if (pthread_create(&tids[started], NULL, worker, &s) != 0) break;
        started++;
    }
    if (todo_count) worker(&s);
    for (int j = 0; j < started; j++)
        pthread_join(tids[j], NULL);
    ww_progress_finish(&s.progress);
    pthread_mutex_destroy(&s.lock);
    wanwu_model_free(model);

    int closed_ok = 1;
    if (fd != STDOUT_FILENO) {
        if (fdatasync(fd) != 0 && errno != EINVAL) closed_ok = 0;
        if (close(fd) != 0) closed_ok = 0;
        if (!closed_ok)
            fprintf(stderr, "wanwu classify: cannot write %s: %s\n", output, strerror(errno));
    }
    if (output && !s.write_failed)
        fprintf(stderr, "wanwu classify: %ld images classified (%ld failed) into %s\n", s.done,
                s.failures, output);
    status = (s.failures || s.write_failed || !closed_ok || s.done != (long)todo_count) ? 1 : 0;
    goto out;
oom:
    fprintf(stderr, "wanwu classify: out of memory\n");
    status = 1;
out:
    path_list_free(&dirs);
    path_list_free(&images);
    path_list_free(&done);
    return status;
}
