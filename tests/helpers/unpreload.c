/* unpreload.c - loaded after the ASan runtime into lua5.4 by the sanitizer
 * build's busted suites (LD_PRELOAD="<asan runtime>:unpreload.so").
 *
 * The instrumented Lua module needs the ASan runtime preloaded into the
 * uninstrumented interpreter; but every process the specs start (sh, curl,
 * allotd) would inherit LD_PRELOAD, and curl with a preloaded ASan runtime
 * deadlocks in setlocale at start.  allotd and the CLI link the runtime
 * themselves, so nothing the specs start needs the preload: this
 * constructor takes it out of the environment once the interpreter has
 * been loaded with it. */
#include <stdlib.h>

__attribute__((constructor)) static void
unpreload(void)
{
    unsetenv("LD_PRELOAD");
}
