/* libgreet.so: installed only in the test sysroot (crates/cli/tests/sysroot.rs). */
#include <stdio.h>

void greet(void) { printf("greet: from libgreet.so in the sysroot\n"); }
