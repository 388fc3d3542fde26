/* Metrics from JSON files inside directory checkpoints: HF trainer_state.json
 * and Orbax-style metrics files. json-c reads the NaN, Infinity and -Infinity
 * tokens that Python's json module writes (allow_nan=True is its default) as
 * doubles; null is treated as "no value". */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "metricfile.h"
#include "scan.h"

/* trainer_state.json grows with log_history: tens of MB on long runs. The cap
 * only guards against reading something absurd into memory. */
#define JSON_FILE_MAX (256u * 1024 * 1024)

#define HF_STATE_FILE "trainer_state.json"

/* Read a whole regular file below dir_fd, NUL-terminated. */
int read_file_at(int dir_fd, const char *relpath, size_t max_bytes, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0, cap;

        /* O_NONBLOCK: a FIFO planted under the checkpoint must not hang the
         * scan (open(2) blocks on a FIFO until a writer appears). */
        fd = openat_beneath(dir_fd, relpath, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t)st.st_size > max_bytes)
                return -EFBIG;

        /* The file may still grow while we read: size the buffer from fstat
         * and keep reading until EOF or the cap. */
        cap = (size_t)st.st_size + 1;
        if (cap < 4096)
                cap = 4096;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap > max_bytes)
                                return -EFBIG;
                        size_t ncap = cap * 2;
                        char *n = realloc(buf, ncap);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        cap = ncap;
                }
                ssize_t k = read(fd, buf + len, cap - len - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static bool is_json_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parse exactly one JSON value filling the whole buffer (whitespace aside). */
static int parse_json(const char *buf, size_t len, struct json_object **ret)
{
        struct json_tokener *tok;
        struct json_object *obj;
        size_t end;

        /* JSON text never holds a NUL byte, and json-c would stop at one. */
        if (memchr(buf, '\0', len))
                return -EINVAL;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        /* Strict mode still takes Python's NaN/Infinity/-Infinity (exact
         * case; json_tokener.c), but not trailing commas. Pass the
         * terminating NUL too: without it a top-level number stays
         * json_tokener_continue (json-c waits for more digits). */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        obj = json_tokener_parse_ex(tok, buf, (int)(len + 1));
        if (json_tokener_get_error(tok) != json_tokener_success || !obj) {
                json_object_put(obj);
                json_tokener_free(tok);
                return -EINVAL;
        }
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        /* json-c stops after the first value; whatever follows must be
         * whitespace (non-strict json-c would report success otherwise). */
        for (; end < len; end++)
                if (!is_json_space(buf[end])) {
                        json_object_put(obj);
                        return -EINVAL;
                }
        *ret = obj;
        return 0;
}

static int load_json_at(int dir_fd, const char *relpath, struct json_object **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r;

        r = read_file_at(dir_fd, relpath, JSON_FILE_MAX, &buf, &len);
        if (r < 0)
                return r;
        return parse_json(buf, len, ret);
}

/* A JSON number as a double: 0, -ENOENT for null, -EINVAL for other types. */
static int json_number(struct json_object *v, double *ret)
{
        switch (json_object_get_type(v)) {
        case json_type_double:
        case json_type_int: *ret = json_object_get_double(v); return 0;
        case json_type_null: return -ENOENT;
        default: return -EINVAL;
        }
}

int metric_hf_state(int ckpt_fd, const char *monitor, double step, double *ret)
{
        struct json_object *root = NULL, *history;
        int r;

        if (!monitor || !ret)
                return -EINVAL;
        r = load_json_at(ckpt_fd, HF_STATE_FILE, &root);
        if (r < 0)
                return r;
        if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "log_history", &history) ||
            !json_object_is_type(history, json_type_array)) {
                r = -ENOENT;
                goto out;
        }

        /* log_history is chronological, so the last match is the newest.
         * A checkpoint's own file only holds history up to its step, but a
         * copied or rewritten one may hold more: hence step <= N. */
        r = -ENOENT;
        for (size_t i = json_object_array_length(history); i > 0; i--) {
                struct json_object *e = json_object_array_get_idx(history, i - 1), *mv, *sv;
                double s, value;

                if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, monitor, &mv))
                        continue;
                if (!json_object_object_get_ex(e, "step", &sv) || json_number(sv, &s) < 0)
                        continue;
                /* The caller passes NaN or +inf when the name has no step:
                 * then every entry qualifies. A NaN entry step never does. */
                if (!isnan(step) && !(s <= step))
                        continue;
                if (json_number(mv, &value) < 0)
                        continue; /* null or not a number: as if absent */
                *ret = value;
                r = 0;
                break;
        }
out:
        json_object_put(root);
        return r;
}

/* Last path component of s ("out/checkpoint-500/" -> "checkpoint-500");
 * malloc'd, NULL on ENOMEM; "" when s holds only slashes. */
static char *path_basename(const char *s)
{
        size_t len = strlen(s);

        while (len > 0 && s[len - 1] == '/')
                len--;
        size_t start = len;
        while (start > 0 && s[start - 1] != '/')
                start--;
        return strndup(s + start, len - start);
}

int metric_hf_best(int ckpt_fd, char **ret)
{
        struct json_object *root = NULL, *v;
        char *name = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        r = load_json_at(ckpt_fd, HF_STATE_FILE, &root);
        if (r < 0)
                return r;
        r = 0;
        if (json_object_is_type(root, json_type_object) &&
            json_object_object_get_ex(root, "best_model_checkpoint", &v) && json_object_is_type(v, json_type_string)) {
                name = path_basename(json_object_get_string(v));
                if (!name)
                        r = -ENOMEM;
                else if (name[0] == '\0' || streq_ptr(name, ".") || streq_ptr(name, "..")) {
                        free(name);
                        name = NULL;
                }
        }
        json_object_put(root);
        *ret = name;
        return r;
}

/* Walk a dotted path "a.b.c" through nested objects: 0 and *ret set,
 * -ENOENT when a step is missing (or empty: "a..b"), -ENOMEM. */
static int lookup_dotted(struct json_object *root, const char *path, struct json_object **ret)
{
        _cleanup_free_ char *copy = strdup(path);
        struct json_object *cur = root;
        char *part;

        if (!copy)
                return -ENOMEM;
        part = copy;
        for (;;) {
                char *dot = strchr(part, '.');
                struct json_object *next;

                if (dot)
                        *dot = '\0';
                if (part[0] == '\0' || !json_object_is_type(cur, json_type_object) ||
                    !json_object_object_get_ex(cur, part, &next))
                        return -ENOENT;
                cur = next;
                if (!dot)
                        break;
                part = dot + 1;
        }
        *ret = cur;
        return 0;
}

int metric_json_file(int ckpt_fd, const char *relpath, const char *monitor, double *ret)
{
        struct json_object *root = NULL, *v = NULL;
        int r;

        if (!relpath || !*relpath || !monitor || !ret)
                return -EINVAL;
        r = load_json_at(ckpt_fd, relpath, &root);
        if (r < 0)
                return r;
        if (!json_object_is_type(root, json_type_object)) {
                r = -ENOENT;
                goto out;
        }
        /* A literal key wins over the dotted path: flat metric dicts often
         * use dotted names ("val.loss") themselves. */
        if (!json_object_object_get_ex(root, monitor, &v)) {
                r = lookup_dotted(root, monitor, &v);
                if (r < 0)
                        goto out;
        }
        r = json_number(v, ret);
out:
        json_object_put(root);
        return r;
}
