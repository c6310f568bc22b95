/* repl.h - `allot repl`, the admin Lua console (repl.c, repl.lua). */
#ifndef ENG_REPL_H
#define ENG_REPL_H

/* Runs `allot repl ...` (argv[1] is "repl") until its input ends.  Returns
 * the process's exit status: 0; 1 when the database or the server cannot be
 * opened, or when piped input raised an error; 2 for a usage error.  Not
 * thread-safe: it owns the terminal and the SIGINT and SIGWINCH handlers. */
int repl_main(int argc, char **argv);

#endif
