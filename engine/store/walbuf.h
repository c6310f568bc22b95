/* walbuf.h - the writer's WAL writes gathered into one system call per
 * commit (see walbuf.c).  Store-internal: only db.c includes it. */
#ifndef ALLOT_STORE_WALBUF_H
#define ALLOT_STORE_WALBUF_H

#include <stdint.h>

/* The name of a VFS that passes everything to the process's default VFS
 * of the moment, except that writes to a WAL file are gathered in memory
 * and handed on in one write when a commit's last frame is written or
 * anything else touches the file.  NULL if it cannot be registered (the
 * caller then opens with the default VFS: same behaviour, more calls). */
const char *walbuf_vfs_name(void);

/* Writes handed to the real WAL files, and the calls they came as
 * (process-wide; for the tests and the benchmark's counters). */
void walbuf_counts(uint64_t *writes_in, uint64_t *writes_out);

#endif
