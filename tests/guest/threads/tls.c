// Thread-local storage: initialised and zeroed __thread variables (static TLS), per-thread
// copies that never interfere, addresses that differ between threads, pthread keys with
// destructors, and TLS seen from a thread created by a thread.
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <stdlib.h>

static __thread long tl_init = 42;
static __thread char tl_buf[64] = "initial";
static __thread long tl_zero;
static __thread int tl_array[100];
static pthread_key_t key;
static long destructor_sum;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void destructor(void *v) {
    pthread_mutex_lock(&mu);
    destructor_sum += (long)v;
    pthread_mutex_unlock(&mu);
}

struct result {
    long init_seen, zero_seen, after;
    char buf[64];
    void *addr;
    long array_sum;
};

static void *worker(void *arg) {
    long id = (long)arg;
    struct result *r = calloc(1, sizeof *r);
    r->init_seen = tl_init;
    r->zero_seen = tl_zero;
    r->addr = &tl_init;
    for (int round = 0; round < 1000; round++) {
        tl_init += id;
        tl_zero += 1;
        for (int k = 0; k < 100; k++) tl_array[k] += (int)id;
        sched_yield();
    }
    snprintf(tl_buf, sizeof tl_buf, "thread %ld", id);
    strcpy(r->buf, tl_buf);
    r->after = tl_init + tl_zero;
    for (int k = 0; k < 100; k++) r->array_sum += tl_array[k];
    pthread_setspecific(key, (void *)(id + 100));
    return r;
}

static void *nested(void *arg) {
    (void)arg;
    pthread_t t;
    void *r;
    tl_init = 7;
    pthread_create(&t, NULL, worker, (void *)9);
    pthread_join(t, &r);
    struct result *res = r;
    long mine = tl_init;
    long theirs = res->init_seen;
    free(r);
    return (void *)(mine * 1000 + theirs);
}

#include <sched.h>
#include <stdlib.h>

int main(void) {
    pthread_key_create(&key, destructor);
    enum { N = 6 };
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    void *addrs[N];
    for (int i = 0; i < N; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        struct result *r = rv;
        printf("thread %d: init %ld zero %ld after %ld buf \"%s\" array %ld\n", i + 1, r->init_seen,
               r->zero_seen, r->after, r->buf, r->array_sum);
        addrs[i] = r->addr;
        free(r);
    }
    int distinct = 1;
    for (int i = 0; i < N; i++) {
        if (addrs[i] == (void *)&tl_init) distinct = 0;
        for (int j = 0; j < i; j++)
            if (addrs[i] == addrs[j]) distinct = 0;
    }
    printf("distinct TLS addresses %d\n", distinct);
    printf("main still has init %ld buf \"%s\" zero %ld\n", tl_init, tl_buf, tl_zero);
    printf("key destructors sum %ld\n", destructor_sum);
    pthread_t n;
    void *r;
    pthread_create(&n, NULL, nested, NULL);
    pthread_join(n, &r);
    printf("nested: %ld\n", (long)r);
    return 0;
}
