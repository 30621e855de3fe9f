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

/* What libedit appends after a completed word (a space, or nothing while a choice is open). */
static inline void qisync_set_append_character(int c) {
    rl_completion_append_character = c;
}

/* Draws the prompt and the line again, after qisync has printed below them. */
static inline void qisync_redisplay(void) {
    rl_forced_update_display();
}

#endif
