/* Runs until stopped: a debugger interrupts it with Ctrl-C. */
volatile unsigned long spins;

int main(void) {
    for (;;)
        spins++;
}
