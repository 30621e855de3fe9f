#ifndef QISYNC_CTERMINAL_H
#define QISYNC_CTERMINAL_H

/* Ctrl-C for the shell. The signal handler only sets a flag; the line reader and a running
   command (a sync) poll it. One flag for the whole process: it lives in terminal.c. */

/* Installs the handler (without SA_RESTART) and unblocks SIGINT on the calling thread. */
void qisync_install_sigint(void);

/* Whether Ctrl-C was pressed since the last call; clears it. */
int qisync_take_interrupt(void);

/* Makes libedit read through qisync's own reader (UTF-8 decoding; Ctrl-C at the prompt
   discards the line) and leave SIGINT to qisync. */
void qisync_use_own_reader(void);

#endif
