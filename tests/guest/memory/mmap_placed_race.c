//! cflags: -pthread
// mmap without MAP_FIXED places the mapping wherever there is room; Linux searches and maps
// under one hold of mmap_lock (mm/mmap.c do_mmap, get_unmapped_area), so threads mapping at
// once never collide and a placed mmap never fails with EEXIST. Likewise mremap with
// MREMAP_MAYMOVE (mm/mremap.c). glibc's pthread_create returned such an EEXIST from the mmap
// of a thread stack (nptl/tst-stack4: "pthread_create failed: 17") when cetbox found the free
// range and took the lock to map it in two steps.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define THREADS 4
#define ROUNDS 3000

static int failures[THREADS];
static int first_errno[THREADS];

static void *worker(void *arg) {
    int me = (int)(long)arg;
    for (int i = 0; i < ROUNDS; i++) {
        size_t len = (size_t)(1 + (i + me) % 7) << 12;
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            if (!failures[me]++)
                first_errno[me] = errno;
            continue;
        }
        p[0] = 1;
        char *q = mremap(p, len, len * 3, MREMAP_MAYMOVE);
        if (q == MAP_FAILED) {
            if (!failures[me]++)
                first_errno[me] = errno;
            munmap(p, len);
            continue;
        }
        if (q[0] != 1 && !failures[me]++)
            first_errno[me] = 0;
        munmap(q, len * 3);
    }
    return NULL;
}

int main(void) {
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)i)) {
            printf("pthread_create failed\n");
            return 1;
        }
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (failures[i]) {
            printf("thread %d: %d failures, the first: %s\n", i, failures[i],
                   strerror(first_errno[i]));
            bad = 1;
        }
    }
    printf("%d threads x %d placed mmap + mremap(MAYMOVE) + munmap: %s\n", THREADS, ROUNDS,
           bad ? "FAILED" : "all succeeded");
    return bad;
}
