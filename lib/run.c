/* A scanned run as data: its read error, and freeing it. Shared by the scan
 * of a run (scan.c) and of its pins (scan_pins.c), which call each other's
 * data but not each other. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"
#include "scan_pins.h"

int scan_run_error(struct run *run, int error, const char *fmt, ...)
{
        va_list ap;
        int k;

        if (run->read_error != 0)
                return 0; /* the first one says enough: the run is kept */
        run->read_error = error < 0 ? error : -EIO;
        va_start(ap, fmt);
        k = vasprintf(&run->read_what, fmt, ap);
        va_end(ap);
        if (k < 0) {
                run->read_what = NULL;
                return -ENOMEM;
        }
        return 0;
}

int run_init_unreadable(struct run *ret, const char *path, int error, const char *what)
{
        *ret = (struct run){.path = strdup(path ? path : ".")};
        if (!ret->path || scan_run_error(ret, error, "%s", what) < 0) {
                run_finish(ret);
                return -ENOMEM;
        }
        return 0;
}

void run_finish(struct run *r)
{
        for (size_t i = 0; i < r->n_ckpts; i++)
                ckpt_finish(&r->ckpts[i]);
        free(r->ckpts);
        free(r->path);
        free(r->read_what);
        strv_finish(&r->links);
        *r = (struct run){};
}

void runs_free(struct run *runs, size_t n)
{
        for (size_t i = 0; i < n; i++)
                run_finish(&runs[i]);
        free(runs);
}

bool scan_has_suffix(const char *s, size_t len, const char *suffix)
{
        size_t n = strlen(suffix);

        return len >= n && memcmp(s + len - n, suffix, n) == 0;
}
