/* Shared checkpoint helpers: field look-up, names of enums, cleanup. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "macro.h"

/* field_name_intern()'s table: the names by id, and open addressing over a
 * power of two from name to id. Names come from entry names in key=value
 * mode, so the count is bounded: past FIELD_NAMES_MAX a name is not
 * interned and its checkpoint is not recognised, which keeps it. */
static struct {
        uint32_t *slots; /* 1 + id; 0: free */
        char **by_id;
        size_t cap, n, cap_id;
} field_names;

static uint64_t name_hash(const char *s, size_t len)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */

        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
        return h;
}

static int field_names_grow(void)
{
        size_t ncap = field_names.cap ? field_names.cap * 2 : 64;
        uint32_t *v = calloc(ncap, sizeof(*v));

        if (!v)
                return -ENOMEM;
        for (size_t id = 0; id < field_names.n; id++) {
                const char *s = field_names.by_id[id];
                size_t j;

                for (j = name_hash(s, strlen(s)) & (ncap - 1); v[j]; j = (j + 1) & (ncap - 1))
                        ;
                v[j] = (uint32_t)id + 1;
        }
        free(field_names.slots);
        field_names.slots = v;
        field_names.cap = ncap;
        return 0;
}

/* The id of s[0..len) into *ret_id, interned if it was not. */
static int intern(const char *s, size_t len, uint16_t *ret_id)
{
        size_t j;
        char *copy;

        if (!s || len >= FIELD_NAME_MAX || memchr(s, '\0', len))
                return -EINVAL;
        /* at most half full */
        if ((field_names.n + 1) * 2 > field_names.cap && field_names_grow() < 0)
                return -ENOMEM;
        for (j = name_hash(s, len) & (field_names.cap - 1); field_names.slots[j]; j = (j + 1) & (field_names.cap - 1)) {
                const char *t = field_names.by_id[field_names.slots[j] - 1];

                if (strncmp(t, s, len) == 0 && t[len] == '\0') {
                        *ret_id = (uint16_t)(field_names.slots[j] - 1);
                        return 0;
                }
        }
        if (field_names.n >= FIELD_NAMES_MAX)
                return -ENOMEM;
        if (field_names.n == field_names.cap_id) {
                size_t ncap = field_names.cap_id ? field_names.cap_id * 2 : 32;
                char **v = reallocarray(field_names.by_id, ncap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                field_names.by_id = v;
                field_names.cap_id = ncap;
        }
        copy = strndup(s, len);
        if (!copy)
                return -ENOMEM;
        field_names.by_id[field_names.n] = copy;
        field_names.slots[j] = (uint32_t)field_names.n + 1;
        *ret_id = (uint16_t)field_names.n++;
        return 0;
}

/* ids fit struct field.name_id */
_Static_assert(FIELD_NAMES_MAX <= UINT16_MAX + 1, "field name ids are 16 bits");

const char *field_name_intern(const char *s, size_t len)
{
        uint16_t id;

        return intern(s, len, &id) < 0 ? NULL : field_names.by_id[id];
}

int field_name_id(const char *s, uint16_t *ret_id)
{
        if (!s)
                return -EINVAL;
        /* the patterns' names are interned already: found by their
         * address among the first few, without hashing each time */
        for (size_t id = 0; id < field_names.n && id < 16; id++)
                if (field_names.by_id[id] == s) {
                        *ret_id = (uint16_t)id;
                        return 0;
                }
        return intern(s, strlen(s), ret_id);
}

const char *field_name(uint16_t id)
{
        return id < field_names.n ? field_names.by_id[id] : "";
}

int fields_find(const struct fields *f, const char *name)
{
        for (size_t i = 0; i < f->n; i++)
                if (strcmp(f->name[i], name) == 0)
                        return (int)i;
        return -1;
}

/* strtod() follows LC_NUMERIC, which the daemon may have set from the
 * environment; names are written with '.' whatever the locale. */
static locale_t c_numeric_locale(void)
{
        static locale_t cached = (locale_t)0;
        locale_t l = __atomic_load_n(&cached, __ATOMIC_ACQUIRE), expected = (locale_t)0;

        if (l != (locale_t)0)
                return l;
        l = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (l == (locale_t)0)
                return l;
        if (!__atomic_compare_exchange_n(&cached, &expected, l, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                freelocale(l);
                l = expected;
        }
        return l;
}

/* s[0..n) in the form names nearly always use, [-]digits[.digits] with at
 * most 15 digits, into *ret: the same double as strtod() gives, because
 * both the digits as an integer (below 2^53) and the power of ten (at most
 * 10^15) are exact doubles, and IEEE division rounds their quotient
 * correctly, as strtod() rounds the decimal. false for any other form. */
static bool parse_plain_decimal(const char *s, size_t n, double *ret)
{
        static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
        uint64_t digits = 0;
        size_t i = n > 0 && s[0] == '-', n_digits = 0, n_frac = 0;
        bool dot = false;
        double v;

        for (; i < n; i++) {
                if (s[i] == '.' && !dot) {
                        dot = true;
                        continue;
                }
                if (s[i] < '0' || s[i] > '9' || ++n_digits >= ELEMENTSOF(pow10))
                        return false;
                digits = digits * 10 + (uint64_t)(s[i] - '0');
                n_frac += dot;
        }
        if (n_digits == 0)
                return false;
        v = (double)digits / pow10[n_frac];
        *ret = s[0] == '-' ? -v : v;
        return true;
}

/* Through a NUL-terminated copy: strtod() must not run on into the rest of
 * the name ("1.5" taken as "1"). Names are at most NAME_MAX bytes, so the
 * heap is rarely needed. */
int number_parse(const char *s, size_t n, double *ret)
{
        char stack[256], *buf = stack;
        locale_t l;

        if (parse_plain_decimal(s, n, ret))
                return 0;
        if (n >= sizeof(stack)) {
                buf = malloc(n + 1);
                if (!buf)
                        return -ENOMEM;
        }
        memcpy(buf, s, n);
        buf[n] = '\0';
        l = c_numeric_locale();
        *ret = l != (locale_t)0 ? strtod_l(buf, NULL, l) : strtod(buf, NULL);
        if (buf != stack)
                free(buf);
        return 0;
}

char *number_format(double v, char *buf, size_t len)
{
        if (!buf || len == 0)
                return buf;
        if (isnan(v)) {
                snprintf(buf, len, "nan");
                return buf;
        }
        if (isinf(v)) {
                snprintf(buf, len, v < 0 ? "-inf" : "inf");
                return buf;
        }
        /* whole numbers in full ("100", not "1e+02") */
        if (v == floor(v) && fabs(v) < 1e15) {
                snprintf(buf, len, "%.0f", v);
                return buf;
        }
        /* the fewest digits that read back as the same double */
        for (int digits = 1; digits <= 17; digits++) {
                snprintf(buf, len, "%.*g", digits, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        return buf;
}

/* value as name[start..start + n) wrote it, when that is still there and
 * reads as value (a group's members may differ in how they spell it), else
 * number_format(). */
static char *value_text(double value, size_t start, size_t n, const char *name, char *buf, size_t len)
{
        char text[256];
        char *end;
        double v;

        if (name && n > 0 && n < len && n < sizeof(text) && start + n <= strlen(name)) {
                memcpy(text, name + start, n);
                text[n] = '\0';
                v = strtod(text, &end);
                if (*end == '\0' && (v == value || (isnan(v) && isnan(value)))) {
                        memcpy(buf, text, n + 1);
                        return buf;
                }
        }
        return number_format(value, buf, len);
}

char *fields_text(const struct fields *f, size_t i, const char *name, char *buf, size_t len)
{
        return value_text(f->value[i], f->text_start[i], f->text_len[i], name, buf, len);
}

double ckpt_field_value(const struct ckpt *c, size_t i)
{
        const struct field *fl = ckpt_field(c, i);
        double v = NAN;

        /* text_len < 256: read on the stack, never ENOMEM; 0: not kept */
        if (fl->text_len > 0)
                (void)number_parse(c->name + fl->text_start, fl->text_len, &v);
        return v;
}

char *ckpt_field_text(const struct ckpt *c, size_t i, char *buf, size_t len)
{
        const struct field *fl = ckpt_field(c, i);

        /* the value is what this text reads as (ckpt_init_names()) */
        if (fl->text_len > 0 && fl->text_len < len) {
                memcpy(buf, c->name + fl->text_start, fl->text_len);
                buf[fl->text_len] = '\0';
                return buf;
        }
        return number_format(ckpt_field_value(c, i), buf, len);
}

bool ckpt_has_member_with(const struct ckpt *c, const char *s, bool ending)
{
        size_t n = strlen(s);

        for (size_t k = 0; k < c->n_members; k++) {
                const char *name = ckpt_member(c, k);
                size_t len = strlen(name);

                if (ending ? len > n && strcmp(name + len - n, s) == 0 : strstr(name, s) != NULL)
                        return true;
        }
        return false;
}

int ckpt_field_find(const struct ckpt *c, const char *name)
{
        for (size_t i = 0; i < c->n_fields; i++)
                if (strcmp(field_name(ckpt_field(c, i)->name_id), name) == 0)
                        return (int)i;
        return -1;
}

static bool same_number(double a, double b)
{
        return a == b || (isnan(a) && isnan(b));
}

/* A record keeps where field i is written in name, not its value: so the
 * text must be there and read as the value the pattern gave. A name
 * longer than a uint8_t reaches (a FUSE or UTF-16 filesystem's) may have
 * it where no text_start can say: kept without, the value shows as NaN
 * (the decision reads struct ckpt's metric and order, never a field). */
static int field_check(const struct fields *f, size_t i, const char *name, size_t name_len)
{
        double v;
        int r;

        if (f->text_len[i] == 0 && name_len > UINT8_MAX)
                return 0;
        if (f->text_len[i] == 0 || (size_t)f->text_start[i] + f->text_len[i] > name_len)
                return -EINVAL;
        r = number_parse(name + f->text_start[i], f->text_len[i], &v);
        if (r < 0)
                return r;
        return same_number(v, f->value[i]) ? 0 : -EINVAL;
}

int ckpt_init_names(struct ckpt *c, const char *const *names, size_t n, const struct fields *f)
{
        size_t bytes, table, nf = f ? f->n : 0, len0;
        uint16_t ids[FIELDS_MAX];
        struct field *v;
        char **members, *p;

        if (n == 0 || n > CKPT_MEMBERS_MAX || nf > FIELDS_MAX)
                return -EINVAL;
        len0 = strlen(names[0]);
        for (size_t i = 0; i < nf; i++) {
                int r = field_check(f, i, names[0], len0);

                if (r < 0)
                        return r;
                r = field_name_id(f->name[i], &ids[i]);
                if (r < 0)
                        return r;
        }
        /* one allocation: members[n] (when n > 1), fields[nf], the names */
        table = n > 1 ? n * sizeof(char *) : 0;
        bytes = table + nf * sizeof(struct field);
        for (size_t k = 0; k < n; k++)
                bytes += strlen(names[k]) + 1;
        members = malloc(bytes);
        if (!members)
                return -ENOMEM;
        v = (struct field *)(void *)((char *)members + table);
        p = (char *)(v + nf);
        c->name = p;
        for (size_t k = 0; k < n; k++) {
                size_t len = strlen(names[k]) + 1;

                memcpy(p, names[k], len);
                if (table)
                        members[k] = p;
                p += len;
        }
        for (size_t i = 0; i < nf; i++)
                v[i] = (struct field){.name_id = ids[i], .text_start = f->text_start[i], .text_len = f->text_len[i]};
        c->n_members = (uint16_t)n;
        c->n_fields = (uint8_t)nf;
        c->packed = true;
        return 0;
}

bool fields_equal(const struct fields *a, const struct fields *b)
{
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++) {
                if (strcmp(a->name[i], b->name[i]) != 0)
                        return false;
                if (!same_number(a->value[i], b->value[i]))
                        return false;
        }
        return true;
}

bool fields_unsure(const struct fields *f, const char *name, const char *key)
{
        size_t len = strlen(key);
        int at = fields_find(f, key);

        if (at >= 0 && at < 16 && (f->unsure_fields >> at & 1))
                return true;
        if (f->unsure_more && at < 0)
                return true;
        for (size_t i = 0; i < f->n_unsure; i++)
                if (f->unsure_len[i] == len && memcmp(name + f->unsure_start[i], key, len) == 0)
                        return true;
        return false;
}

void ckpt_finish(struct ckpt *c)
{
        /* packed: the allocation starts at its members' table, if any */
        if (c->packed)
                free((char **)(void *)ckpt_field(c, 0) - (c->n_members > 1 ? c->n_members : 0));
        else
                free(c->name);
        memset(c, 0, sizeof(*c));
}

static const char *const keep_reason_table[_KEEP_REASON_MAX] = {
        [KEEP_BEST] = "best",
        [KEEP_LAST] = "last",
        [KEEP_EVERY] = "every",
        [KEEP_PINNED] = "pinned",
        [KEEP_YOUNG] = "young",
        [KEEP_INCOMPLETE] = "incomplete",
        [KEEP_UNREADABLE] = "unreadable",
        [KEEP_OWNERS] = "mixed-owners",
        [KEEP_IN_USE] = "in-use",
        [KEEP_WRITTEN] = "newest-written",
        [KEEP_NO_MONITOR] = "monitor-missing",
};

static const char *const pin_kind_table[_PIN_KIND_MAX] = {
        [PIN_KEEPFILE] = "keep-file", [PIN_SYMLINK] = "symlink", [PIN_POINTER] = "pointer",
        [PIN_HF_BEST] = "hf-best",    [PIN_FLOCK] = "flock",
};

static const char *const delete_reason_table[_DELETE_REASON_MAX] = {
        [DELETE_NONE] = "none",
        [DELETE_POLICY] = "policy",
        [DELETE_FLOOR] = "floor",
};

static const char *const order_source_table[_ORDER_SOURCE_MAX] = {
        [ORDER_STEP] = "step",
        [ORDER_EPOCH] = "epoch",
        [ORDER_MTIME] = "mtime",
};

static const char *const read_what_table[_READ_WHAT_MAX] = {
        [READ_WHAT_NONE] = NULL,
        [READ_WHAT_IT] = "it",
        [READ_WHAT_INODE] = "its inode",
        [READ_WHAT_TREE] = "its tree",
        [READ_WHAT_TREE_MOUNT] = "its tree (a mount point inside it, which ckptd never enters)",
        [READ_WHAT_MARKER] = "its complete_marker",
        [READ_WHAT_METRIC] = "its metric",
        [READ_WHAT_METRIC_NAME] = "its metric (its name does not give it as one number)",
        [READ_WHAT_METRIC_LOG] = "its metric log",
        [READ_WHAT_METRIC_LOG_UNLOGGED] = "its metric log (not logged yet)",
        [READ_WHAT_METRIC_LOG_DAMAGED] = "its metric log (damaged before it, never read past there)",
        [READ_WHAT_METRIC_LOG_BEHIND] = "its metric log (which begins after it: its rows were lost)",
        [READ_WHAT_METRIC_ZERO] = "its metric (its name's 0 is what Lightning writes for a metric not logged "
                                  "yet, and its metric log does not tell which)",
        [READ_WHAT_RUN] = "its run",
        [READ_WHAT_SHARED] = "whose it is (another checkpoint's name in the run is a hard link to the same file)",
};

/* the bits and values struct ckpt keeps in a byte or two */
_Static_assert(_KEEP_REASON_MAX <= 16, "verdict.reasons is 16 bits");
_Static_assert(_PIN_KIND_MAX <= 8, "pins is 8 bits");
_Static_assert(_DELETE_REASON_MAX <= 256, "delete_reason is kept in a byte");
_Static_assert(_READ_WHAT_MAX <= 16 && _ORDER_SOURCE_MAX <= 4, "read_what is 4 bits, order_source 2");
_Static_assert(FIELDS_MAX < 32, "n_fields is 5 bits");
/* one per checkpoint the daemon tracks: 88 bytes, none of them padding */
_Static_assert(sizeof(struct ckpt) == 88, "struct ckpt grew");

#define TABLE_LOOKUP(table, i) ((unsigned)(i) < ELEMENTSOF(table) ? table[i] : NULL)

const char *keep_reason_to_string(enum keep_reason r)
{
        return TABLE_LOOKUP(keep_reason_table, r);
}
const char *pin_kind_to_string(enum pin_kind k)
{
        return TABLE_LOOKUP(pin_kind_table, k);
}
const char *delete_reason_to_string(enum delete_reason r)
{
        return TABLE_LOOKUP(delete_reason_table, r);
}
const char *order_source_to_string(enum order_source s)
{
        return TABLE_LOOKUP(order_source_table, s);
}
const char *ckpt_read_what(const struct ckpt *c)
{
        return TABLE_LOOKUP(read_what_table, c->read_what);
}
