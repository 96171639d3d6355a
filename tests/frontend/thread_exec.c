/* `thread_exec PROG ARGS...`: a second thread execs PROG while the main thread waits in
 * pthread_join (cetbox re-executes itself for such an execve; see crates/linux/src/reexec.rs). */
#include <pthread.h>
#include <unistd.h>

static char **args;

static void *execer(void *a) {
    (void)a;
    execv(args[0], args);
    return 0;
}

int main(int argc, char **argv) {
    pthread_t t;
    if (argc < 2) return 2;
    args = argv + 1;
    pthread_create(&t, 0, execer, 0);
    pthread_join(t, 0);
    return 5;
}
