/* Logging: the systemd journal (native protocol, structured fields) or
 * stderr (one line per event, names escaped). lib/ itself logs at debug only. */
#pragma once

#include <stdio.h>

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

enum log_target {
        LOG_TARGET_AUTO, /* journal when JOURNAL_STREAM names our stderr */
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
        _LOG_TARGET_MAX,
};

/* How stderr lines look (the journal is structured anyway). */
enum log_format {
        LOG_FORMAT_TEXT, /* "ckptd: warning: ..." */
        LOG_FORMAT_JSON, /* one JSON object per line, the journal's fields */
        _LOG_FORMAT_MAX,
};

/* MESSAGE_IDs; the catalog is systemd/ckptd.catalog. */
#define MSGID_DELETED         "5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c01"
#define MSGID_EVICTED         "5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c02"
#define MSGID_FLOOR_UNMET     "5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c03"
#define MSGID_FLOOR_RECOVERED "5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c04"
#define MSGID_RELOADED        "5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c05"
#define MSGID_CONFIG_REJECTED "5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c06"

/* Structured fields of one event; unset members are not sent. */
struct log_fields {
        const char *message_id;
        const char *action; /* delete, would-delete, evict, keep */
        const char *path;   /* raw bytes; escaped by the backend */
        const char *run;
        const char *reason;
        const char *monitor;
        bool has_value;
        double value;
        bool has_bytes;
        uint64_t bytes;
        bool has_free;
        uint64_t free_bytes;
        bool has_floor;
        uint64_t floor_bytes;
};

void log_open(enum log_target target);
void log_set_level(int level);
int log_get_level(void);
enum log_target log_get_target(void);
int log_target_from_string(const char *s);
int log_format_from_string(const char *s);
void log_set_format(enum log_format f);

struct log_fields;
/* Called for every log_struct() event whatever the level (the daemon keeps
 * its last decisions); msg is unescaped. NULL: none. */
typedef void log_observer_fn(int level, const struct log_fields *f, const char *msg);
void log_set_observer(log_observer_fn *fn);

/* Log at `level`; `error` (an errno, sign ignored) is what %m prints.
 * Returns -abs(error), so "return log_errno(r, ...)" works. */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);
/* The same with structured fields. */
int log_struct(int level, const struct log_fields *f, const char *fmt, ...) _printf_(3, 4);

/* Escape a name for a log line, a table, STATUS= or a metrics label: the one
 * escaper for text that reaches a terminal. C0 controls, DEL, backslash and
 * each byte of invalid UTF-8 (so also raw 0x80-0x9f) become \n, \t, \\ or
 * \xNN; C1 controls (U+0080-U+009F), bidi controls (U+061C, U+200E/F,
 * U+202A-U+202E, U+2066-U+2069) and U+2028/U+2029 become \uNNNN. Returns
 * malloc'd text or NULL on ENOMEM. */
char *log_escape(const char *s);
/* How many terminal columns text escaped by log_escape() takes: a wide
 * character (CJK) two, a combining one none, as wcwidth(3) says in
 * C.UTF-8; where that locale is missing, one for each character. */
int log_text_width(const char *s);
/* Print s and then spaces up to width columns (log_text_width()). */
void log_print_padded(FILE *f, const char *s, int width);
/* Make serialized JSON safe to print: json-c escapes C0 controls but writes
 * other bytes raw. DEL, C1, bidi and line-separator code points become \uNNNN
 * escapes (same string once decoded), invalid UTF-8 bytes become \ufffd. */
char *json_escape_text(const char *s);

#define log_debug(...)            log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)             log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)           log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...)          log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)            log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_errno(r, ...)         log_internal(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_internal(LOG_WARNING, (r), __VA_ARGS__)
