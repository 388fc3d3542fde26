/* The daemon's wiring: sd-event loop, reload, floor timers, notify. */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "manager.h"
#include "sweep.h"

int manager_once(const struct config *c, bool dry_run)
{
        struct sweep s;
        int status = EXIT_SUCCESS;

        sweep_init(&s, c, dry_run);
        for (size_t i = 0; i < c->n_watches; i++) {
                struct root r;
                struct run *runs = NULL;
                size_t n = 0;

                if (root_init(&r, &c->watches[i]) < 0) {
                        root_finish(&r);
                        status = EXIT_FAILURE;
                        continue;
                }
                if (sweep_decide_root(&r, s.now_usec, &runs, &n) < 0) {
                        status = EXIT_FAILURE;
                } else {
                        /* Interrupted removals first. Tombstones are dot files,
                         * never checkpoints, so the verdicts stand. */
                        if (!dry_run)
                                sweep_tombstones(&r, runs, n);
                        for (size_t j = 0; j < n; j++)
                                sweep_apply(&s, &r, &runs[j]);
                }
                runs_free(runs, n);
                root_finish(&r);
        }
        if (s.failed > 0)
                status = EXIT_FAILURE;
        log_info("%s %u checkpoint%s%s", dry_run ? "would delete" : "deleted", s.deleted,
                 s.deleted == 1 ? "" : "s", s.capped ? " (deletion cap reached)" : "");
        return status;
}

int manager_run(struct config *c, const char *config_path, bool dry_run, int log_level)
{
        (void)config_path, (void)dry_run, (void)log_level;
        config_free(c);
        return log_errno(-ENOSYS, "the daemon mode is not built yet; use -1"), EXIT_FAILURE;
}
