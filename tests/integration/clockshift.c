/* LD_PRELOAD shim for the clock tests: CLOCK_REALTIME (clock_gettime,
 * gettimeofday, time) runs ahead by the number of seconds in the file named
 * by $CLOCKSHIFT_FILE, read on every call, so a test steps the wall clock of
 * a running daemon without touching the host's. Monotonic and boot-time
 * clocks are left alone, as a real step leaves them. Never in the binary. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset_sec(void)
{
        const char *path = getenv("CLOCKSHIFT_FILE");
        char buf[32];
        ssize_t n;
        int fd;

        if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        return strtoll(buf, NULL, 10);
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
        static int (*real)(clockid_t, struct timespec *);
        int r;

        if (!real)
                real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
        r = real(clk, ts);
        if (r == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE))
                ts->tv_sec += offset_sec();
        return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
        struct timespec ts;

        (void)tz;
        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return -1;
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
        return 0;
}

time_t time(time_t *t)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (t)
                *t = ts.tv_sec;
        return ts.tv_sec;
}
