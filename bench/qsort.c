/* sorting with callbacks: qsort of 1M ints */
#include <stdio.h>
#include <stdlib.h>
static int cmp(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000000;
    int *a = malloc(sizeof(int) * n);
    unsigned s = 12345;
    long check = 0;
    for (int rep = 0; rep < 4; rep++) {
        for (int i = 0; i < n; i++) { s = s * 1103515245 + 12345; a[i] = (int)(s >> 1); }
        qsort(a, n, sizeof(int), cmp);
        for (int i = 0; i < n; i += 1000) check += a[i] % 1000;
    }
    printf("sorted %d ints 4 times, check %ld\n", n, check);
    return 0;
}
