/* A return-address overwrite: with shadow stacks on, victim's RET raises #CP and the process
 * gets SIGSEGV with si_code SEGV_CPERR (10). */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void hijacked(void) {
    puts("hijacked");
    exit(3);
}

__attribute__((noinline)) void victim(void) {
    void **ret = (void **)__builtin_frame_address(0) + 1;
    *ret = (void *)hijacked;
}

int main(void) {
    victim();
    puts("returned normally");
    return 0;
}
