/* Sizes as the config spells them.
 *
 * Accepted, with no white space anywhere:
 *   DIGITS[.DIGITS][UNIT]   UNIT is K, M, G or T (either case, base 1024),
 *                           optionally followed by "B" or "iB" ("50G", "50GB",
 *                           "50GiB" are one size), or a lone "B" for bytes.
 *                           A fraction with a unit rounds down to whole bytes
 *                           ("1.5T"); plain bytes must be whole ("1.0" is
 *                           fine, "1.5" is not).
 *   DIGITS[.DIGITS]%        a percent of the filesystem, 0..100.
 * Rejected: signs, exponents, hex, a dot without digits on both sides
 * (".5G", "1.G"), anything after the unit. The parse is by hand, not strtod,
 * so that the daemon's locale cannot turn "1.5" into 1. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "size.h"

/* Fraction digits that still convert exactly: 100 * 10^13 + 10^13 < 2^53. */
#define PERCENT_FRAC_DIGITS 13

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* floor(0.DIGITS * mult) exactly. Horner from the last digit: for an integer a,
 * floor((a + floor(y)) / 10) == floor((a + y) / 10), so truncating at every step
 * loses nothing, and d * mult + x stays below 10 * 2^40. */
static uint64_t fraction_times(const char *digits, size_t n, uint64_t mult)
{
        uint64_t x = 0;

        while (n > 0) {
                n--;
                x = ((uint64_t)(digits[n] - '0') * mult + x) / 10;
        }
        return x;
}

static int unit_shift(char c)
{
        switch (c) {
        case 'k':
        case 'K': return 10;
        case 'm':
        case 'M': return 20;
        case 'g':
        case 'G': return 30;
        case 't':
        case 'T': return 40;
        default: return -1;
        }
}

static int parse_percent(uint64_t int_part, bool int_overflow, const char *frac, size_t n_frac, struct size_spec *ret)
{
        double scale = 1.0, num;
        size_t n = n_frac < PERCENT_FRAC_DIGITS ? n_frac : PERCENT_FRAC_DIGITS;

        if (int_overflow || int_part > 100)
                return -ERANGE;
        /* int_part * 10^n + digits is an exact integer in a double, and so is
         * 10^n: one correctly rounded division. Digits past 13 are dropped. */
        num = (double)int_part;
        for (size_t i = 0; i < n; i++) {
                num = num * 10 + (frac[i] - '0');
                scale *= 10;
        }
        num /= scale;
        if (num > 100.0)
                return -ERANGE;

        *ret = (struct size_spec){.set = true, .is_percent = true, .percent = num};
        return 0;
}

int size_parse(const char *s, struct size_spec *ret)
{
        const char *p = s, *frac = NULL;
        size_t n_int = 0, n_frac = 0;
        uint64_t int_part = 0, mult, bytes;
        bool overflow = false;
        int shift = 0;

        if (!s || !ret)
                return -EINVAL;

        for (; is_digit(*p); p++, n_int++) {
                unsigned d = (unsigned)(*p - '0');
                if (int_part > (UINT64_MAX - d) / 10)
                        overflow = true; /* keep going: syntax errors win */
                else
                        int_part = int_part * 10 + d;
        }
        if (n_int == 0)
                return -EINVAL;
        if (*p == '.') {
                frac = ++p;
                for (; is_digit(*p); p++)
                        n_frac++;
                if (n_frac == 0)
                        return -EINVAL;
        }

        if (*p == '%') {
                if (p[1] != '\0')
                        return -EINVAL;
                return parse_percent(int_part, overflow, frac, n_frac, ret);
        }

        if (*p != '\0' && (shift = unit_shift(*p)) >= 0) {
                p++;
                if (*p == 'i' || *p == 'I')
                        p++;
                if (*p == 'b' || *p == 'B')
                        p++;
                else if (p[-1] == 'i' || p[-1] == 'I')
                        return -EINVAL; /* "5Ki" */
        } else if (*p == 'b' || *p == 'B') {
                shift = 0;
                p++;
        } else
                shift = 0;
        if (*p != '\0')
                return -EINVAL;

        mult = UINT64_C(1) << shift;
        if (shift == 0)
                for (size_t i = 0; i < n_frac; i++)
                        if (frac[i] != '0')
                                return -EINVAL; /* no fractional bytes */
        if (overflow || int_part > UINT64_MAX >> shift)
                return -ERANGE;
        bytes = int_part << shift;
        if (n_frac > 0 && shift > 0) {
                uint64_t f = fraction_times(frac, n_frac, mult);
                if (f > UINT64_MAX - bytes)
                        return -ERANGE;
                bytes += f;
        }

        if (bytes > SIZE_BYTES_MAX)
                return -ERANGE;

        *ret = (struct size_spec){.set = true, .bytes = bytes};
        return 0;
}

uint64_t size_resolve(const struct size_spec *spec, uint64_t total_bytes)
{
        long double v;

        if (!spec || !spec->set)
                return 0;
        if (!spec->is_percent)
                return spec->bytes;
        if (!(spec->percent > 0))
                return 0; /* also NaN */
        if (spec->percent >= 100)
                return total_bytes;
        /* long double holds any uint64_t exactly on x86-64; the clamp keeps a
         * rounding on other ABIs from exceeding the total. */
        v = (long double)total_bytes * spec->percent / 100;
        if (v >= (long double)total_bytes)
                return total_bytes;
        return (uint64_t)v;
}

/* v in decimal, ending just before end; returns where it starts. */
static char *decimal_before(uint64_t v, char *end)
{
        do
                *--end = (char)('0' + v % 10);
        while (v /= 10);
        return end;
}

char *size_format(uint64_t bytes, char *buf, size_t len)
{
        static const char units[] = "KMGT";
        char text[32], *e = text + sizeof(text) - 1, *b;
        uint64_t tenths = 0;
        size_t n;
        int i;

        if (!buf || len == 0)
                return buf;
        /* made from its end, without printf: a deletion's log line has one */
        *e = '\0';
        if (bytes < 1024) {
                *--e = 'B';
                b = decimal_before(bytes, e);
        } else {
                /* The largest unit not above bytes, in tenths rounded to
                 * nearest; a value that rounds up to 1024 of a unit moves
                 * to the next one, so 1048575 is "1M", not "1024K". */
                for (i = 3; i > 0 && bytes >> (10 * (i + 1)) == 0; i--)
                        ;
                for (;; i++) {
                        unsigned shift = 10 * (unsigned)(i + 1);
                        uint64_t q = bytes >> shift, r = bytes & ((UINT64_C(1) << shift) - 1);
                        tenths = q * 10 + ((r * 10 + (UINT64_C(1) << (shift - 1))) >> shift);
                        if (tenths < 10240 || i == 3)
                                break;
                }
                *--e = units[i];
                if (tenths % 10 != 0) {
                        *--e = (char)('0' + tenths % 10);
                        *--e = '.';
                }
                b = decimal_before(tenths / 10, e);
        }
        /* cut to len as snprintf() would */
        n = strlen(b);
        if (n >= len)
                n = len - 1;
        memcpy(buf, b, n);
        buf[n] = '\0';
        return buf;
}

char *size_spec_format(const struct size_spec *spec, char *buf, size_t len)
{
        static const char units[] = "KMGT";

        if (!buf || len == 0)
                return buf;
        if (!spec || !spec->set) {
                /* what an unset size resolves to */
                snprintf(buf, len, "0B");
                return buf;
        }
        if (spec->is_percent) {
                snprintf(buf, len, "%.15g%%", spec->percent);
                return buf;
        }

        /* The largest unit in which the value is exact with at most three
         * decimals, so that size_parse() gives back the same bytes: "1.5T",
         * "512M", "1025B". */
        for (int i = 3; i >= 0; i--) {
                unsigned shift = 10 * (unsigned)(i + 1);
                uint64_t unit = UINT64_C(1) << shift, q, r, milli;

                if (spec->bytes < unit)
                        continue;
                q = spec->bytes >> shift;
                r = spec->bytes & (unit - 1);
                if ((r * 1000) % unit != 0)
                        continue; /* r < 2^40, no overflow */
                milli = r * 1000 / unit;
                if (milli == 0)
                        snprintf(buf, len, "%" PRIu64 "%c", q, units[i]);
                else if (milli % 100 == 0)
                        snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "%c", q, milli / 100, units[i]);
                else if (milli % 10 == 0)
                        snprintf(buf, len, "%" PRIu64 ".%02" PRIu64 "%c", q, milli / 10, units[i]);
                else
                        snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 "%c", q, milli, units[i]);
                return buf;
        }
        snprintf(buf, len, "%" PRIu64 "B", spec->bytes);
        return buf;
}
