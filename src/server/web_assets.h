/* The web page's files (web/), turned into C arrays at build time by
 * cmake/embed_assets.cmake so the binary serves them with no files on
 * disk and no network. */
#ifndef WW_SERVER_WEB_ASSETS_H
#define WW_SERVER_WEB_ASSETS_H

#include <stddef.h>

typedef struct ww_web_asset {
    const char *path;         /* URL path, e.g. "/app.js" */
    const char *content_type; /* from the file's extension */
    const unsigned char *data;
    size_t size;
} ww_web_asset;

/* Terminated by an entry whose path is NULL. */
extern const ww_web_asset ww_web_assets[];

#endif
