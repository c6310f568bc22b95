/* allotd.c - the server: opens (and migrates) the database and serves the
 * engine.  Startup order, signals and shutdown only; no logic. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

int
main(int argc, char **argv)
{
    struct engine_config cfg;
    engine_config_default(&cfg);
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--db") == 0) {
            snprintf(cfg.db_path, sizeof cfg.db_path, "%s", argv[++i]);
        } else if (strcmp(argv[i], "--policies") == 0) {
            snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s", argv[++i]);
        }
    }
    struct engine eng;
    struct eng_error err = {0};
    if (engine_open(&eng, &cfg, &err) != 0) {
        fprintf(stderr, "allotd: %s\n", err.msg);
        return 1;
    }
    printf("allotd: database %s ready (schema %d)\n", cfg.db_path, store_schema_version());
    engine_close(&eng);
    return 0;
}
