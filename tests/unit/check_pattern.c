/* pattern.c: which names are checkpoints and what numbers they carry. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "pattern.h"
#include "preset.h"

Suite *pattern_suite(void);

/* Set by the tests of Lightning's readings (the lightning and nemo presets);
 * each test runs in a process of its own (CK_FORK). */
static bool lightning;

static struct pattern *compile_ok(const char *template)
{
        struct pattern *p = NULL;
        const char *error = NULL;
        int r = lightning ? pattern_compile_lightning(template, &p, &error) : pattern_compile(template, &p, &error);

        ck_assert_msg(r == 0, "\"%s\": %d %s", template, r, error ? error : "");
        ck_assert_ptr_nonnull(p);
        return p;
}

/* Compile template, match name; fields into *f (zeroed first). */
static bool tmatch(const char *template, const char *name, struct fields *f)
{
        struct pattern *p = compile_ok(template);
        bool ok;

        if (f)
                memset(f, 0, sizeof(*f));
        ok = pattern_match(p, name, f);
        pattern_free(p);
        return ok;
}

static bool kvmatch(const char *name, struct fields *f)
{
        struct pattern *p = NULL;
        bool ok;

        ck_assert_int_eq(pattern_new_kv(NULL, NULL, &p), 0);
        memset(f, 0, sizeof(*f));
        ok = pattern_match(p, name, f);
        pattern_free(p);
        return ok;
}

/* A 64-bit LCG (Knuth's MMIX constants): the high bits. */
static uint64_t lcg_next(uint64_t *seed)
{
        *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
        return *seed >> 33;
}

static double field(const struct fields *f, const char *name)
{
        int i = fields_find(f, name);

        ck_assert_msg(i >= 0, "no field %s", name);
        return f->value[i];
}

/* The value of the single field of template on name; the match must succeed. */
static double one(const char *template, const char *name)
{
        struct fields f;

        ck_assert_msg(tmatch(template, name, &f), "\"%s\" does not match \"%s\"", name, template);
        ck_assert_uint_eq(f.n, 1);
        return f.value[0];
}

static const char *compile_error(const char *template)
{
        struct pattern *p = (struct pattern *)0x1;
        const char *error = NULL;

        ck_assert_int_eq(pattern_compile(template, &p, &error), -EINVAL);
        ck_assert_ptr_nonnull(error);
        ck_assert(strlen(error) > 0);
        ck_assert_ptr_eq(p, (struct pattern *)0x1); /* *ret untouched */
        /* a NULL ret_error is fine too */
        ck_assert_int_eq(pattern_compile(template, &p, NULL), -EINVAL);
        return error;
}

START_TEST(test_preset_templates)
{
        struct fields f;

        ck_assert_double_eq(one("checkpoint-{step}", "checkpoint-500"), 500);
        ck_assert_double_eq(one("global_step{step}", "global_step1000"), 1000);
        ck_assert_double_eq(one("iter_{step}", "iter_0000100"), 100);
        ck_assert_double_eq(one("{step}", "1000"), 1000);
        ck_assert_double_eq(one("step-{step}", "step-20"), 20);
        ck_assert_double_eq(one("{step}", "007"), 7);

        ck_assert(!tmatch("checkpoint-{step}", "checkpoint-500.tmp", &f));
        ck_assert(!tmatch("checkpoint-{step}", "checkpoint-", &f));
        ck_assert(!tmatch("checkpoint-{step}", "checkpoint-abc", &f));
        ck_assert(!tmatch("checkpoint-{step}", "xcheckpoint-5", &f));
        ck_assert(!tmatch("checkpoint-{step}", "tmp-checkpoint-5", &f));
        ck_assert(!tmatch("{step}", "", &f));
        ck_assert(!tmatch("{step}", "1000a", &f));
        ck_assert(!tmatch("{step}", "commit_success.txt", &f));
        ck_assert(!tmatch("global_step{step}", "latest", &f));
}
END_TEST

START_TEST(test_tf_group)
{
        struct fields a, b;

        ck_assert(tmatch("ckpt-{step}.*", "ckpt-7.index", &a));
        ck_assert(tmatch("ckpt-{step}.*", "ckpt-7.data-00000-of-00001", &b));
        ck_assert_double_eq(field(&a, "step"), 7);
        ck_assert(fields_equal(&a, &b));
        ck_assert(tmatch("ckpt-{step}.*", "ckpt-7.", &a)); /* "*" may be empty */
        ck_assert(!tmatch("ckpt-{step}.*", "ckpt-7", &a));
        ck_assert(!tmatch("ckpt-{step}.*", "checkpoint", &a));
}
END_TEST

START_TEST(test_two_fields)
{
        struct fields f;

        ck_assert(tmatch("epoch_{epoch}-val_loss={val_loss}.ckpt", "epoch_3-val_loss=0.1234.ckpt", &f));
        ck_assert_uint_eq(f.n, 2);
        ck_assert_str_eq(f.name[0], "epoch");
        ck_assert_str_eq(f.name[1], "val_loss");
        ck_assert_double_eq(f.value[0], 3);
        ck_assert_double_eq(f.value[1], 0.1234);
        ck_assert(!tmatch("epoch_{epoch}-val_loss={val_loss}.ckpt", "epoch_3-val_loss=.ckpt", &f));
        ck_assert(!tmatch("epoch_{epoch}-val_loss={val_loss}.ckpt", "epoch_3-val_loss=0.1.ckpt.tmp", &f));

        /* the format spec is accepted and ignored */
        ck_assert(tmatch("{epoch:02d}-{val_loss:.2f}", "03-0.12", &f));
        ck_assert_double_eq(field(&f, "epoch"), 3);
        ck_assert_double_eq(field(&f, "val_loss"), 0.12);
}
END_TEST

START_TEST(test_backtracking)
{
        struct fields f;

        ck_assert_double_eq(one("{val_loss}.ckpt", "0.1234.ckpt"), 0.1234);
        ck_assert_double_eq(one("epoch_{epoch}.ckpt", "epoch_3.ckpt"), 3);

        ck_assert(tmatch("{a}.{b}", "1.5.2", &f));
        ck_assert_double_eq(field(&f, "a"), 1.5);
        ck_assert_double_eq(field(&f, "b"), 2);

        /* greedy, but the rest must still match */
        ck_assert(tmatch("{a}{b}", "12", &f));
        ck_assert_double_eq(field(&f, "a"), 1);
        ck_assert_double_eq(field(&f, "b"), 2);
        ck_assert(tmatch("{a}e{b}", "10e5", &f));
        ck_assert_double_eq(field(&f, "a"), 10);
        ck_assert_double_eq(field(&f, "b"), 5);
        ck_assert(tmatch("{a}-{b}", "3--5", &f));
        ck_assert_double_eq(field(&f, "a"), 3);
        ck_assert_double_eq(field(&f, "b"), -5);
        ck_assert(tmatch("{a}{b}", "1e-3-2", &f));
        ck_assert_double_eq(field(&f, "a"), 1e-3);
        ck_assert_double_eq(field(&f, "b"), -2);

        /* several stars and fields */
        ck_assert(tmatch("*-{step}-*-{epoch}*", "run-a-5-b-c-2-x", &f));
        ck_assert_double_eq(field(&f, "step"), 5);
        ck_assert_double_eq(field(&f, "epoch"), 2);
        ck_assert(tmatch("*{step}", "model-final-42", &f));
        ck_assert_double_eq(field(&f, "step"), -42); /* "*" may leave the sign */
        ck_assert(tmatch("*_{step}", "model_final_42", &f));
        ck_assert_double_eq(field(&f, "step"), 42);
        ck_assert(tmatch("**{step}**", "x7y", &f));
        ck_assert_double_eq(field(&f, "step"), 7);
}
END_TEST

START_TEST(test_number_grammar)
{
        struct fields f;

        ck_assert_double_eq(one("{x}", "1e-3"), 1e-3);
        ck_assert_double_eq(one("{x}", "1E+10"), 1e10);
        ck_assert_double_eq(one("{x}", "+5"), 5);
        ck_assert_double_eq(one("{x}", "-0.25"), -0.25);
        ck_assert_double_eq(one("{x}", ".5"), 0.5);
        ck_assert_double_eq(one("{x}", "5."), 5);
        ck_assert_double_eq(one("{x}", "1.e2"), 100);
        ck_assert_double_eq(one("{x}", "-0"), 0);
        ck_assert(signbit(one("{x}", "-0")));
        ck_assert(isnan(one("{x}", "nan")));
        ck_assert(isnan(one("{x}", "NaN")));
        ck_assert(isnan(one("{x}", "-NAN")));
        ck_assert(isinf(one("{x}", "inf")) && one("{x}", "inf") > 0);
        ck_assert(isinf(one("{x}", "-inf")) && one("{x}", "-inf") < 0);
        ck_assert(isinf(one("{x}", "Infinity")));
        ck_assert(isinf(one("{x}", "+INFINITY")));
        ck_assert(isnan(one("val_loss={x}.ckpt", "val_loss=nan.ckpt")));
        ck_assert(isinf(one("{x}inity", "infinity")));

        static const char *const not_numbers[] = {
                "", "+", "-", ".", "e5", "1e", "1e+", "1.5e-", "--1", "+-1", "nanx", "infin",
                "infinit", "na", "0x10", " 5", "5 ", "1,5", "1_000", "nan(1)", "١", "5\n",
        };
        for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++)
                ck_assert_msg(!tmatch("{x}", not_numbers[i], &f), "\"%s\" taken as a number", not_numbers[i]);
}
END_TEST

/* Every number a name carries reads as strtod() reads its text, to the
 * bit (the sign of a zero too): decimals of up to 18 digits, a sign, a dot
 * anywhere, leading zeros, and the other forms of the grammar. */
START_TEST(test_number_values_as_strtod)
{
        static const char *const odd[] = {"1e-3", "+5", "-.5", "5.", ".5", "-0", "-0.0", "0.000", "1.e2"};
        struct pattern *p = compile_ok("v={x}.ckpt");
        uint64_t seed = 42;

        for (size_t i = 0; i < 200000 + ELEMENTSOF(odd); i++) {
                char text[40], name[64];
                struct fields f = {};
                double want;

                if (i < ELEMENTSOF(odd)) {
                        snprintf(text, sizeof(text), "%s", odd[i]);
                } else {
                        size_t k = 0, n = 1 + (size_t)(lcg_next(&seed) % 18), dot = lcg_next(&seed) % (n + 2);

                        if (lcg_next(&seed) % 3 == 0)
                                text[k++] = '-';
                        for (size_t d = 0; d < n; d++) {
                                if (d == dot)
                                        text[k++] = '.';
                                /* a zero in four: leading zeros, 0.000x */
                                text[k++] = lcg_next(&seed) % 4 == 0 ? '0' : (char)('0' + lcg_next(&seed) % 10);
                        }
                        if (dot == n)
                                text[k++] = '.';
                        text[k] = '\0';
                }
                snprintf(name, sizeof(name), "v=%s.ckpt", text);
                want = strtod(text, NULL);
                ck_assert_msg(pattern_match(p, name, &f), "%s", name);
                ck_assert_msg(memcmp(&f.value[0], &want, sizeof(want)) == 0, "%s: %.17g, strtod %.17g", text,
                              f.value[0], want);
        }
        pattern_free(p);
}
END_TEST

START_TEST(test_overlong_numbers)
{
        char name[256];
        struct fields f;
        double v;

        /* 255 nines: finite, about 1e255 */
        memset(name, '9', 255);
        name[255] = '\0';
        v = one("{x}", name);
        ck_assert(isfinite(v));
        ck_assert(v > 9.9e254 && v < 1.1e255);

        /* beyond the double range */
        ck_assert(isinf(one("{x}", "1e400")));
        ck_assert_double_eq(one("{x}", "1e-400"), 0);

        /* a long fraction, and a long exponent of zeros */
        memset(name, '0', 255);
        name[0] = '0';
        name[1] = '.';
        name[254] = '1';
        v = one("{x}", name);
        ck_assert(v >= 0 && v < 1e-200);
        ck_assert_double_eq(one("{x}", "2e0000000000000000000000000001"), 20);

        /* longer than any entry name: the heap copy */
        char big[2048];
        memset(big, '1', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        ck_assert(tmatch("{x}", big, &f));
        ck_assert(isinf(f.value[0]));
        /* and the matcher's scratch space on the heap */
        big[1000] = 'x';
        big[1500] = 'y';
        ck_assert(tmatch("{a}x{b}*{c}", big, &f));
        ck_assert_uint_eq(f.n, 3);
        ck_assert(isinf(field(&f, "a")) && isinf(field(&f, "b")) && isinf(field(&f, "c")));
        ck_assert(!tmatch("{a}x{b}*{c}z", big, &f));
}
END_TEST

START_TEST(test_name_max)
{
        char name[256], template[64];
        struct fields f;

        /* 250 'a' then "12345": 255 bytes */
        memset(name, 'a', 250);
        strcpy(name + 250, "12345");
        ck_assert_uint_eq(strlen(name), 255);
        ck_assert_double_eq(one("*{step}", name), 12345);
        ck_assert_double_eq(one("a*{step}", name), 12345);
        ck_assert(!tmatch("*{step}x", name, &f));
        ck_assert(!tmatch("b*{step}", name, &f));

        /* the number at the very start and the very end of 255 bytes */
        memset(name, 'z', 255);
        name[0] = '7';
        name[254] = '9';
        name[255] = '\0';
        snprintf(template, sizeof(template), "{a}*{b}");
        ck_assert(tmatch(template, name, &f));
        ck_assert_double_eq(field(&f, "a"), 7);
        ck_assert_double_eq(field(&f, "b"), 9);
}
END_TEST

START_TEST(test_odd_bytes)
{
        struct fields f;

        /* invalid UTF-8 is just bytes */
        ck_assert_double_eq(one("run\xff\xfe-{step}", "run\xff\xfe-5"), 5);
        ck_assert_double_eq(one("*-{step}", "\xc3\x28-7"), 7);
        ck_assert(!tmatch("run\xff-{step}", "run\xfe-5", &f));
        ck_assert_double_eq(one("*{step}", "\x80\x80\x80" "3"), 3);

        /* newlines are just bytes too; "*" crosses them */
        ck_assert_double_eq(one("*{step}", "a\nb\n42"), 42);
        ck_assert_double_eq(one("x\n{step}", "x\n42"), 42);
        ck_assert(!tmatch("{step}", "42\n", &f));
        ck_assert(!tmatch("{step}", "\n42", &f));

        /* "?" and other glob characters are literal in a template */
        ck_assert(tmatch("a?{step}", "a?1", &f));
        ck_assert(!tmatch("a?{step}", "ab1", &f));
        ck_assert(tmatch("[x]{step}", "[x]1", &f));

        /* "{{" and "}}" are literal braces */
        ck_assert_double_eq(one("{{run}}-{step}", "{run}-5"), 5);
        ck_assert(!tmatch("{{run}}-{step}", "{{run}}-5", &f));
}
END_TEST

START_TEST(test_no_fields)
{
        struct pattern *p = compile_ok("*.ckpt");
        struct fields f = { .n = 99 };

        ck_assert(pattern_match(p, "a.ckpt", &f));
        ck_assert_uint_eq(f.n, 0);
        ck_assert(pattern_match(p, ".ckpt", NULL));
        ck_assert(!pattern_match(p, "a.ckpt.tmp", NULL));
        ck_assert(!pattern_groups(p));
        ck_assert(!pattern_can_capture(p, "step"));
        pattern_free(p);

        ck_assert(tmatch("model", "model", NULL));
        ck_assert(!tmatch("model", "model2", NULL));
        ck_assert(!tmatch("model", "mode", NULL));
}
END_TEST

START_TEST(test_failure_leaves_fields)
{
        struct pattern *p = compile_ok("step-{step}");
        struct fields f = { .n = 1, .name = { "keep" }, .value = { 42 } };

        ck_assert(!pattern_match(p, "step-x", &f));
        ck_assert_uint_eq(f.n, 1);
        ck_assert_double_eq(f.value[0], 42);
        ck_assert(pattern_match(p, "step-1", NULL));
        ck_assert(!pattern_match(p, NULL, &f));
        ck_assert(!pattern_match(NULL, "step-1", &f));
        pattern_free(p);
        ck_assert_ptr_null(pattern_free(NULL));
}
END_TEST

START_TEST(test_template_errors)
{
        char name[80], template[256];

        compile_error("");
        compile_error(NULL);
        compile_error("{");
        compile_error("}");
        compile_error("a}b");
        compile_error("{}");
        compile_error("{:02d}");
        compile_error("{step");
        compile_error("{step:02d");
        compile_error("step}");
        compile_error("{1a}");
        compile_error("{a,b}");
        compile_error("{/a}");
        compile_error("val/{a}");
        compile_error("{a b}");
        compile_error("{ a}");
        compile_error("{a!r}");
        compile_error("{a{b}}");
        compile_error("{a:{w}}");
        compile_error("{a}{a}");
        compile_error("{step}-{epoch}-{step:03d}");
        compile_error("runs/{step}");
        ck_assert_str_eq(compile_error("{a}-{a}"), "duplicate field name in pattern");
        ck_assert_ptr_nonnull(strstr(compile_error("{epoch"), "'{'"));

        /* names: 63 characters are fine, 64 are not */
        memset(name, 'n', 63);
        name[63] = '\0';
        snprintf(template, sizeof(template), "{%s}", name);
        struct pattern *p = compile_ok(template);
        ck_assert(pattern_can_capture(p, name));
        pattern_free(p);
        memset(name, 'n', 64);
        name[64] = '\0';
        snprintf(template, sizeof(template), "{%s}", name);
        compile_error(template);

        /* 16 fields are fine, 17 are not */
        template[0] = '\0';
        for (int i = 0; i < 16; i++)
                snprintf(template + strlen(template), sizeof(template) - strlen(template), "{f%d}_", i);
        p = compile_ok(template);
        struct fields f;
        ck_assert(pattern_match(p, "0_1_2_3_4_5_6_7_8_9_10_11_12_13_14_15_", &f));
        ck_assert_uint_eq(f.n, 16);
        ck_assert_double_eq(field(&f, "f15"), 15);
        pattern_free(p);
        strcat(template, "{f16}");
        compile_error(template);

        /* the length limit */
        char long_template[1100];
        memset(long_template, 'x', 1025);
        long_template[1025] = '\0';
        compile_error(long_template);
        long_template[1024] = '\0';
        pattern_free(compile_ok(long_template));

        ck_assert_int_eq(pattern_compile("{a}", NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_capture_and_groups)
{
        struct pattern *p = compile_ok("epoch_{epoch}-val_loss={val_loss:.4f}.ckpt");

        ck_assert(pattern_can_capture(p, "val_loss"));
        ck_assert(pattern_can_capture(p, "epoch"));
        ck_assert(!pattern_can_capture(p, "step"));
        ck_assert(!pattern_can_capture(p, "val_loss:.4f"));
        ck_assert(!pattern_can_capture(p, NULL));
        /* no "*": equal fields are Lightning's -v1 copies, not one group */
        ck_assert(!pattern_groups(p));
        pattern_free(p);
        p = compile_ok("ckpt-{step}.*");
        ck_assert(pattern_groups(p));
        pattern_free(p);

        ck_assert_int_eq(pattern_new_kv(NULL, NULL, &p), 0);
        ck_assert(pattern_can_capture(p, "val_loss"));
        ck_assert(pattern_can_capture(p, "anything"));
        ck_assert(!pattern_groups(p));
        pattern_free(p);
        ck_assert(!pattern_groups(NULL));
}
END_TEST

/* Backtracking that does not remember failures takes exponential time on these;
 * the test timeout catches that. */
START_TEST(test_no_blowup)
{
        char name[256];
        struct fields f;

        memset(name, 'a', 255);
        name[255] = '\0';
        ck_assert(!tmatch("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", name, &f));
        ck_assert(tmatch("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", name, &f));

        memset(name, '1', 255);
        ck_assert(!tmatch("{a}*{b}*{c}*{d}*{e}*{f}*{g}*{h}*x", name, &f));
        ck_assert(!tmatch("{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}x", name, &f));
        ck_assert(tmatch("{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}", name, &f));
        ck_assert_uint_eq(f.n, 16);
        ck_assert_double_eq(field(&f, "p"), 1); /* the last gets what is left */

        /* more tokens than the matcher keeps on its stack */
        char template[200] = "";
        for (int i = 0; i < 40; i++)
                strcat(template, "*a");
        ck_assert(tmatch(template, name, &f) == false); /* name is all '1' now */
        memset(name, 'a', 255);
        ck_assert(tmatch(template, name, &f));
        strcat(template, "*{n}");
        name[254] = '5';
        ck_assert_double_eq(one(template, name), 5);
}
END_TEST

START_TEST(test_kv_lightning)
{
        struct fields f;

        ck_assert(kvmatch("epoch=3-step=1000-val_loss=0.1234.ckpt", &f));
        ck_assert_uint_eq(f.n, 3);
        ck_assert_str_eq(f.name[0], "epoch");
        ck_assert_str_eq(f.name[1], "step");
        ck_assert_str_eq(f.name[2], "val_loss");
        ck_assert_double_eq(f.value[0], 3);
        ck_assert_double_eq(f.value[1], 1000);
        ck_assert_double_eq(f.value[2], 0.1234);

        /* Lightning's copy suffix is not a field */
        ck_assert(kvmatch("epoch=3-step=1000-v1.ckpt", &f));
        ck_assert_uint_eq(f.n, 2);
        ck_assert_double_eq(field(&f, "epoch"), 3);
        ck_assert_double_eq(field(&f, "step"), 1000);

        ck_assert(kvmatch("val_loss=nan.ckpt", &f));
        ck_assert(isnan(field(&f, "val_loss")));
        ck_assert(kvmatch("val_loss=nan", &f));
        ck_assert(isnan(field(&f, "val_loss")));
        ck_assert(kvmatch("epoch=1-val_acc=-inf.ckpt", &f));
        ck_assert(isinf(field(&f, "val_acc")) && field(&f, "val_acc") < 0);

        /* no fields still matches: the caller decides */
        ck_assert(kvmatch("last.ckpt", &f));
        ck_assert_uint_eq(f.n, 0);
        ck_assert(kvmatch("", &f));
        ck_assert_uint_eq(f.n, 0);
}
END_TEST

START_TEST(test_kv_signs_and_exponents)
{
        struct fields f;

        ck_assert(kvmatch("epoch=2-val_loss=-0.5.ckpt", &f));
        ck_assert_double_eq(field(&f, "val_loss"), -0.5);
        ck_assert(kvmatch("val_loss=-0.5-step=7.ckpt", &f));
        ck_assert_double_eq(field(&f, "val_loss"), -0.5);
        ck_assert_double_eq(field(&f, "step"), 7);
        ck_assert(kvmatch("lr=1e-05-step=3.ckpt", &f));
        ck_assert_double_eq(field(&f, "lr"), 1e-05);
        ck_assert_double_eq(field(&f, "step"), 3);
        ck_assert(kvmatch("loss=1.5e-05.ckpt", &f));
        ck_assert_double_eq(field(&f, "loss"), 1.5e-05);
        ck_assert(kvmatch("x=+5", &f));
        ck_assert_double_eq(field(&f, "x"), 5);
}
END_TEST

START_TEST(test_kv_nemo)
{
        struct fields f;

        ck_assert(kvmatch("megatron_gpt--val_loss=2.35-step=1000-consumed_samples=8000.0.ckpt", &f));
        ck_assert_uint_eq(f.n, 3);
        ck_assert_double_eq(field(&f, "val_loss"), 2.35);
        ck_assert_double_eq(field(&f, "step"), 1000);
        ck_assert_double_eq(field(&f, "consumed_samples"), 8000);
        ck_assert(kvmatch("megatron_gpt--val_loss=2.35-step=1000-consumed_samples=8000.0-last.ckpt", &f));
        ck_assert_uint_eq(f.n, 3);
        ck_assert(kvmatch("megatron_gpt--val_loss=2.35-step=1000-consumed_samples=8000.0.nemo", &f));
        ck_assert_double_eq(field(&f, "consumed_samples"), 8000);
}
END_TEST

START_TEST(test_kv_edges)
{
        struct pattern *p = NULL;
        struct fields f;
        char name[300];

        /* extensions: only trailing alphanumeric ones, never a fraction */
        ck_assert(kvmatch("step=5.tar.gz", &f));
        ck_assert_double_eq(field(&f, "step"), 5);
        ck_assert(kvmatch("epoch=3-val_loss=0.5.h5", &f));
        ck_assert_double_eq(field(&f, "val_loss"), 0.5);
        ck_assert(kvmatch("val_loss=0.5", &f));
        ck_assert_double_eq(field(&f, "val_loss"), 0.5);
        ck_assert(kvmatch("step=5.", &f));
        ck_assert_double_eq(field(&f, "step"), 5);

        /* not numbers, empty keys, repeated keys */
        ck_assert(kvmatch("x=5abc-y=abc-=3-z=-w=2", &f));
        ck_assert_uint_eq(f.n, 1);
        ck_assert_double_eq(field(&f, "w"), 2);
        ck_assert(kvmatch("step=1-step=2", &f));
        ck_assert_uint_eq(f.n, 1);
        ck_assert_double_eq(field(&f, "step"), 1);
        /* the key is the last one before the number (Lightning's inserted name) */
        ck_assert(kvmatch("a=b=5-c=1", &f));
        ck_assert_uint_eq(f.n, 2);
        ck_assert_double_eq(field(&f, "b"), 5);
        ck_assert_double_eq(field(&f, "c"), 1);
        ck_assert(kvmatch("a=b=x-c=1", &f));
        ck_assert_uint_eq(f.n, 1);
        ck_assert_double_eq(field(&f, "c"), 1);
        ck_assert(kvmatch("step=007", &f));
        ck_assert_double_eq(field(&f, "step"), 7);

        /* odd bytes: keys are taken as written */
        ck_assert(kvmatch("a\nb=1-\xff=2", &f));
        ck_assert_uint_eq(f.n, 2);
        ck_assert_double_eq(field(&f, "a\nb"), 1);
        ck_assert_double_eq(field(&f, "\xff"), 2);

        /* a key too long to be a field name is not a field */
        memset(name, 'k', 64);
        strcpy(name + 64, "=1-step=2");
        ck_assert(kvmatch(name, &f));
        ck_assert_uint_eq(f.n, 1);
        ck_assert_double_eq(field(&f, "step"), 2);

        /* at most FIELDS_MAX fields; the rest are dropped */
        name[0] = '\0';
        for (int i = 0; i < 20; i++)
                snprintf(name + strlen(name), sizeof(name) - strlen(name), "f%d=%d-", i, i);
        ck_assert(kvmatch(name, &f));
        ck_assert_uint_eq(f.n, FIELDS_MAX);
        ck_assert_double_eq(field(&f, "f15"), 15);
        ck_assert_int_lt(fields_find(&f, "f16"), 0);

        /* 255 bytes with the number at the very end */
        memset(name, 'x', 255);
        memcpy(name + 250, "s=123", 5);
        name[255] = '\0';
        name[100] = '-';
        ck_assert(kvmatch(name, &f));
        ck_assert_uint_eq(f.n, 0); /* the key is 150 bytes */
        name[240] = '-';
        ck_assert(kvmatch(name, &f));
        ck_assert_uint_eq(f.n, 1);
        ck_assert_double_eq(f.value[0], 123);

        /* other separators */
        ck_assert_int_eq(pattern_new_kv(":", "_", &p), 0);
        ck_assert(pattern_match(p, "epoch:3_step:-7_lr:1e-3.pt", &f));
        ck_assert_uint_eq(f.n, 3);
        ck_assert_double_eq(field(&f, "epoch"), 3);
        ck_assert_double_eq(field(&f, "step"), -7);
        ck_assert_double_eq(field(&f, "lr"), 1e-3);
        pattern_free(p);
        ck_assert_int_eq(pattern_new_kv("==", "--", &p), 0);
        ck_assert(pattern_match(p, "a==1--b==-2--c=3", &f));
        ck_assert_uint_eq(f.n, 2);
        ck_assert_double_eq(field(&f, "b"), -2);
        pattern_free(p);

        ck_assert_int_eq(pattern_new_kv("", NULL, &p), -EINVAL);
        ck_assert_int_eq(pattern_new_kv(NULL, "", &p), -EINVAL);
        ck_assert_int_eq(pattern_new_kv("-", "-", &p), -EINVAL);
        ck_assert_int_eq(pattern_new_kv(NULL, NULL, NULL), -EINVAL);
}
END_TEST

/* Lightning's filename= pasted as a pattern: the names it writes with
 * auto_insert_metric_name True and False (ModelCheckpoint.format_checkpoint_name:
 * "name=" inserted before each "{name", "-v<N>" on a clash, then ".ckpt"). */
/* A key the name gives no one number is unsure, never absent: a monitor
 * so written must not rank its checkpoint after every number. */
static bool kv_unsure(const char *name, const char *key)
{
        struct fields f;

        ck_assert(kvmatch(name, &f));
        return fields_unsure(&f, name, key);
}

START_TEST(test_kv_unsure)
{
        struct fields f;
        char name[256];

        /* a value that is not a number: a torch tensor formatted into the
         * name, a decimal comma, hex, a stray space, nothing */
        ck_assert(kv_unsure("epoch=1-val_loss=tensor(0.1000, device='cuda:0').ckpt", "val_loss"));
        ck_assert(kv_unsure("epoch=2-val_loss=tensor(0.0500).ckpt", "val_loss"));
        ck_assert(kv_unsure("epoch=1-val_loss=0,05.ckpt", "val_loss"));
        ck_assert(kv_unsure("epoch=3-val_loss=0x10.ckpt", "val_loss"));
        ck_assert(kv_unsure("epoch=1-val_loss=5e-2 .ckpt", "val_loss"));
        ck_assert(kv_unsure("epoch=1-val_loss=.ckpt", "val_loss"));
        ck_assert(kvmatch("epoch=1-val_loss=tensor(0.1000, device='cuda:0').ckpt", &f));
        ck_assert_uint_eq(f.n, 1);
        ck_assert_double_eq(field(&f, "epoch"), 1);
        ck_assert(!kv_unsure("epoch=1-val_loss=tensor(0.1000).ckpt", "epoch"));

        /* two values: unsure when they differ */
        ck_assert(kv_unsure("epoch=1-val_loss=0.9-val_loss=0.05.ckpt", "val_loss"));
        ck_assert(kv_unsure("epoch=1-val_loss=0.9-val_loss=tensor(0.05).ckpt", "val_loss"));
        ck_assert(kv_unsure("val_loss=nan-val_loss=1", "val_loss"));
        ck_assert(!kv_unsure("epoch=1-val_loss=0.5-val_loss=0.50.ckpt", "val_loss"));
        ck_assert(!kv_unsure("val_loss=nan-val_loss=nan", "val_loss"));

        /* Lightning's inserted name is no second value */
        ck_assert(!kv_unsure("epoch=3-val_loss=val_loss=0.29.ckpt", "val_loss"));
        ck_assert(kvmatch("epoch=3-val_loss=val_loss=0.29.ckpt", &f));
        ck_assert_double_eq(field(&f, "val_loss"), 0.29);
        ck_assert(!kv_unsure("epoch_epoch=3-val_loss=0.29.ckpt", "epoch"));

        /* plain names are sure of every key, also of one they lack */
        ck_assert(!kv_unsure("epoch=3-step=1000-val_loss=0.1234.ckpt", "val_loss"));
        ck_assert(!kv_unsure("epoch=3-step=1000.ckpt", "val_loss"));
        ck_assert(!kv_unsure("model=resnet-epoch=3-val_loss=0.1.ckpt", "val_loss"));
        ck_assert(kv_unsure("model=resnet-epoch=3-val_loss=0.1.ckpt", "model"));

        /* a key past the FIELDS_MAX held is unsure, not absent */
        name[0] = '\0';
        for (int i = 0; i < 17; i++)
                snprintf(name + strlen(name), sizeof(name) - strlen(name), "f%d=%d-", i, i);
        ck_assert(!kv_unsure(name, "f15"));
        ck_assert(kv_unsure(name, "f16"));

        /* more unsure keys than are noted: every key without a value is;
         * one written as one number is not */
        name[0] = '\0';
        for (int i = 0; i <= FIELDS_UNSURE_MAX; i++)
                snprintf(name + strlen(name), sizeof(name) - strlen(name), "k%d=x-", i);
        strcat(name, "val_loss=0.1");
        ck_assert(kv_unsure(name, "absent"));
        ck_assert(!kv_unsure(name, "val_loss"));

        /* what a tensor's repr leaves after its key takes no room */
        ck_assert(kvmatch("epoch=1-val_loss=tensor(0.0100, device='cuda:0', grad_fn=<AddBackward0>).ckpt", &f));
        ck_assert_uint_eq(f.n_unsure, 1);
        ck_assert(fields_unsure(&f, "epoch=1-val_loss=tensor(0.0100, device='cuda:0', grad_fn=<AddBackward0>).ckpt",
                                "val_loss"));
}
END_TEST

/* A template's "*" may take the rest of a value, or a second one: that
 * field is unsure. */
START_TEST(test_template_star_unsure)
{
        const char *t = "epoch={epoch}-val_acc={val_acc}*.ckpt";
        struct fields f;

        ck_assert(tmatch(t, "epoch=1-val_acc=0,99.ckpt", &f));
        ck_assert(fields_unsure(&f, "epoch=1-val_acc=0,99.ckpt", "val_acc"));
        ck_assert(!fields_unsure(&f, "epoch=1-val_acc=0,99.ckpt", "epoch"));
        ck_assert(tmatch(t, "epoch=2-val_acc=0.1-val_acc=0.98.ckpt", &f));
        ck_assert(fields_unsure(&f, "epoch=2-val_acc=0.1-val_acc=0.98.ckpt", "val_acc"));
        ck_assert(tmatch(t, "epoch=3-val_acc=0.7.ckpt", &f));
        ck_assert(!fields_unsure(&f, "epoch=3-val_acc=0.7.ckpt", "val_acc"));
        ck_assert(tmatch(t, "epoch=3-val_acc=0.7-v1.ckpt", &f));
        ck_assert(!fields_unsure(&f, "epoch=3-val_acc=0.7-v1.ckpt", "val_acc"));
        ck_assert(tmatch(t, "epoch=3-val_acc=0.7-my_val_acc=0.1.ckpt", &f));
        ck_assert(!fields_unsure(&f, "epoch=3-val_acc=0.7-my_val_acc=0.1.ckpt", "val_acc"));
        /* without "*" the template says where the value ends */
        ck_assert(!tmatch("epoch={epoch}-val_acc={val_acc}.ckpt", "epoch=1-val_acc=0,99.ckpt", &f));
}
END_TEST

START_TEST(test_template_literal_outside_lightning)
{
        /* without the lightning or nemo preset a template names exactly
         * what it says: "checkpoint-{step}" takes no "checkpoint-step=5" */
        ck_assert(!tmatch("checkpoint-{step}", "checkpoint-step=500", NULL));
        ck_assert(!tmatch("checkpoint-{step}", "checkpoint-500-v1.ckpt", NULL));
        ck_assert(!tmatch("epoch_{epoch:02d}-val_loss={val_loss:.3f}", "epoch_epoch=00-val_loss=val_loss=1.223.ckpt",
                          NULL));
        ck_assert(tmatch("checkpoint-{step}", "checkpoint-500", NULL));
}
END_TEST

START_TEST(test_lightning_auto_insert)
{
        static const char *const templates[] = {
                "epoch_{epoch:02d}-val_loss={val_loss:.3f}",
                "epoch_{epoch:02d}-val_loss={val_loss:.3f}.ckpt",
        };
        struct fields f;
        lightning = true;

        for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
                const char *t = templates[i];

                /* True (the default) */
                ck_assert(tmatch(t, "epoch_epoch=00-val_loss=val_loss=1.223.ckpt", &f));
                ck_assert_uint_eq(f.n, 2);
                ck_assert_double_eq(field(&f, "epoch"), 0);
                ck_assert_double_eq_tol(field(&f, "val_loss"), 1.223, 1e-12);
                /* False */
                ck_assert(tmatch(t, "epoch_11-val_loss=0.335.ckpt", &f));
                ck_assert_double_eq(field(&f, "epoch"), 11);
                ck_assert_double_eq_tol(field(&f, "val_loss"), 0.335, 1e-12);
                /* one way for all fields, never mixed */
                ck_assert(!tmatch(t, "epoch_epoch=00-val_loss=1.223.ckpt", &f));
                ck_assert(!tmatch(t, "epoch_00-val_loss=val_loss=1.223.ckpt", &f));
                /* other extensions, partial names, temporaries */
                ck_assert(!tmatch(t, "epoch_00-val_loss=1.223.pt", &f));
                ck_assert(!tmatch(t, "epoch_00-val_loss=1.223.ckpt.tmp", &f));
                ck_assert(!tmatch(t, "epoch_00-val_loss=.ckpt", &f));
                ck_assert(!tmatch(t, "last.ckpt", &f));
                ck_assert(!tmatch(t, "last-v1.ckpt", &f));
        }
        /* pasted without ".ckpt", the bare name matches too; with ".ckpt" it must be there */
        ck_assert(tmatch(templates[0], "epoch_00-val_loss=1.223", &f));
        ck_assert(!tmatch(templates[1], "epoch_00-val_loss=1.223", &f));

        /* Lightning's default filename and its docstring examples */
        ck_assert(tmatch("{epoch}-{step}", "epoch=3-step=400.ckpt", &f));
        ck_assert_double_eq(field(&f, "epoch"), 3);
        ck_assert_double_eq(field(&f, "step"), 400);
        ck_assert(tmatch("{epoch}-{step}", "3-400.ckpt", &f));
        ck_assert_double_eq(field(&f, "step"), 400);
        ck_assert(tmatch("checkpoint_{epoch:02d}-{acc:02.0f}", "checkpoint_epoch=01-acc=01.ckpt", &f));
        ck_assert_double_eq(field(&f, "acc"), 1);
        ck_assert(tmatch("{missing:d}", "missing=0.ckpt", &f));
        ck_assert_double_eq(field(&f, "missing"), 0);
        /* a field name that is a prefix of another's */
        ck_assert(tmatch("{epoch}-{epoch_test}", "epoch=1-epoch_test=2.ckpt", &f));
        ck_assert_double_eq(field(&f, "epoch"), 1);
        ck_assert_double_eq(field(&f, "epoch_test"), 2);
}
END_TEST

START_TEST(test_lightning_version_suffix)
{
        const char *t = "epoch_{epoch:02d}-val_loss={val_loss:.3f}";
        struct fields a, b;
        lightning = true;

        ck_assert(tmatch(t, "epoch_epoch=03-val_loss=val_loss=0.578.ckpt", &a));
        ck_assert(tmatch(t, "epoch_epoch=03-val_loss=val_loss=0.578-v1.ckpt", &b));
        ck_assert(fields_equal(&a, &b));
        ck_assert(tmatch(t, "epoch_03-val_loss=0.578-v12.ckpt", &b));
        ck_assert(fields_equal(&a, &b));
        ck_assert(tmatch("epoch_{epoch:02d}-val_loss={val_loss:.3f}.ckpt", "epoch_03-val_loss=0.578-v2.ckpt", &b));
        ck_assert(fields_equal(&a, &b));
        /* only right before ".ckpt", and only "-v<digits>" */
        ck_assert(!tmatch(t, "epoch_03-val_loss=0.578-v1", &b));
        ck_assert(!tmatch(t, "epoch_03-val_loss=0.578-v.ckpt", &b));
        ck_assert(!tmatch(t, "epoch_03-val_loss=0.578-w1.ckpt", &b));
        ck_assert(!tmatch(t, "epoch_03-val_loss=0.578v1.ckpt", &b));
        ck_assert(!tmatch(t, "epoch_03-val_loss=0.578-v1-v1.ckpt", &b));
        /* a template of its own extension gets no Lightning additions */
        ck_assert(!tmatch("model_{step}.pt", "model_5-v1.pt", &b));
        ck_assert(!tmatch("model_{step}.pt", "model_5.pt.ckpt", &b));
        ck_assert(tmatch("model_{step}.pt", "model_step=5.pt", &b));
        /* nor does one with "*" (TensorFlow's groups) */
        ck_assert(!tmatch("ckpt-{step}.*", "ckpt-step=7.index", &b));
        /* the copies are separate checkpoints */
        struct pattern *p = compile_ok(t);
        ck_assert(!pattern_groups(p));
        pattern_free(p);
}
END_TEST

START_TEST(test_lightning_nan_inf)
{
        const char *t = "epoch_{epoch:02d}-val_loss={val_loss:.3f}";
        struct fields f;
        lightning = true;

        ck_assert(tmatch(t, "epoch_epoch=07-val_loss=val_loss=nan.ckpt", &f));
        ck_assert_double_eq(field(&f, "epoch"), 7);
        ck_assert(isnan(field(&f, "val_loss")));
        ck_assert(tmatch(t, "epoch_07-val_loss=nan.ckpt", &f));
        ck_assert(isnan(field(&f, "val_loss")));
        ck_assert(tmatch(t, "epoch_epoch=07-val_loss=val_loss=inf.ckpt", &f));
        ck_assert(isinf(field(&f, "val_loss")) && field(&f, "val_loss") > 0);
        ck_assert(tmatch(t, "epoch_epoch=07-val_loss=val_loss=-inf-v1.ckpt", &f));
        ck_assert(isinf(field(&f, "val_loss")) && field(&f, "val_loss") < 0);
        ck_assert(tmatch(t, "epoch_07-val_loss=-inf.ckpt", &f));
        ck_assert(isinf(field(&f, "val_loss")) && field(&f, "val_loss") < 0);
        ck_assert(tmatch(t, "epoch_07-val_loss=nan-v3.ckpt", &f));
        ck_assert(isnan(field(&f, "val_loss")));
}
END_TEST

/* Lightning does not replace '/' in metric names: with auto_insert_metric_name
 * it would write "val/acc=..." into a subdirectory, so only the False names
 * can be entry names; the field keeps its name for monitor = "val/acc". */
START_TEST(test_lightning_slash_names)
{
        const char *t = "epoch={epoch}-step={step}-val_acc={val/acc:.2f}";
        struct pattern *p = compile_ok(t);
        struct fields f;
        lightning = true;

        ck_assert(pattern_can_capture(p, "val/acc"));
        pattern_free(p);
        ck_assert(tmatch(t, "epoch=2-step=9-val_acc=0.87.ckpt", &f));
        ck_assert_uint_eq(f.n, 3);
        ck_assert_double_eq_tol(field(&f, "val/acc"), 0.87, 1e-12);
        ck_assert(tmatch(t, "epoch=2-step=9-val_acc=nan-v1.ckpt", &f));
        ck_assert(isnan(field(&f, "val/acc")));
        ck_assert(tmatch("{val/loss}-{train.loss}-{x-y}", "0.5-0.25-3.ckpt", &f));
        ck_assert_double_eq(field(&f, "val/loss"), 0.5);
        ck_assert_double_eq(field(&f, "train.loss"), 0.25);
        ck_assert_double_eq(field(&f, "x-y"), 3);
        /* the auto-inserted spelling cannot be one entry name */
        ck_assert(!tmatch(t, "acc=val/acc=0.87.ckpt", &f));
}
END_TEST

/* Key=value mode on auto-inserted names: the inserted "name=" is the key. */
START_TEST(test_kv_auto_insert)
{
        struct fields f;

        ck_assert(kvmatch("epoch_epoch=00-val_loss=val_loss=1.222.ckpt", &f));
        ck_assert_uint_eq(f.n, 2);
        ck_assert_double_eq(field(&f, "epoch"), 0);
        ck_assert_double_eq_tol(field(&f, "val_loss"), 1.222, 1e-12);
        ck_assert_int_lt(fields_find(&f, "epoch_epoch"), 0);

        ck_assert(kvmatch("val_loss=val_loss=0.291", &f));
        ck_assert_uint_eq(f.n, 1);
        ck_assert_double_eq_tol(field(&f, "val_loss"), 0.291, 1e-12);

        ck_assert(kvmatch("epoch_epoch=07-val_loss=val_loss=nan.ckpt", &f));
        ck_assert_double_eq(field(&f, "epoch"), 7);
        ck_assert(isnan(field(&f, "val_loss")));
        ck_assert(kvmatch("epoch_epoch=07-val_loss=val_loss=-inf-v1.ckpt", &f));
        ck_assert_uint_eq(f.n, 2);
        ck_assert(isinf(field(&f, "val_loss")) && field(&f, "val_loss") < 0);

        /* "loss={val_loss}": the inserted name wins */
        ck_assert(kvmatch("loss=val_loss=0.5-step=3.ckpt", &f));
        ck_assert_double_eq(field(&f, "val_loss"), 0.5);
        ck_assert_int_lt(fields_find(&f, "loss"), 0);
        /* "step.step", "stepstep" too; other keys stay as written */
        ck_assert(kvmatch("step.step=4-stepstep=5", &f));
        ck_assert_uint_eq(f.n, 1);
        ck_assert_double_eq(field(&f, "step"), 4);
        ck_assert(kvmatch("epoch_step=4-a_a=1-val_loss=2", &f));
        ck_assert_double_eq(field(&f, "epoch_step"), 4);
        ck_assert_double_eq(field(&f, "a_a"), 1);
        ck_assert_double_eq(field(&f, "val_loss"), 2);
}
END_TEST

/* last.ckpt and its clash copies are never checkpoints under the presets
 * that read Lightning names, though a NeMo "-last-v1" name carries fields. */
static bool preset_excludes(const char *preset, const char *name)
{
        const struct preset *p = preset_find(preset);

        ck_assert_ptr_nonnull(p);
        for (size_t i = 0; i < sizeof(p->exclude) / sizeof(p->exclude[0]) && p->exclude[i]; i++)
                if (glob_match(p->exclude[i], name))
                        return true;
        return false;
}

START_TEST(test_preset_last_copies)
{
        const char *nemo = "megatron_gpt--val_loss=2.35-step=1000-consumed_samples=8000.0";
        char name[256];
        struct fields f;

        ck_assert(preset_excludes("lightning", "last.ckpt"));
        ck_assert(preset_excludes("lightning", "last-v1.ckpt"));
        ck_assert(preset_excludes("lightning", "last-v12.ckpt"));
        ck_assert(!preset_excludes("lightning", "epoch_epoch=00-val_loss=val_loss=1.222-v1.ckpt"));
        /* CHECKPOINT_NAME_LAST = "{epoch}-last" */
        ck_assert(preset_excludes("lightning", "epoch=3-last.ckpt"));
        ck_assert(preset_excludes("lightning", "epoch=3-last-v1.ckpt"));
        ck_assert(!preset_excludes("lightning", "epoch=3-step=40.ckpt"));

        snprintf(name, sizeof(name), "%s-last-v1.ckpt", nemo);
        ck_assert(kvmatch(name, &f));
        ck_assert_uint_gt(f.n, 0);
        ck_assert(preset_excludes("nemo", name));
        snprintf(name, sizeof(name), "%s-last.ckpt", nemo);
        ck_assert(preset_excludes("nemo", name));
        snprintf(name, sizeof(name), "%s-v1.ckpt", nemo);
        ck_assert(!preset_excludes("nemo", name));
}
END_TEST

START_TEST(test_glob)
{
        char name[256];

        ck_assert(glob_match("*.tmp", "a.tmp"));
        ck_assert(glob_match("*.tmp", ".tmp"));
        ck_assert(!glob_match("*.tmp", "a.tmpx"));
        ck_assert(!glob_match("*.tmp", "a.tm"));
        ck_assert(glob_match("last*.ckpt", "last.ckpt"));
        ck_assert(glob_match("last*.ckpt", "last-v1.ckpt"));
        ck_assert(!glob_match("last*.ckpt", "epoch=1-last.ckpt"));
        ck_assert(glob_match("*-unfinished", "megatron--step=1-unfinished"));
        ck_assert(glob_match("tmp-checkpoint-*", "tmp-checkpoint-10"));
        ck_assert(glob_match("*.orbax-checkpoint-tmp*", "10.orbax-checkpoint-tmp-1712"));
        ck_assert(glob_match("?", "x"));
        ck_assert(!glob_match("?", ""));
        ck_assert(!glob_match("?", "xy"));
        ck_assert(glob_match("a?c", "abc"));
        ck_assert(glob_match("", ""));
        ck_assert(!glob_match("", "a"));
        ck_assert(glob_match("*", ""));
        ck_assert(glob_match("**", "abc"));
        ck_assert(glob_match("*", "a/b")); /* no path semantics */
        ck_assert(glob_match("a*b*c", "a--b--b--c"));
        ck_assert(!glob_match("a*b*c", "a--b--b--c-"));
        ck_assert(glob_match("*\n", "x\n"));
        ck_assert(glob_match("?\xff", "\xfe\xff"));
        ck_assert(!glob_match("[ab]", "a")); /* brackets are literal */
        ck_assert(glob_match("[ab]", "[ab]"));
        ck_assert(!glob_match(NULL, "a"));
        ck_assert(!glob_match("a", NULL));

        memset(name, 'a', 255);
        name[255] = '\0';
        ck_assert(!glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", name));
        ck_assert(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", name));
}
END_TEST

/* A value is shown as the name wrote it; numbers without text in the
 * shortest form that reads back the same. */
START_TEST(test_field_text)
{
        struct pattern *p = NULL;
        const char *name = "epoch=3-val_loss=0.900.ckpt", *kvname = "epoch=03-val_loss=val_loss=1.50e-01.ckpt";
        struct fields f;
        char buf[64];

        ck_assert(tmatch("epoch={epoch}-val_loss={val_loss}.ckpt", name, &f));
        ck_assert_str_eq(fields_text(&f, 1, name, buf, sizeof(buf)), "0.900");
        ck_assert_str_eq(fields_text(&f, 0, name, buf, sizeof(buf)), "3");
        /* a name that no longer holds the text: formatted */
        ck_assert_str_eq(fields_text(&f, 1, "x", buf, sizeof(buf)), "0.9");
        ck_assert_str_eq(fields_text(&f, 1, NULL, buf, sizeof(buf)), "0.9");

        ck_assert_int_eq(pattern_new_kv(NULL, NULL, &p), 0);
        memset(&f, 0, sizeof(f));
        ck_assert(pattern_match(p, kvname, &f));
        ck_assert_int_eq(fields_find(&f, "val_loss"), 1);
        ck_assert_str_eq(fields_text(&f, 0, kvname, buf, sizeof(buf)), "03");
        ck_assert_str_eq(fields_text(&f, 1, kvname, buf, sizeof(buf)), "1.50e-01");
        pattern_free(p);

        ck_assert_str_eq(number_format(0.9, buf, sizeof(buf)), "0.9");
        ck_assert_str_eq(number_format(0.45, buf, sizeof(buf)), "0.45");
        ck_assert_str_eq(number_format(0.1 + 0.2, buf, sizeof(buf)), "0.30000000000000004");
        ck_assert_str_eq(number_format(100, buf, sizeof(buf)), "100");
        ck_assert_str_eq(number_format(1e-05, buf, sizeof(buf)), "1e-05");
        ck_assert_str_eq(number_format(1e300, buf, sizeof(buf)), "1e+300");
        ck_assert_str_eq(number_format(NAN, buf, sizeof(buf)), "nan");
        ck_assert_str_eq(number_format(-INFINITY, buf, sizeof(buf)), "-inf");
}
END_TEST

/* A checkpoint's record keeps its fields as the name wrote them, with
 * names shared by every pattern and checkpoint rather than copied. */
START_TEST(test_ckpt_record)
{
        struct pattern *t = NULL, *kv = NULL;
        const char *names[] = {"epoch=3-val_loss=0.900.ckpt", "epoch=3-val_loss=0.900.ckpt.bak"};
        struct fields ft, fk;
        struct ckpt c = {};
        char buf[64];
        const char *err = NULL;
        int i;

        ck_assert_int_eq(pattern_compile("epoch={epoch}-val_loss={val_loss}.ckpt", &t, &err), 0);
        ck_assert_int_eq(pattern_new_kv(NULL, NULL, &kv), 0);
        ck_assert(pattern_match(t, names[0], &ft));
        ck_assert(pattern_match(kv, names[0], &fk));
        ck_assert_uint_eq(fk.n, 2);
        ck_assert_ptr_eq(ft.name[0], fk.name[0]);
        ck_assert_ptr_eq(ft.name[1], fk.name[1]);

        ck_assert_int_eq(ckpt_init_names(&c, names, 2, &fk), 0);
        ck_assert_str_eq(c.name, names[0]);
        ck_assert_uint_eq(c.n_members, 2);
        ck_assert_str_eq(ckpt_member(&c, 1), names[1]);
        ck_assert_uint_eq(c.n_fields, 2);
        i = ckpt_field_find(&c, "val_loss");
        ck_assert_int_eq(i, 1);
        ck_assert_str_eq(ckpt_field_text(&c, (size_t)i, buf, sizeof(buf)), "0.900");
        ck_assert_double_eq(ckpt_field_value(&c, (size_t)i), 0.9);
        ck_assert_int_lt(ckpt_field_find(&c, "step"), 0);
        ckpt_finish(&c);
        ck_assert_ptr_null(c.name);

        /* no fields: none kept */
        ck_assert_int_eq(ckpt_init_names(&c, names, 1, NULL), 0);
        ck_assert_uint_eq(c.n_fields, 0);
        ckpt_finish(&c);

        /* a record keeps where a value is written, not the value: fields
         * whose text is not in the name, or reads as another value, are
         * refused, and a value read again is the one the pattern read */
        ck_assert_int_eq(ckpt_init_names(&c, names, 1, &ft), 0);
        ck_assert_double_eq(ckpt_field_value(&c, 0), 3);
        ck_assert_double_eq(ckpt_field_value(&c, 1), ft.value[1]);
        ckpt_finish(&c);
        ft.value[1] = 0.8;
        ck_assert_int_eq(ckpt_init_names(&c, names, 1, &ft), -EINVAL);
        ft.value[1] = 0.9;
        ft.text_len[1] = 0;
        ck_assert_int_eq(ckpt_init_names(&c, names, 1, &ft), -EINVAL);
        ft.text_len[1] = (uint8_t)(strlen(names[0]) + 1 - ft.text_start[1]);
        ck_assert_int_eq(ckpt_init_names(&c, names, 1, &ft), -EINVAL);
        ck_assert_ptr_null(c.name);

        /* a name longer than 255 bytes (FUSE, a UTF-16 filesystem) with a
         * field past there: recorded, that value not kept, the others read */
        {
                char long_name[320];
                const char *ln = long_name;
                struct fields fl;

                memset(long_name, 'x', 270);
                strcpy(long_name + 270, "-epoch=3-val_loss=0.900.ckpt");
                memcpy(long_name, "step=7-", 7);
                ck_assert(pattern_match(kv, long_name, &fl));
                ck_assert_uint_eq(fl.n, 3);
                ck_assert_int_eq(ckpt_init_names(&c, &ln, 1, &fl), 0);
                ck_assert_double_eq(ckpt_field_value(&c, 0), 7);
                ck_assert(isnan(ckpt_field_value(&c, 2)));
                ck_assert_str_eq(ckpt_field_text(&c, 2, buf, sizeof(buf)), "nan");
                ckpt_finish(&c);
        }
        pattern_free(t);
        pattern_free(kv);
}
END_TEST

Suite *pattern_suite(void)
{
        Suite *s = suite_create("pattern");
        TCase *tc = tcase_create("template");
        TCase *kv = tcase_create("kv");
        TCase *glob = tcase_create("glob");

        tcase_add_test(tc, test_preset_templates);
        tcase_add_test(tc, test_tf_group);
        tcase_add_test(tc, test_field_text);
        tcase_add_test(tc, test_two_fields);
        tcase_add_test(tc, test_backtracking);
        tcase_add_test(tc, test_number_grammar);
        tcase_add_test(tc, test_number_values_as_strtod);
        tcase_add_test(tc, test_overlong_numbers);
        tcase_add_test(tc, test_name_max);
        tcase_add_test(tc, test_odd_bytes);
        tcase_add_test(tc, test_no_fields);
        tcase_add_test(tc, test_failure_leaves_fields);
        tcase_add_test(tc, test_template_errors);
        tcase_add_test(tc, test_capture_and_groups);
        tcase_add_test(tc, test_no_blowup);
        tcase_add_test(tc, test_template_literal_outside_lightning);
        tcase_add_test(tc, test_lightning_auto_insert);
        tcase_add_test(tc, test_lightning_version_suffix);
        tcase_add_test(tc, test_lightning_nan_inf);
        tcase_add_test(tc, test_lightning_slash_names);
        suite_add_tcase(s, tc);

        tcase_add_test(kv, test_kv_lightning);
        tcase_add_test(kv, test_kv_signs_and_exponents);
        tcase_add_test(kv, test_kv_nemo);
        tcase_add_test(kv, test_kv_edges);
        tcase_add_test(kv, test_kv_unsure);
        tcase_add_test(kv, test_template_star_unsure);
        tcase_add_test(kv, test_kv_auto_insert);
        tcase_add_test(kv, test_preset_last_copies);
        tcase_add_test(kv, test_ckpt_record);
        suite_add_tcase(s, kv);

        tcase_add_test(glob, test_glob);
        suite_add_tcase(s, glob);
        return s;
}
