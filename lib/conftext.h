/* Internal to config.c: the text handed to libconfig. Files are read here,
 * never by libconfig, @include is expanded here, and every integer literal
 * is made 64-bit. A line of the expanded text maps back to FILE:LINE. */
#pragma once

#include <stddef.h>

#include "watchconf.h"

/* A config is a few KiB (the example with five watches is 3 KiB); 1 MiB
 * holds thousands of watches and bounds what a wrong path (a log, a disk
 * image) costs before anything parses it. Included files count too. */
#define CONFIG_SIZE_MAX (1024 * 1024)
/* libconfig's own limit for nested @include. */
#define CONFIG_INCLUDE_DEPTH_MAX 10

struct conftext_seg {
        int first_line; /* line of the expanded text where this piece starts */
        int file_line;  /* its line in file */
        const char *file;
};

struct conftext {
        char *text; /* NUL-terminated, for config_read_string() */
        size_t len, cap;
        int line; /* lines of text so far, 1-based */
        struct conftext_seg *segs;
        size_t n_segs;
        char **files; /* names the segments point to */
        size_t n_files;
        size_t total; /* bytes read from all files */
};

/* Read path (a regular file, at most CONFIG_SIZE_MAX) and what it includes
 * (relative to include_dir, a regular file each) into t. On error returns
 * -errno or -EINVAL with "FILE[:LINE]: message" in error. */
int conftext_load_file(struct conftext *t, const char *path, const char *include_dir, char *error);
/* The same from a string named name; @include is refused (no file access). */
int conftext_load_string(struct conftext *t, const char *text, const char *name, char *error);
/* FILE:LINE of line of the expanded text. */
struct loc conftext_loc(const struct conftext *t, int line);
void conftext_finish(struct conftext *t);
