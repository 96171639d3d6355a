#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
static int by_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int by_case(const void *a, const void *b) { int c = strcasecmp(*(char *const *)a, *(char *const *)b); return c ? c : strcmp(*(char *const *)a, *(char *const *)b); }
static int by_len(const void *a, const void *b) {
    size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);
    return x != y ? (x < y ? -1 : 1) : by_str(a, b);
}
int main(void) {
    enum { N = 5000 };
    static char *words[N];
    unsigned s = 2463534242u;
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 17; s ^= s << 5;
        int len = 1 + s % 12;
        words[i] = malloc(len + 1);
        for (int k = 0; k < len; k++) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; words[i][k] = (char)((s & 32 ? 'A' : 'a') + s % 26); }
        words[i][len] = 0;
    }
    int (*cmps[])(const void *, const void *) = {by_str, by_case, by_len};
    const char *names[] = {"strcmp", "strcasecmp", "length"};
    for (int c = 0; c < 3; c++) {
        qsort(words, N, sizeof *words, cmps[c]);
        unsigned long h = 5381; int ok = 1;
        for (int i = 0; i < N; i++) { for (char *p = words[i]; *p; p++) h = h * 33 + (unsigned char)*p; if (i && cmps[c](&words[i - 1], &words[i]) > 0) ok = 0; }
        printf("%s: sorted %d hash %lu first %s last %s\n", names[c], ok, h, words[0], words[N - 1]);
        for (int i = 0; i < N; i += 625) printf("  %s", words[i]);
        printf("\n");
    }
    qsort(words, N, sizeof *words, by_str);
    const char *probes[] = {"a", "Zz", "hello", "m", "AAAA"};
    for (int i = 0; i < 5; i++) {
        const char *k = probes[i];
        char **hit = bsearch(&k, words, N, sizeof *words, by_str);
        printf("bsearch %s: %s\n", k, hit ? "found" : "absent");
    }
    for (int i = 0; i < N; i++) free(words[i]);
    return 0;
}
