/* Uses POPCNT, which cetbox's baseline CPU model (--cpu=x86-64) does not have. */
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    unsigned long v = strtoul(argc > 1 ? argv[1] : "255", 0, 0);
    printf("before\n");
    fflush(stdout);
    printf("%d\n", __builtin_popcountl(v));
    return 0;
}
