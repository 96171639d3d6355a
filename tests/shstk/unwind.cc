// C++ exceptions through libgcc's unwinder, which pops one shadow-stack entry per unwound frame
// (libgcc/config/i386/shadow-stack-unwind.h, _Unwind_Frames_Extra; GCC manual, "x86
// Control-Flow Protection Intrinsics"). After every catch the program keeps calling and
// returning through deep frames: if the unwinder left stale entries, the next RET out of the
// catching function would raise #CP.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

static int constructed, destroyed;
static char log_buf[4096];
static int log_len;

struct Guard {
    int id;
    explicit Guard(int i) : id(i) { constructed++; }
    ~Guard() {
        destroyed++;
        if (id % 10 == 0 && log_len < 4000) log_len += snprintf(log_buf + log_len, 64, "~%d ", id);
    }
};

struct Boom : std::runtime_error {
    int depth;
    Boom(const std::string &w, int d) : std::runtime_error(w), depth(d) {}
};

__attribute__((noinline)) static int dive(int n, int throw_at) {
    Guard g(n);
    if (n == throw_at) throw Boom("boom at " + std::to_string(n), n);
    int r = dive(n + 1, throw_at);
    asm volatile("" : "+r"(r) : : "memory");
    return r + 1;
}

__attribute__((noinline)) static uint64_t plain(uint64_t n) {
    if (n == 0) return 5;
    uint64_t r = plain(n - 1);
    asm volatile("" : "+r"(r) : : "memory");
    return r * 3 + n;
}

// Catches at depth `catch_at`, logs, rethrows with `throw;`, which the caller catches again.
__attribute__((noinline)) static int catcher(int n, int catch_at, int throw_at) {
    Guard g(1000 + n);
    if (n == catch_at) {
        try {
            return dive(0, throw_at);
        } catch (Boom &b) {
            printf("  caught at catcher depth %d: %s (depth %d), rethrowing\n", n, b.what(), b.depth);
            throw;
        }
    }
    int r = catcher(n + 1, catch_at, throw_at);
    asm volatile("" : "+r"(r) : : "memory");
    return r;
}

__attribute__((noinline)) static int value_thrower(int n) {
    Guard g(2000 + n);
    if (n == 0) throw 42;
    return value_thrower(n - 1) + 1;
}

__attribute__((noinline)) static void nested_in_destructor_unwind(int n);
struct Catching {
    // A destructor that itself throws and catches during unwinding (legal: the exception does
    // not leave the destructor).
    ~Catching() {
        try {
            value_thrower(20);
        } catch (int v) {
            printf("  destructor caught %d during unwinding\n", v);
        }
    }
};
__attribute__((noinline)) static void nested_in_destructor_unwind(int n) {
    Catching c;
    if (n == 0) throw std::logic_error("outer");
    nested_in_destructor_unwind(n - 1);
}

int main() {
    // 1. Thrown through 50 frames with destructors, caught in main.
    try {
        dive(0, 50);
    } catch (Boom &b) {
        printf("caught: %s, depth %d\n", b.what(), b.depth);
    }
    printf("destructors: %d of %d; %s\n", destroyed, constructed, log_buf);
    printf("plain(1000) after catch = %#lx\n", (unsigned long)plain(1000));

    // 2. Caught and rethrown in the middle of a call chain, caught again further out.
    for (int round = 0; round < 3; round++) {
        constructed = destroyed = 0;
        log_len = 0;
        log_buf[0] = 0;
        try {
            catcher(0, 10 + round * 10, 50);
        } catch (std::exception &e) {
            printf("round %d: outer caught %s; destructors %d of %d: %s\n", round, e.what(), destroyed,
                   constructed, log_buf);
        }
        printf("round %d: plain(200) = %#lx\n", round, (unsigned long)plain(200));
    }

    // 3. Many throw/catch cycles: a stale entry per cycle would exhaust nothing but would fault
    //    at the first return, so the loop also returns through deep frames every time.
    uint64_t sum = 0;
    for (int i = 0; i < 2000; i++) {
        try {
            value_thrower(i % 60);
        } catch (int v) {
            sum += (uint64_t)v + plain(i % 40);
        }
    }
    printf("2000 cycles: sum %#lx\n", (unsigned long)sum);

    // 4. Exception pointers: captured, rethrown later from a different depth.
    std::exception_ptr saved;
    try {
        dive(0, 30);
    } catch (...) {
        saved = std::current_exception();
    }
    try {
        std::rethrow_exception(saved);
    } catch (Boom &b) {
        printf("rethrown exception_ptr: %s\n", b.what());
    }

    // 5. Throw/catch inside a destructor that runs during unwinding.
    try {
        nested_in_destructor_unwind(5);
    } catch (std::logic_error &e) {
        printf("caught %s\n", e.what());
    }
    printf("final plain(3000) = %#lx\n", (unsigned long)plain(3000));
    return 0;
}
