// A multithreaded program whose vfork child changes its user ids before it execs (a privileged
// daemon dropping its rights in a posix_spawn or vfork child, as Go's exec.Command with
// SysProcAttr.Credential does): the child's exec releases the parent (clone(2), CLONE_VFORK),
// whatever the child's credentials became.
//
// cetbox's vfork child of a multithreaded parent keeps a helper process of its own, made at the
// fork with the fork's credentials, which it ends before the exec. It used to end it with
// SIGKILL only, which a child that dropped root may no longer send (kill(2): the sender's real
// or effective uid must match the target's real or saved uid), and then waited for it forever,
// so the exec and the parent hung. Run without root, setuid fails with EPERM natively and under
// cetbox alike and the rest is the same.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int gate[2], started[2];

static void *blocked(void *arg)
{
    (void)arg;
    char c;
    if (write(started[1], "s", 1) != 1)
        perror("write");
    /* Keeps the process multithreaded until main is done. */
    if (read(gate[0], &c, 1) < 0)
        perror("read");
    return NULL;
}

int main(void)
{
    if (pipe(gate) != 0 || pipe(started) != 0) {
        perror("pipe");
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, blocked, NULL) != 0) {
        puts("pthread_create failed");
        return 1;
    }
    /* Running (glibc's setuid in the child waits for a thread still starting, which a
       child whose memory is a copy would wait for forever: a known limit of cetbox's vfork,
       not what this test is about). */
    char c;
    if (read(started[0], &c, 1) != 1) {
        puts("read failed");
        return 1;
    }
    int root = geteuid() == 0;
    for (int round = 0; round < 3; round++) {
        pid_t pid = vfork();
        if (pid == 0) {
            if (root && (setgid(65534) != 0 || setuid(65534) != 0))
                _exit(3);
            if (!root && setuid(0) == 0)
                _exit(4);
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (pid < 0) {
            perror("vfork");
            return 1;
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) {
            perror("waitpid");
            return 1;
        }
        printf("round %d: exited %d status %d\n", round, WIFEXITED(status),
               WEXITSTATUS(status));
    }
    /* The same with the child exiting instead of exec'ing. */
    pid_t pid = vfork();
    if (pid == 0) {
        if (root && setuid(65534) != 0)
            _exit(3);
        _exit(7);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        perror("vfork/waitpid");
        return 1;
    }
    printf("exit: exited %d status %d\n", WIFEXITED(status), WEXITSTATUS(status));
    if (write(gate[1], "x", 1) != 1)
        perror("write");
    pthread_join(th, NULL);
    puts("done");
    return 0;
}
