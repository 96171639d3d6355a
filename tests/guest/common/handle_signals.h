/* Shared by guest programs (include as "../common/handle_signals.h"); crates/cli/tests/guest.rs
 * hashes the headers a program includes into its build cache key. */
#ifndef CETBOX_GUEST_HANDLE_SIGNALS_H
#define CETBOX_GUEST_HANDLE_SIGNALS_H

#include <signal.h>
#include <stddef.h>
#include <string.h>

/* Installs `h` as the SA_SIGINFO handler, with `flags` added and an empty sa_mask, of every
 * signal in the 0-terminated list `sigs` (sigaction(2)). */
static void handle_signal_list(void (*h)(int, siginfo_t *, void *), int flags, const int *sigs) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    for (; *sigs; sigs++) sigaction(*sigs, &sa, NULL);
}

/* handle_signals(h, flags, SIGSEGV, SIGBUS, ...): handle_signal_list with the signals listed.
 * SA_NODEFER in `flags` lets a handler that leaves by siglongjmp be entered again with the
 * signal unblocked whatever the jump restores. */
#define handle_signals(h, flags, ...) handle_signal_list((h), (flags), (const int[]){__VA_ARGS__, 0})

#endif
