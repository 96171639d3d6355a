/* cetbox demo: a stack buffer overflow that overwrites a return address.
 *
 * greet() copies its input into a 16-byte buffer without checking the length. The input is
 * crafted so that the copy runs over the saved frame pointer and replaces greet()'s return
 * address with the address of grant_admin(), a function the program never calls. When greet()
 * returns, control goes to grant_admin() instead of back to main(): a return-oriented attack.
 * With shadow stacks on, the RET finds main's return address on the shadow stack, not
 * grant_admin's, and the CPU raises a control-protection fault instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

__attribute__((noinline)) void grant_admin(void) {
    puts("ATTACK SUCCEEDED: grant_admin() ran, although nothing calls it");
    exit(66);
}

__attribute__((noinline)) void greet(const char *input, size_t len) {
    char name[16];
    memcpy(name, input, len); /* the bug: len is never checked against sizeof name */
    printf("hello, %.16s\n", name);
}

int main(void) {
    /* The attacker's input: filler up to the saved return address, then grant_admin's address.
     * The distance from `name` to the return address is fixed by this frame layout (buffer,
     * saved frame pointer, return address) when built with -O0 -fno-stack-protector. */
    char payload[32];
    void (*target)(void) = grant_admin;
    memset(payload, 'A', sizeof payload);
    memcpy(payload + 24, &target, sizeof target);
    greet(payload, sizeof payload);
    puts("greet() returned normally: the attack failed");
    return 0;
}
