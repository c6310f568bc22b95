/* files.c - the dashboard's static files, served by us, not by civetweb.
 *
 * civetweb's own file serving brings directory listings, CGI, SSI and a
 * history of path bugs; serving the few files of web/ here keeps that code
 * path unused.  A path is refused unless every segment is a plain name (no
 * "..", no hidden files, no backslashes), and the resolved real path must
 * still lie inside the web directory, so neither ".." nor a symbolic link
 * can lead outside it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_internal.h"

#define WEB_FILE_BYTES_MAX ((off_t)16 * 1024 * 1024)

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".csv", "text/csv; charset=utf-8"},
    {".woff2", "font/woff2"},
    {".map", "application/json"},
    {".webmanifest", "application/manifest+json"},
};

static const char *
mime_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof mime_types / sizeof mime_types[0]; i++) {
        if (strcmp(dot, mime_types[i].ext) == 0) {
            return mime_types[i].type;
        }
    }
    return "application/octet-stream";
}

/* True when `name` ("a/b.css", no leading slash) is made of plain segments. */
static bool
plain_path(const char *name)
{
    if (*name == '\0' || strchr(name, '\\') != NULL) {
        return false;
    }
    for (const char *seg = name; *seg != '\0';) {
        const char *end = strchr(seg, '/');
        size_t len = end != NULL ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || seg[0] == '.') {
            return false; /* "//", "..", ".hidden" */
        }
        /* The page's build tooling lives beside it; it is not the page. */
        if ((len == 12 && strncmp(seg, "node_modules", 12) == 0) ||
            strncmp(seg, "package", 7) == 0) {
            return false;
        }
        seg += len;
        if (*seg == '/') {
            seg++;
        }
    }
    return true;
}

static int
not_found(struct http_req *rq)
{
    return http_send_error(rq, 404, "not_found", NULL, "there is nothing at this path");
}

/* Reads a regular file inside the web root into a new buffer. */
static char *
read_web_file(const struct http_server *srv, const char *name, size_t *len)
{
    char path[PATH_MAX], real[PATH_MAX];
    size_t root_len = strlen(srv->web_root);
    if (root_len == 0 || !plain_path(name) ||
        snprintf(path, sizeof path, "%s/%s", srv->web_root, name) >= (int)sizeof path ||
        realpath(path, real) == NULL || strncmp(real, srv->web_root, root_len) != 0 ||
        real[root_len] != '/') {
        return NULL;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0) {
        return NULL;
    }
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= WEB_FILE_BYTES_MAX) {
        buf = malloc((size_t)st.st_size + 1);
    }
    size_t n = 0;
    while (buf != NULL && n < (size_t)st.st_size) {
        ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            free(buf);
            buf = NULL;
            break;
        }
        n += (size_t)got;
    }
    close(fd);
    *len = n;
    return buf;
}

int
http_send_web_file(struct http_req *rq, const char *name, const char *content_type)
{
    size_t len = 0;
    char *data = read_web_file(rq->srv, name, &len);
    if (data == NULL) {
        return not_found(rq);
    }
    int rc = http_send(rq, 200, content_type, data, len, NULL);
    free(data);
    return rc;
}

int
http_static(struct http_req *rq)
{
    const char *method = rq->ri->request_method;
    rq->head_only = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !rq->head_only) {
        return http_send_error_with(rq, 405, "method_not_allowed", NULL,
                                    "static files are read-only", "Allow: GET, HEAD\r\n");
    }
    if (http_has_body(rq)) {
        http_skip_body(rq);
        return http_send_error(rq, 400, "invalid_request", NULL, "this request takes no body");
    }
    /* "/" and "/dir/" mean the directory's index.html; nothing is listed. */
    char name[PATH_MAX];
    const char *p = rq->path[0] == '/' ? rq->path + 1 : rq->path;
    size_t n = strlen(p);
    if (n + sizeof "index.html" > sizeof name) {
        return not_found(rq);
    }
    snprintf(name, sizeof name, "%s%s", p, n == 0 || p[n - 1] == '/' ? "index.html" : "");
    return http_send_web_file(rq, name, mime_type(name));
}
