#ifndef QISYNC_CEDITLINE_SHIM_H
#define QISYNC_CEDITLINE_SHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <editline/readline.h>

/* Swift 6 refuses to touch mutable C globals directly; these wrappers do it for the shell. */

typedef char *(*qisync_completion_fn)(const char *text, int state);

static inline void qisync_set_completion(qisync_completion_fn fn) {
    rl_completion_entry_function = (rl_compentry_func_t *)fn;
}

static inline const char *qisync_line_buffer(void) {
    return rl_line_buffer;
}

static inline void qisync_history_limit(int limit) {
    stifle_history(limit);
}

#endif
