/* The removal seam of build/ckptd-hooked, a test build of ckptd: with
 * CKPTD_TEST_HOOK="stage:fifo" set, a removal blocks at that stage (see
 * remove_test_hook in lib/remove.h) on a read of the FIFO; a 'k' read from it
 * kills the process right there, so a test can interrupt a removal or swap
 * files between decision and removal. The installed ckptd has no such seam:
 * this file is linked only into ckptd-hooked. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remove.h"

static const char *hook_spec;

static void test_hook(const char *stage, const char *name)
{
        const char *colon = strchr(hook_spec, ':');
        char c = 0;
        int fd;

        (void)name;
        if (!colon || strncmp(hook_spec, stage, (size_t)(colon - hook_spec)) != 0 ||
            strlen(stage) != (size_t)(colon - hook_spec))
                return;
        /* O_RDWR: a FIFO opens at once on Linux (fifo(7)), so the test sees
         * the fd in /proc/PID/fd while we block in read() */
        fd = open(colon + 1, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return;
        if (read(fd, &c, 1) == 1 && c == 'k')
                raise(SIGKILL);
        close(fd);
}

static void __attribute__((constructor)) hook_setup(void)
{
        hook_spec = getenv("CKPTD_TEST_HOOK");
        if (hook_spec && *hook_spec)
                remove_test_hook = test_hook;
}
