//! link: static-pie
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
int main(void) {
    printf("about to abort\n");
    fflush(stdout);
    fprintf(stderr, "stderr line before abort\n");
    abort();
}
