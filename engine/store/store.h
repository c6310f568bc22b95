/* store.h - the storage layer's public face: connections, the reader pool,
 * transactions.  Upper layers see `struct store` only as an opaque handle;
 * every query lives in one of engine/store/<kind>.c, which return row structs
 * or call back once per row.  No SQLite type or call leaves engine/store/.
 *
 * Every step is checked: a storage failure is ENG_ESTORE with a client-facing
 * code ("busy", "storage_full", "storage_unavailable", "storage_error"), the
 * detail going to stderr (the server log) only, and the caller rolls back. */
#ifndef ENG_STORE_H
#define ENG_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct store;
struct store_pool;

enum store_mode {
    STORE_READONLY, /* never writes, never creates, never migrates */
    STORE_WRITER,   /* migrates the schema; refuses a missing file */
    STORE_CREATE    /* like STORE_WRITER, creating the file when missing */
};

/* Opens `path`.  Writers get WAL, synchronous=FULL and every pending
 * migration; every connection gets foreign keys and a busy timeout.
 * `cache_kib` sizes the page cache (0: SQLite's default).  On failure *out
 * is NULL and nothing stays open. */
ENG_MUST_CHECK int store_open(struct store **out, const char *path, enum store_mode mode,
                              int busy_timeout_ms, int cache_kib, struct eng_error *err);
/* Finalises every statement and closes; accepts NULL. */
void store_close(struct store *store);
bool store_readonly(const struct store *store);

/* Transactions.  Savepoints nest inside BEGIN; there is one savepoint name
 * (each write job of a batch takes and releases its own in turn). */
enum store_tx {
    STORE_BEGIN,           /* a read snapshot (deferred) */
    STORE_BEGIN_IMMEDIATE, /* the write lock now */
    STORE_COMMIT,
    STORE_ROLLBACK,
    STORE_SAVEPOINT,
    STORE_RELEASE,
    STORE_ROLLBACK_TO
};
int store_tx(struct store *store, enum store_tx what, struct eng_error *err);
/* Whether a failure since this connection's transaction began was a
 * conflict with a concurrent writer that re-running the whole transaction
 * may resolve: on PostgreSQL a serialization failure, a deadlock, a lock
 * timeout, or the no-double-booking constraint hit by another node's
 * booking (40001, 40P01, 55P03, 23P01; the re-run sees the winner and
 * answers slot_taken).  Always false on SQLite, whose single writer never
 * meets one. */
bool store_retry_advised(struct store *store);
/* Whether a transaction is open (false after SQLite rolled one back on its
 * own, e.g. after an I/O error or a full disk). */
bool store_in_tx(struct store *store);
/* A count moved by every row this connection's statements insert, update
 * or delete (those of triggers included; a statement that failed and was
 * undone adds nothing): two equal readings mean nothing was written in
 * between.  -1 on PostgreSQL, which keeps no such count. */
int64_t store_changes_total(struct store *store);

/* WAL writes SQLite asked for and the system calls they were gathered
 * into, process-wide (store/walbuf.c). */
void store_wal_writes(uint64_t *asked, uint64_t *made);

/* Checkpoints outside the commits (engine/README.md, "Checkpoints off the
 * writer").  On a SQLite connection that writes: SQLite no longer copies
 * the WAL into the database file inside the commit that crosses its
 * threshold; instead `note` is called after each of this connection's
 * commits with the frames now in the WAL, and another connection copies
 * them with store_checkpoint.  `note` NULL: SQLite's own checkpoints
 * again.  PostgreSQL: nothing to do (0, never called). */
ENG_MUST_CHECK int store_wal_hook(struct store *store, void (*note)(void *ud, int frames),
                                  void *ud);
enum store_checkpoint_mode {
    STORE_CHECKPOINT_PASSIVE,  /* as far as readers allow, waiting for nobody */
    STORE_CHECKPOINT_RESTART,  /* waits for the writer and for readers of older
                                  snapshots, copies everything, and waits until
                                  the next write can start the WAL over */
    STORE_CHECKPOINT_TRUNCATE  /* RESTART, and the WAL file cut to nothing */
};
/* Copies the WAL's frames into the database file, and syncs it when the
 * copy reached the WAL's end (SQLite's rule; see store_sync_file); *frames:
 * the WAL's frames, *copied: how many of them the file now holds.  *whole
 * (may be NULL): RESTART or TRUNCATE finished, so the next write starts
 * the WAL over.  They wait for the writer and for readers in steps of
 * 50 µs, at most wait_us; not being able to finish for a reader or the
 * writer is no error.  It replaces the connection's busy handler: give it
 * a connection of its own.  PostgreSQL: 0, with both 0. */
ENG_MUST_CHECK int store_checkpoint(struct store *store, enum store_checkpoint_mode mode,
                                    int wait_us, int *frames, int *copied, bool *whole,
                                    struct eng_error *err);

/* Syncs the database file to disk.  A PASSIVE copy that the writer
 * outran (it committed while the copy ran) leaves what it wrote unsynced,
 * and the RESTART that finishes the round then syncs all of it with the
 * writer held; syncing after the PASSIVE copy, beside the writer, leaves
 * that RESTART the last few batches' pages.  PostgreSQL: 0. */
ENG_MUST_CHECK int store_sync_file(struct store *store, struct eng_error *err);

/* The reader pool: at most `size` shared read-only connections, whatever
 * the number of threads asking; one is opened with the pool, the others
 * when concurrent requests first need them.  acquire waits while every
 * connection is in use (first come, first served; NULL with err set only
 * when the wait cannot be set up). */
ENG_MUST_CHECK int store_pool_open(struct store_pool **out, const char *path, int size,
                                   int busy_timeout_ms, int cache_kib, struct eng_error *err);
void store_pool_close(struct store_pool *pool);
struct store *store_pool_acquire(struct store_pool *pool, struct eng_error *err);
/* A free connection, or NULL at once when every one is in use. */
struct store *store_pool_try_acquire(struct store_pool *pool);
void store_pool_release(struct store_pool *pool, struct store *store);
/* Acquisitions so far (acquire and successful try_acquire) and how many of
 * them waited for a connection (acquire) or found none (try_acquire). */
void store_pool_counts(struct store_pool *pool, uint64_t *acquires, uint64_t *waits);

/* Latest schema version this build knows, and the file's. */
int store_schema_version(void);
ENG_MUST_CHECK int store_file_schema(struct store *store, int *version, struct eng_error *err);

#endif
