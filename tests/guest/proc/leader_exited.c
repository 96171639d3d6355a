/* The main thread ends with pthread_exit while another thread runs on; that thread then reads
 * the process's /proc/self/status and stat, which describe the thread-group leader: Linux
 * keeps it as a zombie until the whole group ends (State Z), and the process-wide signal
 * dispositions (SigIgn, SigCgt) are the program's own. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_t main_thread;

static void on_usr1(int sig) { (void)sig; }

static void show(const char *path, const char *const *keys) {
    char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: cannot open\n", path);
        return;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    for (const char *const *k = keys; *k; k++) {
        char *line = strstr(buf, *k);
        if (!line) {
            printf("%s: no %s\n", path, *k);
            continue;
        }
        char *end = strchr(line, '\n');
        printf("%.*s\n", end ? (int)(end - line) : (int)strlen(line), line);
    }
}

static void *worker(void *arg) {
    (void)arg;
    /* Wait until the leader has ended: joining it returns once it has. */
    if (pthread_join(main_thread, NULL) != 0)
        puts("join failed");
    /* Its tid word is cleared as it exits, a moment before it becomes a zombie (mm_release
     * comes before exit_notify in do_exit): look until it is one (at most about 5 s). */
    for (int i = 0; i < 5000; i++) {
        char st[512];
        FILE *f = fopen("/proc/self/stat", "r");
        if (!f)
            break;
        size_t n = fread(st, 1, sizeof st - 1, f);
        fclose(f);
        st[n] = 0;
        char *rp = strrchr(st, ')');
        if (rp && rp[1] == ' ' && rp[2] == 'Z')
            break;
        usleep(1000);
    }
    static const char *const status_keys[] = {"State:", "SigIgn:", "SigCgt:", NULL};
    show("/proc/self/status", status_keys);
    char stat[4096];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[n] = 0;
        char *rp = strrchr(stat, ')');
        printf("stat state: %c\n", rp && rp[1] == ' ' ? rp[2] : '?');
    }
    fflush(stdout);
    exit(0);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    main_thread = pthread_self();
    pthread_t t;
    if (pthread_create(&t, 0, worker, 0) != 0)
        return 1;
    pthread_exit(0);
}
