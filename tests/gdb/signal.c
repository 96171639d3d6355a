/* raise(SIGUSR1) with a handler: under a debugger the signal stops the program first and is
 * delivered (the handler runs) only if the debugger passes it on. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static void on_usr1(int sig) {
    static const char msg[] = "handled\n";
    (void)sig;
    write(1, msg, sizeof msg - 1);
}

int main(void) {
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    puts("after");
    return 0;
}
