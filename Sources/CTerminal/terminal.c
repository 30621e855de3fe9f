#include "CTerminal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <editline/readline.h>

static volatile sig_atomic_t interrupt_flag = 0;
static volatile sig_atomic_t pending_enter = 0;

static void on_sigint(int signo) {
    (void)signo;
    interrupt_flag = 1;
}

void qisync_install_sigint(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(SIGINT, &action, NULL);
    /* A parent may have started us with SIGINT blocked; Ctrl-C must reach us. Threads made
       after this (the event loops) inherit the unblocked mask. */
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
}

int qisync_take_interrupt(void) {
    int was = interrupt_flag;
    interrupt_flag = 0;
    return was;
}

/* Reads one byte, or -2 when Ctrl-C was pressed. The handler may run on any thread (a signal
   goes to whichever thread does not block it, an event loop's as often as this one), so the
   read is not relied on to be interrupted: it waits in short polls and checks the flag. */
static int read_byte(FILE *stream) {
    for (;;) {
        if (interrupt_flag) {
            interrupt_flag = 0;
            return -2;
        }
        struct pollfd waiting = { fileno(stream), POLLIN, 0 };
        if (poll(&waiting, 1, 100) <= 0) continue;
        unsigned char c;
        ssize_t n = read(fileno(stream), &c, 1);
        if (n == 1) return c;
        if (n == 0) return EOF;
        if (errno == EINTR || errno == EAGAIN) continue;
        return EOF;
    }
}

/* libedit's character reader. libedit takes what it returns as one whole character, so it
   decodes UTF-8 (a malformed sequence gives U+FFFD, which qisync then refuses as not UTF-8).
   Ctrl-C at the prompt (a byte, since libedit turns the terminal's signal keys off there, or a
   signal) gives ^U (kill the line) then Enter: the line is discarded and a fresh prompt appears. */
static int own_getc(FILE *stream) {
    if (pending_enter) {
        pending_enter = 0;
        return '\n';
    }
    int lead = read_byte(stream);
    if (lead == -2 || lead == 0x03) {
        pending_enter = 1;
        return 0x15;
    }
    if (lead == EOF || lead < 0x80) return lead;
    int more = (lead & 0xE0) == 0xC0 ? 1 : (lead & 0xF0) == 0xE0 ? 2 : (lead & 0xF8) == 0xF0 ? 3 : -1;
    if (more < 0) return 0xFFFD;
    int code = lead & (0x3F >> more);
    for (int i = 0; i < more; i++) {
        int next = read_byte(stream);
        if (next == -2) {
            pending_enter = 1;
            return 0x15;
        }
        if (next == EOF || (next & 0xC0) != 0x80) return 0xFFFD;
        code = (code << 6) | (next & 0x3F);
    }
    return code;
}

void qisync_use_own_reader(void) {
    rl_catch_signals = 0;
    rl_getc_function = own_getc;
}
