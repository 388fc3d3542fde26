/* Linked into the ckptd of `make SANITIZE=1` only. LeakSanitizer stops the
 * world with ptrace, which a seccomp filter such as a systemd unit's
 * SystemCallFilter= refuses: under one it would fail every exit, so it is
 * off there. Everywhere else, leaks are checked as usual. */
#include <stdio.h>
#include <string.h>

int __lsan_is_turned_off(void);

int __lsan_is_turned_off(void)
{
        char line[256];
        int filtered = 0;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "Seccomp:", 8) == 0) {
                        filtered = strstr(line, "2") != NULL; /* SECCOMP_MODE_FILTER */
                        break;
                }
        fclose(f);
        return filtered;
}
