/* tests/guest/hostile/requeue_pi_mprotect.c with the lock's page replaced by a shadow stack
 * (munmap, then map_shadow_stack with a restore token at the same address) instead of made
 * read-only: needs CET hardware natively, so crates/cli/tests/hostile.rs checks it against
 * Linux's source. A shadow-stack page is not writable by ordinary writes (Intel SDM Vol. 3A
 * §4.6; arch/x86/mm/fault.c), so the futex code's writes of the lock word fault there as on a
 * read-only page; the word reads as 0 on the fresh page, so the requeuer's UNLOCK_PI answers
 * EPERM (kernel/futex/pi.c futex_unlock_pi: the TID check comes before any write). */
#define REQUEUE_PI_NO_MAIN
#include "../guest/hostile/requeue_pi_mprotect.c"

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc > 1 && !strcmp(argv[1], "shstk-held")) held(1);
    else if (argc > 1 && !strcmp(argv[1], "shstk-race")) race(1);
    else return 2;
    return 0;
}
