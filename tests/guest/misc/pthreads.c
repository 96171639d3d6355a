//! link: static-pie
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long shared_sum;
static atomic_long atomic_sum;
static int turn;
static void *worker(void *arg) {
    long id = (long)arg;
    for (long i = 0; i < 20000; i++) {
        pthread_mutex_lock(&mu);
        shared_sum += i % 7 + id;
        pthread_mutex_unlock(&mu);
        atomic_fetch_add(&atomic_sum, i & 3);
    }
    return (void *)(id * id);
}
static void *pingpong(void *arg) {
    long me = (long)arg;
    for (int r = 0; r < 200; r++) {
        pthread_mutex_lock(&mu);
        while (turn != me) pthread_cond_wait(&cv, &mu);
        turn = 1 - me;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_count;
static void once_fn(void) { once_count++; }
static void *use_once(void *a) { pthread_once(&once, once_fn); return a; }
int main(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    long rets = 0;
    for (int i = 0; i < 4; i++) { void *r; pthread_join(t[i], &r); rets += (long)r; }
    printf("mutex sum %ld atomic sum %ld join values %ld\n", shared_sum, (long)atomic_load(&atomic_sum), rets);
    pthread_t a, b;
    pthread_create(&a, NULL, pingpong, (void *)0);
    pthread_create(&b, NULL, pingpong, (void *)1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("ping-pong done, turn %d\n", turn);
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, use_once, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("once ran %d time(s)\n", once_count);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_JOINABLE);
    pthread_create(&a, &attr, worker, (void *)9);
    void *r;
    pthread_join(a, &r);
    printf("custom stack thread returned %ld\n", (long)r);
    printf("self equal %d\n", pthread_equal(pthread_self(), pthread_self()));
    return 0;
}
