/* A growable list of owned strings, kept NULL-terminated. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct strv {
        char **v;
        size_t n;
        size_t cap; /* slots allocated in v, its NULL included */
};

/* Append a copy of value. 0 or -ENOMEM. */
int strv_push(struct strv *s, const char *value);
/* Whether value is one of s's strings. */
bool strv_contains(const struct strv *s, const char *value);
/* Sort s's strings by strcmp(3). */
void strv_sort(struct strv *s);
/* Whether value is one of a sorted s's strings (a binary search). */
bool strv_sorted_contains(const struct strv *s, const char *value);
/* Free every string and the list; s is empty again. */
void strv_finish(struct strv *s);
