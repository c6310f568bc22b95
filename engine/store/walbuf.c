/* walbuf.c - the writer's WAL writes gathered into one system call per
 * commit.
 *
 * SQLite appends a commit to the WAL one frame at a time, each frame as two
 * writes (its 24-byte header, then the page): a batch of bookings that
 * touches 40 pages is 80 `pwrite` calls, then one `fdatasync`.  On this
 * kind of virtual machine a system call costs microseconds, and under load
 * those calls were a fifth of the writer thread's time (perf, scripts/
 * README.md).  This VFS sits in front of the process's default VFS for the
 * writer's connection and keeps a run of contiguous WAL writes in memory;
 * the run goes to the file in one write
 *   - as soon as the page of a commit frame (a frame header whose "database
 *     size after commit" field is not zero) has been written, i.e. before
 *     SQLite publishes the commit in the WAL index, where other connections
 *     look for it;
 *   - before anything else touches the file through this handle: a write
 *     elsewhere, a read, a sync, a size, a truncation, a lock, a file
 *     control, the close.
 * So every byte reaches the file before any reader could look for it and
 * before SQLite syncs (synchronous=FULL syncs the WAL at every commit), and
 * what SQLite reads back through this handle is what it wrote: the file
 * seen from outside is the same as without the buffer at every point that
 * matters, only written with fewer calls.  A write that fails when the run
 * is handed on fails the call that handed it on (for a commit, the write of
 * its last page: the commit fails as it would have); the run is dropped,
 * as SQLite writes the frames of a failed transaction again anyway.
 *
 * Only WAL files are wrapped; the database file, journals and the shared
 * memory go straight to the real VFS (their sqlite3_file is the real one).
 * The real VFS is the default one when the connection opens, so a test's
 * fault-injecting default VFS (tests/c/test_faults.c) still sees every
 * write, gathered or not. */
#include "walbuf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

/* Largest run kept in memory (a batch of 60 bookings writes ~100 frames,
 * ~410 KiB); a longer one is handed on in pieces of this size. */
#define WALBUF_CAP (2u << 20)
/* The most handed on in one call: the unix VFS writes at most 128 KiB - 1
 * per system call (it was made for pages of at most 64 KiB) and takes a
 * write of exactly 128 KiB for a full disk. */
#define WALBUF_CALL_MAX (124u << 10)
/* WAL layout (SQLite's file format): a 32-byte file header, then frames of
 * a 24-byte header and a page; bytes 4-7 of a frame header are the
 * database size after a commit, zero for other frames. */
#define WAL_FILE_HEADER 32
#define WAL_FRAME_HEADER 24

struct wb_file {
    sqlite3_file base;    /* pMethods = &wb_methods */
    sqlite3_file *real;   /* the real VFS's file, right after this struct */
    unsigned char *buf;   /* the run: bytes [off, off + len) of the file */
    sqlite3_int64 off;
    size_t len;
    int commit_page_next; /* a commit frame's header is in the run */
};

/* The real file sits after our struct, aligned like any allocation. */
#define WB_REAL_OFFSET ((sizeof(struct wb_file) + 15u) & ~(size_t)15u)

static atomic_uint_fast64_t writes_in, writes_out;

static int
wb_flush(struct wb_file *w)
{
    int rc = SQLITE_OK;
    size_t done = 0;
    while (done < w->len && rc == SQLITE_OK) {
        size_t n = w->len - done < WALBUF_CALL_MAX ? w->len - done : WALBUF_CALL_MAX;
        rc = w->real->pMethods->xWrite(w->real, w->buf + done, (int)n,
                                       w->off + (sqlite3_int64)done);
        atomic_fetch_add_explicit(&writes_out, 1, memory_order_relaxed);
        done += n;
    }
    w->len = 0;
    return rc;
}

static int
wb_close(sqlite3_file *f)
{
    struct wb_file *w = (struct wb_file *)f;
    int rc = wb_flush(w);
    int rc2 = w->real->pMethods != NULL ? w->real->pMethods->xClose(w->real) : SQLITE_OK;
    sqlite3_free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int
wb_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 off)
{
    struct wb_file *w = (struct wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, out, amt, off);
}

static int
wb_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 off)
{
    struct wb_file *w = (struct wb_file *)f;
    atomic_fetch_add_explicit(&writes_in, 1, memory_order_relaxed);
    size_t n = amt > 0 ? (size_t)amt : 0;
    if (w->len > 0 && (off != w->off + (sqlite3_int64)w->len || w->len + n > WALBUF_CAP)) {
        int rc = wb_flush(w);
        if (rc != SQLITE_OK) {
            return rc;
        }
    }
    if (w->buf == NULL && n <= WALBUF_CAP) {
        w->buf = sqlite3_malloc64(WALBUF_CAP); /* NULL: written directly */
    }
    if (w->buf == NULL || n > WALBUF_CAP) {
        atomic_fetch_add_explicit(&writes_out, 1, memory_order_relaxed);
        w->commit_page_next = 0;
        return w->real->pMethods->xWrite(w->real, data, amt, off);
    }
    if (w->len == 0) {
        w->off = off;
    }
    memcpy(w->buf + w->len, data, n);
    w->len += n;
    if (w->commit_page_next) {
        /* The page of a commit frame: everything of the commit is in the
         * run; it reaches the file before SQLite publishes the commit. */
        w->commit_page_next = 0;
        return wb_flush(w);
    }
    const unsigned char *h = data;
    if (n == WAL_FRAME_HEADER && off >= WAL_FILE_HEADER && (h[4] | h[5] | h[6] | h[7]) != 0) {
        w->commit_page_next = 1;
    }
    return SQLITE_OK;
}

static int
wb_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct wb_file *w = (struct wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int
wb_sync(sqlite3_file *f, int flags)
{
    struct wb_file *w = (struct wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int
wb_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct wb_file *w = (struct wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int
wb_lock(sqlite3_file *f, int level)
{
    struct wb_file *w = (struct wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xLock(w->real, level);
}

static int
wb_unlock(sqlite3_file *f, int level)
{
    struct wb_file *w = (struct wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xUnlock(w->real, level);
}

static int
wb_check_reserved(sqlite3_file *f, int *out)
{
    struct wb_file *w = (struct wb_file *)f;
    return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int
wb_file_control(sqlite3_file *f, int op, void *arg)
{
    struct wb_file *w = (struct wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int
wb_sector_size(sqlite3_file *f)
{
    struct wb_file *w = (struct wb_file *)f;
    return w->real->pMethods->xSectorSize(w->real);
}

static int
wb_device_characteristics(sqlite3_file *f)
{
    struct wb_file *w = (struct wb_file *)f;
    return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* A WAL file has no shared memory or memory map of its own; these pass on
 * for completeness. */
static int
wb_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    struct wb_file *w = (struct wb_file *)f;
    if (w->real->pMethods->iVersion < 2) {
        return SQLITE_IOERR;
    }
    return w->real->pMethods->xShmMap(w->real, page, size, extend, out);
}

static int
wb_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    struct wb_file *w = (struct wb_file *)f;
    if (w->real->pMethods->iVersion < 2) {
        return SQLITE_IOERR;
    }
    return w->real->pMethods->xShmLock(w->real, offset, n, flags);
}

static void
wb_shm_barrier(sqlite3_file *f)
{
    struct wb_file *w = (struct wb_file *)f;
    if (w->real->pMethods->iVersion >= 2) {
        w->real->pMethods->xShmBarrier(w->real);
    }
}

static int
wb_shm_unmap(sqlite3_file *f, int delete_flag)
{
    struct wb_file *w = (struct wb_file *)f;
    if (w->real->pMethods->iVersion < 2) {
        return SQLITE_OK;
    }
    return w->real->pMethods->xShmUnmap(w->real, delete_flag);
}

static int
wb_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **out)
{
    (void)f;
    (void)off;
    (void)amt;
    *out = NULL; /* no memory map: SQLite reads instead */
    return SQLITE_OK;
}

static int
wb_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    (void)f;
    (void)off;
    (void)p;
    return SQLITE_OK;
}

static const sqlite3_io_methods wb_methods = {
    3,
    wb_close,
    wb_read,
    wb_write,
    wb_truncate,
    wb_sync,
    wb_file_size,
    wb_lock,
    wb_unlock,
    wb_check_reserved,
    wb_file_control,
    wb_sector_size,
    wb_device_characteristics,
    wb_shm_map,
    wb_shm_lock,
    wb_shm_barrier,
    wb_shm_unmap,
    wb_fetch,
    wb_unfetch,
};

/* ---------- the VFS: everything passed on but the WAL files' writes ---------- */

#define REAL(vfs) ((sqlite3_vfs *)(vfs)->pAppData)

static int
wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    sqlite3_vfs *real = REAL(vfs);
    if ((flags & SQLITE_OPEN_WAL) == 0) {
        /* Not a WAL: the real file itself (our szOsFile is larger). */
        return real->xOpen(real, name, f, flags, out_flags);
    }
    struct wb_file *w = (struct wb_file *)f;
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)((char *)f + WB_REAL_OFFSET);
    int rc = real->xOpen(real, name, w->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (w->real->pMethods != NULL) {
            (void)w->real->pMethods->xClose(w->real);
        }
        w->base.pMethods = NULL;
        return rc;
    }
    w->base.pMethods = &wb_methods;
    return SQLITE_OK;
}

static int
wb_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    return REAL(vfs)->xDelete(REAL(vfs), name, sync_dir);
}

static int
wb_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    return REAL(vfs)->xAccess(REAL(vfs), name, flags, out);
}

static int
wb_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    return REAL(vfs)->xFullPathname(REAL(vfs), name, n, out);
}

static void *
wb_dl_open(sqlite3_vfs *vfs, const char *name)
{
    return REAL(vfs)->xDlOpen(REAL(vfs), name);
}

static void
wb_dl_error(sqlite3_vfs *vfs, int n, char *out)
{
    REAL(vfs)->xDlError(REAL(vfs), n, out);
}

static void (*wb_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    return REAL(vfs)->xDlSym(REAL(vfs), h, sym);
}

static void
wb_dl_close(sqlite3_vfs *vfs, void *h)
{
    REAL(vfs)->xDlClose(REAL(vfs), h);
}

static int
wb_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    return REAL(vfs)->xRandomness(REAL(vfs), n, out);
}

static int
wb_sleep(sqlite3_vfs *vfs, int us)
{
    return REAL(vfs)->xSleep(REAL(vfs), us);
}

static int
wb_current_time(sqlite3_vfs *vfs, double *out)
{
    return REAL(vfs)->xCurrentTime(REAL(vfs), out);
}

static int
wb_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    return REAL(vfs)->xGetLastError(REAL(vfs), n, out);
}

static int
wb_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    sqlite3_vfs *real = REAL(vfs);
    if (real->iVersion >= 2 && real->xCurrentTimeInt64 != NULL) {
        return real->xCurrentTimeInt64(real, out);
    }
    double d = 0;
    int rc = real->xCurrentTime(real, &d);
    *out = (sqlite3_int64)(d * 86400000.0);
    return rc;
}

/* One of ours per real VFS met as the default (a test may install its own
 * default VFS after an engine already opened with the system's). */
#define WALBUF_VFS_MAX 4
static sqlite3_vfs shims[WALBUF_VFS_MAX];
static char shim_names[WALBUF_VFS_MAX][32];
static int shim_count;
static pthread_mutex_t shim_mu = PTHREAD_MUTEX_INITIALIZER;

const char *
walbuf_vfs_name(void)
{
    const char *name = NULL;
    pthread_mutex_lock(&shim_mu);
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    for (int i = 0; real != NULL && i < shim_count; i++) {
        if (shims[i].pAppData == real || &shims[i] == real) {
            name = shims[i].zName;
            break;
        }
    }
    if (name == NULL && real != NULL && shim_count < WALBUF_VFS_MAX &&
        real->szOsFile <= 1 << 20) {
        sqlite3_vfs *v = &shims[shim_count];
        snprintf(shim_names[shim_count], sizeof shim_names[shim_count], "allot-walbuf-%d",
                 shim_count);
        *v = (sqlite3_vfs){
            .iVersion = 2,
            .szOsFile = (int)WB_REAL_OFFSET + real->szOsFile,
            .mxPathname = real->mxPathname,
            .zName = shim_names[shim_count],
            .pAppData = real,
            .xOpen = wb_open,
            .xDelete = wb_delete,
            .xAccess = wb_access,
            .xFullPathname = wb_full_pathname,
            .xDlOpen = wb_dl_open,
            .xDlError = wb_dl_error,
            .xDlSym = wb_dl_sym,
            .xDlClose = wb_dl_close,
            .xRandomness = wb_randomness,
            .xSleep = wb_sleep,
            .xCurrentTime = wb_current_time,
            .xGetLastError = wb_last_error,
            .xCurrentTimeInt64 = wb_current_time64,
        };
        if (sqlite3_vfs_register(v, 0) == SQLITE_OK) {
            name = v->zName;
            shim_count++;
        }
    }
    pthread_mutex_unlock(&shim_mu);
    return name;
}

void
walbuf_counts(uint64_t *in, uint64_t *out)
{
    *in = atomic_load(&writes_in);
    *out = atomic_load(&writes_out);
}
