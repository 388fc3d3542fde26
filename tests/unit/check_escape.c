/* The one escaper for names printed to a terminal (log lines, -l, STATUS=,
 * metrics labels) and the JSON text guard: nothing that moves the cursor,
 * retitles the terminal, reorders the line or forges another gets through,
 * and ordinary names (UTF-8 included) are shown as they are. */
#include <check.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Plain text around anything is copied as it is, and the thing in the
 * middle escaped as it is alone: the spans of plain text copied at once
 * end and start where the characters do. */
START_TEST(test_plain_around)
{
        char in[8] = {0}, *alone, *around, want[64];
        char *(*const fns[])(const char *) = {log_escape, json_escape_text};

        for (size_t f = 0; f < 2; f++)
                for (unsigned a = 1; a < 256; a++)
                        for (unsigned b = 0; b < 256; b++) {
                                in[0] = (char)a, in[1] = (char)b, in[2] = 0;
                                alone = fns[f](in);
                                snprintf(in, sizeof(in), "x%c%syz", (char)a, b ? (char[]){(char)b, 0} : "");
                                around = fns[f](in);
                                ck_assert_ptr_nonnull(alone);
                                ck_assert_ptr_nonnull(around);
                                snprintf(want, sizeof(want), "x%syz", alone);
                                ck_assert_msg(strcmp(around, want) == 0, "%zu: %02x %02x: %s, alone %s", f, a, b,
                                              around, alone);
                                free(alone);
                                free(around);
                        }
}
END_TEST

Suite *escape_suite(void);

static void check_escape(const char *in, const char *want)
{
        char *got = log_escape(in);

        ck_assert_ptr_nonnull(got);
        ck_assert_msg(strcmp(got, want) == 0, "log_escape: got \"%s\", want \"%s\"", got, want);
        free(got);
}

static void check_json(const char *in, const char *want)
{
        char *got = json_escape_text(in);

        ck_assert_ptr_nonnull(got);
        ck_assert_msg(strcmp(got, want) == 0, "json_escape_text: got \"%s\", want \"%s\"", got, want);
        free(got);
}

/* No byte a terminal acts on: C0, DEL, 0x80-0x9f alone, and no UTF-8 C1 or
 * bidi control. */
static bool printable_only(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        return false;
                if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
                        return false;
                if (p[0] == 0xe2 && p[1] == 0x80 && ((p[2] >= 0x8e && p[2] <= 0x8f) || (p[2] >= 0xa8 && p[2] <= 0xae)))
                        return false;
                if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
                        return false;
                if (p[0] == 0xd8 && p[1] == 0x9c)
                        return false;
        }
        return true;
}

START_TEST(test_plain_names)
{
        check_escape("checkpoint-500", "checkpoint-500");
        check_escape("epoch=3-val_loss=0.1234.ckpt", "epoch=3-val_loss=0.1234.ckpt");
        check_escape("", "");
        /* UTF-8 letters, CJK, emoji: shown as they are */
        check_escape("r\xc3\xa9sum\xc3\xa9-\xe5\xad\xa6\xe7\xbf\x92-\xf0\x9f\x98\x80",
                     "r\xc3\xa9sum\xc3\xa9-\xe5\xad\xa6\xe7\xbf\x92-\xf0\x9f\x98\x80");
        /* U+00A0 is just past C1 */
        check_escape("a\xc2\xa0"
                     "b",
                     "a\xc2\xa0"
                     "b");
}
END_TEST

START_TEST(test_c0_del_backslash)
{
        check_escape("a\nb", "a\\nb");
        check_escape("a\tb", "a\\tb");
        check_escape("a\\b", "a\\\\b");
        check_escape("\x1b[2J", "\\x1b[2J");
        check_escape("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07");
        check_escape("a\rb", "a\\x0db");
        check_escape("\x7f", "\\x7f");
        check_escape("\x01\x1f", "\\x01\\x1f");
}
END_TEST

START_TEST(test_c1_and_invalid_utf8)
{
        /* C1 as UTF-8: U+009B (CSI), U+0085 (NEL), U+0080, U+009F */
        check_escape("a\xc2\x9b"
                     "31mb",
                     "a\\u009b31mb");
        check_escape("\xc2\x85\xc2\x80\xc2\x9f", "\\u0085\\u0080\\u009f");
        /* raw 8-bit C1 bytes are not UTF-8: each byte shown */
        check_escape("a\x9b"
                     "31m",
                     "a\\x9b31m");
        check_escape("\xff\xfe", "\\xff\\xfe");
        /* overlong, surrogate, past U+10FFFF, truncated */
        check_escape("\xc0\xaf", "\\xc0\\xaf");
        check_escape("\xed\xa0\x80", "\\xed\\xa0\\x80");
        check_escape("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
        check_escape("\xe2\x80", "\\xe2\\x80");
        check_escape("x\xe2", "x\\xe2");
}
END_TEST

START_TEST(test_bidi)
{
        check_escape("evil\xe2\x80\xae"
                     "gpj.exe",
                     "evil\\u202egpj.exe");
        check_escape("\xe2\x80\x8e\xe2\x80\x8f", "\\u200e\\u200f");
        check_escape("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad", "\\u202a\\u202b\\u202c\\u202d");
        check_escape("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9", "\\u2066\\u2067\\u2068\\u2069");
        check_escape("\xd8\x9c", "\\u061c");
        check_escape("\xe2\x80\xa8\xe2\x80\xa9", "\\u2028\\u2029");
        /* neighbours stay: U+2027, U+202F, U+2065, U+206A */
        check_escape("\xe2\x80\xa7\xe2\x80\xaf", "\xe2\x80\xa7\xe2\x80\xaf");
}
END_TEST

/* Every byte pair and triple: the result never holds a control. */
START_TEST(test_exhaustive_short)
{
        char in[4] = {0}, *e;

        for (unsigned a = 1; a < 256; a++)
                for (unsigned b = 0; b < 256; b++) {
                        in[0] = (char)a, in[1] = (char)b, in[2] = 0;
                        e = log_escape(in);
                        ck_assert_ptr_nonnull(e);
                        ck_assert_msg(printable_only(e), "%02x %02x -> %s", a, b, e);
                        free(e);
                        for (unsigned c = 0x80; c < 0xc0 && (a == 0xe2 || a == 0xd8 || a == 0xc2); c++) {
                                in[2] = (char)c, in[3] = 0;
                                e = log_escape(in);
                                ck_assert_ptr_nonnull(e);
                                ck_assert_msg(printable_only(e), "%02x %02x %02x -> %s", a, b, c, e);
                                free(e);
                        }
                }
}
END_TEST

START_TEST(test_json_text)
{
        /* json-c's own escapes and structure stay as they are */
        check_json("{\"a\\u001b\\n\": [1, \"x\\\\y\"]}\n", "{\"a\\u001b\\n\": [1, \"x\\\\y\"]}\n");
        check_json("\"r\xc3\xa9sum\xc3\xa9\"", "\"r\xc3\xa9sum\xc3\xa9\"");
        check_json("\"\x7f\"", "\"\\u007f\"");
        check_json("\"\xc2\x9b\"", "\"\\u009b\"");
        check_json("\"\xe2\x80\xae\"", "\"\\u202e\"");
        check_json("\"\xff\x9b\"", "\"\\ufffd\\ufffd\"");
}
END_TEST

/* What one log event writes to stderr, in format fmt: the message made of
 * a name of n bytes, each a `c`, and the name as CKPTD_PATH. */
static char *logged(enum log_format fmt, size_t n, char c)
{
        char *name = malloc(n + 1), *out = NULL;
        FILE *tmp = tmpfile();
        int saved = dup(STDERR_FILENO);
        size_t len = 0;
        long end;

        ck_assert_ptr_nonnull(name);
        ck_assert_ptr_nonnull(tmp);
        memset(name, c, n);
        name[n] = '\0';
        log_open(LOG_TARGET_STDERR);
        log_set_format(fmt);
        fflush(stderr);
        ck_assert_int_ge(dup2(fileno(tmp), STDERR_FILENO), 0);
        struct log_fields f = {.action = "delete", .path = name, .has_bytes = true, .bytes = 18446744073709551615u};
        log_struct(LOG_INFO, &f, "deleted %s (%s)", name, "policy");
        fflush(stderr);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        log_set_format(LOG_FORMAT_TEXT);
        end = ftell(tmp);
        ck_assert_int_gt(end, 0);
        out = calloc((size_t)end + 1, 1);
        rewind(tmp);
        len = fread(out, 1, (size_t)end, tmp);
        ck_assert_uint_eq(len, (size_t)end);
        fclose(tmp);
        free(name);
        return out;
}

/* Columns a terminal gives escaped text: one a character, two a wide one,
 * none a combining one; an escape is as long as it is written. */
START_TEST(test_text_width)
{
        _cleanup_free_ char *esc = log_escape("a\x1b");

        ck_assert_int_eq(log_text_width(""), 0);
        ck_assert_int_eq(log_text_width("ckpt_1.pt"), 9);
        ck_assert_int_eq(log_text_width("c\xc3\xa9"), 2);                /* cé */
        ck_assert_int_eq(log_text_width("\xe6\xbc\xa2\xe5\xad\x97"), 4); /* 漢字 */
        ck_assert_int_eq(log_text_width("e\xcc\x81"), 1);                /* e + U+0301 */
        ck_assert_int_eq(log_text_width(esc), 5);                        /* a\x1b */
}
END_TEST

/* A log line of any length is whole and escaped, on stderr as text and as
 * JSON: a message longer than the one made in place, a line longer than
 * the one built in place, and a name whose escaping quadruples it. */
START_TEST(test_line_any_length)
{
        static const size_t lens[] = {0, 1, 480, 500, 511, 512, 1000, 1010, 1024, 3000, 9000};
        static const char chars[] = {'a', '\x1b'};

        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
                for (size_t k = 0; k < sizeof(chars); k++) {
                        size_t n = lens[i];
                        char *name = malloc(n + 1), *msg, *esc, *want, *got;
                        json_object *o, *v;

                        memset(name, chars[k], n);
                        name[n] = '\0';
                        ck_assert_int_ge(asprintf(&msg, "deleted %s (policy)", name), 0);
                        esc = log_escape(msg);
                        ck_assert_int_ge(asprintf(&want, "ckptd: %s\n", esc), 0);
                        got = logged(LOG_FORMAT_TEXT, n, chars[k]);
                        ck_assert_msg(strcmp(got, want) == 0, "%zu x %02x: text line differs (%zu bytes, want %zu)", n,
                                      (unsigned)chars[k], strlen(got), strlen(want));
                        free(got);

                        got = logged(LOG_FORMAT_JSON, n, chars[k]);
                        ck_assert_msg(strchr(got, '\n') == got + strlen(got) - 1, "%zu: one JSON line", n);
                        o = json_tokener_parse(got);
                        ck_assert_ptr_nonnull(o);
                        ck_assert(json_object_object_get_ex(o, "MESSAGE", &v));
                        ck_assert_str_eq(json_object_get_string(v), esc);
                        free(esc);
                        esc = log_escape(name);
                        ck_assert(json_object_object_get_ex(o, "CKPTD_PATH", &v));
                        ck_assert_str_eq(json_object_get_string(v), esc);
                        ck_assert(json_object_object_get_ex(o, "CKPTD_BYTES", &v));
                        ck_assert_str_eq(json_object_get_string(v), "18446744073709551615");
                        ck_assert(json_object_object_get_ex(o, "PRIORITY", &v));
                        ck_assert_str_eq(json_object_get_string(v), "6");
                        json_object_put(o);
                        free(got);
                        free(esc);
                        free(want);
                        free(msg);
                        free(name);
                }
}
END_TEST

Suite *escape_suite(void)
{
        Suite *s = suite_create("escape");
        TCase *tc = tcase_create("escape");

        tcase_add_test(tc, test_plain_names);
        tcase_add_test(tc, test_c0_del_backslash);
        tcase_add_test(tc, test_c1_and_invalid_utf8);
        tcase_add_test(tc, test_bidi);
        tcase_add_test(tc, test_exhaustive_short);
        tcase_add_test(tc, test_json_text);
        tcase_add_test(tc, test_plain_around);
        tcase_add_test(tc, test_text_width);
        tcase_add_test(tc, test_line_any_length);
        suite_add_tcase(s, tc);
        return s;
}
