// Mutexes (normal, recursive, error-checking, robust, priority-inheritance), condition
// variables (signal, broadcast, timed wait), barriers, read-write locks, spin locks and
// semaphores, each under real contention; every result is exact.
//! link: static-pie
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define N 8
#define ITERS 5000

static pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t recursive;
static pthread_mutex_t pi;
static long counter_plain, counter_rec, counter_pi;

static void *mutexes(void *arg) {
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&plain);
        counter_plain++;
        pthread_mutex_unlock(&plain);
        pthread_mutex_lock(&recursive);
        pthread_mutex_lock(&recursive);
        counter_rec += 2;
        pthread_mutex_unlock(&recursive);
        pthread_mutex_unlock(&recursive);
        pthread_mutex_lock(&pi);
        counter_pi++;
        pthread_mutex_unlock(&pi);
    }
    return NULL;
}

/* Producer/consumer over a bounded queue with two condition variables. */
static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER, not_empty = PTHREAD_COND_INITIALIZER;
static int queue[4], qhead, qcount;
static long consumed_sum;
static void *producer(void *arg) {
    long base = (long)arg * 1000;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&qm);
        while (qcount == 4) pthread_cond_wait(&not_full, &qm);
        queue[(qhead + qcount) % 4] = (int)(base + i);
        qcount++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&qm);
    }
    return NULL;
}
static void *consumer(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&qm);
        while (qcount == 0) pthread_cond_wait(&not_empty, &qm);
        consumed_sum += queue[qhead];
        qhead = (qhead + 1) % 4;
        qcount--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&qm);
    }
    return NULL;
}

/* Broadcast: every waiter wakes. */
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static int started, released, woke;
static void *bwaiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&qm);
    started++;
    pthread_cond_broadcast(&not_empty);
    while (!released) pthread_cond_wait(&go, &qm);
    woke++;
    pthread_mutex_unlock(&qm);
    return NULL;
}

static pthread_barrier_t barrier;
static int phase_seen[N][3];
static int phase;
static void *barrier_worker(void *arg) {
    long id = (long)arg;
    for (int p = 0; p < 3; p++) {
        phase_seen[id][p] = __atomic_load_n(&phase, __ATOMIC_SEQ_CST);
        if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
            __atomic_add_fetch(&phase, 1, __ATOMIC_SEQ_CST);
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long table[16];
static long bad_reads;
static void *rw_writer(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < 2000; i++) {
        pthread_rwlock_wrlock(&rw);
        for (int k = 0; k < 16; k++) table[k] += id;
        pthread_rwlock_unlock(&rw);
    }
    return NULL;
}
static void *rw_reader(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        pthread_rwlock_rdlock(&rw);
        for (int k = 1; k < 16; k++)
            if (table[k] != table[0]) __atomic_add_fetch(&bad_reads, 1, __ATOMIC_RELAXED);
        pthread_rwlock_unlock(&rw);
    }
    return NULL;
}

static pthread_spinlock_t spin;
static long spin_count;
static void *spinner(void *arg) {
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_spin_lock(&spin);
        spin_count++;
        pthread_spin_unlock(&spin);
    }
    return NULL;
}

static sem_t sem_items;
static long sem_taken;
static void *sem_poster(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) sem_post(&sem_items);
    return NULL;
}
static void *sem_taker(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        sem_wait(&sem_items);
        __atomic_add_fetch(&sem_taken, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static struct timespec timed_deadline;
static void *timedlocker(void *arg) {
    (void)arg;
    return (void *)(long)pthread_mutex_timedlock(&plain, &timed_deadline);
}

static void run(void *(*f)(void *), int n, int arg_is_index) {
    pthread_t t[N];
    for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, f, arg_is_index ? (void *)i : NULL);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

int main(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&recursive, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&pi, &a);
    run(mutexes, N, 0);
    printf("mutex: plain %ld recursive %ld pi %ld\n", counter_plain, counter_rec, counter_pi);

    pthread_mutex_t ec;
    pthread_mutexattr_t ea;
    pthread_mutexattr_init(&ea);
    pthread_mutexattr_settype(&ea, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&ec, &ea);
    pthread_mutex_lock(&ec);
    printf("errorcheck relock: %s\n", strerror(pthread_mutex_lock(&ec)));
    pthread_mutex_unlock(&ec);
    printf("errorcheck unlock unowned: %s\n", strerror(pthread_mutex_unlock(&ec)));
    printf("trylock free: %d\n", pthread_mutex_trylock(&plain));
    printf("trylock held: %s\n", strerror(pthread_mutex_trylock(&plain)));
    pthread_mutex_unlock(&plain);
    printf("pi trylock: %d\n", pthread_mutex_trylock(&pi));
    pthread_mutex_unlock(&pi);

    pthread_t p[3], c[2];
    for (long i = 0; i < 3; i++) pthread_create(&p[i], NULL, producer, (void *)i);
    pthread_create(&c[0], NULL, consumer, (void *)1500);
    pthread_create(&c[1], NULL, consumer, (void *)1500);
    for (int i = 0; i < 3; i++) pthread_join(p[i], NULL);
    for (int i = 0; i < 2; i++) pthread_join(c[i], NULL);
    printf("queue: consumed sum %ld, left %d\n", consumed_sum, qcount);

    pthread_t w[5];
    for (int i = 0; i < 5; i++) pthread_create(&w[i], NULL, bwaiter, NULL);
    pthread_mutex_lock(&qm);
    while (started < 5) pthread_cond_wait(&not_empty, &qm);
    released = 1;
    pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&qm);
    for (int i = 0; i < 5; i++) pthread_join(w[i], NULL);
    printf("broadcast woke %d\n", woke);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&qm);
    int r = pthread_cond_timedwait(&go, &qm, &ts);
    pthread_mutex_unlock(&qm);
    printf("timedwait: %s\n", strerror(r));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t mc;
    pthread_cond_init(&mc, &ca);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 10 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&qm);
    r = pthread_cond_timedwait(&mc, &qm, &ts);
    pthread_mutex_unlock(&qm);
    printf("monotonic timedwait: %s\n", strerror(r));
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&plain);
    pthread_t holder;
    timed_deadline = ts;
    pthread_create(&holder, NULL, timedlocker, NULL);
    void *tr;
    pthread_join(holder, &tr);
    pthread_mutex_unlock(&plain);
    printf("timedlock on held mutex: %s\n", strerror((int)(long)tr));

    pthread_barrier_init(&barrier, NULL, N);
    run(barrier_worker, N, 1);
    int ok = 1;
    for (int i = 0; i < N; i++)
        for (int p2 = 0; p2 < 3; p2++)
            if (phase_seen[i][p2] != p2) ok = 0;
    printf("barrier phases consistent %d, final phase %d\n", ok, phase);

    pthread_t rws[6];
    for (long i = 0; i < 2; i++) pthread_create(&rws[i], NULL, rw_writer, (void *)(i + 1));
    for (long i = 2; i < 6; i++) pthread_create(&rws[i], NULL, rw_reader, NULL);
    for (int i = 0; i < 6; i++) pthread_join(rws[i], NULL);
    printf("rwlock: table[0] %ld table[15] %ld torn reads %ld\n", table[0], table[15], bad_reads);
    pthread_rwlock_rdlock(&rw);
    printf("rwlock: tryrdlock while read-held %d, trywrlock %s\n", pthread_rwlock_tryrdlock(&rw),
           strerror(pthread_rwlock_trywrlock(&rw)));
    pthread_rwlock_unlock(&rw);
    pthread_rwlock_unlock(&rw);

    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    run(spinner, N, 0);
    printf("spin: %ld\n", spin_count);

    sem_init(&sem_items, 0, 0);
    pthread_t s[4];
    pthread_create(&s[0], NULL, sem_taker, NULL);
    pthread_create(&s[1], NULL, sem_taker, NULL);
    pthread_create(&s[2], NULL, sem_poster, NULL);
    pthread_create(&s[3], NULL, sem_poster, NULL);
    for (int i = 0; i < 4; i++) pthread_join(s[i], NULL);
    int v;
    sem_getvalue(&sem_items, &v);
    int tw = sem_trywait(&sem_items);
    printf("semaphore: taken %ld left %d trywait %d %s\n", sem_taken, v, tw, strerror(errno));
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    r = sem_timedwait(&sem_items, &ts);
    printf("sem_timedwait: %d %s\n", r, strerror(errno));
    return 0;
}
