/* Small helpers shared by lib/ and daemon/. libsystemd does not export its
 * internal macros, so the few we need live here. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define USEC_PER_SEC  1000000ULL
#define NSEC_PER_USEC 1000ULL

#define _unused_       __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

static inline void freep(void *p)
{
        free(*(void **)p);
}

static inline void closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}

#define _cleanup_free_  __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* Close fd if open and return -1, so "fd = safe_close(fd);" resets it. */
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

/* Take the pointer out of *p, leaving NULL behind (ownership transfer). */
#define TAKE_PTR(p)                                                                                                    \
        ({                                                                                                             \
                __typeof__(p) _p_ = (p);                                                                               \
                (p) = NULL;                                                                                            \
                _p_;                                                                                                   \
        })
#define TAKE_FD(fd)                                                                                                    \
        ({                                                                                                             \
                int _fd_ = (fd);                                                                                       \
                (fd) = -1;                                                                                             \
                _fd_;                                                                                                  \
        })

#include <stdint.h>
#include <time.h>

/* The clock in microseconds (CLOCK_REALTIME compares with mtimes). */
static inline int64_t now_usec(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
