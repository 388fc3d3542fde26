/* A growable, NULL-terminated list of strings (see strv.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"

int strv_push(struct strv *s, const char *value)
{
        char *copy = strdup(value);
        char **v;

        if (!copy)
                return -ENOMEM;
        /* one more slot keeps v NULL-terminated for callers that want that;
         * doubled, so that n pushes copy O(n) pointers, not O(n^2) */
        if (s->n + 2 > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 4;

                v = reallocarray(s->v, cap, sizeof(*v));
                if (!v) {
                        free(copy);
                        return -ENOMEM;
                }
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = copy;
        s->v[s->n] = NULL;
        return 0;
}

bool strv_contains(const struct strv *s, const char *value)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i], value) == 0)
                        return true;
        return false;
}

static int strcmp_ptr(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(struct strv *s)
{
        if (s->n > 1)
                qsort(s->v, s->n, sizeof(*s->v), strcmp_ptr);
}

bool strv_sorted_contains(const struct strv *s, const char *value)
{
        return s->n > 0 && bsearch(&value, s->v, s->n, sizeof(*s->v), strcmp_ptr) != NULL;
}

void strv_finish(struct strv *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        *s = (struct strv){};
}
