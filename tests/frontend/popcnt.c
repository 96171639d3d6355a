/* Uses POPCNT, which cetbox's CPU model (x86-64 baseline) does not have. */
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    unsigned long v = strtoul(argc > 1 ? argv[1] : "255", 0, 0);
    printf("before\n");
    fflush(stdout);
    printf("%d\n", __builtin_popcountl(v));
    return 0;
}
