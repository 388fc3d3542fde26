/* One runner for every unit suite. Suites are weak so that the runner links
 * while a module's suite is absent; a missing one is reported as a failure. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define SUITES(X) X(size) X(pattern) X(policy) X(floor) X(config) X(metricfile) X(scan) X(remove) X(watch) X(failclosed) X(decide) X(escape) X(metriclog) X(verify) X(manager)

#define DECLARE(name) Suite *name##_suite(void) __attribute__((weak));
SUITES(DECLARE)

int main(void)
{
        SRunner *sr = srunner_create(NULL);
        int missing = 0;

#define ADD(name)                                                       \
        if (name##_suite)                                               \
                srunner_add_suite(sr, name##_suite());                  \
        else {                                                          \
                fprintf(stderr, "suite " #name " is missing\n");        \
                missing++;                                              \
        }
        SUITES(ADD)

        srunner_set_fork_status(sr, CK_FORK);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 && missing == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
