/* Checkpoint names -> fields: templates ("epoch_{epoch}-val_loss={val_loss}.ckpt"),
 * key=value names (Lightning, NeMo) and the globs of exclude lists.
 *
 * Template matching backtracks over tokens, so "*" and numbers can give back
 * what the rest of the name needs ("{a}.{b}" on "1.5.2" is a=1.5, b=2). It is
 * a pure function of (token, position), so failures are remembered: a field
 * is tried at most once per position, and a "*" that failed from position p
 * fails from every later one too. Work is O(tokens x length^2) at worst and
 * the recursion is as deep as the template has tokens. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "pattern.h"

/* Longer templates are a config mistake, and this bounds the recursion. */
#define TEMPLATE_MAX 1024

enum tok_kind {
        TOK_LITERAL,
        TOK_STAR,
        TOK_FIELD,
        _TOK_KIND_MAX,
};

struct tok {
        enum tok_kind kind;
        size_t off, len; /* TOK_LITERAL: text in pattern->literals */
        size_t field;    /* TOK_FIELD: index in pattern->names */
};

struct pattern {
        bool kv;
        /* template mode */
        struct tok *toks;
        size_t n_toks;
        char *literals;
        size_t n_fields;
        const char *names[FIELDS_MAX]; /* interned: shared with every match */
        bool has_star;
        /* Read as Lightning's filename= (no "*" in the template): a name may
         * also carry "name=" before every field, and "-vN" before ".ckpt";
         * ckpt_ext when the template ended in ".ckpt" (cut off the tokens),
         * no_ext when it had no extension at all (".ckpt" is optional). */
        bool lightning, ckpt_ext, no_ext;
        /* key=value mode */
        char *key_separator;
        char *join;
};

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_name_start(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ASCII only: strncasecmp() follows the locale. */
static bool word_at(const char *s, size_t n, const char *word)
{
        size_t wl = strlen(word);

        if (n < wl)
                return false;
        for (size_t i = 0; i < wl; i++) {
                char c = s[i];
                if (c >= 'A' && c <= 'Z')
                        c = (char)(c - 'A' + 'a');
                if (c != word[i])
                        return false;
        }
        return true;
}

/* Where a number starting at s[0] may end: the lengths n for which s[0..n) is
 * [+-]?(DIGITS[.DIGITS*]|.DIGITS)([eE][+-]?DIGITS)? or [+-]?(nan|inf|infinity).
 * They form a few runs of consecutive lengths, ascending. */
struct num_ends {
        size_t n;
        size_t lo[2], hi[2];
};

static void num_ends_add(struct num_ends *e, size_t lo, size_t hi)
{
        e->lo[e->n] = lo;
        e->hi[e->n] = hi;
        e->n++;
}

static void number_ends(const char *s, size_t n, struct num_ends *ret)
{
        size_t i = 0, d, m;

        ret->n = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
                i++;
        if (word_at(s + i, n - i, "inf")) {
                num_ends_add(ret, i + 3, i + 3);
                if (word_at(s + i, n - i, "infinity"))
                        num_ends_add(ret, i + 8, i + 8);
                return;
        }
        if (word_at(s + i, n - i, "nan")) {
                num_ends_add(ret, i + 3, i + 3);
                return;
        }

        for (d = i; d < n && is_digit(s[d]); d++)
                ;
        m = d;
        if (d < n && s[d] == '.') {
                size_t f;
                for (f = d + 1; f < n && is_digit(s[f]); f++)
                        ;
                if (d > i) /* "1", "1.", "1.5": one run */
                        num_ends_add(ret, i + 1, f);
                else if (f > d + 1) /* ".5" */
                        num_ends_add(ret, d + 2, f);
                else
                        return;
                m = f;
        } else if (d > i)
                num_ends_add(ret, i + 1, d);
        else
                return;

        if (m < n && (s[m] == 'e' || s[m] == 'E')) {
                size_t e = m + 1, x;
                if (e < n && (s[e] == '+' || s[e] == '-'))
                        e++;
                for (x = e; x < n && is_digit(s[x]); x++)
                        ;
                if (x > e)
                        num_ends_add(ret, e + 1, x);
        }
}

/* Remember where field i's text is in the name (names are at most
 * NAME_MAX bytes; a longer one keeps no text and is shown formatted). */
static void field_text_at(struct fields *f, size_t i, size_t start, size_t n)
{
        bool fits = start <= UINT8_MAX && n <= UINT8_MAX;

        f->text_start[i] = fits ? (uint8_t)start : 0;
        f->text_len[i] = fits ? (uint8_t)n : 0;
}

static int syntax_error(const char **ret_error, const char *message)
{
        *ret_error = message;
        return -EINVAL;
}

static void add_tok(struct pattern *p, enum tok_kind kind, size_t off, size_t len, size_t field)
{
        /* "**" is "*": fewer states for the matcher */
        if (kind == TOK_STAR && p->n_toks > 0 && p->toks[p->n_toks - 1].kind == TOK_STAR)
                return;
        p->toks[p->n_toks++] = (struct tok){.kind = kind, .off = off, .len = len, .field = field};
}

/* Parse "{name}" or "{name:fmt}" at t[*i] == '{'; on return *i is past '}'. */
static int parse_field(struct pattern *p, const char *t, size_t *i, const char **ret_error)
{
        size_t start = *i + 1, end = start, len;
        const char *colon;

        while (t[end] != '\0' && t[end] != '}' && t[end] != '{')
                end++;
        if (t[end] == '\0')
                return syntax_error(ret_error, "unmatched '{' in pattern");
        if (t[end] == '{')
                return syntax_error(ret_error, "'{' inside a field of the pattern");
        /* after ':' comes a Python format spec, accepted and ignored ("{val_loss:.2f}") */
        colon = memchr(t + start, ':', end - start);
        len = colon ? (size_t)(colon - (t + start)) : end - start;
        if (len == 0)
                return syntax_error(ret_error, "empty field name in pattern");
        if (!is_name_start(t[start]))
                return syntax_error(ret_error, "field name must start with a letter or '_'");
        /* Lightning's metric names may hold '/', '.' and '-' ("val/acc") */
        for (size_t k = start; k < start + len; k++)
                if (!is_name_start(t[k]) && !is_digit(t[k]) && !strchr("/.-", t[k]))
                        return syntax_error(ret_error,
                                            "field names may hold only letters, digits, '_', '/', '.' and '-'");
        if (len >= FIELD_NAME_MAX)
                return syntax_error(ret_error, "field name too long (63 characters at most)");
        if (p->n_fields >= FIELDS_MAX)
                return syntax_error(ret_error, "too many fields in pattern (16 at most)");
        for (size_t f = 0; f < p->n_fields; f++)
                if (strlen(p->names[f]) == len && memcmp(p->names[f], t + start, len) == 0)
                        return syntax_error(ret_error, "duplicate field name in pattern");

        p->names[p->n_fields] = field_name_intern(t + start, len);
        if (!p->names[p->n_fields])
                return -ENOMEM;
        *i = end + 1;
        add_tok(p, TOK_FIELD, 0, 0, p->n_fields++);
        return 0;
}

/* A template without "*" is read as Lightning's ModelCheckpoint filename=,
 * which Lightning turns into names two ways (auto_insert_metric_name) and
 * completes with "-vN" on a clash and ".ckpt". Lightning writes
 * "<template>[-v<N>].ckpt": a template that ends in ".ckpt" has it cut off
 * here and checked by the matcher; one with no extension at all (as pasted
 * from filename=) matches with or without ".ckpt". */
static void lightning_setup(struct pattern *p)
{
        struct tok *last;
        const char *lit, *dot;

        if (p->has_star || p->n_toks == 0)
                return;
        p->lightning = true;
        last = &p->toks[p->n_toks - 1];
        if (last->kind != TOK_LITERAL) {
                p->no_ext = true;
                return;
        }
        lit = p->literals + last->off;
        if (last->len >= 5 && memcmp(lit + last->len - 5, ".ckpt", 5) == 0) {
                p->ckpt_ext = true;
                last->len -= 5;
                if (last->len == 0)
                        p->n_toks--;
                return;
        }
        /* an extension is a dot, a letter, then letters or digits */
        dot = NULL;
        for (size_t i = last->len; i > 0; i--)
                if (lit[i - 1] == '.') {
                        dot = lit + i - 1;
                        break;
                }
        if (dot && dot + 1 < lit + last->len && is_alpha(dot[1])) {
                for (const char *c = dot + 1; c < lit + last->len; c++)
                        if (!is_alpha(*c) && !is_digit(*c))
                                goto no_ext;
                return;
        }
no_ext:
        p->no_ext = true;
}

static int compile(const char *template, bool lightning, struct pattern **ret, const char **ret_error)
{
        const char *error_dummy;
        struct pattern *p;
        size_t tl, n_lit = 0, lit_start = 0;
        int r;

        if (!ret_error)
                ret_error = &error_dummy;
        if (!ret)
                return syntax_error(ret_error, "no result pointer for the pattern");
        if (!template || template[0] == '\0')
                return syntax_error(ret_error, "empty pattern");
        tl = strlen(template);
        if (tl > TEMPLATE_MAX)
                return syntax_error(ret_error, "pattern too long (1024 characters at most)");

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        /* at most one token per template character, plus one */
        p->toks = calloc(tl + 1, sizeof(*p->toks));
        p->literals = malloc(tl + 1);
        if (!p->toks || !p->literals) {
                r = -ENOMEM;
                goto fail;
        }

        for (size_t i = 0; template[i] != '\0';) {
                char c = template[i];

                /* "{{" and "}}" are literal braces, as in Python formats */
                if ((c == '{' || c == '}') && template[i + 1] == c) {
                        p->literals[n_lit++] = c;
                        i += 2;
                        continue;
                }
                if (c == '/') {
                        r = syntax_error(ret_error,
                                         "pattern must not contain '/' outside a field: it matches entry names");
                        goto fail;
                }
                if (c != '{' && c != '}' && c != '*') {
                        p->literals[n_lit++] = c;
                        i++;
                        continue;
                }
                if (n_lit > lit_start)
                        add_tok(p, TOK_LITERAL, lit_start, n_lit - lit_start, 0);
                lit_start = n_lit;
                if (c == '}') {
                        r = syntax_error(ret_error, "unmatched '}' in pattern");
                        goto fail;
                }
                if (c == '*') {
                        p->has_star = true;
                        add_tok(p, TOK_STAR, 0, 0, 0);
                        i++;
                        continue;
                }
                r = parse_field(p, template, &i, ret_error);
                if (r < 0)
                        goto fail;
        }
        if (n_lit > lit_start)
                add_tok(p, TOK_LITERAL, lit_start, n_lit - lit_start, 0);
        if (lightning)
                lightning_setup(p);

        *ret = p;
        return 0;
fail:
        pattern_free(p);
        return r;
}

int pattern_compile(const char *template, struct pattern **ret, const char **ret_error)
{
        return compile(template, false, ret, ret_error);
}

int pattern_compile_lightning(const char *template, struct pattern **ret, const char **ret_error)
{
        return compile(template, true, ret, ret_error);
}

int pattern_new_kv(const char *key_separator, const char *join, struct pattern **ret)
{
        struct pattern *p;

        if (!ret)
                return -EINVAL;
        if (!key_separator)
                key_separator = "=";
        if (!join)
                join = "-";
        /* an empty or shared separator cannot split anything sensibly */
        if (key_separator[0] == '\0' || join[0] == '\0' || strcmp(key_separator, join) == 0)
                return -EINVAL;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->kv = true;
        p->key_separator = strdup(key_separator);
        p->join = strdup(join);
        if (!p->key_separator || !p->join) {
                pattern_free(p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

struct pattern *pattern_free(struct pattern *p)
{
        if (!p)
                return NULL;
        free(p->toks);
        free(p->literals);
        free(p->key_separator);
        free(p->join);
        free(p);
        return NULL;
}

struct matcher {
        const struct pattern *p;
        const char *name;
        size_t len;
        bool insert;         /* every field is preceded by "name=" */
        size_t *star_fail;   /* per token: from here on, the rest cannot match */
        uint8_t *field_fail; /* bit field * (len + 1) + pos: the field failed there */
        size_t cap_start[FIELDS_MAX], cap_end[FIELDS_MAX];
};

static bool match_from(struct matcher *m, size_t t, size_t pos)
{
        const struct tok *tok;

        if (t == m->p->n_toks)
                return pos == m->len;
        tok = &m->p->toks[t];

        switch (tok->kind) {
        case TOK_LITERAL:
                if (m->len - pos < tok->len || memcmp(m->name + pos, m->p->literals + tok->off, tok->len) != 0)
                        return false;
                return match_from(m, t + 1, pos + tok->len);

        case TOK_STAR: {
                size_t stop = m->star_fail[t];
                const struct tok *next = t + 1 < m->p->n_toks ? tok + 1 : NULL;

                if (!next)
                        return true;
                if (pos >= stop)
                        return false;
                /* Everything from stop on is known to fail; once this loop
                 * fails, everything from pos on is. */
                for (size_t q = pos; q < stop; q++) {
                        if (next->kind == TOK_LITERAL && m->name[q] != m->p->literals[next->off])
                                continue;
                        if (match_from(m, t + 1, q))
                                return true;
                }
                m->star_fail[t] = pos;
                return false;
        }

        case TOK_FIELD: {
                size_t bit = tok->field * (m->len + 1) + pos, at = pos;
                struct num_ends e;

                if (m->field_fail[bit / 8] & (1u << (bit % 8)))
                        return false;
                if (m->insert) {
                        const char *fname = m->p->names[tok->field];
                        size_t nl = strlen(fname);

                        if (m->len - pos < nl + 1 || memcmp(m->name + pos, fname, nl) != 0 || m->name[pos + nl] != '=')
                                goto field_failed;
                        at = pos + nl + 1;
                }
                /* longest number first, then give back digits */
                number_ends(m->name + at, m->len - at, &e);
                for (size_t k = e.n; k > 0; k--)
                        for (size_t end = e.hi[k - 1]; end >= e.lo[k - 1]; end--)
                                if (match_from(m, t + 1, at + end)) {
                                        m->cap_start[tok->field] = at;
                                        m->cap_end[tok->field] = at + end;
                                        return true;
                                }
        field_failed:
                m->field_fail[bit / 8] |= (uint8_t)(1u << (bit % 8));
                return false;
        }

        default: return false;
        }
}

/* Match the template against name[0..len): one way of reading the name. */
/* Whether a template's "*" may hide the value of field key, captured up
 * to name[end]: the number goes on past it ("0,99": a decimal comma, a
 * stray space), or the rest of the name gives "key=" again. */
static bool star_hides(const char *name, size_t len, size_t end, const char *key)
{
        size_t kl = strlen(key);

        if (end < len && (name[end] == ',' || name[end] == ' '))
                return true;
        for (size_t i = end; i + kl < len; i++)
                if (name[i + kl] == '=' && memcmp(name + i, key, kl) == 0 &&
                    (i == 0 || !(is_name_start(name[i - 1]) || is_digit(name[i - 1]))))
                        return true;
        return false;
}

static bool match_body(const struct pattern *p, const char *name, size_t len, bool insert, struct fields *ret)
{
        struct matcher m = {.p = p, .name = name, .len = len, .insert = insert};
        size_t star_stack[64];
        uint8_t field_stack[FIELDS_MAX * 256 / 8];
        size_t field_bytes = (p->n_fields * (m.len + 1) + 7) / 8;
        void *heap = NULL;
        struct fields f = {.n = p->n_fields};
        bool ok = false;

        /* Entry names are at most NAME_MAX (255) bytes: the stack serves. */
        if (p->n_toks <= ELEMENTSOF(star_stack) && field_bytes <= sizeof(field_stack)) {
                m.star_fail = star_stack;
                m.field_fail = field_stack;
                memset(field_stack, 0, field_bytes);
        } else {
                heap = calloc(1, p->n_toks * sizeof(size_t) + field_bytes);
                if (!heap)
                        return false; /* an unrecognised name is never deleted */
                m.star_fail = heap;
                m.field_fail = (uint8_t *)((size_t *)heap + p->n_toks);
        }
        for (size_t t = 0; t < p->n_toks; t++)
                m.star_fail[t] = m.len + 1;

        if (!match_from(&m, 0, 0))
                goto out;
        for (size_t i = 0; i < p->n_fields; i++) {
                f.name[i] = p->names[i];
                if (number_parse(name + m.cap_start[i], m.cap_end[i] - m.cap_start[i], &f.value[i]) < 0)
                        goto out;
                field_text_at(&f, i, m.cap_start[i], m.cap_end[i] - m.cap_start[i]);
                if (p->has_star && star_hides(name, m.len, m.cap_end[i], p->names[i]))
                        f.unsure_fields |= (uint16_t)(1u << i);
        }
        if (ret)
                *ret = f;
        ok = true;
out:
        free(heap);
        return ok;
}

static bool ends_with(const char *name, size_t len, const char *suffix)
{
        size_t sl = strlen(suffix);

        return len >= sl && memcmp(name + len - sl, suffix, sl) == 0;
}

/* Where "-v<digits>" (Lightning's clash suffix) starts if name[0..len) ends
 * with one, else len. */
static size_t version_suffix(const char *name, size_t len)
{
        size_t d = len;

        while (d > 0 && is_digit(name[d - 1]))
                d--;
        if (d == len || d < 2 || name[d - 1] != 'v' || name[d - 2] != '-')
                return len;
        return d - 2;
}

static bool match_template(const struct pattern *p, const char *name, struct fields *ret)
{
        size_t len = strlen(name), body[3];
        size_t n_body = 0;

        if (!p->lightning)
                return match_body(p, name, len, false, ret);

        /* The name as the template says first, then with Lightning's
         * additions taken off: ".ckpt", then "-vN" before it. */
        if (p->ckpt_ext) {
                if (!ends_with(name, len, ".ckpt"))
                        return false;
                body[n_body++] = len - 5;
        } else {
                body[n_body++] = len;
                if (p->no_ext && ends_with(name, len, ".ckpt"))
                        body[n_body++] = len - 5;
        }
        if (p->ckpt_ext || n_body == 2) {
                size_t v = version_suffix(name, body[n_body - 1]);
                if (v != body[n_body - 1])
                        body[n_body++] = v;
        }

        /* auto_insert_metric_name=False, then True: all fields or none */
        for (size_t i = 0; i < n_body; i++) {
                if (match_body(p, name, body[i], false, ret))
                        return true;
                if (p->n_fields > 0 && match_body(p, name, body[i], true, ret))
                        return true;
        }
        return false;
}

/* First occurrence of needle in s[from..end), or end. */
static size_t find(const char *s, size_t from, size_t end, const char *needle, size_t nl)
{
        for (size_t i = from; i + nl <= end; i++)
                if (memcmp(s + i, needle, nl) == 0)
                        return i;
        return end;
}

/* Length of name without its extensions: trailing ".ckpt", ".nemo", ".h5",
 * ".tar.gz" (a dot, a letter, letters or digits), but never a value's
 * fraction ("val_loss=0.1234.ckpt" keeps "0.1234") nor a leading dot. */
static size_t strip_extensions(const char *name, size_t len)
{
        for (;;) {
                size_t dot = len;
                while (dot > 0 && name[dot - 1] != '.')
                        dot--;
                if (dot <= 1 || dot == len || !is_alpha(name[dot]))
                        return len;
                for (size_t i = dot; i < len; i++)
                        if (!is_alpha(name[i]) && !is_digit(name[i]))
                                return len;
                len = dot - 1;
        }
}

/* The length of the key inside key[0..n): "epoch_epoch" (and "epoch.epoch",
 * "epochepoch") is "epoch", what Lightning writes for "epoch_{epoch}" when
 * it inserts the metric name; any other key is itself. */
static size_t doubled_key(const char *key, size_t n)
{
        size_t h = n / 2;

        if (n % 2 == 1 && (key[h] == '_' || key[h] == '.') && h >= 2 && memcmp(key, key + h + 1, h) == 0)
                return h;
        if (n % 2 == 0 && h >= 2 && memcmp(key, key + h, h) == 0)
                return h;
        return n;
}

/* name[start..end) holds a key: its own part (doubled_key()). */
static size_t key_at(const char *name, size_t start, size_t end, size_t *ret_len)
{
        size_t len = doubled_key(name + start, end - start);

        *ret_len = len;
        return end - len;
}

/* The key in name[start..end) is given no one number (struct fields,
 * unsure). One that cannot be a field's name is no monitor: not noted. */
static void note_unsure(struct fields *f, const char *name, size_t start, size_t end)
{
        size_t len, at;

        if (end <= start || end - start >= FIELD_NAME_MAX)
                return;
        /* what a value that is not a number leaves as the next "key"
         * ("tensor(0.1, device=") is no metric's name */
        for (size_t i = start; i < end; i++)
                if (strchr(" (),'\":[]{}", name[i]))
                        return;
        at = key_at(name, start, end, &len);
        if (at > UINT8_MAX || f->n_unsure == FIELDS_UNSURE_MAX) {
                f->unsure_more = true;
                return;
        }
        f->unsure_start[f->n_unsure] = (uint8_t)at;
        f->unsure_len[f->n_unsure] = (uint8_t)len;
        f->n_unsure++;
}

/* Whether the keys in name[a..a_end) and name[b..b_end) are the same. */
static bool same_key(const char *name, size_t a, size_t a_end, size_t b, size_t b_end)
{
        size_t la, lb;

        a = key_at(name, a, a_end, &la);
        b = key_at(name, b, b_end, &lb);
        return la == lb && memcmp(name + a, name + b, la) == 0;
}

/* Every "key<sep>number" token between join separators. The number is read
 * with the number grammar, so its sign and exponent may contain the join
 * ("val_loss=-0.5", "lr=1e-05"); it must end at a join or at the end. */
static bool match_kv(const struct pattern *p, const char *name, struct fields *ret)
{
        size_t end = strip_extensions(name, strlen(name));
        size_t kl = strlen(p->key_separator), jl = strlen(p->join), pos = 0;
        struct fields f = {.n = 0};

        while (pos < end) {
                size_t k = find(name, pos, end, p->key_separator, kl);
                size_t j = find(name, pos, end, p->join, jl);
                size_t v = k + kl, vend = 0;
                bool got = false;
                struct num_ends e;

                if (k == end || j < k) { /* no key in this token */
                        if (j == end)
                                break;
                        pos = j + jl;
                        continue;
                }

                number_ends(name + v, end - v, &e);
                for (size_t r = e.n; r > 0 && !got; r--)
                        for (size_t n = e.hi[r - 1]; n >= e.lo[r - 1] && !got; n--)
                                if (v + n == end || (end - v - n >= jl && memcmp(name + v + n, p->join, jl) == 0)) {
                                        got = true;
                                        vend = v + n;
                                }
                if (!got) { /* not a number: on to the next token */
                        size_t k2 = find(name, v, end, p->key_separator, kl);

                        j = find(name, v, end, p->join, jl);
                        /* "val_loss=val_loss=0.291": Lightning inserted
                         * "name=" after the template's own "val_loss=", so
                         * the key is the last one before the number. Any
                         * other value is not a number: the key is unsure,
                         * never "not in the name" (a monitor so written
                         * would rank its checkpoint last). */
                        if (k2 < j) {
                                if (!same_key(name, pos, k, v, k2))
                                        note_unsure(&f, name, pos, k);
                                pos = v;
                                continue;
                        }
                        note_unsure(&f, name, pos, k);
                        if (j == end)
                                break;
                        pos = j + jl;
                        continue;
                }

                /* A repeated key keeps its first value, and is unsure when
                 * a later one differs; keys that do not fit are not
                 * fields. */
                if (k > pos && k - pos < FIELD_NAME_MAX) {
                        size_t klen, at = key_at(name, pos, k, &klen);
                        /* interned: a name the table cannot hold (ENOMEM,
                         * too many) leaves the name unrecognised, so kept */
                        const char *key = field_name_intern(name + at, klen);
                        int i;
                        double x;

                        if (!key)
                                return false;
                        if (number_parse(name + v, vend - v, &x) < 0)
                                return false;
                        i = fields_find(&f, key);
                        if (i < 0 && f.n < FIELDS_MAX) {
                                f.value[f.n] = x;
                                field_text_at(&f, f.n, v, vend - v);
                                f.name[f.n] = key;
                                f.n++;
                        } else if (i < 0 || !(x == f.value[i] || (isnan(x) && isnan(f.value[i])))) {
                                note_unsure(&f, name, pos, k);
                        }
                }
                pos = vend + jl;
        }

        if (ret)
                *ret = f;
        return true;
}

bool pattern_match(const struct pattern *p, const char *name, struct fields *ret)
{
        if (!p || !name)
                return false;
        return p->kv ? match_kv(p, name, ret) : match_template(p, name, ret);
}

bool pattern_can_capture(const struct pattern *p, const char *field)
{
        if (!p || !field)
                return false;
        if (p->kv)
                return true;
        for (size_t i = 0; i < p->n_fields; i++)
                if (strcmp(p->names[i], field) == 0)
                        return true;
        return false;
}

bool pattern_is_kv(const struct pattern *p)
{
        return p && p->kv;
}

bool pattern_groups(const struct pattern *p)
{
        /* Without "*", equal fields come from distinct Lightning names (a
         * "-v1" copy, the other auto-insert spelling): separate files. */
        return p && !p->kv && p->has_star && p->n_fields > 0;
}

bool glob_match(const char *glob, const char *name)
{
        const char *g = glob, *n = name, *star = NULL, *resume = NULL;

        if (!glob || !name)
                return false;
        /* On a mismatch, let the last "*" take one more byte and retry: no
         * earlier "*" ever needs to change, so this is O(len(glob) x len(name)). */
        while (*n != '\0') {
                if (*g == '*') {
                        star = ++g;
                        resume = n;
                } else if (*g != '\0' && (*g == '?' || *g == *n)) {
                        g++;
                        n++;
                } else if (star) {
                        g = star;
                        n = ++resume;
                } else
                        return false;
        }
        while (*g == '*')
                g++;
        return *g == '\0';
}
