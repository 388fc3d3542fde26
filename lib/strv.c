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
        /* one more slot keeps v NULL-terminated for callers that want that */
        v = realloc(s->v, (s->n + 2) * sizeof(*v));
        if (!v) {
                free(copy);
                return -ENOMEM;
        }
        v[s->n++] = copy;
        v[s->n] = NULL;
        s->v = v;
        return 0;
}

bool strv_contains(const struct strv *s, const char *value)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i], value) == 0)
                        return true;
        return false;
}

void strv_finish(struct strv *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        s->v = NULL;
        s->n = 0;
}
