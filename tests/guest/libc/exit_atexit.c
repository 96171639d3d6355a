#include <stdio.h>
#include <stdlib.h>
static void a(void) { printf("atexit a\n"); }
static void b(void) { printf("atexit b\n"); fflush(stdout); }
static void c(int status, void *arg) { printf("on_exit status=%d arg=%s\n", status, (const char *)arg); }
__attribute__((constructor)) static void ctor(void) { printf("constructor\n"); }
__attribute__((destructor)) static void dtor(void) { printf("destructor\n"); }
int main(void) {
    atexit(a);
    on_exit(c, "hello");
    atexit(b);
    printf("main; buffered output must be flushed at exit\n");
    for (int i = 0; i < 2000; i++) printf("%d%c", i, i % 20 == 19 ? '\n' : ' ');
    exit(42);
}
