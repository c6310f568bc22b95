/* repl.c - `allot repl`, the admin Lua console.
 *
 *   allot repl --db FILE [--create] [--policies DIR] [--now RFC3339]
 *   allot repl --url http://127.0.0.1:8080 --key KEY     (or ALLOT_KEY=KEY in the env)
 *   echo 'return db:me()' | allot repl --db FILE
 *
 * With --db the engine runs in this process and the global `db` acts as the
 * super_admin principal "console" (--now starts the engine's fake clock, so
 * db:set_clock works); with --url every call goes to a running allotd over
 * its HTTP API as the key's principal.  A --db that does not exist is
 * refused (a typo must not start a console on a new empty database) unless
 * --create is given.  Either way `db` has the same methods
 * (db:call(op, args, opts), db:quote{...}, db:wallet{...}, db:as{...}, ...)
 * and the engine applies the API's rules and roles.  quote({...},
 * {candidate = {kind = "pricing", source = ...}}) prices a booking under a
 * policy version before it is activated.  help() prints a guide.
 *
 * On a terminal, lines are edited with readline, history is kept in
 * ~/.allot_history (or $ALLOT_HISTORY), Tab completes globals, db: methods
 * and operation names, Ctrl-C stops a running command or clears the line,
 * and Ctrl-D (or exit, or quit) leaves.  A statement typed over several
 * lines is one history entry.  Tables are fitted to the terminal's width.
 * With piped input there are no prompts and no banner, so scripts work;
 * tables fit $COLUMNS when it is set; the exit status is that of exit(n),
 * else 1 if any input raised an error or printed an operation's refusal.
 *
 * This file owns the terminal, the signals and the read-eval loop.  The Lua
 * half (repl.lua: the remote handle, the printer, completion candidates,
 * help) is compiled into the program as repl_lua.h, so nothing is read from
 * the source tree at run time. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "repl.h"
#include "repl_lua.h"

#define REPL_LINE_BYTES_MAX 4096
/* A whole statement spread over lines, such as a policy pasted between
 * [[ and ]]; policies themselves are capped far below this. */
#define REPL_CHUNK_BYTES_MAX (256 * 1024)
#define REPL_HISTORY_LINES_MAX 1000
#define REPL_PATH_BYTES_MAX 1024
#define REPL_PROMPT "allot> "
#define REPL_PROMPT_MORE "...> "

/* allot_module.c, compiled into this program too. */
int luaopen_allot(lua_State *L);

struct repl_opts {
    const char *db;
    bool create; /* --create: make the --db file when it is missing */
    const char *policies;
    const char *now;
    const char *url;
    const char *key;
};

struct repl {
    lua_State *L;
    int module_ref;  /* repl.lua's table, in the registry */
    char *chunk;     /* the lines of an unfinished statement (REPL_CHUNK_BYTES_MAX) */
    size_t chunk_len;
    bool interactive;
    int failures;    /* inputs that raised an error */
    bool left;       /* exit() or quit ran */
    int exit_code;   /* exit(n)'s n, else -1 */
    char history_path[REPL_PATH_BYTES_MAX];
};

/* What the signal handler may touch: flags, and the Lua state whose hook it
 * arms (lua_sethook is safe in a handler; lua.c relies on it too). */
static lua_State *volatile repl_signal_L;
static volatile sig_atomic_t repl_running; /* a command runs: Ctrl-C interrupts it */
static volatile sig_atomic_t repl_stopped; /* ... and it did */
static volatile sig_atomic_t repl_piped;   /* no prompt to return to: Ctrl-C ends */
static volatile sig_atomic_t repl_sigint;  /* Ctrl-C at the prompt: drop the line */
static volatile sig_atomic_t repl_sigwinch;

/* The line readline handed over (callback interface), for tty_read. */
static char *tty_line;
static bool tty_line_ready;
/* Completion candidates of the current Tab (a Lua array in the registry). */
static struct repl *complete_repl;
static int complete_ref = LUA_NOREF;
static lua_Integer complete_next;

static void
usage(void)
{
    fprintf(stderr, "usage:\n"
                    "  allot repl --db FILE [--create] [--policies DIR] [--now RFC3339]\n"
                    "  allot repl --url http://HOST:PORT --key KEY   (or ALLOT_KEY=KEY)\n");
}

/* Names the mistake, shows the usage; returns 2. */
static int
bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
bad_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("allot repl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage();
    return 2;
}

/* ---------- signals ---------- */

/* Raises in the interrupted command.  It stays armed until the command has
 * returned, so a pcall inside the command cannot swallow the interrupt. */
static void
interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    luaL_error(L, "interrupted");
}

static void
on_signal(int sig)
{
    if (sig == SIGWINCH) {
        repl_sigwinch = 1;
    } else if (repl_running) {
        repl_stopped = 1;
        lua_sethook(repl_signal_L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    } else if (repl_piped) {
        /* Waiting for piped input there is nothing to go back to: die of
         * the signal, so the shell sees an interrupted script. */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    } else {
        repl_sigint = 1;
    }
}

static void
signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* Interrupted reads inside the engine or a socket carry on; the prompt
     * waits in pselect, which returns EINTR whatever this flag says. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
}

/* ---------- the Lua side ---------- */

/* Pushes repl.lua's function `name`; false (nothing pushed) when the stack
 * cannot grow, which a command returning a million values can cause: no
 * protected call is running here to catch luaL_checkstack's error.
 * [-0, +1|0, m] */
static bool
push_module_fn(struct repl *r, const char *name)
{
    if (!lua_checkstack(r->L, 2 + LUA_MINSTACK)) {
        return false;
    }
    lua_rawgeti(r->L, LUA_REGISTRYINDEX, r->module_ref);
    lua_getfield(r->L, -1, name);
    lua_remove(r->L, -2);
    return true;
}

/* Whether the input just run called exit() or quit; *code gets its exit
 * status when it gave one (else it is left alone).  [-0, +0, -] */
static bool
leaving(struct repl *r, int *code)
{
    lua_State *L = r->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->module_ref);
    lua_getfield(L, -1, "leaving");
    lua_getfield(L, -2, "exit_code");
    bool yes = lua_toboolean(L, -2);
    if (yes && lua_isinteger(L, -1)) {
        *code = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 3);
    return yes;
}

/* Tells repl.lua how wide the screen is, so tables fit it (0: no limit).
 * [-0, +0, m] */
static void
set_columns(struct repl *r, int columns)
{
    lua_rawgeti(r->L, LUA_REGISTRYINDEX, r->module_ref);
    if (columns > 0) {
        lua_pushinteger(r->L, columns);
    } else {
        lua_pushnil(r->L);
    }
    lua_setfield(r->L, -2, "columns");
    lua_pop(r->L, 1);
}

/* Prints the error object on top of the stack the way repl.lua words it
 * ("error 409 insufficient_credits: ..." for an engine error).  Errors go
 * to stderr, after what the command printed.  [-1, +0, -] */
static void
report_error(struct repl *r)
{
    lua_State *L = r->L;
    bool ok = push_module_fn(r, "format_error");
    if (ok) {
        lua_insert(L, -2);
        ok = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING;
    }
    fflush(stdout);
    fprintf(stderr, "%s\n", ok ? lua_tostring(L, -1) : "error: (an error that cannot be shown)");
    lua_pop(L, 1);
    r->failures++;
}

/* Runs the compiled input on top of the stack and prints what it returned.
 * [-1, +0, -] */
static void
run_input(struct repl *r)
{
    lua_State *L = r->L;
    int base = lua_gettop(L) - 1;
    repl_running = 1;
    int rc = lua_pcall(L, 0, LUA_MULTRET, 0);
    repl_running = 0;
    lua_sethook(L, NULL, 0, 0);
    if (repl_stopped) {
        /* The terminal echoed ^C where the cursor was: start a new line. */
        repl_stopped = 0;
        fputc('\n', stderr);
    }
    if (rc != LUA_OK) {
        report_error(r);
        return;
    }
    int results = lua_gettop(L) - base;
    if (results > 0 && !push_module_fn(r, "show")) {
        lua_settop(L, base);
        lua_pushliteral(L, "too many results to show");
        report_error(r);
    } else if (results > 0) {
        lua_insert(L, base + 1);
        if (lua_pcall(L, results, 1, 0) != LUA_OK) {
            report_error(r);
        } else {
            /* show() answers true for an operation's refusal it printed:
             * a failed line, like a raised error. */
            if (lua_toboolean(L, -1)) {
                r->failures++;
            }
            lua_pop(L, 1);
        }
    }
    fflush(stdout);
}

/* Compiles the input so far and runs it.  Returns true when it is an
 * unfinished statement that the next line continues. */
static bool
eval_chunk(struct repl *r)
{
    lua_State *L = r->L;
    if (!push_module_fn(r, "compile")) {
        return false;
    }
    lua_pushlstring(L, r->chunk, r->chunk_len);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
        report_error(r);
        return false;
    }
    if (lua_isfunction(L, -2)) {
        lua_pop(L, 1);
        run_input(r);
        return false;
    }
    if (lua_isboolean(L, -1)) {
        lua_pop(L, 2);
        return true;
    }
    lua_remove(L, -2);
    report_error(r);
    return false;
}

static bool
blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
            return false;
        }
    }
    return true;
}

static void
refuse_input(struct repl *r, const char *what, int limit)
{
    fflush(stdout);
    fprintf(stderr, "error: %s holds at most %d bytes; it was dropped\n", what, limit);
    r->chunk_len = 0;
    r->failures++;
}

static void history_add_chunk(const struct repl *r);

/* Adds one line to the input and runs the input once it is a whole
 * statement (kept in the history as one entry, however many lines it
 * took).  Returns true when more lines are needed. */
static bool
feed_line(struct repl *r, const char *line, size_t len)
{
    if (r->chunk_len == 0 && blank(line, len)) {
        return false;
    }
    if (r->chunk_len + 1 + len > REPL_CHUNK_BYTES_MAX) {
        refuse_input(r, "an input", REPL_CHUNK_BYTES_MAX);
        return false;
    }
    if (r->chunk_len > 0) {
        r->chunk[r->chunk_len++] = '\n';
    }
    memcpy(r->chunk + r->chunk_len, line, len);
    r->chunk_len += len;
    bool more = eval_chunk(r);
    if (!more) {
        if (r->interactive) {
            history_add_chunk(r);
        }
        r->chunk_len = 0;
        r->left = leaving(r, &r->exit_code);
    }
    return more;
}

/* ---------- piped input ---------- */

static void
loop_piped(struct repl *r)
{
    char line[REPL_LINE_BYTES_MAX + 2]; /* the line, its '\n', the NUL */
    const char *columns = getenv("COLUMNS");
    set_columns(r, columns != NULL ? atoi(columns) : 0);
    while (!r->left && fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line);
        bool whole = len > 0 && line[len - 1] == '\n';
        if (!whole && !feof(stdin)) {
            int c;
            while ((c = getchar()) != EOF && c != '\n') {
                /* skip the rest of the refused line */
            }
            refuse_input(r, "a line", REPL_LINE_BYTES_MAX);
            continue;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        feed_line(r, line, len);
    }
    if (r->chunk_len > 0 && !r->left) {
        /* The input ended inside a statement: the compiler says where. */
        if (luaL_loadbufferx(r->L, r->chunk, r->chunk_len, "=stdin", "t") == LUA_OK) {
            lua_pop(r->L, 1);
        } else {
            report_error(r);
        }
    }
}

/* ---------- the terminal ---------- */

/* Tab: candidates from repl.lua for the word readline delimited. */
static char *
complete_match(const char *text, int state)
{
    (void)text;
    lua_State *L = complete_repl->L;
    if (state == 0) {
        complete_next = 1;
    }
    if (complete_ref == LUA_NOREF) {
        return NULL;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, complete_ref);
    lua_rawgeti(L, -1, complete_next++);
    const char *s = lua_tostring(L, -1);
    char *match = s != NULL ? strdup(s) : NULL; /* readline frees it */
    lua_pop(L, 2);
    return match;
}

static char **
complete(const char *text, int start, int end)
{
    struct repl *r = complete_repl;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    rl_completion_append_character = '\0';
    luaL_unref(r->L, LUA_REGISTRYINDEX, complete_ref);
    complete_ref = LUA_NOREF;
    if (!push_module_fn(r, "complete")) {
        return NULL;
    }
    lua_pushstring(r->L, rl_line_buffer);
    lua_pushinteger(r->L, start);
    lua_pushinteger(r->L, end);
    if (lua_pcall(r->L, 3, 1, 0) == LUA_OK && lua_istable(r->L, -1)) {
        complete_ref = luaL_ref(r->L, LUA_REGISTRYINDEX);
    } else {
        lua_pop(r->L, 1);
    }
    return rl_completion_matches(text, complete_match);
}

static void
on_line(char *line)
{
    /* Removed here, readline does not redraw the prompt after the line. */
    rl_callback_handler_remove();
    tty_line = line;
    tty_line_ready = true;
}

/* Reads one line with readline's callback interface, so that Ctrl-C at the
 * prompt can be handled outside a signal handler.  Returns 1 with *out
 * (free it), 0 at the end of input, -1 when Ctrl-C dropped the line.  SIGINT
 * and SIGWINCH are blocked on entry; they come in only inside pselect, so
 * none is lost between the checks and the wait. */
static int
tty_read(const char *prompt, const sigset_t *open_mask, char **out)
{
    tty_line_ready = false;
    tty_line = NULL;
    rl_callback_handler_install(prompt, on_line);
    while (!tty_line_ready) {
        if (repl_sigwinch) {
            repl_sigwinch = 0;
            rl_resize_terminal();
        }
        if (repl_sigint) {
            repl_sigint = 0;
            rl_callback_sigcleanup();
            rl_replace_line("", 0);
            fputs("^C", rl_outstream);
            rl_crlf();
            rl_callback_handler_remove();
            return -1;
        }
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(STDIN_FILENO, &fds);
        int n = pselect(STDIN_FILENO + 1, &fds, NULL, NULL, NULL, open_mask);
        if (n < 0 && errno != EINTR) {
            rl_callback_handler_remove();
            return 0;
        }
        if (n > 0) {
            rl_callback_read_char();
        }
    }
    *out = tty_line;
    return tty_line != NULL ? 1 : 0;
}

static void
history_open(struct repl *r)
{
    const char *path = getenv("ALLOT_HISTORY");
    const char *home = getenv("HOME");
    r->history_path[0] = '\0';
    if (path != NULL && path[0] != '\0') {
        snprintf(r->history_path, sizeof r->history_path, "%s", path);
    } else if (home != NULL && home[0] != '\0') {
        snprintf(r->history_path, sizeof r->history_path, "%s/.allot_history", home);
    }
    using_history();
    stifle_history(REPL_HISTORY_LINES_MAX);
    /* An entry of several lines is written with a timestamp line before
     * it, and read back whole up to the next one. */
    history_comment_char = '#'; /* readline starts each timestamp with it */
    history_write_timestamps = 1;
    history_multiline_entries = 1;
    if (r->history_path[0] != '\0') {
        read_history(r->history_path); /* none yet on a first run */
    }
}

/* Adds the statement just run, all its lines as one entry (unless it
 * repeats the last one), so Up brings back a whole function or policy. */
static void
history_add_chunk(const struct repl *r)
{
    if (r->chunk_len == 0) {
        return;
    }
    char *text = strndup(r->chunk, r->chunk_len);
    if (text == NULL) {
        return;
    }
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last == NULL || strcmp(last->line, text) != 0) {
        add_history(text);
    }
    free(text);
}

static void
history_close(const struct repl *r)
{
    if (r->history_path[0] != '\0' && write_history(r->history_path) == 0) {
        chmod(r->history_path, 0600); /* it may hold API keys typed at the prompt */
    }
}

static void
loop_tty(struct repl *r)
{
    /* Word breaks without '.' and ':', so "db:wal" is one word. */
    static char word_breaks[] = " \t\n\"'`@$><=;|&{}()[],+-*/%^~#";
    rl_readline_name = "allot";
    rl_attempted_completion_function = complete;
    rl_completer_word_break_characters = word_breaks;
    rl_catch_signals = 0; /* on_signal handles them */
    rl_catch_sigwinch = 0;
    complete_repl = r;
    history_open(r);

    sigset_t block, open_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &block, &open_mask);
    bool more = false;
    for (;;) {
        char *line = NULL;
        int got = tty_read(more ? REPL_PROMPT_MORE : REPL_PROMPT, &open_mask, &line);
        if (got == 0) {
            fputc('\n', stdout);
            break;
        }
        if (got < 0) {
            r->chunk_len = 0;
            more = false;
            continue;
        }
        size_t len = strlen(line);
        int rows, columns;
        rl_get_screen_size(&rows, &columns);
        set_columns(r, columns);
        /* A running command may be interrupted. */
        pthread_sigmask(SIG_SETMASK, &open_mask, NULL);
        /* A statement of several lines recalled from the history comes
         * back as one line holding newlines: a whole input's limit. */
        if (len > (memchr(line, '\n', len) ? REPL_CHUNK_BYTES_MAX : REPL_LINE_BYTES_MAX)) {
            refuse_input(r, "a line", len > REPL_LINE_BYTES_MAX && memchr(line, '\n', len)
                                          ? REPL_CHUNK_BYTES_MAX : REPL_LINE_BYTES_MAX);
            more = false;
        } else {
            more = feed_line(r, line, len);
        }
        pthread_sigmask(SIG_BLOCK, &block, NULL);
        free(line);
        if (r->left) {
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &open_mask, NULL);
    history_close(r);
}

/* ---------- start ---------- */

static int
parse_args(int argc, char **argv, struct repl_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--create") == 0) {
            o->create = true;
            continue;
        }
        const char **slot = strcmp(argv[i], "--db") == 0         ? &o->db
                            : strcmp(argv[i], "--policies") == 0 ? &o->policies
                            : strcmp(argv[i], "--now") == 0      ? &o->now
                            : strcmp(argv[i], "--url") == 0      ? &o->url
                            : strcmp(argv[i], "--key") == 0      ? &o->key
                                                                 : NULL;
        if (slot == NULL) {
            return bad_usage("unknown option '%s'", argv[i]);
        }
        if (i + 1 >= argc) {
            return bad_usage("%s needs a value", argv[i]);
        }
        *slot = argv[++i];
    }
    if (o->key == NULL) {
        o->key = getenv("ALLOT_KEY"); /* keeps the key out of `ps` */
    }
    if (o->key != NULL && o->key[0] == '\0') {
        o->key = NULL;
    }
    if (o->db == NULL && o->url == NULL) {
        return bad_usage("--db FILE or --url URL is required (a database file, or a running "
                         "allotd)");
    }
    if (o->db != NULL && o->url != NULL) {
        return bad_usage("--db and --url exclude each other");
    }
    if (o->url != NULL && o->key == NULL) {
        return bad_usage("--url needs --key KEY (or ALLOT_KEY in the environment)");
    }
    if (o->url != NULL && (o->policies != NULL || o->now != NULL || o->create)) {
        return bad_usage("--policies, --now and --create apply to --db only");
    }
    struct stat sb;
    /* A file must exist; a database URI (postgresql://...) is the store's
     * to check. */
    if (o->db != NULL && !o->create && strstr(o->db, "://") == NULL && stat(o->db, &sb) != 0) {
        fprintf(stderr, "allot repl: no database at '%s' (pass --create to make a new one)\n",
                o->db);
        return 1;
    }
    if (o->db != NULL && o->policies == NULL) {
        o->policies = getenv("ALLOT_POLICIES");
    }
    if (o->db != NULL && o->policies == NULL) {
        o->policies = ALLOT_SOURCE_DIR "/policies"; /* as `allot verify` does */
    }
    return 0;
}

static void
set_field(lua_State *L, const char *key, const char *value)
{
    lua_pushstring(L, value); /* nil for NULL */
    lua_setfield(L, -2, key);
}

/* A Lua state with every standard library (this is the trusted admin
 * console, not a policy's sandbox), the module `allot`, repl.lua, and the
 * global `db` opened by repl.lua's start().  Returns 0, or 1 with the
 * reason printed. */
static int
repl_open(struct repl *r, const struct repl_opts *o)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "allot repl: out of memory\n");
        return 1;
    }
    r->L = L;
    luaL_openlibs(L);
    luaL_requiref(L, "allot", luaopen_allot, 1);
    lua_pop(L, 1);
    if (luaL_loadbufferx(L, repl_lua, sizeof repl_lua - 1, "=repl.lua", "t") != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fprintf(stderr, "allot repl: %s\n", lua_tostring(L, -1));
        return 1;
    }
    r->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (!push_module_fn(r, "start")) {
        fprintf(stderr, "allot repl: out of memory\n");
        return 1;
    }
    lua_createtable(L, 0, 6);
    set_field(L, "db", o->db);
    set_field(L, "policies", o->policies);
    set_field(L, "now", o->now);
    set_field(L, "url", o->url);
    set_field(L, "key", o->key);
    /* The module's friendly names (db:quote -> quotes.create), so the
     * remote handle offers the same ones. */
    luaL_getmetatable(L, "allot.db");
    lua_getfield(L, -1, "operations");
    lua_remove(L, -2);
    lua_setfield(L, -2, "operations");
    if (lua_pcall(L, 1, 2, 0) != LUA_OK || lua_isnil(L, -2)) {
        fprintf(stderr, "allot repl: %s\n", lua_tostring(L, -1));
        return 1;
    }
    if (r->interactive) {
        printf("%s\n", lua_tostring(L, -2));
    }
    lua_pop(L, 2);
    return 0;
}

int
repl_main(int argc, char **argv)
{
    struct repl_opts opts;
    int rc = parse_args(argc, argv, &opts);
    if (rc != 0) {
        return rc;
    }
    struct repl r = {.module_ref = LUA_NOREF, .interactive = isatty(STDIN_FILENO) != 0,
                     .exit_code = -1};
    r.chunk = malloc(REPL_CHUNK_BYTES_MAX);
    if (r.chunk == NULL) {
        fprintf(stderr, "allot repl: out of memory\n");
        return 1;
    }
    rc = repl_open(&r, &opts);
    if (rc == 0) {
        repl_signal_L = r.L;
        repl_piped = !r.interactive;
        signals_install();
        if (r.interactive) {
            loop_tty(&r);
        } else {
            loop_piped(&r);
        }
        rc = r.exit_code >= 0 ? r.exit_code : !r.interactive && r.failures > 0 ? 1 : 0;
    }
    fflush(stdout);
    if (r.L != NULL) {
        lua_close(r.L); /* closes the engine through the handle's __gc */
    }
    free(r.chunk);
    return rc;
}
