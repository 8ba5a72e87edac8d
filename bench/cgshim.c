/* The callgrind client requests of bench/callgrind.py, callable through ctypes.
 *
 * Built at bench time (gcc -shared) against <valgrind/callgrind.h>. Outside valgrind every
 * request is a no-op, so a scenario can call these unconditionally. Collection is a
 * per-thread state in callgrind: a window opened on the event loop's thread counts that
 * thread alone.
 */
#include <valgrind/callgrind.h>

/* 1 when the process runs under valgrind, 0 otherwise. */
int cg_running(void) { return RUNNING_ON_VALGRIND; }

/* Opens a window: instrumentation on (once is enough; later calls are cheap), the counts
 * zeroed, collection on for the calling thread. */
void cg_begin(void) {
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
}

/* Closes the window opened by cg_begin and writes its counts as a dump named `name`. */
void cg_end(const char *name) {
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT(name);
}
