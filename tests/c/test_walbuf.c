/* test_walbuf.c - the writer's gathered WAL writes (store/walbuf.c) leave
 * the file as SQLite would have written it: another connection sees every
 * commit as soon as it returns, pages spilled and read back within a
 * transaction read back right, rolled-back frames do no harm, commits
 * larger than the buffer and than one system call go through, the
 * database reopens whole, and the writes really are gathered.
 *
 * A real database file, SQLite's own default VFS underneath; the writer
 * opens through walbuf_vfs_name() as store_open does, the reader without. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "walbuf.h"
#include "xorshift.h"

static void
exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        printf("# %s: %s\n", sql, msg ? msg : "?");
    }
    CHECK_INT(rc, SQLITE_OK);
    sqlite3_free(msg);
}

static int64_t
scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

static void
insert_blob(sqlite3 *db, int64_t id, size_t len)
{
    unsigned char *b = malloc(len > 0 ? len : 1);
    for (size_t i = 0; i < len; i++) {
        b[i] = (unsigned char)next();
    }
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_prepare_v2(db, "INSERT INTO t(id, b, h) VALUES (?1, ?2, ?3)", -1, &st, NULL),
              SQLITE_OK);
    /* h: a checksum of the blob, recomputed by the reader */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ b[i]) * 1099511628211ull;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, b, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (int64_t)(h & 0x7fffffffffffffffull));
    CHECK_INT(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    free(b);
}

/* Every blob's checksum recomputed from what the connection reads. */
static int64_t
bad_rows(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t bad = 0;
    if (sqlite3_prepare_v2(db, "SELECT b, h FROM t", -1, &st, NULL) != SQLITE_OK) {
        return -1;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        uint64_t h = 1469598103934665603ull;
        for (int i = 0; i < len; i++) {
            h = (h ^ b[i]) * 1099511628211ull;
        }
        bad += (int64_t)(h & 0x7fffffffffffffffull) != sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return bad;
}

int
main(void)
{
    char dir[] = "/tmp/allot-walbuf-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/w.db", dir);
    const char *vfs = walbuf_vfs_name();
    CHECK(vfs != NULL);
    CHECK_STR(walbuf_vfs_name(), vfs); /* one per real VFS */

    sqlite3 *w = NULL, *r = NULL;
    CHECK_INT(sqlite3_open_v2(path, &w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
              SQLITE_OK);
    exec_ok(w, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
               "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB NOT NULL, h INTEGER NOT NULL)");
    CHECK_INT(sqlite3_open_v2(path, &r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);

    uint64_t in0 = 0, out0 = 0;
    walbuf_counts(&in0, &out0);
    int64_t id = 0, bytes = 0;
    int seen_each_commit = 1;
    /* 1. Many small commits (the booking shape), then commits of several
     *    MiB (more than the buffer and than one system call), with
     *    synchronous FULL and NORMAL (NORMAL never syncs at commit: the
     *    commit frame alone must hand the run on). */
    for (int round = 0; round < 300; round++) {
        if (round == 150) {
            exec_ok(w, "PRAGMA synchronous = NORMAL");
        }
        int rows = round % 50 == 49 ? 400 : 1 + (int)(next() % 6);
        exec_ok(w, "BEGIN IMMEDIATE");
        for (int k = 0; k < rows; k++) {
            size_t len = round % 50 == 49 ? 9000 : (size_t)(next() % 3000);
            insert_blob(w, ++id, len);
            bytes += (int64_t)len;
        }
        exec_ok(w, "COMMIT");
        /* The reader's next snapshot holds the commit, whole. */
        if (scalar(r, "SELECT count(*) FROM t") != id ||
            scalar(r, "SELECT coalesce(sum(length(b)), 0) FROM t") != bytes) {
            seen_each_commit = 0;
        }
    }
    CHECK(seen_each_commit);
    CHECK_INT(bad_rows(r), 0);

    /* 2. A transaction larger than the page cache: SQLite spills pages into
     *    the WAL before the commit and reads them back from it. */
    exec_ok(w, "PRAGMA cache_size = 20; PRAGMA synchronous = FULL");
    exec_ok(w, "BEGIN IMMEDIATE");
    for (int k = 0; k < 300; k++) {
        insert_blob(w, ++id, 5000);
        bytes += 5000;
    }
    CHECK_INT(scalar(w, "SELECT count(*) FROM t"), id);
    CHECK_INT(bad_rows(w), 0);
    exec_ok(w, "COMMIT");
    CHECK_INT(scalar(r, "SELECT count(*) FROM t"), id);
    CHECK_INT(bad_rows(r), 0);

    /* 3. Spilled frames of a transaction rolled back, then overwritten by
     *    the next one. */
    exec_ok(w, "BEGIN IMMEDIATE");
    for (int k = 0; k < 200; k++) {
        insert_blob(w, id + 1 + k, 5000);
    }
    exec_ok(w, "ROLLBACK");
    CHECK_INT(scalar(r, "SELECT count(*) FROM t"), id);
    exec_ok(w, "BEGIN IMMEDIATE");
    insert_blob(w, ++id, 100);
    bytes += 100;
    exec_ok(w, "COMMIT");
    CHECK_INT(scalar(r, "SELECT count(*) FROM t"), id);
    CHECK_INT(scalar(r, "SELECT coalesce(sum(length(b)), 0) FROM t"), bytes);

    /* 4. A checkpoint and a restarted WAL (written from its start again). */
    exec_ok(w, "PRAGMA wal_checkpoint(TRUNCATE)");
    exec_ok(w, "BEGIN IMMEDIATE");
    insert_blob(w, ++id, 2000);
    bytes += 2000;
    exec_ok(w, "COMMIT");
    CHECK_INT(scalar(r, "SELECT count(*) FROM t"), id);

    /* The writes were gathered: many fewer calls than SQLite's writes. */
    uint64_t in1 = 0, out1 = 0;
    walbuf_counts(&in1, &out1);
    printf("# WAL writes %llu in %llu calls\n", (unsigned long long)(in1 - in0),
           (unsigned long long)(out1 - out0));
    CHECK(in1 - in0 > 1000);
    CHECK((out1 - out0) * 4 < in1 - in0);

    CHECK_INT(sqlite3_close(r), SQLITE_OK);
    CHECK_INT(sqlite3_close(w), SQLITE_OK);

    /* 5. Reopened without our VFS: everything there, the file whole. */
    sqlite3 *again = NULL;
    CHECK_INT(sqlite3_open_v2(path, &again, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    CHECK_INT(scalar(again, "SELECT count(*) FROM t"), id);
    CHECK_INT(scalar(again, "SELECT coalesce(sum(length(b)), 0) FROM t"), bytes);
    CHECK_INT(bad_rows(again), 0);
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_prepare_v2(again, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    CHECK_INT(sqlite3_close(again), SQLITE_OK);

    char f[300];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s%s", path, suffix[i]);
        (void)unlink(f);
    }
    (void)rmdir(dir);
    return check_exit();
}
