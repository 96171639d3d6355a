// System V message queues and semaphores: send and receive (types, MSG_NOERROR, E2BIG,
// MSG_EXCEPT, IPC_NOWAIT), msgctl's statistics, a blocking receive woken by a child's send;
// semaphore sets (SETALL/GETALL, SETVAL/GETVAL, semop with IPC_NOWAIT, semtimedop timing
// out, a blocking semop released by a child); and Linux's errors for bad ids, sizes, flags
// and pointers, in Linux's order (ipc/msg.c, ipc/sem.c).
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct msg {
    long mtype;
    char text[64];
};

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *__buf;
};

#define BAD ((void *)16)

static void show(const char *what, long r) {
    printf("%-44s %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

static void queues(void) {
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    printf("msgget: %s\n", q >= 0 ? "ok" : strerrorname_np(errno));
    struct msg m = {2, "two"};
    show("msgsnd type 2", msgsnd(q, &m, 4, 0));
    m.mtype = 1;
    strcpy(m.text, "one, longer");
    show("msgsnd type 1", msgsnd(q, &m, 12, 0));
    m.mtype = 0;
    show("msgsnd type 0", msgsnd(q, &m, 4, 0));
    show("msgsnd size -1", syscall(SYS_msgsnd, q, &m, -1L, 0));
    show("msgsnd bad pointer", msgsnd(q, BAD, 4, 0));
    show("msgsnd bad text, huge size", syscall(SYS_msgsnd, q, &m, 1L << 40, 0));
    show("msgsnd bad id", msgsnd(-1, &m, 4, 0));

    struct msqid_ds ds;
    show("msgctl IPC_STAT", msgctl(q, IPC_STAT, &ds));
    printf("qnum %lu cbytes %lu mode %o\n", (unsigned long)ds.msg_qnum,
           (unsigned long)ds.__msg_cbytes, ds.msg_perm.mode & 0777);
    show("msgctl IPC_STAT bad pointer", msgctl(q, IPC_STAT, BAD));

    struct msg r;
    memset(&r, 0, sizeof r);
    show("msgrcv type 1, 4 bytes", msgrcv(q, &r, 4, 1, 0));
    show("msgrcv type 1, 4 bytes, MSG_NOERROR", msgrcv(q, &r, 4, 1, MSG_NOERROR));
    printf("got type %ld \"%.4s\"\n", r.mtype, r.text);
    show("msgrcv type 1 again, IPC_NOWAIT", msgrcv(q, &r, 64, 1, IPC_NOWAIT));
    show("msgrcv MSG_EXCEPT 3", msgrcv(q, &r, 64, 3, MSG_EXCEPT));
    printf("got type %ld \"%s\"\n", r.mtype, r.text);
    show("msgrcv size -1", syscall(SYS_msgrcv, q, &r, -1L, 0, IPC_NOWAIT));
    show("msgrcv huge size, empty queue", syscall(SYS_msgrcv, q, &r, 1L << 40, 0, IPC_NOWAIT));

    /* A blocking receive, woken by a child's send. */
    pid_t c = fork();
    if (c == 0) {
        struct msg s = {7, "from the child"};
        _exit(msgsnd(q, &s, 15, 0) == 0 ? 0 : 1);
    }
    show("msgrcv blocking", msgrcv(q, &r, 64, 7, 0));
    printf("got type %ld \"%s\"\n", r.mtype, r.text);
    int st;
    waitpid(c, &st, 0);
    printf("child status %d\n", WEXITSTATUS(st));

    /* A message received into a bad buffer is lost, as on Linux. */
    m.mtype = 5;
    show("msgsnd type 5", msgsnd(q, &m, 4, 0));
    show("msgrcv into bad pointer", msgrcv(q, BAD, 64, 5, 0));
    show("msgrcv type 5 again, IPC_NOWAIT", msgrcv(q, &r, 64, 5, IPC_NOWAIT));

    struct msginfo info;
    /* IPC_INFO answers the highest index in use, which other processes' queues change. */
    show("msgctl IPC_INFO >= 0", msgctl(q, IPC_INFO, (struct msqid_ds *)&info) >= 0);
    show("msgctl IPC_RMID", msgctl(q, IPC_RMID, NULL));
    show("msgctl IPC_STAT removed", msgctl(q, IPC_STAT, &ds));
    show("msgrcv removed", msgrcv(q, &r, 64, 0, 0));
}

static void semaphores(void) {
    int s = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    printf("semget: %s\n", s >= 0 ? "ok" : strerrorname_np(errno));
    unsigned short vals[3] = {1, 0, 5}, got[3] = {9, 9, 9};
    union semun arg = {.array = vals};
    show("semctl SETALL", semctl(s, 0, SETALL, arg));
    arg.array = got;
    show("semctl GETALL", semctl(s, 0, GETALL, arg));
    printf("values %u %u %u\n", got[0], got[1], got[2]);
    arg.array = BAD;
    show("semctl GETALL bad pointer", semctl(s, 0, GETALL, arg));
    show("semctl GETALL bad id", semctl(-1, 0, GETALL, arg));
    arg.val = 4;
    show("semctl SETVAL 1 := 4", semctl(s, 1, SETVAL, arg));
    show("semctl GETVAL 1", semctl(s, 1, GETVAL));
    show("semctl GETVAL 3 (out of range)", semctl(s, 3, GETVAL));
    struct semid_ds ds;
    arg.buf = &ds;
    show("semctl IPC_STAT", semctl(s, 0, IPC_STAT, arg));
    printf("nsems %lu mode %o\n", (unsigned long)ds.sem_nsems, ds.sem_perm.mode & 0777);

    struct sembuf ops[2] = {{0, -1, 0}, {2, 2, 0}};
    show("semop two ops", semop(s, ops, 2));
    show("semctl GETVAL 0", semctl(s, 0, GETVAL));
    show("semctl GETVAL 2", semctl(s, 2, GETVAL));
    struct sembuf wait0 = {0, -1, IPC_NOWAIT};
    show("semop would block, IPC_NOWAIT", semop(s, &wait0, 1));
    wait0.sem_flg = 0;
    struct timespec ts = {0, 1000000};
    show("semtimedop times out", semtimedop(s, &wait0, 1, &ts));
    show("semtimedop bad timeout", semtimedop(s, &wait0, 1, BAD));
    show("semop nsops 0", semop(s, ops, 0));
    show("semop bad pointer", semop(s, BAD, 1));
    show("semop bad pointer, bad id", semop(-1, BAD, 1));
    show("semop bad pointer, too many ops", semop(s, BAD, 100000));

    /* A blocking semop released by a child. */
    pid_t c = fork();
    if (c == 0) {
        struct sembuf up = {0, 1, 0};
        _exit(semop(s, &up, 1) == 0 ? 0 : 1);
    }
    show("semop blocking", semop(s, &wait0, 1));
    int st;
    waitpid(c, &st, 0);
    printf("child status %d\n", WEXITSTATUS(st));

    struct seminfo info;
    arg.__buf = &info;
    show("semctl IPC_INFO >= 0", semctl(s, 0, IPC_INFO, arg) >= 0);
    show("semctl IPC_RMID", semctl(s, 0, IPC_RMID));
    show("semop removed", semop(s, ops, 1));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    queues();
    semaphores();
    return 0;
}
