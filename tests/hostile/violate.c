/* Overwrites its own return address: with shadow stacks on, the RET raises #CP and cetbox
 * writes a violation report. */
#include <stdio.h>
#include <unistd.h>

static void target(void) {
    puts("hijacked");
    _exit(0);
}

__attribute__((noinline)) static void victim(void) {
    void **ra = (void **)((char *)__builtin_frame_address(0) + 8);
    *ra = (void *)target;
}

int main(void) {
    victim();
    return 0;
}
