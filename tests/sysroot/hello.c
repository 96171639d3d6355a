/* /bin/hello of the test sysroot (crates/cli/tests/sysroot.rs), linked statically. */
#include <stdio.h>

int main(void) {
    printf("hello from /bin/hello in the sysroot\n");
    return 7;
}
