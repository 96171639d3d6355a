#include <stdio.h>
static unsigned long ack(unsigned long m, unsigned long n) {
    if (m == 0) return n + 1;
    if (n == 0) return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}
static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
static int is_even(unsigned n);
static int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }
static int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
static int hanoi(int n, int from, int to, int via, unsigned long *h) {
    if (n == 0) return 0;
    int a = hanoi(n - 1, from, via, to, h);
    *h = *h * 7 + (unsigned long)(from * 3 + to);
    return a + 1 + hanoi(n - 1, via, to, from, h);
}
static int queens(int n, int row, int cols, int d1, int d2) {
    if (row == n) return 1;
    int c = 0;
    for (int col = 0; col < n; col++) {
        if ((cols >> col) & 1 || (d1 >> (row + col)) & 1 || (d2 >> (row - col + n)) & 1) continue;
        c += queens(n, row + 1, cols | 1 << col, d1 | 1 << (row + col), d2 | 1 << (row - col + n));
    }
    return c;
}
static unsigned long depth(unsigned long n) { return n == 0 ? 0 : 1 + depth(n - 1) + (n & 1); }
int main(void) {
    for (int m = 0; m <= 3; m++) for (int n = 0; n <= 4; n++) printf("ack(%d,%d)=%lu\n", m, n, ack(m, n));
    printf("ack(2,300)=%lu\n", ack(2, 300));
    for (int i = 0; i <= 27; i += 3) printf("fib(%d)=%ld\n", i, fib(i));
    printf("is_even(10001)=%d is_odd(77777)=%d\n", is_even(10001), is_odd(77777));
    unsigned long h = 0;
    printf("hanoi(16) moves %d hash %lu\n", hanoi(16, 1, 3, 2, &h), h);
    for (int n = 4; n <= 9; n++) printf("queens(%d)=%d\n", n, queens(n, 0, 0, 0, 0));
    volatile unsigned long d = 100000;
    printf("depth %lu\n", depth(d));
    return 0;
}
