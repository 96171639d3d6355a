/* A small program for the gdb tests: a call chain to break in and step over, a global to
 * watch, and a qsort callback (a frame inside libc when linked dynamically). */
#include <stdio.h>
#include <stdlib.h>

volatile long counter;

__attribute__((noinline)) long leaf(long x) {
    counter += x;
    return x * 2;
}

__attribute__((noinline)) long middle(long x) {
    long r = leaf(x + 1);
    return r + 1;
}

static int cmp(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(void) {
    long v[4] = {4, 1, 3, 2};
    long r = middle(20);
    qsort(v, 4, sizeof v[0], cmp);
    printf("result %ld counter %ld sorted %ld %ld %ld %ld\n", r, counter, v[0], v[1], v[2], v[3]);
    return 0;
}
