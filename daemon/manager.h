/* The daemon's wiring (sd-event) and the one-shot sweep. */
#pragma once

#include <stdbool.h>

#include "config.h"

/* One sweep over every watch (retention, then the floor). Returns the exit
 * status: 0, 1 on a fatal error, 3 when a floor stays unmet. */
int manager_once(const struct config *c, bool dry_run);

/* Run the daemon until SIGTERM/SIGINT. Takes ownership of c. config_path is
 * re-read on SIGHUP (NULL: the -w config stays). log_level < 0: from config.
 * Returns the exit status. */
int manager_run(struct config *c, const char *config_path, bool dry_run, int log_level);
