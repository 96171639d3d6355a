#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static uint64_t s = 0x243F6A8885A308D3ULL;
static uint64_t rnd(void) { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s * 2685821657736338717ULL; }
enum { SLOTS = 2000 };
static unsigned char *ptr[SLOTS];
static size_t len[SLOTS];
static unsigned char tag[SLOTS];
static int check(int i) { for (size_t k = 0; k < len[i]; k++) if (ptr[i][k] != (unsigned char)(tag[i] + k)) return 0; return 1; }
static void fill(int i) { for (size_t k = 0; k < len[i]; k++) ptr[i][k] = (unsigned char)(tag[i] + k); }
int main(void) {
    unsigned long ops[4] = {0}, bad = 0, live_max = 0;
    for (int step = 0; step < 20000; step++) {
        int i = (int)(rnd() % SLOTS);
        unsigned r = (unsigned)(rnd() % 100);
        size_t sz;
        uint64_t k = rnd() % 1000;
        if (k < 700) sz = rnd() % 64;
        else if (k < 950) sz = rnd() % 4096;
        else if (k < 995) sz = rnd() % 20000;
        else sz = 300000 + rnd() % 100000;
        if (!ptr[i]) {
            ptr[i] = r < 20 ? calloc(1, sz + 1) : malloc(sz + 1);
            if (r < 20) { for (size_t z = 0; z <= sz; z++) if (ptr[i][z]) { bad++; break; } }
            len[i] = sz; tag[i] = (unsigned char)rnd();
            fill(i);
            ops[0]++;
        } else if (r < 40) {
            if (!check(i)) bad++;
            size_t old = len[i];
            ptr[i] = realloc(ptr[i], sz + 1);
            len[i] = old < sz ? old : sz;
            if (!check(i)) bad++;
            len[i] = sz;
            fill(i);
            ops[1]++;
        } else {
            if (!check(i)) bad++;
            free(ptr[i]); ptr[i] = NULL; len[i] = 0;
            ops[2]++;
        }
        if (step % 2500 == 0) {
            unsigned long live = 0;
            for (int j = 0; j < SLOTS; j++) live += ptr[j] ? len[j] : 0;
            if (live > live_max) live_max = live;
            printf("step %6d live bytes %lu\n", step, live);
        }
    }
    unsigned long sum = 0;
    for (int j = 0; j < SLOTS; j++) if (ptr[j]) { if (!check(j)) bad++; for (size_t k = 0; k < len[j]; k += 97) sum += ptr[j][k]; free(ptr[j]); }
    printf("mallocs %lu reallocs %lu frees %lu corrupt %lu checksum %lu\n", ops[0], ops[1], ops[2], bad, sum);
    /* alignment guarantees */
    int misaligned = 0;
    for (int i = 1; i < 3000; i += 7) { void *p = malloc(i); if ((uintptr_t)p & 15) misaligned++; if (malloc_usable_size(p) < (size_t)i) misaligned += 100; free(p); }
    printf("misaligned %d\n", misaligned);
    for (size_t al = 16; al <= 65536; al *= 4) {
        void *p = NULL;
        int rc = posix_memalign(&p, al, 1000);
        void *q = aligned_alloc(al, al * 2);
        void *m = memalign(al, 10);
        printf("align %zu: posix_memalign rc %d ok %d aligned_alloc ok %d memalign ok %d\n", al, rc, ((uintptr_t)p % al) == 0, ((uintptr_t)q % al) == 0,
               ((uintptr_t)m % al) == 0);
        free(p); free(q); free(m);
    }
    void *z = malloc(0);
    printf("malloc(0) non-null %d\n", z != NULL);
    z = realloc(z, 10);
    printf("realloc to 10 non-null %d\n", z != NULL);
    free(z);
    void *huge = malloc((size_t)1 << 62);
    printf("huge malloc fails %d\n", huge == NULL);
    char *big = malloc(64 << 20);
    for (size_t off = 0; off < (64 << 20); off += 4096) big[off] = (char)(off >> 12);
    unsigned long bs = 0;
    for (size_t off = 0; off < (64 << 20); off += 4096 * 13) bs += (unsigned char)big[off];
    printf("64MB block sum %lu\n", bs);
    free(big);
    return 0;
}
