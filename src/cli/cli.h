/* Subcommands of the `wanwu` command-line tool. Each returns the process
 * exit status: 0 success, 1 a failure while working, 2 a usage error. */
#ifndef WW_CLI_CLI_H
#define WW_CLI_CLI_H

#include "wanwu.h"

int ww_cmd_classify(int argc, char **argv);
int ww_cmd_bench(int argc, char **argv);
int ww_cmd_serve(int argc, char **argv); /* src/server/serve.c */
int ww_cmd_models(int argc, char **argv);

/* Loads the model named by `spec` (path, file name or architecture; NULL
 * = default) from the models directory, printing errors to stderr. */
wanwu_model *ww_cli_load_model(const char *spec, const char *arch, double *load_ms);
/* Same with every model option (architecture, preprocessing overrides). */
wanwu_model *ww_cli_load_model_opts(const char *spec, const wanwu_model_options *options,
                                    double *load_ms);

/* Parses a positive integer option value; prints a usage error and
 * returns -1 when it is not one. */
int ww_cli_parse_int(const char *option, const char *value, int min, int max);

double ww_cli_now_ms(void);

#endif
