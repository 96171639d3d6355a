// The guest of accessor_hold.c (crates/cli/tests/hostile.rs,
// mapping_call_held_by_an_accessor_acts_on_signals): on each line of stdin it says "mapping"
// and makes one mmap, then says "mapped". A SIGUSR1 handler says "usr1".
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void say(const char *s) { write(1, s, strlen(s)); }

static void on_usr1(int sig) {
    (void)sig;
    say("usr1\n");
}

int main(void) {
    signal(SIGUSR1, on_usr1);
    say("ready\n");
    char c;
    while (read(0, &c, 1) == 1) {
        say("mapping\n");
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        say(p == MAP_FAILED ? "mmap failed\n" : "mapped\n");
    }
    return 0;
}
