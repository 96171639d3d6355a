//! cflags: -pthread
// shmat with a null address searches for room and attaches there; shmat with SHM_REMAP
// replaces what is mapped at the address; mremap with MREMAP_FIXED unmaps the target and moves
// the mapping there. Linux does each under one hold of mmap_lock (ipc/shm.c do_shmat,
// mm/mremap.c mremap_to), so another thread's mmap cannot take the range between the search
// (or the unmap) and the attach or move: none of these calls fails because of the other
// threads' mmaps. cetbox searched or unmapped and then attached or moved under two holds of
// its mapping lock, and the call failed (ENOMEM, EEXIST) when a placed mmap of another thread
// took the range in between.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define ROUNDS 10000
#define LEN (4 << 12)

static atomic_int done;
static char *_Atomic hint; /* where the mappers place theirs (NULL: anywhere) */
static char *shm_at;       /* the SHM_REMAP address */
static char *move_at;      /* the MREMAP_FIXED target */

struct result {
    int failures;
    int first_errno;
};

static void fail(struct result *r, int e) {
    if (!r->failures++)
        r->first_errno = e;
}

/* Placed mmaps (at the hint of the phase), unmapped at once. */
static void *mapper(void *arg) {
    (void)arg;
    while (!atomic_load(&done)) {
        char *p = mmap(atomic_load(&hint), LEN, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED)
            munmap(p, LEN);
    }
    return NULL;
}

static int shmid;
static struct result search_r, remap_r, move_r;

static void *search_attacher(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        void *p = shmat(shmid, NULL, 0);
        if (p == (void *)-1) {
            fail(&search_r, errno);
            continue;
        }
        shmdt(p);
    }
    return NULL;
}

static void *remap_attacher(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        void *p = shmat(shmid, shm_at, SHM_REMAP);
        if (p == (void *)-1)
            fail(&remap_r, errno);
        else if (p != shm_at)
            fail(&remap_r, 0);
    }
    return NULL;
}

static void *mover(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        /* Every other round the source is longer than the target: cut, then moved. */
        size_t len = i % 2 ? 2 * LEN : LEN;
        char *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (src == MAP_FAILED) {
            fail(&move_r, errno);
            continue;
        }
        src[0] = 7;
        char *q = mremap(src, len, LEN, MREMAP_MAYMOVE | MREMAP_FIXED, move_at);
        if (q == MAP_FAILED) {
            fail(&move_r, errno);
            munmap(src, len);
        } else if (q != move_at || q[0] != 7) {
            fail(&move_r, 0);
        }
    }
    return NULL;
}

static int report(const char *what, struct result *r) {
    if (r->failures)
        printf("%s: %d failures, the first: %s\n", what, r->failures,
               r->first_errno ? strerror(r->first_errno) : "wrong address or contents");
    else
        printf("%s: all %d succeeded\n", what, ROUNDS);
    return r->failures != 0;
}

int main(void) {
    shmid = shmget(IPC_PRIVATE, LEN, IPC_CREAT | 0600);
    if (shmid < 0) {
        printf("shmget: %s\n", strerror(errno));
        return 1;
    }
    /* Two places of our own: mappings the calls replace at their first round. */
    shm_at = mmap(NULL, LEN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    move_at = mmap(NULL, LEN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (shm_at == MAP_FAILED || move_at == MAP_FAILED) {
        printf("mmap failed\n");
        return 1;
    }
    pthread_t m[3], w;
    for (long i = 0; i < 3; i++)
        pthread_create(&m[i], NULL, mapper, (void *)i);
    /* One call at a time, the mappers aiming where it searches, remaps or moves. */
    pthread_create(&w, NULL, search_attacher, NULL);
    pthread_join(w, NULL);
    atomic_store(&hint, shm_at);
    pthread_create(&w, NULL, remap_attacher, NULL);
    pthread_join(w, NULL);
    atomic_store(&hint, move_at);
    pthread_create(&w, NULL, mover, NULL);
    pthread_join(w, NULL);
    atomic_store(&done, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(m[i], NULL);
    shmctl(shmid, IPC_RMID, NULL);
    int bad = report("shmat(NULL) beside placed mmaps", &search_r);
    bad |= report("shmat(SHM_REMAP) beside placed mmaps", &remap_r);
    bad |= report("mremap(MREMAP_FIXED) beside placed mmaps", &move_r);
    return bad;
}
