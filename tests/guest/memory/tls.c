//! link: static-pie
#include <pthread.h>
#include <stdio.h>
static __thread int counter = 5;
static __thread char name[16] = "main";
static __thread long big[1000];
static int get(void) { return counter; }
static void *worker(void *arg) {
    int id = (int)(long)arg;
    int initial = counter;
    counter += id * 100;
    snprintf(name, sizeof name, "t%d", id);
    for (int i = 0; i < 1000; i++) big[i] = i * id;
    long s = 0;
    for (int i = 0; i < 1000; i++) s += big[i];
    return (void *)(long)(initial * 1000000 + get() * 1000 + (int)(s % 1000));
}
int main(void) {
    counter++;
    big[0] = 99;
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < 4; i++) { void *r; pthread_join(t[i], &r); printf("thread %d -> %ld\n", i + 1, (long)r); }
    printf("main counter %d name %s big0 %ld\n", counter, name, big[0]);
    return 0;
}
