//! link: static-pie
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>
static ucontext_t main_ctx, co_ctx[3];
static int values[3];
static void coroutine(int id) {
    for (int i = 0; i < 5; i++) {
        values[id] += (id + 1) * (i + 1);
        printf("co %d step %d value %d\n", id, i, values[id]);
        swapcontext(&co_ctx[id], &main_ctx);
    }
}
int main(void) {
    for (int i = 0; i < 3; i++) {
        getcontext(&co_ctx[i]);
        co_ctx[i].uc_stack.ss_sp = malloc(65536);
        co_ctx[i].uc_stack.ss_size = 65536;
        co_ctx[i].uc_link = &main_ctx;
        makecontext(&co_ctx[i], (void (*)(void))coroutine, 1, i);
    }
    for (int round = 0; round < 6; round++)
        for (int i = 0; i < 3; i++) {
            if (round == 5) printf("resume %d to finish\n", i);
            swapcontext(&main_ctx, &co_ctx[i]);
        }
    printf("final %d %d %d\n", values[0], values[1], values[2]);
    volatile int passes = 0;
    ucontext_t here;
    getcontext(&here);
    if (++passes < 3) setcontext(&here);
    printf("getcontext/setcontext loop passes %d\n", passes);
    return 0;
}
