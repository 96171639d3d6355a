/* An object compiled without -fcf-protection (crates/cli/tests/glibc_cet.rs links it into an
 * otherwise marked program): the linker then drops the SHSTK property of the whole program. */
int legacy_add(int a, int b) { return a + b; }
