/* `wanwu classify --recursive DIR --output results.jsonl [--resume] [--jobs N]`:
 * classifies a folder tree into a JSON-lines file, one line per image,
 * each appended with a single write() as soon as it is done, so a killed
 * run (even kill -9) loses no finished line and tears none; --resume skips
 * the images already in the file. */
#ifndef WW_CLI_BATCH_CLASSIFY_H
#define WW_CLI_BATCH_CLASSIFY_H

/* 1 when argv asks for batch mode (--recursive, --output, --resume, --jobs). */
int ww_classify_wants_batch(int argc, char **argv);

/* The batch form of `wanwu classify`; same exit statuses. */
int ww_cmd_classify_batch(int argc, char **argv);

#endif
