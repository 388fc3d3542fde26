/* size.c: the sizes an operator writes in the config, and how they print. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "size.h"

Suite *size_suite(void);

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)

static uint64_t bytes_of(const char *s)
{
        struct size_spec spec = { 0 };
        int r = size_parse(s, &spec);

        ck_assert_msg(r == 0, "size_parse(\"%s\") = %d", s, r);
        ck_assert(spec.set);
        ck_assert(!spec.is_percent);
        return spec.bytes;
}

static double percent_of(const char *s)
{
        struct size_spec spec = { 0 };
        int r = size_parse(s, &spec);

        ck_assert_msg(r == 0, "size_parse(\"%s\") = %d", s, r);
        ck_assert(spec.set);
        ck_assert(spec.is_percent);
        return spec.percent;
}

static int parse_error(const char *s)
{
        struct size_spec spec = { .set = false, .bytes = 777 };
        int r = size_parse(s, &spec);

        /* a rejected value leaves the old one alone */
        ck_assert(!spec.set);
        ck_assert_uint_eq(spec.bytes, 777);
        return r;
}

START_TEST(test_plain_bytes)
{
        ck_assert_uint_eq(bytes_of("0"), 0);
        ck_assert_uint_eq(bytes_of("123"), 123);
        ck_assert_uint_eq(bytes_of("007"), 7);
        ck_assert_uint_eq(bytes_of("123B"), 123);
        ck_assert_uint_eq(bytes_of("123b"), 123);
        ck_assert_uint_eq(bytes_of("1.0"), 1);
        ck_assert_uint_eq(bytes_of("1.000B"), 1);
        /* the largest size accepted: 2^60 bytes (1 EiB) */
        ck_assert_uint_eq(bytes_of("1152921504606846976"), SIZE_BYTES_MAX);
}
END_TEST

START_TEST(test_units)
{
        ck_assert_uint_eq(bytes_of("50G"), 50 * GIB);
        ck_assert_uint_eq(bytes_of("50g"), 50 * GIB);
        ck_assert_uint_eq(bytes_of("50GB"), 50 * GIB);
        ck_assert_uint_eq(bytes_of("50GiB"), 50 * GIB);
        ck_assert_uint_eq(bytes_of("50gib"), 50 * GIB);
        ck_assert_uint_eq(bytes_of("512K"), 512 * KIB);
        ck_assert_uint_eq(bytes_of("512k"), 512 * KIB);
        ck_assert_uint_eq(bytes_of("3M"), 3 * MIB);
        ck_assert_uint_eq(bytes_of("2T"), 2 * TIB);
        ck_assert_uint_eq(bytes_of("0G"), 0);
}
END_TEST

START_TEST(test_fractions)
{
        ck_assert_uint_eq(bytes_of("1.5T"), TIB + TIB / 2);
        ck_assert_uint_eq(bytes_of("0.5K"), 512);
        ck_assert_uint_eq(bytes_of("1.25G"), GIB + GIB / 4);
        /* rounds down to whole bytes: 0.1K is 102.4 bytes */
        ck_assert_uint_eq(bytes_of("0.1K"), 102);
        ck_assert_uint_eq(bytes_of("0.0001K"), 0);
        /* just below the largest size accepted, through a long fraction */
        ck_assert_uint_eq(bytes_of("1048575.99999999999999999999T"), SIZE_BYTES_MAX - 1);
        ck_assert_uint_eq(bytes_of("1048576T"), SIZE_BYTES_MAX);
}
END_TEST

START_TEST(test_percent)
{
        ck_assert_double_eq(percent_of("10%"), 10.0);
        ck_assert_double_eq(percent_of("12.5%"), 12.5);
        ck_assert_double_eq(percent_of("0%"), 0.0);
        ck_assert_double_eq(percent_of("0.1%"), 0.1);
        ck_assert_double_eq(percent_of("100%"), 100.0);
        ck_assert_double_eq(percent_of("100.000%"), 100.0);
        ck_assert_double_eq(percent_of("007%"), 7.0);
        ck_assert_int_eq(parse_error("101%"), -ERANGE);
        ck_assert_int_eq(parse_error("100.5%"), -ERANGE);
        ck_assert_int_eq(parse_error("100.0000000000001%"), -ERANGE);
        ck_assert_int_eq(parse_error("99999999999999999999999%"), -ERANGE);
}
END_TEST

START_TEST(test_syntax_errors)
{
        static const char *const bad[] = {
                "",      "-1",    "+1",    " 1",    "1 ",    "1\n",   "G",     "1GG",  "1X",
                "1e3",   "0x10",  ".5G",   "1.G",   "1.",    ".",     "%",     "1%%",  "1G%",
                "-5%",   "5 %",   "1Ki",   "1iB",   "1BB",   "1.5",   "1.5B",  "1,5G", "1P",
                "inf",   "nan",   "1_000", "1K B",  "10%x",  "\xff",  "1\xffG", "1.5.5G",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert_msg(parse_error(bad[i]) == -EINVAL, "\"%s\" accepted or wrong error", bad[i]);
        ck_assert_int_eq(size_parse(NULL, &(struct size_spec){ 0 }), -EINVAL);
        ck_assert_int_eq(size_parse("1", NULL), -EINVAL);
}
END_TEST

START_TEST(test_overflow)
{
        ck_assert_int_eq(parse_error("18446744073709551616"), -ERANGE);
        ck_assert_int_eq(parse_error("99999999999999999999999999"), -ERANGE);
        ck_assert_int_eq(parse_error("16777216T"), -ERANGE);
        ck_assert_int_eq(parse_error("17179869184G"), -ERANGE);
        ck_assert_int_eq(parse_error("18014398509481984K"), -ERANGE);
        /* fits as bytes, not as K */
        ck_assert_int_eq(parse_error("18446744073709551615.5K"), -ERANGE);
        /* above 2^60 bytes: fits in 64 bits, but no filesystem is that large */
        ck_assert_int_eq(parse_error("1152921504606846977"), -ERANGE);
        ck_assert_int_eq(parse_error("18446744073709551615"), -ERANGE);
        ck_assert_int_eq(parse_error("1048576.001T"), -ERANGE);
        ck_assert_int_eq(parse_error("1073741825G"), -ERANGE);
        /* syntax is judged before size */
        ck_assert_int_eq(parse_error("99999999999999999999999X"), -EINVAL);
}
END_TEST

START_TEST(test_resolve)
{
        struct size_spec unset = { 0 }, pct = { 0 }, b = { 0 };

        ck_assert_uint_eq(size_resolve(&unset, 1000), 0);
        ck_assert_uint_eq(size_resolve(NULL, 1000), 0);

        ck_assert_int_eq(size_parse("50G", &b), 0);
        ck_assert_uint_eq(size_resolve(&b, 1000), 50 * GIB);
        ck_assert_uint_eq(size_resolve(&b, 0), 50 * GIB);

        ck_assert_int_eq(size_parse("10%", &pct), 0);
        ck_assert_uint_eq(size_resolve(&pct, 1000), 100);
        ck_assert_uint_eq(size_resolve(&pct, 0), 0);
        ck_assert_uint_eq(size_resolve(&pct, 1800 * GIB), 180 * GIB);

        ck_assert_int_eq(size_parse("12.5%", &pct), 0);
        ck_assert_uint_eq(size_resolve(&pct, TIB), TIB / 8);

        ck_assert_int_eq(size_parse("50%", &pct), 0);
        ck_assert_uint_eq(size_resolve(&pct, 3), 1); /* rounds down */

        ck_assert_int_eq(size_parse("100%", &pct), 0);
        ck_assert_uint_eq(size_resolve(&pct, UINT64_MAX), UINT64_MAX);
        ck_assert_int_eq(size_parse("99.9999%", &pct), 0);
        ck_assert(size_resolve(&pct, UINT64_MAX) <= UINT64_MAX);
        ck_assert(size_resolve(&pct, UINT64_MAX) > UINT64_MAX / 100 * 99);

        ck_assert_int_eq(size_parse("0%", &pct), 0);
        ck_assert_uint_eq(size_resolve(&pct, UINT64_MAX), 0);
}
END_TEST

START_TEST(test_format)
{
        char buf[16];

        ck_assert_str_eq(size_format(0, buf, sizeof(buf)), "0B");
        ck_assert_str_eq(size_format(1, buf, sizeof(buf)), "1B");
        ck_assert_str_eq(size_format(1023, buf, sizeof(buf)), "1023B");
        ck_assert_str_eq(size_format(1024, buf, sizeof(buf)), "1K");
        ck_assert_str_eq(size_format(1536, buf, sizeof(buf)), "1.5K");
        ck_assert_str_eq(size_format(512 * KIB, buf, sizeof(buf)), "512K");
        ck_assert_str_eq(size_format(GIB + GIB / 2, buf, sizeof(buf)), "1.5G");
        ck_assert_str_eq(size_format(412 * GIB, buf, sizeof(buf)), "412G");
        ck_assert_str_eq(size_format(UINT64_C(6900000000), buf, sizeof(buf)), "6.4G");
        ck_assert_str_eq(size_format(TIB + TIB / 2, buf, sizeof(buf)), "1.5T");
        /* 1023.999K rounds to 1024K, which is 1M */
        ck_assert_str_eq(size_format(MIB - 1, buf, sizeof(buf)), "1M");
        ck_assert_str_eq(size_format(GIB - 1, buf, sizeof(buf)), "1G");
        ck_assert_str_eq(size_format(UINT64_MAX, buf, sizeof(buf)), "16777216T");
        ck_assert_str_eq(size_format(2000 * TIB, buf, sizeof(buf)), "2000T");
        /* around every power of two: what is shown is the size to the
         * nearest tenth of its unit, in the largest unit it rounds to 1 of */
        for (int k = 0; k < 64; k++)
                for (int d = -3; d <= 3; d++) {
                        uint64_t v = (UINT64_C(1) << k) + (uint64_t)(int64_t)d, mult = 1;
                        char unit = 'B', *end;
                        double shown;

                        if (k == 63 && d > 0)
                                continue;
                        size_format(v, buf, sizeof(buf));
                        shown = strtod(buf, &end);
                        ck_assert_msg(end > buf && end[1] == '\0', "%s", buf);
                        unit = *end;
                        for (const char *u = "KMGT"; *u && unit != 'B'; u++) {
                                mult <<= 10;
                                if (*u == unit)
                                        break;
                        }
                        ck_assert_msg(strchr("BKMGT", unit) != NULL, "%s", buf);
                        ck_assert_msg(fabs(shown - (double)v / (double)mult) <= 0.05 + 1e-9 * shown, "%llu: %s",
                                      (unsigned long long)v, buf);
                        ck_assert_msg(unit == 'T' || shown < 1024, "%llu: %s", (unsigned long long)v, buf);
                        ck_assert_msg(unit == 'B' || shown >= 1, "%llu: %s", (unsigned long long)v, buf);
                }
}
END_TEST

START_TEST(test_format_short_buffer)
{
        char buf[4] = "xxx";

        ck_assert_str_eq(size_format(GIB + GIB / 2, buf, sizeof(buf)), "1.5");
        ck_assert_str_eq(size_format(123456, buf, 1), "");
        /* len 0 writes nothing */
        buf[0] = 'z';
        size_format(1, buf, 0);
        ck_assert_int_eq(buf[0], 'z');
}
END_TEST

START_TEST(test_spec_format)
{
        struct size_spec spec = { 0 };
        char buf[32];

        ck_assert_str_eq(size_spec_format(&spec, buf, sizeof(buf)), "0B");
        ck_assert_str_eq(size_spec_format(NULL, buf, sizeof(buf)), "0B");

#define ROUND(in, out)                                                                  \
        do {                                                                            \
                ck_assert_int_eq(size_parse(in, &spec), 0);                             \
                ck_assert_str_eq(size_spec_format(&spec, buf, sizeof(buf)), out);       \
        } while (0)
        ROUND("10%", "10%");
        ROUND("12.5%", "12.5%");
        ROUND("0.1%", "0.1%");
        ROUND("100%", "100%");
        ROUND("50G", "50G");
        ROUND("50GiB", "50G");
        ROUND("1.5T", "1.5T");
        ROUND("1.25G", "1.25G");
        ROUND("1.125K", "1.125K");
        ROUND("512M", "512M");
        ROUND("1536M", "1.5G");
        ROUND("123", "123B");
        ROUND("1025", "1025B");
        ROUND("0", "0B");
        ROUND("1152921504606846976", "1048576T");
        ROUND("1152921504606846975", "1152921504606846975B");
#undef ROUND
}
END_TEST

START_TEST(test_spec_format_round_trip)
{
        static const uint64_t values[] = {
                0, 1, 1023, 1024, 1025, 1536, 1000000, 6900000000, 512 * MIB, 3 * GIB + 1,
                TIB - 1, TIB, 7 * TIB + 3 * GIB, SIZE_BYTES_MAX - 1, SIZE_BYTES_MAX,
        };
        char buf[32];

        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                struct size_spec in = { .set = true, .bytes = values[i] }, out = { 0 };
                size_spec_format(&in, buf, sizeof(buf));
                ck_assert_int_eq(size_parse(buf, &out), 0);
                ck_assert_msg(out.bytes == values[i], "%s does not give back the bytes", buf);
        }
}
END_TEST

Suite *size_suite(void)
{
        Suite *s = suite_create("size");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_plain_bytes);
        tcase_add_test(tc, test_units);
        tcase_add_test(tc, test_fractions);
        tcase_add_test(tc, test_percent);
        tcase_add_test(tc, test_syntax_errors);
        tcase_add_test(tc, test_overflow);
        tcase_add_test(tc, test_resolve);
        tcase_add_test(tc, test_format);
        tcase_add_test(tc, test_format_short_buffer);
        tcase_add_test(tc, test_spec_format);
        tcase_add_test(tc, test_spec_format_round_trip);
        suite_add_tcase(s, tc);
        return s;
}
